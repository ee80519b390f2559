//! Requests and responses as owned values.
//!
//! The machine never performs I/O: it hands out [`Request`]s that a transport
//! turns into bytes on the wire, as many times as it has to (every attempt is
//! rebuilt from the same value, multipart bodies included), and it takes back
//! [`Response`]s. Nothing here knows about sockets, TLS or files' contents.

use std::fmt;
use std::path::PathBuf;

use crate::secret::{Secret, MASK};

/// HTTP method. The NemoVideo API uses only these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Which endpoint a request is for. Recovery decisions depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/auth/anonymous-token`
    AnonymousToken,
    /// `POST /api/tasks/me/with-session/nemo_agent`
    CreateSession,
    /// `POST /run_sse` — the agent. Never sent twice for one user message.
    RunSse,
    /// `POST /api/upload-video/nemo_agent/me/<sid>`
    Upload,
    /// `GET /api/credits/balance/simple`
    Credits,
    /// `GET /api/state/nemo_agent/me/<sid>/latest`
    State,
    /// `POST /api/render/proxy/lambda`
    RenderSubmit,
    /// `GET /api/render/proxy/lambda/<id>`
    RenderStatus,
    /// `POST /api/render/proxy/lambda/<id>/cancel`
    RenderCancel,
    /// `GET` of a render's output URL, or `/api/render/proxy/<id>/download`.
    Download,
    /// `POST /api/auth/claim-token`
    ClaimToken,
}

impl Endpoint {
    /// True when sending the request twice cannot cost credits or create a
    /// second object: such requests may be retried after a 5xx or a broken
    /// connection. `run_sse` and uploads are not: the first may have arrived.
    pub(crate) fn is_idempotent(self) -> bool {
        matches!(
            self,
            Endpoint::Credits
                | Endpoint::State
                | Endpoint::RenderStatus
                | Endpoint::Download
                | Endpoint::RenderCancel
                | Endpoint::ClaimToken
                | Endpoint::CreateSession
        )
    }

    /// A short name for logs and journals.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::AnonymousToken => "anonymous-token",
            Endpoint::CreateSession => "create-session",
            Endpoint::RunSse => "run-sse",
            Endpoint::Upload => "upload",
            Endpoint::Credits => "credits",
            Endpoint::State => "state",
            Endpoint::RenderSubmit => "render-submit",
            Endpoint::RenderStatus => "render-status",
            Endpoint::RenderCancel => "render-cancel",
            Endpoint::Download => "download",
            Endpoint::ClaimToken => "claim-token",
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path (with query) on the API base URL, e.g. `/api/credits/balance/simple`.
    Api(String),
    /// An absolute URL, e.g. a render's output on a CDN. No credentials are
    /// sent to it unless the request carries them explicitly.
    Absolute(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Api(path) => f.write_str(path),
            Target::Absolute(url) => f.write_str(url),
        }
    }
}

/// One request header. Values marked sensitive are masked in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, lower case.
    pub name: &'static str,
    /// Header value.
    pub value: HeaderValue,
}

/// A header value: plain text or a secret.
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Shown as is in logs.
    Plain(String),
    /// `Bearer <token>` and other credentials; masked in logs.
    Sensitive(Secret),
}

impl HeaderValue {
    /// The value to put on the wire.
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(v) => v,
            HeaderValue::Sensitive(s) => s.expose(),
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            HeaderValue::Plain(v) => write!(f, "{}: {v}", self.name),
            HeaderValue::Sensitive(_) => write!(f, "{}: {MASK}", self.name),
        }
    }
}

/// A file to send as one multipart `files` part, streamed from disk by the
/// transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// Where the file is.
    pub path: PathBuf,
    /// The part's `filename` (the file's name, without directories).
    pub filename: String,
    /// The part's content type, from the extension (`video/mp4`, …).
    pub content_type: String,
    /// The file's length in bytes, as the frontend read it before the
    /// request was built (used for local size checks and progress).
    pub len: u64,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// `application/json`, already serialised.
    Json(String),
    /// `multipart/form-data`, one `files` part per file.
    Multipart(Vec<FilePart>),
}

/// A request, as the machine wants it sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Which endpoint this is.
    pub endpoint: Endpoint,
    /// HTTP method.
    pub method: Method,
    /// Where it goes.
    pub target: Target,
    /// Headers, in order. `content-type` is set by the transport from the body.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Body,
}

impl Request {
    /// The value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.expose())
    }

    /// The JSON body as text, if the body is JSON.
    pub fn json_body(&self) -> Option<&str> {
        match &self.body {
            Body::Json(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

/// A complete (non-streaming) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers (names lower case).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a JSON body, for tests and simulators.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// The value of a header, if present (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Finds a header in a list of `(name, value)` pairs, ignoring case.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_debug_masks_sensitive_headers() {
        let req = Request {
            endpoint: Endpoint::Credits,
            method: Method::Get,
            target: Target::Api("/api/credits/balance/simple".into()),
            headers: vec![
                Header {
                    name: "authorization",
                    value: HeaderValue::Sensitive(Secret::new("Bearer nmv_usr_secret")),
                },
                Header {
                    name: "x-skill-source",
                    value: HeaderValue::Plain("video-openapi".into()),
                },
            ],
            body: Body::Empty,
        };
        let dbg = format!("{req:?}");
        assert!(!dbg.contains("nmv_usr_secret"), "{dbg}");
        assert!(dbg.contains("x-skill-source: video-openapi"), "{dbg}");
        assert_eq!(req.header("Authorization"), Some("Bearer nmv_usr_secret"));
    }
}
