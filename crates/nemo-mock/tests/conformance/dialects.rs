//! Each dialect of `../shared/PROTOCOL.md` §10, spoken in-process in virtual
//! time: the same session reads the same through `nemo-core`, and the raw
//! answers are spelt the dialect's way.

use std::time::Duration;

use nemo_core::api::{self, Api, Attribution, RenderPhase};
use nemo_core::secret::Secret;
use nemo_core::time::Clock;
use nemo_core::transport::Transport;
use nemo_core::wire::{Request, Response};
use nemo_mock::{Dialect, InProcess, MockConfig, RenderShape, TokioClock};
use serde_json::Value;

async fn stream(mock: &InProcess, req: &Request) -> String {
    let mut s = mock.open_stream(req).await.unwrap();
    let mut body = Vec::new();
    for _ in 0..100_000 {
        match s.body.next_chunk().await {
            Some(Ok(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    String::from_utf8(body).unwrap()
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

struct Run {
    mock: InProcess,
    api: Api,
    token: Secret,
    sid: String,
    session_answer: Response,
}

async fn session(dialect: Dialect, seed: u64) -> Run {
    session_with(MockConfig {
        dialect,
        seed,
        ..MockConfig::fast()
    })
    .await
}

async fn session_with(config: MockConfig) -> Run {
    let mock = InProcess::new(config).unwrap();
    // Asking for text pieces: the `adk` dialect sends them only then.
    let api = Api::new(Attribution::default()).streaming(true);
    let grant: api::AnonymousToken =
        api::parse(&mock.send(&api.anonymous_token("cid"), None).await.unwrap()).unwrap();
    let session_answer = mock
        .send(&api.create_session(&grant.token, "en"), None)
        .await
        .unwrap();
    let created: api::SessionCreated = api::parse(&session_answer).unwrap();
    Run {
        mock,
        api,
        token: grant.token,
        sid: created.session_id,
        session_answer,
    }
}

/// An edit, the timeline, a render to completion: what every dialect must
/// carry. Returns the stream, the state answer and the last render status.
async fn edit_and_render(run: &Run) -> (String, Response, Response) {
    let (mock, api, token, sid) = (&run.mock, &run.api, &run.token, run.sid.as_str());
    let uploaded = mock
        .send(
            &api.upload_urls(
                token,
                sid,
                &["https://example.com/city-timelapse.mp4".into()],
            ),
            None,
        )
        .await
        .unwrap();
    let files = api::parse::<api::Uploaded>(&uploaded).unwrap().files;
    assert!(files[0].duration.is_some_and(|d| d > 0.0), "{files:?}");
    let events = stream(
        mock,
        &api.run_sse(
            token,
            sid,
            "add lo-fi music at 35% and the title \"Urban Dreams\"",
        ),
    )
    .await;
    let state = mock.send(&api.state(token, sid), None).await.unwrap();
    let draft = api::parse_state(&state).unwrap().state.draft.unwrap();
    let summary = draft.timeline().to_string();
    assert!(summary.contains("BGM: Lo-fi (0-"), "{summary}");
    assert!(summary.contains("35%)"), "{summary}");
    assert!(
        summary.contains("Title: \"Urban Dreams\" (0-3s)"),
        "{summary}"
    );
    let accepted = mock
        .send(&api.render_submit(token, "render_1", sid, &draft), None)
        .await
        .unwrap();
    api::parse::<api::RenderAccepted>(&accepted).unwrap();
    let clock = TokioClock::new();
    for _ in 0..200 {
        clock
            .sleep_until(clock.now() + Duration::from_secs(2))
            .await;
        let r = mock
            .send(&api.render_status(token, "render_1"), None)
            .await
            .unwrap();
        let s = api::parse_render_status(&r).unwrap();
        if s.phase == RenderPhase::Completed {
            assert!(s.output_url.is_some());
            return (events, state, r);
        }
    }
    panic!("the render never completed");
}

#[tokio::test(start_paused = true)]
async fn adk_is_what_the_simulator_always_spoke() {
    let run = session(Dialect::Adk, 1).await;
    let (events, state, status) = edit_and_render(&run).await;
    assert!(events.contains("\"partial\":true"), "{events}");
    assert!(events.contains("\"functionCall\""), "{events}");
    assert!(!events.contains("\"type\":\"text\""), "{events}");
    assert!(json(&run.session_answer)["data"]["session_id"].is_string());
    assert!(!String::from_utf8_lossy(&state.body).contains("\"m\":{\"name\""));
    assert!(json(&status)["data"]["outputUrl"].is_string());
    // run_sse refuses a lost session with a matching HTTP status.
    let r = run
        .mock
        .open_stream(&run.api.run_sse(&run.token, "1", "hi"))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}

#[tokio::test(start_paused = true)]
async fn meta_puts_segment_details_under_m_and_success_on_top() {
    let run = session(Dialect::Meta, 1).await;
    let (events, state, status) = edit_and_render(&run).await;
    assert!(
        !events.contains("\"partial\":true"),
        "whole texts only: {events}"
    );
    assert!(events.contains("\"functionCall\""), "{events}");
    assert!(
        events.contains("\"m\":{\"name\":\"Lo-fi\""),
        "state delta spelt meta: {events}"
    );
    assert!(json(&run.session_answer)["data"]["session_id"].is_u64());
    let draft = &json(&state)["data"]["state"]["draft"];
    let bgm = draft["t"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tt"] == 1)
        .unwrap();
    assert_eq!(bgm["sg"][0]["m"]["name"], "Lo-fi");
    assert_eq!(
        bgm["sg"][0]["m"]["volume"], 35,
        "the first volume as a percent"
    );
    assert!(bgm["sg"][0].get("n").is_none());
    // Shape a keeps its envelope around `data`, the progress as a string.
    let s = json(&status);
    assert_eq!(s["success"], true);
    assert!(s["data"]["progress"].is_string(), "{s}");
    assert!(s["data"]["outputUrl"].is_string(), "{s}");
    let credits = run
        .mock
        .send(&run.api.credits(&run.token), None)
        .await
        .unwrap();
    assert!(json(&credits)["data"]["available"].is_string());
    let up = run
        .mock
        .send(
            &run.api
                .upload_urls(&run.token, &run.sid, &["https://example.com/b.mp4".into()]),
            None,
        )
        .await
        .unwrap();
    assert!(
        json(&up)["data"]["files"][0]["duration"].is_string(),
        "numbers as strings"
    );
    api::parse::<api::Credits>(&credits).unwrap();
    let lost = run
        .mock
        .send(&run.api.state(&run.token, "1"), None)
        .await
        .unwrap();
    // A lost session as ADK's api_server says it; the client reads 1002.
    assert_eq!(lost.status, 404);
    assert_eq!(
        json(&lost),
        serde_json::json!({"detail": "Session not found"})
    );
    match api::parse::<api::Credits>(&lost) {
        Err(api::ResponseError::Api(e)) => assert_eq!(e.code, Some(1002)),
        other => panic!("{other:?}"),
    }
    let refused = run
        .mock
        .send(
            &run.api
                .credits(&nemo_core::secret::Secret::new("nmv_usr_unknown")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(json(&refused)["code"], "1001", "codes as strings");
}

#[tokio::test(start_paused = true)]
async fn typed_speaks_typed_events_and_codes_on_http_200() {
    let run = session(Dialect::Typed, 1).await;
    let (events, _, _) = edit_and_render(&run).await;
    assert!(
        events.contains("data: {\"type\":\"text\",\"content\":"),
        "{events}"
    );
    assert!(
        events.contains("data: {\"type\":\"tool_call\","),
        "{events}"
    );
    assert!(
        events.contains("data: {\"type\":\"tool_result\","),
        "{events}"
    );
    assert!(!events.contains("\"parts\""), "{events}");
    assert!(!events.contains("\"partial\""), "{events}");
    let r = run
        .mock
        .open_stream(&run.api.run_sse(&run.token, "1", "hi"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "1002 on HTTP 200");
    // As the stream's one event, the code with it.
    let refused = stream(&run.mock, &run.api.run_sse(&run.token, "1", "hi")).await;
    assert_eq!(
        refused,
        "data: {\"type\":\"error\",\"code\":1002,\"message\":\"Session not found\"}\n\n"
    );
    assert!(matches!(
        &nemo_core::adk::classify(refused.trim().trim_start_matches("data: "))[..],
        [nemo_core::adk::AgentEvent::ServiceError { code: 1002, .. }]
    ));
    let lost = run
        .mock
        .send(&run.api.state(&run.token, "1"), None)
        .await
        .unwrap();
    assert_eq!(
        (lost.status, json(&lost)["code"].clone()),
        (200, 1002.into())
    );
    let bad = run
        .mock
        .send(&run.api.credits(&Secret::new("nmv_usr_nope")), None)
        .await
        .unwrap();
    let Err(api::ResponseError::Api(e)) = api::payload(&bad) else {
        panic!()
    };
    assert_eq!((e.status, e.code), (200, Some(1001)));
}

#[tokio::test(start_paused = true)]
async fn mixed_answers_in_every_dialect_and_reads_the_same() {
    let mut seen = [false; 3];
    for seed in 0..12 {
        let run = session(Dialect::Mixed, seed).await;
        let (events, state, status) = edit_and_render(&run).await;
        seen[0] |= events.contains("\"partial\":true");
        seen[1] |= String::from_utf8_lossy(&state.body).contains("\"m\":{\"name\"")
            || json(&status).get("success").is_some() && json(&status).get("data").is_none();
        seen[2] |= events.contains("{\"type\":\"text\"");
    }
    assert_eq!(seen, [true; 3], "adk, meta and typed answers all seen");
}

/// The path may carry the real user id instead of `me`; another user's id
/// is refused.
#[tokio::test(start_paused = true)]
async fn paths_with_the_real_user_id() {
    let run = session(Dialect::Adk, 1).await;
    let user = json(&run.session_answer)["data"]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut req = run.api.state(&run.token, &run.sid);
    for (who, status) in [(user.as_str(), 200), ("anon_someone_else", 403)] {
        req.target =
            nemo_core::wire::Target::Api(format!("/api/state/nemo_agent/{who}/{}/latest", run.sid));
        let r = run.mock.send(&req, None).await.unwrap();
        assert_eq!(r.status, status, "{who}");
    }
}

/// Under `meta` the three render shapes stay apart, each with the `success`
/// envelope, and each reads as a completed render with its URL.
#[tokio::test(start_paused = true)]
async fn meta_keeps_the_three_render_shapes_apart() {
    let mut shapes = Vec::new();
    for shape in [RenderShape::A, RenderShape::B, RenderShape::C] {
        let run = session_with(MockConfig {
            dialect: Dialect::Meta,
            render_shape: shape,
            ..MockConfig::fast()
        })
        .await;
        let (_, _, status) = edit_and_render(&run).await;
        let s = json(&status);
        assert_eq!(s["success"], true, "{shape:?}: {s}");
        let mut keys: Vec<String> = s.as_object().unwrap().keys().cloned().collect();
        if let Some(output) = s["output"].as_object() {
            keys.extend(output.keys().map(|k| format!("output.{k}")));
        }
        keys.sort();
        shapes.push(keys);
    }
    assert_ne!(shapes[0], shapes[1], "a and b: {shapes:?}");
    assert_ne!(shapes[1], shapes[2], "b and c: {shapes:?}");
    assert_ne!(shapes[0], shapes[2], "a and c: {shapes:?}");
}

/// `mixed` picks each answer's dialect from the seed and the answers that
/// are not render polls (polls count apart): however many polls a render
/// took (the client's pace, the time scale), every later answer speaks the
/// same dialect for one seed.
#[tokio::test(start_paused = true)]
async fn mixed_dialects_do_not_depend_on_polling() {
    use nemo_core::wire::Endpoint;
    let mut runs = Vec::new();
    for time_scale in [1.0, 0.5] {
        let run = session_with(MockConfig {
            dialect: Dialect::Mixed,
            seed: 42,
            time_scale,
            ..MockConfig::fast()
        })
        .await;
        edit_and_render(&run).await;
        // After the export: more answers, of every kind.
        let (mock, api, token, sid) = (&run.mock, &run.api, &run.token, run.sid.as_str());
        mock.send(&api.credits(token), None).await.unwrap();
        mock.send(&api.state(token, sid), None).await.unwrap();
        stream(mock, &api.run_sse(token, sid, "make it brighter")).await;
        mock.send(&api.state(token, sid), None).await.unwrap();
        mock.send(&api.credits(token), None).await.unwrap();
        let entries = mock.journal().entries();
        let polls = entries
            .iter()
            .filter(|e| e.endpoint == Some(Endpoint::RenderStatus))
            .count();
        let others: Vec<_> = entries
            .iter()
            .filter(|e| e.endpoint != Some(Endpoint::RenderStatus))
            .map(|e| (e.endpoint, e.dialect))
            .collect();
        assert!(others.iter().all(|(_, d)| d.is_some()), "{others:?}");
        runs.push((polls, others));
    }
    assert_ne!(runs[0].0, runs[1].0, "the renders took different polls");
    assert_eq!(runs[0].1, runs[1].1, "the same dialects after the export");
    let dialects: std::collections::BTreeSet<_> = runs[0]
        .1
        .iter()
        .filter_map(|(_, d)| d.map(Dialect::as_str))
        .collect();
    assert_eq!(dialects.len(), 3, "{dialects:?}");
}
