//! The one wire form of events: JSON objects with a `type`, one per line
//! (NDJSON), as `nemo --json` prints them and the MCP server returns them
//! (the `events` of its `upload`, `instruct` and `export` tools, the `error`
//! of a failed call).
//!
//! `docs/events.schema.json` (JSON Schema, draft 2020-12) describes every
//! object: `status`, `text`, `text_delta` (opt-in), `timeline`, `change`,
//! `credits`, `upload`, `render`, `download`, `link`, `generation`,
//! `suggestions`, `transfer` (opt-in) and `error`.
//! Frontends may add fields (the CLI adds `item` in a batch and `hint` to an
//! error) but never remove one; readers should ignore fields and `type`s they
//! do not know.
//!
//! Bookkeeping events ([`Event::TokenIssued`], [`Event::ClientIdGenerated`],
//! [`Event::Finished`], [`Event::RenderEnded`] when the objects before it
//! already said how the render ended) have no wire form: a token never
//! leaves the process this way, and a command's failure is told once, by
//! [`error_to_json`].

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::api::UploadedFile;
use crate::error::NemoError;
use crate::gui::GuiAction;
use crate::machine::{Event, GenerationStage, LinkKind, RenderOutcome, TransferKind};
use crate::time::human_duration;

/// One object on the wire, borrowed from the event it tells.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire<'a> {
    /// A progress line, a note, the session that was connected.
    Status {
        message: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<&'a str>,
    },
    /// The agent's words (trimmed) and the GUI actions found in them.
    Text {
        text: &'a str,
        actions: &'a [GuiAction],
    },
    /// A piece of the agent's text as it arrives (opt-in), raw.
    TextDelta { text: &'a str },
    /// The timeline summary.
    Timeline {
        summary: &'a str,
        ready_for_export: bool,
    },
    /// What an edit changed.
    Change { summary: &'a str },
    /// The credit balance.
    Credits {
        available: Number,
        frozen: Number,
        total: Number,
    },
    /// Uploaded files.
    Upload { files: Vec<File<'a>> },
    /// A render's state.
    Render {
        id: &'a str,
        status: &'a str,
        /// 0–100 or `null`; exactly `100` once completed.
        progress: Option<Number>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    /// How far an upload or a download has got (opt-in).
    Transfer {
        kind: TransferKind,
        done: u64,
        total: Option<u64>,
    },
    /// A file saved.
    Download { path: Cow<'a, str>, bytes: u64 },
    /// A link worth opening.
    Link { kind: LinkKind, url: &'a str },
    /// A two-stage generation moved on.
    Generation {
        stage: GenerationStage,
        url: Option<&'a str>,
        message: &'a str,
    },
    /// Messages the user may send next.
    Suggestions {
        message: &'a str,
        suggestions: &'a [String],
    },
}

/// An uploaded file as the wire tells it.
#[derive(Debug, Serialize)]
struct File<'a> {
    filename: &'a str,
    file_type: &'a str,
    cdn_url: &'a str,
}

impl<'a> From<&'a UploadedFile> for File<'a> {
    fn from(f: &'a UploadedFile) -> Self {
        File {
            filename: &f.filename,
            file_type: &f.file_type,
            cdn_url: &f.cdn_url,
        }
    }
}

/// A render object without a URL.
/// A number as a script expects it: a whole value as an integer (`100`,
/// never `100.0`), anything else as it is; not a number is `0`.
fn number(x: f64) -> Number {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Number::from(x as i64)
    } else {
        Number::from_f64(x).unwrap_or_else(|| Number::from(0))
    }
}

fn render<'a>(id: &'a str, status: &'a str, progress: Option<Number>) -> Wire<'a> {
    Wire::Render {
        id,
        status,
        progress,
        url: None,
    }
}

/// The wire object of `event`, or `None` when it has none (bookkeeping, an
/// agent turn with neither words nor actions, a render's final phase that
/// the completed / failed / cancelled object reports).
///
/// ```
/// use nemo_core::machine::Event;
/// use serde_json::json;
/// let v = nemo_core::ndjson::to_json(&Event::Change { summary: "Trimmed to 30s".into() });
/// assert_eq!(v, Some(json!({"type": "change", "summary": "Trimmed to 30s"})));
/// ```
pub fn to_json(event: &Event) -> Option<Value> {
    let wire = match event {
        Event::TokenIssued { .. } | Event::ClientIdGenerated(_) | Event::Finished { .. } => {
            return None
        }
        Event::Status(message) | Event::Note(message) => Wire::Status {
            message: Cow::Borrowed(message),
            session_id: None,
        },
        Event::StillWorking { elapsed } => Wire::Status {
            message: Cow::Owned(format!("⏳ Still working… ({})", human_duration(*elapsed))),
            session_id: None,
        },
        Event::Connected {
            session_id,
            created,
            ..
        } => {
            let verb = if *created { "Started" } else { "Continuing" };
            Wire::Status {
                message: Cow::Owned(format!("{verb} session {session_id}")),
                session_id: Some(session_id),
            }
        }
        Event::AgentText { text, actions } => {
            let text = text.trim();
            if text.is_empty() && actions.is_empty() {
                return None;
            }
            Wire::Text { text, actions }
        }
        Event::AgentTextDelta { text } => Wire::TextDelta { text },
        Event::Change { summary } => Wire::Change { summary },
        Event::Uploaded { files } => Wire::Upload {
            files: files.iter().map(File::from).collect(),
        },
        Event::Credits(c) => Wire::Credits {
            available: number(c.available),
            frozen: number(c.frozen),
            total: number(c.total),
        },
        Event::Timeline {
            summary,
            ready_for_export,
        } => Wire::Timeline {
            summary,
            ready_for_export: *ready_for_export,
        },
        Event::RenderStarting { id, .. } => render(id, "submitting", None),
        Event::RenderProgress {
            id,
            phase,
            progress,
        } => {
            if phase.is_final() {
                // Told by `RenderCompleted` / `RenderEnded`, with more detail.
                return None;
            }
            render(
                id,
                phase.as_str(),
                progress.filter(|p| p.is_finite()).map(number),
            )
        }
        Event::RenderCompleted { id, url } => Wire::Render {
            id,
            status: "completed",
            progress: Some(Number::from(100)),
            url: Some(url),
        },
        Event::RenderEnded { id, outcome } => match outcome {
            RenderOutcome::Failed => render(id, "failed", None),
            RenderOutcome::Cancelled => render(id, "cancelled", None),
            // The `render … completed` object already carried the URL, the
            // `download` object the file; a rejected submission is the
            // command's `error`.
            RenderOutcome::Completed(_)
            | RenderOutcome::Downloaded(_)
            | RenderOutcome::Rejected => return None,
        },
        Event::Downloaded { path, bytes, .. } => Wire::Download {
            path: path.to_string_lossy(),
            bytes: *bytes,
        },
        Event::Link { kind, url } => Wire::Link { kind: *kind, url },
        Event::Transfer { kind, done, total } => Wire::Transfer {
            kind: *kind,
            done: *done,
            total: *total,
        },
        Event::Generation {
            stage,
            url,
            message,
        } => Wire::Generation {
            stage: *stage,
            url: url.as_deref(),
            message,
        },
        Event::Suggestions {
            message,
            suggestions,
        } => Wire::Suggestions {
            message,
            suggestions,
        },
    };
    // Only strings, numbers and plain enums: serialising cannot fail.
    serde_json::to_value(wire).ok()
}

/// The `error` object of a failed command: `code` (the [`ErrorKind`]
/// in snake case), `message`, `retryable`, and `api_code` / `link` /
/// `detail` (the [`ErrorDetail`], an object with a `kind`) when known.
///
/// [`ErrorKind`]: crate::error::ErrorKind
/// [`ErrorDetail`]: crate::error::ErrorDetail
pub fn error_to_json(err: &NemoError) -> Value {
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "error")]
    struct Error<'a> {
        code: crate::error::ErrorKind,
        message: &'a str,
        retryable: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        api_code: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        link: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'a crate::error::ErrorDetail>,
    }
    let wire = Error {
        code: err.kind,
        message: &err.message,
        retryable: err.is_retryable(),
        api_code: err.code,
        link: err.link.as_deref(),
        detail: err.detail.as_ref(),
    };
    serde_json::to_value(wire).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::secret::Secret;
    use serde_json::json;

    #[test]
    fn whole_numbers_are_integers() {
        let at = |p: f64| {
            to_json(&Event::RenderProgress {
                id: "r".into(),
                phase: crate::api::RenderPhase::Processing,
                progress: Some(p),
            })
            .unwrap()["progress"]
                .to_string()
        };
        assert_eq!(at(5.0), "5");
        assert_eq!(at(42.5), "42.5");
        assert_eq!(at(f64::NAN), "null");
        let credits = to_json(&Event::Credits(crate::api::Credits {
            available: 100.0,
            frozen: 0.0,
            total: 100.5,
        }))
        .unwrap();
        assert_eq!(
            credits.to_string(),
            r#"{"available":100,"frozen":0,"total":100.5,"type":"credits"}"#
        );
    }

    #[test]
    fn bookkeeping_has_no_wire_form_and_never_carries_the_token() {
        let token = Event::TokenIssued {
            token: Secret::new("nmv_usr_secret"),
            user_id: Some("u1".into()),
            expires_at: None,
        };
        assert_eq!(to_json(&token), None);
        assert_eq!(to_json(&Event::ClientIdGenerated("c1".into())), None);
        let finished = Event::Finished {
            command: crate::machine::CommandId(1),
            result: Err(NemoError::new(ErrorKind::Network, "down")),
        };
        assert_eq!(to_json(&finished), None);
    }

    #[test]
    fn objects_as_the_cli_printed_them() {
        let completed = Event::RenderCompleted {
            id: "render_1".into(),
            url: "https://cdn/x.mp4".into(),
        };
        assert_eq!(
            to_json(&completed).unwrap().to_string(),
            json!({"type": "render", "id": "render_1", "status": "completed", "progress": 100, "url": "https://cdn/x.mp4"}).to_string()
        );
        let progress = Event::RenderProgress {
            id: "render_1".into(),
            phase: crate::api::RenderPhase::Processing,
            progress: Some(42.5),
        };
        assert_eq!(
            to_json(&progress).unwrap(),
            json!({"type": "render", "id": "render_1", "status": "processing", "progress": 42.5})
        );
        let connected = Event::Connected {
            session_id: "s1".into(),
            task_id: None,
            created: true,
        };
        assert_eq!(
            to_json(&connected).unwrap(),
            json!({"type": "status", "message": "Started session s1", "session_id": "s1"})
        );
        let delta = Event::AgentTextDelta {
            text: "I added ".into(),
        };
        assert_eq!(
            to_json(&delta).unwrap(),
            json!({"type": "text_delta", "text": "I added "})
        );
        let transfer = Event::Transfer {
            kind: TransferKind::Download,
            done: 2048,
            total: None,
        };
        assert_eq!(
            to_json(&transfer).unwrap(),
            json!({"type": "transfer", "kind": "download", "done": 2048, "total": null})
        );
        let silent = Event::AgentText {
            text: "  ".into(),
            actions: vec![],
        };
        assert_eq!(to_json(&silent), None);
        let link = Event::Link {
            kind: LinkKind::Register,
            url: "https://x/r".into(),
        };
        assert_eq!(
            to_json(&link).unwrap(),
            json!({"type": "link", "kind": "register", "url": "https://x/r"})
        );
    }

    #[test]
    fn errors() {
        let err = NemoError::new(ErrorKind::OutOfCredits, "No credits left.")
            .with_code(Some(2001))
            .with_link("https://x/r");
        assert_eq!(
            error_to_json(&err),
            json!({"type": "error", "code": "out_of_credits", "message": "No credits left.", "retryable": false, "api_code": 2001, "link": "https://x/r"})
        );
        let credits = NemoError::new(ErrorKind::OutOfCredits, "No credits left.").with_detail(
            crate::error::ErrorDetail::OutOfCredits {
                needed: Some(5.0),
                available: None,
            },
        );
        assert_eq!(
            error_to_json(&credits)["detail"],
            json!({"kind": "out_of_credits", "needed": 5.0, "available": null})
        );
        let running = NemoError::new(ErrorKind::Cancelled, "Stopped waiting.")
            .with_detail(crate::error::ErrorDetail::RenderRunning { id: "r1".into() });
        assert_eq!(
            error_to_json(&running)["detail"],
            json!({"kind": "render_running", "id": "r1"})
        );
        let user = NemoError::new(ErrorKind::AuthFailed, "rejected")
            .with_detail(crate::error::ErrorDetail::UserTokenRejected);
        assert_eq!(
            error_to_json(&user)["detail"],
            json!({"kind": "user_token_rejected"})
        );
        let plain = NemoError::new(ErrorKind::Network, "down");
        assert_eq!(
            error_to_json(&plain),
            json!({"type": "error", "code": "network", "message": "down", "retryable": true})
        );
    }
}
