//! Where things are printed.
//!
//! Human mode: content (the agent's words, timelines, saved paths, links) on
//! stdout; status and progress on stderr — a spinner with elapsed time while
//! the agent works, bars for upload, render and download with rate and ETA —
//! when stderr is a terminal, else a plain progress line every few seconds;
//! colour only without `NO_COLOR`. Quiet mode (`-q`): results and errors
//! only. JSON mode (`--json`): stdout carries NDJSON only and nothing
//! animates. Sizes are decimal everywhere (kB, MB, GB: powers of 1000).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use nemo_core::error::NemoError;
use nemo_core::ids::{printable, printable_line};
use serde_json::{json, Value};

/// Set once stdout's reader has gone (`nemo … | head -1`): later lines are
/// dropped, the work goes on and the exit code is the work's.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Set when stdout carries data (`nemo export -o -` writes the video
/// there): every line meant for stdout goes to stderr instead.
static STDOUT_TAKEN: AtomicBool = AtomicBool::new(false);

/// Gives stdout to data for the rest of the process (see [`STDOUT_TAKEN`]).
pub(crate) fn take_stdout() {
    STDOUT_TAKEN.store(true, Ordering::Relaxed);
}

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
    /// A wait with a known end, counting down.
    Countdown,
}

/// How often a plain progress line is printed off a terminal.
const PLAIN_FIRST: Duration = Duration::from_secs(1);
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The printer shared by everything a command runs.
#[derive(Debug)]
pub(crate) struct Output {
    json: bool,
    verbose: u8,
    fancy: bool,
    color: bool,
    /// Draw timelines on stdout (a terminal), with colour or not.
    draw: Option<bool>,
    quiet: bool,
    bar: Mutex<Option<(Bar, ProgressBar)>>,
    speaker: Mutex<Option<String>>,
    item: Option<usize>,
    muted: bool,
    render: Arc<Mutex<Estimate>>,
    plain: Mutex<Plain>,
}

impl Output {
    /// A printer for `--json` or human output; `quiet` (`-q`) shows results
    /// and errors only.
    pub(crate) fn new(json: bool, verbose: u8, quiet: bool) -> Output {
        let terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let draw = (std::io::stdout().is_terminal() && !json).then_some(!no_color);
        Output {
            json,
            verbose: if quiet { 0 } else { verbose },
            fancy: terminal && !json && !quiet,
            color: terminal && !no_color,
            draw,
            quiet,
            bar: Mutex::new(None),
            speaker: Mutex::new(None),
            item: None,
            muted: false,
            render: Arc::default(),
            plain: Mutex::default(),
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
            draw: None,
            quiet: self.quiet,
            bar: Mutex::new(None),
            speaker: Mutex::new(Some(format!("[{item}] "))),
            item: Some(item),
            muted: self.muted,
            render: Arc::default(),
            plain: Mutex::default(),
        }
    }

    /// True in `--json` mode.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// True when progress is animated (a terminal, not `--json`, not `-q`).
    pub(crate) fn fancy(&self) -> bool {
        self.fancy
    }

    /// True when transfer progress is shown at all: animated on a
    /// terminal, a plain line every few seconds otherwise (never with
    /// `--json` or `-q`).
    pub(crate) fn shows_progress(&self) -> bool {
        !self.json && !self.quiet && !self.muted
    }

    /// How to draw a timeline on stdout, when stdout is a terminal (human
    /// mode, not a batch item).
    pub(crate) fn timeline_style(&self) -> Option<crate::timeline_view::ViewStyle> {
        if self.muted || self.item.is_some() {
            return None;
        }
        let indent = lock(&self.speaker)
            .as_ref()
            .map_or(0, |s| s.chars().count());
        self.draw.map(|color| {
            let mut style = crate::timeline_view::ViewStyle::terminal(color);
            style.width = style.width.saturating_sub(indent);
            style
        })
    }

    /// A drawing of our own (a timeline) on stdout: lines under the speaker
    /// like [`Output::content`], escape sequences kept (the caller cleaned
    /// what came from the server).
    pub(crate) fn drawing(&self, text: &str) {
        if self.json {
            return;
        }
        let speaker = lock(&self.speaker).clone();
        let pad = speaker
            .map(|s| " ".repeat(s.chars().count()))
            .unwrap_or_default();
        let text: Vec<String> = text.lines().map(|l| format!("{pad}{l}")).collect();
        self.stdout_line(&text.join("\n"));
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
        let speaker = lock(&self.speaker).clone();
        let text = content_text(speaker.as_deref(), "", text, self.wrap_width());
        self.stdout_line(&text);
    }

    /// The width stdout's lines are wrapped to: the terminal's on a
    /// terminal, none for a pipe.
    fn wrap_width(&self) -> Option<usize> {
        self.draw
            .map(|_| crate::timeline_view::terminal_width(false))
    }

    /// The server's own words (the agent's reply, its messages) as
    /// content: never at column 0, where nemo's own lines start. Every
    /// line is indented (the first one too) or follows the speaker; on a
    /// terminal the text is wrapped to the width left with a hanging
    /// indent, so neither a newline, an invisible character (shown escaped
    /// by [`printable`]), a look-alike nor a soft wrap can start a line that
    /// passes for nemo's ("Saved …", "error:", "→ …").
    pub(crate) fn server_content(&self, text: &str) {
        if self.json {
            return;
        }
        let speaker = lock(&self.speaker).clone();
        let text = content_text(speaker.as_deref(), CONTINUED, text, self.wrap_width());
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
            self.told("", "", message);
        }
    }

    /// Something the user should read even without a terminal (a note, a
    /// hint): stderr in human mode, a `status` object in JSON mode.
    pub(crate) fn info(&self, message: &str) {
        if self.json {
            self.emit(json!({"type": "status", "message": message}));
        } else if !self.quiet {
            self.told("", "", message);
        }
    }

    /// Detail for `-v` only (stderr; never in JSON).
    pub(crate) fn debug(&self, message: &str) {
        if !self.json && self.verbose > 0 {
            self.told("", "", message);
        }
    }

    /// A warning on stderr (both modes: stdout stays NDJSON).
    pub(crate) fn warn(&self, message: &str) {
        self.told(crate::words::tr("warning:"), "33", message);
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
            self.told("", "", &said);
        } else {
            // A list of ours (a batch manifest's problems) stays a list.
            self.told(crate::words::tr("error:"), "1;31", &err.to_string());
            if let Some(hint) = hint(err) {
                self.stderr_line(&format!("{} {hint}", crate::words::tr("hint:")));
            }
        }
    }

    /// A line of nemo's on stderr, after `word` ("warning:", "error:"; empty
    /// for none) in colour `sgr` on a colour terminal. The message may
    /// carry the server's words: made [`printable`], every line after the
    /// first indented and, on a terminal, wrapped with that hanging indent,
    /// so that neither a newline in them nor the terminal's soft wrap starts
    /// a line at column 0, where nemo's own lines ("Saved …") start.
    fn told(&self, word: &str, sgr: &str, message: &str) {
        let width = std::io::stderr()
            .is_terminal()
            .then(|| crate::timeline_view::terminal_width(true));
        let said = told_text(word, message, width);
        if self.color && !word.is_empty() {
            let rest = &said[word.len()..];
            self.stderr_line(&format!("\x1b[{sgr}m{word}\x1b[0m{rest}"));
        } else {
            self.stderr_line(&said);
        }
    }

    /// Shows (or re-labels) the spinner.
    pub(crate) fn spin(&self, message: &str) {
        if !self.fancy {
            return;
        }
        let message = &*printable_line(message);
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

    /// Moves a bar (created on first use) to `done` of `total` bytes; off
    /// a terminal, a plain line every few seconds on stderr
    /// (`downloading 12.3 MB / 40.0 MB, 3.1 MB/s`).
    pub(crate) fn progress(&self, kind: Bar, label: &str, done: u64, total: Option<u64>) {
        if !self.fancy {
            let now = Instant::now();
            let mut plain = lock(&self.plain);
            if plain.due(kind, now, done) && self.shows_progress() {
                let line = plain.bytes_line(label, done, total, now);
                drop(plain);
                self.progress_line(&line);
            }
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

    /// A render's progress (0–100): a bar that moves smoothly between polls
    /// with an ETA from progress over time; off a terminal, a plain line
    /// every few seconds (`rendering 45% (ETA 0:20)`).
    pub(crate) fn render_progress(&self, render_id: &str, percent: f64) {
        let now = Instant::now();
        let percent = if percent.is_finite() {
            percent.clamp(0.0, 100.0)
        } else {
            0.0
        };
        let percent = {
            let mut estimate = lock(&self.render);
            if estimate.render_id.as_deref() != Some(render_id) {
                // Another render (the next job, a second export): from scratch.
                *estimate = Estimate {
                    render_id: Some(render_id.to_owned()),
                    ..Estimate::default()
                };
            }
            estimate.observe(now, percent);
            // Never back within a render: a lower value is not believed.
            estimate.last.map_or(percent, |(_, p)| p)
        };
        if !self.fancy {
            let mut plain = lock(&self.plain);
            if plain.due(Bar::Render, now, percent as u64) && self.shows_progress() {
                drop(plain);
                let line = lock(&self.render).line(now);
                self.progress_line(&line);
            }
            return;
        }
        let mut slot = lock(&self.bar);
        if !matches!(&*slot, Some((Bar::Render, _))) {
            if let Some((_, old)) = slot.take() {
                old.finish_and_clear();
            }
            let pb = ProgressBar::new(100);
            pb.set_style(self.style(Bar::Render));
            pb.set_message("Rendering");
            pb.enable_steady_tick(Duration::from_millis(200));
            *slot = Some((Bar::Render, pb));
        }
        if let Some((_, pb)) = &*slot {
            pb.set_position(percent.round() as u64);
        }
    }

    /// A wait that ends in `wait`: `{before}` and a countdown (`0:27`)
    /// then `{after}`, on the spinner line (a terminal only).
    pub(crate) fn countdown(&self, before: &str, wait: Duration, after: &str) {
        if !self.fancy {
            return;
        }
        let until = Instant::now() + wait;
        let mut slot = lock(&self.bar);
        if let Some((_, old)) = slot.take() {
            old.finish_and_clear();
        }
        let pb = ProgressBar::new_spinner();
        let left = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let left = until.saturating_duration_since(Instant::now());
            // Rounded up: the last second shows `0:01`, not `0:00`.
            let ms = (left.as_millis() as f64 / 1000.0).ceil() * 1000.0;
            let _ = w.write_str(&crate::timeline_view::clock(ms));
        };
        let template = if self.color {
            "{spinner:.cyan} {prefix}{left:.bold}{msg}"
        } else {
            "{spinner} {prefix}{left}{msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("left", left);
        pb.set_style(style);
        pb.set_prefix(printable_line(before).into_owned());
        pb.set_message(printable_line(after).into_owned());
        pb.enable_steady_tick(Duration::from_millis(100));
        *slot = Some((Bar::Countdown, pb));
    }

    /// Removes the progress line after a Ctrl-C. The bar fills its line to
    /// the terminal's edge, so the terminal's `^C` echo wraps onto a line of
    /// its own below it: that line is cleared, then the bar's.
    pub(crate) fn clear_interrupted(&self) {
        let bar = lock(&self.bar).take();
        if let Some((_, pb)) = bar {
            pb.finish_and_clear();
            if self.fancy && std::io::stdin().is_terminal() {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\x1b[1A\r\x1b[2K");
                let _ = err.flush();
            }
        }
        lock(&self.plain).kind = None;
    }

    /// Removes the progress line.
    pub(crate) fn clear(&self) {
        if let Some((_, pb)) = lock(&self.bar).take() {
            pb.finish_and_clear();
        }
        lock(&self.plain).kind = None;
    }

    fn style(&self, kind: Bar) -> ProgressStyle {
        let dim = if self.color { ":.dim" } else { "" };
        let bar = if self.color {
            "{bar:25.cyan/blue}"
        } else {
            "{bar:25}"
        };
        let template = match kind {
            Bar::Spinner | Bar::Countdown if self.color => {
                "{spinner:.cyan} {msg} {elapsed:.dim}".to_owned()
            }
            Bar::Spinner | Bar::Countdown => "{spinner} {msg} {elapsed}".to_owned(),
            Bar::Render => format!("{{msg}} {{smooth}} {{eta_render{dim}}}"),
            Bar::Upload | Bar::Download => {
                format!("{{msg}} [{bar}] {{sizes}} {{rate{dim}}} {{eta_bytes{dim}}}")
            }
        };
        let estimate = self.render.clone();
        let color = self.color;
        let smooth = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let shown = lock(&estimate).shown(Instant::now());
            let _ = w.write_str(&render_bar(shown, 25, color));
        };
        let estimate = self.render.clone();
        let eta_render = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            if let Some(eta) = lock(&estimate)
                .eta(Instant::now())
                .filter(|e| e.as_secs() > 0)
            {
                let _ = write!(w, "ETA {}", clock(eta));
            }
        };
        let sizes = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&sizes(s.pos(), s.len().filter(|t| *t > 0)));
        };
        let rate = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let per_sec = s.per_sec();
            if per_sec.is_finite() && per_sec >= 1.0 {
                let _ = write!(w, "{}/s", human_bytes(per_sec as u64));
            }
        };
        let eta_bytes = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let soon = s.eta() < Duration::from_secs(1);
            if s.len().is_some_and(|t| t > 0 && s.pos() < t) && s.per_sec() >= 1.0 && !soon {
                let _ = write!(w, "ETA {}", clock(s.eta()));
            }
        };
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("smooth", smooth)
            .with_key("eta_render", eta_render)
            .with_key("sizes", sizes)
            .with_key("rate", rate)
            .with_key("eta_bytes", eta_bytes)
            .progress_chars("=> ")
    }

    /// A plain progress line on stderr (a batch item's prefixed `[n]`).
    fn progress_line(&self, line: &str) {
        match self.item {
            Some(item) => self.stderr_line(&format!("[{item}] {line}")),
            None => self.stderr_line(line),
        }
    }

    fn stdout_line(&self, text: &str) {
        if STDOUT_TAKEN.load(Ordering::Relaxed) {
            return self.stderr_line(text);
        }
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
        if self.muted && !text.contains(crate::words::tr("warning:")) {
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
    Some(crate::words::tr(match (&err.detail, err.kind) {
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
    }))
}

/// A line of content: after the speaker (its width as the indent of the
/// lines after the first) or, without one, after `bare_first` (nothing for
/// nemo's own lines, an indent for the server's) with the lines after the
/// first indented; with a `width` (a terminal), wrapped with that hanging
/// indent.
fn content_text(
    speaker: Option<&str>,
    bare_first: &str,
    text: &str,
    width: Option<usize>,
) -> String {
    let text = printable(text);
    match speaker {
        Some(s) => {
            let pad = " ".repeat(crate::timeline_view::text_width(s));
            let text = text.lines().collect::<Vec<_>>().join("\n");
            let out = hanging(&text, s, &pad, width);
            if text.is_empty() {
                s.trim_end().to_owned()
            } else {
                out
            }
        }
        None => hanging(&text, bare_first, CONTINUED, width),
    }
}

/// `word message` (`word` "error:", "warning:", or empty for none), made
/// [`printable`]: lines after the first, and with a `width` every wrapped
/// piece, indented. A newline in an agent's words keeps a list a list, but
/// never starts a line where nemo's own lines start (a forged "Saved …").
fn told_text(word: &str, message: &str, width: Option<usize>) -> String {
    let first = if word.is_empty() {
        String::new()
    } else {
        format!("{word} ")
    };
    hanging(&printable(message), &first, CONTINUED, width)
}

/// `text` with `first` before its first line and `rest` before every other
/// (empty lines stay empty); with a `width`, each line is wrapped (at a
/// space when there is one, a tab counted as 8 columns) so that no line,
/// indent included, is wider: a terminal's soft wrap never reaches column 0.
fn hanging(text: &str, first: &str, rest: &str, width: Option<usize>) -> String {
    // The wider indent counts: no line, the first included, is wider than
    // `width` (down to one column of text on a tiny terminal).
    let indent =
        crate::timeline_view::text_width(first).max(crate::timeline_view::text_width(rest));
    let room = width.map(|w| w.saturating_sub(indent).max(1));
    let mut lines = Vec::new();
    for line in text.split('\n') {
        match room {
            Some(room) => lines.extend(wrap(line, room)),
            None => lines.push(line.to_owned()),
        }
    }
    let lines: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{first}{l}"),
            _ if l.is_empty() => String::new(),
            _ => format!("{rest}{l}"),
        })
        .collect();
    lines.join("\n")
}

/// `line` cut into pieces of at most `room` columns, between words (the
/// spaces at a cut are dropped, the others kept). A word wider than the
/// room is cut, except a URL or a path: cut, it could no longer be copied
/// or opened, so it stands whole on a line of its own and runs past the
/// edge (it holds no space, so the terminal's own wrap of it cannot show a
/// line that passes for nemo's).
fn wrap(line: &str, room: usize) -> Vec<String> {
    let columns = |c: char| match c {
        '\t' => 8,
        c => crate::timeline_view::char_width(c),
    };
    let width = |s: &str| s.chars().map(columns).sum::<usize>();
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut used = 0;
    let mut rest = line;
    while !rest.is_empty() {
        // The spaces before the next word, and the word.
        let body = rest.trim_start_matches(' ');
        let gap = &rest[..rest.len() - body.len()];
        let end = body.find(' ').unwrap_or(body.len());
        let word = &body[..end];
        rest = &body[end..];
        let (gw, w) = (width(gap), width(word));
        if used + gw + w <= room || cur.trim().is_empty() && word.is_empty() {
            cur.push_str(gap);
            cur.push_str(word);
            used += gw + w;
            continue;
        }
        if !cur.trim().is_empty() {
            pieces.push(std::mem::take(&mut cur));
            used = 0;
        } else {
            // Only an indent so far: keep it.
            used = width(&cur);
        }
        // A URL or a path is printable ASCII through and through: a "word"
        // holding `://` or `/` and blanks of another script is neither,
        // and is cut.
        let whole = word.contains(['/', '\\']) && word.chars().all(|c| c.is_ascii_graphic());
        if used + w <= room || whole {
            cur.push_str(word);
            used += w;
            continue;
        }
        for c in word.chars() {
            let cw = columns(c);
            if used + cw > room && !cur.trim().is_empty() {
                pieces.push(std::mem::take(&mut cur));
                used = 0;
            }
            cur.push(c);
            used += cw;
        }
    }
    pieces.push(cur);
    pieces
}

/// How a continued line of server text is indented.
const CONTINUED: &str = "  ";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only display state lives behind these locks; a poisoned one is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) use nemo_core::units::human_bytes;

/// `12.3 MB / 40.0 MB`, or `12.3 MB` when the total is not known.
fn sizes(done: u64, total: Option<u64>) -> String {
    match total {
        Some(t) => format!("{} / {}", human_bytes(done), human_bytes(t)),
        None => human_bytes(done),
    }
}

/// `m:ss` of a duration (an ETA, a countdown).
fn clock(d: Duration) -> String {
    crate::timeline_view::clock(d.as_secs_f64() * 1000.0)
}

/// `[=========>          ]  45%` for a render at `percent`.
fn render_bar(percent: f64, width: usize, color: bool) -> String {
    let filled = ((percent / 100.0) * width as f64).floor() as usize;
    let filled = filled.min(width);
    let mut bar = "=".repeat(filled);
    if filled < width {
        bar.push('>');
        bar.push_str(&" ".repeat(width - filled - 1));
    }
    let bar = if color {
        format!("\x1b[36m{bar}\x1b[0m")
    } else {
        bar
    };
    format!("[{bar}] {:>3}%", percent.floor() as u64)
}

/// A render's progress over time: the rate it moves at, the percentage to
/// show between two polls (moving on at that rate, never past where the
/// next poll is expected, never backwards) and the time left.
#[derive(Debug, Default)]
pub(crate) struct Estimate {
    /// The render it is about.
    render_id: Option<String>,
    /// The first answer that showed progress: time and percent.
    first: Option<(Instant, f64)>,
    /// The answer before the last one.
    previous: Option<(Instant, f64)>,
    /// The last answer.
    last: Option<(Instant, f64)>,
    /// What was last shown.
    shown: f64,
}

impl Estimate {
    /// A status answer said `percent` at `now`.
    pub(crate) fn observe(&mut self, now: Instant, percent: f64) {
        if let Some((_, last)) = self.last {
            if percent < last {
                // A server that goes back is not believed; nothing moves back.
                return;
            }
        }
        if self.first.is_none() {
            self.first = Some((now, percent));
        }
        self.previous = self.last;
        self.last = Some((now, percent));
        self.shown = self.shown.max(percent);
    }

    /// Percent per second, from the first answer to the last.
    pub(crate) fn rate(&self) -> Option<f64> {
        let ((t0, p0), (t1, p1)) = (self.first?, self.last?);
        let secs = t1.saturating_duration_since(t0).as_secs_f64();
        (secs > 0.0 && p1 > p0).then(|| (p1 - p0) / secs)
    }

    /// The percentage to show at `now`.
    pub(crate) fn shown(&mut self, now: Instant) -> f64 {
        let Some((t1, p1)) = self.last else {
            return self.shown;
        };
        let guess = match (self.rate(), self.previous) {
            (Some(rate), Some((t0, _))) => {
                // At most one poll interval ahead of the last answer.
                let interval = t1.saturating_duration_since(t0).as_secs_f64();
                let ahead = now
                    .saturating_duration_since(t1)
                    .as_secs_f64()
                    .min(interval);
                (p1 + rate * ahead).min(99.0)
            }
            _ => p1,
        };
        self.shown = self.shown.max(guess).min(100.0);
        self.shown
    }

    /// The time left at `now`, once a rate is known.
    pub(crate) fn eta(&mut self, now: Instant) -> Option<Duration> {
        let rate = self.rate()?;
        let left = (100.0 - self.shown(now)).max(0.0) / rate;
        (left.is_finite() && left < 86_400.0).then(|| Duration::from_secs_f64(left))
    }

    /// `rendering 45% (ETA 0:20)`, for a plain progress line.
    pub(crate) fn line(&mut self, now: Instant) -> String {
        let shown = self.last.map_or(0.0, |(_, p)| p);
        match self.eta(now).filter(|eta| eta.as_secs() > 0) {
            Some(eta) => {
                crate::words::trf("rendering {}% (ETA {})", &[&shown.floor(), &clock(eta)])
            }
            None => crate::words::trf("rendering {}%", &[&shown.floor()]),
        }
    }
}

/// When the plain progress lines off a terminal are due, and the rate of
/// the transfer they tell about.
#[derive(Debug, Default)]
pub(crate) struct Plain {
    /// What the lines are about now, since when, from which amount.
    kind: Option<(Bar, Instant, u64)>,
    /// The last line's time.
    last: Option<Instant>,
}

impl Plain {
    /// True when a line about `kind` is due at `now`: a second after it
    /// started, then every five seconds.
    pub(crate) fn due(&mut self, kind: Bar, now: Instant, done: u64) -> bool {
        if self.kind.is_none_or(|(k, _, _)| k != kind) {
            self.kind = Some((kind, now, done));
            self.last = None;
        }
        let since = self.kind.map_or(now, |(_, t, _)| t);
        let due = match self.last {
            None => now.saturating_duration_since(since) >= PLAIN_FIRST,
            Some(last) => now.saturating_duration_since(last) >= PLAIN_EVERY,
        };
        if due {
            self.last = Some(now);
        }
        due
    }

    /// `downloading 12.3 MB / 40.0 MB, 3.1 MB/s`.
    pub(crate) fn bytes_line(
        &self,
        label: &str,
        done: u64,
        total: Option<u64>,
        now: Instant,
    ) -> String {
        let mut line = format!("{} {}", label.to_lowercase(), sizes(done, total));
        if let Some((_, since, from)) = self.kind {
            let secs = now.saturating_duration_since(since).as_secs_f64();
            let moved = done.saturating_sub(from) as f64;
            if secs > 0.0 && moved > 0.0 {
                let rate = moved / secs;
                line.push_str(&format!(", {}/s", human_bytes(rate as u64)));
                if let Some(t) = total.filter(|t| *t > done) {
                    let eta = Duration::from_secs_f64((t - done) as f64 / rate);
                    line.push_str(&format!(" (ETA {})", clock(eta)));
                }
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline_view::text_width;

    #[test]
    fn sizes_and_speakers() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(43_792), "43.8 kB");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        // Decimal, as the service counts: never GiB next to GB.
        assert_eq!(human_bytes(1_600_000_000), "1.6 GB");
        assert_eq!(human_bytes(510_000_000), "510.0 MB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(
            content_text(Some("nemo › "), "", "a\nb", None),
            "nemo › a\n       b"
        );
        assert_eq!(content_text(Some("nemo › "), "", "", None), "nemo ›");
    }

    /// Server text never starts at column 0: indented from its first
    /// line, and on a terminal wrapped with a hanging indent, so a first
    /// line padded to the width cannot soft-wrap "Saved" to column 0.
    #[test]
    fn server_text_is_indented_and_wrapped() {
        assert_eq!(hanging("ok\nSaved x", "  ", "  ", None), "  ok\n  Saved x");
        assert_eq!(hanging("a\n\nb", "[1] ", "    ", None), "[1] a\n\n    b");
        let padded = format!("fake{}Saved fake.mp4 (12.0 MB)", " ".repeat(36));
        let shown = hanging(&padded, "  ", "  ", Some(40));
        for line in shown.lines() {
            assert!(line.starts_with("  "), "{shown:?}");
            assert!(text_width(line) <= 40, "{shown:?}");
        }
        assert!(shown.contains("\n  Saved fake.mp4"), "{shown:?}");
        let long = "word ".repeat(30);
        let shown = hanging(&long, "  ", "  ", Some(20));
        assert!(shown
            .lines()
            .all(|l| l.starts_with("  word") && text_width(l) <= 20));
        // A word wider than the room is cut where it must be.
        let shown = hanging(&"x".repeat(50), "  ", "  ", Some(20));
        assert_eq!(shown.lines().count(), 3, "{shown:?}");
        assert!(shown
            .lines()
            .all(|l| l.starts_with("  x") && text_width(l) <= 20));
        // Wide characters count two columns, a tab eight.
        let shown = hanging(&"日本語".repeat(10), "  ", "  ", Some(20));
        assert!(shown.lines().all(|l| text_width(l) <= 20), "{shown:?}");
        let shown = hanging("a\tb\tc\td\te", "  ", "  ", Some(20));
        assert!(shown.lines().count() >= 2, "{shown:?}");
    }

    /// Every line that carries server text is wrapped on a terminal, down
    /// to a tiny width: no line is wider than the terminal (its soft wrap
    /// would start a line at column 0), every one after the first indented.
    #[test]
    fn every_line_with_server_text_is_wrapped_to_the_terminal() {
        let fits = |shown: &str, width: usize, first: &str| {
            for (i, line) in shown.lines().enumerate() {
                assert!(text_width(line) <= width, "{width}: {shown:?}");
                let indent = if i == 0 { first } else { "  " };
                assert!(line.starts_with(indent), "{width}: {shown:?}");
            }
        };
        // A summary of ours with a server label in it.
        let changed = format!(
            "Changed: title x{}Saved /home/u/x.mp4 (12 MB)",
            " ".repeat(60)
        );
        let shown = content_text(None, "", &changed, Some(40));
        fits(&shown, 40, "Changed:");
        assert!(shown.lines().count() > 1, "{shown:?}");
        assert_eq!(
            content_text(None, "", &changed, None),
            changed,
            "a pipe: as is"
        );
        // A server error padded with braille blanks.
        let message = format!("bad{}Saved /home/u/x.mp4 (12 MB)", "\u{2800}".repeat(60));
        let shown = told_text("error:", &message, Some(40));
        fits(&shown, 40, "error: bad");
        assert_eq!(told_text("error:", "a\nb", None), "error: a\n  b");
        // A warning or a note of ours with the server's words in it: the
        // same on stderr.
        let shown = told_text("warning:", &changed, Some(40));
        fits(&shown, 40, "warning: Changed:");
        let shown = told_text("", &changed, Some(40));
        fits(&shown, 40, "Changed:");
        // Tiny terminals: one column of text after the indent, never more.
        for width in 3..12 {
            let shown = hanging("Saved x.mp4 (12 MB)", "  ", "  ", Some(width));
            fits(&shown, width, "  ");
            // A path stands whole on a line of its own (it must still be
            // copied), the words around it within the width.
            let shown = hanging("Saved /home/u/x.mp4 (12 MB)", "  ", "  ", Some(width));
            for line in shown.lines() {
                assert!(
                    text_width(line) <= width || line == "  /home/u/x.mp4",
                    "{width}: {shown:?}"
                );
            }
        }
        // A URL is never cut (it must still open): whole, on a line of its
        // own, the words around it wrapped as usual.
        let url = format!("https://cdn.example/{}.mp4?sig=abc", "r".repeat(70));
        let shown = hanging(&format!("Rendered: {url} ok"), "", "  ", Some(40));
        assert_eq!(shown, format!("Rendered:\n  {url}\n  ok"));
        // Nor a path in a note of ours.
        let path = format!("/home/u/{}/session.har", "d".repeat(50));
        let shown = told_text("", &format!("Recorded the session to {path}"), Some(40));
        assert_eq!(shown, format!("Recorded the session to\n  {path}"));
        // Blanks of another script do not make a URL of a word.
        let fake = format!(
            "https://x{}Saved\u{2800}/home/u/x.mp4",
            "\u{2800}".repeat(60)
        );
        fits(&hanging(&fake, "  ", "  ", Some(40)), 40, "  ");
        // A wide character needs two: from four columns on.
        for width in 4..12 {
            let shown = hanging("Saved 日本語 x", "  ", "  ", Some(width));
            fits(&shown, width, "  ");
        }
    }

    /// Server text keeps its lines, but only its first starts a line.
    #[test]
    fn server_text_never_starts_a_line_after_its_first() {
        let shown = |text| told_text("", text, None);
        assert_eq!(shown("one line"), "one line");
        assert_eq!(
            shown("ok\nSaved fake.mp4 (1 MB)"),
            "ok\n  Saved fake.mp4 (1 MB)"
        );
        assert_eq!(shown("list:\n\n- a\r\n- b"), "list:\n\n  - a\n  - b");
        assert_eq!(shown("a\rSaved"), "a\\u{d}Saved");
    }

    /// The render bar moves on between two polls at the rate seen so far,
    /// never past where the next poll is expected and never backwards; the
    /// ETA comes from the same rate.
    #[test]
    fn render_estimate_interpolates_and_never_goes_back() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut e = Estimate::default();
        e.observe(at(0.0), 10.0);
        assert_eq!(e.shown(at(5.0)), 10.0, "no rate yet: no guess");
        assert_eq!(e.eta(at(5.0)), None);
        e.observe(at(15.0), 40.0); // 2 % a second
        assert_eq!(e.shown(at(15.0)), 40.0);
        assert_eq!(e.shown(at(20.0)), 50.0, "between polls");
        assert_eq!(e.eta(at(20.0)), Some(Duration::from_secs(25)));
        assert_eq!(e.shown(at(60.0)), 70.0, "at most one poll interval ahead");
        e.observe(at(30.0), 55.0); // slower than guessed
        assert_eq!(e.shown(at(30.0)), 70.0, "never backwards");
        e.observe(at(31.0), 20.0); // a server going back is not believed
        assert_eq!(e.last.map(|(_, p)| p), Some(55.0));
        e.observe(at(40.0), 100.0);
        assert_eq!(e.shown(at(40.0)), 100.0);
        assert_eq!(e.line(at(40.0)), "rendering 100%");
        let mut e = Estimate::default();
        e.observe(at(0.0), 0.0);
        e.observe(at(10.0), 45.0);
        assert_eq!(e.line(at(10.0)), "rendering 45% (ETA 0:12)");
        assert_eq!(render_bar(45.0, 20, false), "[=========>          ]  45%");
    }

    /// Each render has its own estimate: a second export (or the next
    /// resumed job) does not start at the last one's 100 %.
    #[test]
    fn the_next_render_starts_from_scratch() {
        let out = Output::new(false, 0, false);
        out.render_progress("r1", 100.0);
        assert_eq!(lock(&out.render).shown(Instant::now()), 100.0);
        out.render_progress("r2", 10.0);
        assert_eq!(lock(&out.render).shown(Instant::now()), 10.0);
        out.render_progress("r2", 5.0);
        assert_eq!(lock(&out.render).shown(Instant::now()), 10.0);
    }

    /// Off a terminal: a line a second after a transfer starts, then every
    /// five seconds, with the rate and the time left.
    #[test]
    fn plain_progress_lines_every_few_seconds() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut p = Plain::default();
        assert!(!p.due(Bar::Download, at(0.0), 0));
        assert!(!p.due(Bar::Download, at(0.5), 1_000_000));
        assert!(p.due(Bar::Download, at(4.0), 12_300_000));
        assert_eq!(
            p.bytes_line("Downloading", 12_300_000, Some(40_000_000), at(4.0)),
            "downloading 12.3 MB / 40.0 MB, 3.1 MB/s (ETA 0:09)"
        );
        assert!(!p.due(Bar::Download, at(8.0), 20_000_000));
        assert!(p.due(Bar::Download, at(9.0), 20_000_000));
        assert_eq!(
            Plain::default().bytes_line("Uploading", 500, None, at(9.0)),
            "uploading 500 bytes"
        );
        // Another kind starts its own clock.
        assert!(!p.due(Bar::Render, at(9.5), 5));
        assert!(p.due(Bar::Render, at(11.0), 7));
    }

    /// `-q`: no progress, no info, no status; results and errors still.
    #[test]
    fn quiet_shows_results_and_errors_only() {
        let quiet = Output::new(false, 2, true);
        assert!(!quiet.fancy());
        assert!(!quiet.shows_progress());
        assert_eq!(quiet.verbose, 0);
        let normal = Output::new(false, 0, false);
        assert!(normal.shows_progress());
        assert!(!Output::new(true, 0, false).shows_progress());
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
