//! Classification of the agent's stream: ADK `Event` JSON (and the older
//! shapes) into what a client acts on, and the assembly of partial text so the
//! user sees each message once.

use serde_json::Value;

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
    /// The agent called a tool. Internal: never shown.
    ToolCall {
        /// The call's id.
        id: Option<String>,
        /// The tool's name.
        name: String,
    },
    /// A tool answered. Internal: never shown.
    ToolResult {
        /// The call's id.
        id: Option<String>,
        /// The tool's name.
        name: String,
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

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

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
            other => other
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| other.to_string()),
        };
        return vec![AgentEvent::StreamError { message }];
    }
    if let Some(kind) = map.get("type").and_then(Value::as_str) {
        return classify_legacy(kind, &value);
    }

    let mut out = Vec::new();
    if let Some(code) = str_field(&value, "errorCode") {
        out.push(AgentEvent::ModelError {
            code,
            message: str_field(&value, "errorMessage"),
        });
    }
    let partial = map.get("partial").and_then(Value::as_bool).unwrap_or(false);
    if let Some(parts) = value
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
    {
        for part in parts {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                if !text.is_empty() {
                    out.push(AgentEvent::Text {
                        text: text.to_owned(),
                        partial,
                    });
                }
            } else if let Some(call) = part.get("functionCall") {
                out.push(AgentEvent::ToolCall {
                    id: str_field(call, "id"),
                    name: str_field(call, "name").unwrap_or_default(),
                });
            } else if let Some(resp) = part.get("functionResponse") {
                out.push(AgentEvent::ToolResult {
                    id: str_field(resp, "id"),
                    name: str_field(resp, "name").unwrap_or_default(),
                });
            }
        }
    }
    let delta = value
        .get("actions")
        .and_then(|a| a.get("stateDelta"))
        .and_then(Value::as_object);
    if delta.is_some_and(|d| !d.is_empty()) {
        out.push(AgentEvent::StateChanged);
    }
    if map.get("turnComplete").and_then(Value::as_bool) == Some(true) {
        out.push(AgentEvent::TurnComplete);
    }
    if out.is_empty() {
        out.push(AgentEvent::Unknown);
    }
    out
}

fn classify_legacy(kind: &str, value: &Value) -> Vec<AgentEvent> {
    let text = || {
        str_field(value, "content")
            .or_else(|| str_field(value, "text"))
            .or_else(|| str_field(value, "message"))
    };
    vec![match kind {
        "heartbeat" | "ping" | "keepalive" | "keep-alive" => AgentEvent::KeepAlive,
        "text" | "message" => match text() {
            Some(text) if !text.is_empty() => AgentEvent::Text {
                text,
                partial: value
                    .get("partial")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            _ => AgentEvent::Unknown,
        },
        "tool_call" | "function_call" => AgentEvent::ToolCall {
            id: str_field(value, "id"),
            name: str_field(value, "name").unwrap_or_default(),
        },
        "tool_result" | "function_response" => AgentEvent::ToolResult {
            id: str_field(value, "id"),
            name: str_field(value, "name").unwrap_or_default(),
        },
        "error" => AgentEvent::StreamError {
            message: text().unwrap_or_else(|| "the agent failed".into()),
        },
        "done" | "end" | "turn_complete" => AgentEvent::TurnComplete,
        _ => AgentEvent::Unknown,
    }]
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
pub const TEMPORARY_ISSUE: &str = "i encountered a temporary issue";

/// The most partial text kept while waiting for the final event (1 MiB).
pub const MAX_PENDING: usize = 1 << 20;

/// Merges partial pieces and final texts so each message is shown once.
#[derive(Debug, Clone, Default)]
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
                    name: "add_bgm".into()
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
                    name: "add_bgm".into()
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
