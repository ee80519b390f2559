//! One way to look up a field in whatever the service sent.
//!
//! The published texts disagree on where a value sits and how it is spelt
//! (`../shared/PROTOCOL.md` §10): on the object itself, under a `data`
//! envelope, or under a segment's `m` ("metadata"); under one of several
//! names (`session_id` or `sessionId`, `outputUrl` or `output.url`); as a
//! JSON number or a numeric string; a volume as a fraction (`0.35`) or a
//! percent (`35`, `"35%"`). Every reader in `nemo-core` goes through
//! [`Fields`] with the alias lists below, so a variant accepted in one place
//! is accepted everywhere.
//!
//! Internal to the core (the readers' shared helper, not an API): the
//! example below is the `module_example` unit test.
//!
//! ```text
//! let segment = json!({"st": "0", "d": 10000, "m": {"name": "Lo-fi", "volume": 0.35}});
//! let f = Fields::new(&segment);
//! assert_eq!(f.text(field::LABEL).as_deref(), Some("Lo-fi"));
//! assert_eq!(f.num(field::START), Some(0.0));
//! assert_eq!(f.volume(field::VOLUME), Some(35.0));
//! ```

use serde_json::{Map, Value};

/// Where a value may sit, in the order it is looked for: the object itself,
/// then these keys' objects.
pub(crate) const LAYERS: &[&str] = &["data", "m", "metadata", "meta"];

/// A segment's label: what it shows or plays.
pub(crate) const LABEL: &[&str] = &[
    "n", "name", "title", "label", "text", "content", "txt", "caption",
];
/// A text segment's words, read before [`LABEL`] on text tracks (on the
/// segment and under `m`), so an internal name never hides them.
pub(crate) const WORDS: &[&str] = &["text", "content", "txt", "caption"];
/// Where a segment's media comes from (its file name is the last resort label).
pub(crate) const SOURCE: &[&str] = &[
    "src",
    "url",
    "path",
    "file",
    "cdn_url",
    "cdnUrl",
    "source_url",
];
/// A segment's start, in ms.
pub(crate) const START: &[&str] = &[
    "st", "start", "s", "b", "begin", "from", "offset", "start_ms", "startMs",
];
/// A segment's end, in ms.
pub(crate) const END: &[&str] = &["et", "end", "e", "to", "end_ms", "endMs"];
/// A segment's (or draft's) duration, in ms.
pub(crate) const DURATION_MS: &[&str] =
    &["d", "dur", "duration", "len", "duration_ms", "durationMs"];
/// A volume: a fraction (≤ 1) or a percent.
pub(crate) const VOLUME: &[&str] = &["v", "vol", "volume", "gain"];
/// A track's type (`0` video, `1` audio, `7` text).
pub(crate) const TRACK_TYPE: &[&str] = &["tt", "track_type", "trackType"];
/// A draft's tracks (published: `t`).
pub(crate) const TRACKS: &[&str] = &["t"];
/// A track's segments (published: `sg`).
pub(crate) const SEGMENTS: &[&str] = &["sg"];
/// A draft's (or task's) title, in its `m`.
pub(crate) const TITLE: &[&str] = &["title"];

/// A session id.
pub(crate) const SESSION_ID: &[&str] = &["session_id", "sessionId", "sid"];
/// A task id.
pub(crate) const TASK_ID: &[&str] = &["task_id", "taskId"];
/// A task's name.
pub(crate) const TASK_NAME: &[&str] = &["task_name", "taskName"];
/// A user id.
pub(crate) const USER_ID: &[&str] = &["user_id", "userId", "uid"];
/// A bearer token.
pub(crate) const TOKEN: &[&str] = &["token", "access_token", "accessToken"];
/// A token's expiry date.
pub(crate) const EXPIRES_AT: &[&str] = &["expires_at", "expiresAt", "expire_at"];
/// Seconds until something expires.
pub(crate) const EXPIRES_IN: &[&str] = &["expires_in", "expiresIn"];
/// A claim token.
pub(crate) const CLAIM_TOKEN: &[&str] = &["claim_token", "claimToken"];
/// Credits that can be spent now.
pub(crate) const AVAILABLE: &[&str] = &[
    "available",
    "available_credits",
    "availableCredits",
    "balance",
];
/// Credits held by running work.
pub(crate) const FROZEN: &[&str] = &["frozen", "frozen_credits", "frozenCredits"];
/// All credits.
pub(crate) const TOTAL: &[&str] = &["total", "total_credits", "totalCredits"];
/// Credits that came with a new token.
pub(crate) const CREDITS: &[&str] = &["credits"];
/// A render's (or any job's) id.
pub(crate) const RENDER_ID: &[&str] = &["id", "render_id", "renderId", "taskId", "task_id"];
/// A render's status.
pub(crate) const STATUS: &[&str] = &["status", "state"];
/// A render's progress, 0–100 (read with [`percent`]).
pub(crate) const PROGRESS: &[&str] = &["progress", "percent"];
/// A render's output object (`{url,duration,size}`).
pub(crate) const OUTPUT: &[&str] = &["output", "result"];
/// A render's output URL — and any video's URL in the service's answers
/// (a generated video's in a tool result, too): the one list of its names,
/// the specific ones first and a plain `url` (which may be a thumbnail's)
/// last. Read a whole answer with [`output_url`].
pub(crate) const OUTPUT_URL: &[&str] = &[
    "outputUrl",
    "output_url",
    "videoUrl",
    "video_url",
    "downloadUrl",
    "download_url",
    "url",
];
/// [`OUTPUT_URL`] without the plain `url`.
const NAMED_URL: &[&str] = &[
    "outputUrl",
    "output_url",
    "videoUrl",
    "video_url",
    "downloadUrl",
    "download_url",
];
/// An output's size in bytes.
pub(crate) const SIZE: &[&str] = &["size", "bytes", "fileSize", "file_size"];
/// An output's duration in seconds.
pub(crate) const SECONDS: &[&str] = &["duration", "seconds"];
/// Why something failed.
pub(crate) const ERROR: &[&str] = &["error", "errorMessage", "error_message", "reason"];
/// An API error code (read with [`code`]).
pub(crate) const CODE: &[&str] = &["code", "errorCode", "error_code"];
/// The `success` flag of the render endpoints' envelope (read with
/// [`boolean`]: `false`, `"false"` and `0` all say no).
pub(crate) const SUCCESS: &[&str] = &["success"];
/// An API message.
pub(crate) const MESSAGE: &[&str] = &["message", "msg", "error", "detail", "errorMessage"];
/// Uploaded files.
pub(crate) const FILES: &[&str] = &["files", "items", "uploaded"];
/// An uploaded file's name.
pub(crate) const FILENAME: &[&str] = &["filename", "file_name", "fileName", "name"];
/// An uploaded file's kind (`video`, `image`, `audio`).
pub(crate) const FILE_TYPE: &[&str] = &["file_type", "fileType", "type", "media_type", "mediaType"];
/// Where the server keeps an uploaded file.
pub(crate) const CDN_URL: &[&str] = &["cdn_url", "cdnUrl", "url", "src"];
/// A width in pixels.
pub(crate) const WIDTH: &[&str] = &["width", "w"];
/// A height in pixels.
pub(crate) const HEIGHT: &[&str] = &["height", "h"];
/// True when an upload already went into the draft.
pub(crate) const APPLIED: &[&str] = &["session_state_applied", "sessionStateApplied", "applied"];

/// The URL of a render's output (or of a generated video) in a whole
/// answer, the most specific first: `output`'s URL (`output.url`,
/// `output.video_url`, …), then a specific name (`output_url`,
/// `outputUrl`, `video_url`, `download_url`, …), then `output` given as
/// the URL itself — each on the object or under `data` before under
/// `m`/`metadata`/`meta` — and a plain `url` last (the object's, then
/// `m`'s…): a `metadata.url` is often a thumbnail's. Only what can be
/// downloaded counts ([`is_web_url`]): `"url":"pending"` or a relative path
/// is passed over for the next name, and with none the answer has no URL.
pub(crate) fn output_url(f: &Fields<'_>) -> Option<String> {
    let main = f.part(0..2);
    let side = f.part(2..LAYERS.len() + 1);
    let web = |f: &Fields<'_>, names: &[&str]| f.find(names, |v| text(v).filter(|u| is_web_url(u)));
    let named = |f: Fields<'_>| {
        f.nested(OUTPUT)
            .and_then(|o| web(&o, OUTPUT_URL))
            .or_else(|| web(&f, NAMED_URL))
            .or_else(|| web(&f, OUTPUT))
    };
    named(main)
        .or_else(|| named(side))
        .or_else(|| web(&main, &["url"]))
        .or_else(|| web(&side, &["url"]))
}

/// True for an absolute `http://` or `https://` URL with a host and no
/// spaces or control characters: what can be downloaded. `pending` or
/// `/renders/x.mp4` cannot.
pub(crate) fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A number given as a JSON number or a numeric string (`"42"`, `" 7.5 "`,
/// `"35%"`). Not finite → `None`.
pub(crate) fn num(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => {
            let t = s.trim();
            let t = t.strip_suffix('%').unwrap_or(t).trim_end();
            t.parse::<f64>().ok().filter(|f| f.is_finite())
        }
        _ => None,
    }
}

/// Text given as a non-empty string (trimmed) or a number.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An identifier given as a string or a number (`5529798706024415232` and
/// `"5529798706024415232"` are the same id). Empty strings are no id.
pub(crate) fn id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The words of a name (a tool's, a stage's, a status word), in lower
/// case: split at anything not a letter or a digit and where a capital
/// follows a small letter (`generateVideo`, `generate-video`,
/// `generate_video`: generate, video; `InProgress`: in, progress).
pub(crate) fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut after_small = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            after_small = false;
            continue;
        }
        if c.is_uppercase() && after_small && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        after_small = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// An error code given as a whole number or a numeric string (`1001`,
/// `"1001"`, `1001.0`, `"1001.0"`: the same code); a word (`"SAFETY"`) or a
/// fraction (`1.5`) is no code.
pub(crate) fn code(value: &Value) -> Option<i64> {
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 9e15).then_some(f as i64);
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
        Value::String(s) => {
            let t = s.trim();
            t.parse().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .and_then(whole)
            })
        }
        _ => None,
    }
}

/// A percentage (a render's progress): a number, a numeric string or
/// `"45%"` as it is; a number below 1 that is not whole (`0.45`, `"0.45"`)
/// as a fraction (45). A `1` (`1`, `1.0`, `"1"`) stays 1 %: read as 100 %
/// it could end a render's wait early when the status word is unknown,
/// while a server of fractions says "done" in words at its 1.0 anyway.
pub(crate) fn percent(value: &Value) -> Option<f64> {
    let n = num(value)?;
    let explicit = value.as_str().is_some_and(|s| s.trim().ends_with('%'));
    Some(if !explicit && n > 0.0 && n < 1.0 {
        n * 100.0
    } else {
        n
    })
}

/// A boolean given as `true`/`false`, `"true"`/`"false"`, or `1`/`0`.
pub(crate) fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A volume in percent: a fraction (≤ 1) times 100, a larger number as is,
/// a string with `%` always as a percent.
pub(crate) fn volume(value: &Value) -> Option<f64> {
    let n = num(value)?;
    let explicit = value.as_str().is_some_and(|s| s.trim().ends_with('%'));
    Some(if !explicit && n <= 1.0 { n * 100.0 } else { n })
}

/// A view of one JSON object and the objects a value may be nested in
/// ([`LAYERS`]: `data`, `m`, `metadata`, `meta`), read in that order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    layers: [Option<&'a Map<String, Value>>; 5],
}

impl<'a> Fields<'a> {
    /// A view of `value` (nothing found when it is not an object).
    pub(crate) fn new(value: &'a Value) -> Self {
        Self::of(value.as_object())
    }

    /// A view of the object's own keys only (an envelope: `code` under
    /// `data` is not the envelope's).
    pub(crate) fn flat(value: &'a Value) -> Self {
        let mut layers = [None; 5];
        layers[0] = value.as_object();
        Self { layers }
    }

    /// A view of an object, if there is one.
    pub(crate) fn of(map: Option<&'a Map<String, Value>>) -> Self {
        let mut layers = [None; 5];
        layers[0] = map;
        if let Some(map) = map {
            for (slot, key) in layers[1..].iter_mut().zip(LAYERS) {
                *slot = map.get(*key).and_then(Value::as_object);
            }
        }
        Self { layers }
    }

    /// The same view with only the layers in `range` (0 the object, 1
    /// `data`, 2… `m`, `metadata`, `meta`).
    fn part(&self, range: std::ops::Range<usize>) -> Fields<'a> {
        let mut layers = [None; 5];
        for i in range {
            layers[i] = self.layers[i];
        }
        Fields { layers }
    }

    /// True when the value was an object.
    pub(crate) fn is_object(&self) -> bool {
        self.layers[0].is_some()
    }

    /// The first present, non-null value under any of `aliases`: every alias
    /// on the object first, then under `data`, then under `m`, …
    pub(crate) fn value(&self, aliases: &[&str]) -> Option<&'a Value> {
        self.layers.iter().flatten().find_map(|map| {
            aliases
                .iter()
                .find_map(|k| map.get(*k).filter(|v| !v.is_null()))
        })
    }

    /// The first alias that reads as a number ([`num`]).
    pub(crate) fn num(&self, aliases: &[&str]) -> Option<f64> {
        self.find(aliases, num)
    }

    /// The first alias that reads as text ([`text`]).
    pub(crate) fn text(&self, aliases: &[&str]) -> Option<String> {
        self.find(aliases, text)
    }

    /// The first alias that reads as an identifier ([`id`]).
    pub(crate) fn id(&self, aliases: &[&str]) -> Option<String> {
        self.find(aliases, id)
    }

    /// The first alias that reads as a boolean ([`boolean`]).
    pub(crate) fn boolean(&self, aliases: &[&str]) -> Option<bool> {
        self.find(aliases, boolean)
    }

    /// The first alias that reads as an error code ([`code`]).
    pub(crate) fn code(&self, aliases: &[&str]) -> Option<i64> {
        self.find(aliases, code)
    }

    /// The first alias that reads as a percentage ([`percent`]).
    pub(crate) fn percent(&self, aliases: &[&str]) -> Option<f64> {
        self.find(aliases, percent)
    }

    /// The first alias that reads as a volume, in percent ([`volume`]).
    pub(crate) fn volume(&self, aliases: &[&str]) -> Option<f64> {
        self.find(aliases, volume)
    }

    /// The first alias holding an object, as a view of its own.
    pub(crate) fn nested(&self, aliases: &[&str]) -> Option<Fields<'a>> {
        self.find(aliases, |v| v.as_object().map(|m| Fields::of(Some(m))))
    }

    /// The first alias holding an array.
    pub(crate) fn array(&self, aliases: &[&str]) -> Option<&'a Vec<Value>> {
        self.find(aliases, Value::as_array)
    }

    /// The first alias that holds a non-empty string, as it is (not
    /// trimmed: a streamed piece of text keeps its spaces).
    pub(crate) fn raw_text(&self, aliases: &[&str]) -> Option<String> {
        self.find(aliases, |v| {
            v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
        })
    }

    fn find<T>(&self, aliases: &[&str], read: impl Fn(&'a Value) -> Option<T>) -> Option<T> {
        self.layers
            .iter()
            .flatten()
            .find_map(|map| aliases.iter().find_map(|k| map.get(*k).and_then(&read)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn module_example() {
        let segment = json!({"st": "0", "d": 10000, "m": {"name": "Lo-fi", "volume": 0.35}});
        let f = Fields::new(&segment);
        assert_eq!(f.text(LABEL).as_deref(), Some("Lo-fi"));
        assert_eq!(f.num(START), Some(0.0));
        assert_eq!(f.volume(VOLUME), Some(35.0));
    }

    #[test]
    fn numbers_of_every_spelling() {
        for (v, want) in [
            (json!(35), Some(35.0)),
            (json!(0.35), Some(0.35)),
            (json!("42"), Some(42.0)),
            (json!(" 7.5 "), Some(7.5)),
            (json!("35%"), Some(35.0)),
            (json!("abc"), None),
            (json!(null), None),
            (json!(true), None),
        ] {
            assert_eq!(num(&v), want, "{v}");
        }
    }

    #[test]
    fn volumes_as_fraction_or_percent() {
        for (v, want) in [
            (json!(0.35), Some(35.0)),
            (json!("0.35"), Some(35.0)),
            (json!(35), Some(35.0)),
            (json!("35%"), Some(35.0)),
            (json!("1%"), Some(1.0)),
            (json!(1), Some(100.0)),
            (json!(0), Some(0.0)),
        ] {
            assert_eq!(volume(&v), want, "{v}");
        }
    }

    #[test]
    fn ids_as_numbers_or_strings() {
        for v in [json!(5529798706024415232u64), json!("5529798706024415232")] {
            assert_eq!(id(&v).as_deref(), Some("5529798706024415232"), "{v}");
        }
        assert_eq!(id(&json!("")), None);
        assert_eq!(id(&json!({})), None);
    }

    #[test]
    fn layers_in_order() {
        let v = json!({"a": 1, "data": {"a": 2, "b": 3}, "m": {"b": 4, "c": "x"}});
        let f = Fields::new(&v);
        assert_eq!(f.num(&["a"]), Some(1.0), "the object first");
        assert_eq!(f.num(&["b"]), Some(3.0), "then data");
        assert_eq!(f.text(&["c"]).as_deref(), Some("x"), "then m");
        assert_eq!(f.num(&["zz", "a"]), Some(1.0), "any alias");
        let null = json!({"a": null, "data": {"a": 9}});
        assert_eq!(Fields::new(&null).num(&["a"]), Some(9.0), "null is absent");
        assert!(!Fields::new(&json!([1])).is_object());
    }

    #[test]
    fn codes_and_percents() {
        for (v, want) in [
            (json!(1001), Some(1001)),
            (json!("1002"), Some(1002)),
            (json!(2001.0), Some(2001)),
            (json!("SAFETY"), None),
            (json!(1.5), None),
            (json!("1001.0"), Some(1001)),
            (json!(" 1002 "), Some(1002)),
            (json!("1.5"), None),
            (json!("inf"), None),
        ] {
            assert_eq!(code(&v), want, "{v}");
        }
        for (v, want) in [
            (json!(45), Some(45.0)),
            (json!("45%"), Some(45.0)),
            (json!(0.45), Some(45.0)),
            (json!("0.5%"), Some(0.5)),
            (json!(1), Some(1.0)),
            (json!(0), Some(0.0)),
        ] {
            assert_eq!(percent(&v), want, "{v}");
        }
        let v = json!({"code": 0, "data": {"code": 1001}});
        assert_eq!(Fields::flat(&v).code(CODE), Some(0));
        assert_eq!(Fields::flat(&json!({"data": {"code": 1}})).code(CODE), None);
    }

    #[test]
    fn booleans() {
        for (v, want) in [
            (json!(true), Some(true)),
            (json!("false"), Some(false)),
            (json!(1), Some(true)),
            (json!("maybe"), None),
        ] {
            assert_eq!(boolean(&v), want, "{v}");
        }
    }
}
