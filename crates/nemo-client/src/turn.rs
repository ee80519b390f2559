//! What a command's events add up to: [`Turn`] (everything said and done),
//! and the typed results built from it ([`Exported`]).

use std::path::PathBuf;

use nemo_core::api::UploadedFile;
use nemo_core::gui::GuiAction;
use nemo_core::machine::{Credits, Event, LinkKind, RenderPhase};

use crate::identity::absolute;

/// The timeline of the session's draft.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeline {
    /// One line per track and clip (`Timeline (3 tracks): …`).
    pub summary: String,
    /// True when it can be exported.
    pub ready_for_export: bool,
}

/// Everything one command's events said: the agent's words, what its edit
/// changed, the actions it offered, links, files uploaded, a render and its
/// download. [`Client::say`](crate::Client::say) and
/// [`Client::instruct`](crate::Client::instruct) return it; any frontend can
/// build one from the events it sees with [`Turn::see`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Turn {
    /// The agent's words (after GUI translation), one entry per message.
    pub texts: Vec<String>,
    /// What the agent's GUI instructions meant, as actions, each once.
    pub actions: Vec<GuiAction>,
    /// What edits changed (told when the agent said nothing, or after a
    /// dropped stream).
    pub changes: Vec<String>,
    /// Notes (a router note, a recovery step, a generation stage).
    pub notes: Vec<String>,
    /// Uploaded files, as the server described them.
    pub uploaded: Vec<UploadedFile>,
    /// The credit balance, when it was read.
    pub credits: Option<Credits>,
    /// The timeline, when it was read.
    pub timeline: Option<Timeline>,
    /// The render this command submitted or followed.
    pub render_id: Option<String>,
    /// Where that render was last seen, with its progress (0–100).
    pub render_phase: Option<(RenderPhase, Option<f64>)>,
    /// The finished render's URL.
    pub render_url: Option<String>,
    /// The downloaded file (absolute) and its size.
    pub downloaded: Option<(PathBuf, u64)>,
    /// Links worth passing on (claim, register), each once.
    pub links: Vec<(LinkKind, String)>,
    /// Messages the user may send next (keep or strip what
    /// post-production added).
    pub suggestions: Vec<String>,
    /// Every event with a wire form (`docs/events.schema.json`), in order.
    pub events: Vec<serde_json::Value>,
}

impl Turn {
    /// Takes one event into account.
    pub fn see(&mut self, event: &Event) {
        if let Some(object) = nemo_core::ndjson::to_json(event) {
            self.events.push(object);
        }
        match event {
            Event::AgentText { text, actions } => {
                let text = text.trim();
                if !text.is_empty() {
                    self.texts.push(text.to_owned());
                }
                for action in actions {
                    if !self.actions.contains(action) {
                        self.actions.push(*action);
                    }
                }
            }
            Event::Change { summary } => self.changes.push(summary.clone()),
            Event::Note(note) => self.notes.push(note.clone()),
            Event::Generation { message, url, .. } => self.notes.push(match url {
                Some(url) => format!("{message} ({url})"),
                None => message.clone(),
            }),
            Event::Suggestions {
                message,
                suggestions,
            } => {
                self.notes.push(message.clone());
                self.suggestions.extend(suggestions.iter().cloned());
            }
            Event::Uploaded { files } => self.uploaded.extend(files.iter().cloned()),
            Event::Credits(c) => self.credits = Some(*c),
            Event::Timeline {
                summary,
                ready_for_export,
            } => {
                self.timeline = Some(Timeline {
                    summary: summary.clone(),
                    ready_for_export: *ready_for_export,
                })
            }
            Event::RenderStarting { id, .. } => self.render_id = Some(id.clone()),
            Event::RenderProgress {
                id,
                phase,
                progress,
            } => {
                self.render_id = Some(id.clone());
                self.render_phase = Some((phase.clone(), *progress));
            }
            Event::RenderCompleted { id, url } => {
                self.render_id = Some(id.clone());
                self.render_phase = Some((RenderPhase::Completed, Some(100.0)));
                self.render_url = Some(url.clone());
            }
            Event::Downloaded { path, bytes, .. } => {
                self.downloaded = Some((absolute(path), *bytes));
            }
            Event::Link { kind, url } if !self.links.iter().any(|(k, u)| k == kind && u == url) => {
                self.links.push((*kind, url.clone()));
            }
            // Status lines and bookkeeping are not part of the result;
            // events newer than this crate (`Event` is non-exhaustive)
            // reach the caller through `events` only.
            _ => {}
        }
    }

    /// The link of this kind, if one was given.
    pub fn link(&self, kind: LinkKind) -> Option<&str> {
        self.links
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, url)| url.as_str())
    }

    /// The agent's words, one message per paragraph.
    pub fn text(&self) -> String {
        self.texts.join("\n\n")
    }
}

/// A finished export: the render, and where its file went.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Exported {
    /// The render id.
    pub render_id: String,
    /// The finished render's URL (short-lived), when the service gave it.
    pub url: Option<String>,
    /// The saved file (absolute), unless the export was to a writer or did
    /// not download.
    pub path: Option<PathBuf>,
    /// Bytes saved (or written to the writer).
    pub bytes: Option<u64>,
    /// A browser link to the project, when one was asked for.
    pub claim_link: Option<String>,
}

impl Exported {
    /// The result a turn describes, for render `id` (the turn's own render
    /// id when it saw one: the server may have renamed it).
    pub(crate) fn of(turn: &Turn, id: &str) -> Exported {
        Exported {
            render_id: turn.render_id.clone().unwrap_or_else(|| id.to_owned()),
            url: turn.render_url.clone(),
            path: turn.downloaded.as_ref().map(|(p, _)| p.clone()),
            bytes: turn.downloaded.as_ref().map(|(_, b)| *b),
            claim_link: turn.link(LinkKind::Claim).map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemo_core::secret::Secret;

    #[test]
    fn a_turn_keeps_the_wire_objects_and_never_the_token() {
        let mut turn = Turn::default();
        for event in [
            Event::Status("Connecting…".into()),
            Event::TokenIssued {
                token: Secret::new("nmv_usr_secret"),
                user_id: None,
                expires_at: None,
            },
            Event::Change {
                summary: "Added BGM".into(),
            },
            Event::Link {
                kind: LinkKind::Claim,
                url: "https://web/claim?ct=1".into(),
            },
            Event::Link {
                kind: LinkKind::Claim,
                url: "https://web/claim?ct=1".into(),
            },
        ] {
            turn.see(&event);
        }
        assert_eq!(turn.events[0]["type"], "status");
        assert_eq!(turn.events[1]["type"], "change");
        assert!(!serde_json::Value::from(turn.events.clone())
            .to_string()
            .contains("nmv_usr_secret"));
        assert_eq!(turn.changes, ["Added BGM"]);
        assert_eq!(turn.links.len(), 1, "one link, once");
        assert_eq!(turn.link(LinkKind::Claim), Some("https://web/claim?ct=1"));
    }
}
