//! The transport trait: how requests reach a backend.
//!
//! `nemo-http` implements it over reqwest for the real service; `nemo-mock`
//! implements it in-process for fast tests and the offline demo. The
//! [`driver`](crate::driver) runs the session machine over any of them.

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

use crate::wire::{Request, Response};

/// How far a transfer has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred so far (for a resumed download, including the part
    /// that was already on disk).
    pub done: u64,
    /// Total bytes, when known.
    pub total: Option<u64>,
}

/// A progress callback. Called often; must be cheap.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// What kind of transport failure happened. Recovery depends on the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (DNS, refused, unreachable).
    Connect,
    /// No answer in time (connect, read or the overall cap).
    Timeout,
    /// TLS handshake or certificate failure.
    Tls,
    /// The connection broke after the request was sent (reset, truncated body).
    Interrupted,
    /// A local file could not be read or written.
    Local,
    /// The download target exists and overwriting was not allowed.
    Exists,
    /// Anything else (invalid URL, protocol error).
    Other,
}

impl TransportErrorKind {
    /// True for failures that may go away on their own (a retry may work).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            TransportErrorKind::Connect
                | TransportErrorKind::Timeout
                | TransportErrorKind::Interrupted
        )
    }
}

/// A failure below HTTP: no usable response was received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What went wrong, for recovery decisions.
    pub kind: TransportErrorKind,
    /// What went wrong, for people. Never contains a token.
    pub message: String,
}

impl TransportError {
    /// A new error.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The body of a streaming response, chunk by chunk as it arrives.
#[async_trait]
pub trait ByteStream: Send {
    /// The next chunk; `None` when the server closed the body normally; an
    /// error when the connection broke.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>>;
}

/// The head of a streaming response and its body.
pub struct StreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (names lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Box<dyn ByteStream>,
}

impl fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// How a download should treat the target path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DownloadOptions {
    /// Replace an existing *regular* file at the target (never a folder, a
    /// device, a FIFO or a link). Off by default.
    pub overwrite: bool,
    /// The length the server announced elsewhere (the render status's
    /// `size`): a body of any other length is refused, never saved.
    pub expected_size: Option<u64>,
}

/// How a download ended when the transport itself did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// The whole file is at the target path.
    Complete {
        /// Its length in bytes.
        bytes: u64,
    },
    /// The server answered with an error status; nothing was written under
    /// the target name. The response is kept so the caller can read the API
    /// error in it.
    Refused(Response),
}

/// A way to reach a NemoVideo backend.
///
/// Implementations must:
/// - send each call's request exactly once (retries are the caller's
///   decision, never the transport's);
/// - never put a token into an error message, a log line or a `Debug` output;
/// - stream multipart file parts from disk and streaming bodies to the caller
///   as they arrive, without holding them whole in memory.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends a request and reads the whole response. Upload progress, if
    /// wanted, is reported through `progress`.
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError>;

    /// Sends a request whose response is an event stream (`/run_sse`).
    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError>;

    /// Downloads the response body to `dest`: into a temporary file beside
    /// it, resumed with `Range` after a broken connection where possible,
    /// length checked, synced, then renamed into place.
    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError>;
}
