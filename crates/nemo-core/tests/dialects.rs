//! Every variant of `../shared/PROTOCOL.md` §10, one table per reader: each
//! row is a spelling the real service may send, with where it comes from.
//! Plus a property: any spelling of one draft gives the same timeline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use nemo_core::adk::{self, AgentEvent, GenerationStage};
use nemo_core::api::{self, Api, Attribution, RenderPhase, ResponseError};
use nemo_core::draft::{diff, Draft};
use nemo_core::secret::Secret;
use nemo_core::wire::Response;
use proptest::prelude::*;
use serde_json::{json, Value};

fn resp(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

const URL: &str = "https://cdn.example/r/x.mp4";

/// Render status: shapes a, b (with and without `success`), c; numbers as
/// strings.
#[test]
fn render_status_in_every_shape() {
    let rows: &[(&str, &str)] = &[
        // (a) upstream API reference.
        (
            "a",
            r#"{"success":true,"data":{"id":"render_1","status":"completed","progress":100,"outputUrl":"https://cdn.example/r/x.mp4"}}"#,
        ),
        (
            "a in the code envelope",
            r#"{"code":0,"message":"ok","data":{"id":"render_1","status":"completed","progress":100,"outputUrl":"https://cdn.example/r/x.mp4"}}"#,
        ),
        // (b) seeds and upstream skill ≥ 4.5, without the envelope.
        (
            "b",
            r#"{"status":"completed","progress":100,"output":{"url":"https://cdn.example/r/x.mp4"}}"#,
        ),
        // (b) with `"success":true` beside it and no `data`.
        (
            "b with success",
            r#"{"success":true,"status":"completed","progress":100,"output":{"url":"https://cdn.example/r/x.mp4"}}"#,
        ),
        (
            "b with success as text, progress as text",
            r#"{"success":"true","status":"completed","progress":"100","output":{"url":"https://cdn.example/r/x.mp4"}}"#,
        ),
        // (c) init.
        (
            "c",
            r#"{"taskId":"render_1","status":"completed","progress":100,"output":{"url":"https://cdn.example/r/x.mp4","duration":10.5,"size":12345}}"#,
        ),
        (
            "c with numbers as text",
            r#"{"taskId":"render_1","status":"done","progress":"100","output":{"url":"https://cdn.example/r/x.mp4","duration":"10.5","size":"12345"}}"#,
        ),
    ];
    for (name, body) in rows {
        let s =
            api::parse_render_status(&resp(200, body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.phase, RenderPhase::Completed, "{name}");
        assert_eq!(s.output_url.as_deref(), Some(URL), "{name}");
        assert_eq!(s.progress, Some(100.0), "{name}");
    }
    let c = api::parse_render_status(&resp(200, rows[6].1)).unwrap();
    assert_eq!((c.duration, c.size), (Some(10.5), Some(12345)));
}

/// The exact answer the issue reports failing an export.
#[test]
fn shape_b_with_the_success_envelope_is_read() {
    let body = r#"{"success":true,"status":"completed","progress":100,"output":{"url":"https://cdn.example/r/x.mp4"}}"#;
    let s = api::parse_render_status(&resp(200, body)).expect("shape b with success");
    assert_eq!(s.phase, RenderPhase::Completed);
    assert_eq!(s.output_url.as_deref(), Some(URL));
    let p = r#"{"success":true,"status":"processing","progress":"42","output":null}"#;
    let s = api::parse_render_status(&resp(200, p)).expect("processing");
    assert_eq!((s.phase, s.progress), (RenderPhase::Processing, Some(42.0)));
}

/// Errors: codes ≥ 1000 on HTTP 200 or with a matching status, the code as a
/// number or a string, FastAPI `detail`, HTML from a proxy.
#[test]
fn error_envelopes_of_every_kind() {
    let rows: &[(u16, &str, Option<i64>, &str)] = &[
        // upstream: codes on HTTP 200.
        (
            200,
            r#"{"code":1001,"message":"Token expired","data":null}"#,
            Some(1001),
            "Token expired",
        ),
        (
            200,
            r#"{"code":"1002","message":"Session not found"}"#,
            Some(1002),
            "Session not found",
        ),
        (
            200,
            r#"{"code":2001,"msg":"Insufficient credits"}"#,
            Some(2001),
            "Insufficient credits",
        ),
        (
            200,
            r#"{"success":false,"error":"Insufficient credits","code":"2001"}"#,
            Some(2001),
            "Insufficient credits",
        ),
        // inferred: the same codes with a matching HTTP status.
        (
            401,
            r#"{"code":1001,"message":"Token expired"}"#,
            Some(1001),
            "Token expired",
        ),
        (
            404,
            r#"{"code":"1002","message":"Session not found"}"#,
            Some(1002),
            "Session not found",
        ),
        (
            402,
            r#"{"code":2001,"message":"Insufficient credits"}"#,
            Some(2001),
            "Insufficient credits",
        ),
        (
            429,
            r#"{"code":429,"message":"Too many requests"}"#,
            Some(429),
            "Too many requests",
        ),
        // FastAPI.
        (
            400,
            r#"{"detail":"X-Client-Id header is required"}"#,
            None,
            "X-Client-Id header is required",
        ),
        (
            422,
            r#"{"detail":[{"loc":["body"],"msg":"field required"}]}"#,
            None,
            "field required",
        ),
        (
            401,
            r#"{"detail":{"code":1001,"message":"Token expired"}}"#,
            Some(1001),
            "Token expired",
        ),
        (
            500,
            r#"{"error":{"code":"1002","message":"Session not found"}}"#,
            Some(1002),
            "Session not found",
        ),
        // A proxy.
        (
            502,
            "<html><body>502 Bad Gateway</body></html>",
            None,
            "<html><body>502 Bad Gateway</body></html>",
        ),
        (503, "", None, "service unavailable"),
    ];
    for (status, body, code, message) in rows {
        match api::payload(&resp(*status, body)) {
            Err(ResponseError::Api(e)) => {
                assert_eq!(e.status, *status, "{body}");
                assert_eq!(e.code, *code, "{body}");
                assert_eq!(e.message, *message, "{body}");
            }
            other => panic!("{status} {body}: {other:?}"),
        }
    }
    // Code 0 as a string is success.
    let ok = api::payload(&resp(200, r#"{"code":"0","data":{"x":1}}"#)).unwrap();
    assert_eq!(ok, json!({"x": 1}));
}

/// Tokens, sessions and states: ids as numbers or strings, camelCase or
/// snake_case.
#[test]
fn ids_tokens_and_sessions() {
    for body in [
        r#"{"code":0,"data":{"task_id":"task_1","session_id":"5529798706024415232","user_id":"anon_1"}}"#,
        r#"{"code":0,"data":{"task_id":"task_1","session_id":5529798706024415232,"user_id":"anon_1"}}"#,
        r#"{"code":0,"data":{"taskId":"task_1","sessionId":"5529798706024415232","userId":"anon_1"}}"#,
        r#"{"code":"0","data":{"taskId":"task_1","sessionId":5529798706024415232,"userId":"anon_1"}}"#,
    ] {
        let s: api::SessionCreated =
            api::parse(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(s.session_id, "5529798706024415232", "{body}");
        assert_eq!(s.task_id.as_deref(), Some("task_1"), "{body}");
        assert_eq!(s.user_id.as_deref(), Some("anon_1"), "{body}");
    }
    for body in [
        r#"{"code":0,"data":{"token":"nmv_usr_x","user_id":"anon_1","expires_at":"2026-12-09T00:00:00Z","credits":100}}"#,
        r#"{"code":0,"data":{"token":"nmv_usr_x","user_id":12345,"expires_at":"2026-12-09T00:00:00Z","credits":"100"}}"#,
        r#"{"code":0,"data":{"access_token":"nmv_usr_x","userId":"anon_1","expiresAt":"2026-12-09T00:00:00Z","credits":100}}"#,
    ] {
        let t: api::AnonymousToken =
            api::parse(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(t.token.expose(), "nmv_usr_x", "{body}");
        assert!(t.user_id.is_some(), "{body}");
        assert_eq!(t.credits, Some(100.0), "{body}");
    }
    let body = r#"{"code":0,"data":{"sessionId":5529798706024415232,"taskId":"task_1","state":{"draft":{"t":[]}}}}"#;
    let s = api::parse_state(&resp(200, body)).unwrap();
    assert_eq!(s.session_id.as_deref(), Some("5529798706024415232"));
    assert_eq!(s.task_id.as_deref(), Some("task_1"));
    let c: api::ClaimToken = api::parse(&resp(
        200,
        r#"{"code":0,"data":{"claimToken":"clm_1","expiresIn":"3600"}}"#,
    ))
    .unwrap();
    assert_eq!(
        (c.claim_token.expose(), c.expires_in),
        ("clm_1", Some(3600.0))
    );
}

/// Credits as numbers or numeric strings, `total` defaulting to the sum.
#[test]
fn credits_of_every_spelling() {
    for body in [
        r#"{"code":0,"data":{"available":90,"frozen":10,"total":100}}"#,
        r#"{"code":0,"data":{"available":"90","frozen":"10","total":"100"}}"#,
        r#"{"code":0,"data":{"available":90,"frozen":10}}"#,
        r#"{"code":"0","data":{"available":"90.0","frozen":10}}"#,
    ] {
        let c: api::Credits =
            api::parse(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(
            (c.available, c.frozen, c.total),
            (90.0, 10.0, 100.0),
            "{body}"
        );
    }
}

/// Upload answers: numbers as strings, the flag as a boolean or text.
#[test]
fn upload_answers() {
    for body in [
        r#"{"code":0,"data":{"files":[{"filename":"a.mp4","file_type":"video","cdn_url":"https://cdn/a.mp4","duration":10.5,"width":1920,"height":1080}],"session_state_applied":true}}"#,
        r#"{"code":0,"data":{"files":[{"filename":"a.mp4","file_type":"video","cdn_url":"https://cdn/a.mp4","duration":"10.5","width":"1920","height":"1080"}],"session_state_applied":"true"}}"#,
        r#"{"code":0,"data":{"files":[{"fileName":"a.mp4","fileType":"video","cdnUrl":"https://cdn/a.mp4","duration":10.5,"width":1920,"height":1080}],"sessionStateApplied":1}}"#,
    ] {
        let u: api::Uploaded =
            api::parse(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(u.session_state_applied, Some(true), "{body}");
        let f = &u.files[0];
        assert_eq!(
            (
                f.filename.as_str(),
                f.file_type.as_str(),
                f.cdn_url.as_str()
            ),
            ("a.mp4", "video", "https://cdn/a.mp4"),
            "{body}"
        );
        assert_eq!(
            (f.duration, f.width, f.height),
            (Some(10.5), Some(1920.0), Some(1080.0)),
            "{body}"
        );
    }
}

/// Draft segments: details on the segment or under `m`; volume as a
/// fraction or a percent; words as text, content, title or name.
#[test]
fn draft_segments_in_every_spelling() {
    let rows: &[(&str, &str)] = &[
        // The two the issue reports.
        (
            r#"{"tt":7,"sg":[{"st":0,"d":3000,"m":{"text":"Urban Dreams"}}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        (
            r#"{"tt":1,"sg":[{"st":0,"d":10000,"m":{"name":"Lo-fi","volume":0.35}}]}"#,
            "BGM: Lo-fi (0-10s, 35%)",
        ),
        // On the segment (the simulator's adk dialect).
        (
            r#"{"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        (
            r#"{"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":10000,"v":0.35}]}"#,
            "BGM: Lo-fi (0-10s, 35%)",
        ),
        // Volume as a percent, a string, a "35%".
        (
            r#"{"tt":1,"sg":[{"st":0,"d":10000,"m":{"name":"Lo-fi","volume":35}}]}"#,
            "BGM: Lo-fi (0-10s, 35%)",
        ),
        (
            r#"{"tt":1,"sg":[{"st":"0","d":"10000","m":{"name":"Lo-fi","v":"0.35"}}]}"#,
            "BGM: Lo-fi (0-10s, 35%)",
        ),
        (
            r#"{"tt":1,"sg":[{"st":0,"d":10000,"m":{"title":"Lo-fi","vol":"35%"}}]}"#,
            "BGM: Lo-fi (0-10s, 35%)",
        ),
        // Timing under m too.
        (
            r#"{"tt":1,"sg":[{"m":{"name":"Lo-fi","volume":0.35,"st":0,"d":10000}}]}"#,
            "BGM: Lo-fi (0-10s, 35%)",
        ),
        // Words as content, title, name; the words win over an internal name.
        (
            r#"{"tt":7,"sg":[{"st":0,"d":3000,"m":{"content":"Urban Dreams"}}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        (
            r#"{"tt":7,"sg":[{"st":0,"d":3000,"m":{"title":"Urban Dreams"}}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        (
            r#"{"tt":7,"sg":[{"st":0,"d":3000,"name":"Urban Dreams"}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        (
            r#"{"tt":7,"sg":[{"st":0,"d":3000,"name":"text_1","m":{"text":"Urban Dreams"}}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        (
            r#"{"tt":"7","sg":[{"start":0,"end":3000,"metadata":{"text":"Urban Dreams"}}]}"#,
            r#"Title: "Urban Dreams" (0-3s)"#,
        ),
        // Video from its source's file name, under m.
        (
            r#"{"tt":0,"sg":[{"st":0,"d":10000,"m":{"src":"https://cdn/x/city%20timelapse.mp4"}}]}"#,
            "Video: city%20timelapse (0-10s)",
        ),
    ];
    for (track, want) in rows {
        let draft = Draft::parse(&format!(r#"{{"t":[{track}]}}"#)).unwrap();
        assert_eq!(
            draft.timeline().to_string(),
            format!("Timeline (1 track): 1. {want}"),
            "{track}"
        );
    }
}

/// A silent edit adding a title under `m` is reported with its words.
#[test]
fn silent_edit_with_details_under_m() {
    let before = Draft::parse(r#"{"t":[{"tt":0,"sg":[{"n":"clip","st":0,"d":10000}]}]}"#).unwrap();
    let after = Draft::parse(
        r#"{"t":[{"tt":0,"sg":[{"n":"clip","st":0,"d":10000}]},{"tt":1,"sg":[{"st":0,"d":10000,"m":{"name":"Lo-fi","volume":0.35}}]},{"tt":7,"sg":[{"st":0,"d":3000,"m":{"text":"Urban Dreams"}}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        diff(Some(&before), &after).summary(),
        r#"added BGM: Lo-fi (0-10s, 35%); added Title: "Urban Dreams" (0-3s)"#
    );
}

/// Whatever the spelling, the draft goes back byte for byte.
#[test]
fn every_spelling_round_trips_byte_for_byte() {
    let raw = r#"{"t":[{"tt":7,"sg":[{"st":"0","d":3000,"m":{"text":"Urban Dreams","x":1.50}}]}],  "zz":{"k":[1,2]}}"#;
    let body = format!(r#"{{"code":0,"data":{{"state":{{"draft":{raw}}}}}}}"#);
    let state = api::parse_state(&resp(200, &body)).unwrap();
    let draft = state.state.draft.unwrap();
    let req =
        Api::new(Attribution::default()).render_submit(&Secret::new("t"), "render_1", "1", &draft);
    assert!(req
        .json_body()
        .unwrap()
        .contains(&format!(r#""draft":{raw}"#)));
}

fn text(t: &str, partial: bool) -> AgentEvent {
    AgentEvent::Text {
        text: t.into(),
        partial,
    }
}

/// SSE events: ADK camelCase (and snake_case), the typed dialect, and every
/// keep-alive form.
#[test]
fn stream_events_of_every_dialect() {
    let call = |name: &str, args: Value| AgentEvent::ToolCall {
        id: None,
        name: name.into(),
        args,
    };
    let result = |name: &str, result: Value| AgentEvent::ToolResult {
        id: None,
        name: name.into(),
        result,
    };
    let rows: Vec<(&str, Vec<AgentEvent>)> = vec![
        // ADK (observed on the wire from ADK 2.13).
        (
            r#"{"content":{"role":"model","parts":[{"text":"Added."}]},"author":"nemo_agent"}"#,
            vec![text("Added.", false)],
        ),
        (
            r#"{"content":{"parts":[{"text":"Add"}]},"partial":true}"#,
            vec![text("Add", true)],
        ),
        (
            r#"{"content":{"parts":[{"functionCall":{"name":"add_background_music","args":{"volume":0.35}}}]}}"#,
            vec![call("add_background_music", json!({"volume": 0.35}))],
        ),
        (
            r#"{"content":{"role":"user","parts":[{"functionResponse":{"name":"add_background_music","response":{"status":"success"}}}]},"actions":{"stateDelta":{"draft":{}}}}"#,
            vec![
                result("add_background_music", json!({"status": "success"})),
                AgentEvent::StateChanged,
            ],
        ),
        (r#"{"turnComplete":true}"#, vec![AgentEvent::TurnComplete]),
        (
            r#"{"errorCode":"MALFORMED_FUNCTION_CALL","errorMessage":"bad"}"#,
            vec![AgentEvent::ModelError {
                code: "MALFORMED_FUNCTION_CALL".into(),
                message: Some("bad".into()),
            }],
        ),
        // ADK written in snake_case.
        (
            r#"{"content":{"parts":[{"function_call":{"name":"trim_timeline","args":{"target_duration_ms":8000}}}]},"actions":{"state_delta":{"x":1}},"turn_complete":true}"#,
            vec![
                call("trim_timeline", json!({"target_duration_ms": 8000})),
                AgentEvent::StateChanged,
                AgentEvent::TurnComplete,
            ],
        ),
        (
            r#"{"error_code":"SAFETY","error_message":"blocked"}"#,
            vec![AgentEvent::ModelError {
                code: "SAFETY".into(),
                message: Some("blocked".into()),
            }],
        ),
        // The typed dialect (upstream API reference).
        (
            r#"{"type":"text","content":"Added."}"#,
            vec![text("Added.", false)],
        ),
        (
            r#"{"type":"tool_call","name":"add_background_music","args":{"volume":0.35}}"#,
            vec![call("add_background_music", json!({"volume": 0.35}))],
        ),
        (
            r#"{"type":"tool_result","name":"add_background_music","result":{"status":"success"}}"#,
            vec![result("add_background_music", json!({"status": "success"}))],
        ),
        (r#"{"type":"heartbeat"}"#, vec![AgentEvent::KeepAlive]),
        (
            r#"{"type":"error","content":"quota exceeded"}"#,
            vec![AgentEvent::StreamError {
                message: "quota exceeded".into(),
            }],
        ),
        (r#"{"type":"done"}"#, vec![AgentEvent::TurnComplete]),
        // Keep-alives (seed) and in-band errors (adk).
        ("", vec![AgentEvent::KeepAlive]),
        ("heartbeat", vec![AgentEvent::KeepAlive]),
        (
            r#"{"error": "boom", "error_details": {}}"#,
            vec![AgentEvent::StreamError {
                message: "boom".into(),
            }],
        ),
        (
            r#"{"error": "said "no""}"#,
            vec![AgentEvent::StreamError {
                message: r#"said "no""#.into(),
            }],
        ),
    ];
    for (data, want) in rows {
        assert_eq!(adk::classify(data), want, "{data}");
    }
}

/// Two-stage generation shows in tool results, in both event dialects.
#[test]
fn generation_stages_from_tool_results() {
    for data in [
        r#"{"content":{"role":"user","parts":[{"functionResponse":{"name":"generate_video","response":{"status":"success","stage":"raw_video","video_url":"https://cdn/raw.mp4"}}}]}}"#,
        r#"{"type":"tool_result","name":"generate_video","result":{"status":"success","stage":"raw_video","video_url":"https://cdn/raw.mp4"}}"#,
    ] {
        let ev = adk::classify(data).remove(0);
        assert_eq!(
            adk::stage_of(&ev),
            Some(GenerationStage::RawVideoReady {
                url: Some("https://cdn/raw.mp4".into())
            }),
            "{data}"
        );
    }
    let post = adk::classify(r#"{"type":"tool_result","name":"auto_post_production","result":{"status":"success","stage":"post_production"}}"#).remove(0);
    assert_eq!(
        adk::stage_of(&post),
        Some(GenerationStage::PostProductionDone)
    );
    let failed = adk::classify(
        r#"{"type":"tool_result","name":"generate_video","result":{"status":"failed"}}"#,
    )
    .remove(0);
    assert_eq!(adk::stage_of(&failed), None);
    let gen = adk::classify(r#"{"type":"tool_call","name":"generate_video","args":{}}"#).remove(0);
    assert_eq!(adk::step_words(&gen), Some("generating the video…"));
    let bgm = adk::classify(r#"{"type":"tool_call","name":"add_background_music"}"#).remove(0);
    assert_eq!(adk::step_words(&bgm), Some("adding music…"));
}

/// One track of a canonical draft: kind, label, start, duration, volume.
#[derive(Debug, Clone)]
struct Seg {
    tt: u8,
    label: String,
    start: u32,
    dur: u32,
    volume: u8,
}

fn seg() -> impl Strategy<Value = Seg> {
    (
        prop_oneof![Just(0u8), Just(1), Just(7)],
        "[A-Za-z][A-Za-z ]{0,10}[A-Za-z]",
        0u32..20_000,
        1u32..20_000,
        1u8..=100,
    )
        .prop_map(|(tt, label, start, dur, volume)| Seg {
            tt,
            label: label.trim().to_owned(),
            start,
            dur,
            volume,
        })
}

/// One way of spelling a segment: where each detail sits and how it is spelt.
#[derive(Debug, Clone)]
struct Spelling {
    label_in_m: bool,
    label_key: usize,
    timing_in_m: bool,
    numbers_as_text: bool,
    volume_in_m: bool,
    volume_form: usize,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        any::<bool>(),
        0usize..4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..3,
    )
        .prop_map(
            |(label_in_m, label_key, timing_in_m, numbers_as_text, volume_in_m, volume_form)| {
                Spelling {
                    label_in_m,
                    label_key,
                    timing_in_m,
                    numbers_as_text,
                    volume_in_m,
                    volume_form,
                }
            },
        )
}

fn spell(s: &Seg, how: &Spelling) -> Value {
    let mut top = serde_json::Map::new();
    let mut m = serde_json::Map::new();
    let label_key = if s.tt == 7 {
        ["text", "content", "title", "text"][how.label_key]
    } else {
        ["n", "name", "title", "label"][how.label_key]
    };
    let n = |v: u32| {
        if how.numbers_as_text {
            json!(v.to_string())
        } else {
            json!(v)
        }
    };
    (if how.label_in_m { &mut m } else { &mut top }).insert(label_key.into(), json!(s.label));
    let timing = if how.timing_in_m { &mut m } else { &mut top };
    timing.insert("st".into(), n(s.start));
    timing.insert("d".into(), n(s.dur));
    if s.tt == 1 {
        let v = match how.volume_form {
            // 100 % as a fraction is 1: the one value both readings agree on.
            0 => json!(f64::from(s.volume) / 100.0),
            1 if s.volume > 1 => json!(s.volume),
            _ => json!(format!("{}%", s.volume)),
        };
        (if how.volume_in_m { &mut m } else { &mut top })
            .insert(["v", "volume"][how.volume_form % 2].into(), v);
    }
    if !m.is_empty() {
        top.insert("m".into(), Value::Object(m));
    }
    Value::Object(top)
}

fn draft_of(segs: &[Seg], spellings: &[Spelling]) -> Draft {
    let tracks: Vec<Value> = segs
        .iter()
        .zip(spellings)
        .map(|(s, how)| json!({"tt": s.tt, "sg": [spell(s, how)]}))
        .collect();
    Draft::parse(&json!({"t": tracks}).to_string()).unwrap()
}

proptest! {
    /// Any dialect's spelling of one draft gives the same timeline summary
    /// as the simulator's own (`adk`) spelling.
    #[test]
    fn any_spelling_gives_the_same_timeline(
        segs in proptest::collection::vec(seg(), 1..5),
        spellings in proptest::collection::vec(spelling(), 5),
    ) {
        let plain = Spelling { label_in_m: false, label_key: 0, timing_in_m: false, numbers_as_text: false, volume_in_m: false, volume_form: 0 };
        let canonical = draft_of(&segs, &vec![plain; segs.len()]).timeline().to_string();
        let other = draft_of(&segs, &spellings).timeline().to_string();
        prop_assert_eq!(&canonical, &other);
        for s in &segs {
            prop_assert!(canonical.contains(&s.label), "{} lost in {}", s.label, canonical);
        }
    }
}
