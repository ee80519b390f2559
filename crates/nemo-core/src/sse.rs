//! An incremental `text/event-stream` decoder following the WHATWG HTML
//! "server-sent events" parsing rules.
//!
//! Bytes go in as they arrive, in chunks of any size, split anywhere (inside
//! a UTF-8 sequence, between the CR and the LF of a CRLF); frames come out.
//! Line length and event size are bounded, so a hostile or broken stream with
//! no newline for a gigabyte costs a fixed amount of memory.
//!
//! Written by hand rather than taken from a crate because it is on the hot
//! path of every conversation, must report comments (the gateway's
//! keep-alives) and truncated events, must bound memory, and must not depend
//! on an async runtime; the benchmarks compare it with `eventsource-stream`.
//!
//! ```
//! use nemo_core::sse::{Decoder, Frame};
//! let mut decoder = Decoder::new();
//! let mut frames = Vec::new();
//! decoder.feed(b"data: {\"a\":1}\r\n\r\n: ping\n", &mut frames);
//! assert!(matches!(&frames[0], Frame::Event(e) if e.data == "{\"a\":1}"));
//! assert!(matches!(&frames[1], Frame::Comment(c) if c == " ping"));
//! ```

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, or `message`.
    pub event_type: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen on the stream (`id:` persists across events).
    pub last_event_id: String,
}

/// What the decoder produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete event.
    Event(Event),
    /// A comment line (`: text`); the text after the colon. The NemoVideo
    /// gateway uses these as keep-alives.
    Comment(String),
    /// A `retry:` field with a valid number of milliseconds.
    Retry(u64),
    /// A line longer than the limit was dropped (its bytes were skipped up to
    /// the next line break).
    LineTooLong,
    /// An event's data grew past the limit; the event was dropped.
    EventTooLarge,
}

/// Longest line kept by default (1 MiB).
pub(crate) const DEFAULT_MAX_LINE: usize = 1 << 20;
/// Largest event data kept by default (8 MiB).
pub(crate) const DEFAULT_MAX_EVENT: usize = 8 << 20;

/// The decoder's state between chunks.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Bytes of a line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended with CR: a leading LF in the next one belongs
    /// to the same line break.
    after_cr: bool,
    /// The first bytes may be a BOM.
    at_start: bool,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    data: String,
    has_data: bool,
    event_type: String,
    last_event_id: String,
    oversized: bool,
    max_line: usize,
    max_event: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default limits.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_LINE, DEFAULT_MAX_EVENT)
    }

    /// A decoder with the given limits on line length and event data size.
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            skipping: false,
            data: String::new(),
            has_data: false,
            event_type: String::new(),
            last_event_id: String::new(),
            oversized: false,
            max_line: max_line.max(16),
            max_event: max_event.max(16),
        }
    }

    /// Feeds the next chunk of the body; complete frames are pushed to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Frame>) {
        if chunk.is_empty() {
            return;
        }
        if self.at_start {
            // The BOM may itself arrive split across chunks.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let have = self.line.len();
            let take = (BOM.len() - have).min(chunk.len());
            if BOM[have..have + take] == chunk[..take] {
                if have + take < BOM.len() {
                    self.line.extend_from_slice(&chunk[..take]);
                    return;
                }
                self.line.clear();
                chunk = &chunk[take..];
            } else if have > 0 {
                // Not a BOM after all: the held bytes are the line's start.
            }
            self.at_start = false;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            match memchr::memchr2(b'\n', b'\r', chunk) {
                Some(pos) => {
                    let is_cr = chunk[pos] == b'\r';
                    if self.skipping {
                        self.skipping = false;
                    } else if self.line.is_empty() && pos <= self.max_line {
                        self.process_line(&chunk[..pos], out);
                    } else if self.line.is_empty() {
                        out.push(Frame::LineTooLong);
                    } else if self.line.len() + pos > self.max_line {
                        self.line.clear();
                        out.push(Frame::LineTooLong);
                    } else {
                        let mut line = std::mem::take(&mut self.line);
                        line.extend_from_slice(&chunk[..pos]);
                        self.process_line(&line, out);
                        line.clear();
                        self.line = line;
                    }
                    chunk = &chunk[pos + 1..];
                    if is_cr {
                        match chunk.first() {
                            Some(b'\n') => chunk = &chunk[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
                None => {
                    if !self.skipping {
                        if self.line.len() + chunk.len() > self.max_line {
                            self.line.clear();
                            self.skipping = true;
                            out.push(Frame::LineTooLong);
                        } else {
                            self.line.extend_from_slice(chunk);
                        }
                    }
                    break;
                }
            }
        }
    }

    /// Ends the stream. Returns true when an event had started (data lines
    /// without the blank line that dispatches them) or a line was not
    /// terminated: the stream was cut. Per the standard, such an event is not
    /// dispatched.
    pub fn finish(&mut self) -> bool {
        let truncated = self.has_data || (!self.line.is_empty() && !self.at_start) || self.skipping;
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
        self.skipping = false;
        self.oversized = false;
        self.after_cr = false;
        truncated
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<Frame>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            out.push(Frame::Comment(
                String::from_utf8_lossy(&line[1..]).into_owned(),
            ));
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.oversized {
                    return;
                }
                if self.data.len() + value.len() + 1 > self.max_event {
                    self.oversized = true;
                    self.data.clear();
                    return;
                }
                if self.has_data {
                    self.data.push('\n');
                }
                match std::str::from_utf8(value) {
                    Ok(s) => self.data.push_str(s),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.has_data = true;
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&String::from_utf8_lossy(value));
            }
            b"id" if !value.contains(&0) => {
                self.last_event_id = String::from_utf8_lossy(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                if let Ok(ms) = std::str::from_utf8(value).unwrap_or("").parse() {
                    out.push(Frame::Retry(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Frame>) {
        if self.oversized {
            self.oversized = false;
            self.has_data = false;
            self.data.clear();
            self.event_type.clear();
            out.push(Frame::EventTooLarge);
            return;
        }
        if !self.has_data {
            self.event_type.clear();
            return;
        }
        let event_type = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(Frame::Event(Event {
            event_type,
            data: std::mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        }));
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        let truncated = d.finish();
        (out, truncated)
    }

    fn data(frames: &[Frame]) -> Vec<&str> {
        frames
            .iter()
            .filter_map(|f| match f {
                Frame::Event(e) => Some(e.data.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn line_endings_of_every_kind() {
        let (f, t) = decode_all(&[b"data: a\n\ndata: b\r\rdata: c\r\n\r\n"]);
        assert_eq!(data(&f), ["a", "b", "c"]);
        assert!(!t);
    }

    #[test]
    fn crlf_split_across_chunks() {
        let (f, _) = decode_all(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(data(&f), ["a", "b"]);
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_changes_nothing() {
        let (f, t) = decode_all(&[b"data: a\r", b"", b"\n"]);
        assert!(f.is_empty(), "{f:?}");
        assert!(t, "the event was never closed");
    }

    #[test]
    fn bom_only_at_start_and_split() {
        let (f, _) = decode_all(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]);
        assert_eq!(data(&f), ["x"]);
        let (f, _) = decode_all(&[b"\xEF", b"data: x\n\n"]);
        assert!(data(&f).is_empty(), "{f:?}");
    }

    #[test]
    fn multi_line_data_fields_and_ids() {
        let (f, _) = decode_all(&[
            b"event: upd\nid: 7\ndata:one\ndata: two\nretry: 1500\nretry: x\n\ndata\n\n",
        ]);
        assert_eq!(
            f,
            vec![
                Frame::Retry(1500),
                Frame::Event(Event {
                    event_type: "upd".into(),
                    data: "one\ntwo".into(),
                    last_event_id: "7".into()
                }),
                Frame::Event(Event {
                    event_type: "message".into(),
                    data: String::new(),
                    last_event_id: "7".into()
                }),
            ]
        );
    }

    #[test]
    fn comments_and_empty_data_are_reported() {
        let (f, _) = decode_all(&[b": ping\ndata:\n\n\n\n"]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0], Frame::Comment(" ping".into()));
        assert_eq!(data(&f), [""]);
    }

    #[test]
    fn truncated_event_is_not_dispatched_but_reported() {
        let (f, t) = decode_all(&[b"data: {\"a\":1}\n\ndata: {\"b\""]);
        assert_eq!(data(&f), ["{\"a\":1}"]);
        assert!(t);
        let (_, t) = decode_all(&[b"data: x\n"]);
        assert!(t);
    }

    #[test]
    fn utf8_split_inside_a_code_point() {
        let bytes = "data: 导出视频\n\n".as_bytes();
        let (f, _) = decode_all(&[&bytes[..8], &bytes[8..]]);
        assert_eq!(data(&f), ["导出视频"]);
    }

    #[test]
    fn overlong_lines_are_bounded() {
        let mut d = Decoder::with_limits(64, 128);
        let mut out = Vec::new();
        for _ in 0..1000 {
            d.feed(&[b'x'; 100], &mut out);
        }
        assert_eq!(out, vec![Frame::LineTooLong]);
        assert!(d.line.capacity() <= 1024);
        d.feed(b"\ndata: ok\n\n", &mut out);
        assert_eq!(data(&out), ["ok"]);
        let mut out = Vec::new();
        for _ in 0..10 {
            d.feed(
                b"data: 0123456789012345678901234567890123456789\n",
                &mut out,
            );
        }
        d.feed(b"\ndata: after\n\n", &mut out);
        assert_eq!(out[0], Frame::EventTooLarge);
        assert_eq!(data(&out), ["after"]);
    }
}
