//! Redaction: secrets never reach the disk.
//!
//! What is replaced with [`MASK`] (`[redacted]`):
//! - the `Authorization` header's credentials (the scheme stays: `Bearer
//!   [redacted]`), `X-Client-Id`, `Cookie`, `Set-Cookie`, `Proxy-Authorization`,
//!   `X-Api-Key`;
//! - the value of a `ct=` query parameter (claim tokens) in URLs and in any
//!   text;
//! - the values of `token`, `claim_token`, `access_token`, `refresh_token`,
//!   `anonymous_token` and `api_key` keys in JSON bodies;
//! - every occurrence, anywhere (URLs, headers, bodies, stream events, error
//!   messages), of a known secret: each value above is learned as one, and
//!   callers can add their own ([`Redactor::add`]).
//!
//! JSON is redacted on its decoded values: each string of a JSON body (keys
//! too), and of each `data:` line of an event stream, is decoded, masked,
//! and re-encoded only when it held a secret, so a token written with JSON
//! escapes (`\/`, `\u005f`, …) goes too, and the rest of the body keeps its
//! bytes (the draft inside a state answer stays byte for byte). Secrets are
//! learned from decoded values as well (at most 64 from bodies; those past
//! that stay masked where they stand). Other text is masked textually, and
//! that pass also catches a known secret written percent-encoded or
//! JSON-escaped, character by character in any mix.
//!
//! An event stream is redacted line by line as it arrives
//! ([`Redactor::stream`]): a line is held until it is complete, and a line
//! longer than [`LINE_CAP`] is masked textually through a window a little
//! longer than the longest secret, so memory stays bounded whatever the
//! stream's size.

use std::borrow::Cow;

use regex::{NoExpand, Regex, RegexBuilder};
use serde_json::Value;

use crate::har::{Entry, Har, NameValue, StreamEvent};

/// The placeholder for a secret.
pub const MASK: &str = nemo_core::secret::MASK;

/// Secrets shorter than this are not searched for in text (they would match
/// ordinary words); header and key rules still apply to them.
const MIN_SECRET: usize = 6;

/// How many secrets bodies can teach (a session has a handful).
const MAX_LEARNED: usize = 64;

/// The longest stream line held whole (and redacted as JSON when it is a
/// `data:` line); a longer one is redacted textually through a window.
pub const LINE_CAP: usize = 1024 * 1024;

/// The most bytes one character of a secret takes in any form the textual
/// pass recognises (`%F0%9F%98%80`, `\ud83d\ude00`).
const MAX_FORM: usize = 12;

const SECRET_HEADERS: &[&str] = &[
    "x-client-id",
    "cookie",
    "set-cookie",
    "proxy-authorization",
    "x-api-key",
];

const SECRET_KEYS: &[&str] = &[
    "token",
    "claim_token",
    "access_token",
    "refresh_token",
    "anonymous_token",
    "api_key",
];

/// Knows the secrets of a session and removes them from text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Every known secret in every recognised form (raw, JSON-escaped,
    /// percent-encoded, per character); `None` when there is none, or when
    /// the pattern could not be built (plain replacement then).
    forms: Option<Regex>,
    /// The longest text a match of `forms` can span, in bytes.
    window: usize,
}

impl Redactor {
    /// A redactor that knows no secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret: every occurrence will be replaced.
    pub fn add(&mut self, secret: &str) {
        let s = secret.trim();
        if s.len() < MIN_SECRET || s == MASK || self.secrets.iter().any(|k| k == s) {
            return;
        }
        self.secrets.push(s.to_owned());
        // Longest first, so a secret containing another goes whole.
        self.secrets.sort_by_key(|k| std::cmp::Reverse(k.len()));
        let pattern = self
            .secrets
            .iter()
            .map(|k| secret_forms(k))
            .collect::<Vec<_>>()
            .join("|");
        self.forms = RegexBuilder::new(&pattern)
            .size_limit(64 << 20)
            .build()
            .ok();
        self.window = self
            .secrets
            .iter()
            .map(|k| k.chars().count() * MAX_FORM)
            .max()
            .unwrap_or(0);
    }

    /// Adds a secret found in a body (a token key's value, a claim token).
    /// Past [`MAX_LEARNED`] secrets, none is added: each one makes every
    /// later search longer. Values found that way stay masked where they
    /// stand (token keys, `ct=`), and secrets given by [`add`](Self::add) or
    /// headers are always added.
    fn learn(&mut self, secret: &str) {
        if self.secrets.len() < MAX_LEARNED {
            self.add(secret);
        }
    }

    /// Learns the secrets a request header carries.
    pub fn learn_header(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if name == "authorization" || name == "proxy-authorization" {
            let credentials = value.split_once(' ').map_or(value, |(_, c)| c);
            self.add(credentials);
        } else if SECRET_HEADERS.contains(&name.as_str()) {
            self.add(value);
        }
    }

    /// Learns the secrets in a body: in JSON, the decoded values of token
    /// keys and claim tokens (`ct=` parameters) in decoded strings; in other
    /// text, claim tokens.
    pub fn learn_body(&mut self, text: &str) {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            let mut found = Vec::new();
            collect_secret_values(&value, &mut found);
            for s in found {
                self.learn(&s);
            }
        } else {
            self.learn_claims(text);
        }
    }

    fn learn_claims(&mut self, text: &str) {
        for (start, end) in claim_params(text) {
            self.learn(&text[start..end]);
        }
    }

    /// `text` with every known secret (in any form the textual pass
    /// recognises) and every `ct=` value masked.
    pub fn text(&self, text: &str) -> String {
        self.text_cow(text).into_owned()
    }

    fn text_cow<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let masked = match &self.forms {
            Some(re) => re.replace_all(text, NoExpand(MASK)),
            None if self.secrets.iter().any(|s| text.contains(s.as_str())) => {
                let mut out = text.to_owned();
                for s in &self.secrets {
                    out = out.replace(s.as_str(), MASK);
                }
                Cow::Owned(out)
            }
            None => Cow::Borrowed(text),
        };
        match masked {
            Cow::Borrowed(t) => mask_claim_params(t),
            Cow::Owned(t) => Cow::Owned(mask_claim_params(&t).into_owned()),
        }
    }

    /// A header value, masked when the header carries credentials.
    pub fn header(&self, name: &str, value: &str) -> String {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" || lower == "proxy-authorization" {
            match value.split_once(' ') {
                Some((scheme, _)) => format!("{scheme} {MASK}"),
                None => MASK.to_owned(),
            }
        } else if SECRET_HEADERS.contains(&lower.as_str()) {
            MASK.to_owned()
        } else {
            self.text(value)
        }
    }

    fn headers(&self, headers: &mut [NameValue]) {
        for h in headers {
            h.value = self.header(&h.name, &h.value);
        }
    }

    /// Masks one entry in place (secrets in its bodies are learned first,
    /// on a copy of this redactor).
    pub fn entry(&self, entry: &mut Entry) {
        let mut local = self.clone();
        local.entry_mut(entry);
    }

    /// [`entry`](Self::entry), keeping what was learned.
    pub(crate) fn entry_mut(&mut self, entry: &mut Entry) {
        let req = &mut entry.request;
        req.url = self.text(&req.url);
        self.headers(&mut req.headers);
        for q in &mut req.query_string {
            q.value = if q.name == "ct" {
                MASK.to_owned()
            } else {
                self.text(&q.value)
            };
        }
        if let Some(post) = &mut req.post_data {
            if let Some(t) = &mut post.text {
                *t = self.body(t);
            }
            for p in &mut post.params {
                if let Some(v) = &mut p.value {
                    *v = self.text(v);
                }
            }
        }
        let resp = &mut entry.response;
        self.headers(&mut resp.headers);
        resp.redirect_url = self.text(&resp.redirect_url);
        let content = &mut resp.content;
        match &mut content.events {
            Some(events) => {
                let raw_text_is_events = content.text.as_deref().is_none_or(|t| {
                    t.len() == events.iter().map(|e| e.text.len()).sum::<usize>()
                        && events.iter().map(|e| e.text.as_str()).collect::<String>() == t
                });
                *events = self.events(events);
                if raw_text_is_events {
                    if content.text.is_some() {
                        content.text = Some(events.iter().map(|e| e.text.as_str()).collect());
                    }
                } else if let Some(t) = &mut content.text {
                    *t = self.body(t);
                }
            }
            None => {
                if let Some(t) = &mut content.text {
                    if content.encoding.is_none() {
                        *t = self.body(t);
                    }
                }
            }
        }
        if let Some(err) = &mut entry.error {
            err.message = self.text(&err.message);
        }
        if let Some(c) = &mut entry.comment {
            *c = self.text(c);
        }
    }

    /// Masks a whole log in place, learning the secrets in it first.
    pub fn har(&mut self, har: &mut Har) {
        for e in &har.log.entries {
            self.learn_entry(e);
        }
        for e in &mut har.log.entries {
            self.entry_mut(e);
        }
        for p in &mut har.log.pages {
            p.title = self.text(&p.title);
        }
    }

    /// Learns the secrets of an entry's headers and bodies.
    pub(crate) fn learn_entry(&mut self, e: &Entry) {
        for h in &e.request.headers {
            self.learn_header(&h.name, &h.value);
        }
        if let Some(t) = e.request.post_data.as_ref().and_then(|p| p.text.as_ref()) {
            self.learn_body(t);
        }
        if let Some(t) = &e.response.content.text {
            self.learn_body(t);
        }
    }

    /// A body with secrets masked: JSON on its decoded strings, anything
    /// else line by line as an event stream would be (a `data:` line holding
    /// JSON on its decoded strings, other lines textually). Secrets in it
    /// are learned first.
    pub fn body(&mut self, text: &str) -> String {
        if let Some(masked) = self.json(text) {
            return masked;
        }
        let mut stream = StreamRedaction::default();
        let mut out = self.stream(&mut stream, text.as_bytes());
        out.push_str(&self.stream_end(&mut stream));
        out
    }

    /// Masks the secrets in a JSON document's decoded strings, after
    /// learning those it carries; `None` when `text` is not JSON. Only the
    /// strings that held a secret are re-encoded; every other byte stays.
    pub fn json(&mut self, text: &str) -> Option<String> {
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
            return None;
        }
        if self.untouched(text) {
            return Some(text.to_owned());
        }
        let known = self.secrets.len();
        let masked = for_each_string(text, |s, under_secret_key| {
            if under_secret_key && !s.is_empty() && s != MASK {
                self.learn(s);
                return Some(MASK.to_owned());
            }
            if s.contains("ct=") {
                self.learn_claims(s);
            }
            match self.text_cow(s) {
                Cow::Owned(m) => Some(m),
                Cow::Borrowed(_) => None,
            }
        });
        if self.secrets.len() != known {
            // A secret learned on the way: mask it where it came earlier.
            let again = for_each_string(text, |s, under_secret_key| {
                if under_secret_key && !s.is_empty() && s != MASK {
                    return Some(MASK.to_owned());
                }
                match self.text_cow(s) {
                    Cow::Owned(m) => Some(m),
                    Cow::Borrowed(_) => None,
                }
            });
            return Some(again.unwrap_or_else(|| text.to_owned()));
        }
        Some(masked.unwrap_or_else(|| text.to_owned()))
    }

    /// True when no rule can change `text` and nothing can be learned from
    /// it: no escape, no token key, no `ct=`, no known secret in any
    /// spelling.
    fn untouched(&self, text: &str) -> bool {
        static TRIGGERS: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
            let keys = SECRET_KEYS.join("|");
            Regex::new(&format!(r"(?i:{keys})|ct=|\\")).ok()
        });
        let Some(triggers) = TRIGGERS.as_ref() else {
            return false;
        };
        !triggers.is_match(text)
            && match &self.forms {
                Some(re) => !re.is_match(text),
                None => !self.secrets.iter().any(|s| text.contains(s.as_str())),
            }
    }

    /// Masks a recorded event stream: the chunks' texts as they would have
    /// been written by a streaming recording (see [`Redactor::stream`]).
    pub fn events(&mut self, events: &[StreamEvent]) -> Vec<StreamEvent> {
        let mut stream = StreamRedaction::default();
        let mut assembler = EventAssembler::default();
        let mut out = Vec::new();
        for e in events {
            let text = self.stream(&mut stream, e.text.as_bytes());
            out.extend(assembler.chunk(e.t, text));
        }
        let tail = self.stream_end(&mut stream);
        out.extend(assembler.end(tail));
        out
    }

    /// Feeds one chunk of an event stream; returns the redacted text that
    /// can be released now: every line it completes, and, of a line longer
    /// than [`LINE_CAP`], all but a window at its end.
    pub fn stream(&mut self, state: &mut StreamRedaction, chunk: &[u8]) -> String {
        let mut out = String::new();
        let before = state.pending.len();
        state.pending.extend_from_slice(chunk);
        // Only the new bytes can complete a line (ended by LF, CR or both,
        // as event streams allow).
        if let Some(last) = memchr::memrchr2(b'\n', b'\r', chunk).map(|at| before + at) {
            let rest = state.pending.split_off(last + 1);
            let complete = std::mem::replace(&mut state.pending, rest);
            let block = String::from_utf8_lossy(&complete);
            if self.untouched(&block) {
                out.push_str(&block);
            } else {
                for line in block.split_inclusive(['\n', '\r']) {
                    out.push_str(&self.line(line));
                }
            }
        }
        if state.pending.len() > LINE_CAP {
            self.release_window(state, &mut out);
        }
        if state.pending.capacity() > 2 * LINE_CAP + chunk.len() {
            state.pending.shrink_to(LINE_CAP);
        }
        out
    }

    /// Ends an event stream: the redacted text of what was held.
    pub fn stream_end(&mut self, state: &mut StreamRedaction) -> String {
        let rest = std::mem::take(&mut state.pending);
        if rest.is_empty() {
            return String::new();
        }
        self.line(&String::from_utf8_lossy(&rest))
    }

    /// One line of a stream (with its line end, if any).
    fn line(&mut self, line: &str) -> String {
        if self.untouched(line) {
            return line.to_owned();
        }
        let body = line.trim_end_matches(['\n', '\r']);
        let end = &line[body.len()..];
        let (prefix, payload) = match body.strip_prefix("data:") {
            Some(p) => ("data:", p),
            None => ("", body),
        };
        let lead = payload.len() - payload.trim_start().len();
        if !payload.trim().is_empty() {
            if let Some(masked) = self.json(&payload[lead..]) {
                return format!("{prefix}{}{masked}{end}", &payload[..lead]);
            }
        }
        self.learn_claims(line);
        self.text(line)
    }

    /// Releases all but the end of an over-long line, masked textually.
    fn release_window(&mut self, state: &mut StreamRedaction, out: &mut String) {
        let pending = std::mem::take(&mut state.pending);
        let (text, rest) = match std::str::from_utf8(&pending) {
            Ok(s) => (Cow::Borrowed(s), &[][..]),
            Err(e) if e.error_len().is_none() => {
                let (good, rest) = pending.split_at(e.valid_up_to());
                (String::from_utf8_lossy(good), rest)
            }
            Err(_) => (String::from_utf8_lossy(&pending), &[][..]),
        };
        self.learn_claims(&text);
        let masked = self.text_cow(&text);
        // Hold back what may be the start of a secret, and a claim value
        // that may go on (masked already: what follows is masked with it).
        let mut keep = masked.len().saturating_sub(self.window.max(64));
        if let Some(&(start, end)) = claim_params(&masked).last() {
            if end == masked.len() {
                keep = keep.min(start.saturating_sub(4));
            }
        }
        while !masked.is_char_boundary(keep) {
            keep -= 1;
        }
        out.push_str(&masked[..keep]);
        let mut held = masked.as_bytes()[keep..].to_vec();
        held.extend_from_slice(rest);
        state.pending = held;
    }
}

/// What a stream's redaction holds between chunks: the line not yet
/// complete (at most [`LINE_CAP`] and a window).
#[derive(Debug, Default)]
pub struct StreamRedaction {
    pending: Vec<u8>,
}

impl StreamRedaction {
    /// Bytes held (allocated) between chunks.
    pub fn buffered(&self) -> usize {
        self.pending.capacity()
    }
}

/// Turns the redacted text released for each chunk into `_events`: a chunk
/// whose text was all held records nothing, and what is held at the end
/// joins the last chunk's event (its bytes arrived then). Holds at most one
/// event.
#[derive(Debug, Default)]
pub(crate) struct EventAssembler {
    held: Option<StreamEvent>,
    /// The arrival time of the last chunk.
    last_t: f64,
}

impl EventAssembler {
    /// A chunk arrived at `t` and released `text`: the event now complete,
    /// if any.
    pub(crate) fn chunk(&mut self, t: f64, text: String) -> Option<StreamEvent> {
        self.last_t = t;
        if text.is_empty() {
            return None;
        }
        self.held.replace(StreamEvent { t, text })
    }

    /// The stream ended with `tail` held: the last events.
    pub(crate) fn end(&mut self, tail: String) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if !tail.is_empty() {
            match &mut self.held {
                Some(h) if h.t == self.last_t => h.text.push_str(&tail),
                _ => {
                    out.extend(self.held.take());
                    self.held = Some(StreamEvent {
                        t: self.last_t,
                        text: tail,
                    });
                }
            }
        }
        out.extend(self.held.take());
        out
    }

    /// Bytes held.
    pub(crate) fn buffered(&self) -> usize {
        self.held.as_ref().map_or(0, |e| e.text.capacity())
    }
}

/// A regex matching `secret` with each character in any of its forms:
/// itself, a JSON `\uXXXX` escape (surrogate pairs beyond the BMP; hex digits
/// in either case), the JSON short escapes of `/`, `"` and `\`, or its
/// percent-encoded UTF-8 bytes (either case; `+` for a space).
fn secret_forms(secret: &str) -> String {
    fn hex(out: &mut String, digits: &str) {
        for d in digits.chars() {
            if d.is_ascii_alphabetic() {
                out.push('[');
                out.push(d.to_ascii_lowercase());
                out.push(d.to_ascii_uppercase());
                out.push(']');
            } else {
                out.push(d);
            }
        }
    }
    let mut out = String::from("(?:");
    for c in secret.chars() {
        out.push_str("(?:");
        out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        match c {
            '/' => out.push_str(r"|\\/"),
            '"' => out.push_str(r#"|\\""#),
            '\\' => out.push_str(r"|\\\\"),
            ' ' => out.push_str(r"|\+"),
            _ => {}
        }
        out.push('|');
        for unit in c.encode_utf16(&mut [0; 2]) {
            out.push_str(r"\\u");
            hex(&mut out, &format!("{unit:04x}"));
        }
        out.push('|');
        for b in c.encode_utf8(&mut [0; 4]).bytes() {
            out.push('%');
            hex(&mut out, &format!("{b:02x}"));
        }
        out.push(')');
    }
    out.push(')');
    out
}

/// Calls `f` on each string of the JSON document `text` (valid JSON:
/// checked by the caller), decoded, with whether it is the value of a
/// secret key; where `f` returns a replacement, the string is re-encoded
/// with it. Returns the new text when anything was replaced.
fn for_each_string(text: &str, mut f: impl FnMut(&str, bool) -> Option<String>) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut replace = |start: usize, end: usize, with: Option<String>, out: &mut Option<String>| {
        if let Some(new) = with {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            o.push_str(&serde_json::to_string(&new).unwrap_or_default());
            copied = end;
        }
    };
    while let Some(at) = memchr::memchr(b'"', &b[i..]) {
        let start = i + at;
        let end = string_end(b, start);
        let raw = &text[start..end];
        let decoded = decode(raw);
        // A key: the next non-blank byte is ':'.
        let mut j = end;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let is_key = j < b.len() && b[j] == b':';
        let with = match &decoded {
            Some(s) => f(s, false),
            None => f(raw, false),
        };
        replace(start, end, with, &mut out);
        i = end;
        if is_key {
            let secret = decoded
                .as_deref()
                .is_some_and(|k| SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()));
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let (vs, ve) = (j, string_end(b, j));
                let raw = &text[vs..ve];
                let with = match decode(raw) {
                    Some(s) => f(&s, secret),
                    None => f(raw, secret),
                };
                replace(vs, ve, with, &mut out);
                i = ve;
            }
        }
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

/// The end (one past the closing quote) of the JSON string starting at
/// `start`.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut j = start + 1;
    while let Some(at) = memchr::memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
        j += at;
        if b[j] == b'\\' {
            j += 2;
        } else {
            return j + 1;
        }
    }
    b.len()
}

/// A JSON string token decoded; `None` when it cannot be (a lone
/// surrogate).
fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if raw.len() >= 2 && !raw.contains('\\') {
        return Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

fn collect_secret_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.contains("ct=") {
                    out.extend(claim_params(k).into_iter().map(|(a, b)| k[a..b].to_owned()));
                }
                match v {
                    Value::String(s) if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                        out.push(s.clone());
                    }
                    _ => collect_secret_values(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_values(v, out)),
        Value::String(s) if s.contains("ct=") => {
            out.extend(claim_params(s).into_iter().map(|(a, b)| s[a..b].to_owned()));
        }
        _ => {}
    }
}

/// Byte ranges of the values of `ct=` parameters (after `?` or `&`).
fn claim_params(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("ct=") {
        let at = from + i;
        from = at + 3;
        if at == 0 || !matches!(bytes[at - 1], b'?' | b'&') {
            continue;
        }
        let start = at + 3;
        let end = text[start..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '#' | '<' | '>' | '\\' | ')')
            })
            .map_or(text.len(), |n| start + n);
        if end > start {
            out.push((start, end));
        }
    }
    out
}

fn mask_claim_params(text: &str) -> Cow<'_, str> {
    if !text.contains("ct=") {
        return Cow::Borrowed(text);
    }
    let ranges = claim_params(text);
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in ranges {
        out.push_str(&text[last..start]);
        out.push_str(MASK);
        last = end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_secrets_claims_and_token_keys() {
        let mut r = Redactor::new();
        r.learn_header("Authorization", "Bearer nmv_usr_0123456789");
        r.learn_header("X-Client-Id", "8d3e54a0-1111");
        assert_eq!(
            r.header("authorization", "Bearer nmv_usr_0123456789"),
            "Bearer [redacted]"
        );
        assert_eq!(r.header("x-client-id", "8d3e54a0-1111"), MASK);
        assert_eq!(
            r.text(
                "see https://nemovideo.com/workspace/claim?ct=clm_abc&x=1 and nmv_usr_0123456789"
            ),
            "see https://nemovideo.com/workspace/claim?ct=[redacted]&x=1 and [redacted]"
        );
        assert_eq!(r.text("exact=1"), "exact=1");
        let body = r#"{"code":0,"data":{"token":"abc","claim_token":"clm_0123456789","n":1}}"#;
        assert_eq!(
            r.body(body),
            r#"{"code":0,"data":{"token":"[redacted]","claim_token":"[redacted]","n":1}}"#
        );
    }

    const SECRET: &str = "nmv/usr_5f3a9c0d7e1b";

    fn spellings(t: &str) -> Vec<String> {
        vec![
            t.to_owned(),
            t.replace('/', "\\/"),
            t.replace('_', "\\u005f"),
            t.chars().map(|c| format!("\\u{:04x}", c as u32)).collect(),
            t.chars().map(|c| format!("\\u{:04X}", c as u32)).collect(),
            t.bytes().map(|b| format!("%{b:02X}")).collect(),
            t.bytes().map(|b| format!("%{b:02x}")).collect(),
            "5f3a9c0d7e1b".into(),
        ]
    }

    fn assert_clean(case: &str, text: &str) {
        for s in spellings(SECRET) {
            assert!(!text.contains(&s), "{case}: {s} survived in {text}");
        }
    }

    /// A token written with any JSON escaping in the anonymous-token answer
    /// is learned decoded, and masked in every spelling wherever it comes
    /// back: a stream event escaped otherwise, fed a few bytes at a time, a
    /// percent-encoded URL, plain text.
    #[test]
    fn escaped_tokens_are_learned_decoded_and_masked_in_every_spelling() {
        let forms = spellings(SECRET);
        for (i, answer) in forms.iter().take(5).enumerate() {
            for (j, echo) in forms.iter().take(7).enumerate() {
                let case = format!("answer {i}, echo {j}");
                let mut r = Redactor::new();
                let body = format!(r#"{{"code":0,"data":{{"token":"{answer}","n":1.50}}}}"#);
                let masked = r.body(&body);
                assert_eq!(
                    masked, r#"{"code":0,"data":{"token":"[redacted]","n":1.50}}"#,
                    "{case}"
                );
                assert!(
                    r.secrets.iter().any(|s| s == SECRET),
                    "{case}: learned decoded"
                );
                let stream = format!(
                    "event: message\ndata: {{\"echo\":\"{echo}\",\"url\":\"https://x/?t={}\"}}\n\n: {echo}\ndata: {echo}\n",
                    forms[5]
                );
                let mut state = StreamRedaction::default();
                let mut out = String::new();
                for chunk in stream.as_bytes().chunks(7) {
                    out.push_str(&r.stream(&mut state, chunk));
                }
                out.push_str(&r.stream_end(&mut state));
                assert_clean(&case, &out);
                assert!(
                    out.starts_with("event: message\ndata: {\"echo\":\"[redacted]\""),
                    "{case}: {out}"
                );
            }
        }
    }

    /// JSON keeps its bytes where there is no secret (escapes, number
    /// spellings, spacing); a key escaped (`\u0074oken`) still marks its
    /// value secret; a claim link with an escaped `&` is learned and masked.
    #[test]
    fn json_is_redacted_on_decoded_values_and_keeps_its_bytes() {
        let mut r = Redactor::new();
        let plain = "{ \"a\" : 1.0e3, \"b\": [\"x\\/y\", \"\\u00e9\", null],\n \"c\": {} }";
        assert_eq!(r.body(plain), plain);
        let key = r#"{"\u0074oken": "abc", "TOKEN":"xyz123456", "other":"abc"}"#;
        assert_eq!(
            r.body(key),
            r#"{"\u0074oken": "[redacted]", "TOKEN":"[redacted]", "other":"abc"}"#
        );
        let claim =
            r#"{"text":"open https:\/\/nemovideo.com\/claim?a=1\u0026ct=clm_0123456789 now"}"#;
        let masked = r.body(claim);
        assert!(!masked.contains("clm_0123456789"), "{masked}");
        assert!(masked.contains("ct=[redacted] now"), "{masked}");
        assert!(r.text("clm_0123456789 again").starts_with(MASK));
        // A secret echoed before the key that reveals it goes too.
        let mut r = Redactor::new();
        let before = r#"{"echo":"tok\u005fabcdef","data":{"token":"tok_abcdef"}}"#;
        assert_eq!(
            r.body(before),
            r#"{"echo":"[redacted]","data":{"token":"[redacted]"}}"#
        );
    }

    /// A line longer than the cap is released through a window: a secret
    /// (in any spelling) straddling any window boundary, and a claim value
    /// cut anywhere, are still masked; what is held stays small.
    #[test]
    fn an_endless_line_is_masked_through_a_window() {
        let mut r = Redactor::new();
        r.add(SECRET);
        let forms = spellings(SECRET);
        let mut line = String::new();
        let mut n = 0;
        while line.len() < 3 * LINE_CAP {
            line.push_str(&"x".repeat(n % 977));
            line.push_str(&forms[n % 7]);
            line.push_str(" &ct=clm_");
            line.push_str(&"c".repeat(n % 300));
            line.push(' ');
            n += 1;
        }
        for chunk_len in [1000, 65_536, 300_001] {
            let mut state = StreamRedaction::default();
            let mut out = String::new();
            let mut peak = 0;
            for chunk in line.as_bytes().chunks(chunk_len) {
                out.push_str(&r.stream(&mut state, chunk));
                peak = peak.max(state.buffered());
            }
            out.push_str(&r.stream_end(&mut state));
            assert_clean(&format!("chunks of {chunk_len}"), &out);
            assert!(!out.contains("clm_c"), "a claim value survived");
            assert_eq!(out.matches("ct=[redacted]").count(), n);
            assert!(peak < 2 * LINE_CAP + 2 * chunk_len, "{peak}");
        }
    }

    /// Event streams may end lines with CR alone: each line is still one
    /// JSON value to walk.
    #[test]
    fn lines_ended_by_cr_alone_are_lines() {
        let mut r = Redactor::new();
        let stream = "data: {\"token\":\"abc_defgh\"}\rdata: {\"x\":\"abc\\u005fdefgh\"}\r\r";
        let mut state = StreamRedaction::default();
        let mut out = String::new();
        for chunk in stream.as_bytes().chunks(5) {
            out.push_str(&r.stream(&mut state, chunk));
        }
        out.push_str(&r.stream_end(&mut state));
        assert_eq!(
            out,
            "data: {\"token\":\"[redacted]\"}\rdata: {\"x\":\"[redacted]\"}\r\r"
        );
    }
}
