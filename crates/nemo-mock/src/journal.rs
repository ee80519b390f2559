//! The request journal: every request the simulator saw, for tests to query.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nemo_core::wire::Endpoint;

use crate::config::Dialect;

/// What the mask replaces a credential with.
pub const MASKED: &str = "***";

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// Order of arrival, from 0.
    pub seq: u64,
    /// Simulated time since the backend started.
    pub at: Duration,
    /// `GET` or `POST` (or whatever arrived).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The endpoint, when the path is one of the API's.
    pub endpoint: Option<Endpoint>,
    /// Request headers, names lower case; `authorization` and `x-client-id`
    /// masked (`Bearer ***…abcd`, the last four characters kept).
    pub headers: Vec<(String, String)>,
    /// A summary of the body: JSON as sent, multipart as the files' names and
    /// sizes, empty for none.
    pub body: String,
    /// The status answered (200 for a stream that started).
    pub status: u16,
    /// The fault rules that hit this request, as written.
    pub faults: Vec<String>,
    /// The dialect the answer was spoken in (`mixed` resolved to one);
    /// `None` for a request refused before it was routed.
    pub dialect: Option<Dialect>,
}

impl JournalEntry {
    /// A header's value (masked for credentials).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The same entry without its arrival time (for comparing runs).
    pub fn timeless(&self) -> JournalEntry {
        JournalEntry {
            at: Duration::ZERO,
            ..self.clone()
        }
    }
}

/// A shared, append-only list of [`JournalEntry`]s. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    inner: Arc<Mutex<Vec<JournalEntry>>>,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Vec<JournalEntry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, mut entry: JournalEntry) -> u64 {
        let mut entries = self.lock();
        entry.seq = entries.len() as u64;
        entries.push(entry);
        entries.len() as u64 - 1
    }

    pub(crate) fn set_status(&self, seq: u64, status: u16, faults: &[String]) {
        if let Some(e) = self.lock().get_mut(seq as usize) {
            e.status = status;
            e.faults = faults.to_vec();
        }
    }

    pub(crate) fn set_dialect(&self, seq: u64, dialect: Dialect) {
        if let Some(e) = self.lock().get_mut(seq as usize) {
            e.dialect = Some(dialect);
        }
    }

    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.lock().clone()
    }

    /// How many requests arrived.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True before the first request.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// How many requests went to an endpoint.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.lock()
            .iter()
            .filter(|e| e.endpoint == Some(endpoint))
            .count()
    }

    /// How many requests had exactly this path.
    pub fn count_path(&self, path: &str) -> usize {
        self.lock().iter().filter(|e| e.path == path).count()
    }

    /// The entries for one endpoint.
    pub fn for_endpoint(&self, endpoint: Endpoint) -> Vec<JournalEntry> {
        self.lock()
            .iter()
            .filter(|e| e.endpoint == Some(endpoint))
            .cloned()
            .collect()
    }

    /// The text of every message sent to `/run_sse`, in order.
    pub fn messages(&self) -> Vec<String> {
        self.for_endpoint(Endpoint::RunSse)
            .iter()
            .filter_map(|e| e.json())
            .map(|v| message_text(&v))
            .collect()
    }

    /// The entries without arrival times: equal for two runs of the same
    /// seed, plan and sequence of requests.
    pub fn timeless(&self) -> Vec<JournalEntry> {
        self.lock().iter().map(JournalEntry::timeless).collect()
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// The text of a `/run_sse` body's `new_message` (parts joined).
pub(crate) fn message_text(body: &serde_json::Value) -> String {
    body.get("new_message")
        .and_then(|m| m.get("parts"))
        .and_then(|p| p.as_array())
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Masks a credential, keeping the scheme and the last four characters.
pub(crate) fn mask(name: &str, value: &str) -> String {
    let keep = |v: &str| {
        let tail: String = v
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if v.chars().count() > 8 {
            format!("{MASKED}{tail}")
        } else {
            MASKED.to_owned()
        }
    };
    match name {
        "authorization" => match value.split_once(' ') {
            Some((scheme, rest)) => format!("{scheme} {}", keep(rest)),
            None => keep(value),
        },
        "x-client-id" | "cookie" | "x-api-key" => keep(value),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_credentials() {
        assert_eq!(
            mask("authorization", "Bearer nmv_usr_0123456789abcdef"),
            "Bearer ***cdef"
        );
        assert_eq!(mask("authorization", "Bearer abc"), "Bearer ***");
        assert_eq!(mask("x-client-id", "6f1c2d3e-aaaa-bbbb"), "***bbbb");
        assert_eq!(mask("x-skill-source", "video-openapi"), "video-openapi");
    }
}
