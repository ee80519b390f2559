//! The errors users see: what went wrong, whether trying again can help, and
//! what to do next.

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

/// A failed operation, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct NemoError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A sentence or two: what happened and what to do next. Never holds a
    /// token.
    pub message: String,
    /// The API's code, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// A link that helps (registration, upgrade), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl NemoError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            link: None,
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

    /// True when trying again later may work.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for NemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(link) = &self.link {
            if !self.message.contains(link.as_str()) {
                write!(f, " ({link})")?;
            }
        }
        Ok(())
    }
}
