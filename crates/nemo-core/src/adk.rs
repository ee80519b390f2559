//! Classification of the agent's stream — ADK `Event` JSON (camelCase, or the
//! snake_case some servers write) and the typed dialect of NemoVideo's API
//! reference (`{"type":"text","content":…}`, `{"type":"tool_call","name","args"}`,
//! `{"type":"tool_result","name","result"}`, `{"type":"heartbeat"}`) — into
//! what a client acts on, and the assembly of partial text so the user sees
//! each message once. Every key is looked up with its aliases through
//! the crate's field lookup (`field.rs`, internal).

use serde_json::Value;

use crate::field::{self, Fields};

/// What one stream event means to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// A keep-alive: `heartbeat`, empty data, `{"type":"heartbeat"}`, a comment.
    KeepAlive,
    /// Text for the user. `partial` pieces are followed by a final event that
    /// repeats the whole text.
    Text {
        /// The text.
        text: String,
        /// True for a streamed piece.
        partial: bool,
    },
    /// The agent called a tool. Internal: never shown as such (see
    /// [`step_words`] for what may be shown).
    ToolCall {
        /// The call's id.
        id: Option<String>,
        /// The tool's name.
        name: String,
        /// The call's arguments (`Null` when none were sent).
        args: Value,
    },
    /// A tool answered. Internal: never shown as such (see [`stage_of`]).
    ToolResult {
        /// The call's id.
        id: Option<String>,
        /// The tool's name.
        name: String,
        /// What it answered (`Null` when nothing was sent).
        result: Value,
    },
    /// The event carried a state change (`actions.stateDelta`).
    StateChanged,
    /// The model reported an error as a normal event (`errorCode`).
    ModelError {
        /// `errorCode`.
        code: String,
        /// `errorMessage`.
        message: Option<String>,
    },
    /// The server failed after the stream started (`{"error": …}`). Terminal.
    StreamError {
        /// What the server said.
        message: String,
    },
    /// `turnComplete: true`.
    TurnComplete,
    /// Valid JSON of no known shape (ignored, never fatal).
    Unknown,
}

const FUNCTION_CALL: &[&str] = &["functionCall", "function_call"];
const FUNCTION_RESPONSE: &[&str] = &["functionResponse", "function_response"];
const STATE_DELTA: &[&str] = &["stateDelta", "state_delta"];
const TURN_COMPLETE: &[&str] = &["turnComplete", "turn_complete"];
const ERROR_CODE: &[&str] = &["errorCode", "error_code"];
const ERROR_MESSAGE: &[&str] = &["errorMessage", "error_message"];
const CALL_ID: &[&str] = &["id", "call_id", "callId", "tool_call_id", "toolCallId"];
const TOOL_NAME: &[&str] = &["name", "tool", "tool_name", "toolName", "function"];
const ARGS: &[&str] = &["args", "arguments", "input", "parameters", "params"];
const RESULT: &[&str] = &["result", "response", "output", "content"];
const TEXT: &[&str] = &["content", "text", "message", "delta"];

/// Classifies one event's `data`. One ADK event may carry several parts, so
/// several meanings.
pub fn classify(data: &str) -> Vec<AgentEvent> {
    let trimmed = data.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("heartbeat") || trimmed == "ping" {
        return vec![AgentEvent::KeepAlive];
    }
    let value: Value = match serde_json::from_str(trimmed) {
        Ok(v) => v,
        Err(_) => return classify_invalid(trimmed),
    };
    let Value::Object(map) = &value else {
        return vec![AgentEvent::Unknown];
    };
    if let Some(err) = map.get("error").filter(|e| !e.is_null()) {
        let message = match err {
            Value::String(s) => s.clone(),
            other => Fields::new(other)
                .text(field::MESSAGE)
                .unwrap_or_else(|| other.to_string()),
        };
        return vec![AgentEvent::StreamError { message }];
    }

    if let Some(kind) = map.get("type").and_then(Value::as_str) {
        return classify_typed(kind, &value);
    }
    let f = Fields::of(Some(map));
    let mut out = Vec::new();
    if let Some(code) = f.text(ERROR_CODE) {
        out.push(AgentEvent::ModelError {
            code,
            message: f.text(ERROR_MESSAGE),
        });
    }
    let partial = f.boolean(&["partial"]).unwrap_or(false);
    let parts = f
        .nested(&["content"])
        .and_then(|c| c.array(&["parts"]))
        .map(Vec::as_slice)
        .unwrap_or_default();
    for part in parts {
        let p = Fields::new(part);
        if p.boolean(&["thought"]) == Some(true) {
            continue;
        }
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            if !text.is_empty() {
                out.push(AgentEvent::Text {
                    text: text.to_owned(),
                    partial,
                });
            }
        } else if let Some(call) = p.nested(FUNCTION_CALL) {
            out.push(AgentEvent::ToolCall {
                id: call.id(CALL_ID),
                name: call.text(TOOL_NAME).unwrap_or_default(),
                args: call.value(ARGS).cloned().unwrap_or(Value::Null),
            });
        } else if let Some(resp) = p.nested(FUNCTION_RESPONSE) {
            out.push(AgentEvent::ToolResult {
                id: resp.id(CALL_ID),
                name: resp.text(TOOL_NAME).unwrap_or_default(),
                result: resp.value(RESULT).cloned().unwrap_or(Value::Null),
            });
        }
    }
    let delta = f
        .nested(&["actions"])
        .and_then(|a| a.value(STATE_DELTA))
        .and_then(Value::as_object);
    if delta.is_some_and(|d| !d.is_empty()) {
        out.push(AgentEvent::StateChanged);
    }
    if f.boolean(TURN_COMPLETE) == Some(true) {
        out.push(AgentEvent::TurnComplete);
    }
    if out.is_empty() {
        out.push(AgentEvent::Unknown);
    }
    out
}

/// The typed dialect: `{"type": …}` with the payload beside it (or under
/// `data`).
fn classify_typed(kind: &str, value: &Value) -> Vec<AgentEvent> {
    let f = Fields::new(value);
    let text = || {
        f.text(TEXT)
            .or_else(|| f.nested(TEXT).and_then(|c| c.text(&["text", "content"])))
    };
    let kind = kind.trim().to_ascii_lowercase();
    vec![match kind.as_str() {
        "heartbeat" | "ping" | "keepalive" | "keep-alive" | "keep_alive" => AgentEvent::KeepAlive,
        "text" | "message" | "text_delta" | "delta" => {
            let partial = f.boolean(&["partial"]).unwrap_or(kind.ends_with("delta"));
            // A piece keeps its spaces ("Trimmed " + "to 30 seconds.").
            let piece = || {
                f.raw_text(TEXT).or_else(|| {
                    f.nested(TEXT)
                        .and_then(|c| c.raw_text(&["text", "content"]))
                })
            };
            match if partial { piece() } else { text() } {
                Some(text) => AgentEvent::Text { text, partial },
                None => AgentEvent::Unknown,
            }
        }
        "tool_call" | "function_call" | "toolcall" | "tool_use" => AgentEvent::ToolCall {
            id: f.id(CALL_ID),
            name: f.text(TOOL_NAME).unwrap_or_default(),
            args: f.value(ARGS).cloned().unwrap_or(Value::Null),
        },
        "tool_result" | "function_response" | "toolresult" | "tool_response" => {
            AgentEvent::ToolResult {
                id: f.id(CALL_ID),
                name: f.text(TOOL_NAME).unwrap_or_default(),
                result: f.value(RESULT).cloned().unwrap_or(Value::Null),
            }
        }
        "state" | "state_delta" | "state_changed" => AgentEvent::StateChanged,
        "error" => AgentEvent::StreamError {
            message: f
                .text(&["content", "message", "error", "text"])
                .unwrap_or_else(|| "the agent failed".into()),
        },
        "done" | "end" | "turn_complete" | "complete" => AgentEvent::TurnComplete,
        _ => AgentEvent::Unknown,
    }]
}

/// Where a two-stage generation is, as the stream shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenerationStage {
    /// The raw video exists (before music, a title and effects are added).
    RawVideoReady {
        /// Its URL, when the tool result gave one.
        url: Option<String>,
    },
    /// Post-production (music, a title, effects the agent adds on its own)
    /// is done: the timeline is final for this turn.
    PostProductionDone,
}

/// The stage a tool result announces, if any: a video-generation tool
/// (`generate_video`, `text_to_video`, … or a result with
/// `"stage":"raw_video"`) means the raw video is ready; a post-production
/// tool (or `"stage":"post_production"`) means post-production is done.
pub fn stage_of(event: &AgentEvent) -> Option<GenerationStage> {
    let AgentEvent::ToolResult { name, result, .. } = event else {
        return None;
    };
    let r = Fields::new(result);
    let inner = r.nested(&["result"]);
    let pick = |keys: &[&str]| r.text(keys).or_else(|| inner.and_then(|i| i.text(keys)));
    let status = pick(&["status"]).unwrap_or_default().to_ascii_lowercase();
    if matches!(status.as_str(), "error" | "failed" | "failure") {
        return None;
    }
    let stage = pick(&["stage", "phase"])
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let raw = stage.contains("raw")
        || (stage.is_empty()
            && (name.contains("generate_video")
                || name.contains("text_to_video")
                || name.contains("image_to_video")
                || name.contains("seedance")));
    let post = stage.contains("post") || (stage.is_empty() && name.contains("post_produc"));
    if raw {
        Some(GenerationStage::RawVideoReady {
            url: pick(&["video_url", "videoUrl", "url", "output_url"]),
        })
    } else if post {
        Some(GenerationStage::PostProductionDone)
    } else {
        None
    }
}

/// The step words of a video-generation tool call.
pub(crate) const GENERATING: &str = "generating the video…";

/// The words for what the agent is doing, from a tool call's name — for a
/// status line ("generating the video…"), never the raw call.
pub fn step_words(event: &AgentEvent) -> Option<&'static str> {
    let AgentEvent::ToolCall { name, .. } = event else {
        return None;
    };
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if has(&["remove", "delete", "strip"]) {
        return Some(if has(&["music", "bgm", "audio"]) {
            "removing the music…"
        } else if has(&["text", "title", "caption"]) {
            "removing the text…"
        } else if has(&["effect", "filter"]) {
            "removing the effects…"
        } else {
            "removing what you asked…"
        });
    }
    Some(
        if has(&[
            "generate_video",
            "text_to_video",
            "image_to_video",
            "seedance",
        ]) {
            "generating the video…"
        } else if has(&["post_produc"]) {
            "adding music, a title and effects…"
        } else if has(&["music", "bgm", "audio", "sound"]) {
            "adding music…"
        } else if has(&["text", "title", "caption", "subtitle"]) {
            "adding text…"
        } else if has(&["transition"]) {
            "adding transitions…"
        } else if has(&["trim", "cut"]) {
            "trimming the video…"
        } else if has(&["canvas", "resolution", "resize"]) {
            "changing the format…"
        } else if has(&["media", "clip", "import", "fetch", "download"]) {
            "adding your media…"
        } else if has(&["effect", "filter"]) {
            "adding effects…"
        } else {
            "working on your video…"
        },
    )
}

/// The old servers' `{"error": "…"}` was written without escaping quotes,
/// so it may not parse. Recognise it by its start and take everything
/// between the first quote after the colon and the closing `"}`.
fn classify_invalid(data: &str) -> Vec<AgentEvent> {
    let compact: String = data
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(9)
        .collect();
    if compact.starts_with("{\"error\"") {
        let after = data.find(':').map_or("", |i| &data[i + 1..]);
        let inner = after.trim().trim_end_matches('}').trim();
        let inner = inner.strip_prefix('"').unwrap_or(inner);
        let inner = inner.strip_suffix('"').unwrap_or(inner);
        let message = if inner.is_empty() {
            "the agent failed".to_owned()
        } else {
            inner.to_owned()
        };
        return vec![AgentEvent::StreamError { message }];
    }
    vec![AgentEvent::Unknown]
}

/// The phrase a server appends after a normal answer when something minor
/// failed behind it. Shown only if nothing else was said.
pub(crate) const TEMPORARY_ISSUE: &str = "i encountered a temporary issue";

/// The most partial text kept while waiting for the final event (1 MiB).
pub(crate) const MAX_PENDING: usize = 1 << 20;

/// Merges partial pieces and final texts so each message is shown once.
#[derive(Debug, Clone, Default)]
#[doc(hidden)]
pub struct TextAssembler {
    pending: String,
    said: Vec<String>,
}

impl TextAssembler {
    /// A fresh assembler for one turn.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a text event; returns a message ready to show, if one completed.
    pub fn push(&mut self, text: &str, partial: bool) -> Option<String> {
        if partial {
            // Pieces past the cap are dropped: the final event repeats the
            // whole text anyway.
            let room = MAX_PENDING.saturating_sub(self.pending.len());
            let mut take = room.min(text.len());
            while !text.is_char_boundary(take) {
                take -= 1;
            }
            self.pending.push_str(&text[..take]);
            return None;
        }
        // The final event repeats the whole text (ADK): it replaces the
        // pieces streamed before it.
        let full = text.to_owned();
        self.pending.clear();
        self.accept(full)
    }

    /// At the end of the stream: any partial text never completed.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        if rest.trim().is_empty() {
            None
        } else {
            self.accept(rest)
        }
    }

    /// True when at least one message was produced this turn.
    pub fn said_anything(&self) -> bool {
        !self.said.is_empty()
    }

    fn accept(&mut self, text: String) -> Option<String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return None;
        }
        if self.said.iter().any(|s| s.trim() == trimmed) {
            return None;
        }
        if self.said_anything() && trimmed.to_lowercase().starts_with(TEMPORARY_ISSUE) {
            return None;
        }
        self.said.push(text.clone());
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adk_text_tool_and_state() {
        let e = classify(
            r#"{"content":{"role":"model","parts":[{"text":"Hi"},{"functionCall":{"id":"c1","name":"add_bgm","args":{}}}]},"partial":true,"invocationId":"e-1","author":"nemo_agent","actions":{"stateDelta":{"draft":{}}},"id":"x","timestamp":1.5}"#,
        );
        assert_eq!(
            e,
            vec![
                AgentEvent::Text {
                    text: "Hi".into(),
                    partial: true
                },
                AgentEvent::ToolCall {
                    id: Some("c1".into()),
                    name: "add_bgm".into(),
                    args: serde_json::json!({})
                },
                AgentEvent::StateChanged,
            ]
        );
        let r = classify(
            r#"{"content":{"role":"user","parts":[{"functionResponse":{"id":"c1","name":"add_bgm","response":{"ok":true}}}]},"turnComplete":true}"#,
        );
        assert_eq!(
            r,
            vec![
                AgentEvent::ToolResult {
                    id: Some("c1".into()),
                    name: "add_bgm".into(),
                    result: serde_json::json!({"ok": true})
                },
                AgentEvent::TurnComplete
            ]
        );
    }

    #[test]
    fn keep_alives() {
        for d in ["", "  ", "heartbeat", r#"{"type":"heartbeat"}"#] {
            assert_eq!(classify(d), vec![AgentEvent::KeepAlive], "{d:?}");
        }
    }

    #[test]
    fn errors_in_band_old_and_new() {
        assert_eq!(
            classify(r#"{"error": "quota exceeded", "error_details": {"x":1}}"#),
            vec![AgentEvent::StreamError {
                message: "quota exceeded".into()
            }]
        );
        assert_eq!(
            classify(r#"{"error": "model said "no" twice"}"#),
            vec![AgentEvent::StreamError {
                message: r#"model said "no" twice"#.into()
            }]
        );
        assert_eq!(
            classify(r#"{"errorCode":"MALFORMED_FUNCTION_CALL","errorMessage":"bad"}"#),
            vec![AgentEvent::ModelError {
                code: "MALFORMED_FUNCTION_CALL".into(),
                message: Some("bad".into())
            }]
        );
        assert_eq!(classify("{not json"), vec![AgentEvent::Unknown]);
    }

    #[test]
    fn legacy_shapes() {
        assert_eq!(
            classify(r#"{"type":"text","content":"hello"}"#),
            vec![AgentEvent::Text {
                text: "hello".into(),
                partial: false
            }]
        );
        assert!(matches!(
            classify(r#"{"type":"tool_call","name":"x"}"#)[0],
            AgentEvent::ToolCall { .. }
        ));
    }

    #[test]
    fn thoughts_are_not_text() {
        let e = classify(r#"{"content":{"parts":[{"text":"secret plan","thought":true}]}}"#);
        assert_eq!(e, vec![AgentEvent::Unknown]);
    }

    #[test]
    fn partial_then_full_is_shown_once() {
        let mut a = TextAssembler::new();
        assert_eq!(a.push("Added ", true), None);
        assert_eq!(a.push("lo-fi BGM.", true), None);
        assert_eq!(
            a.push("Added lo-fi BGM.", false).as_deref(),
            Some("Added lo-fi BGM.")
        );
        assert_eq!(a.push("Added lo-fi BGM.", false), None, "exact repeat");
        assert_eq!(a.finish(), None);
    }

    #[test]
    fn partial_text_is_bounded() {
        let mut a = TextAssembler::new();
        let piece = "导".repeat(100_000);
        for _ in 0..20 {
            a.push(&piece, true);
        }
        assert!(a.pending.len() <= MAX_PENDING);
        assert!(a.finish().is_some());
    }

    #[test]
    fn partial_without_final_is_flushed() {
        let mut a = TextAssembler::new();
        a.push("Working on", true);
        a.push(" it", true);
        assert_eq!(a.finish().as_deref(), Some("Working on it"));
    }

    #[test]
    fn trailing_temporary_issue_is_dropped_after_an_answer() {
        let mut a = TextAssembler::new();
        assert!(a.push("Done: title added.", false).is_some());
        assert_eq!(
            a.push("I encountered a temporary issue. Please try again.", false),
            None
        );
        let mut b = TextAssembler::new();
        assert!(
            b.push("I encountered a temporary issue.", false).is_some(),
            "alone it is news"
        );
    }
}
