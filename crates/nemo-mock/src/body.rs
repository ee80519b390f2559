//! Answers and their bodies, produced chunk by chunk in simulated time, the
//! same way for the HTTP server and the in-process transport.

use std::time::Duration;

use bytes::Bytes;

use crate::clock::SimClock;
use crate::media::MediaSource;
use crate::sse::{Script, StreamEnd};

/// What the backend answers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: ReplyBody,
    /// Break the connection after this many body bytes.
    pub(crate) reset_after: Option<u64>,
}

/// A reply's body.
#[derive(Debug)]
pub(crate) enum ReplyBody {
    /// Everything at once.
    Bytes(Bytes),
    /// An event stream: frames at their times from `start` (simulated).
    Sse { script: Script, start: Duration },
    /// `start..end` of a media file.
    Media {
        source: MediaSource,
        start: u64,
        end: u64,
    },
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: ReplyBody::Bytes(body.into()),
            reset_after: None,
        }
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The body's length when known up front.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match &self.body {
            ReplyBody::Bytes(b) => Some(b.len() as u64),
            ReplyBody::Media { start, end, .. } => Some(end - start),
            ReplyBody::Sse { .. } => None,
        }
    }

    /// The whole body, when it is plain bytes that will not be cut.
    pub(crate) fn whole_bytes(&mut self) -> Option<Bytes> {
        match &mut self.body {
            ReplyBody::Bytes(b) if self.reset_after.is_none() => Some(std::mem::take(b)),
            _ => None,
        }
    }

    /// Splits into head and a body reader.
    pub(crate) fn into_parts(self, clock: SimClock) -> (u16, Vec<(String, String)>, BodyReader) {
        let reader = BodyReader {
            body: self.body,
            clock,
            sent: 0,
            reset_after: self.reset_after,
            frame: 0,
            done: false,
        };
        (self.status, self.headers, reader)
    }
}

/// Why a body stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken;

/// Produces a body's chunks, waiting (in simulated time) for stream frames.
#[derive(Debug)]
pub(crate) struct BodyReader {
    body: ReplyBody,
    clock: SimClock,
    sent: u64,
    reset_after: Option<u64>,
    frame: usize,
    done: bool,
}

impl BodyReader {
    /// The next chunk; `None` at a clean end; `Err` when the connection breaks.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, Broken>> {
        if self.done {
            return None;
        }
        if self.reset_after.is_some_and(|limit| self.sent >= limit) {
            self.done = true;
            return Some(Err(Broken));
        }
        let chunk = match &mut self.body {
            ReplyBody::Bytes(b) => {
                if b.is_empty() {
                    None
                } else {
                    Some(std::mem::take(b))
                }
            }
            ReplyBody::Media { source, start, end } => {
                let c = source.chunk(*start, *end);
                *start += c.len() as u64;
                (!c.is_empty()).then_some(c)
            }
            ReplyBody::Sse { script, start } => match script.frames.get(self.frame) {
                Some(f) => {
                    self.clock.sleep_until(*start + f.at).await;
                    self.frame += 1;
                    Some(f.bytes.clone())
                }
                None => {
                    if script.end == StreamEnd::Reset {
                        self.done = true;
                        return Some(Err(Broken));
                    }
                    None
                }
            },
        };
        let Some(mut chunk) = chunk else {
            self.done = true;
            return None;
        };
        if let Some(limit) = self.reset_after {
            let room = limit.saturating_sub(self.sent);
            if (chunk.len() as u64) > room {
                chunk = chunk.slice(..room as usize);
            }
        }
        self.sent += chunk.len() as u64;
        Some(Ok(chunk))
    }
}
