//! What the machine is configured with, what it is asked to do, and the
//! requests it hands out: ids, credentials, [`Config`], [`Command`],
//! [`Transmit`].

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::api;
use crate::secret::Secret;
use crate::wire::Request;

/// Identifies a command; its [`Event::Finished`] carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

/// Identifies a transmitted request; answers must carry the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The credential the session starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No token: get an anonymous one with the client id.
    None,
    /// A token from `NEMO_TOKEN`. Cannot be renewed: a 1001 is final.
    User(Secret),
    /// A cached anonymous token. Renewed with the client id on 1001.
    Anonymous {
        /// The token.
        token: Secret,
        /// Its user id, for registration links.
        user_id: Option<String>,
    },
}

/// A session to continue instead of creating one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// The session id.
    pub session_id: String,
    /// The task id, when known (needed for claim links).
    pub task_id: Option<String>,
}

/// Everything the machine is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The attribution triple sent on every request.
    pub attribution: Attribution,
    /// `X-Client-Id` for anonymous tokens.
    pub client_id: String,
    /// How to authenticate.
    pub credential: Credential,
    /// A session to continue, if any.
    pub session: Option<SessionRef>,
    /// `session` was chosen by the user (not just the last one used): if
    /// the server does not know it, fail with [`ErrorKind::SessionLost`]
    /// rather than start another one in its place.
    ///
    /// [`ErrorKind::SessionLost`]: crate::error::ErrorKind::SessionLost
    pub session_required: bool,
    /// The session language (`en`, `zh`, …).
    pub language: String,
    /// The web app's base URL (claim and registration links).
    pub web_url: String,
    /// Seed for ids and jitter.
    pub seed: u64,
    /// Retry tunables: back-offs, rate-limit waits (see `recovery`).
    pub retry: RetryPolicy,
    /// Render polling tunables: first poll, bounds, overall cap (see `render`).
    pub poll: PollPolicy,
    /// The longest one API call may take, every retry and the waits between
    /// them included: an attempt still unanswered then is abandoned, and no
    /// retry starts that would begin after it. Uploads, downloads and the
    /// agent's stream have their own, longer limits (the transport's, and
    /// `stream_cap`); render polling has `poll`'s overall cap.
    pub request_deadline: Duration,
    /// How often to say "still working" while the agent works.
    pub still_working_every: Duration,
    /// How long a stream may carry only keep-alives.
    pub keepalive_timeout: Duration,
    /// The longest a stream may last.
    pub stream_cap: Duration,
    /// After a dropped stream: the first state check.
    pub recover_first: Duration,
    /// After a dropped stream: the interval of later state checks.
    pub recover_every: Duration,
    /// After a dropped stream: how many unchanged checks mean failure.
    pub recover_checks: u32,
    /// Ask for a claim link after each download.
    pub claim_after_export: bool,
    /// Emit [`Event::AgentTextDelta`] for each piece of the agent's text as
    /// it arrives (off by default: [`Event::AgentText`] still comes once
    /// per message either way).
    pub text_deltas: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            attribution: Attribution::default(),
            client_id: String::new(),
            credential: Credential::None,
            session: None,
            session_required: false,
            language: "en".into(),
            web_url: api::DEFAULT_WEB_URL.into(),
            seed: 0,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            request_deadline: Duration::from_secs(5 * 60),
            still_working_every: Duration::from_secs(120),
            keepalive_timeout: Duration::from_secs(600),
            stream_cap: Duration::from_secs(15 * 60),
            recover_first: Duration::from_secs(30),
            recover_every: Duration::from_secs(60),
            recover_checks: 5,
            claim_after_export: true,
            text_deltas: false,
        }
    }
}

/// How to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The render id; `render_<unix ms>` from the driver's clock, or one from
    /// the machine's seed.
    pub render_id: Option<String>,
    /// Download the result at all.
    pub download: bool,
    /// Where to put the file (default `<render id>.mp4`).
    pub out: Option<PathBuf>,
    /// Replace an existing file there.
    pub overwrite: bool,
}

/// What a user (or a frontend) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Get a token and a session.
    Connect,
    /// A message: routed into a plan (upload, instruct, export, …).
    Message(UserInput),
    /// Send text straight to the agent, without routing.
    Instruct(String),
    /// Upload files and/or media URLs.
    Upload {
        /// Local files (already checked).
        files: Vec<FilePart>,
        /// Media URLs.
        urls: Vec<String>,
    },
    /// Show the credit balance.
    Credits,
    /// Show the timeline.
    Timeline,
    /// Render the draft, wait, download.
    Export(ExportOptions),
    /// Finish a render submitted earlier (wait, download).
    ResumeRender {
        /// The render id.
        id: String,
        /// What to do with the result.
        options: ExportOptions,
    },
    /// Cancel a render on the server.
    CancelRender {
        /// The render id.
        id: String,
    },
    /// Get a browser link to the project.
    ClaimLink,
}

/// How the transport should carry out a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Send and read the whole response; report with `handle_response`.
    Send,
    /// Open an event stream; report with `handle_stream_*` (or with
    /// `handle_response` when the answer is not an event stream).
    Stream,
    /// Download the body to `dest`; report with `handle_download`.
    Download {
        /// The final path.
        dest: PathBuf,
        /// Replace an existing regular file.
        overwrite: bool,
        /// The size the render status reported, when it did: a download
        /// of any other length is not the video.
        expected_size: Option<u64>,
    },
}

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Its id; answers carry it back.
    pub id: RequestId,
    /// The request.
    pub request: Request,
    /// How to carry it out.
    pub mode: Mode,
}
