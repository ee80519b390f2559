//! Telling a video from an error page, and reading `Content-Range`.

/// What a body that is not a video is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotVideo {
    Json,
    Html,
    Xml,
    Text,
}

/// What a `Content-Type` says the body is, when it says it is not a video.
pub(crate) fn declared_kind(value: &str) -> Option<NotVideo> {
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/json" => Some(NotVideo::Json),
        m if m.ends_with("+json") => Some(NotVideo::Json),
        "text/html" | "application/xhtml+xml" => Some(NotVideo::Html),
        "application/xml" | "text/xml" => Some(NotVideo::Xml),
        "text/plain" => Some(NotVideo::Text),
        _ => None,
    }
}

/// What the first bytes of a body look like, when they look like a page or
/// a JSON object rather than a video.
pub(crate) fn sniffed_kind(first: &[u8]) -> Option<NotVideo> {
    let start = first.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(first);
    let start = trim_start(start);
    if let Some(rest) = start.strip_prefix(b"{") {
        if trim_start(rest).starts_with(b"\"") {
            return Some(NotVideo::Json);
        }
        return None;
    }
    let lower: Vec<u8> = start.iter().take(16).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<!doctype") || lower.starts_with(b"<html") {
        Some(NotVideo::Html)
    } else if lower.starts_with(b"<?xml") {
        Some(NotVideo::Xml)
    } else {
        None
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

/// The first words of a page, fit for an error message: the title of an
/// HTML page (else its text), markup dropped, control characters and runs
/// of space made one space, anything that looks like a token masked, at
/// most 80 characters.
pub(crate) fn first_words(body: &[u8], html: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let mut source: &str = &text;
    if html {
        let lower = text.to_ascii_lowercase();
        if let Some(open) = lower.find("<title") {
            if let Some(start) = lower[open..].find('>').map(|i| open + i + 1) {
                let end = lower[start..]
                    .find("</title")
                    .map_or(text.len(), |i| start + i);
                if !text[start..end].trim().is_empty() {
                    source = &text[start..end];
                }
            }
        }
    }
    let mut plain = String::with_capacity(source.len().min(1024));
    let mut in_tag = false;
    for c in source.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_control() => plain.push(' '),
            c => plain.push(c),
        }
    }
    let words: Vec<&str> = plain
        .split_whitespace()
        .map(|w| {
            if looks_like_secret(w) {
                nemo_core::secret::MASK
            } else {
                w
            }
        })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() <= 80 {
        return joined;
    }
    let mut cut: String = joined.chars().take(79).collect();
    cut.push('…');
    cut
}

/// A word that might be a credential: an API token, a JWT, or any long
/// unbroken run of token characters.
fn looks_like_secret(word: &str) -> bool {
    let token_chars = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+/=".contains(c));
    word.contains("nmv_") || word.starts_with("eyJ") || (token_chars && word.len() >= 32)
}

/// `Content-Range: bytes <start>-<end>/<total|*>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) start: u64,
    pub(crate) total: Option<u64>,
}

pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (start <= end && total.is_none_or(|t| end < t)).then_some(ContentRange { start, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                start: 100,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                start: 0,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 5-1/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn error_pages_are_told_from_videos() {
        assert_eq!(
            declared_kind("application/json; charset=utf-8"),
            Some(NotVideo::Json)
        );
        assert_eq!(
            declared_kind("application/problem+json"),
            Some(NotVideo::Json)
        );
        assert_eq!(declared_kind("Text/HTML"), Some(NotVideo::Html));
        assert_eq!(declared_kind("text/plain"), Some(NotVideo::Text));
        assert_eq!(declared_kind("application/xml"), Some(NotVideo::Xml));
        assert_eq!(declared_kind("video/mp4"), None);
        assert_eq!(declared_kind("application/octet-stream"), None);

        assert_eq!(
            sniffed_kind(b"\n <!DOCTYPE html><html>"),
            Some(NotVideo::Html)
        );
        assert_eq!(sniffed_kind(b"<HTML><head>"), Some(NotVideo::Html));
        assert_eq!(
            sniffed_kind(b"\xEF\xBB\xBF<?xml version"),
            Some(NotVideo::Xml)
        );
        assert_eq!(sniffed_kind(b"{ \"code\": 1"), Some(NotVideo::Json));
        assert_eq!(sniffed_kind(b"\x00\x00\x00\x20ftypisom"), None);
        assert_eq!(sniffed_kind(b"\x1A\x45\xDF\xA3"), None);
        assert_eq!(sniffed_kind(b"{\x00\x01"), None);
        assert_eq!(sniffed_kind(b""), None);
    }

    #[test]
    fn first_words_are_clean_and_short() {
        let page = b"<!DOCTYPE html><html><head><title>Access\x1b[31m denied</title></head>\
                     <body><h1>403</h1></body></html>";
        assert_eq!(first_words(page, true), "Access [31m denied");
        let xml = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                    <Message>Access Denied</Message></Error>";
        assert_eq!(first_words(xml, false), "AccessDenied Access Denied");
        let leaky = b"token nmv_usr_abc and eyJhbGciOiJIUzI1NiJ9 and \
                      0123456789abcdef0123456789abcdef0123";
        assert_eq!(
            first_words(leaky, false),
            "token [redacted] and [redacted] and [redacted]"
        );
        let long = "word ".repeat(100);
        let short = first_words(long.as_bytes(), false);
        assert_eq!(short.chars().count(), 80);
        assert!(short.ends_with('…'));
    }
}
