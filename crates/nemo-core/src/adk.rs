//! Classification of the agent's stream — ADK `Event` JSON (camelCase, or the
//! snake_case some servers write) and the typed dialect of NemoVideo's API
//! reference (`{"type":"text","content":…}`, `{"type":"tool_call","name","args"}`,
//! `{"type":"tool_result","name","result"}`, `{"type":"heartbeat"}`) — into
//! what a client acts on, and the assembly of partial text so the user sees
//! each message once. Every key is looked up with its aliases through
//! the crate's field lookup (`field.rs`, internal).

use serde_json::Value;

use crate::api::StatusWord;
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
    /// An API error code sent inside the stream (`{"type":"error","code":2001,…}`,
    /// a bare `{"code":1001,"message":…}`, `{"error":{"code":…}}`): handled
    /// like the same code in an error envelope. Terminal.
    ServiceError {
        /// The API's code (1001, 1002, 2001, 429, …).
        code: i64,
        /// What the server said.
        message: String,
    },
    /// The state delta named the generation's stage
    /// (`stateDelta.generation_stage`).
    Stage(GenerationStage),
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
const GENERATION_STAGE: &[&str] = &["generation_stage", "generationStage"];

/// The API's codes below 1000 that mean the same inside the stream as in
/// an error envelope.
const API_CODES: &[i64] = &[402, 429];

/// An API error code sent as an event: one of `codes` (`code`, `errorCode`
/// or `error_code`; a number or a numeric string) that is one of the API's
/// codes or 1000 and above. `messages` are looked up before the usual
/// message keys.
fn service_error(f: &Fields<'_>, codes: &[&str], messages: &[&str]) -> Option<AgentEvent> {
    let code = f
        .code(codes)
        .filter(|c| *c >= 1000 || API_CODES.contains(c))?;
    let message = f
        .text(messages)
        .or_else(|| f.text(field::MESSAGE))
        .or_else(|| f.text(&["content", "text"]))
        .unwrap_or_else(|| format!("error {code}"));
    Some(AgentEvent::ServiceError { code, message })
}

/// Classifies one event's `data`. One ADK event may carry several parts, so
/// several meanings.
pub fn classify(data: &str) -> Vec<AgentEvent> {
    classify_dialect(data).0
}

/// [`classify`], and whether the event was of the typed dialect
/// (`{"type": …}`), whose whole texts in a row may be pieces of one reply.
pub(crate) fn classify_dialect(data: &str) -> (Vec<AgentEvent>, bool) {
    let trimmed = data.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("heartbeat") || trimmed == "ping" {
        return (vec![AgentEvent::KeepAlive], false);
    }
    let value: Value = match serde_json::from_str(trimmed) {
        Ok(v) => v,
        Err(_) => return (classify_invalid(trimmed), false),
    };
    let Value::Object(map) = &value else {
        return (vec![AgentEvent::Unknown], false);
    };
    // The type first: a typed `tool_result` may carry an `error` key of
    // its own (the tool's, not the stream's).
    if let Some(kind) = map.get("type").and_then(Value::as_str) {
        return (classify_typed(kind, &value), true);
    }
    (classify_adk(map), false)
}

fn classify_adk(map: &serde_json::Map<String, Value>) -> Vec<AgentEvent> {
    if let Some(err) = map.get("error").filter(|e| !e.is_null()) {
        if let Some(e) = service_error(&Fields::new(err), field::CODE, &[]) {
            return vec![e];
        }
        let message = match err {
            Value::String(s) => s.clone(),
            other => Fields::new(other)
                .text(field::MESSAGE)
                .unwrap_or_else(|| other.to_string()),
        };
        return vec![AgentEvent::StreamError { message }];
    }
    let f = Fields::of(Some(map));
    // An API error envelope sent as an event: `{"code":1001,"message":…}`.
    // Only `code`: on an ADK event, `errorCode` is the model's error
    // (`{"errorCode":"429"}`: the model was rate limited), not the API's.
    if let Some(e) = service_error(&f, &["code"], ERROR_MESSAGE) {
        return vec![e];
    }
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
    if let Some(delta) = delta.filter(|d| !d.is_empty()) {
        out.push(AgentEvent::StateChanged);
        let d = Fields::of(Some(delta));
        if let Some(stage) = d
            .text(GENERATION_STAGE)
            .and_then(|s| stage_of_delta(&s, &d))
        {
            out.push(AgentEvent::Stage(stage));
        }
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
    let kind = kind.trim().to_ascii_lowercase();
    vec![match kind.as_str() {
        "heartbeat" | "ping" | "keepalive" | "keep-alive" | "keep_alive" => AgentEvent::KeepAlive,
        "text" | "message" | "text_delta" | "delta" => {
            let partial = f.boolean(&["partial"]).unwrap_or(kind.ends_with("delta"));
            // A piece keeps its spaces ("Trimmed " + "to 30 seconds."): a
            // whole text too, which may be a piece of a reply sent as many
            // `text` events.
            let piece = f.raw_text(TEXT).or_else(|| {
                f.nested(TEXT)
                    .and_then(|c| c.raw_text(&["text", "content"]))
            });
            match piece {
                Some(text) if partial || !text.trim().is_empty() => {
                    AgentEvent::Text { text, partial }
                }
                _ => AgentEvent::Unknown,
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
        "error" => service_error(&f, field::CODE, &["message", "content"])
            .or_else(|| {
                // `{"type":"error","error":{"code":2001,…}}`
                f.nested(&["error"])
                    .and_then(|e| service_error(&e, field::CODE, &["message", "content"]))
            })
            .unwrap_or_else(|| AgentEvent::StreamError {
                message: f
                    .text(&["content", "message", "error", "text"])
                    .unwrap_or_else(|| "the agent failed".into()),
            }),
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

/// True for a tool result that is neither failed nor still at work: its
/// `status` (on the result or under its `result`) read as a render's
/// status is (failed, cancelled, timed out, rejected, … fail; pending,
/// running, encoding, … are not done yet; a done word, a word of none of
/// these, or no status at all succeeds), and no `error` beside it.
pub(crate) fn succeeded(event: &AgentEvent) -> bool {
    let AgentEvent::ToolResult { result, .. } = event else {
        return false;
    };
    let r = Fields::new(result);
    let inner = r.nested(&["result"]);
    let errored = |f: &Fields<'_>| {
        f.value(&["error"])
            .is_some_and(|e| !matches!(e, Value::Null | Value::Bool(false)) && e != "")
    };
    if errored(&r) || inner.as_ref().is_some_and(errored) {
        return false;
    }
    let status = r
        .text(field::STATUS)
        .or_else(|| inner.and_then(|i| i.text(field::STATUS)))
        .unwrap_or_default();
    matches!(
        crate::api::classify_status_word(&status),
        StatusWord::Done | StatusWord::Unknown
    )
}

/// A version or a neutral word in a tool's name (`v2`, `2`, `tool`,
/// `async`): not what the tool does.
fn neutral(word: &str) -> bool {
    let version = word.strip_prefix('v').unwrap_or(word);
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit()))
        || matches!(word, "tool" | "async" | "nemo" | "start" | "submit" | "run")
}

/// The names of video-generation tools, as words.
const GENERATION: &[&[&str]] = &[
    &["generate", "video"],
    &["text", "to", "video"],
    &["image", "to", "video"],
    &["seedance"],
];

/// A video-generation tool, by the whole words of its name (besides
/// versions and neutral words): `generate_video`, `generateVideo`,
/// `text_to_video`, `image_to_video`, `seedance` (alone, or with
/// generation words: `seedance_generate_video`). `generate_video_script`
/// or `get_seedance_status` are not.
pub(crate) fn is_generation_tool(name: &str) -> bool {
    let words: Vec<String> = field::words(name)
        .into_iter()
        .filter(|w| !neutral(w))
        .collect();
    if words.iter().any(|w| w == "seedance") {
        return words.iter().all(|w| {
            matches!(
                w.as_str(),
                "seedance" | "generate" | "video" | "text" | "image" | "to" | "t2v" | "i2v"
            )
        });
    }
    GENERATION
        .iter()
        .any(|g| words.iter().map(String::as_str).eq(g.iter().copied()))
}

/// A post-production tool or stage, by the words of its name
/// (`post_production`, `auto_post_production`, `postProduction`,
/// `postproduction`).
fn is_post_production(name: &str) -> bool {
    let words = field::words(name);
    words
        .iter()
        .any(|w| w.starts_with("postprod") || w == "postprocessing")
        || words
            .windows(2)
            .any(|p| p[0] == "post" && p[1].starts_with("produc"))
}

/// A stage by the words of its name (`raw_video`, `post_production`, …);
/// `f` is where its URL may be.
fn stage_named(stage: &str, f: &Fields<'_>) -> Option<GenerationStage> {
    if field::words(stage).iter().any(|w| w == "raw") {
        Some(GenerationStage::RawVideoReady {
            url: field::output_url(f),
        })
    } else if is_post_production(stage) || field::words(stage).iter().any(|w| w == "post") {
        Some(GenerationStage::PostProductionDone)
    } else {
        None
    }
}

/// The stage a state delta names. A raw-video stage without the video's
/// URL may mean "now generating the raw video": it is the video ready only
/// with a done word in the stage's name (`raw_video_ready`) or a done
/// status beside it (`"status":"completed"`).
fn stage_of_delta(stage: &str, d: &Fields<'_>) -> Option<GenerationStage> {
    let named = stage_named(stage, d)?;
    if let GenerationStage::RawVideoReady { url: None } = named {
        let done = |w: &str| crate::api::classify_status_word(w) == StatusWord::Done;
        let said_done = field::words(stage).iter().any(|w| done(w))
            || d.text(&[
                "status",
                "generation_status",
                "generationStatus",
                "stage_status",
            ])
            .is_some_and(|s| done(&s));
        return said_done.then_some(named);
    }
    Some(named)
}

/// The stage a tool result announces, if any: a finished video-generation
/// tool (`generate_video`, `text_to_video`, …) whose result gives the
/// video's URL, or a result with `"stage":"raw_video"`, means the raw video
/// is ready; `"stage":"post_production"` (or a post-production tool) means
/// post-production is done. A failed result, or one still pending
/// (`pending`, `running`, `processing`, `queued`, `submitted`,
/// `in_progress`, any case), is no stage.
pub fn stage_of(event: &AgentEvent) -> Option<GenerationStage> {
    let AgentEvent::ToolResult { name, result, .. } = event else {
        return None;
    };
    if !succeeded(event) {
        return None;
    }
    let r = Fields::new(result);
    let inner = r.nested(&["result"]);
    let pick = |keys: &[&str]| r.text(keys).or_else(|| inner.and_then(|i| i.text(keys)));
    // The render's rule: the most specific name first, web URLs only.
    let url = || field::output_url(&r).or_else(|| inner.and_then(|i| field::output_url(&i)));
    if let Some(stage) = pick(&["stage", "phase"]) {
        return match stage_named(&stage, &r)? {
            GenerationStage::RawVideoReady { .. } => {
                Some(GenerationStage::RawVideoReady { url: url() })
            }
            other => Some(other),
        };
    }
    if is_generation_tool(name) {
        // No stage said: only the video's URL shows the video is there.
        return url().map(|url| GenerationStage::RawVideoReady { url: Some(url) });
    }
    is_post_production(name).then_some(GenerationStage::PostProductionDone)
}

/// Words of a tool that removes.
const REMOVING: &[&str] = &["remove", "delete", "strip", "clear", "mute", "unset"];
/// Words of a tool that looks, measures or changes without adding.
const NOT_ADDING: &[&str] = &[
    "get",
    "read",
    "list",
    "analyze",
    "analyse",
    "analysis",
    "detect",
    "check",
    "query",
    "fetch",
    "describe",
    "inspect",
    "search",
    "find",
    "preview",
    "validate",
    "estimate",
    "count",
    "upgrade",
    "adjust",
    "normalize",
    "normalise",
    "extract",
    "transcribe",
    "measure",
    "status",
];
const MUSIC: &[&str] = &["music", "bgm", "audio", "sound", "soundtrack", "song"];
const SUBTITLES: &[&str] = &["subtitle", "subtitles", "caption", "captions"];
const TITLE: &[&str] = &["title", "titles", "text", "heading"];
const EFFECTS: &[&str] = &[
    "effect", "effects", "filter", "filters", "grade", "grading", "colour", "color", "lut", "luts",
];
const TRANSITIONS: &[&str] = &["transition", "transitions"];

/// What post-production (or any edit) may add to a video, as people name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Addition {
    /// Background music.
    Music,
    /// A title.
    Title,
    /// Subtitles or captions.
    Subtitles,
    /// Effects, filters, a colour grade.
    Effects,
    /// Transitions.
    Transitions,
}

impl Addition {
    /// What a tool adds, from its name (`add_background_music` → music);
    /// `None` for a tool that removes, or adds none of these.
    pub(crate) fn of_tool(name: &str) -> Option<Self> {
        let words = field::words(name);
        let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
        if has(REMOVING) || has(NOT_ADDING) || is_generation_tool(name) {
            return None;
        }
        if has(MUSIC) {
            Some(Self::Music)
        } else if has(SUBTITLES) {
            Some(Self::Subtitles)
        } else if has(TITLE) {
            Some(Self::Title)
        } else if has(EFFECTS) {
            Some(Self::Effects)
        } else if has(TRANSITIONS) {
            Some(Self::Transitions)
        } else {
            None
        }
    }

    /// In a list of what was added: "music", "a title", …
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Self::Music => "music",
            Self::Title => "a title",
            Self::Subtitles => "subtitles",
            Self::Effects => "effects",
            Self::Transitions => "transitions",
        }
    }

    /// The message that strips it again: "remove the music", …
    pub(crate) fn removal(self) -> &'static str {
        match self {
            Self::Music => "remove the music",
            Self::Title => "remove the title",
            Self::Subtitles => "remove the subtitles",
            Self::Effects => "remove the effects",
            Self::Transitions => "remove the transitions",
        }
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
    let words = field::words(name);
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    if has(REMOVING) {
        return Some(if has(MUSIC) {
            "removing the music…"
        } else if has(TITLE) || has(SUBTITLES) {
            "removing the text…"
        } else if has(EFFECTS) {
            "removing the effects…"
        } else {
            "removing what you asked…"
        });
    }
    Some(if is_generation_tool(name) {
        GENERATING
    } else if is_post_production(name) {
        "adding music, a title and effects…"
    } else if has(NOT_ADDING) {
        "working on your video…"
    } else if has(&["canvas", "resolution", "resize", "aspect", "format"]) {
        "changing the format…"
    } else if has(MUSIC) {
        "adding music…"
    } else if has(TITLE) || has(SUBTITLES) {
        "adding text…"
    } else if has(TRANSITIONS) {
        "adding transitions…"
    } else if has(&["trim", "cut", "shorten"]) {
        "trimming the video…"
    } else if has(&["media", "clip", "import", "download", "upload"]) {
        "adding your media…"
    } else if has(EFFECTS) {
        "adding effects…"
    } else {
        "working on your video…"
    })
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

    /// True while partial pieces wait for their final text.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
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
    fn a_pending_generation_is_no_stage() {
        for status in [
            "pending",
            "RUNNING",
            "processing",
            "queued",
            "submitted",
            "in_progress",
        ] {
            let data = format!(
                r#"{{"content":{{"parts":[{{"functionResponse":{{"name":"generate_video","response":{{"status":"{status}","task_id":"t1"}}}}}}]}}}}"#
            );
            assert_eq!(stage_of(&classify(&data)[0]), None, "{status}");
        }
        // No `stage` key: only a result with the video's URL is the video.
        let no_url = classify(
            r#"{"type":"tool_result","name":"generate_video","result":{"status":"success"}}"#,
        );
        assert_eq!(stage_of(&no_url[0]), None);
        for result in [
            r#"{"output":{"url":"https://cdn/raw.mp4"}}"#,
            r#"{"url":"https://cdn/raw.mp4"}"#,
            r#"{"download_url":"https://cdn/raw.mp4"}"#,
            r#"{"result":{"status":"success","output_url":"https://cdn/raw.mp4"}}"#,
        ] {
            let data =
                format!(r#"{{"type":"tool_result","name":"generate_video","result":{result}}}"#);
            assert_eq!(
                stage_of(&classify(&data)[0]),
                Some(GenerationStage::RawVideoReady {
                    url: Some("https://cdn/raw.mp4".into())
                }),
                "{result}"
            );
        }
    }

    #[test]
    fn service_codes_in_the_stream() {
        for (data, code) in [
            (
                r#"{"type":"error","code":2001,"message":"Insufficient credits"}"#,
                2001,
            ),
            (r#"{"code":1001,"message":"Token expired"}"#, 1001),
            (r#"{"code":"1002","message":"Session not found"}"#, 1002),
            (
                r#"{"type":"error","errorCode":"429","message":"slow"}"#,
                429,
            ),
            (
                r#"{"error":{"error_code":2001,"message":"Insufficient credits"}}"#,
                2001,
            ),
        ] {
            match &classify(data)[..] {
                [AgentEvent::ServiceError { code: c, message }] => {
                    assert_eq!(*c, code, "{data}");
                    assert!(!message.is_empty(), "{data}");
                }
                other => panic!("{data}: {other:?}"),
            }
        }
        // A success envelope is not an error.
        assert_eq!(
            classify(r#"{"code":0,"message":"success"}"#),
            vec![AgentEvent::Unknown]
        );
    }

    #[test]
    fn a_typed_tool_result_with_an_error_key_is_a_result() {
        let e = classify(
            r#"{"type":"tool_result","name":"add_title","result":{"status":"failed"},"error":"font missing"}"#,
        );
        assert!(
            matches!(&e[..], [AgentEvent::ToolResult { name, .. }] if name == "add_title"),
            "{e:?}"
        );
    }

    #[test]
    fn the_generation_stage_in_a_state_delta() {
        let e = classify(
            r#"{"content":{"parts":[]},"actions":{"stateDelta":{"generation_stage":"post_production"}}}"#,
        );
        assert_eq!(
            e,
            vec![
                AgentEvent::StateChanged,
                AgentEvent::Stage(GenerationStage::PostProductionDone)
            ]
        );
        let e = classify(
            r#"{"actions":{"state_delta":{"generationStage":"raw_video","video_url":"https://cdn/r.mp4"}}}"#,
        );
        assert_eq!(
            e[1],
            AgentEvent::Stage(GenerationStage::RawVideoReady {
                url: Some("https://cdn/r.mp4".into())
            })
        );
    }

    /// Whole words of the tool's name, never a piece of a word.
    #[test]
    fn generation_tools_by_whole_words() {
        for (name, generation) in [
            ("generate_video", true),
            ("generateVideo", true),
            ("GenerateVideo", true),
            ("text_to_video", true),
            ("image-to-video", true),
            ("seedance", true),
            ("seedance_generate_video", true),
            ("generate_video_v2", true),
            ("generate_video_script", false),
            ("generate_video_thumbnail", false),
            ("get_seedance_status", false),
            ("video_to_text", false),
            ("regenerate_videos_list", false),
        ] {
            assert_eq!(is_generation_tool(name), generation, "{name}");
        }
        // A non-generation tool with a URL is no raw video; its call is no
        // "generating the video…".
        let script = classify(
            r#"{"type":"tool_result","name":"generate_video_script","result":{"status":"success","url":"https://cdn/s.txt"}}"#,
        );
        assert_eq!(stage_of(&script[0]), None);
        let call = classify(r#"{"type":"tool_call","name":"generate_video_thumbnail"}"#);
        assert_ne!(step_words(&call[0]), Some(GENERATING));
    }

    #[test]
    fn additions_by_whole_words() {
        for (name, want) in [
            ("add_background_music", Some(Addition::Music)),
            ("addBgm", Some(Addition::Music)),
            ("add_text_overlay", Some(Addition::Title)),
            ("set_project_title", Some(Addition::Title)),
            ("add_captions", Some(Addition::Subtitles)),
            ("apply_lut", Some(Addition::Effects)),
            ("color_grade", Some(Addition::Effects)),
            ("apply_transitions", Some(Addition::Transitions)),
            ("get_context", None),
            ("set_resolution", None),
            ("upgrade_plan", None),
            ("upgrade_effects_engine", None),
            ("analyze_audio", None),
            ("get_music_library", None),
            ("remove_background_music", None),
            ("generate_video", None),
        ] {
            assert_eq!(Addition::of_tool(name), want, "{name}");
        }
        for (name, words) in [
            ("analyze_audio", "working on your video…"),
            ("get_context", "working on your video…"),
            ("set_resolution", "changing the format…"),
            ("add_background_music", "adding music…"),
        ] {
            let call = AgentEvent::ToolCall {
                id: None,
                name: name.into(),
                args: Value::Null,
            };
            assert_eq!(step_words(&call), Some(words), "{name}");
        }
    }

    /// Status words read as the render's are: every failure and cancel word
    /// fails, waiting and working words are not done yet.
    #[test]
    fn tool_statuses_read_like_render_statuses() {
        for (result, ok) in [
            (r#"{"status":"success"}"#, true),
            (r#"{"status":"completed"}"#, true),
            (r#"{"status":"ok"}"#, true),
            (r#"{}"#, true),
            (r#"{"result":{"status":"Done"}}"#, true),
            (r#"{"status":"failed"}"#, false),
            (r#"{"status":"FAILED: quota"}"#, false),
            (r#"{"status":"cancelled"}"#, false),
            (r#"{"status":"timeout"}"#, false),
            (r#"{"status":"rejected"}"#, false),
            (r#"{"status":"error"}"#, false),
            (r#"{"status":"pending"}"#, false),
            (r#"{"status":"encoding"}"#, false),
            (r#"{"error":"font missing"}"#, false),
            (r#"{"result":{"status":"canceled"}}"#, false),
        ] {
            let ev = AgentEvent::ToolResult {
                id: None,
                name: "add_title".into(),
                result: serde_json::from_str(result).unwrap(),
            };
            assert_eq!(succeeded(&ev), ok, "{result}");
        }
    }

    /// A state delta's `raw_video` stage without a URL may mean "now in
    /// that stage": only a URL or a done status makes the video ready.
    #[test]
    fn a_raw_video_stage_without_a_url_is_not_ready() {
        for (delta, ready) in [
            (r#"{"generation_stage":"raw_video"}"#, false),
            (
                r#"{"generation_stage":"raw_video","status":"running"}"#,
                false,
            ),
            (
                r#"{"generation_stage":"raw_video","status":"completed"}"#,
                true,
            ),
            (r#"{"generation_stage":"raw_video_ready"}"#, true),
            (
                r#"{"generation_stage":"raw_video","video_url":"https://cdn/r.mp4"}"#,
                true,
            ),
        ] {
            let data = format!(r#"{{"actions":{{"stateDelta":{delta}}}}}"#);
            let staged = classify(&data)
                .iter()
                .any(|e| matches!(e, AgentEvent::Stage(GenerationStage::RawVideoReady { .. })));
            assert_eq!(staged, ready, "{delta}");
        }
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
