//! The errors users see: what went wrong, whether trying again can help, and
//! the data a frontend needs to say what to do next in its own words.
//!
//! The core's messages say what happened, never how a particular frontend is
//! driven (no command names, flags or environment variables): a frontend adds
//! its own advice from [`ErrorKind`] and [`ErrorDetail`].

use std::fmt;

use serde::Serialize;

/// What kind of failure ended an operation. Frontends map it to exit codes:
/// [`ErrorKind::is_retryable`] kinds are transient (exit 2), the rest
/// permanent (exit 1), [`ErrorKind::Cancelled`] is an interruption (130).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Code 2001: no credits left.
    OutOfCredits,
    /// Code 4001 (or a local check): the file's format is not accepted.
    UnsupportedFile,
    /// Code 4002 (or a local check): the file is over 500 MB.
    FileTooLarge,
    /// HTTP 402: the plan does not allow exports.
    PlanBlocked,
    /// HTTP 429 after the one allowed retry.
    RateLimited,
    /// Code 1001 that a new token could not fix (e.g. a bad `NEMO_TOKEN`).
    AuthFailed,
    /// Code 1002 that a new session could not fix.
    SessionLost,
    /// The render failed on the server.
    RenderFailed,
    /// Export was asked for, but the draft has nothing on its timeline.
    NothingToExport,
    /// The input was wrong before anything was sent (missing file, bad URL…).
    BadInput,
    /// A finished render was not saved: a file is at the output path (it
    /// was there, or appeared during the download) and replacing it was not
    /// allowed. The render stays recorded and can be saved again.
    OutputExists,
    /// The network failed (connect, reset, timeout) and retries ran out.
    Network,
    /// The server failed (5xx) and retries ran out.
    Server,
    /// The agent or a render took longer than allowed.
    Timeout,
    /// The server answered something the client cannot read.
    Protocol,
    /// The agent reported an error.
    Agent,
    /// The outcome is unknown: the message reached the agent (or the render
    /// was accepted) and no result could be confirmed. Not "safe to retry":
    /// a retry could spend credits twice or start a second render — check
    /// the timeline or the jobs first.
    Unconfirmed,
    /// The user stopped the operation.
    Cancelled,
    /// Any other API error.
    Api,
}

impl ErrorKind {
    /// True when the same operation may succeed if tried again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Network
                | ErrorKind::Server
                | ErrorKind::Timeout
                | ErrorKind::Agent
        )
    }
}

/// What a frontend needs to act on a failure beyond its [`ErrorKind`]: the
/// render concerned, the credits involved, which token was refused. New
/// variants may be added; a frontend shows the message alone for the ones
/// it does not know.
///
/// On the wire (`error_to_json`) it is an object with a `kind`:
/// `{"kind": "render_running", "id": "render_1"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorDetail {
    /// Out of credits (code 2001): what the operation needed and what was
    /// left, when the server said so.
    OutOfCredits {
        /// Credits the operation needed.
        needed: Option<f64>,
        /// Credits available.
        available: Option<f64>,
    },
    /// A render keeps going on the server and stays recorded (the wait was
    /// stopped or ran out): it can be finished later.
    RenderRunning {
        /// The render id.
        id: String,
    },
    /// A render finished on the server but its file was not saved (the
    /// download failed, or a file is in the way): it can be saved later.
    RenderNotSaved {
        /// The render id.
        id: String,
    },
    /// A token given by the user (not a free one) was rejected.
    UserTokenRejected,
    /// No usable free (anonymous) token could be had: the service refused
    /// one, or issued one that cannot be used. A token of an account would
    /// work.
    FreeTokenRefused,
    /// The file's format is not accepted (code 4001).
    UnsupportedFile {
        /// The accepted extensions, lower case, without the dot.
        accepted: Vec<String>,
    },
    /// An upload was asked for with no file and no link attached.
    NothingToUpload,
}

// The numbers come from parsed text and are never NaN.
impl Eq for ErrorDetail {}

/// A failed operation, ready to show.
///
/// A helpful link (registration, upgrade) is carried once, in
/// [`link`](Self::link): the message does not repeat it, and the machine
/// emits no separate [`Event::Link`](crate::machine::Event::Link) for it;
/// [`Display`](fmt::Display) shows the message followed by the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct NemoError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A sentence or two: what happened, in words any frontend can show
    /// (no command names, flags or environment variables). Never holds a
    /// token, nor the link.
    pub message: String,
    /// The API's code, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// A link that helps (registration, upgrade), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Data a frontend can act on (a render id, credits, which token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<ErrorDetail>,
}

impl NemoError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            link: None,
            detail: None,
        }
    }

    /// The same error with an API code.
    pub fn with_code(mut self, code: Option<i64>) -> Self {
        self.code = code;
        self
    }

    /// The same error with a link.
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// The same error with data a frontend can act on.
    pub fn with_detail(mut self, detail: ErrorDetail) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The render the error concerns (running, or finished and not saved),
    /// when there is one.
    pub fn render_id(&self) -> Option<&str> {
        match &self.detail {
            Some(ErrorDetail::RenderRunning { id } | ErrorDetail::RenderNotSaved { id }) => {
                Some(id)
            }
            _ => None,
        }
    }

    /// True when trying again later may work.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for NemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.link {
            Some(link) if !self.message.contains(link.as_str()) => {
                // "Register to get more." → "Register to get more (<link>)."
                match self.message.strip_suffix('.') {
                    Some(m) => write!(f, "{m} ({link})."),
                    None => write!(f, "{} ({link})", self.message),
                }
            }
            _ => f.write_str(&self.message),
        }
    }
}
