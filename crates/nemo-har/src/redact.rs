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
//! Replacement is textual, so a body keeps its bytes apart from the secrets
//! (the draft inside a state answer stays byte for byte).

use serde_json::Value;

use crate::har::{Entry, Har, NameValue};

/// The placeholder for a secret.
pub const MASK: &str = nemo_core::secret::MASK;

/// Secrets shorter than this are not searched for in text (they would match
/// ordinary words); header and key rules still apply to them.
const MIN_SECRET: usize = 6;

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

    /// Learns the secrets in a JSON body (values of token keys), and claim
    /// tokens in `ct=` parameters of any text.
    pub fn learn_body(&mut self, text: &str) {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            let mut found = Vec::new();
            collect_secret_values(&value, &mut found);
            for s in found {
                self.add(&s);
            }
        }
        for (start, end) in claim_params(text) {
            let v = &text[start..end];
            self.add(v);
        }
    }

    /// `text` with every known secret and every `ct=` value masked.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        mask_claim_params(&out)
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

    /// Masks one entry in place.
    pub fn entry(&self, entry: &mut Entry) {
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
                *t = self.json_or_text(t);
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
        if let Some(t) = &mut resp.content.text {
            *t = self.json_or_text(t);
        }
        if let Some(events) = &mut resp.content.events {
            for e in events {
                e.text = self.text(&e.text);
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
        for e in &mut har.log.entries {
            self.entry(e);
        }
        for p in &mut har.log.pages {
            p.title = self.text(&p.title);
        }
    }

    /// Text with secrets masked; for JSON, the values of token keys too (the
    /// rest of the text keeps its bytes).
    fn json_or_text(&self, text: &str) -> String {
        let mut local = self.clone();
        local.learn_body(text);
        let mut out = local.text(text);
        // Short token values (under MIN_SECRET) are not searched for in
        // general text; mask them where they stand as `"key": "value"`.
        if let Ok(value) = serde_json::from_str::<Value>(&out) {
            let mut found = Vec::new();
            collect_secret_values(&value, &mut found);
            for s in found.iter().filter(|s| s.as_str() != MASK && !s.is_empty()) {
                let quoted = serde_json::to_string(s).unwrap_or_default();
                for key in SECRET_KEYS {
                    for sep in [":", ": "] {
                        let needle = format!("\"{key}\"{sep}{quoted}");
                        out = out.replace(&needle, &format!("\"{key}\"{sep}\"{MASK}\""));
                    }
                }
            }
        }
        out
    }
}

fn collect_secret_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                        out.push(s.clone());
                    }
                    _ => collect_secret_values(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_values(v, out)),
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

fn mask_claim_params(text: &str) -> String {
    let ranges = claim_params(text);
    if ranges.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in ranges {
        out.push_str(&text[last..start]);
        out.push_str(MASK);
        last = end;
    }
    out.push_str(&text[last..]);
    out
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
            r.json_or_text(body),
            r#"{"code":0,"data":{"token":"[redacted]","claim_token":"[redacted]","n":1}}"#
        );
    }
}
