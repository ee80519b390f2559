//! Turns the session machine's events into what the user sees and what the
//! config directory remembers.

use std::path::PathBuf;
use std::sync::Arc;

use nemo_core::api::number;
use nemo_core::driver::{ProgressSink, TransferKind};
use nemo_core::error::NemoError;
use nemo_core::gui::GuiAction;
use nemo_core::machine::{Event, LinkKind, RenderOutcome, RenderPhase};
use nemo_core::time::human_duration;

use crate::output::{human_bytes, Bar, Output};
use nemo_client::FileStore;

/// What a client remembers (the token and the journal always); the
/// library's client keeps it, the reporter only says what was not kept.
pub(crate) type Persist = nemo_client::Remember;

/// Handles every event of one session.
#[derive(Debug)]
pub(crate) struct Reporter {
    out: Arc<Output>,
    store: FileStore,
    session_id: Option<String>,
    task_id: Option<String>,
    /// The last file downloaded, if any.
    pub(crate) downloaded: Option<(PathBuf, u64)>,
    /// The last render id seen, if any.
    pub(crate) render_id: Option<String>,
}

impl Reporter {
    /// A reporter printing to `out`, naming the config folder `store` in
    /// its advice.
    pub(crate) fn new(out: Arc<Output>, store: FileStore) -> Reporter {
        Reporter {
            out,
            store,
            session_id: None,
            task_id: None,
            downloaded: None,
            render_id: None,
        }
    }

    /// Transfer progress as bars.
    pub(crate) fn progress_sink(&self) -> ProgressSink {
        let out = self.out.clone();
        Arc::new(move |kind, p| {
            let (bar, label) = match kind {
                TransferKind::Upload => (Bar::Upload, "Uploading"),
                TransferKind::Download => (Bar::Download, "Downloading"),
            };
            out.progress(bar, label, p.done, p.total);
        })
    }

    /// Says what the store could not keep (the client remembers what a
    /// session's events leave there: `nemo_client::remember`).
    pub(crate) fn not_saved(&self, unsaved: Vec<nemo_client::NotSaved>) {
        for e in unsaved {
            let what = e.what();
            let e: NemoError = crate::store::error(e.error);
            self.out.warn(&format!("{what} was not saved: {e}"));
        }
    }

    /// Handles one event.
    pub(crate) fn handle(&mut self, event: &Event) {
        let out = self.out.clone();
        // What the reporter keeps, in both modes.
        match event {
            Event::Connected {
                session_id,
                task_id,
                ..
            } => {
                self.session_id = Some(session_id.clone());
                self.task_id = task_id.clone();
            }
            Event::RenderStarting { id, .. } => {
                // Already journaled (and leased) by the driver's journal hook.
                self.render_id = Some(id.clone());
            }
            Event::Downloaded { path, bytes, .. } => {
                self.downloaded = Some((path.clone(), *bytes));
            }
            _ => {}
        }
        if out.json() {
            // The one wire form (`docs/events.schema.json`), shared with the MCP server.
            if let Some(object) = nemo_core::ndjson::to_json(event) {
                out.emit(object);
            }
            return;
        }
        match event {
            Event::Status(message) => out.status(message),
            Event::TokenIssued { .. } => out.debug("Got a free starter token."),
            Event::Connected {
                session_id,
                created,
                ..
            } => {
                let verb = if *created { "Started" } else { "Continuing" };
                out.debug(&format!("{verb} session {session_id}"));
            }
            Event::Note(note) if note == nemo_core::route::NOTE_NO_MEDIA => {
                out.info(note);
                out.info("→ attach it with --file PATH or --url URL");
            }
            Event::Note(note) => out.info(note),
            Event::Generation { url, message, .. } => {
                out.clear();
                match url {
                    Some(url) => out.content(&format!("{message} ({})", line(url))),
                    None => out.content(message),
                }
            }
            Event::Suggestions {
                message,
                suggestions,
            } => {
                out.clear();
                let said: Vec<String> = suggestions.iter().map(|s| format!("\"{s}\"")).collect();
                out.content(&format!("{message} {}", said.join(", ")));
            }
            Event::AgentText { text, actions } => {
                out.clear();
                let text = text.trim();
                if !text.is_empty() {
                    out.content(text);
                }
                for action in actions {
                    out.info(&format!("→ {}", action_hint(*action)));
                }
            }
            Event::StillWorking { elapsed } => {
                let message = format!("⏳ Still working… ({})", human_duration(*elapsed));
                if out.fancy() {
                    out.info(&message);
                } else {
                    out.status(&message);
                }
            }
            Event::Change { summary } => {
                out.clear();
                out.content(&format!("Changed: {summary}"));
            }
            Event::Uploaded { files } => {
                out.clear();
                for f in files {
                    let mut detail = vec![f.file_type.clone()];
                    if let Some(d) = f.duration.filter(|d| *d > 0.0) {
                        detail.push(format!("{}s", number((d * 10.0).round() / 10.0)));
                    }
                    if let (Some(w), Some(h)) = (f.width, f.height) {
                        detail.push(format!("{}×{}", number(w), number(h)));
                    }
                    let detail: Vec<String> =
                        detail.into_iter().filter(|s| !s.is_empty()).collect();
                    out.content(&format!(
                        "Uploaded {} ({})",
                        line(&f.filename),
                        line(&detail.join(", "))
                    ));
                }
            }
            Event::Credits(c) => {
                out.clear();
                out.content(&format!("Credits: {c}"));
            }
            Event::Timeline { summary, .. } => {
                out.clear();
                out.content(summary);
            }
            Event::RenderStarting { id, .. } => {
                out.debug(&format!(
                    "Render {id} recorded in {}",
                    self.store.dir().join("jobs.json").display()
                ));
            }
            // A final phase is reported by `RenderCompleted` / `RenderEnded`.
            Event::RenderProgress {
                phase: RenderPhase::Pending | RenderPhase::Processing,
                progress,
                ..
            } => out.progress(
                Bar::Render,
                "Rendering",
                progress.unwrap_or(0.0).round() as u64,
                Some(100),
            ),
            Event::RenderCompleted { id, url } => {
                out.clear();
                out.debug(&format!("Render {id} completed: {}", line(url)));
            }
            Event::Downloaded { path, bytes, .. } => {
                out.clear();
                out.content(&format!(
                    "Saved {} ({})",
                    path.display(),
                    human_bytes(*bytes)
                ));
            }
            Event::RenderEnded {
                outcome: RenderOutcome::Completed(url),
                ..
            } => out.content(&format!("Rendered: {}", line(url))),
            Event::Link { kind, url } => match kind {
                LinkKind::Claim => out.content(&format!("Open in the browser: {}", line(url))),
                LinkKind::Register => {
                    out.content(&format!("Register to keep going: {}", line(url)))
                }
                // A kind newer than this reporter: still a link to show.
                _ => out.content(&format!("Link: {}", line(url))),
            },
            Event::Finished { .. } => out.clear(),
            // Bookkeeping (a client id), other ways a render ended (told by
            // the objects before them or by the command's error), and events
            // newer than this reporter (`Event` is non-exhaustive): nothing
            // to show in human output.
            _ => {}
        }
    }
}

/// How the command line offers a GUI action: what to say in a conversation
/// (the core's words), and the command that does the same.
pub(crate) fn action_hint(action: GuiAction) -> String {
    let command = match action {
        GuiAction::Export => Some("nemo export"),
        GuiAction::ShowTimeline => Some("nemo timeline"),
        GuiAction::ShowCredits => Some("nemo credits"),
        _ => None,
    };
    match command {
        Some(command) => format!("{} (or run `{command}`)", action.hint()),
        None => action.hint().to_owned(),
    }
}

/// A one-line field from the server (a file name, a URL): no control
/// character and no line break, so it cannot start a line of its own.
fn line(text: &str) -> std::borrow::Cow<'_, str> {
    nemo_core::ids::printable_line(text)
}
