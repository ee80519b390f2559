//! The simulator's draft: built and edited as JSON with the short keys of
//! PROTOCOL.md §6.
//!
//! ```json
//! {"t":[{"id":"trk_v","tt":0,"sg":[{"id":"seg_1","n":"city timelapse","src":"…/clip.mp4","st":0,"d":10000,"kind":"video","x_fit":"cover"}]},
//!       {"id":"trk_a","tt":1,"sg":[{"id":"seg_2","n":"Lo-fi","src":"…","st":0,"d":10000,"v":0.35,"fade":{"in":500,"out":1000}}]},
//!       {"id":"trk_t","tt":7,"sg":[{"id":"seg_3","text":"Urban Dreams","st":0,"d":3000,"style":{…}}]}],
//!  "d":10000,"m":{"title":"…","width":1920,"height":1080,"fps":30},"ver":3,"bg":"#000000","x_engine":{…}}
//! ```
//! Keys beyond the published ones (`id`, `kind`, `x_fit`, `fade`, `style`,
//! `tr`, `bg`, `x_engine`, `ver`) are there on purpose: clients must carry
//! them back unchanged.

use serde_json::{json, Map, Value};

/// Track types.
pub(crate) const VIDEO: u64 = 0;
pub(crate) const AUDIO: u64 = 1;
pub(crate) const TEXT: u64 = 7;

/// What kind of media a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Video,
    Image,
    Audio,
}

impl MediaKind {
    pub(crate) fn from_ext(ext: &str) -> Option<MediaKind> {
        let ext = ext.to_ascii_lowercase();
        if nemo_core::api::VIDEO_EXTENSIONS.contains(&ext.as_str()) {
            Some(MediaKind::Video)
        } else if nemo_core::api::IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            Some(MediaKind::Image)
        } else if nemo_core::api::AUDIO_EXTENSIONS.contains(&ext.as_str()) {
            Some(MediaKind::Audio)
        } else {
            None
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
        }
    }
}

/// One change to a draft.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EditOp {
    /// Append a clip or photo to the video track, or set music from an audio file.
    AddMedia {
        name: String,
        src: String,
        kind: MediaKind,
        duration_ms: u64,
    },
    /// Set the background music.
    Bgm {
        name: String,
        src: String,
        volume: f64,
    },
    /// Add a text overlay (or the title when `start_ms` is 0 and it is first).
    Text {
        text: String,
        start_ms: u64,
        duration_ms: u64,
    },
    /// Put a transition between every pair of clips.
    Transition { kind: String },
    /// Cut the timeline to this length.
    Trim { ms: u64 },
    /// Change the canvas.
    Canvas { width: u32, height: u32 },
    /// Set the project's title.
    Title { title: String },
    /// An effect on every video segment (`fx`): not shown in the timeline.
    Effect { name: String },
    /// Strip what post-production added.
    Remove { what: Removal },
}

/// What a removal strips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The audio tracks.
    Music,
    /// The text tracks.
    Titles,
    /// The video segments' effects.
    Effects,
}

impl EditOp {
    /// The tool the agent "calls" for this edit.
    pub(crate) fn tool_name(&self) -> &'static str {
        match self {
            EditOp::AddMedia { .. } => "add_media_to_timeline",
            EditOp::Bgm { .. } => "add_background_music",
            EditOp::Text { .. } => "add_text_overlay",
            EditOp::Transition { .. } => "apply_transitions",
            EditOp::Trim { .. } => "trim_timeline",
            EditOp::Canvas { .. } => "set_canvas",
            EditOp::Title { .. } => "set_project_title",
            EditOp::Effect { .. } => "apply_effects",
            EditOp::Remove {
                what: Removal::Music,
            } => "remove_background_music",
            EditOp::Remove {
                what: Removal::Titles,
            } => "remove_text_overlays",
            EditOp::Remove {
                what: Removal::Effects,
            } => "remove_effects",
        }
    }

    /// The tool call's arguments.
    pub(crate) fn args(&self) -> Value {
        match self {
            EditOp::AddMedia {
                name,
                src,
                kind,
                duration_ms,
            } => {
                json!({"name": name, "source_url": src, "media_type": kind.as_str(), "duration_ms": duration_ms})
            }
            EditOp::Bgm { name, src, volume } => {
                json!({"track_name": name, "source_url": src, "volume": volume})
            }
            EditOp::Text {
                text,
                start_ms,
                duration_ms,
            } => {
                json!({"text": text, "start_ms": start_ms, "duration_ms": duration_ms, "position": "center"})
            }
            EditOp::Transition { kind } => json!({"transition": kind, "duration_ms": 500}),
            EditOp::Trim { ms } => json!({"target_duration_ms": ms}),
            EditOp::Canvas { width, height } => json!({"width": width, "height": height}),
            EditOp::Title { title } => json!({"title": title}),
            EditOp::Effect { name } => json!({"effect": name, "target": "video"}),
            EditOp::Remove { .. } => json!({"all": true}),
        }
    }
}

/// A fresh, empty draft.
pub(crate) fn empty_draft(title: &str) -> Value {
    json!({
        "t": [],
        "d": 0,
        "m": {"title": title, "width": 1920, "height": 1080, "fps": 30},
        "ver": 0,
        "bg": "#000000",
        "x_engine": {"name": "nemo-render", "rev": "2.3.1", "flags": [1, 0, 2.5]},
    })
}

fn tracks(draft: &mut Value) -> Option<&mut Vec<Value>> {
    draft.get_mut("t").and_then(Value::as_array_mut)
}

fn track_mut(draft: &mut Value, tt: u64) -> Option<&mut Value> {
    if !tracks(draft)?
        .iter()
        .any(|t| t.get("tt").and_then(Value::as_u64) == Some(tt))
    {
        let id = match tt {
            VIDEO => "trk_v",
            AUDIO => "trk_a",
            _ => "trk_t",
        };
        let mut track = json!({"id": id, "tt": tt, "sg": []});
        if tt == VIDEO {
            track["x_lock"] = json!(false);
        }
        let list = tracks(draft)?;
        // Keep the video, audio, text order.
        let pos = list
            .iter()
            .position(|t| t.get("tt").and_then(Value::as_u64).unwrap_or(0) > tt)
            .unwrap_or(list.len());
        list.insert(pos, track);
    }
    tracks(draft)?
        .iter_mut()
        .find(|t| t.get("tt").and_then(Value::as_u64) == Some(tt))
}

fn segments(draft: &mut Value, tt: u64) -> Option<&mut Vec<Value>> {
    track_mut(draft, tt)?
        .get_mut("sg")
        .and_then(Value::as_array_mut)
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The length of the timeline: the end of the video track, else of anything.
pub(crate) fn total_ms(draft: &Value) -> u64 {
    let Some(list) = draft.get("t").and_then(Value::as_array) else {
        return 0;
    };
    let end_of = |tt: Option<u64>| {
        list.iter()
            .filter(|t| tt.is_none_or(|tt| t.get("tt").and_then(Value::as_u64) == Some(tt)))
            .flat_map(|t| t.get("sg").and_then(Value::as_array).into_iter().flatten())
            .map(|s| num(s, "st") + num(s, "d"))
            .max()
            .unwrap_or(0)
    };
    match end_of(Some(VIDEO)) {
        0 => end_of(None),
        v => v,
    }
}

/// Applies one edit. `next_id` numbers new segments.
pub(crate) fn apply(draft: &mut Value, op: &EditOp, next_id: &mut u64) {
    let mut new_id = || {
        *next_id += 1;
        format!("seg_{next_id}")
    };
    match op {
        EditOp::AddMedia {
            name,
            src,
            kind,
            duration_ms,
        } => {
            if *kind == MediaKind::Audio {
                let op = EditOp::Bgm {
                    name: name.clone(),
                    src: src.clone(),
                    volume: 0.8,
                };
                apply(draft, &op, next_id);
                return;
            }
            let id = new_id();
            if let Some(sg) = segments(draft, VIDEO) {
                let st = sg
                    .iter()
                    .map(|s| num(s, "st") + num(s, "d"))
                    .max()
                    .unwrap_or(0);
                sg.push(json!({"id": id, "n": name, "src": src, "st": st, "d": duration_ms, "kind": kind.as_str(), "x_fit": "cover"}));
            }
        }
        EditOp::Bgm { name, src, volume } => {
            let total = total_ms(draft).max(1000);
            let id = new_id();
            if let Some(sg) = segments(draft, AUDIO) {
                sg.clear();
                sg.push(json!({"id": id, "n": name, "src": src, "st": 0, "d": total, "v": volume, "fade": {"in": 500, "out": 1000}}));
            }
        }
        EditOp::Text {
            text,
            start_ms,
            duration_ms,
        } => {
            let id = new_id();
            if let Some(sg) = segments(draft, TEXT) {
                sg.push(json!({
                    "id": id, "text": text, "st": start_ms, "d": duration_ms,
                    "style": {"font": "Inter", "size": 64, "color": "#FFFFFF", "pos": "center", "anim": "fade"},
                }));
            }
        }
        EditOp::Transition { kind } => {
            if let Some(sg) = segments(draft, VIDEO) {
                let n = sg.len();
                for (i, s) in sg.iter_mut().enumerate() {
                    if i + 1 < n {
                        s["tr"] = json!({"type": kind, "d": 500});
                    }
                }
            }
        }
        EditOp::Effect { name } => {
            if let Some(sg) = segments(draft, VIDEO) {
                for s in sg.iter_mut() {
                    s["fx"] = json!([{"type": name, "preset": "vivid", "strength": 0.6}]);
                }
            }
        }
        EditOp::Remove { what } => {
            if let Some(list) = tracks(draft) {
                match what {
                    Removal::Music => {
                        list.retain(|t| t.get("tt").and_then(Value::as_u64) != Some(AUDIO));
                    }
                    Removal::Titles => {
                        list.retain(|t| t.get("tt").and_then(Value::as_u64) != Some(TEXT));
                    }
                    Removal::Effects => {
                        for t in list.iter_mut() {
                            for s in t
                                .get_mut("sg")
                                .and_then(Value::as_array_mut)
                                .into_iter()
                                .flatten()
                            {
                                if let Some(s) = s.as_object_mut() {
                                    s.remove("fx");
                                }
                            }
                        }
                    }
                }
            }
        }
        EditOp::Trim { ms } => trim(draft, *ms),
        EditOp::Canvas { width, height } => {
            if let Some(m) = draft.get_mut("m").and_then(Value::as_object_mut) {
                m.insert("width".into(), json!(width));
                m.insert("height".into(), json!(height));
            }
        }
        EditOp::Title { title } => {
            if let Some(m) = draft.get_mut("m").and_then(Value::as_object_mut) {
                m.insert("title".into(), json!(title));
            }
        }
    }
    relayout(draft);
    if let Some(obj) = draft.as_object_mut() {
        let ver = obj.get("ver").and_then(Value::as_u64).unwrap_or(0) + 1;
        obj.insert("ver".into(), json!(ver));
    }
}

fn trim(draft: &mut Value, ms: u64) {
    let ms = ms.max(500);
    let Some(list) = tracks(draft) else { return };
    for track in list.iter_mut() {
        let Some(sg) = track.get_mut("sg").and_then(Value::as_array_mut) else {
            continue;
        };
        sg.retain(|s| num(s, "st") < ms);
        for s in sg.iter_mut() {
            let st = num(s, "st");
            if st + num(s, "d") > ms {
                s["d"] = json!(ms - st);
            }
        }
    }
}

/// Lays the video track end to end, stretches the music over the whole
/// timeline and updates `d`.
fn relayout(draft: &mut Value) {
    if let Some(sg) = draft
        .get_mut("t")
        .and_then(Value::as_array_mut)
        .and_then(|l| {
            l.iter_mut()
                .find(|t| t.get("tt").and_then(Value::as_u64) == Some(VIDEO))
        })
        .and_then(|t| t.get_mut("sg"))
        .and_then(Value::as_array_mut)
    {
        let mut st = 0;
        for s in sg.iter_mut() {
            s["st"] = json!(st);
            st += num(s, "d");
        }
    }
    let total = total_ms(draft);
    if let Some(list) = tracks(draft) {
        for track in list.iter_mut() {
            if track.get("tt").and_then(Value::as_u64) != Some(AUDIO) {
                continue;
            }
            if let Some(sg) = track.get_mut("sg").and_then(Value::as_array_mut) {
                for s in sg.iter_mut() {
                    if total > 0 {
                        s["st"] = json!(0);
                        s["d"] = json!(total);
                    }
                }
            }
        }
    }
    if let Some(obj) = draft.as_object_mut() {
        obj.insert("d".into(), json!(total));
    }
}

/// Counts the segments of each track type, for replies.
pub(crate) fn segment_count(draft: &Value, tt: u64) -> usize {
    draft
        .get("t")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("tt").and_then(Value::as_u64) == Some(tt))
        .map(|t| t.get("sg").and_then(Value::as_array).map_or(0, Vec::len))
        .sum()
}

/// `canvas_config` for the state endpoint.
pub(crate) fn canvas_config(draft: Option<&Value>) -> Value {
    let m = draft
        .and_then(|d| d.get("m"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let get = |k: &str, default: u64| m.get(k).and_then(Value::as_u64).unwrap_or(default);
    json!({"width": get("width", 1920), "height": get("height", 1080), "fps": get("fps", 30), "background": "#000000"})
}

/// The same draft as the `meta` dialect spells it: each segment's name
/// (`n` → `m.name`), words (`text` → `m.text`) and volume (`v` →
/// `m.volume`) under the segment's `m`; timing and every other key stay
/// where they were. Volumes alternate between the two published spellings:
/// the first segment with a volume (and every other one after it) has it
/// as a percent (`35`, or `"1%"` where a bare number could read as a
/// fraction), the others as a fraction (`0.35`).
pub(crate) fn to_meta(draft: &Value) -> Value {
    let mut out = draft.clone();
    let Some(list) = tracks(&mut out) else {
        return out;
    };
    let mut volumes = 0;
    for track in list.iter_mut() {
        let Some(sg) = track.get_mut("sg").and_then(Value::as_array_mut) else {
            continue;
        };
        for seg in sg.iter_mut().filter_map(Value::as_object_mut) {
            let mut m = match seg.remove("m") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (from, to) in [("n", "name"), ("text", "text"), ("v", "volume")] {
                if let Some(mut v) = seg.remove(from) {
                    if from == "v" {
                        if volumes % 2 == 0 {
                            v = percent(&v);
                        }
                        volumes += 1;
                    }
                    m.insert(to.into(), v);
                }
            }
            if !m.is_empty() {
                seg.insert("m".into(), Value::Object(m));
            }
        }
    }
    out
}

/// A volume fraction as a percent: `0.35` → `35`, `0.125` → `12.5`,
/// `0.01` → `"1%"` (a bare `1` reads as a whole fraction).
fn percent(fraction: &Value) -> Value {
    let Some(f) = fraction.as_f64() else {
        return fraction.clone();
    };
    let p = (f * 10_000.0).round() / 100.0;
    if p <= 1.0 && p > 0.0 {
        return json!(format!("{p}%"));
    }
    if p.fract() == 0.0 && p.abs() < 1e15 {
        json!(p as i64)
    } else {
        json!(p)
    }
}

/// Reads a draft's metadata object.
pub(crate) fn meta(draft: &Value) -> Map<String, Value> {
    draft
        .get("m")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemo_core::draft::Draft;

    #[test]
    fn builds_the_documented_summary() {
        let mut d = empty_draft("Urban");
        let mut id = 0;
        let ops = [
            EditOp::AddMedia {
                name: "city timelapse".into(),
                src: "https://cdn/clip.mp4".into(),
                kind: MediaKind::Video,
                duration_ms: 10_000,
            },
            EditOp::Bgm {
                name: "Lo-fi".into(),
                src: "https://cdn/lofi.mp3".into(),
                volume: 0.35,
            },
            EditOp::Text {
                text: "Urban Dreams".into(),
                start_ms: 0,
                duration_ms: 3000,
            },
        ];
        for op in &ops {
            apply(&mut d, op, &mut id);
        }
        let draft = Draft::parse(&d.to_string()).unwrap();
        assert!(draft.is_ready_for_export());
        let summary = draft.timeline().to_string();
        assert!(
            summary.contains("Video: city timelapse (0-10s)"),
            "{summary}"
        );
        assert!(summary.contains("BGM: Lo-fi (0-10s, 35%)"), "{summary}");
        assert!(summary.contains("\"Urban Dreams\" (0-3s)"), "{summary}");
        let meta = Draft::parse(&to_meta(&d).to_string()).unwrap();
        assert_eq!(
            meta.timeline().to_string(),
            summary,
            "meta spells the same timeline"
        );
        assert!(
            to_meta(&d)
                .to_string()
                .contains(r#""m":{"name":"Lo-fi","volume":35}"#),
            "the first volume as a percent"
        );
        apply(&mut d, &EditOp::Trim { ms: 8000 }, &mut id);
        assert_eq!(d["d"], 8000);
        assert_eq!(d["ver"], 4);
    }

    /// Generated drafts (random edits from a seeded generator): the `meta`
    /// spelling (details under `m`, volumes alternating percent and
    /// fraction) and the `adk` spelling read as the same timeline through
    /// `nemo_core`, and as the same edit.
    #[test]
    fn every_generated_draft_reads_the_same_in_meta() {
        let mut percents = 0;
        for seed in 0..300u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut d = empty_draft("Gen");
            let mut id = 0;
            let before = Draft::parse(&to_meta(&d).to_string()).unwrap();
            for _ in 0..rng.usize(1..8) {
                let name = ["city", "Lo-fi", "beach", "城市", "Urban Dreams"][rng.usize(..5)];
                let op = match rng.usize(..7) {
                    0 | 1 => EditOp::AddMedia {
                        name: name.into(),
                        src: format!("https://cdn/{}.mp4", rng.u32(..)),
                        kind: [MediaKind::Video, MediaKind::Image, MediaKind::Audio]
                            [rng.usize(..3)],
                        duration_ms: rng.u64(500..20_000),
                    },
                    2 => EditOp::Bgm {
                        name: name.into(),
                        src: "https://cdn/m.mp3".into(),
                        // Fractions on the edges too: 0, 0.01, 0.005, 1.
                        volume: [0.0, 0.005, 0.01, 1.0, rng.f64()][rng.usize(..5)],
                    },
                    3 => EditOp::Text {
                        text: name.into(),
                        start_ms: rng.u64(0..5000),
                        duration_ms: rng.u64(500..5000),
                    },
                    4 => EditOp::Trim {
                        ms: rng.u64(1000..15_000),
                    },
                    5 => EditOp::Effect {
                        name: "warm".into(),
                    },
                    _ => EditOp::Transition {
                        kind: "fade".into(),
                    },
                };
                apply(&mut d, &op, &mut id);
            }
            let adk = Draft::parse(&d.to_string()).unwrap();
            let meta_value = to_meta(&d);
            // Volumes spelt as a percent: a string, or a number above 1.
            percents += meta_value["t"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["sg"].as_array())
                .flatten()
                .filter(|sg| {
                    let v = &sg["m"]["volume"];
                    v.is_string() || v.as_f64().is_some_and(|v| v > 1.0)
                })
                .count();
            let meta = Draft::parse(&meta_value.to_string()).unwrap();
            assert_eq!(
                meta.timeline().to_string(),
                adk.timeline().to_string(),
                "seed {seed}: {d}"
            );
            assert_eq!(
                nemo_core::draft::diff(Some(&before), &meta).summary(),
                nemo_core::draft::diff(Some(&before), &adk).summary(),
                "seed {seed}"
            );
        }
        assert!(percents > 0, "some volumes spelt as a percent");
    }
}
