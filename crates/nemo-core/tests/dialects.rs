//! Every variant of `../shared/PROTOCOL.md` §10, one table per reader: each
//! row is a spelling the real service may send, with where it comes from.
//! Plus a property: any spelling of one draft gives the same timeline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod support;

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
        (
            "b with success as 1",
            r#"{"success":1,"status":"completed","progress":100,"output":{"url":"https://cdn.example/r/x.mp4"}}"#,
        ),
        (
            "a with success as 1 and code as 0.0",
            r#"{"success":1,"code":"0.0","data":{"status":"completed","progress":100,"outputUrl":"https://cdn.example/r/x.mp4"}}"#,
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
    let c = api::parse_render_status(&resp(200, rows[8].1)).unwrap();
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

/// A JSend envelope (`status` success/ok/fail/error beside a `data`
/// object): `data` is the payload, so the render's own status is read, and
/// `fail`/`error` are refusals with their message.
#[test]
fn a_jsend_envelope_is_an_envelope() {
    let body = r#"{"status":"success","data":{"status":"processing","progress":40}}"#;
    let s = api::parse_render_status(&resp(200, body)).expect("jsend");
    assert_eq!((s.phase, s.progress), (RenderPhase::Processing, Some(40.0)));
    let body = r#"{"status":"ok","data":{"status":"completed","outputUrl":"https://cdn.example/r/x.mp4"}}"#;
    let s = api::parse_render_status(&resp(200, body)).expect("jsend");
    assert_eq!(s.phase, RenderPhase::Completed);
    assert_eq!(s.output_url.as_deref(), Some(URL));
    for (body, message) in [
        (
            r#"{"status":"fail","data":{"message":"Render not found"}}"#,
            "Render not found",
        ),
        (
            r#"{"status":"error","message":"Server is busy","data":{}}"#,
            "Server is busy",
        ),
    ] {
        match api::parse_render_status(&resp(200, body)) {
            Err(ResponseError::Api(e)) => assert_eq!(e.message, message, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // An envelope with metadata of its own beside (a request id, a time):
    // the status under `data` is the render's.
    for (body, phase) in [
        (
            r#"{"status":"success","requestId":"r-1","data":{"status":"processing","progress":40}}"#,
            RenderPhase::Processing,
        ),
        (
            r#"{"status":"ok","timestamp":1733000000,"traceId":"t","data":{"state":"queued"}}"#,
            RenderPhase::Pending,
        ),
        // The HTTP status repeated as the envelope's `status`.
        (
            r#"{"status":200,"message":"success","data":{"status":"failed","progress":40,"error":"out of memory"}}"#,
            RenderPhase::Failed,
        ),
        (
            r#"{"status":"200","data":{"status":"rendering","progress":10}}"#,
            RenderPhase::Processing,
        ),
    ] {
        let s = api::parse_render_status(&resp(200, body)).expect(body);
        assert_eq!(s.phase, phase, "{body}");
    }
    // A bare JSend error, with no `data` or `data: null` (a gateway's "upstream
    // request timeout"), or an error status repeated in the body: the call
    // failed, not the render.
    for (body, message) in [
        (
            r#"{"status":"error","message":"upstream request timeout"}"#,
            "upstream request timeout",
        ),
        (r#"{"status":"fail","data":null}"#, "the request failed"),
        (
            r#"{"status":503,"message":"Service Unavailable"}"#,
            "Service Unavailable",
        ),
    ] {
        match api::parse_render_status(&resp(200, body)) {
            Err(ResponseError::Api(e)) => assert_eq!(e.message, message, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // Beside a `data` with a status, anything but an envelope's metadata
    // makes the object an answer of its own: nothing of it is dropped.
    let accepted: api::RenderAccepted = api::parse(&resp(
        200,
        r#"{"status":"success","render_id":"srv-9","data":{"status":"queued"}}"#,
    ))
    .unwrap();
    assert_eq!(accepted.id.as_deref(), Some("srv-9"));
    let credits: api::Credits = api::parse(&resp(
        200,
        r#"{"status":"success","available":12,"frozen":0,"total":12,"data":{"status":"active"}}"#,
    ))
    .unwrap();
    assert_eq!(credits.available, 12.0);
    // A `data` whose `state` is an object (a session's) holds no status.
    let up: api::Uploaded = api::parse(&resp(
        200,
        r#"{"status":"success","data":{"state":{"draft":null}},"files":[{"filename":"a.mp4","file_type":"video","cdn_url":"https://cdn.example/a.mp4"}]}"#,
    ))
    .unwrap();
    assert_eq!(up.files.len(), 1);
    // A 5xx a body repeats, or JSend's `error`, is the server's own failure
    // (the request may have taken effect); JSend's `fail` or a 4xx in the
    // body is a refusal. The HTTP status stays the one that came.
    for (body, server_error) in [
        (r#"{"status":504,"message":"gateway timeout"}"#, true),
        (
            r#"{"status":"error","message":"upstream request timeout"}"#,
            true,
        ),
        (r#"{"status":"fail","message":"bad id"}"#, false),
        (r#"{"status":404,"message":"Not Found"}"#, false),
    ] {
        match api::parse_render_status(&resp(200, body)) {
            Err(ResponseError::Api(e)) => {
                assert_eq!((e.status, e.server_error), (200, server_error), "{body}")
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    // A render status whose own `data` is no object stays a render status.
    let body =
        r#"{"status":"completed","data":"x","output":{"url":"https://cdn.example/r/x.mp4"}}"#;
    let s = api::parse_render_status(&resp(200, body)).expect("shape b");
    assert_eq!(s.phase, RenderPhase::Completed);
    // A render of its own whose status is `success`, with `data` of its own
    // beside its other fields, is not an envelope.
    let body = r#"{"id":"r1","status":"success","url":"https://cdn.example/r/x.mp4","data":{"template":"t"}}"#;
    let s = api::parse_render_status(&resp(200, body)).expect("a render");
    assert_eq!(s.phase, RenderPhase::Completed);
    assert_eq!(s.output_url.as_deref(), Some(URL));
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
        // ADK's api_server: an unknown session is a 404 in its words, its
        // way of saying 1002.
        (
            404,
            r#"{"detail":"Session not found"}"#,
            Some(1002),
            "Session not found",
        ),
        (
            404,
            r#"{"detail":"Session not found: 5529798706024415232"}"#,
            Some(1002),
            "Session not found: 5529798706024415232",
        ),
        // A 404 about something else is no lost session.
        (404, r#"{"detail":"Not Found"}"#, None, "Not Found"),
        (
            404,
            r#"{"detail":"Render not found"}"#,
            None,
            "Render not found",
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

/// An upload answer that names none of the files sent is a refusal, not
/// a success with nothing in it; a code that is a word (not a success
/// spelling) is an error code, kept in the message (hostile review).
#[test]
fn upload_refusals_that_look_like_success() {
    for body in [
        r#"{"code":0,"message":"upload failed"}"#,
        r#"{"code":0,"data":{"files":[]}}"#,
        r#"{"success":true,"files":[]}"#,
        r#"{"code":0,"data":null}"#,
        r#"[]"#,
    ] {
        match api::parse::<api::Uploaded>(&resp(200, body)) {
            Err(ResponseError::Decode { message, .. }) => {
                assert!(
                    message.contains("accepted none of the files"),
                    "{body}: {message}"
                )
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    for (body, words) in [
        (r#"{"code":"E_UPLOAD"}"#, &["E_UPLOAD"][..]),
        (
            r#"{"code":"E_UPLOAD","message":"file too large"}"#,
            &["E_UPLOAD", "file too large"][..],
        ),
        (
            r#"{"errorCode":"QUOTA","msg":"no space","data":{"files":[{"filename":"a.mp4"}]}}"#,
            &["QUOTA", "no space"][..],
        ),
    ] {
        match api::parse::<api::Uploaded>(&resp(200, body)) {
            Err(ResponseError::Api(e)) => {
                assert_eq!(e.code, None, "{body}");
                for w in words {
                    assert!(e.message.contains(w), "{body}: {}", e.message);
                }
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    // Success spellings of a code stay successes.
    for code in [r#""0""#, r#""ok""#, r#""OK""#, r#""success""#, r#""200""#] {
        let body = format!(
            r#"{{"code":{code},"data":{{"files":[{{"filename":"a.mp4","file_type":"video","cdn_url":"https://cdn/a.mp4"}}]}}}}"#
        );
        let u: api::Uploaded =
            api::parse(&resp(200, &body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(u.files.len(), 1, "{body}");
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
            // The timeline shows a label on one line, runs of spaces as one.
            let shown = s.label.split_whitespace().collect::<Vec<_>>().join(" ");
            prop_assert!(canonical.contains(&shown), "{} lost in {}", s.label, canonical);
        }
    }
}

/// The render's URL under every name it may go by (inferred: each seen in
/// one text or another), at the top level, under `data`, or in `output`.
#[test]
fn render_url_under_every_name() {
    let rows: &[(&str, &str)] = &[
        (
            "outputUrl",
            r#"{"status":"completed","outputUrl":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "output_url",
            r#"{"status":"completed","output_url":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "url",
            r#"{"status":"completed","url":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "downloadUrl",
            r#"{"status":"completed","downloadUrl":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "download_url",
            r#"{"status":"completed","download_url":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "videoUrl",
            r#"{"status":"completed","videoUrl":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "video_url",
            r#"{"status":"completed","video_url":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "output.url",
            r#"{"status":"completed","output":{"url":"https://cdn.example/r/x.mp4"}}"#,
        ),
        (
            "output.downloadUrl",
            r#"{"status":"completed","output":{"downloadUrl":"https://cdn.example/r/x.mp4"}}"#,
        ),
        (
            "output as the URL",
            r#"{"status":"completed","output":"https://cdn.example/r/x.mp4"}"#,
        ),
        (
            "data.output_url",
            r#"{"success":true,"data":{"status":"completed","output_url":"https://cdn.example/r/x.mp4"}}"#,
        ),
        (
            "data.output.url",
            r#"{"code":0,"data":{"status":"completed","output":{"url":"https://cdn.example/r/x.mp4"}}}"#,
        ),
    ];
    for (name, body) in rows {
        let s =
            api::parse_render_status(&resp(200, body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.phase, RenderPhase::Completed, "{name}");
        assert_eq!(s.output_url.as_deref(), Some(URL), "{name}");
    }
}

/// When an answer carries several URLs, the render's output is the one
/// named for it: `output`'s, then the specific names (`output_url`,
/// `video_url`, `download_url`, …), on the object or under `data` before
/// `m`/`metadata`/`meta`; a plain `url` last (it may be a thumbnail's).
#[test]
fn render_url_when_several_are_given() {
    const V: &str = "https://cdn/v.mp4";
    let rows: &[(&str, &str)] = &[
        (
            "metadata.url and output.url",
            r#"{"status":"completed","metadata":{"url":"https://cdn/thumb.jpg"},"output":{"url":"https://cdn/v.mp4"}}"#,
        ),
        (
            "m.url and output_url",
            r#"{"status":"completed","m":{"url":"https://cdn/thumb.jpg"},"output_url":"https://cdn/v.mp4"}"#,
        ),
        (
            "url and output.url",
            r#"{"status":"completed","url":"https://cdn/thumb.jpg","output":{"url":"https://cdn/v.mp4"}}"#,
        ),
        (
            "url and video_url",
            r#"{"status":"completed","url":"https://cdn/thumb.jpg","video_url":"https://cdn/v.mp4"}"#,
        ),
        (
            "url and download_url",
            r#"{"status":"completed","url":"https://cdn/thumb.jpg","download_url":"https://cdn/v.mp4"}"#,
        ),
        (
            "url and meta.videoUrl",
            r#"{"status":"completed","url":"https://cdn/thumb.jpg","meta":{"videoUrl":"https://cdn/v.mp4"}}"#,
        ),
        (
            "data.metadata.url and data.output.url",
            r#"{"success":true,"data":{"status":"completed","metadata":{"url":"https://cdn/thumb.jpg"},"output":{"url":"https://cdn/v.mp4"}}}"#,
        ),
        (
            "output.url and output.thumbnail",
            r#"{"status":"completed","output":{"thumbnail":"https://cdn/thumb.jpg","url":"https://cdn/v.mp4"}}"#,
        ),
        (
            "metadata.url alone is still a URL",
            r#"{"status":"completed","metadata":{"url":"https://cdn/v.mp4"}}"#,
        ),
        (
            "output.url not a URL, video_url one",
            r#"{"status":"completed","output":{"url":"pending"},"video_url":"https://cdn/v.mp4"}"#,
        ),
        (
            "output_url relative, url absolute",
            r#"{"status":"completed","output_url":"/renders/v.mp4","url":"https://cdn/v.mp4"}"#,
        ),
    ];
    for (name, body) in rows {
        let s =
            api::parse_render_status(&resp(200, body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.output_url.as_deref(), Some(V), "{name}");
    }
    // A completed render whose only "URL" cannot be downloaded has none:
    // the video comes from the API's download endpoint instead.
    for body in [
        r#"{"status":"completed","output":{"url":"pending"}}"#,
        r#"{"status":"completed","url":"file:///etc/passwd"}"#,
        r#"{"status":"completed","output":"s3://bucket/v.mp4"}"#,
    ] {
        let s = api::parse_render_status(&resp(200, body)).unwrap();
        assert_eq!(
            (s.phase, s.output_url),
            (RenderPhase::Completed, None),
            "{body}"
        );
    }
}

/// Render status words, whatever their case or separators. Unknown words
/// never fail the export: with an output URL the render is done, without
/// one it is still working.
#[test]
fn render_status_words() {
    use RenderPhase::*;
    let rows: &[(&str, bool, RenderPhase)] = &[
        // seeds, upstream
        ("pending", false, Pending),
        ("processing", false, Processing),
        ("completed", true, Completed),
        ("failed", false, Failed),
        // inferred
        ("queued", false, Pending),
        ("QUEUED", false, Pending),
        ("waiting", false, Pending),
        ("submitted", false, Pending),
        ("rendering", false, Processing),
        ("running", false, Processing),
        ("in_progress", false, Processing),
        ("IN_PROGRESS", false, Processing),
        ("in progress", false, Processing),
        ("in-progress", false, Processing),
        ("InProgress", false, Processing),
        ("started", false, Processing),
        ("succeeded", true, Completed),
        ("Success", true, Completed),
        ("done", true, Completed),
        ("finished", true, Completed),
        ("error", false, Failed),
        ("failure", false, Failed),
        ("timeout", false, Failed),
        ("timed_out", false, Failed),
        ("Timed Out", false, Failed),
        ("expired", false, Failed),
        ("aborted", false, Failed),
        ("rejected", false, Failed),
        ("cancelled", false, Cancelled),
        ("canceled", false, Cancelled),
        ("CANCELED", false, Cancelled),
        ("user_cancelled", false, Cancelled),
        ("ready", true, Completed),
        // in-progress words, even beside a URL (hostile review)
        ("planned", true, Processing),
        ("uploading", true, Processing),
        ("encoding", true, Processing),
        ("saving", true, Processing),
        ("transcoding", true, Processing),
        ("initializing", true, Processing),
        ("in_queue", true, Pending),
        ("not_started", true, Pending),
        // negated done words, even beside a URL (hostile review): no
        // download, and no failure either (no failure stem): they wait
        ("not_completed", true, Pending),
        ("NotCompleted", true, Pending),
        ("incomplete", true, Pending),
        ("unfinished", true, Pending),
        ("unsuccessful", true, Failed),
        ("stopped", true, Failed),
        ("terminated", true, Failed),
        ("killed", true, Failed),
        ("invalid", true, Failed),
        ("non_compliant", true, Processing),
        ("denied", true, Failed),
        // unknown words: without a URL still working
        ("exploded", false, Processing),
        ("post-processing", false, Processing),
        // … beside a URL but with the progress at 50: still working
        ("uploaded", true, Processing),
        ("mystery", true, Processing),
        // words that only begin like a negation are no failure (review)
        ("notified", true, Processing),
        ("notifying", true, Processing),
        ("none", true, Processing),
        ("unassigned", true, Processing),
        ("unprocessed", true, Pending),
        ("unclaimed", true, Processing),
        ("unpacking", true, Processing),
        ("unlisted", true, Processing),
        ("unpublished", true, Processing),
        ("uncompressed", true, Processing),
        ("inactive", true, Processing),
        // negated done words wait: no failure stem, nothing to forget
        ("not_done", true, Pending),
        ("uncompleted", true, Pending),
        // done with errors: completed with a video, failed without one
        ("completed_with_errors", true, Completed),
        ("COMPLETED_WITH_ERRORS", false, Failed),
        ("finished-with-errors", true, Completed),
        // done words naming the render or the processing (review)
        ("rendered", false, Completed),
        ("render_complete", false, Completed),
        ("RENDER_SUCCESS", false, Completed),
        ("render-done", false, Completed),
        ("processed", false, Completed),
        ("render_failed", true, Failed),
        ("abandoned", false, Processing),
    ];
    for (word, with_url, want) in rows {
        let mut v = json!({"status": word, "progress": 50});
        if *with_url {
            v["output"] = json!({"url": URL});
        }
        let s = api::parse_render_status(&resp(200, &v.to_string()))
            .unwrap_or_else(|e| panic!("{word}: {e}"));
        assert_eq!(&s.phase, want, "{word}");
    }
    // The review's repro: not completed at 40 % is no download.
    let s = api::parse_render_status(&resp(
        200,
        r#"{"status":"not_completed","progress":40,"output":{"url":"https://cdn/x.mp4"}}"#,
    ))
    .unwrap();
    assert_eq!(s.phase, Pending);
    // An unknown word is done only with the progress absent or at 100 and
    // an absolute http(s) URL.
    let unknown: &[(Value, Option<Value>, RenderPhase)] = &[
        (json!("https://cdn/x.mp4"), None, Completed),
        (json!("https://cdn/x.mp4"), Some(json!(100)), Completed),
        (
            json!("http://cdn.example/x.mp4"),
            Some(json!("100%")),
            Completed,
        ),
        (json!("https://cdn/x.mp4"), Some(json!(99)), Processing),
        (json!("pending"), None, Processing),
        (json!("/renders/x.mp4"), None, Processing),
        (json!("ftp://cdn/x.mp4"), None, Processing),
        (json!("https://"), None, Processing),
        (json!("https://cdn/x .mp4"), None, Processing),
    ];
    for (url, progress, want) in unknown {
        let mut v = json!({"status": "uploaded", "output": {"url": url}});
        if let Some(p) = progress {
            v["progress"] = p.clone();
        }
        let s = api::parse_render_status(&resp(200, &v.to_string())).unwrap();
        assert_eq!(&s.phase, want, "{v}");
    }
    // A failure word wins over a URL; `error` beside it is the reason.
    let s = api::parse_render_status(&resp(
        200,
        r#"{"status":"Timed-Out","url":"https://cdn.example/r/x.mp4","message":"took too long"}"#,
    ))
    .unwrap();
    assert_eq!(
        (s.phase, s.error.as_deref()),
        (RenderPhase::Failed, Some("took too long"))
    );
}

/// Progress as a number, a numeric string, `"45%"`, or a fraction below 1
/// that is not a whole number (`0.45` → 45). A whole 1 is 1 %.
#[test]
fn render_progress_in_every_spelling() {
    let rows: &[(Value, Option<f64>)] = &[
        (json!(45), Some(45.0)),
        (json!("45"), Some(45.0)),
        (json!("45%"), Some(45.0)),
        (json!(" 45 % "), Some(45.0)),
        (json!(45.5), Some(45.5)),
        (json!(0.45), Some(45.0)),
        (json!("0.45"), Some(45.0)),
        (json!("0.5%"), Some(0.5)),
        (json!(1), Some(1.0)),
        (json!(1.0), Some(1.0)),
        (json!("1"), Some(1.0)),
        (json!(0), Some(0.0)),
        (json!(100), Some(100.0)),
        (json!(250), Some(100.0)),
        (json!(-3), Some(0.0)),
        (json!("soon"), None),
    ];
    for (p, want) in rows {
        let body = json!({"status": "processing", "progress": p}).to_string();
        let s = api::parse_render_status(&resp(200, &body)).unwrap();
        assert_eq!(s.progress, *want, "{p}");
    }
    let body = r#"{"status":"processing","percent":"0.25"}"#;
    assert_eq!(
        api::parse_render_status(&resp(200, body)).unwrap().progress,
        Some(25.0)
    );
}

/// `code:0` without `data`: the envelope's keys go, the object stays — for
/// every reader (upstream §3 puts `code` on REST answers; a render answer
/// with it and no `data` is inferred).
#[test]
fn code_zero_without_data() {
    let body = r#"{"code":0,"message":"ok","status":"completed","output":{"url":"https://cdn.example/r/x.mp4"}}"#;
    let s = api::parse_render_status(&resp(200, body)).expect("code 0 without data");
    assert_eq!(s.phase, RenderPhase::Completed);
    assert_eq!(s.output_url.as_deref(), Some(URL));
    let v = api::payload(&resp(
        200,
        r#"{"code":"0","msg":"ok","success":true,"x":1}"#,
    ))
    .unwrap();
    assert_eq!(v, json!({"x": 1}));
    let c: api::Credits = api::parse(&resp(
        200,
        r#"{"code":0,"message":"ok","available":90,"frozen":10}"#,
    ))
    .unwrap();
    assert_eq!(c.total, 100.0);
    let a: api::RenderAccepted = api::parse(&resp(
        200,
        r#"{"code":0,"message":"ok","data":null,"id":"render_1","status":"pending"}"#,
    ))
    .unwrap();
    assert_eq!(a.id.as_deref(), Some("render_1"));
}

/// The render submission's answer: under `data`, at the top level beside
/// `success`, the id as a string or a number.
#[test]
fn render_submission_answers() {
    let rows: &[(&str, &str)] = &[
        // upstream §4.7
        (
            r#"{"success":true,"data":{"id":"render_1","status":"pending","progress":5}}"#,
            "render_1",
        ),
        // inferred: the same fields beside `success`
        (
            r#"{"success":true,"id":"render_1","status":"pending","progress":5}"#,
            "render_1",
        ),
        (
            r#"{"success":"true","id":"render_1","status":"pending","progress":"5"}"#,
            "render_1",
        ),
        (
            r#"{"success":true,"data":{"id":5529798706024415232,"status":"pending","progress":5}}"#,
            "5529798706024415232",
        ),
        (
            r#"{"success":true,"taskId":7001,"status":"queued","progress":5}"#,
            "7001",
        ),
        (
            r#"{"code":0,"data":{"render_id":"render_1","status":"pending","progress":5}}"#,
            "render_1",
        ),
    ];
    for (body, id) in rows {
        let a: api::RenderAccepted =
            api::parse(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(a.id.as_deref(), Some(*id), "{body}");
        assert_eq!(a.progress, Some(5.0), "{body}");
    }
}

/// Every reader sees an error in each envelope: codes ≥ 1000 on HTTP 200
/// (upstream §3), `errorCode`/`error_code` for `code`, codes as strings,
/// `success` false in any spelling, `data:null` beside the message.
#[test]
fn every_reader_sees_errors_on_http_200() {
    let rows: &[(&str, Option<i64>, &str)] = &[
        (
            r#"{"code":1001,"message":"Token expired","data":null}"#,
            Some(1001),
            "Token expired",
        ),
        (
            r#"{"code":"1002","msg":"Session not found"}"#,
            Some(1002),
            "Session not found",
        ),
        (
            r#"{"errorCode":2001,"message":"Insufficient credits"}"#,
            Some(2001),
            "Insufficient credits",
        ),
        (
            r#"{"error_code":"1001","error":"Token expired"}"#,
            Some(1001),
            "Token expired",
        ),
        (
            r#"{"success":false,"errorCode":"2001","error":"Insufficient credits"}"#,
            Some(2001),
            "Insufficient credits",
        ),
        (
            r#"{"success":"false","error":"duplicate id"}"#,
            None,
            "duplicate id",
        ),
        (
            r#"{"success":0,"message":"duplicate id"}"#,
            None,
            "duplicate id",
        ),
        (
            r#"{"success":false,"data":null,"message":"render not found"}"#,
            None,
            "render not found",
        ),
        (
            r#"{"success":false,"error":{"code":1002,"message":"Session not found"}}"#,
            Some(1002),
            "Session not found",
        ),
    ];
    fn check<T: std::fmt::Debug>(
        name: &str,
        body: &str,
        got: Result<T, ResponseError>,
        code: Option<i64>,
        message: &str,
    ) {
        match got {
            Err(ResponseError::Api(e)) => {
                assert_eq!((e.status, e.code), (200, code), "{name}: {body}");
                assert_eq!(e.message, message, "{name}: {body}");
            }
            other => panic!("{name}: {body}: {other:?}"),
        }
    }
    for (body, code, message) in rows {
        let r = resp(200, body);
        check("payload", body, api::payload(&r), *code, message);
        check(
            "token",
            body,
            api::parse::<api::AnonymousToken>(&r),
            *code,
            message,
        );
        check(
            "session",
            body,
            api::parse::<api::SessionCreated>(&r),
            *code,
            message,
        );
        check(
            "upload",
            body,
            api::parse::<api::Uploaded>(&r),
            *code,
            message,
        );
        check(
            "credits",
            body,
            api::parse::<api::Credits>(&r),
            *code,
            message,
        );
        check(
            "submit",
            body,
            api::parse::<api::RenderAccepted>(&r),
            *code,
            message,
        );
        check(
            "claim",
            body,
            api::parse::<api::ClaimToken>(&r),
            *code,
            message,
        );
        check("state", body, api::parse_state(&r), *code, message);
        check(
            "render status",
            body,
            api::parse_render_status(&r),
            *code,
            message,
        );
    }
}

/// Ids as numbers or strings everywhere: session, task, user, render.
#[test]
fn ids_as_numbers_everywhere() {
    let s: api::SessionCreated = api::parse(&resp(
        200,
        r#"{"code":0,"data":{"task_id":7001,"session_id":5529798706024415232,"user_id":42}}"#,
    ))
    .unwrap();
    assert_eq!(
        (
            s.task_id.as_deref(),
            s.session_id.as_str(),
            s.user_id.as_deref()
        ),
        (Some("7001"), "5529798706024415232", Some("42"))
    );
    for body in [
        r#"{"code":0,"data":{"session_id":5529798706024415232,"task_id":7001,"task_name":"project","state":{}}}"#,
        r#"{"code":0,"data":{"sid":"5529798706024415232","taskId":"7001","taskName":"project","state":{}}}"#,
        r#"{"code":0,"session_id":"5529798706024415232","task_id":7001,"task_name":"project","state":{}}"#,
        r#"{"success":true,"data":{"sessionId":5529798706024415232,"taskId":7001,"taskName":"project"}}"#,
    ] {
        let st = api::parse_state(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(
            st.session_id.as_deref(),
            Some("5529798706024415232"),
            "{body}"
        );
        assert_eq!(st.task_id.as_deref(), Some("7001"), "{body}");
        assert_eq!(st.task_name.as_deref(), Some("project"), "{body}");
    }
}

/// The upload's answer as a bare list of files: under `data`, or the whole
/// body (inferred).
#[test]
fn upload_answer_as_a_bare_list() {
    for body in [
        r#"{"code":0,"data":[{"filename":"a.mp4","file_type":"video","cdn_url":"https://cdn/a.mp4","duration":"10.5"}]}"#,
        r#"[{"fileName":"a.mp4","fileType":"video","cdnUrl":"https://cdn/a.mp4","duration":10.5}]"#,
        r#"{"success":true,"data":{"items":[{"name":"a.mp4","type":"video","url":"https://cdn/a.mp4","duration":10.5}]}}"#,
        // JSend, its data a list.
        r#"{"status":"success","data":[{"filename":"a.mp4","file_type":"video","cdn_url":"https://cdn/a.mp4","duration":10.5}]}"#,
    ] {
        let u: api::Uploaded =
            api::parse(&resp(200, body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(u.files.len(), 1, "{body}");
        let f = &u.files[0];
        assert_eq!(
            (
                f.filename.as_str(),
                f.file_type.as_str(),
                f.cdn_url.as_str(),
                f.duration
            ),
            ("a.mp4", "video", "https://cdn/a.mp4", Some(10.5)),
            "{body}"
        );
    }
}

/// The draft's own keys (`t`, `sg`, `d`, `m.width/height/title`) through
/// the same lookup: numbers as strings, type as a string.
#[test]
fn draft_level_keys_in_every_spelling() {
    let rows: &[&str] = &[
        r#"{"t":[{"tt":0,"sg":[{"n":"clip","st":0,"d":10000}]}],"d":10000,"m":{"width":1920,"height":1080,"title":"City"}}"#,
        r#"{"t":[{"tt":"0","sg":[{"n":"clip","st":"0","d":"10000"}]}],"d":"10000","m":{"width":"1920","height":"1080","title":"City"}}"#,
        r#"{"t":[{"tt":0,"sg":[{"n":"clip","st":0,"d":10000}]}],"m":{"d":10000,"w":1920,"h":1080,"title":"City"}}"#,
        r#"{"t":[{"tt":0,"sg":[{"n":"clip","st":0,"d":10000}]}],"duration_ms":10000,"metadata":{"width":1920,"height":1080,"title":"City"}}"#,
    ];
    for json in rows {
        let d = Draft::parse(json).unwrap();
        let t = d.timeline();
        assert_eq!(t.duration_ms, Some(10000.0), "{json}");
        assert_eq!(t.resolution, Some((1920, 1080)), "{json}");
        assert_eq!(t.title.as_deref(), Some("City"), "{json}");
        assert_eq!(
            t.to_string(),
            "Timeline (1 track): 1. Video: clip (0-10s)",
            "{json}"
        );
        assert!(d.is_ready_for_export(), "{json}");
    }
}

/// A server that names the render itself (`id` beside `success`, inferred)
/// is followed under its name, but the video goes to the file named after
/// the id the client chose: the one it checked before spending.
#[test]
fn a_server_renamed_render_saves_under_the_client_chosen_name() {
    use nemo_core::machine::{Command, Config, Event, ExportOptions};
    use nemo_core::wire::Endpoint;
    use support::{FakeRender, Harness, Reply};

    let mut h = Harness::new(Config::default());
    let part = api::file_part("/media/city.mp4", 1_000_000).unwrap();
    assert!(h.run(Command::Upload {
        files: vec![part],
        urls: vec![]
    }));
    h.backend.renders.insert(
        "srv_9".into(),
        FakeRender {
            started: h.now,
            duration: std::time::Duration::from_secs(5),
            fail: false,
        },
    );
    h.backend.fault(
        Endpoint::RenderSubmit,
        Reply::Response(Response::json(
            200,
            &json!({"success":true,"id":"srv_9","status":"pending","progress":5}),
        )),
    );
    assert!(
        h.run(Command::Export(ExportOptions {
            render_id: Some("render_client_1".into()),
            download: true,
            ..ExportOptions::default()
        })),
        "{}",
        h.transcript
    );
    assert!(
        h.transcript.contains("/api/render/proxy/lambda/srv_9"),
        "followed under the server's name: {}",
        h.transcript
    );
    let saved: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Downloaded { id, path, .. } => Some((id.clone(), path.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        saved,
        vec![(
            "srv_9".to_owned(),
            std::path::PathBuf::from("render_client_1.mp4")
        )],
        "{}",
        h.transcript
    );
    let journaled: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RenderStarting { id, out, .. } => Some((id.clone(), out.clone())),
            _ => None,
        })
        .collect();
    let client_file = Some(std::path::PathBuf::from("render_client_1.mp4"));
    assert_eq!(
        journaled,
        vec![
            ("render_client_1".to_owned(), client_file.clone()),
            ("srv_9".to_owned(), client_file)
        ]
    );
}

/// A 404 to a status poll in the API's envelope, whatever the spelling of
/// `success` or of the code's name, makes the render unknown (after the
/// usual confirmations); a gateway's bare `{"message"}` never does.
#[test]
fn a_render_unknown_to_the_api_in_every_envelope() {
    use nemo_core::error::ErrorKind;
    use nemo_core::machine::{Command, Config, Event, ExportOptions, RenderOutcome};
    use nemo_core::wire::Endpoint;
    use support::{Harness, Reply};

    let rows: &[(Value, bool)] = &[
        (json!({"success": false, "error": "render not found"}), true),
        (
            json!({"success": "false", "error": "render not found"}),
            true,
        ),
        (json!({"success": 0, "error": "render not found"}), true),
        (
            json!({"errorCode": "1002", "message": "render not found"}),
            true,
        ),
        (json!({"message": "Not Found"}), false),
    ];
    for (body, forgotten) in rows {
        let mut h = Harness::new(Config::default());
        for _ in 0..2_000 {
            h.backend.fault(
                Endpoint::RenderStatus,
                Reply::Response(Response::json(404, body)),
            );
        }
        assert!(!h.run(Command::ResumeRender {
            id: "render_1".into(),
            options: ExportOptions::default(),
        }));
        let ended = h.events.iter().any(|e| {
            matches!(
                e,
                Event::RenderEnded {
                    outcome: RenderOutcome::Failed,
                    ..
                }
            )
        });
        assert_eq!(ended, *forgotten, "{body}");
        let kind = h.events.iter().rev().find_map(|e| match e {
            Event::Finished { result: Err(e), .. } => Some(e.kind),
            _ => None,
        });
        let want = if *forgotten {
            ErrorKind::RenderFailed
        } else {
            ErrorKind::Unconfirmed
        };
        assert_eq!(kind, Some(want), "{body}");
    }
}
