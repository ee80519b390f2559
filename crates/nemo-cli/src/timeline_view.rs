//! The timeline drawn for a terminal: a time ruler in m:ss and one row of
//! bars per track (its name, each clip's label, volume and span), coloured
//! by what the track holds unless `NO_COLOR`.
//!
//! ```text
//!       0:00 ──────────── 0:05 ──────────── 0:10
//! Video ├ city timelapse 0:00–0:10 ────────────┤
//! BGM   ├ Lo-fi 35% 0:00–0:10 ─────────────────┤
//! Title ├ "Urban Dreams" ┤
//! ```
//!
//! Pipes and `--json` get the one-line summary only; this is drawn under it
//! on a terminal. The tracks come from the core's [`Timeline`]: the
//! `Event::Timeline` carries the summary the core wrote from it, which
//! [`from_summary`] reads back and accepts only when the core writes the
//! same summary again from what was read.

use nemo_core::draft::{Segment, Timeline, Track, TrackKind};

/// The widest a track name is shown.
const NAME_MAX: usize = 12;
/// The narrowest the bars are drawn.
const BARS_MIN: usize = 20;

/// How the drawing is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViewStyle {
    /// Columns available.
    pub(crate) width: usize,
    /// ANSI colours per track kind.
    pub(crate) color: bool,
}

impl ViewStyle {
    /// The terminal's width ([`terminal_width`], at most 160).
    pub(crate) fn terminal(color: bool) -> ViewStyle {
        ViewStyle {
            width: terminal_width(false).min(160),
            color,
        }
    }
}

/// The columns of the terminal stdout (or, with `stderr`, stderr) is on:
/// [`choose_width`] of `COLUMNS` and the size the terminal itself reports.
pub(crate) fn terminal_width(stderr: bool) -> usize {
    let columns = std::env::var("COLUMNS").ok();
    choose_width(columns.as_deref(), terminal_columns(stderr))
}

/// The width to lay text out in: the terminal's own size when known, or
/// `COLUMNS` when narrower (or when the size is not known: bash does not
/// export it, so it is only a hint), else 80.
pub(crate) fn choose_width(columns: Option<&str>, terminal: Option<usize>) -> usize {
    let columns = columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0);
    match (terminal.filter(|w| *w > 0), columns) {
        (Some(t), Some(c)) => t.min(c),
        (Some(w), None) | (None, Some(w)) => w,
        (None, None) => 80,
    }
}

/// The columns the terminal on stdout (or stderr) reports, `None` off a
/// terminal: asked of that very terminal each time (an ioctl, no process),
/// so a resized window is seen. `console` is already built for indicatif.
fn terminal_columns(stderr: bool) -> Option<usize> {
    let term = if stderr {
        console::Term::stderr()
    } else {
        console::Term::stdout()
    };
    term.size_checked().map(|(_rows, cols)| usize::from(cols))
}

/// `m:ss` (or `h:mm:ss`) from milliseconds, to the nearest second.
pub(crate) fn clock(ms: f64) -> String {
    let s = if ms.is_finite() && ms > 0.0 {
        (ms / 1000.0).round() as u64
    } else {
        0
    };
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The drawing (ruler and one row per track, no trailing newline), or
/// `None` when there is nothing to draw on a time axis or no room for it.
pub(crate) fn render(timeline: &Timeline, style: ViewStyle) -> Option<String> {
    let total = total_ms(timeline)?;
    let name_w = timeline
        .tracks
        .iter()
        .map(|t| text_width(&t.name))
        .max()
        .unwrap_or(0)
        .min(NAME_MAX);
    // Too narrow for the bars: not drawn (a row wider than the terminal
    // would soft-wrap a label to column 0).
    if style.width < name_w + 1 + BARS_MIN {
        return None;
    }
    let bars = style.width - (name_w + 1);
    let mut lines = Vec::with_capacity(timeline.tracks.len() + 1);
    let ruler = ruler(total, bars);
    lines.push(format!(
        "{} {}",
        " ".repeat(name_w),
        paint(&ruler, style.color.then_some(DIM))
    ));
    for track in &timeline.tracks {
        let colour = style.color.then_some(colour_of(track.kind));
        let name = pad(&fit(&track.name, name_w), name_w);
        let row = row(track, total, bars);
        lines.push(format!(
            "{} {}",
            paint(&name, colour),
            cells_to_string(&row, colour)
        ));
    }
    Some(lines.join("\n"))
}

/// Reads the tracks back from the core's one-line summary (`Timeline (3
/// tracks): 1. Video: city (0-10s) 2. BGM: Lo-fi (0-10s, 35%) …`); `None`
/// unless the core writes exactly `summary` from what was read.
pub(crate) fn from_summary(summary: &str) -> Option<Timeline> {
    let rest = summary.strip_prefix("Timeline (")?;
    let (count, rest) = rest.split_once(" track")?;
    let n: usize = count.parse().ok()?;
    let rest = rest
        .strip_prefix("s): ")
        .or_else(|| rest.strip_prefix("): "))?;
    let rest = rest.strip_prefix("1. ")?;
    // Each track's text runs to the next ` N. Name: ` (or the end).
    let mut chunks = Vec::with_capacity(n);
    let mut left = rest;
    for i in 2..=n + 1 {
        if i > n {
            chunks.push(left);
            break;
        }
        let marker = format!(" {i}. ");
        let at = left.match_indices(&marker).map(|(at, _)| at).find(|at| {
            let after = &left[at + marker.len()..];
            track_name_at(after).is_some()
        })?;
        chunks.push(&left[..at]);
        left = &left[at + marker.len()..];
    }
    let tracks = chunks
        .into_iter()
        .map(read_track)
        .collect::<Option<Vec<_>>>()?;
    let timeline = Timeline {
        tracks,
        duration_ms: None,
        resolution: None,
        title: None,
    };
    (timeline.to_string() == summary).then_some(timeline)
}

/// The track name (and kind) a track's text starts with, as the core names them.
fn track_name_at(text: &str) -> Option<(TrackKind, &str)> {
    let (name, _) = text.split_once(": ")?;
    let kind = match name {
        "Video" => TrackKind::Video,
        "BGM" => TrackKind::Audio,
        "Title" | "Text" => TrackKind::Text,
        other => TrackKind::Other(other.strip_prefix("Track type ")?.parse().ok()?),
    };
    Some((kind, name))
}

fn read_track(text: &str) -> Option<Track> {
    let (kind, name) = track_name_at(text)?;
    let body = &text[name.len() + 2..];
    let segments = if body == "empty" {
        Vec::new()
    } else {
        read_segments(body, kind)?
    };
    Some(Track {
        kind,
        name: name.to_owned(),
        segments,
    })
}

/// `label (0-10s, 35%), label, "words" (from 2s)`.
fn read_segments(mut text: &str, kind: TrackKind) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    loop {
        // The first place this segment can end: ` (details)` then the end
        // or `, `; or a plain `, `.
        let mut end = None;
        for (at, _) in text.match_indices([' ', ',']) {
            let after = &text[at..];
            if let Some(inner) = after.strip_prefix(" (") {
                if let Some(close) = inner.find(')') {
                    let tail = &inner[close + 1..];
                    if tail.is_empty() || tail.starts_with(", ") {
                        if let Some(details) = read_details(&inner[..close], kind) {
                            end = Some((at, Some(details), at + 2 + close + 1));
                            break;
                        }
                    }
                }
            } else if after.starts_with(", ") {
                end = Some((at, None, at));
                break;
            }
        }
        let (label_end, details, next) = end.unwrap_or((text.len(), None, text.len()));
        let label = read_label(&text[..label_end], kind);
        let (start_ms, end_ms, volume) = details.unwrap_or((None, None, None));
        segments.push(Segment {
            label,
            start_ms,
            end_ms,
            volume,
        });
        match text[next..].strip_prefix(", ") {
            Some(more) => text = more,
            None if next == text.len() => return Some(segments),
            None => return None,
        }
    }
}

type Details = (Option<f64>, Option<f64>, Option<f64>);

/// `0-10s`, `from 2s`, `35%`, comma-separated.
fn read_details(text: &str, kind: TrackKind) -> Option<Details> {
    let (mut start, mut end, mut volume) = (None, None, None);
    let secs = |s: &str| -> Option<f64> {
        let v: f64 = s.parse().ok()?;
        (v.is_finite() && v >= 0.0 && !s.starts_with('+')).then_some(v * 1000.0)
    };
    for item in text.split(", ") {
        if let Some(pct) = item.strip_suffix('%') {
            if kind != TrackKind::Audio || volume.is_some() {
                return None;
            }
            volume = Some(pct.parse::<i64>().ok()? as f64);
        } else if let Some(from) = item.strip_prefix("from ").and_then(|i| i.strip_suffix('s')) {
            if start.is_some() {
                return None;
            }
            start = Some(secs(from)?);
        } else {
            let (a, b) = item.strip_suffix('s')?.split_once('-')?;
            if start.is_some() {
                return None;
            }
            start = Some(secs(a)?);
            end = Some(secs(b)?);
        }
    }
    Some((start, end, volume))
}

fn read_label(text: &str, kind: TrackKind) -> Option<String> {
    if kind == TrackKind::Text {
        if let Some(words) = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|_| text.len() >= 2)
        {
            return Some(words.to_owned());
        }
    }
    (text != "untitled").then(|| text.to_owned())
}

/// Where the timeline ends: the last clip's end (or start).
fn total_ms(timeline: &Timeline) -> Option<f64> {
    let total = timeline
        .tracks
        .iter()
        .flat_map(|t| &t.segments)
        .filter_map(|s| s.end_ms.or(s.start_ms))
        .chain(timeline.duration_ms)
        .filter(|ms| ms.is_finite())
        .fold(0.0_f64, f64::max);
    (total >= 1.0).then_some(total)
}

/// A tick every 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min or 1, 2 h:
/// the smallest that leaves room for its labels.
fn tick_ms(total: f64, bars: usize) -> f64 {
    const STEPS: [u64; 14] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    ];
    let label = clock(total).len() + 4;
    STEPS
        .iter()
        .map(|s| *s as f64 * 1000.0)
        .find(|step| step / total * bars as f64 >= label as f64)
        .unwrap_or(total)
}

fn column(ms: f64, total: f64, bars: usize) -> usize {
    ((ms / total * bars as f64).round().max(0.0) as usize).min(bars)
}

/// `0:00 ──── 0:05 ──── 0:10`, exactly `bars` columns wide.
fn ruler(total: f64, bars: usize) -> String {
    let mut cells: Vec<char> = vec!['─'; bars];
    let put = |at: usize, text: &str, cells: &mut Vec<char>| {
        for (i, c) in text.chars().enumerate() {
            if let Some(cell) = cells.get_mut(at + i) {
                *cell = c;
            }
        }
    };
    // The end label first: ticks give way to it.
    let end = format!(" {}", clock(total));
    let end_at = bars.saturating_sub(end.chars().count());
    put(end_at, &end, &mut cells);
    let first = "0:00 ";
    let mut free_from = first.len();
    if free_from < end_at {
        put(0, first, &mut cells);
    }
    let step = tick_ms(total, bars);
    let mut t = step;
    while t < total {
        let label = format!(" {} ", clock(t));
        let at = column(t, total, bars).saturating_sub(1);
        if at >= free_from && at + label.len() <= end_at {
            put(at, &label, &mut cells);
            free_from = at + label.len();
        }
        t += step;
    }
    cells.into_iter().collect()
}

/// One cell of a row: the text it shows (a wide character's second cell
/// shows nothing) and whether a clip covers it.
type Cell = (String, bool);

/// One track's clips as bars, `bars` cells wide.
fn row(track: &Track, total: f64, bars: usize) -> Vec<Cell> {
    let mut cells: Vec<Cell> = vec![(" ".to_owned(), false); bars];
    for seg in &track.segments {
        let start = seg.start_ms.unwrap_or(0.0);
        let end = seg.end_ms.unwrap_or(total).max(start);
        let mut x0 = column(start, total, bars);
        let mut x1 = column(end, total, bars);
        if x0 >= bars {
            x0 = bars - 1;
        }
        if x1 <= x0 {
            x1 = x0 + 1;
        }
        let w = x1 - x0;
        let drawn = bar(&seg_text(seg, track.kind), w);
        for (i, cell) in drawn.into_iter().enumerate() {
            cells[x0 + i] = (cell, true);
        }
    }
    cells
}

/// What a clip's bar says, most important first: its label, its volume,
/// its span.
fn seg_text(seg: &Segment, kind: TrackKind) -> (String, Option<String>) {
    let label = match (&seg.label, kind) {
        (Some(l), TrackKind::Text) => format!("\"{}\"", clean(l)),
        (Some(l), _) => clean(l),
        (None, _) => "untitled".to_owned(),
    };
    let mut text = label;
    if let (TrackKind::Audio, Some(v)) = (kind, seg.volume) {
        text.push_str(&format!(" {}%", v.round() as i64));
    }
    let span = match (seg.start_ms, seg.end_ms) {
        (Some(s), Some(e)) => Some(format!("{}–{}", clock(s), clock(e))),
        (Some(s), None) => Some(format!("from {}", clock(s))),
        _ => None,
    };
    (text, span)
}

/// `├ label 0:00–0:10 ───┤` in `w` cells: the span only when it fits, the
/// label cut with `…` when it does not.
fn bar((text, span): &(String, Option<String>), w: usize) -> Vec<String> {
    if w == 1 {
        return vec!["│".to_owned()];
    }
    let inner = w - 2;
    let with_span = span.as_ref().map(|s| format!("{text} {s}"));
    // With a space either side when there is room, without when tight.
    let (shown, spaced) = match with_span {
        Some(full) if text_width(&full) + 2 <= inner => (Some(full), true),
        _ if text_width(text) + 2 <= inner => (Some(text.clone()), true),
        _ if text_width(text) <= inner => (Some(text.clone()), false),
        _ if inner >= 8 => (Some(fit(text, inner - 2)), true),
        _ if inner >= 2 => (Some(fit(text, inner)), false),
        _ => (None, false),
    };
    let mut cells = vec!["├".to_owned()];
    let mut used = 0;
    if let Some(shown) = shown {
        if spaced {
            cells.push(" ".to_owned());
            used += 1;
        }
        for c in shown.chars() {
            cells.push(c.to_string());
            used += 1;
            if char_width(c) == 2 {
                cells.push(String::new());
                used += 1;
            }
        }
        if spaced {
            cells.push(" ".to_owned());
            used += 1;
        }
    }
    cells.extend(std::iter::repeat_n(
        "─".to_owned(),
        inner.saturating_sub(used),
    ));
    cells.push("┤".to_owned());
    cells
}

fn cells_to_string(cells: &[Cell], colour: Option<&str>) -> String {
    let mut out = String::new();
    let mut open = false;
    for (text, covered) in cells {
        match (colour, *covered, open) {
            (Some(c), true, false) => {
                out.push_str(c);
                open = true;
            }
            (Some(_), false, true) => {
                out.push_str(RESET);
                open = false;
            }
            _ => {}
        }
        out.push_str(text);
    }
    if open {
        out.push_str(RESET);
    }
    out.trim_end().to_owned()
}

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

fn colour_of(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Video => "\x1b[34m",
        TrackKind::Audio => "\x1b[32m",
        TrackKind::Text => "\x1b[33m",
        TrackKind::Other(_) => "\x1b[35m",
    }
}

fn paint(text: &str, colour: Option<&str>) -> String {
    match colour {
        Some(c) => format!("{c}{text}{RESET}"),
        None => text.to_owned(),
    }
}

/// A server's label as one line without control characters.
fn clean(label: &str) -> String {
    nemo_core::ids::printable_line(label).into_owned()
}

/// Columns a character takes: two for East Asian wide ones.
pub(crate) fn char_width(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Columns `text` takes on a terminal (East Asian wide characters count
/// two).
pub(crate) fn text_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// `text` in at most `w` columns, cut with `…`.
fn fit(text: &str, w: usize) -> String {
    if text_width(text) <= w {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + char_width(c) + 1 > w {
            break;
        }
        used += char_width(c);
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

fn pad(text: &str, w: usize) -> String {
    let mut out = text.to_owned();
    out.push_str(&" ".repeat(w.saturating_sub(text_width(text))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemo_core::draft::Draft;

    #[test]
    fn the_width_is_the_terminal_s_unless_columns_is_narrower() {
        assert_eq!(choose_width(None, None), 80);
        assert_eq!(choose_width(Some("100"), None), 100);
        assert_eq!(choose_width(Some(" 0"), None), 80);
        assert_eq!(choose_width(Some("wide"), None), 80);
        // Bash does not export COLUMNS: the terminal's own size counts.
        assert_eq!(choose_width(None, Some(50)), 50);
        assert_eq!(choose_width(Some("100"), Some(50)), 50);
        assert_eq!(choose_width(Some("30"), Some(50)), 30);
        assert_eq!(choose_width(Some("30"), Some(0)), 30);
        assert_eq!(choose_width(None, Some(5)), 5);
    }

    const SEED: &str = r#"{"t":[
        {"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000}]},
        {"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":10000,"v":0.35}]},
        {"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}
    ],"d":10000}"#;

    fn plain(width: usize) -> ViewStyle {
        ViewStyle {
            width,
            color: false,
        }
    }

    fn drawn(json: &str, width: usize) -> String {
        let timeline = Draft::parse(json).expect("draft").timeline();
        let summary = timeline.to_string();
        // What the reporter draws: from the summary the event carries.
        let read = from_summary(&summary).expect("the summary reads back");
        let view = render(&read, plain(width)).unwrap_or_default();
        format!("{summary}\n{view}")
    }

    /// No row is wider than the terminal (its soft wrap would put a label
    /// at column 0): too narrow for the bars, nothing is drawn.
    #[test]
    fn the_drawing_fits_the_width_or_is_not_drawn() {
        let timeline = Draft::parse(SEED).expect("draft").timeline();
        for width in 1..60 {
            if let Some(view) = render(&timeline, plain(width)) {
                for line in view.lines() {
                    assert!(text_width(line) <= width, "{width}: {view}");
                }
            }
        }
        assert!(render(&timeline, plain(40)).is_some());
    }

    #[test]
    fn clock_is_m_ss() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(3_000.0), "0:03");
        assert_eq!(clock(2_068_970.0), "34:29");
        assert_eq!(clock(3_327_260.0), "55:27");
        assert_eq!(clock(3_600_000.0 + 61_000.0), "1:01:01");
        assert_eq!(clock(f64::NAN), "0:00");
    }

    #[test]
    fn the_seed_draft() {
        insta::assert_snapshot!("seed", drawn(SEED, 80));
    }

    #[test]
    fn clips_in_sequence_with_long_times() {
        let json = r#"{"t":[
            {"tt":0,"sg":[{"n":"b100","st":0,"d":2068970},{"n":"b300","st":2068970,"et":3327260}]},
            {"tt":1,"sg":[{"n":"Rain","st":0,"d":3327260,"v":80}]},
            {"tt":7,"sg":[{"text":"Part one","st":0,"d":5000},{"text":"Part two","st":2068970,"d":5000}]},
            {"tt":9,"sg":[{"n":"fade","st":3300000,"d":27260}]}
        ]}"#;
        insta::assert_snapshot!("long", drawn(json, 100));
    }

    #[test]
    fn eighty_columns_cut_long_labels() {
        let json = r#"{"t":[
            {"tt":0,"sg":[{"n":"a very long clip name that cannot possibly fit in its bar at all","st":0,"d":5000},
                          {"n":"a second clip with an equally unreasonable name","st":5000,"d":5000}]},
            {"tt":7,"sg":[{"text":"城市之梦 — a title in two scripts","st":0,"d":10000}]},
            {"tt":1,"sg":[{"n":"x","st":9000,"d":1000,"v":10}]}
        ],"d":10000}"#;
        let out = drawn(json, 80);
        for line in out.lines().skip(1) {
            assert!(text_width(line) <= 80, "{line}: {}", text_width(line));
        }
        assert!(out.contains('…'), "{out}");
        insta::assert_snapshot!("eighty_columns", out);
    }

    #[test]
    fn colours_per_track_kind() {
        let timeline = Draft::parse(SEED).unwrap().timeline();
        let out = render(
            &timeline,
            ViewStyle {
                width: 60,
                color: true,
            },
        )
        .unwrap();
        assert!(out.contains("\x1b[34mVideo"), "{out:?}");
        assert!(out.contains("\x1b[32mBGM"), "{out:?}");
        assert!(out.contains("\x1b[33mTitle"), "{out:?}");
        assert!(out.contains(DIM), "{out:?}");
        let plain = render(&timeline, plain(60)).unwrap();
        assert!(!plain.contains('\x1b'), "{plain:?}");
    }

    #[test]
    fn nothing_to_draw_without_times() {
        let timeline = Draft::parse(r#"{"t":[{"tt":1,"sg":[{"name":"Rain","volume":80}]}]}"#)
            .unwrap()
            .timeline();
        assert_eq!(render(&timeline, plain(80)), None);
        assert_eq!(
            from_summary("Timeline (empty): nothing on the timeline yet"),
            None
        );
    }

    /// Labels that look like the summary's own punctuation either read
    /// back to the same summary or are not drawn at all.
    #[test]
    fn summaries_read_back_only_when_exact() {
        for json in [
            SEED,
            r#"{"t":[{"tt":0,"sg":[{"n":"a (1-2s), b","st":0,"d":1000},{"n":" 2. BGM: x","st":1000,"d":1000}]},{"tt":1,"sg":[]}]}"#,
            r#"{"t":[{"tt":7,"sg":[{"text":"\"","st":0}]},{"tt":7,"sg":[{"text":"untitled"}]},{"tt":12,"sg":[{}]}]}"#,
            r#"{"t":[{"tt":1,"sg":[{"name":"Rain","volume":80,"st":500}]}]}"#,
        ] {
            let summary = Draft::parse(json).unwrap().timeline().to_string();
            if let Some(read) = from_summary(&summary) {
                assert_eq!(read.to_string(), summary);
            }
        }
        let summary = Draft::parse(SEED).unwrap().timeline().to_string();
        assert!(from_summary(&summary).is_some());
        assert_eq!(from_summary(&format!("{summary} extra)")), None);
        assert_eq!(from_summary("Timeline (2 tracks): 1. Video: a"), None);
    }
}
