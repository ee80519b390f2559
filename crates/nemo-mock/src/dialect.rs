//! The dialects of the wire (`../shared/PROTOCOL.md` §10): the backend
//! answers in its own (`adk`) spelling and [`speak`] rewrites each JSON
//! answer into the dialect picked for it. The event stream is written in its
//! dialect from the start (`crate::sse`).

use serde_json::{json, Map, Value};

use crate::body::{Reply, ReplyBody};
use crate::config::Dialect;
use crate::timeline;

/// Which answer a reply is, as far as dialects care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Session,
    Credits,
    Upload,
    State,
    RenderSubmit,
    RenderStatus,
    /// `/run_sse`: in the typed dialect a refusal with a code ≥ 1000 comes
    /// as an error event in a stream on HTTP 200.
    RunSse,
    /// A file: never rewritten (an error must not look like a download).
    Media,
    Other,
}

/// The concrete dialect of one answer: `mixed` takes `adk`, `meta` and
/// `typed` in turn from a point the seed chooses, so every three answers in
/// a row hold all three (with the recordings' seed, 42, the message's
/// stream — a session's fifth answer — is `typed`). `answer` counts the
/// answers that are not render polls; polls take their turns from a count
/// of their own, so however many polls a render takes, every later answer
/// keeps its dialect.
pub(crate) fn pick(dialect: Dialect, seed: u64, answer: u64) -> Dialect {
    match dialect {
        Dialect::Mixed => {
            const TURN: [Dialect; 3] = [Dialect::Adk, Dialect::Meta, Dialect::Typed];
            TURN[((seed % 3 + answer % 3) % 3) as usize]
        }
        other => other,
    }
}

/// Rewrites a JSON reply into `dialect`. Streams and media pass unchanged.
pub(crate) fn speak(dialect: Dialect, answer: Answer, mut reply: Reply) -> Reply {
    if dialect == Dialect::Adk || answer == Answer::Media {
        return reply;
    }
    let ReplyBody::Bytes(bytes) = &reply.body else {
        return reply;
    };
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(bytes) else {
        return reply;
    };
    let code = body.get("code").and_then(Value::as_u64).unwrap_or(0);
    if code >= 1000 && dialect == Dialect::Typed && answer == Answer::RunSse {
        // `{"type":"error","code":2001,"message":…}` as the stream's one event.
        // `type` first, as the API reference writes it.
        let message = body.get("message").cloned().unwrap_or(Value::Null);
        let event =
            format!("data: {{\"type\":\"error\",\"code\":{code},\"message\":{message}}}\n\n");
        return Reply::new(200, "text/event-stream", event).header("cache-control", "no-cache");
    }
    if code == 1002
        && dialect == Dialect::Meta
        && matches!(answer, Answer::RunSse | Answer::State | Answer::Upload)
    {
        // ADK's api_server on a session it does not know.
        return Reply::json(404, &json!({"detail": "Session not found"}));
    }
    if code >= 1000 {
        match dialect {
            // Every code ≥ 1000 on HTTP 200.
            Dialect::Typed => reply.status = 200,
            // The code as a string.
            Dialect::Meta => {
                body.insert("code".into(), json!(code.to_string()));
            }
            _ => {}
        }
    } else if (200..300).contains(&reply.status) && dialect == Dialect::Meta {
        rewrite_meta(answer, &mut body);
    }
    reply.body = ReplyBody::Bytes(Value::Object(body).to_string().into());
    reply
}

fn rewrite_meta(answer: Answer, body: &mut Map<String, Value>) {
    match answer {
        Answer::Session => {
            if let Some(data) = body.get_mut("data") {
                number_id(data, "session_id");
            }
        }
        Answer::Credits => {
            if let Some(Value::Object(data)) = body.get_mut("data") {
                for v in data.values_mut() {
                    if v.is_number() {
                        *v = json!(v.to_string());
                    }
                }
            }
        }
        Answer::Upload => {
            // Media numbers as numeric strings.
            let files = body
                .get_mut("data")
                .and_then(|d| d.get_mut("files"))
                .and_then(Value::as_array_mut);
            for file in files.into_iter().flatten().filter_map(Value::as_object_mut) {
                for key in ["duration", "width", "height", "fps"] {
                    if let Some(v) = file.get_mut(key).filter(|v| v.is_number()) {
                        *v = json!(v.to_string());
                    }
                }
            }
        }
        Answer::State => {
            if let Some(data) = body.get_mut("data") {
                number_id(data, "session_id");
                if let Some(draft) = data.pointer_mut("/state/draft").filter(|d| !d.is_null()) {
                    *draft = timeline::to_meta(draft);
                }
            }
        }
        Answer::RenderStatus if body.contains_key("data") => {
            // Shape a keeps its `success` envelope around `data` (the three
            // shapes stay apart); the progress as a numeric string.
            if let Some(Value::Object(data)) = body.get_mut("data") {
                if let Some(p) = data.get_mut("progress").filter(|p| p.is_number()) {
                    *p = json!(p.to_string());
                }
            }
        }
        Answer::RenderSubmit | Answer::RenderStatus => {
            // The `success` envelope at the top level, no `data`: shape b
            // (and shape c keeps its `output` details).
            if let Some(Value::Object(data)) = body.remove("data") {
                for (k, v) in data {
                    match k.as_str() {
                        "outputUrl" => {
                            body.insert("output".into(), json!({"url": v}));
                        }
                        _ => {
                            body.insert(k, v);
                        }
                    }
                }
            }
            if !body.contains_key("success") {
                let mut with = Map::new();
                with.insert("success".into(), json!(true));
                with.append(body);
                *body = with;
            }
        }
        Answer::Media | Answer::RunSse | Answer::Other => {}
    }
}

/// A session id as a JSON number, when it fits one exactly.
fn number_id(data: &mut Value, key: &str) {
    if let Some(v) = data.get_mut(key) {
        if let Some(n) = v.as_str().and_then(|s| s.parse::<u64>().ok()) {
            *v = json!(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: &Reply) -> Value {
        match &reply.body {
            ReplyBody::Bytes(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    #[test]
    fn codes_on_http_200_or_as_strings() {
        let r = Reply::json(401, &json!({"code": 1001, "message": "Token expired"}));
        let typed = speak(Dialect::Typed, Answer::Other, r);
        assert_eq!(
            (typed.status, body(&typed)["code"].clone()),
            (200, json!(1001))
        );
        let r = Reply::json(200, &json!({"code": 1002, "message": "Session not found"}));
        assert_eq!(
            body(&speak(Dialect::Meta, Answer::Other, r))["code"],
            json!("1002")
        );
        // A lost session, as ADK's api_server says it, on the session's
        // own endpoints.
        for answer in [Answer::RunSse, Answer::State, Answer::Upload] {
            let r = Reply::json(200, &json!({"code": 1002, "message": "Session not found"}));
            let meta = speak(Dialect::Meta, answer, r);
            assert_eq!(
                (meta.status, body(&meta)),
                (404, json!({"detail": "Session not found"}))
            );
        }
        let r = Reply::json(429, &json!({"code": 429, "message": "slow down"}));
        assert_eq!(
            speak(Dialect::Typed, Answer::Other, r).status,
            429,
            "below 1000"
        );
    }

    #[test]
    fn typed_run_sse_refusals_are_error_events() {
        let r = Reply::json(
            402,
            &json!({"code": 2001, "message": "Insufficient credits"}),
        );
        let typed = speak(Dialect::Typed, Answer::RunSse, r);
        assert_eq!(typed.status, 200);
        assert_eq!(typed.headers[0].1, "text/event-stream");
        let ReplyBody::Bytes(b) = &typed.body else {
            panic!("bytes")
        };
        assert_eq!(
            std::str::from_utf8(b).unwrap(),
            "data: {\"type\":\"error\",\"code\":2001,\"message\":\"Insufficient credits\"}\n\n"
        );
        // Other dialects keep the envelope.
        let r = Reply::json(
            402,
            &json!({"code": 2001, "message": "Insufficient credits"}),
        );
        assert_eq!(speak(Dialect::Meta, Answer::RunSse, r).status, 402);
    }

    #[test]
    fn render_answers_with_success_at_the_top() {
        // Shape a keeps `data` (its progress a numeric string); a submission
        // and shape b have `success` at the top and no `data`.
        let a = || {
            Reply::json(
                200,
                &json!({"success": true, "data": {"id": "r", "status": "completed", "progress": 100, "outputUrl": "u"}}),
            )
        };
        assert_eq!(
            body(&speak(Dialect::Meta, Answer::RenderStatus, a())),
            json!({"success": true, "data": {"id": "r", "status": "completed", "progress": "100", "outputUrl": "u"}})
        );
        assert_eq!(
            body(&speak(Dialect::Meta, Answer::RenderSubmit, a())),
            json!({"success": true, "id": "r", "status": "completed", "progress": 100, "output": {"url": "u"}})
        );
        let b = Reply::json(
            200,
            &json!({"id": "r", "status": "completed", "progress": 100, "output": {"url": "u"}}),
        );
        assert_eq!(
            body(&speak(Dialect::Meta, Answer::RenderStatus, b)),
            json!({"success": true, "id": "r", "status": "completed", "progress": 100, "output": {"url": "u"}})
        );
        let c = Reply::json(
            200,
            &json!({"status": "processing", "progress": 40, "output": null}),
        );
        assert_eq!(
            body(&speak(Dialect::Meta, Answer::RenderStatus, c))["success"],
            json!(true)
        );
    }

    #[test]
    fn mixed_holds_every_dialect_in_three_answers() {
        for seed in 0..9 {
            for first in 1..20 {
                let mut three: Vec<Dialect> = (first..first + 3)
                    .map(|n| pick(Dialect::Mixed, seed, n))
                    .collect();
                three.sort_by_key(|d| d.to_string());
                three.dedup();
                assert_eq!(three.len(), 3, "seed {seed}, from answer {first}");
            }
        }
        // The recordings' seed: token, session, upload, state, then the
        // stream, typed.
        assert_eq!(pick(Dialect::Mixed, 42, 5), Dialect::Typed);
    }

    #[test]
    fn mixed_picks_every_dialect_reproducibly() {
        let picks: Vec<Dialect> = (0..30).map(|n| pick(Dialect::Mixed, 7, n)).collect();
        for d in [Dialect::Adk, Dialect::Meta, Dialect::Typed] {
            assert!(picks.contains(&d), "{d:?} never picked");
        }
        assert_eq!(
            picks,
            (0..30)
                .map(|n| pick(Dialect::Mixed, 7, n))
                .collect::<Vec<_>>()
        );
        assert_eq!(pick(Dialect::Meta, 7, 3), Dialect::Meta);
    }
}
