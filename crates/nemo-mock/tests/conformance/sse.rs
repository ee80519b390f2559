//! The `/run_sse` stream byte for byte: framing, ADK events, keep-alives.

use nemo_mock::{AgentBehaviour, FaultPlan, MockConfig};
use serde_json::Value;

use super::raw::*;

/// Checks every frame's form and returns the JSON events.
fn check_framing(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "every frame ends with a blank line");
    assert!(!text.contains("\r"), "LF only");
    let mut events = Vec::new();
    for frame in frames(body) {
        assert!(!frame.contains('\n'), "one line per frame: {frame:?}");
        match frame.as_str() {
            "data: {\"type\":\"heartbeat\"}" | "data:" | ": ping" => continue,
            f => {
                let json = f
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("bad frame {f:?}"));
                assert!(!json.starts_with(' '));
                let v: Value = serde_json::from_str(json).unwrap();
                // Compact: re-serialising in the same key order gives the same text.
                assert!(
                    !json.contains("\": ") && !json.contains("\", \""),
                    "compact JSON: {json}"
                );
                assert!(!f.starts_with("event:") && !f.starts_with("id:"));
                events.push(v);
            }
        }
    }
    events
}

fn check_event(e: &Value) {
    assert!(e["invocationId"].as_str().unwrap().starts_with("e-"), "{e}");
    assert_eq!(e["author"], "nemo_agent");
    assert!(e["actions"]["stateDelta"].is_object());
    assert_eq!(e["id"].as_str().unwrap().len(), 8);
    let ts = e["timestamp"].as_f64().unwrap();
    assert!(ts > 1.7e9 && ts.fract() != 0.0, "{ts}");
}

#[tokio::test]
async fn framing_events_and_keepalives() {
    let config = MockConfig {
        agent: AgentBehaviour {
            long_work_rate: 1.0,
            ..AgentBehaviour::calm()
        },
        ..fast()
    };
    let server = server(config).await;
    let c = connect(server.addr(), "client-sse").await;
    c.post(
        &format!("/api/upload-video/nemo_agent/me/{}", c.session),
        &serde_json::json!({"urls": ["https://example.com/clip.mp4"], "source_type": "url"}),
    )
    .await;
    let r = c
        .chat_asking("add a fade transition and trim to 5 seconds", true)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.body.starts_with(b"data: {\"type\":\"heartbeat\"}\n\n"));
    let all = frames(&r.body);
    for form in ["data: {\"type\":\"heartbeat\"}", "data:", ": ping"] {
        assert!(
            all.iter().any(|f| f == form),
            "keep-alive form {form:?} missing"
        );
    }
    let events = check_framing(&r.body);
    events.iter().for_each(check_event);
    let inv = &events[0]["invocationId"];
    assert!(events.iter().all(|e| &e["invocationId"] == inv));
    // Tool call, tool result with the draft in stateDelta, partial text, full text.
    let call = events
        .iter()
        .find(|e| e["content"]["parts"][0].get("functionCall").is_some())
        .unwrap();
    assert_eq!(call["content"]["role"], "model");
    let fc = &call["content"]["parts"][0]["functionCall"];
    assert!(
        fc["id"].as_str().unwrap().starts_with("adk-")
            && fc["name"].is_string()
            && fc["args"].is_object()
    );
    let result = events
        .iter()
        .rfind(|e| e["content"]["parts"][0].get("functionResponse").is_some())
        .unwrap();
    assert_eq!(result["content"]["role"], "user");
    assert_eq!(result["actions"]["stateDelta"]["draft"]["d"], 5000);
    let partials: Vec<&str> = events
        .iter()
        .filter(|e| e["partial"] == true)
        .map(|e| e["content"]["parts"][0]["text"].as_str().unwrap())
        .collect();
    let full = events
        .iter()
        .rfind(|e| e["content"]["parts"][0]["text"].is_string())
        .unwrap();
    assert!(full.get("partial").is_none());
    assert_eq!(
        partials.concat(),
        full["content"]["parts"][0]["text"].as_str().unwrap()
    );
    // The stream matches the state.
    let state: Value = serde_json::from_str(&c.draft_text().await.unwrap()).unwrap();
    assert_eq!(state, result["actions"]["stateDelta"]["draft"]);
    server.shutdown().await;
}

/// The stream with the server's port and the events' wall-clock timestamps
/// (which follow real time) taken out; everything else must be identical.
fn normalise(body: &[u8], url: &str) -> String {
    let text = String::from_utf8_lossy(body).replace(url, "BASE");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\"timestamp\":") {
        let (head, tail) = rest.split_at(i + 12);
        out.push_str(head);
        out.push('T');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn same_seed_same_bytes() {
    let run = || async {
        let server = server(MockConfig {
            seed: 42,
            agent: AgentBehaviour::default(),
            ..fast()
        })
        .await;
        let c = connect(server.addr(), "client-det").await;
        let mut bodies = Vec::new();
        for msg in [
            "save https://example.com/v/sunset.mp4 as mp4",
            "add piano music at 20%",
            "add the title \"Hi\"",
            "hello",
        ] {
            bodies.push(normalise(&c.chat(msg).await.body, server.url()));
        }
        bodies.push(normalise(&c.state().await.body, server.url()));
        server.shutdown().await;
        bodies
    };
    let (a, b) = (run().await, run().await);
    for (x, y) in a.iter().zip(&b) {
        assert!(x == y, "runs differ:\n{x}\n---\n{y}");
    }
}

#[tokio::test]
async fn behaviours_clients_must_survive() {
    let plan = "run_sse:silent@1;run_sse:temp@2;run_sse:errorcode@3;run_sse:error@4;run_sse:error-raw@5;run_sse:keepalive@6;run_sse:truncate@7;run_sse:reset=3@8";
    let server = server(MockConfig {
        faults: FaultPlan::parse(plan).unwrap(),
        ..fast()
    })
    .await;
    let c = connect(server.addr(), "client-behave").await;
    c.post(
        &format!("/api/upload-video/nemo_agent/me/{}", c.session),
        &serde_json::json!({"urls": ["https://example.com/clip.mp4"], "source_type": "url"}),
    )
    .await;
    let texts = |body: &[u8]| -> Vec<String> {
        events(body)
            .iter()
            .filter_map(|e| e["content"]["parts"][0]["text"].as_str().map(str::to_owned))
            .collect()
    };
    // 1: silent edit — tool events, no text, the draft changes.
    let before = c.draft_text().await;
    let r = c.chat("trim to 6 seconds").await;
    assert!(texts(&r.body).is_empty());
    assert!(!events(&r.body).is_empty());
    assert_ne!(c.draft_text().await, before);
    // 2: the trailing temporary issue.
    let r = c.chat("add jazz music").await;
    assert!(texts(&r.body).last().unwrap().contains("temporary issue"));
    // 3: an errorCode event; nothing changes, credits come back.
    let before = c.draft_text().await;
    let r = c.chat("add a title \"X\"").await;
    let ev = events(&r.body);
    assert_eq!(ev.last().unwrap()["errorCode"], "MALFORMED_FUNCTION_CALL");
    assert!(ev.last().unwrap()["errorMessage"].is_string());
    assert_eq!(c.draft_text().await, before);
    // 4: in-band error line (valid JSON, json.dumps spacing).
    let r = c.chat("add a title \"Y\"").await;
    let last = frames(&r.body).pop().unwrap();
    assert!(last.starts_with("data: {\"error\": \""), "{last}");
    let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert!(v["error_details"].is_object());
    // 5: the old unescaped form: not JSON at all.
    let r = c.chat("add a title \"Z\"").await;
    let last = frames(&r.body).pop().unwrap();
    assert!(last.starts_with("data: {\"error\": \""));
    assert!(serde_json::from_str::<Value>(last.strip_prefix("data: ").unwrap()).is_err());
    // 6: keep-alives only, yet the edit lands.
    let before = c.draft_text().await;
    let r = c.chat("make it vertical").await;
    assert!(r.complete);
    assert!(events(&r.body).is_empty());
    assert!(frames(&r.body)
        .iter()
        .all(|f| f == "data: {\"type\":\"heartbeat\"}" || f == "data:" || f == ": ping"));
    assert_ne!(c.draft_text().await, before);
    // 7: truncated mid-event, closed cleanly.
    let r = c.chat("add piano music").await;
    assert!(r.complete, "a clean close");
    assert!(!r.body.ends_with(b"\n\n"));
    // 8: reset after three frames: the chunked body never terminates.
    let r = c.chat("add a fade transition").await;
    assert!(!r.complete, "the connection broke");
    assert_eq!(frames(&r.body).len(), 3);
    // Credits: five edits charged (1, 2, 6, 7, 8); 3–5 refunded; uploads are free.
    let credits: nemo_core::api::Credits =
        nemo_core::api::parse(&c.get("/api/credits/balance/simple").await.core()).unwrap();
    assert_eq!(credits.available, 75.0);
    assert_eq!(server.journal().count(nemo_core::wire::Endpoint::RunSse), 8);
    server.shutdown().await;
}

#[tokio::test]
async fn gui_hints_in_replies() {
    let server = server(MockConfig {
        agent: AgentBehaviour {
            gui_rate: 1.0,
            ..AgentBehaviour::calm()
        },
        ..fast()
    })
    .await;
    let c = connect(server.addr(), "client-gui").await;
    let mut seen = String::new();
    for msg in [
        "add jazz music",
        "add the title \"A\"",
        "trim to 4s",
        "加背景音乐",
        "加标题「好」",
    ] {
        let r = c.chat(msg).await;
        for e in events(&r.body) {
            if e.get("partial").is_none() {
                if let Some(t) = e["content"]["parts"][0]["text"].as_str() {
                    seen.push_str(t);
                }
            }
        }
    }
    assert!(
        ["Click", "Open", "drag", "timeline", "点击", "打开", "拖拽"]
            .iter()
            .any(|w| seen.contains(w)),
        "{seen}"
    );
    server.shutdown().await;
}

/// ADK's rule: `partial` text pieces only when the request asks for them
/// with `"streaming": true`; otherwise the whole text once.
#[tokio::test]
async fn partial_pieces_only_when_streaming_is_asked_for() {
    let server = server(fast()).await;
    let c = connect(server.addr(), "client-streaming").await;
    c.post(
        &format!("/api/upload-video/nemo_agent/me/{}", c.session),
        &serde_json::json!({"urls": ["https://example.com/clip.mp4"], "source_type": "url"}),
    )
    .await;
    for streaming in [false, true] {
        let r = c.chat_asking("trim to 5 seconds", streaming).await;
        assert_eq!(r.status, 200);
        let events = check_framing(&r.body);
        let partials = events.iter().filter(|e| e["partial"] == true).count();
        let whole: Vec<&Value> = events
            .iter()
            .filter(|e| e.get("partial").is_none() && e["content"]["parts"][0]["text"].is_string())
            .collect();
        assert_eq!(whole.len(), 1, "streaming {streaming}: the whole text once");
        if streaming {
            assert!(partials >= 2, "pieces when asked: {partials}");
        } else {
            assert_eq!(partials, 0, "no pieces unless asked");
        }
    }
    server.shutdown().await;
}
