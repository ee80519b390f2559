//! Values that came from the server, made safe to use.
//!
//! Nothing the server sends is trusted as a path, a URL segment or terminal
//! output. Three checks cover every use:
//!
//! - [`check_id`]: an identifier (render, session, task id) that may become
//!   part of a URL path or be kept under a folder: a short run of
//!   `A–Z a–z 0–9 _ - . :` that is not only dots. Anything else is refused,
//!   not cleaned: a cleaned id would name another job. This is the rule
//!   for the server's ids and the job journal.
//! - [`check_file_id`]: the stricter rule for an id used as a file name as
//!   is (no `:`, no Windows device name such as `NUL` or `COM1`, no
//!   trailing dot, no leading `-`); [`file_stem`] derives a safe, distinct
//!   file name from any valid id (a default output name, a lease file).
//! - [`segment`] / `query_value` (internal): percent-encoding for a URL path segment
//!   or a query value, applied to every id spliced into a URL, checked or not.
//! - [`printable`]: text for a terminal, with control characters (escape
//!   sequences, carriage returns, bidi overrides) neutralised.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest identifier accepted from the server.
pub(crate) const MAX_ID_LEN: usize = 128;

/// Checks an identifier (`what` names it in the message, e.g. "render
/// id") for use in a URL path segment or under a folder: a short run of
/// `A–Z a–z 0–9 _ - . :` that is not only dots — never `/`, `\`, `..` as a
/// path step, a space or a control character. The message says what a
/// valid one looks like and shows the offending value neutralised and cut
/// short.
///
/// This is the rule for an id the server gave (followed, journaled,
/// resumed); an id that becomes a file name as is must also pass
/// [`check_file_id`], or be turned into one with [`file_stem`].
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.chars().all(|c| c == '.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !ok {
        return Err(format!(
            "`{}` is not a valid {what} (1 to {MAX_ID_LEN} letters, digits, `_`, `-`, `.` or `:`, not only dots)",
            shown_id(id)
        ));
    }
    Ok(())
}

/// [`check_id`], and a safe file name on every system as is: no `:` (a
/// drive on Windows, `C:x`, or an NTFS stream, `x:y`), no device name
/// (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`, in any case
/// and with any extension: `nul.mp4` is the device too), no trailing dot
/// (Windows drops it: another file), no leading `-` (a command line would
/// read `nemo jobs forget -x` as an option).
pub fn check_file_id(what: &str, id: &str) -> Result<(), String> {
    check_id(what, id)?;
    if id.contains(':') || id.ends_with('.') || id.starts_with('-') || is_device_name(id) {
        return Err(format!(
            "`{}` is not a valid {what}: it is not a safe file name on every system (no `:`, no trailing dot, no leading `-`, not a device name such as NUL or COM1)",
            shown_id(id)
        ));
    }
    Ok(())
}

/// The file name (without extension) for an id that passed [`check_id`]:
/// the id itself when it passes [`check_file_id`]; otherwise the id with
/// what makes it unsafe percent-encoded (`:` → `%3A`, a leading `-` →
/// `%2D`, a trailing dot → `%2E`, a device name's first letter: `nul` →
/// `%6Eul`). A valid id never holds `%`, so two ids never share a name.
pub fn file_stem(id: &str) -> String {
    if check_file_id("id", id).is_ok() {
        return id.to_owned();
    }
    let device = is_device_name(id);
    let last = id.len().saturating_sub(1);
    let mut out = String::with_capacity(id.len() + 8);
    for (i, c) in id.char_indices() {
        let encode = c == ':' || (i == 0 && (c == '-' || device)) || (i == last && c == '.');
        if encode {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    // A name stays well within the 255 bytes file systems allow (128 `:`
    // would escape to 384): a long one keeps its start and ends with `~` and
    // a hash of the whole id. A valid id never holds `~` or `%`, so no two
    // ids share a name.
    if out.len() > MAX_STEM {
        out.truncate(MAX_STEM - 17);
        let _ = write!(out, "~{:016x}", fnv1a(id));
    }
    out
}

/// The longest name [`file_stem`] gives (bytes; ids are ASCII).
const MAX_STEM: usize = 200;

/// FNV-1a, 64 bits: a stable hash (std's hasher may change between
/// releases, and a lease file's name must not), small enough to write here.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An id as a message shows it: neutralised, at most 40 characters.
fn shown_id(id: &str) -> String {
    let mut shown: String = id.chars().take(40).collect();
    if id.chars().count() > 40 {
        shown.push('…');
    }
    printable_line(&shown).into_owned()
}

/// A Windows device name (`NUL`, `com1.mp4`): the part before the first dot,
/// in any case.
fn is_device_name(id: &str) -> bool {
    let stem = id
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match stem.as_bytes() {
        b"CON" | b"PRN" | b"AUX" | b"NUL" => true,
        [b'C', b'O', b'M', d] | [b'L', b'P', b'T', d] => d.is_ascii_digit(),
        _ => false,
    }
}

/// The longest token accepted from the server.
pub(crate) const MAX_TOKEN_LEN: usize = 4096;

/// Checks a bearer token before it is used or kept: it must fit in an HTTP
/// header as `Bearer <token>` (visible ASCII, no spaces), or every later
/// request would fail until the cached copy was deleted by hand.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!(
            "the token is {} bytes long (at most {MAX_TOKEN_LEN} are accepted)",
            token.len()
        ));
    }
    if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the token holds characters that cannot be sent in an HTTP header".into());
    }
    Ok(())
}

/// Percent-encodes `s` for one URL path segment: everything but RFC 3986's
/// unreserved characters is encoded, so `/`, `?`, `#` and `%` never change
/// the URL's structure.
pub fn segment(s: &str) -> Cow<'_, str> {
    encode(s)
}

/// Percent-encodes `s` for a query value (same rules as [`segment`]).
pub(crate) fn query_value(s: &str) -> Cow<'_, str> {
    encode(s)
}

// Hand-written: a dozen lines for the one encoding set we need, where the
// `percent-encoding` crate would add a dependency to the sans-IO core.
fn encode(s: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if s.bytes().all(unreserved) && s != "." && s != ".." {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        // A lone `.` or `..` segment is a path step for URL parsers even when
        // encoded; encoding its dots at least keeps it from being one.
        if unreserved(b) && !(b == b'.' && s.bytes().all(|c| c == b'.')) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Cow::Owned(out)
}

/// Text from the server made safe for a terminal: C0 and C1 control
/// characters (ESC, CR, BEL, backspace, CSI …), Unicode direction
/// overrides and every other invisible format character (general category
/// Cf: word joiner, soft hyphen, tag characters …, and the invisible
/// U+034F, U+180B–U+180F, Hangul fillers) become visible `\u{…}` escapes;
/// tabs and newlines are kept (`keep_newlines` false turns newlines into
/// spaces, for one-line fields).
pub fn printable(s: &str) -> Cow<'_, str> {
    printable_with(s, true)
}

/// [`printable`] for a one-line field: newlines become spaces too.
pub fn printable_line(s: &str) -> Cow<'_, str> {
    printable_with(s, false)
}

fn printable_with(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad =
        |c: char| (c.is_control() && !(c == '\t' || (keep_newlines && c == '\n'))) || invisible(c);
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' && !keep_newlines {
            out.push(' ');
        } else if c == '\r' && chars.peek() == Some(&'\n') {
            // A CRLF pair is a line break; a lone CR (which would let the
            // server overwrite the line) is shown as an escape.
            continue;
        } else if bad(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A character that changes how text reads without showing itself: the
/// format characters (Unicode general category Cf, as of Unicode 16),
/// line and paragraph separators, and the few other invisible ones a
/// terminal draws as nothing (combining grapheme joiner, Mongolian
/// variation selectors and vowel separator, Hangul fillers).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// A URL (or an API path) as it may be shown in a message or a log line:
/// scheme, host and path; never user info (a password), a query (a key, a
/// signature) or a fragment.
pub fn shown_url(url: &str) -> String {
    let url = &url[..url.find(['?', '#']).unwrap_or(url.len())];
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            shown_url("http://user:s3cret@127.0.0.1:8080/api/?key=abc#x"),
            "http://127.0.0.1:8080/api/"
        );
        assert_eq!(
            shown_url("https://cdn.example/out/a@b.mp4?Signature=x"),
            "https://cdn.example/out/a@b.mp4"
        );
        assert_eq!(shown_url("/api/render/r1?x=1"), "/api/render/r1");
        assert_eq!(shown_url("https://nemovideo.com"), "https://nemovideo.com");
    }
    use super::*;

    #[test]
    fn ids() {
        for ok in [
            "render_1795262134520_ab12",
            "5529798706024415232",
            "task_1",
            "a.b",
            "console",
            "nul_1",
            "com10",
            "lpt",
        ] {
            assert!(check_id("render id", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../x",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "a b",
            "a\u{1b}[2J",
            "é",
            "a%2F..",
            "a?b",
            "a#b",
        ] {
            assert!(check_id("render id", bad).is_err(), "{bad:?}");
        }
        // Unsafe as a file name on some system: a drive (`C:x` is relative
        // to drive C's folder on Windows) or an NTFS stream (`x:y`), a
        // device name with or without an extension, a trailing dot (which
        // Windows drops: another file).
        // Safe in a URL and a folder, so a valid id (a journal of the
        // previous version may hold them), but not as a file name as is.
        for bad in [
            "C:x", "x:y", "NUL", "nul", "CON", "con.mp4", "Aux", "PRN", "COM1", "com9.x", "LPT0",
            "lpt3", "abc.", "-x", "--help",
        ] {
            assert!(check_id("render id", bad).is_ok(), "{bad}");
            let err = check_file_id("render id", bad).expect_err(bad);
            assert!(err.contains("file name"), "{bad}: {err}");
            // Its file name is derived, safe, and its own.
            let name = file_stem(bad);
            assert!(
                !name.contains(':')
                    && !name.ends_with('.')
                    && !name.starts_with('-')
                    && !is_device_name(&name),
                "{bad} -> {name}"
            );
            assert_ne!(name, bad);
        }
        let stems: std::collections::BTreeSet<String> =
            ["a:b", "a_b", "a.b", "nul", "_nul", "-x", "x."]
                .iter()
                .map(|id| file_stem(id))
                .collect();
        assert_eq!(stems.len(), 7, "{stems:?}");
        assert_eq!(file_stem("render_1"), "render_1");
        // The longest ids still make names a file system takes, each its own.
        let colons = ":".repeat(MAX_ID_LEN);
        let almost = format!("{}a", ":".repeat(MAX_ID_LEN - 1));
        for id in [colons.as_str(), almost.as_str()] {
            assert!(check_id("id", id).is_ok());
            let name = file_stem(id);
            assert!(name.len() <= MAX_STEM, "{} bytes", name.len());
            assert!(!name.contains(':'), "{name}");
        }
        assert_ne!(file_stem(&colons), file_stem(&almost));
        assert!(check_file_id("render id", "render_1").is_ok());
        assert!(check_file_id("render id", "../x").is_err());
        assert!(check_id("id", &"a".repeat(MAX_ID_LEN)).is_ok());
        assert!(check_id("id", &"a".repeat(MAX_ID_LEN + 1)).is_err());
        let msg = check_id("render id", "\u{1b}]0;pwned\u{7}").unwrap_err();
        assert!(!msg.contains('\u{1b}'), "{msg}");
    }

    #[test]
    fn tokens() {
        assert!(check_token("nmv_usr_abc.DEF-123").is_ok());
        for bad in ["", "nmv usr", "nmv\r\nX-Evil: 1", "nmv_\u{e9}", "a\u{7f}"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
        assert!(check_token(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
        // The message never repeats the token.
        assert!(!check_token("secret value").unwrap_err().contains("secret"));
    }

    #[test]
    fn segments() {
        assert_eq!(segment("render_1"), "render_1");
        assert_eq!(segment("../../x"), "..%2F..%2Fx");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a b?c#d%"), "a%20b%3Fc%23d%25");
        assert_eq!(query_value("anon_1&x=y"), "anon_1%26x%3Dy");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn terminal_text() {
        assert_eq!(printable("plain\ttext\nok"), "plain\ttext\nok");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(printable("a\r\nb"), "a\nb");
        assert_eq!(printable("fake\rSaved"), "fake\\u{d}Saved");
        assert_eq!(printable_line("a\nb"), "a b");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(printable("a\u{2028}b"), "a\\u{2028}b");
        // Invisible format characters, which could hide before "Saved".
        for c in [
            '\u{2060}',
            '\u{ad}',
            '\u{180e}',
            '\u{34f}',
            '\u{2064}',
            '\u{e0041}',
        ] {
            assert_eq!(
                printable(&format!("{c}Saved")),
                format!("\\u{{{:x}}}Saved", c as u32)
            );
        }
        assert_eq!(printable("café ok 日本"), "café ok 日本");
        assert_eq!(printable("a\u{200B}b\u{61C}"), "a\\u{200b}b\\u{61c}");
        assert!(matches!(printable("ok"), Cow::Borrowed(_)));
    }
}
