//! The session machine: everything a NemoVideo client decides, with no I/O.
//!
//! Inputs are [`Command`]s (what the user wants), answers to the requests it
//! asked for (`handle_response`, `handle_stream_*`, `handle_download`,
//! `handle_transport_error`) and the passing of time (`handle_timeout`).
//! Outputs are [`Transmit`]s (requests to send), [`Event`]s (what to show or
//! persist) and the next deadline (`poll_timeout`).
//!
//! One request is in flight at a time; commands queue and run in order. A
//! user message is routed into a plan whose steps run one after another; a
//! failed step ends its command with an error and leaves later commands to
//! run. Errors that make the whole session unusable (a rejected `NEMO_TOKEN`,
//! no anonymous token to be had) are sticky: every later command ends with
//! the same error.
//!
//! **The driver contract.** Drain every event before sending the next
//! transmit: a render's [`Event::RenderStarting`] is emitted before its
//! submission is transmitted so that a frontend can journal the job first.
//! While a request is in flight, `poll_timeout` may name its overall
//! deadline ([`Config::request_deadline`]): a driver that races the call
//! against it and calls `handle_timeout` then gets the call given up (its
//! late answer is ignored); a driver that only waits for the answer still
//! gets every retry bounded by it.

use std::collections::VecDeque;

use crate::api::{Api, Attribution, UploadedFile};
use crate::draft::Draft;
use crate::error::NemoError;
use crate::gui::GuiAction;
use crate::recovery::{Attempts, RetryPolicy};
use crate::render::PollPolicy;
use crate::rng::SeededRng;
use crate::route::UserInput;
use crate::secret::Secret;
use crate::sse::Frame;
use crate::time::Instant;
use crate::wire::{Endpoint, FilePart, Request};

pub use crate::api::{Credits, RenderPhase};

/// The operation being carried out, borrowing only the task queue (so that
/// events can be pushed while it is held).
macro_rules! current_op {
    ($s:ident) => {
        $s.tasks.front_mut().and_then(|t| t.ops.front_mut())
    };
}

mod agent;
mod connect;
mod events;
mod export;
mod failure;
mod flow;
mod responses;
#[cfg(test)]
mod tests;
mod types;
mod upload;

pub use events::{
    Event, GenerationStage, LinkKind, RenderOutcome, TransferKind, POST_PRODUCTION_CHOICES,
    POST_PRODUCTION_SUGGESTIONS,
};
pub use types::{
    Command, CommandId, Config, Credential, ExportOptions, Mode, RequestId, SessionRef, Transmit,
};

use agent::{Instruct, InstructPhase};
use events::capitalised;
use export::{download_path, Export, ExportPhase};
use failure::failure_of;
use upload::check_url;

#[derive(Debug, Clone)]
enum DraftKnowledge {
    Unknown,
    Known(Option<Draft>),
}

#[derive(Debug)]
enum Op {
    Connect,
    Upload {
        files: Vec<FilePart>,
        urls: Vec<String>,
    },
    Instruct(Box<Instruct>),
    Credits,
    Timeline,
    Export(Box<Export>),
    Cancel {
        id: String,
    },
    Claim,
    /// A message that cannot be carried out: ends the command with this
    /// error, sending nothing.
    Refuse(NemoError),
}

#[derive(Debug)]
struct Task {
    id: CommandId,
    ops: VecDeque<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Token,
    Session,
    Op,
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    endpoint: Endpoint,
    purpose: Purpose,
    /// When it is abandoned if still unanswered (its call's overall
    /// deadline), for the calls that have one.
    deadline: Option<Instant>,
}

/// One API call being tried: when its first attempt left, how many went
/// out, and when the whole call must end, so that its error can say what
/// really happened.
#[derive(Debug, Clone, Copy)]
struct Trying {
    endpoint: Endpoint,
    purpose: Purpose,
    started: Instant,
    attempts: u32,
    deadline: Option<Instant>,
    /// When its last attempt failed.
    failed_at: Instant,
    /// The last attempt was abandoned at the deadline.
    cut: bool,
}

/// Whether a call of `endpoint` is bounded by [`Config::request_deadline`]:
/// every API call but an upload (its limit grows with its size), a
/// download and the agent's stream, which have their own.
fn has_deadline(endpoint: Endpoint) -> bool {
    !matches!(
        endpoint,
        Endpoint::Upload | Endpoint::Download | Endpoint::RunSse
    )
}

/// What an op wants next.
enum Next {
    Send(Request, Mode),
    Wait,
    Done,
    Fail(NemoError),
}

/// The session machine. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    config: Config,
    api: Api,
    rng: SeededRng,
    token: Option<Secret>,
    anonymous: bool,
    user_id: Option<String>,
    session: Option<SessionRef>,
    draft: DraftKnowledge,
    tasks: VecDeque<Task>,
    in_flight: Option<InFlight>,
    transmit: Option<Transmit>,
    events: VecDeque<Event>,
    wait_until: Option<Instant>,
    attempts: Attempts,
    auth_attempts: Attempts,
    trying: Option<Trying>,
    /// A back-off retry of `trying` is due: the next send continues it.
    retry_pending: bool,
    /// A call set aside for a new token or session: when it is sent again,
    /// it goes on under its first deadline (and its attempts count on).
    paused_call: Option<Trying>,
    fatal: Option<NemoError>,
    next_command: u64,
    next_request: u64,
    frames: Vec<Frame>,
    unix_ms: Option<u64>,
}

impl Session {
    /// A machine with the given configuration. Nothing is sent until a
    /// command arrives.
    pub fn new(config: Config) -> Self {
        let (token, anonymous, user_id) = match &config.credential {
            Credential::None => (None, true, None),
            Credential::User(t) => (Some(t.clone()), false, None),
            Credential::Anonymous { token, user_id } => {
                (Some(token.clone()), true, user_id.clone())
            }
        };
        let mut rng = SeededRng::new(config.seed);
        let mut config = config;
        let mut events = VecDeque::new();
        if config.client_id.is_empty() {
            config.client_id = rng.uuid_v4();
            events.push_back(Event::ClientIdGenerated(config.client_id.clone()));
        }
        if let Some(session) = &config.session {
            events.push_back(Event::Connected {
                session_id: session.session_id.clone(),
                task_id: session.task_id.clone(),
                created: false,
            });
        }
        Self {
            api: Api::new(config.attribution.clone()).streaming(config.text_deltas),
            rng,
            token,
            anonymous,
            user_id,
            session: config.session.clone(),
            draft: if config.session.is_some() {
                DraftKnowledge::Unknown
            } else {
                DraftKnowledge::Known(None)
            },
            config,
            tasks: VecDeque::new(),
            in_flight: None,
            transmit: None,
            events,
            wait_until: None,
            attempts: Attempts::default(),
            auth_attempts: Attempts::default(),
            trying: None,
            retry_pending: false,
            paused_call: None,
            fatal: None,
            next_command: 0,
            next_request: 0,
            frames: Vec::new(),
            unix_ms: None,
        }
    }

    // ----- getters -----

    /// The session id, once connected.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.session_id.as_str())
    }

    /// The task id, once known.
    pub fn task_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.task_id.as_deref())
    }

    /// The client id in use.
    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// The anonymous user id, when known.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The last draft read from the server, if any.
    pub fn draft(&self) -> Option<&Draft> {
        match &self.draft {
            DraftKnowledge::Known(d) => d.as_ref(),
            DraftKnowledge::Unknown => None,
        }
    }

    /// The sticky error, once the session is unusable.
    pub fn fatal_error(&self) -> Option<&NemoError> {
        self.fatal.as_ref()
    }

    /// True when no command is queued or running.
    pub fn is_idle(&self) -> bool {
        self.tasks.is_empty() && self.in_flight.is_none()
    }

    /// True while `id` is the request the machine waits for. A driver stops
    /// reading a stream whose request is no longer in flight.
    pub fn is_in_flight(&self, id: RequestId) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.id == id)
    }

    /// Tells the machine the wall-clock time (ms since the Unix epoch), used
    /// only to name renders `render_<ms>` as the service's own clients do.
    /// Without it, render ids come from the seed.
    pub fn set_unix_time(&mut self, unix_ms: u64) {
        self.unix_ms = Some(unix_ms);
    }

    // ----- outputs -----

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.take()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the request in flight is abandoned if still unanswered (its
    /// call's overall deadline), for the calls that have one.
    fn in_flight_deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().and_then(|f| f.deadline)
    }

    /// When `handle_timeout` must be called next, if anything waits on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.wait_until.is_some() {
            // A back-off holds everything else: nothing is in flight.
            return self.wait_until;
        }
        let mut earliest = None;
        let mut consider = |t: Instant| {
            earliest = Some(earliest.map_or(t, |e: Instant| e.min(t)));
        };
        if let Some(deadline) = self.in_flight_deadline() {
            // A driver races the call against it.
            consider(deadline);
        }
        if let Some(op) = self.tasks.front().and_then(|t| t.ops.front()) {
            match op {
                Op::Instruct(i) => match i.phase {
                    InstructPhase::Streaming => {
                        consider(i.next_still_working);
                        consider(i.last_activity + self.config.keepalive_timeout);
                        consider(i.started + self.config.stream_cap);
                    }
                    InstructPhase::Recover { next_at, .. } if self.in_flight.is_none() => {
                        consider(next_at)
                    }
                    _ => {}
                },
                Op::Export(e) => {
                    if let ExportPhase::Poll { next_at } = e.phase {
                        if self.in_flight.is_none() {
                            consider(next_at);
                        }
                    }
                }
                _ => {}
            }
        }
        earliest
    }
}
