//! Turns the session machine's events into what the user sees and what the
//! config directory remembers.

use crate::words::tr;
use std::path::PathBuf;
use std::sync::Arc;

use nemo_core::api::number;
use nemo_core::driver::{ProgressSink, TransferKind};
use nemo_core::error::NemoError;
use nemo_core::gui::GuiAction;
use nemo_core::machine::{Event, LinkKind, RenderOutcome, RenderPhase};
use nemo_core::time::human_duration;

use crate::output::{human_bytes, Bar, Output};
use crate::timeline_view;
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
    /// The command exports on its own (`run`, `batch`): no export hints.
    exporting: bool,
    /// The agent's words were the last thing shown (a dropped stream then
    /// marks them cut off).
    text_shown: bool,
    /// Real seconds per second of the session's clock (its waits).
    time_scale: f64,
    /// The render progress last shown, and for which render.
    progress_shown: Option<(String, f64)>,
}

impl Reporter {
    /// A reporter printing to `out`, naming the config folder `store` in
    /// its advice.
    pub(crate) fn new(out: Arc<Output>, store: FileStore, time_scale: f64) -> Reporter {
        Reporter {
            time_scale,
            out,
            store,
            session_id: None,
            task_id: None,
            downloaded: None,
            render_id: None,
            exporting: false,
            text_shown: false,
            progress_shown: None,
        }
    }

    /// `event` as it is shown: a render's progress never below what was
    /// shown before for the same render, and a poll without progress (or
    /// with a value that is not a number) at the last value shown.
    pub(crate) fn shown_progress<'e>(&mut self, event: &'e Event) -> std::borrow::Cow<'e, Event> {
        let Event::RenderProgress { id, progress, .. } = event else {
            return std::borrow::Cow::Borrowed(event);
        };
        let before = self
            .progress_shown
            .as_ref()
            .filter(|(shown, _)| shown == id)
            .map(|(_, p)| *p);
        let now = progress
            .filter(|p| p.is_finite())
            .map(|p| p.clamp(0.0, 100.0));
        let shown = match (before, now) {
            (Some(b), Some(n)) => Some(b.max(n)),
            (b, n) => b.or(n),
        };
        if let Some(p) = shown {
            self.progress_shown = Some((id.clone(), p));
        }
        if shown == *progress {
            return std::borrow::Cow::Borrowed(event);
        }
        let mut event = event.clone();
        if let Event::RenderProgress { progress, .. } = &mut event {
            *progress = shown;
        }
        std::borrow::Cow::Owned(event)
    }

    /// Says the command exports on its own (`run`, `batch`): the agent's
    /// "ready to export" is not offered as something to do.
    pub(crate) fn set_exporting(&mut self, yes: bool) {
        self.exporting = yes;
    }

    /// Transfer progress as bars.
    pub(crate) fn progress_sink(&self) -> ProgressSink {
        let out = self.out.clone();
        Arc::new(move |kind, p| {
            let (bar, label) = match kind {
                TransferKind::Upload => (Bar::Upload, tr("Uploading")),
                TransferKind::Download => (Bar::Download, tr("Downloading")),
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
        // Only a status (the spinner) may come between the words and the note.
        let text_shown = match event {
            Event::Status(_) => self.text_shown,
            _ => std::mem::take(&mut self.text_shown),
        };
        // Progress never goes back within a render, in either mode.
        let shown = self.shown_progress(event);
        let event = &*shown;
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
                out.info(tr("→ attach it with --file PATH or --url URL"));
            }
            Event::Note(note) => {
                if let Some((before, wait, after)) = checking_in(note) {
                    // A dropped stream: the words so far were not the whole reply.
                    if text_shown {
                        out.content(tr("[reply cut off]"));
                    }
                    if out.fancy() {
                        let why = before.trim_end().trim_end_matches(';');
                        if !why.is_empty() {
                            out.info(why);
                        }
                        // The core's clock runs at the session's time scale.
                        let scale = self.time_scale;
                        out.countdown(
                            tr("checking in "),
                            wait.mul_f64(scale.clamp(0.0, 1e6)),
                            after,
                        );
                        return;
                    }
                }
                out.info(note);
            }
            Event::Generation { url, message, .. } => {
                out.clear();
                match url {
                    Some(url) => out.server_content(&format!("{message} ({})", line(url))),
                    None => out.server_content(message),
                }
            }
            Event::Suggestions {
                message,
                suggestions,
            } => {
                out.clear();
                let said: Vec<String> = suggestions.iter().map(|s| format!("\"{s}\"")).collect();
                out.server_content(&format!("{message} {}", said.join(", ")));
            }
            Event::AgentText { text, actions } => {
                out.clear();
                let text = text.trim();
                if !text.is_empty() {
                    out.server_content(text);
                    self.text_shown = true;
                }
                for action in actions {
                    if self.exporting && *action == GuiAction::Export {
                        // The command exports next, on its own.
                        continue;
                    }
                    out.info(&format!("→ {}", action_hint(*action)));
                }
            }
            Event::StillWorking { elapsed } => {
                let message = format!("⏳ {} ({})", tr("Still working…"), human_duration(*elapsed));
                if out.fancy() {
                    out.info(&message);
                } else {
                    out.status(&message);
                }
            }
            Event::Change { summary } => {
                out.clear();
                out.content(&format!("{} {summary}", tr("Changed:")));
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
                        "{} {} ({})",
                        tr("Uploaded"),
                        line(&f.filename),
                        line(&detail.join(", "))
                    ));
                }
            }
            Event::Credits(c) => {
                out.clear();
                out.content(&format!("{} {c}", tr("Credits:")));
            }
            Event::Timeline { summary, .. } => {
                out.clear();
                out.content(summary);
                // On a terminal, the tracks as bars under the summary.
                if let Some(style) = out.timeline_style() {
                    if let Some(view) = timeline_view::from_summary(summary)
                        .and_then(|t| timeline_view::render(&t, style))
                    {
                        out.drawing(&view);
                    }
                }
            }
            Event::RenderStarting { id, .. } => {
                out.debug(&format!(
                    "Render {id} recorded in {}",
                    self.store.dir().join("jobs.json").display()
                ));
            }
            // A final phase is reported by `RenderCompleted` / `RenderEnded`.
            Event::RenderProgress {
                id,
                phase: RenderPhase::Pending | RenderPhase::Processing,
                progress,
            } => out.render_progress(id, progress.unwrap_or(0.0)),
            Event::RenderCompleted { id, url } => {
                out.clear();
                out.debug(&format!("Render {id} completed: {}", line(url)));
            }
            // Bound for stdout (`-o -`): the command says where it went.
            Event::Downloaded { path, .. } if nemo_client::is_writer_spool(path) => out.clear(),
            Event::Downloaded { path, bytes, .. } => {
                out.clear();
                out.content(&format!(
                    "{} {} ({})",
                    tr("Saved"),
                    path.display(),
                    human_bytes(*bytes)
                ));
            }
            Event::RenderEnded {
                outcome: RenderOutcome::Completed(url),
                ..
            } => out.content(&format!("{} {}", tr("Rendered:"), line(url))),
            Event::Link { kind, url } => match kind {
                LinkKind::Claim => {
                    out.content(&format!("{} {}", tr("Open in the browser:"), line(url)))
                }
                LinkKind::Register => {
                    out.content(&format!("{} {}", tr("Register to keep going:"), line(url)))
                }
                // A kind newer than this reporter: still a link to show.
                _ => out.content(&format!("{} {}", tr("Link:"), line(url))),
            },
            Event::Finished { result: Err(e), .. }
                if e.kind == nemo_core::error::ErrorKind::Cancelled =>
            {
                out.clear_interrupted()
            }
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
    // The core's words, in the command line's language.
    let said = tr(action.hint());
    match command {
        Some(command) => crate::words::trf("{} (or run `{}`)", &[&said, &command]),
        None => said.to_owned(),
    }
}

/// The core's note after a dropped stream (`… checking in 30s whether the
/// edit was applied…`), split around its wait: the words before, the wait,
/// the words after.
fn checking_in(note: &str) -> Option<(&str, std::time::Duration, &str)> {
    const MARK: &str = "checking in ";
    let at = note.find(MARK)?;
    let rest = &note[at + MARK.len()..];
    let wait = rest.split(' ').next()?;
    let mut secs = 0u64;
    let mut digits = String::new();
    for c in wait.chars() {
        match c {
            '0'..='9' => digits.push(c),
            'h' | 'm' | 's' => {
                let n: u64 = digits.parse().ok()?;
                digits.clear();
                secs += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
            }
            _ => return None,
        }
    }
    if !digits.is_empty() || secs == 0 {
        return None;
    }
    Some((
        &note[..at],
        std::time::Duration::from_secs(secs),
        &rest[wait.len()..],
    ))
}

/// A one-line field from the server (a file name, a URL): no control
/// character and no line break, so it cannot start a line of its own.
fn line(text: &str) -> std::borrow::Cow<'_, str> {
    nemo_core::ids::printable_line(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_wait_after_a_dropped_stream_is_read_from_the_note() {
        let note = "The connection to the agent dropped. Your message is not sent again (that could spend credits twice); checking in 30s whether the edit was applied…";
        let (before, wait, after) = checking_in(note).expect("a wait");
        assert!(before.ends_with("twice); "), "{before}");
        assert_eq!(wait, Duration::from_secs(30));
        assert_eq!(after, " whether the edit was applied…");
        let (_, wait, _) = checking_in("checking in 1m05s whether").unwrap();
        assert_eq!(wait, Duration::from_secs(65));
        assert_eq!(checking_in("checking in soon whether"), None);
        assert_eq!(checking_in("nothing to wait for"), None);
    }

    /// The render progress shown (the bar, the plain line and `--json`)
    /// never goes back within one render, and a poll without progress keeps
    /// the last value. Before: 50 then 1 moved the bar from 50 to 1, a poll
    /// without progress dropped it to 0, and `--json` went back too.
    #[test]
    fn render_progress_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = Arc::new(Output::new(true, 0, false));
        let mut r = Reporter::new(out, FileStore::at(dir.path()), 1.0);
        let progress = |id: &str, p: Option<f64>| Event::RenderProgress {
            id: id.into(),
            phase: RenderPhase::Processing,
            progress: p,
        };
        let mut shown = Vec::new();
        for (id, p) in [
            ("r1", Some(50.0)),
            ("r1", Some(1.0)),
            ("r1", None),
            ("r1", Some(f64::NAN)),
            ("r1", Some(60.0)),
            ("r2", Some(5.0)),
            ("r2", None),
        ] {
            let ev = progress(id, p);
            let ev = r.shown_progress(&ev);
            let json = nemo_core::ndjson::to_json(&ev).unwrap();
            shown.push(json["progress"].as_f64());
        }
        assert_eq!(
            shown,
            [50.0, 50.0, 50.0, 50.0, 60.0, 5.0, 5.0].map(Some).to_vec()
        );
        // A render not yet showing progress shows none.
        let ev = progress("r3", None);
        let ev = r.shown_progress(&ev);
        assert!(nemo_core::ndjson::to_json(&ev).unwrap()["progress"].is_null());
    }
}
