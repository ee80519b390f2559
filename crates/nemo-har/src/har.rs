//! HAR 1.2 types (<http://www.softwareishard.com/blog/har-12-spec/>).
//!
//! Reading is tolerant: a browser's export (standard fields only) loads,
//! unknown fields are ignored and missing optional fields take their
//! defaults. Writing follows the spec, plus a few custom fields (names start
//! with `_`, as the spec allows):
//!
//! | field | where | what |
//! |---|---|---|
//! | `_command` | page | the user's turn, enough to issue it again ([`PageCommand`]) |
//! | `_events` | `response.content` | each chunk of an event stream: arrival offset (ms since the request started) and text |
//! | `_error` | entry | a transport failure: no response (status 0), or the body broke after the events |

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::command::PageCommand;
use crate::HarError;

/// A HAR file: `{"log": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Har {
    /// The log.
    pub log: Log,
}

/// The root of the recorded data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// Format version (`1.2`).
    #[serde(default = "version")]
    pub version: String,
    /// What wrote the file.
    #[serde(default)]
    pub creator: Creator,
    /// The browser, when a browser wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<Creator>,
    /// Pages: for `nemo`, the user's turns.
    #[serde(default)]
    pub pages: Vec<Page>,
    /// Every exchange, in the order the requests were sent.
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

fn version() -> String {
    "1.2".into()
}

/// The application that wrote the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creator {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: String,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Default for Creator {
    fn default() -> Self {
        Self {
            name: "nemo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            comment: None,
        }
    }
}

/// A page: for `nemo`, one user turn (a command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// When it started (RFC 3339).
    #[serde(default)]
    pub started_date_time: String,
    /// Its id; entries refer to it with `pageref`.
    #[serde(default)]
    pub id: String,
    /// Its title: the user's words, or the command.
    #[serde(default)]
    pub title: String,
    /// Page timings (unused by `nemo`).
    #[serde(default)]
    pub page_timings: PageTimings,
    /// The command to issue again on replay (custom field).
    #[serde(rename = "_command", default, skip_serializing_if = "Option::is_none")]
    pub command: Option<PageCommand>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Page load timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageTimings {
    /// Content loaded (ms), `-1` when not applicable.
    #[serde(default = "minus_one")]
    pub on_content_load: f64,
    /// Page loaded (ms), `-1` when not applicable.
    #[serde(default = "minus_one")]
    pub on_load: f64,
}

impl Default for PageTimings {
    fn default() -> Self {
        Self {
            on_content_load: -1.0,
            on_load: -1.0,
        }
    }
}

fn minus_one() -> f64 {
    -1.0
}

/// One exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The page (user turn) it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pageref: Option<String>,
    /// When the request started (RFC 3339).
    #[serde(default)]
    pub started_date_time: String,
    /// Total time in ms (request sent to response read).
    #[serde(default)]
    pub time: f64,
    /// The request.
    pub request: HarRequest,
    /// The response (status 0 when none arrived).
    #[serde(default)]
    pub response: HarResponse,
    /// Cache information (unused).
    #[serde(default)]
    pub cache: serde_json::Value,
    /// Timings.
    #[serde(default)]
    pub timings: Timings,
    /// A transport failure (custom field).
    #[serde(rename = "_error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordedError>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A failure below HTTP, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedError {
    /// `connect`, `timeout`, `tls`, `interrupted`, `local`, `exists`, `other`.
    pub kind: String,
    /// The transport's message (tokens redacted).
    #[serde(default)]
    pub message: String,
}

/// A name and a value (headers, query parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

impl NameValue {
    /// A pair.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarRequest {
    /// `GET`, `POST`, …
    #[serde(default)]
    pub method: String,
    /// The absolute URL.
    #[serde(default)]
    pub url: String,
    /// `HTTP/1.1`, …
    #[serde(default = "http11")]
    pub http_version: String,
    /// Cookies (never recorded by `nemo`).
    #[serde(default)]
    pub cookies: Vec<serde_json::Value>,
    /// Headers.
    #[serde(default)]
    pub headers: Vec<NameValue>,
    /// The query string, parsed.
    #[serde(default)]
    pub query_string: Vec<NameValue>,
    /// The body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_data: Option<PostData>,
    /// `-1`: not known.
    #[serde(default = "minus_one_i")]
    pub headers_size: i64,
    /// Body size in bytes, `-1` when not known.
    #[serde(default = "minus_one_i")]
    pub body_size: i64,
}

fn http11() -> String {
    "HTTP/1.1".into()
}

fn minus_one_i() -> i64 {
    -1
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    /// Its media type.
    #[serde(default)]
    pub mime_type: String,
    /// Its text (JSON bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its parts (multipart bodies; file bytes are never recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
}

/// A multipart part or form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Param {
    /// The field name (`files`).
    #[serde(default)]
    pub name: String,
    /// A field's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A file part's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// A file part's content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarResponse {
    /// HTTP status; 0 when no response arrived.
    #[serde(default)]
    pub status: u16,
    /// The reason phrase.
    #[serde(default)]
    pub status_text: String,
    /// `HTTP/1.1`, …
    #[serde(default = "http11")]
    pub http_version: String,
    /// Cookies (never recorded by `nemo`).
    #[serde(default)]
    pub cookies: Vec<serde_json::Value>,
    /// Headers.
    #[serde(default)]
    pub headers: Vec<NameValue>,
    /// The body.
    #[serde(default)]
    pub content: Content,
    /// Redirect target.
    #[serde(rename = "redirectURL", default)]
    pub redirect_url: String,
    /// `-1`: not known.
    #[serde(default = "minus_one_i")]
    pub headers_size: i64,
    /// Body size in bytes, `-1` when not known.
    #[serde(default = "minus_one_i")]
    pub body_size: i64,
}

impl Default for HarResponse {
    fn default() -> Self {
        Self {
            status: 0,
            status_text: String::new(),
            http_version: http11(),
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content::default(),
            redirect_url: String::new(),
            headers_size: -1,
            body_size: -1,
        }
    }
}

/// A response body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// Its length in bytes (for downloads, the only thing recorded).
    #[serde(default)]
    pub size: i64,
    /// Its media type.
    #[serde(default)]
    pub mime_type: String,
    /// Its text (absent for downloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `base64` when `text` is encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The event stream's chunks as they arrived (custom field).
    #[serde(rename = "_events", default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<StreamEvent>>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One chunk of an event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    /// Milliseconds from the start of the request to the chunk's arrival.
    pub t: f64,
    /// The chunk.
    pub text: String,
}

/// Phase timings in ms (`-1` when not applicable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Queued.
    #[serde(default = "minus_one")]
    pub blocked: f64,
    /// DNS.
    #[serde(default = "minus_one")]
    pub dns: f64,
    /// Connecting.
    #[serde(default = "minus_one")]
    pub connect: f64,
    /// Sending.
    #[serde(default)]
    pub send: f64,
    /// Waiting for the head.
    #[serde(default)]
    pub wait: f64,
    /// Reading the body.
    #[serde(default)]
    pub receive: f64,
    /// TLS.
    #[serde(default = "minus_one")]
    pub ssl: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send: 0.0,
            wait: 0.0,
            receive: 0.0,
            ssl: -1.0,
        }
    }
}

impl Har {
    /// An empty log written by `nemo`.
    pub fn new() -> Self {
        Self {
            log: Log {
                version: version(),
                creator: Creator::default(),
                browser: None,
                pages: Vec::new(),
                entries: Vec::new(),
                comment: None,
            },
        }
    }

    /// Parses a HAR document.
    pub fn from_json(text: &str) -> Result<Har, HarError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        serde_json::from_str(text).map_err(|e| HarError::Parse(e.to_string()))
    }

    /// Reads a HAR file.
    pub fn load(path: impl AsRef<Path>) -> Result<Har, HarError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|e| HarError::io(path, e))?;
        let text = String::from_utf8_lossy(&text);
        Har::from_json(&text).map_err(|e| match e {
            HarError::Parse(m) => HarError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The document as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the document atomically: a temporary file beside `path`,
    /// synced, then renamed into place.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), HarError> {
        let mut text = self.to_json();
        text.push('\n');
        write_atomic(path.as_ref(), text.as_bytes())
    }
}

impl Default for Har {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `bytes` to a temporary file in `path`'s directory, syncs it and
/// renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HarError> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nemo-har")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| HarError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| HarError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| HarError::io(path, e))?;
    tmp.persist(path).map_err(|e| HarError::io(path, e.error))?;
    Ok(())
}
