//! Where things are printed.
//!
//! Human mode: content (the agent's words, timelines, saved paths, links) on
//! stdout; status and progress on stderr — a spinner with elapsed time while
//! the agent works, bars for upload, render and download — only when stderr
//! is a terminal; colour only without `NO_COLOR`. JSON mode (`--json`): stdout
//! carries NDJSON only and nothing animates.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use nemo_core::error::NemoError;
use nemo_core::ids::printable;
use serde_json::{json, Value};

/// Set once stdout's reader has gone (`nemo … | head -1`): later lines are
/// dropped, the work goes on and the exit code is the work's.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// What the one progress line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bar {
    /// Waiting, with elapsed time.
    Spinner,
    /// Bytes going up.
    Upload,
    /// Render percent.
    Render,
    /// Bytes coming down.
    Download,
}

/// The printer shared by everything a command runs.
#[derive(Debug)]
pub(crate) struct Output {
    json: bool,
    verbose: u8,
    fancy: bool,
    color: bool,
    bar: Mutex<Option<(Bar, ProgressBar)>>,
    speaker: Mutex<Option<String>>,
    item: Option<usize>,
    muted: bool,
}

impl Output {
    /// A printer for `--json` or human output.
    pub(crate) fn new(json: bool, verbose: u8) -> Output {
        let terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            json,
            verbose,
            fancy: terminal && !json,
            color: terminal && !no_color,
            bar: Mutex::new(None),
            speaker: Mutex::new(None),
            item: None,
            muted: false,
        }
    }

    /// A printer that shows nothing but warnings (a preparatory step).
    pub(crate) fn muted(&self) -> Output {
        Output {
            fancy: false,
            muted: true,
            ..self.for_item(0)
        }
    }

    /// A quiet printer for one item of a batch: no animation, content lines
    /// prefixed with `[n]`, JSON objects tagged with `"item": n`.
    pub(crate) fn for_item(&self, item: usize) -> Output {
        Output {
            json: self.json,
            verbose: self.verbose,
            fancy: false,
            color: self.color,
            bar: Mutex::new(None),
            speaker: Mutex::new(Some(format!("[{item}] "))),
            item: Some(item),
            muted: self.muted,
        }
    }

    /// True in `--json` mode.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// True when progress is animated (a terminal, not `--json`).
    pub(crate) fn fancy(&self) -> bool {
        self.fancy
    }

    /// Prefixes content lines with a speaker (the demo's transcript).
    pub(crate) fn set_speaker(&self, speaker: Option<&str>) {
        *lock(&self.speaker) = speaker.map(str::to_owned);
    }

    /// A line of content on stdout (human mode only).
    pub(crate) fn content(&self, text: &str) {
        if self.json {
            return;
        }
        let text = &*printable(text);
        let speaker = lock(&self.speaker).clone();
        let text = match speaker {
            Some(s) => indent_after(&s, text),
            None => text.to_owned(),
        };
        self.stdout_line(&text);
    }

    /// A raw line on stdout (human mode only), without a speaker.
    pub(crate) fn plain(&self, text: &str) {
        if !self.json {
            self.stdout_line(&printable(text));
        }
    }

    /// One NDJSON object on stdout (JSON mode only).
    pub(crate) fn emit(&self, mut value: Value) {
        if self.json {
            if let (Some(item), Some(obj)) = (self.item, value.as_object_mut()) {
                obj.insert("item".into(), item.into());
            }
            self.stdout_line(&value.to_string());
        }
    }

    /// A status line: the spinner's message on a terminal, a stderr line
    /// with `-v`, a `status` object in JSON mode.
    pub(crate) fn status(&self, message: &str) {
        if self.json {
            self.emit(json!({"type": "status", "message": message}));
        } else if self.fancy {
            self.spin(message);
        } else if self.verbose > 0 {
            self.stderr_line(&printable(message));
        }
    }

    /// Something the user should read even without a terminal (a note, a
    /// hint): stderr in human mode, a `status` object in JSON mode.
    pub(crate) fn info(&self, message: &str) {
        if self.json {
            self.emit(json!({"type": "status", "message": message}));
        } else {
            self.stderr_line(&printable(message));
        }
    }

    /// Detail for `-v` only (stderr; never in JSON).
    pub(crate) fn debug(&self, message: &str) {
        if !self.json && self.verbose > 0 {
            self.stderr_line(&printable(message));
        }
    }

    /// A warning on stderr (both modes: stdout stays NDJSON).
    pub(crate) fn warn(&self, message: &str) {
        let prefix = if self.color {
            "\x1b[33mwarning:\x1b[0m"
        } else {
            "warning:"
        };
        self.stderr_line(&format!("{prefix} {}", printable(message)));
    }

    /// The error that ended the command, printed once: an `error` object in
    /// JSON mode, `error: …` on stderr otherwise.
    pub(crate) fn error(&self, err: &NemoError) {
        self.clear();
        if self.json {
            // The wire form every frontend shares, plus this command line's advice.
            let mut v = nemo_core::ndjson::error_to_json(err);
            if let Some(hint) = hint(err) {
                v["hint"] = json!(hint);
            }
            self.emit(v);
        } else if err.kind == nemo_core::error::ErrorKind::Cancelled {
            // Not a failure to alarm anyone with: what stopped, how to go on.
            let said = err.to_string();
            let said = match hint(err) {
                Some(hint) => format!("{}; {hint}", said.trim_end().trim_end_matches('.')),
                None => said,
            };
            self.stderr_line(&printable(&said));
        } else {
            let prefix = if self.color {
                "\x1b[1;31merror:\x1b[0m"
            } else {
                "error:"
            };
            self.stderr_line(&format!("{prefix} {}", printable(&err.to_string())));
            if let Some(hint) = hint(err) {
                self.stderr_line(&format!("hint: {hint}"));
            }
        }
    }

    /// Shows (or re-labels) the spinner.
    pub(crate) fn spin(&self, message: &str) {
        if !self.fancy {
            return;
        }
        let message = &*nemo_core::ids::printable_line(message);
        let mut slot = lock(&self.bar);
        match &*slot {
            Some((Bar::Spinner, pb)) => pb.set_message(message.to_owned()),
            _ => {
                if let Some((_, old)) = slot.take() {
                    old.finish_and_clear();
                }
                let pb = ProgressBar::new_spinner();
                pb.set_style(self.style(Bar::Spinner));
                pb.set_message(message.to_owned());
                pb.enable_steady_tick(Duration::from_millis(100));
                *slot = Some((Bar::Spinner, pb));
            }
        }
    }

    /// Moves a bar (created on first use) to `done` of `total`.
    pub(crate) fn progress(&self, kind: Bar, label: &str, done: u64, total: Option<u64>) {
        if !self.fancy {
            return;
        }
        let mut slot = lock(&self.bar);
        let reuse = matches!(&*slot, Some((k, _)) if *k == kind);
        if !reuse {
            if let Some((_, old)) = slot.take() {
                old.finish_and_clear();
            }
            let pb = ProgressBar::new(total.unwrap_or(0));
            pb.set_style(self.style(kind));
            pb.set_message(label.to_owned());
            pb.enable_steady_tick(Duration::from_millis(200));
            *slot = Some((kind, pb));
        }
        if let Some((_, pb)) = &*slot {
            if let Some(t) = total {
                pb.set_length(t);
            }
            pb.set_position(done);
        }
    }

    /// Removes the progress line.
    pub(crate) fn clear(&self) {
        if let Some((_, pb)) = lock(&self.bar).take() {
            pb.finish_and_clear();
        }
    }

    fn style(&self, kind: Bar) -> ProgressStyle {
        let template = match (kind, self.color) {
            (Bar::Spinner, true) => "{spinner:.cyan} {msg} {elapsed:.dim}",
            (Bar::Spinner, false) => "{spinner} {msg} {elapsed}",
            (Bar::Render, true) => "{msg} [{bar:30.cyan/blue}] {pos:>3}% {elapsed:.dim}",
            (Bar::Render, false) => "{msg} [{bar:30}] {pos:>3}% {elapsed}",
            (_, true) => "{msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec:.dim}",
            (_, false) => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    fn stdout_line(&self, text: &str) {
        if self.muted || STDOUT_CLOSED.load(Ordering::Relaxed) {
            return;
        }
        self.suspend(|| {
            let mut out = std::io::stdout().lock();
            if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    STDOUT_CLOSED.store(true, Ordering::Relaxed);
                }
            }
        });
    }

    fn stderr_line(&self, text: &str) {
        if self.muted && !text.contains("warning:") {
            return;
        }
        self.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        });
    }

    fn suspend(&self, f: impl FnOnce()) {
        let slot = lock(&self.bar);
        match &*slot {
            Some((_, pb)) => pb.suspend(f),
            None => f(),
        }
    }
}

/// What to do next, in this command line's words, from the error's kind and
/// detail: the core's message (frontend-neutral) says what happened and
/// names no command, flag or variable.
pub(crate) fn hint(err: &NemoError) -> Option<&'static str> {
    use nemo_core::error::{ErrorDetail, ErrorKind};
    Some(match (&err.detail, err.kind) {
        (_, ErrorKind::OutputExists) => {
            "the render is kept in the job list: save it elsewhere with `nemo jobs --resume --dir DIR`, or replace the file with `nemo jobs --resume --overwrite`."
        }
        (Some(ErrorDetail::RenderRunning { .. }), _) => {
            "finish it later with `nemo jobs --resume`."
        }
        (Some(ErrorDetail::RenderNotSaved { .. }), _) => {
            "download it later with `nemo jobs --resume`."
        }
        (Some(ErrorDetail::UserTokenRejected), _) => {
            "NEMO_TOKEN was rejected (expired or invalid): set a valid token, or unset NEMO_TOKEN to use a free anonymous one."
        }
        (Some(ErrorDetail::FreeTokenRefused), _) => {
            "set NEMO_TOKEN to a token of your account, or try again later."
        }
        (Some(ErrorDetail::NothingToUpload), _) => {
            "attach files with --file PATH or links with --url URL."
        }
        (_, ErrorKind::SessionLost) => {
            "start again with --new-session."
        }
        (None, ErrorKind::Network) => "check your connection (or NEMO_API_URL) and try again.",
        _ => return None,
    })
}

fn indent_after(speaker: &str, text: &str) -> String {
    let pad = " ".repeat(speaker.chars().count());
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&pad);
        } else {
            out.push_str(speaker);
        }
        out.push_str(line);
    }
    if out.is_empty() {
        out.push_str(speaker.trim_end());
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only display state lives behind these locks; a poisoned one is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes as people read them: `43.8 KB`, `1.2 MB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_speakers() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(43_792), "43.8 KB");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(indent_after("nemo › ", "a\nb"), "nemo › a\n       b");
    }

    /// The core says what happened; this command line's advice comes from
    /// the error's kind and detail.
    #[test]
    fn advice_from_kind_and_detail() {
        use nemo_core::error::{ErrorDetail, ErrorKind};
        let with = |kind, detail| {
            let e = NemoError::new(kind, "What happened.");
            hint(&match detail {
                Some(d) => e.with_detail(d),
                None => e,
            })
        };
        let running = ErrorDetail::RenderRunning { id: "r1".into() };
        assert!(with(ErrorKind::Cancelled, Some(running))
            .unwrap()
            .contains("nemo jobs --resume"));
        let not_saved = ErrorDetail::RenderNotSaved { id: "r1".into() };
        assert!(with(ErrorKind::Network, Some(not_saved))
            .unwrap()
            .contains("nemo jobs --resume"));
        assert!(
            with(ErrorKind::AuthFailed, Some(ErrorDetail::UserTokenRejected))
                .unwrap()
                .contains("unset NEMO_TOKEN")
        );
        assert!(
            with(ErrorKind::RateLimited, Some(ErrorDetail::FreeTokenRefused))
                .unwrap()
                .contains("set NEMO_TOKEN")
        );
        assert!(
            with(ErrorKind::BadInput, Some(ErrorDetail::NothingToUpload))
                .unwrap()
                .contains("--file PATH")
        );
        assert!(with(ErrorKind::OutputExists, None)
            .unwrap()
            .contains("--overwrite"));
        assert!(with(ErrorKind::Network, None)
            .unwrap()
            .contains("NEMO_API_URL"));
        assert_eq!(with(ErrorKind::OutOfCredits, None), None);
    }
}
