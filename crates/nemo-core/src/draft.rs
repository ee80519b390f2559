//! The draft: the server's edit decision list, its timeline summary, the
//! ready-for-export rule, and a diff that says in words what an edit changed.
//!
//! # Round-trip
//! The draft goes back verbatim into the render request, so a [`Draft`] keeps
//! the exact JSON text it was read from ([`Draft::raw`]) next to a parsed view
//! used only for reading. Unknown keys, key order, number spelling and
//! whitespace all survive.
//!
//! # Reading segments tolerantly
//! Track-level keys are published (`t` tracks, `tt` type, `sg` segments, `d`
//! duration in ms, `m` metadata); segment-level keys are not, and the texts
//! disagree on where they sit (`../shared/PROTOCOL.md` §10). Every detail is
//! read through the crate's one field lookup (`field.rs`): on the segment first, then under its
//! `m` (or `metadata`), the first key present of:
//!
//! | what | keys, in order |
//! |---|---|
//! | label | `n`, `name`, `title`, `label`, `text`, `content`, `txt`, `caption` (text tracks: `text`, `content`, `txt`, `caption` first); else the file name of `src`, `url`, `path`, `file`, `cdn_url` |
//! | start (ms) | `st`, `start`, `s`, `b`, `begin`, `from`, `offset`, `start_ms` (missing → 0 when a duration is known) |
//! | end (ms) | `et`, `end`, `e`, `to`, `end_ms`; else start + `d`, `dur`, `duration`, `len`, `duration_ms` |
//! | volume | `v`, `vol`, `volume`, `gain` (≤ 1 is a fraction, above 1 a percentage, `"35%"` a percentage) |
//!
//! Numbers may be JSON numbers or numeric strings. Anything else is ignored.
//! `nemo-mock` writes segments with `n`/`text`, `st`, `d` and `v` on the
//! segment (dialect `adk`) or inside `m` (dialect `meta`).

use std::fmt;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::field::{self, Fields};

/// The session's draft, exactly as the server sent it.
#[derive(Clone)]
pub struct Draft {
    raw: Box<RawValue>,
    value: Value,
}

impl fmt::Debug for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Draft").field(&self.raw.get()).finish()
    }
}

impl PartialEq for Draft {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Draft {
    /// Parses a draft from JSON text, keeping the text.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        let raw = RawValue::from_string(json.to_owned())?;
        Self::from_raw(raw)
    }

    /// Wraps raw JSON already split out of a larger document.
    pub(crate) fn from_raw(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let value = serde_json::from_str(raw.get())?;
        Ok(Self { raw, value })
    }

    /// The exact JSON text, to send back in a render request.
    pub fn raw(&self) -> &RawValue {
        &self.raw
    }

    /// The parsed view.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The timeline as the summariser reads it.
    pub fn timeline(&self) -> Timeline {
        Timeline::read(&self.value)
    }

    /// Ready for export when `t` has a track with a non-empty `sg`.
    pub fn is_ready_for_export(&self) -> bool {
        tracks(&self.value).is_some_and(|tracks| {
            tracks
                .iter()
                .any(|t| segments(t).is_some_and(|sg| !sg.is_empty()))
        })
    }
}

/// What a track holds, from `tt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// `tt: 0`
    Video,
    /// `tt: 1` (background music and other audio)
    Audio,
    /// `tt: 7` (titles, text overlays)
    Text,
    /// Any other type.
    Other(i64),
}

impl TrackKind {
    fn from_tt(tt: Option<i64>) -> Self {
        match tt {
            Some(0) | None => TrackKind::Video,
            Some(1) => TrackKind::Audio,
            Some(7) => TrackKind::Text,
            Some(n) => TrackKind::Other(n),
        }
    }
}

/// One segment of a track, read tolerantly.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// What it shows or plays.
    pub label: Option<String>,
    /// Start on the timeline, in ms.
    pub start_ms: Option<f64>,
    /// End on the timeline, in ms.
    pub end_ms: Option<f64>,
    /// Volume in percent, for audio.
    pub volume: Option<f64>,
}

/// One track.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// What it holds.
    pub kind: TrackKind,
    /// The name it is shown under (`Video`, `BGM`, `Title`, `Text`, …).
    pub name: String,
    /// Its segments, in order.
    pub segments: Vec<Segment>,
}

/// The draft's tracks as people read them.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The tracks, in draft order.
    pub tracks: Vec<Track>,
    /// The draft's `d`, in ms.
    pub duration_ms: Option<f64>,
    /// `m.width` × `m.height`, when given.
    pub resolution: Option<(u32, u32)>,
    /// `m.title`, when given.
    pub title: Option<String>,
}

/// A draft's tracks (`t`), through the field lookup.
fn tracks(draft: &Value) -> Option<&Vec<Value>> {
    Fields::flat(draft).array(field::TRACKS)
}

/// A track's segments (`sg`), through the field lookup.
fn segments(track: &Value) -> Option<&Vec<Value>> {
    Fields::flat(track).array(field::SEGMENTS)
}

fn file_stem(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit(['/', '\\']).next()?;
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    (!stem.is_empty()).then(|| stem.to_owned())
}

impl Segment {
    /// Reads one segment of a track of this kind: every detail on the
    /// segment or under its `m`, with the aliases of the field lookup (`field.rs`).
    pub fn read(value: &Value, kind: TrackKind) -> Segment {
        let f = Fields::new(value);
        if !f.is_object() {
            return Segment {
                label: field::text(value),
                start_ms: None,
                end_ms: None,
                volume: None,
            };
        }
        // A text track's words come before any internal name.
        let words = (kind == TrackKind::Text)
            .then(|| f.text(field::WORDS))
            .flatten();
        let label = words
            .or_else(|| f.text(field::LABEL))
            .or_else(|| {
                f.value(field::SOURCE)
                    .and_then(Value::as_str)
                    .and_then(file_stem)
            })
            .map(|l| one_line(&l));
        // Times a timeline can show: not negative, not beyond a day.
        let sane = |ms: f64| ms.is_finite() && (0.0..=86_400_000.0).contains(&ms);
        let start = f.num(field::START).filter(|v| sane(*v));
        let duration = f.num(field::DURATION_MS).filter(|v| sane(*v));
        let end = f
            .num(field::END)
            .filter(|v| sane(*v))
            .or_else(|| duration.map(|d| start.unwrap_or(0.0) + d));
        let start = start.or(duration.map(|_| 0.0));
        Segment {
            label,
            start_ms: start,
            end_ms: end,
            volume: f.volume(field::VOLUME),
        }
    }
}

/// A label from the server as one line of plain text: control characters
/// (newlines, escape sequences, direction overrides, line separators) and
/// characters that look blank (Unicode white space, the braille blank, the
/// Hangul fillers) become spaces, and a run of them one space, so no label
/// can start a line of its own in a summary, nor pad the rest of itself
/// onto the next row of a terminal.
pub fn one_line(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut blank = false;
    for c in label.chars() {
        let space = c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '\u{202A}'..='\u{202E}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{2800}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{3164}'
                    | '\u{FFA0}'
            );
        if space {
            if !blank {
                out.push(' ');
            }
            blank = true;
        } else {
            out.push(c);
            blank = false;
        }
    }
    out
}

impl Timeline {
    /// Reads a timeline out of draft JSON. Never fails: what cannot be read
    /// is left out.
    pub fn read(draft: &Value) -> Timeline {
        let mut text_tracks = 0;
        let tracks = tracks(draft)
            .map(|tracks| {
                tracks
                    .iter()
                    .map(|t| {
                        let kind = TrackKind::from_tt(
                            Fields::new(t).num(field::TRACK_TYPE).map(|n| n as i64),
                        );
                        let name = match kind {
                            TrackKind::Video => "Video".to_owned(),
                            TrackKind::Audio => "BGM".to_owned(),
                            TrackKind::Text => {
                                text_tracks += 1;
                                if text_tracks == 1 { "Title" } else { "Text" }.to_owned()
                            }
                            TrackKind::Other(n) => format!("Track type {n}"),
                        };
                        let segments = segments(t)
                            .map(|sg| sg.iter().map(|s| Segment::read(s, kind)).collect())
                            .unwrap_or_default();
                        Track {
                            kind,
                            name,
                            segments,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The draft's own details: on it, or in its `m` (`metadata`).
        let f = Fields::new(draft);
        let dim = |aliases: &[&str]| {
            f.num(aliases)
                .filter(|n| (1.0..=100_000.0).contains(n))
                .map(|n| n as u32)
        };
        Timeline {
            tracks,
            duration_ms: f.num(field::DURATION_MS),
            resolution: dim(field::WIDTH).zip(dim(field::HEIGHT)),
            title: f.text(field::TITLE),
        }
    }
}

/// Seconds from milliseconds: `10`, `2.5`, `0.25`.
pub fn seconds(ms: f64) -> String {
    let s = (ms / 10.0).round() / 100.0;
    let mut out = format!("{s:.2}");
    while out.ends_with('0') {
        out.pop();
    }
    if out.ends_with('.') {
        out.pop();
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

impl Segment {
    fn span(&self) -> Option<String> {
        match (self.start_ms, self.end_ms) {
            (Some(s), Some(e)) => Some(format!("{}-{}s", seconds(s), seconds(e))),
            (Some(s), None) => Some(format!("from {}s", seconds(s))),
            _ => None,
        }
    }

    fn describe(&self, kind: TrackKind) -> String {
        let label = match (&self.label, kind) {
            (Some(l), TrackKind::Text) => format!("\"{l}\""),
            (Some(l), _) => l.clone(),
            (None, _) => "untitled".to_owned(),
        };
        let mut details = Vec::new();
        if let Some(span) = self.span() {
            details.push(span);
        }
        if kind == TrackKind::Audio {
            if let Some(v) = self.volume {
                details.push(format!("{}%", v.round() as i64));
            }
        }
        if details.is_empty() {
            label
        } else {
            format!("{label} ({})", details.join(", "))
        }
    }
}

impl Track {
    /// `Video: city timelapse (0-10s)`.
    pub fn describe(&self) -> String {
        if self.segments.is_empty() {
            return format!("{}: empty", self.name);
        }
        let segs: Vec<String> = self
            .segments
            .iter()
            .map(|s| s.describe(self.kind))
            .collect();
        format!("{}: {}", self.name, segs.join(", "))
    }
}

impl fmt::Display for Timeline {
    /// `Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban Dreams" (0-3s)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tracks.len();
        if n == 0 {
            return f.write_str("Timeline (empty): nothing on the timeline yet");
        }
        write!(f, "Timeline ({n} track{}):", if n == 1 { "" } else { "s" })?;
        for (i, track) in self.tracks.iter().enumerate() {
            write!(f, " {}. {}", i + 1, track.describe())?;
        }
        Ok(())
    }
}

/// What an edit changed, in words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DraftChange {
    /// One entry per change, in timeline order.
    pub changes: Vec<String>,
}

impl DraftChange {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// All changes on one line.
    pub fn summary(&self) -> String {
        self.changes.join("; ")
    }
}

impl fmt::Display for DraftChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            f.write_str("no change")
        } else {
            f.write_str(&self.summary())
        }
    }
}

fn quoted(kind: TrackKind, label: &Option<String>) -> String {
    match label {
        Some(l) if kind == TrackKind::Text => format!("\"{l}\""),
        Some(l) => l.clone(),
        None => "untitled".into(),
    }
}

/// Says in words what changed from `before` (no draft yet when `None`) to
/// `after`. Tracks are matched by kind and position among tracks of that
/// kind; segments by position within a track.
pub fn diff(before: Option<&Draft>, after: &Draft) -> DraftChange {
    let empty = Timeline {
        tracks: Vec::new(),
        duration_ms: None,
        resolution: None,
        title: None,
    };
    let old = before.map(Draft::timeline).unwrap_or(empty);
    let new = after.timeline();
    let mut changes = Vec::new();

    if let (Some((ow, oh)), Some((nw, nh))) = (old.resolution, new.resolution) {
        if (ow, oh) != (nw, nh) {
            changes.push(format!("resolution {ow}x{oh} → {nw}x{nh}"));
        }
    } else if let (None, Some((nw, nh)), Some(_)) = (old.resolution, new.resolution, before) {
        changes.push(format!("resolution set to {nw}x{nh}"));
    }

    let kinds = [TrackKind::Video, TrackKind::Audio, TrackKind::Text];
    let of_kind = |tl: &Timeline, k: Option<TrackKind>| -> Vec<Track> {
        tl.tracks
            .iter()
            .filter(|t| match k {
                Some(k) => t.kind == k,
                None => !kinds.contains(&t.kind),
            })
            .cloned()
            .collect()
    };
    for kind in kinds.iter().copied().map(Some).chain([None]) {
        let (o, n) = (of_kind(&old, kind), of_kind(&new, kind));
        for i in 0..o.len().max(n.len()) {
            match (o.get(i), n.get(i)) {
                (None, Some(t)) => changes.push(format!("added {}", t.describe())),
                (Some(t), None) => changes.push(format!("removed the {} track", t.name)),
                (Some(a), Some(b)) => diff_track(a, b, &mut changes),
                (None, None) => {}
            }
        }
    }

    if let (Some(a), Some(b)) = (old.duration_ms, new.duration_ms) {
        if (a - b).abs() >= 1.0 {
            changes.push(format!("duration {}s → {}s", seconds(a), seconds(b)));
        }
    }
    if old.title != new.title && before.is_some() {
        if let Some(t) = &new.title {
            changes.push(format!("project title \"{t}\""));
        }
    }
    if changes.is_empty() && before.is_some_and(|b| b != after) {
        changes.push("the draft changed in ways the timeline does not show".into());
    }
    DraftChange { changes }
}

fn diff_track(a: &Track, b: &Track, changes: &mut Vec<String>) {
    for i in 0..a.segments.len().max(b.segments.len()) {
        match (a.segments.get(i), b.segments.get(i)) {
            (None, Some(s)) => changes.push(format!("added to {}: {}", b.name, s.describe(b.kind))),
            (Some(s), None) => changes.push(format!(
                "removed from {}: {}",
                a.name,
                quoted(a.kind, &s.label)
            )),
            (Some(x), Some(y)) => {
                let label = quoted(b.kind, &y.label);
                if x.label != y.label {
                    changes.push(format!(
                        "{}: {} → {}",
                        b.name,
                        quoted(a.kind, &x.label),
                        label
                    ));
                }
                if x.span() != y.span() {
                    if let (Some(from), Some(to)) = (x.span(), y.span()) {
                        changes.push(format!("{} {label}: {from} → {to}", b.name));
                    }
                }
                if b.kind == TrackKind::Audio {
                    match (x.volume, y.volume) {
                        (Some(p), Some(q)) if (p - q).abs() >= 0.5 => changes.push(format!(
                            "{} {label} volume {}% → {}%",
                            b.name,
                            p.round() as i64,
                            q.round() as i64
                        )),
                        (None, Some(q)) => changes.push(format!(
                            "{} {label} volume set to {}%",
                            b.name,
                            q.round() as i64
                        )),
                        _ => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_padded_with_blanks_is_one_short_line() {
        // Runs of spaces, and characters that look blank (braille blank,
        // ideographic space, Hangul filler, no-break space), would push the
        // rest of a label to the next row of a terminal.
        let pad = " ".repeat(60);
        assert_eq!(
            one_line(&format!("x{pad}Saved /home/u/x.mp4 (12 MB)")),
            "x Saved /home/u/x.mp4 (12 MB)"
        );
        assert_eq!(
            one_line("a\u{2800}\u{2800}\u{3000}\u{3164}\u{a0}\t\nb\u{ffa0}c"),
            "a b c"
        );
        assert_eq!(one_line("Urban  Dreams"), "Urban Dreams");
    }

    const SEED: &str = r#"{"t":[
        {"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000}]},
        {"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":10000,"v":0.35}]},
        {"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}
    ],"d":10000}"#;

    #[test]
    fn seed_summary_exactly() {
        let d = Draft::parse(SEED).unwrap();
        assert_eq!(
            d.timeline().to_string(),
            r#"Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban Dreams" (0-3s)"#
        );
        assert!(d.is_ready_for_export());
    }

    #[test]
    fn hostile_labels_and_times_cannot_forge_lines_or_absurd_spans() {
        let d = Draft::parse(
            r#"{"t":[{"tt":0,"sg":[{"n":"clip\nSaved /home/you/final.mp4 (48.2 MB)\u001b[2J","st":0,"d":-5000}]},
                     {"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":1e300}]}]}"#,
        )
        .unwrap();
        let summary = d.timeline().to_string();
        assert!(
            !summary.contains('\n') && !summary.contains('\u{1b}'),
            "{summary}"
        );
        assert!(
            summary.contains("clip Saved /home/you/final.mp4"),
            "{summary}"
        );
        assert!(!summary.contains("--"), "no negative span: {summary}");
        assert!(summary.len() < 200, "no 300-digit span: {summary}");
    }

    #[test]
    fn ready_rule() {
        for (json, ready) in [
            (r#"{}"#, false),
            (r#"{"t":[]}"#, false),
            (r#"{"t":[{"tt":0,"sg":[]}]}"#, false),
            (r#"{"t":[{"tt":0},{"tt":1,"sg":[{}]}]}"#, true),
            (r#"{"t":"nope"}"#, false),
        ] {
            assert_eq!(
                Draft::parse(json).unwrap().is_ready_for_export(),
                ready,
                "{json}"
            );
        }
    }

    #[test]
    fn tolerant_segment_keys() {
        let d = Draft::parse(
            r#"{"t":[{"tt":0,"sg":[{"src":"https://cdn.x/clips/beach.mp4?sig=1","start":"2500","end":7500}]},
                     {"tt":1,"sg":[{"name":"Rain","volume":80}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            d.timeline().to_string(),
            "Timeline (2 tracks): 1. Video: beach (2.5-7.5s) 2. BGM: Rain (80%)"
        );
    }

    #[test]
    fn seconds_format() {
        assert_eq!(seconds(0.0), "0");
        assert_eq!(seconds(10000.0), "10");
        assert_eq!(seconds(2500.0), "2.5");
        assert_eq!(seconds(1234.0), "1.23");
    }

    #[test]
    fn diff_says_what_changed() {
        let before = Draft::parse(
            r#"{"t":[{"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000}]}],"d":10000}"#,
        )
        .unwrap();
        let after = Draft::parse(SEED).unwrap();
        assert_eq!(
            diff(Some(&before), &after).summary(),
            r#"added BGM: Lo-fi (0-10s, 35%); added Title: "Urban Dreams" (0-3s)"#
        );
        assert!(diff(Some(&after), &after).is_empty());
    }

    #[test]
    fn diff_of_unseen_fields_is_not_silent() {
        let a = Draft::parse(r#"{"t":[],"x":1}"#).unwrap();
        let b = Draft::parse(r#"{"t":[],"x":2}"#).unwrap();
        assert_eq!(
            diff(Some(&a), &b).summary(),
            "the draft changed in ways the timeline does not show"
        );
    }
}
