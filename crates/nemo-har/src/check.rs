//! `--check`: the client's requests during a replay against the recorded
//! ones.
//!
//! Requests are aligned by method and path (longest common subsequence), so
//! one missing or extra request shows as one difference, not as a cascade.
//! Aligned requests are compared by body: JSON parsed, with generated values
//! normalised (render ids `render_<ms>`, UUIDs, RFC 3339 timestamps, numbers
//! under time-like keys), secrets masked on both sides; multipart bodies by
//! their parts' names, file names and types.

use std::fmt;

use nemo_core::time::parse_rfc3339;
use serde_json::Value;

use crate::har::{Entry, HarRequest};
use crate::redact::Redactor;
use crate::transport::{is_render_id, route_key, SentRequest};

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    /// The recording has a request the client did not send.
    Missing,
    /// The client sent a request the recording does not have.
    Extra,
    /// Same method and path, different body.
    Body,
}

/// One difference between the recorded and the replayed requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What kind.
    pub kind: DifferenceKind,
    /// The recorded entry's index, if one is involved.
    pub recorded: Option<usize>,
    /// The replayed request's index, if one is involved.
    pub replayed: Option<usize>,
    /// The method and path.
    pub request: String,
    /// Details (the body paths that differ, with both values).
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |i: Option<usize>| i.map_or("-".to_owned(), |i| format!("#{}", i + 1));
        match self.kind {
            DifferenceKind::Missing => write!(
                f,
                "- recorded {} {} was not sent by the client",
                n(self.recorded),
                self.request
            )?,
            DifferenceKind::Extra => write!(
                f,
                "+ the client sent {} (request {}), which is not in the recording",
                self.request,
                n(self.replayed)
            )?,
            DifferenceKind::Body => write!(
                f,
                "~ {} (recorded {}, replayed {}): the body differs",
                self.request,
                n(self.recorded),
                n(self.replayed)
            )?,
        }
        if !self.detail.is_empty() {
            for line in self.detail.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

fn key(r: &HarRequest) -> (String, String) {
    route_key(&r.method, &r.url)
}

fn label(r: &HarRequest) -> String {
    let (m, p) = key(r);
    format!("{m} {p}")
}

const TIME_KEYS: &[&str] = &[
    "timestamp",
    "ts",
    "time",
    "created_at",
    "updated_at",
    "createdat",
    "updatedat",
];

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Generated values replaced by placeholders.
pub(crate) fn normalise(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::String(s) => {
            if is_render_id(s) {
                Value::String("render_<id>".into())
            } else if is_uuid(s) {
                Value::String("<uuid>".into())
            } else if s.len() >= 19 && s.contains('T') && parse_rfc3339(s).is_some() {
                Value::String("<time>".into())
            } else {
                value.clone()
            }
        }
        Value::Number(_)
            if key.is_some_and(|k| TIME_KEYS.contains(&k.to_ascii_lowercase().as_str())) =>
        {
            Value::String("<time>".into())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, None)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalise(v, Some(k))))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// A body reduced to what must agree.
fn body_of(r: &HarRequest, redactor: &Redactor) -> Value {
    let Some(post) = &r.post_data else {
        return Value::Null;
    };
    if !post.params.is_empty() {
        return Value::Array(
            post.params
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "fileName": p.file_name,
                        "contentType": p.content_type,
                    })
                })
                .collect(),
        );
    }
    let text = redactor.text(post.text.as_deref().unwrap_or(""));
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => normalise(&v, None),
        Err(_) => Value::String(text),
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// The paths where two JSON values differ (at most `limit`).
fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || a == b {
        return;
    }
    let at = if path.is_empty() { "(body)" } else { path };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => json_diff(&p, v, w, out, limit),
                    (Some(v), None) => {
                        out.push(format!("{p}: recorded {}, replayed absent", short(v)))
                    }
                    (None, Some(w)) => {
                        out.push(format!("{p}: recorded absent, replayed {}", short(w)))
                    }
                    (None, None) => {}
                }
                if out.len() >= limit {
                    return;
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), v, w, out, limit);
            }
        }
        _ => out.push(format!(
            "{at}: recorded {}, replayed {}",
            short(a),
            short(b)
        )),
    }
}

/// Above this many cells, alignment is greedy instead of optimal.
const MAX_LCS_CELLS: usize = 4_000_000;

fn greedy(
    a: &[&HarRequest],
    b: &[&HarRequest],
    ka: &[(String, String)],
    kb: &[(String, String)],
) -> Vec<Difference> {
    let redactor = Redactor::new();
    let mut out = Vec::new();
    let mut i = 0;
    for (j, k) in kb.iter().enumerate() {
        match (i..ka.len()).find(|&x| &ka[x] == k) {
            Some(x) => {
                for (r, req) in a.iter().enumerate().take(x).skip(i) {
                    out.push(Difference {
                        kind: DifferenceKind::Missing,
                        recorded: Some(r),
                        replayed: None,
                        request: label(req),
                        detail: String::new(),
                    });
                }
                if body_of(a[x], &redactor) != body_of(b[j], &redactor) {
                    out.push(Difference {
                        kind: DifferenceKind::Body,
                        recorded: Some(x),
                        replayed: Some(j),
                        request: label(a[x]),
                        detail: String::new(),
                    });
                }
                i = x + 1;
            }
            None => out.push(Difference {
                kind: DifferenceKind::Extra,
                recorded: None,
                replayed: Some(j),
                request: label(b[j]),
                detail: String::new(),
            }),
        }
    }
    for (r, req) in a.iter().enumerate().skip(i) {
        out.push(Difference {
            kind: DifferenceKind::Missing,
            recorded: Some(r),
            replayed: None,
            request: label(req),
            detail: String::new(),
        });
    }
    out
}

/// Compares the recorded entries with the requests the client sent.
pub(crate) fn compare(recorded: &[Entry], sent: &[SentRequest]) -> Vec<Difference> {
    let a: Vec<&HarRequest> = recorded.iter().map(|e| &e.request).collect();
    let b: Vec<&HarRequest> = sent.iter().map(|s| &s.request).collect();
    let ka: Vec<_> = a.iter().map(|r| key(r)).collect();
    let kb: Vec<_> = b.iter().map(|r| key(r)).collect();
    // Longest common subsequence of the keys.
    let (n, m) = (ka.len(), kb.len());
    if n.saturating_mul(m) > MAX_LCS_CELLS {
        // Too large to align optimally: a request's match is the next
        // recorded one with the same method and path.
        return greedy(&a, &b, &ka, &kb);
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if ka[i] == kb[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Secrets on either side are masked the same way.
    let mut redactor = Redactor::new();
    for r in a.iter().chain(&b) {
        for h in &r.headers {
            redactor.learn_header(&h.name, &h.value);
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && ka[i] == kb[j] {
            let (x, y) = (body_of(a[i], &redactor), body_of(b[j], &redactor));
            if x != y {
                let mut lines = Vec::new();
                json_diff("", &x, &y, &mut lines, 8);
                out.push(Difference {
                    kind: DifferenceKind::Body,
                    recorded: Some(i),
                    replayed: Some(j),
                    request: label(a[i]),
                    detail: lines.join("\n"),
                });
            }
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(Difference {
                kind: DifferenceKind::Extra,
                recorded: None,
                replayed: Some(j),
                request: label(b[j]),
                detail: String::new(),
            });
            j += 1;
        } else {
            out.push(Difference {
                kind: DifferenceKind::Missing,
                recorded: Some(i),
                replayed: None,
                request: label(a[i]),
                detail: String::new(),
            });
            i += 1;
        }
    }
    out
}
