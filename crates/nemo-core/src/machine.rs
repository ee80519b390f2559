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

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use crate::adk::{self, AgentEvent, TextAssembler};
use crate::api::{self, Api, Attribution, ResponseError, UploadedFile};
use crate::draft::{self, Draft};
use crate::error::{ErrorKind, NemoError};
use crate::gui::{self, GuiAction};
use crate::recovery::{self, Attempts, Failure, Recovery, RetryPolicy};
use crate::render::{PollPolicy, RenderTracker};
use crate::rng::SeededRng;
use crate::route::{self, RouteContext, Step, UserInput};
use crate::secret::Secret;
use crate::sse::{self, Frame};
use crate::time::Instant;
use crate::transport::{DownloadOutcome, TransportError, TransportErrorKind};
use crate::wire::{Endpoint, FilePart, Request, Response};

pub use crate::api::{Credits, RenderPhase};

/// The operation being carried out, borrowing only the task queue (so that
/// events can be pushed while it is held).
macro_rules! current_op {
    ($s:ident) => {
        $s.tasks.front_mut().and_then(|t| t.ops.front_mut())
    };
}

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
    /// The session language (`en`, `zh`, …).
    pub language: String,
    /// The web app's base URL (claim and registration links).
    pub web_url: String,
    /// Seed for ids and jitter.
    pub seed: u64,
    /// Retry tunables.
    pub retry: RetryPolicy,
    /// Render polling tunables.
    pub poll: PollPolicy,
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            attribution: Attribution::default(),
            client_id: String::new(),
            credential: Credential::None,
            session: None,
            language: "en".into(),
            web_url: api::DEFAULT_WEB_URL.into(),
            seed: 0,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            still_working_every: Duration::from_secs(120),
            keepalive_timeout: Duration::from_secs(600),
            stream_cap: Duration::from_secs(15 * 60),
            recover_first: Duration::from_secs(30),
            recover_every: Duration::from_secs(60),
            recover_checks: 5,
            claim_after_export: true,
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

/// What kind of link an [`Event::Link`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkKind {
    /// Opens the project in the web app (claim token; never the real token).
    Claim,
    /// Registers the anonymous user (out of credits).
    Register,
}

/// How a render left the machine's hands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenderOutcome {
    /// Downloaded to this path.
    Downloaded(PathBuf),
    /// Completed; not downloaded (the URL is in the event before).
    Completed(String),
    /// Failed on the server.
    Failed,
    /// The server refused the submission (it never became a job).
    Rejected,
    /// Cancelled.
    Cancelled,
}

/// What is said after post-production added music, a title and effects on
/// its own (the [`Event::Suggestions`] that follow carry the messages).
pub const POST_PRODUCTION_CHOICES: &str =
    "Post-production added music, a title and effects. Keep them, or remove what you do not want:";

/// The next messages offered after post-production: keep everything, or
/// strip one addition.
pub const POST_PRODUCTION_SUGGESTIONS: [&str; 4] = [
    "keep them",
    "remove the music",
    "remove the title",
    "remove the effects",
];

/// How far a two-stage generation (the raw video, then post-production on
/// the service's own initiative) has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GenerationStage {
    /// The raw video exists; music, a title and effects are being added.
    RawVideoReady,
    /// Post-production is done: the timeline that follows is this turn's.
    PostProductionDone,
}

/// "generating the video…" → "Generating the video…".
fn capitalised(words: &str) -> String {
    let mut c = words.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// What the machine tells the frontend.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A short progress line ("Connecting…").
    Status(String),
    /// A new anonymous token: frontends may cache it (mode 0600).
    TokenIssued {
        /// The token.
        token: Secret,
        /// The anonymous user id.
        user_id: Option<String>,
        /// Expiry (RFC 3339).
        expires_at: Option<String>,
    },
    /// A new client id was generated: frontends should persist it.
    ClientIdGenerated(String),
    /// The session is ready.
    Connected {
        /// Session id.
        session_id: String,
        /// Task id, when known.
        task_id: Option<String>,
        /// True when the session was created now (not continued).
        created: bool,
    },
    /// Something worth telling the user (a router note, a recovery step).
    Note(String),
    /// The agent's words after GUI translation, once per message.
    AgentText {
        /// The text (may be empty when only GUI actions were said).
        text: String,
        /// GUI instructions found in it, as actions.
        actions: Vec<GuiAction>,
    },
    /// The agent is still working (every two minutes).
    StillWorking {
        /// Since the message was sent.
        elapsed: Duration,
    },
    /// What an edit changed (reported when the agent said nothing, or after
    /// a dropped stream).
    Change {
        /// The change, in words.
        summary: String,
    },
    /// Files were uploaded.
    Uploaded {
        /// As the server described them.
        files: Vec<UploadedFile>,
    },
    /// The credit balance.
    Credits(Credits),
    /// The timeline.
    Timeline {
        /// `Timeline (3 tracks): …`
        summary: String,
        /// True when it can be exported.
        ready_for_export: bool,
    },
    /// A render is about to be submitted: journal it now.
    RenderStarting {
        /// Render id.
        id: String,
        /// Session it belongs to.
        session_id: String,
        /// That session's task id, when known.
        task_id: Option<String>,
        /// Where it will be downloaded.
        out: Option<PathBuf>,
    },
    /// A render's progress changed.
    RenderProgress {
        /// Render id.
        id: String,
        /// Where it is.
        phase: RenderPhase,
        /// 0–100, when known.
        progress: Option<f64>,
    },
    /// A render completed.
    RenderCompleted {
        /// Render id.
        id: String,
        /// The output URL.
        url: String,
    },
    /// The file is on disk.
    Downloaded {
        /// Render id.
        id: String,
        /// Where.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A render needs no more tracking: remove it from the journal.
    RenderEnded {
        /// Render id.
        id: String,
        /// How it ended.
        outcome: RenderOutcome,
    },
    /// A useful link.
    Link {
        /// What it is.
        kind: LinkKind,
        /// The URL (never carries the bearer token).
        url: String,
    },
    /// A two-stage generation moved on: told as soon as it happens, before
    /// the agent's stream ends.
    Generation {
        /// Which stage was reached.
        stage: GenerationStage,
        /// The raw video's URL, when the service gave one.
        url: Option<String>,
        /// What happened, in words.
        message: String,
    },
    /// Messages the user may send next (e.g. keep or strip what
    /// post-production added).
    Suggestions {
        /// What the choice is about, in words.
        message: String,
        /// The messages, ready to send as they are.
        suggestions: Vec<String>,
    },
    /// A command finished.
    Finished {
        /// Which.
        command: CommandId,
        /// How.
        result: Result<(), NemoError>,
    },
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

#[derive(Debug, Clone)]
enum DraftKnowledge {
    Unknown,
    Known(Option<Draft>),
}

#[derive(Debug)]
enum InstructPhase {
    Baseline,
    Send,
    Streaming,
    AfterStream,
    Recover { next_at: Instant, checks: u32 },
}

#[derive(Debug)]
struct Instruct {
    text: String,
    phase: InstructPhase,
    baseline: Option<Draft>,
    assembler: TextAssembler,
    decoder: sse::Decoder,
    started: Instant,
    last_activity: Instant,
    next_still_working: Instant,
    model_error: Option<(String, Option<String>)>,
    stream_error: Option<String>,
    /// The words of the agent's last step shown as a status line.
    last_step: Option<&'static str>,
    /// The agent is generating a video (its steps are shown).
    generating: bool,
    /// A two-stage generation: the raw video was announced ready.
    raw_video_ready: bool,
    /// A two-stage generation: post-production finished.
    post_production_done: bool,
}

#[derive(Debug)]
enum ExportPhase {
    Draft,
    Submit(Draft),
    Poll {
        next_at: Instant,
    },
    Download {
        url: Option<String>,
        fallback: bool,
        size: Option<u64>,
    },
    Claim,
}

#[derive(Debug)]
struct Export {
    options: ExportOptions,
    /// A submission attempt ended without a clear answer (a broken
    /// connection, a 5xx): the server may be rendering this id already.
    maybe_accepted: bool,
    id: String,
    base_id: String,
    phase: ExportPhase,
    tracker: Option<RenderTracker>,
    reported: Option<(RenderPhase, Option<i64>)>,
    /// The API's "not found" answers to status polls in a row.
    not_found: u32,
    /// When the first of them came.
    not_found_since: Option<Instant>,
}

/// How many of the API's "not found" answers in a row make a render unknown
/// (and forgotten)…
const NOT_FOUND_CONFIRMATIONS: u32 = 2;

/// …and over how long at least (a render just submitted may not be visible
/// to every server behind the gateway yet).
const NOT_FOUND_SPAN: Duration = Duration::from_secs(30);

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
            api: Api::new(config.attribution.clone()),
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

    // ----- commands -----

    /// Queues a command; its [`Event::Finished`] carries the returned id.
    pub fn command(&mut self, now: Instant, command: Command) -> CommandId {
        self.next_command += 1;
        let id = CommandId(self.next_command);
        let ops = self.plan(command);
        self.tasks.push_back(Task { id, ops });
        self.advance(now);
        id
    }

    /// Stops everything: the request in flight is abandoned (its answer will
    /// be ignored), queued commands end as cancelled. A render being waited
    /// for keeps running on the server and stays in the frontend's journal.
    pub fn abort(&mut self, now: Instant) {
        let _ = now;
        self.in_flight = None;
        self.transmit = None;
        self.wait_until = None;
        self.attempts = Attempts::default();
        self.auth_attempts = Attempts::default();
        while let Some(task) = self.tasks.pop_front() {
            let render = task.ops.iter().find_map(|op| match op {
                Op::Export(e)
                    if !matches!(e.phase, ExportPhase::Draft | ExportPhase::Submit(_)) =>
                {
                    Some(e.id.clone())
                }
                _ => None,
            });
            let delivered = task.ops.front().is_some_and(|op| {
                matches!(op, Op::Instruct(i) if !matches!(i.phase, InstructPhase::Baseline | InstructPhase::Send))
            });
            let message = match render {
                Some(id) => format!(
                    "Stopped waiting. The render {id} keeps going on the server; finish it later with `nemo jobs --resume`."
                ),
                None if delivered => "Stopped. Your message had already reached the agent: check the timeline before sending it again.".to_owned(),
                None => "Stopped.".to_owned(),
            };
            self.events.push_back(Event::Finished {
                command: task.id,
                result: Err(NemoError::new(ErrorKind::Cancelled, message)),
            });
        }
    }

    fn plan(&mut self, command: Command) -> VecDeque<Op> {
        let mut ops = VecDeque::new();
        match command {
            Command::Connect => ops.push_back(Op::Connect),
            Command::Message(input) => {
                let ctx = RouteContext {
                    has_draft: match &self.draft {
                        DraftKnowledge::Unknown => true,
                        DraftKnowledge::Known(d) => {
                            d.as_ref().is_some_and(Draft::is_ready_for_export)
                        }
                    },
                };
                let plan = route::route(&input, ctx);
                for note in plan.notes {
                    self.events.push_back(Event::Note(note));
                }
                if let Some(refusal) = plan.refusal {
                    let kind = match refusal {
                        route::Refusal::NothingToExport => ErrorKind::NothingToExport,
                        route::Refusal::NothingToUpload | route::Refusal::Empty => {
                            ErrorKind::BadInput
                        }
                    };
                    ops.push_back(Op::Refuse(NemoError::new(kind, refusal.message())));
                }
                let steps: Vec<Step> = plan.steps;
                let download = steps.contains(&Step::Download);
                for step in steps {
                    match step {
                        Step::Upload { files, urls } => ops.push_back(Op::Upload { files, urls }),
                        Step::Instruct(text) => ops.push_back(self.instruct(text)),
                        Step::Credits => ops.push_back(Op::Credits),
                        Step::ShowTimeline => ops.push_back(Op::Timeline),
                        Step::Export => ops.push_back(self.export(ExportOptions {
                            download,
                            ..ExportOptions::default()
                        })),
                        Step::Download => {}
                    }
                }
            }
            Command::Instruct(text) => ops.push_back(self.instruct(text)),
            Command::Upload { files, urls } => ops.push_back(Op::Upload { files, urls }),
            Command::Credits => ops.push_back(Op::Credits),
            Command::Timeline => ops.push_back(Op::Timeline),
            Command::Export(options) => ops.push_back(self.export(options)),
            Command::ResumeRender { id, .. } | Command::CancelRender { id }
                if crate::ids::check_id("render id", &id).is_err() =>
            {
                let why = crate::ids::check_id("render id", &id).unwrap_err();
                ops.push_back(Op::Refuse(NemoError::new(
                    ErrorKind::BadInput,
                    format!("{why}."),
                )));
            }
            Command::ResumeRender { id, options } => {
                let mut export = self.export(ExportOptions {
                    render_id: Some(id),
                    ..options
                });
                if let Op::Export(e) = &mut export {
                    e.phase = ExportPhase::Poll {
                        next_at: Instant::ZERO,
                    };
                }
                ops.push_back(export);
            }
            Command::CancelRender { id } => ops.push_back(Op::Cancel { id }),
            Command::ClaimLink => ops.push_back(Op::Claim),
        }
        ops
    }

    fn instruct(&self, text: String) -> Op {
        Op::Instruct(Box::new(Instruct {
            text,
            phase: InstructPhase::Baseline,
            baseline: None,
            assembler: TextAssembler::new(),
            decoder: sse::Decoder::new(),
            started: Instant::ZERO,
            last_activity: Instant::ZERO,
            next_still_working: Instant::ZERO,
            model_error: None,
            stream_error: None,
            last_step: None,
            generating: false,
            raw_video_ready: false,
            post_production_done: false,
        }))
    }

    /// Tells the machine the wall-clock time (ms since the Unix epoch), used
    /// only to name renders `render_<ms>` as the service's own clients do.
    /// Without it, render ids come from the seed.
    pub fn set_unix_time(&mut self, unix_ms: u64) {
        self.unix_ms = Some(unix_ms);
    }

    fn export(&mut self, options: ExportOptions) -> Op {
        let id = options
            .render_id
            .clone()
            .unwrap_or_else(|| match self.unix_ms {
                Some(ms) => format!("render_{ms}_{:04x}", self.rng.next_u64() & 0xffff),
                None => format!("render_{}", self.rng.next_u64() % 10_000_000_000_000),
            });
        Op::Export(Box::new(Export {
            base_id: id.clone(),
            id,
            maybe_accepted: false,
            options,
            phase: ExportPhase::Draft,
            tracker: None,
            reported: None,
            not_found: 0,
            not_found_since: None,
        }))
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

    // ----- inputs -----

    /// Time has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.wait_until.is_some_and(|t| t <= now) {
            self.wait_until = None;
        }
        let keepalive_timeout = self.config.keepalive_timeout;
        let stream_cap = self.config.stream_cap;
        let still_every = self.config.still_working_every;
        let mut timed_out = None;
        if let Some(Op::Instruct(i)) = current_op!(self) {
            if let InstructPhase::Streaming = i.phase {
                if now >= i.next_still_working
                    && now < i.last_activity + keepalive_timeout
                    && now < i.started + stream_cap
                {
                    let elapsed = now - i.started;
                    while i.next_still_working <= now {
                        i.next_still_working += still_every;
                    }
                    self.events.push_back(Event::StillWorking { elapsed });
                }
                if now >= i.last_activity + keepalive_timeout {
                    timed_out = Some(format!(
                        "The agent sent only keep-alives for {}; stopped listening.",
                        crate::time::human_duration(keepalive_timeout)
                    ));
                } else if now >= i.started + stream_cap {
                    timed_out = Some(format!(
                        "The agent's answer took longer than {}; stopped listening.",
                        crate::time::human_duration(stream_cap)
                    ));
                }
                if timed_out.is_some() {
                    i.phase = InstructPhase::Recover {
                        next_at: now,
                        checks: 0,
                    };
                }
            }
        }
        if let Some(note) = timed_out {
            self.in_flight = None;
            self.events.push_back(Event::Note(format!(
                "{note} Your message is not sent again; checking whether the edit was applied…"
            )));
        }
        self.advance(now);
    }

    /// A complete response to request `id`.
    pub fn handle_response(&mut self, now: Instant, id: RequestId, response: Response) {
        let Some(flight) = self.take_in_flight(id) else {
            return;
        };
        match flight.purpose {
            Purpose::Token => self.on_token(now, &response),
            Purpose::Session => self.on_session(now, &response),
            Purpose::Op => self.on_op_response(now, flight.endpoint, &response),
        }
        self.advance(now);
    }

    /// The event stream for request `id` started (status 2xx, event stream).
    pub fn handle_stream_open(&mut self, now: Instant, id: RequestId) {
        if !self.is_in_flight(id) {
            return;
        }
        if let Some(Op::Instruct(i)) = current_op!(self) {
            i.phase = InstructPhase::Streaming;
            i.started = now;
            i.last_activity = now;
            i.next_still_working = now + self.config.still_working_every;
        }
    }

    /// A chunk of the event stream for request `id`.
    pub fn handle_stream_chunk(&mut self, now: Instant, id: RequestId, chunk: &[u8]) {
        if !self.is_in_flight(id) {
            return;
        }
        let mut frames = std::mem::take(&mut self.frames);
        if let Some(Op::Instruct(i)) = current_op!(self) {
            i.decoder.feed(chunk, &mut frames);
        }
        for frame in frames.drain(..) {
            self.on_frame(now, frame);
            if !self.is_in_flight(id) {
                break;
            }
        }
        self.frames = frames;
        self.advance(now);
    }

    /// The event stream for request `id` ended: `Ok` when the server closed
    /// it, `Err` when the connection broke.
    pub fn handle_stream_end(
        &mut self,
        now: Instant,
        id: RequestId,
        result: Result<(), TransportError>,
    ) {
        if self.take_in_flight(id).is_none() {
            return;
        }
        let Some(Op::Instruct(i)) = current_op!(self) else {
            return;
        };
        let truncated = i.decoder.finish();
        if let Some(text) = i.assembler.finish() {
            let t = gui::translate(&text);
            self.events.push_back(Event::AgentText {
                text: t.text,
                actions: t.actions,
            });
        }
        // A stream cut after the agent's complete answer lost nothing the
        // user needs: only a broken connection before it calls for recovery.
        let answered = i.assembler.said_anything();
        match result {
            Err(err) => {
                self.on_failure(now, Endpoint::RunSse, Failure::StreamDropped, &err.message)
            }
            Ok(()) if truncated && !answered => self.on_failure(
                now,
                Endpoint::RunSse,
                Failure::StreamDropped,
                "the stream was cut",
            ),
            Ok(()) => {
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    i.phase = InstructPhase::AfterStream;
                }
            }
        }
        self.advance(now);
    }

    /// A download for request `id` ended.
    pub fn handle_download(
        &mut self,
        now: Instant,
        id: RequestId,
        result: Result<DownloadOutcome, TransportError>,
    ) {
        let Some(flight) = self.take_in_flight(id) else {
            return;
        };
        match result {
            Ok(DownloadOutcome::Complete { bytes }) => {
                self.attempts = Attempts::default();
                if let Some(Op::Export(e)) = current_op!(self) {
                    let path = download_path(e);
                    let id = e.id.clone();
                    e.phase = ExportPhase::Claim;
                    self.events.push_back(Event::Downloaded {
                        id: id.clone(),
                        path: path.clone(),
                        bytes,
                    });
                    self.events.push_back(Event::RenderEnded {
                        id,
                        outcome: RenderOutcome::Downloaded(path),
                    });
                }
            }
            Ok(DownloadOutcome::Refused(response)) => {
                self.on_op_response(now, flight.endpoint, &response);
            }
            Err(err) if err.kind == TransportErrorKind::Exists => {
                let e = NemoError::new(
                    ErrorKind::OutputExists,
                    format!(
                        "{}. The render is finished on the server and stays recorded: it can be saved to another path, or over the file.",
                        err.message.trim_end().trim_end_matches('.')
                    ),
                );
                self.fail_task(e);
            }
            Err(err) => self.on_failure(
                now,
                flight.endpoint,
                Failure::Transport(err.kind),
                &err.message,
            ),
        }
        self.advance(now);
    }

    /// The frontend could not write down the render announced by
    /// [`Event::RenderStarting`] (`render_id`). Before its submission left,
    /// the submission is withdrawn and the command fails: a render nobody
    /// recorded could be paid for and lost. After (a server-assigned id),
    /// the render is followed anyway and a note says it is not recorded.
    pub fn handle_journal_failure(&mut self, now: Instant, render_id: &str, why: &str) {
        let Some(Op::Export(e)) = current_op!(self) else {
            return;
        };
        if e.id != render_id {
            return;
        }
        if matches!(e.phase, ExportPhase::Submit(_)) && !e.maybe_accepted {
            let pending = self
                .transmit
                .as_ref()
                .is_some_and(|t| t.request.endpoint == Endpoint::RenderSubmit);
            if pending {
                self.transmit = None;
                self.in_flight = None;
                let id = e.id.clone();
                self.events.push_back(Event::RenderEnded {
                    id,
                    outcome: RenderOutcome::Rejected,
                });
                self.finish_task(Err(NemoError::new(
                    ErrorKind::BadInput,
                    format!(
                        "The render was not started: it could not be recorded first ({why}), and an unrecorded render could be lost."
                    ),
                )));
                self.advance(now);
                return;
            }
        }
        self.events.push_back(Event::Note(format!(
            "The render {render_id} could not be recorded ({why}); it is followed now but could not be resumed later."
        )));
    }

    /// Request `id` got no response.
    pub fn handle_transport_error(&mut self, now: Instant, id: RequestId, error: TransportError) {
        let Some(flight) = self.take_in_flight(id) else {
            return;
        };
        let failure = Failure::Transport(error.kind);
        match flight.purpose {
            Purpose::Token | Purpose::Session => {
                self.on_auth_failure(now, flight.endpoint, failure, &error.message)
            }
            Purpose::Op => self.on_failure(now, flight.endpoint, failure, &error.message),
        }
        self.advance(now);
    }

    // ----- internals -----

    fn take_in_flight(&mut self, id: RequestId) -> Option<InFlight> {
        if self.in_flight.as_ref().is_some_and(|f| f.id == id) {
            self.in_flight.take()
        } else {
            None
        }
    }

    fn send(&mut self, purpose: Purpose, request: Request, mode: Mode) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.attempts_for(purpose).total += 1;
        self.in_flight = Some(InFlight {
            id,
            endpoint: request.endpoint,
            purpose,
        });
        self.transmit = Some(Transmit { id, request, mode });
    }

    fn attempts_for(&mut self, purpose: Purpose) -> &mut Attempts {
        match purpose {
            Purpose::Op => &mut self.attempts,
            Purpose::Token | Purpose::Session => &mut self.auth_attempts,
        }
    }

    fn finish_task(&mut self, result: Result<(), NemoError>) {
        if let Some(task) = self.tasks.pop_front() {
            self.events.push_back(Event::Finished {
                command: task.id,
                result,
            });
        }
        self.attempts = Attempts::default();
        self.wait_until = None;
    }

    fn fail_task(&mut self, error: NemoError) {
        if let Some(Op::Export(e)) = current_op!(self) {
            // A job the server may have accepted stays in the journal.
            if matches!(e.phase, ExportPhase::Submit(_)) && !e.maybe_accepted {
                let id = e.id.clone();
                self.events.push_back(Event::RenderEnded {
                    id,
                    outcome: RenderOutcome::Rejected,
                });
            }
        }
        if error.kind == ErrorKind::OutOfCredits || error.kind == ErrorKind::PlanBlocked {
            if let Some(link) = &error.link {
                self.events.push_back(Event::Link {
                    kind: LinkKind::Register,
                    url: link.clone(),
                });
            }
        }
        self.finish_task(Err(error));
    }

    fn advance(&mut self, now: Instant) {
        loop {
            if self.in_flight.is_some() || self.transmit.is_some() {
                return;
            }
            if self.wait_until.is_some_and(|t| t > now) {
                return;
            }
            self.wait_until = None;
            let Some(task) = self.tasks.front_mut() else {
                return;
            };
            if let Some(err) = &self.fatal {
                let err = err.clone();
                self.finish_task(Err(err));
                continue;
            }
            let Some(op) = task.ops.front() else {
                self.finish_task(Ok(()));
                continue;
            };
            if let Op::Refuse(err) = op {
                let err = err.clone();
                self.fail_task(err);
                continue;
            }
            let needs_session = !matches!(op, Op::Credits);
            if self.token.is_none() {
                self.events.push_back(Event::Status("Connecting…".into()));
                let req = self.api.anonymous_token(&self.config.client_id);
                self.send(Purpose::Token, req, Mode::Send);
                return;
            }
            if needs_session && self.session.is_none() {
                if self.auth_attempts.new_sessions == 0
                    && self.auth_attempts.backoffs == 0
                    && self.auth_attempts.rate_limited == 0
                    && !matches!(op, Op::Connect)
                {
                    self.events
                        .push_back(Event::Status("Starting a session…".into()));
                }
                let token = self.token.clone().unwrap_or_default();
                let req = self.api.create_session(&token, &self.config.language);
                self.send(Purpose::Session, req, Mode::Send);
                return;
            }
            match self.next_step(now) {
                Next::Send(request, mode) => {
                    self.send(Purpose::Op, request, mode);
                    return;
                }
                Next::Wait => return,
                Next::Done => {
                    self.attempts = Attempts::default();
                    if let Some(task) = self.tasks.front_mut() {
                        task.ops.pop_front();
                    }
                }
                Next::Fail(err) => self.fail_task(err),
            }
        }
    }

    fn next_step(&mut self, now: Instant) -> Next {
        let token = self.token.clone().unwrap_or_default();
        let sid = self.session_id().unwrap_or_default().to_owned();
        let draft_known = matches!(self.draft, DraftKnowledge::Known(_));
        let current_draft = self.draft().cloned();
        let Some(task) = self.tasks.front_mut() else {
            return Next::Wait;
        };
        let Some(op) = task.ops.front_mut() else {
            return Next::Done;
        };
        match op {
            Op::Connect => Next::Done,
            Op::Refuse(err) => Next::Fail(err.clone()),
            Op::Credits => Next::Send(self.api.credits(&token), Mode::Send),
            Op::Timeline => Next::Send(self.api.state(&token, &sid), Mode::Send),
            Op::Claim => match self.session.as_ref().and_then(|s| s.task_id.clone()) {
                Some(task_id) => {
                    Next::Send(self.api.claim_token(&token, &task_id, &sid), Mode::Send)
                }
                None => Next::Fail(NemoError::new(
                    ErrorKind::BadInput,
                    "This session has no task id, so no browser link can be made for it.",
                )),
            },
            Op::Cancel { id } => Next::Send(self.api.render_cancel(&token, id), Mode::Send),
            Op::Upload { files, urls } => {
                if !files.is_empty() {
                    let n = files.len();
                    self.events.push_back(Event::Status(format!(
                        "Uploading {n} file{}…",
                        if n == 1 { "" } else { "s" }
                    )));
                    Next::Send(
                        self.api.upload_files(&token, &sid, files.clone()),
                        Mode::Send,
                    )
                } else if !urls.is_empty() {
                    for url in urls.iter() {
                        if let Err(e) = check_url(url) {
                            return Next::Fail(e);
                        }
                    }
                    self.events
                        .push_back(Event::Status("Fetching the linked media…".into()));
                    Next::Send(self.api.upload_urls(&token, &sid, urls), Mode::Send)
                } else {
                    Next::Done
                }
            }
            Op::Instruct(i) => match i.phase {
                InstructPhase::Baseline => {
                    if draft_known {
                        i.baseline = current_draft;
                        i.phase = InstructPhase::Send;
                        self.next_step(now)
                    } else {
                        Next::Send(self.api.state(&token, &sid), Mode::Send)
                    }
                }
                InstructPhase::Send => {
                    // Marked before it leaves: from here on the message is
                    // never sent again.
                    i.phase = InstructPhase::Streaming;
                    i.started = now;
                    i.last_activity = now;
                    i.next_still_working = now + self.config.still_working_every;
                    self.events
                        .push_back(Event::Status("The agent is working…".into()));
                    Next::Send(self.api.run_sse(&token, &sid, &i.text), Mode::Stream)
                }
                InstructPhase::Streaming => Next::Wait,
                InstructPhase::AfterStream => Next::Send(self.api.state(&token, &sid), Mode::Send),
                InstructPhase::Recover { next_at, .. } => {
                    if next_at <= now {
                        Next::Send(self.api.state(&token, &sid), Mode::Send)
                    } else {
                        Next::Wait
                    }
                }
            },
            Op::Export(e) => match &e.phase {
                ExportPhase::Draft => Next::Send(self.api.state(&token, &sid), Mode::Send),
                ExportPhase::Submit(draft) => {
                    let req = self.api.render_submit(&token, &e.id, &sid, draft);
                    let task_id = self.session.as_ref().and_then(|s| s.task_id.clone());
                    self.events.push_back(Event::RenderStarting {
                        id: e.id.clone(),
                        session_id: sid.clone(),
                        task_id,
                        out: e.options.download.then(|| download_path(e)),
                    });
                    self.events.push_back(Event::Status("Rendering…".into()));
                    Next::Send(req, Mode::Send)
                }
                ExportPhase::Poll { next_at } => {
                    if let Some(t) = &e.tracker {
                        if t.expired(now) {
                            return Next::Fail(NemoError::new(
                                ErrorKind::Unconfirmed,
                                format!(
                                    "The render {} is still not finished after {}. It keeps going on the server; finish it later with `nemo jobs --resume`.",
                                    e.id,
                                    crate::time::human_duration(now - t.submitted())
                                ),
                            ));
                        }
                    }
                    if *next_at <= now {
                        if e.tracker.is_none() {
                            // A resumed render: start tracking now.
                            e.tracker = Some(RenderTracker::new(self.config.poll, now));
                        }
                        Next::Send(self.api.render_status(&token, &e.id), Mode::Send)
                    } else {
                        Next::Wait
                    }
                }
                ExportPhase::Download {
                    url,
                    fallback,
                    size,
                } => {
                    let dest = download_path(e);
                    let request = match (url, fallback) {
                        (Some(url), false) => self.api.download_url(url),
                        _ => self.api.download_fallback(&token, &e.id),
                    };
                    self.events
                        .push_back(Event::Status(format!("Downloading to {}…", dest.display())));
                    Next::Send(
                        request,
                        Mode::Download {
                            dest,
                            overwrite: e.options.overwrite,
                            expected_size: *size,
                        },
                    )
                }
                ExportPhase::Claim => {
                    let task_id = self.session.as_ref().and_then(|s| s.task_id.clone());
                    match task_id {
                        Some(task_id) if self.config.claim_after_export => {
                            Next::Send(self.api.claim_token(&token, &task_id, &sid), Mode::Send)
                        }
                        _ => Next::Done,
                    }
                }
            },
        }
    }

    fn on_token(&mut self, now: Instant, response: &Response) {
        match api::parse::<api::AnonymousToken>(response) {
            Ok(t) if crate::ids::check_token(t.token.expose()).is_err() => {
                // Never kept, never sent: a token that cannot travel in a
                // header would fail every later request.
                let why = crate::ids::check_token(t.token.expose()).unwrap_err();
                // Asking again would be refused (one free token per client
                // id per week): say so and stop.
                self.auth_attempts = Attempts::default();
                self.fail_task(NemoError::new(
                    ErrorKind::AuthFailed,
                    format!(
                        "The service issued a free token that cannot be used ({why}); it was not kept. Try again later, or set NEMO_TOKEN to a token of your account."
                    ),
                ));
            }
            Ok(t) => {
                // The auth budget is kept until a session exists: a server
                // that rejects every fresh token must not loop forever.
                self.token = Some(t.token.clone());
                self.anonymous = true;
                if t.user_id.is_some() {
                    self.user_id = t.user_id.clone();
                }
                self.events.push_back(Event::TokenIssued {
                    token: t.token,
                    user_id: t.user_id,
                    expires_at: t.expires_at,
                });
            }
            Err(err) => {
                let (failure, message) = failure_of(&err);
                self.on_auth_failure(now, Endpoint::AnonymousToken, failure, &message);
            }
        }
    }

    fn on_session(&mut self, now: Instant, response: &Response) {
        let checked = api::parse::<api::SessionCreated>(response).map(|s| {
            let bad = crate::ids::check_id("session id", &s.session_id)
                .err()
                .or_else(|| {
                    s.task_id
                        .as_deref()
                        .and_then(|t| crate::ids::check_id("task id", t).err())
                });
            (s, bad)
        });
        match checked {
            Ok((_, Some(why))) => {
                self.on_auth_failure(now, Endpoint::CreateSession, Failure::Decode, &why);
            }
            Ok((s, None)) => {
                self.auth_attempts = Attempts::default();
                if s.user_id.is_some() && self.user_id.is_none() {
                    self.user_id = s.user_id.clone();
                }
                self.session = Some(SessionRef {
                    session_id: s.session_id.clone(),
                    task_id: s.task_id.clone(),
                });
                self.draft = DraftKnowledge::Known(None);
                self.events.push_back(Event::Connected {
                    session_id: s.session_id,
                    task_id: s.task_id,
                    created: true,
                });
            }
            Err(err) => {
                let (failure, message) = failure_of(&err);
                self.on_auth_failure(now, Endpoint::CreateSession, failure, &message);
            }
        }
    }

    fn on_auth_failure(
        &mut self,
        now: Instant,
        endpoint: Endpoint,
        failure: Failure,
        message: &str,
    ) {
        let jitter = self.rng.next_f64();
        let anonymous = self.anonymous;
        let mut recovery = recovery::decide(
            &self.config.retry,
            endpoint,
            &failure,
            &self.auth_attempts,
            anonymous,
            jitter,
        );
        // The session call's own 1001: the token is bad; a new one may fix it.
        if recovery == Recovery::Fail
            && endpoint == Endpoint::CreateSession
            && matches!(
                failure,
                Failure::Api {
                    code: Some(1001),
                    ..
                }
            )
            && anonymous
            && self.auth_attempts.token_refreshes == 0
        {
            recovery = Recovery::RefreshToken;
        }
        self.auth_attempts.record(recovery);
        match recovery {
            Recovery::Retry { after } => {
                recovery::record_retry(&mut self.auth_attempts, &failure);
                self.note_wait(&failure, after);
                self.wait_until = Some(now + after);
            }
            Recovery::RefreshToken => {
                self.events.push_back(Event::Status(
                    "The token expired; getting a new one…".into(),
                ));
                self.token = None;
            }
            Recovery::NewClientId => {
                self.config.client_id = self.rng.uuid_v4();
                self.events
                    .push_back(Event::ClientIdGenerated(self.config.client_id.clone()));
            }
            _ => {
                let err = self.error_for(endpoint, &failure, message);
                // Only what no later command can fix sticks: a rejected
                // user token, no anonymous token for days.
                let sticky = err.kind == ErrorKind::AuthFailed
                    || (endpoint == Endpoint::AnonymousToken && err.kind == ErrorKind::RateLimited);
                self.auth_attempts = Attempts::default();
                if sticky {
                    self.fatal = Some(err.clone());
                }
                self.fail_task(err);
            }
        }
    }

    fn note_wait(&mut self, failure: &Failure, after: Duration) {
        if matches!(
            failure,
            Failure::Api { status: 429, .. }
                | Failure::Api {
                    code: Some(429),
                    ..
                }
        ) {
            self.events.push_back(Event::Note(format!(
                "The service asked us to slow down; trying again in {}.",
                crate::time::human_duration(after.max(Duration::from_secs(1)))
            )));
        }
    }

    /// Applies the recovery policy to a failed op request.
    fn on_failure(&mut self, now: Instant, endpoint: Endpoint, failure: Failure, message: &str) {
        let ambiguous = match failure {
            Failure::Transport(kind) => kind != TransportErrorKind::Connect,
            Failure::Api { status, .. } => status >= 500,
            Failure::Decode | Failure::StreamDropped => true,
        };
        let poll_policy = self.config.poll;
        if let Some(Op::Export(e)) = current_op!(self) {
            match e.phase {
                ExportPhase::Submit(_) if ambiguous => e.maybe_accepted = true,
                ExportPhase::Submit(_)
                    if e.maybe_accepted
                        && matches!(
                            failure,
                            Failure::Api {
                                status: 200..=299,
                                ..
                            }
                        ) =>
                {
                    // The retry of a submission that may have arrived was
                    // refused (a duplicate id): follow the first one.
                    e.phase = ExportPhase::Poll { next_at: now };
                    e.tracker = Some(RenderTracker::new(poll_policy, now));
                    self.attempts = Attempts::default();
                    return;
                }
                // The claim link after a download is a bonus: its failure is
                // not the export's.
                ExportPhase::Claim => {
                    if let Some(task) = self.tasks.front_mut() {
                        task.ops.pop_front();
                    }
                    self.attempts = Attempts::default();
                    return;
                }
                _ => {}
            }
        }
        let jitter = self.rng.next_f64();
        let recovery = match failure {
            // The transport already resumed a broken download within its own
            // bounds (attempts and bytes); starting over from zero here would
            // multiply them. What is left is one try on the fallback endpoint.
            Failure::Transport(kind)
                if endpoint == Endpoint::Download && kind != TransportErrorKind::Connect =>
            {
                Recovery::Fail
            }
            _ => recovery::decide(
                &self.config.retry,
                endpoint,
                &failure,
                &self.attempts,
                self.anonymous,
                jitter,
            ),
        };
        self.attempts.record(recovery);
        match recovery {
            Recovery::Retry { after } => {
                recovery::record_retry(&mut self.attempts, &failure);
                self.note_wait(&failure, after);
                self.wait_until = Some(now + after);
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    if matches!(i.phase, InstructPhase::Streaming) {
                        // Only a refused connection gets here: the message
                        // never left, so it may go now.
                        i.phase = InstructPhase::Send;
                    }
                }
            }
            Recovery::RefreshToken => {
                self.events.push_back(Event::Status(
                    "The token expired; getting a new one…".into(),
                ));
                self.token = None;
                self.rearm_instruct();
            }
            Recovery::NewSession if matches!(current_op!(self), Some(Op::Export(e)) if matches!(e.phase, ExportPhase::Draft | ExportPhase::Submit(_))) =>
            {
                // The draft lived in the lost session: a new, empty session
                // has nothing to render. Say so instead of rendering nothing.
                self.session = None;
                self.draft = DraftKnowledge::Known(None);
                self.fail_task(NemoError::new(
                    ErrorKind::SessionLost,
                    "The session expired on the server and its timeline went with it. Upload and edit again in a new session (the next command starts one), then export.",
                ).with_code(Some(1002)));
            }
            Recovery::NewSession => {
                self.events.push_back(Event::Note(
                    "The session was not found on the server; starting a new one.".into(),
                ));
                self.session = None;
                self.draft = DraftKnowledge::Known(None);
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    if matches!(i.phase, InstructPhase::Streaming) {
                        // A new session has a new (empty) draft: measure
                        // the edit against it, not the lost one.
                        i.phase = InstructPhase::Baseline;
                    }
                }
            }
            Recovery::NewClientId => {
                self.config.client_id = self.rng.uuid_v4();
                self.events
                    .push_back(Event::ClientIdGenerated(self.config.client_id.clone()));
            }
            Recovery::NewRenderId => {
                if let Some(Op::Export(e)) = current_op!(self) {
                    let old = std::mem::take(&mut e.id);
                    e.id = format!("{}_{}", e.base_id, 2);
                    self.events.push_back(Event::RenderEnded {
                        id: old,
                        outcome: RenderOutcome::Rejected,
                    });
                }
            }
            Recovery::RecoverStream => {
                self.recover_stream(now, "The connection to the agent dropped.")
            }
            Recovery::Fail => {
                // A download that failed on the output URL gets one try on
                // the API's fallback endpoint.
                if let Some(Op::Export(e)) = current_op!(self) {
                    if let ExportPhase::Download { fallback, .. } = &mut e.phase {
                        if !*fallback {
                            *fallback = true;
                            self.attempts = Attempts::default();
                            return;
                        }
                    }
                }
                let mut err = self.error_for(endpoint, &failure, message);
                if err.kind == ErrorKind::AuthFailed && !self.anonymous {
                    self.fatal = Some(err.clone());
                }
                if endpoint == Endpoint::RenderStatus
                    && matches!(failure, Failure::Api { status: 404, .. })
                {
                    // The server does not know the job (expired, or never
                    // accepted): nothing will ever finish it.
                    if let Some(Op::Export(e)) = current_op!(self) {
                        let id = e.id.clone();
                        err = NemoError::new(
                            ErrorKind::RenderFailed,
                            format!("The server does not know the render {id} (it may have expired). Export again."),
                        );
                        self.events.push_back(Event::RenderEnded {
                            id,
                            outcome: RenderOutcome::Failed,
                        });
                    }
                }
                self.fail_task(err);
            }
        }
    }

    /// After a new token or session, a message refused before its stream
    /// started may be sent again (the server never took it).
    fn rearm_instruct(&mut self) {
        if let Some(Op::Instruct(i)) = current_op!(self) {
            if matches!(i.phase, InstructPhase::Streaming) {
                i.phase = InstructPhase::Send;
            }
        }
    }

    fn recover_stream(&mut self, now: Instant, why: &str) {
        let first = self.config.recover_first;
        if let Some(Op::Instruct(i)) = current_op!(self) {
            i.phase = InstructPhase::Recover {
                next_at: now + first,
                checks: 0,
            };
            self.events.push_back(Event::Note(format!(
                "{why} Your message is not sent again (that could spend credits twice); checking in {} whether the edit was applied…",
                crate::time::human_duration(first)
            )));
        }
    }

    fn on_frame(&mut self, now: Instant, frame: Frame) {
        let Some(Op::Instruct(i)) = current_op!(self) else {
            return;
        };
        let events = match frame {
            Frame::Event(e) => adk::classify(&e.data),
            Frame::Comment(_) => vec![AgentEvent::KeepAlive],
            Frame::Retry(_) | Frame::LineTooLong | Frame::EventTooLarge => return,
        };
        let mut out = Vec::new();
        let mut terminal = false;
        for ev in events {
            match ev {
                AgentEvent::KeepAlive | AgentEvent::TurnComplete => {}
                // Something the client does not know is still the agent
                // at work, not a keep-alive.
                AgentEvent::Unknown => i.last_activity = now,
                AgentEvent::Text { text, partial } => {
                    i.last_activity = now;
                    if let Some(message) = i.assembler.push(&text, partial) {
                        let t = gui::translate(&message);
                        if !t.text.is_empty() || !t.actions.is_empty() {
                            out.push(Event::AgentText {
                                text: t.text,
                                actions: t.actions,
                            });
                        }
                    }
                }
                AgentEvent::ToolCall { .. } => {
                    i.last_activity = now;
                    // During a generation (minutes of work), each step in
                    // words, never the raw call; once per step. Quick edits
                    // keep the one "The agent is working…" line.
                    if let Some(words) = adk::step_words(&ev) {
                        i.generating |= words == adk::GENERATING;
                        if i.generating && i.last_step != Some(words) {
                            i.last_step = Some(words);
                            out.push(Event::Status(capitalised(words)));
                        }
                    }
                }
                AgentEvent::ToolResult { .. } => {
                    i.last_activity = now;
                    match adk::stage_of(&ev) {
                        Some(adk::GenerationStage::RawVideoReady { url }) if !i.raw_video_ready => {
                            i.raw_video_ready = true;
                            out.push(Event::Generation {
                                stage: GenerationStage::RawVideoReady,
                                url,
                                message: "The raw video is ready. The agent is now adding music, a title and effects on its own.".into(),
                            });
                        }
                        Some(adk::GenerationStage::PostProductionDone) => {
                            i.post_production_done = true;
                        }
                        _ => {}
                    }
                }
                AgentEvent::StateChanged => {
                    i.last_activity = now;
                }
                AgentEvent::ModelError { code, message } => {
                    i.last_activity = now;
                    i.model_error = Some((code, message));
                }
                AgentEvent::StreamError { message } => {
                    i.stream_error = Some(message);
                    terminal = true;
                }
            }
        }
        if terminal {
            if let Some(text) = i.assembler.finish() {
                let t = gui::translate(&text);
                out.push(Event::AgentText {
                    text: t.text,
                    actions: t.actions,
                });
            }
            i.decoder.finish();
            i.phase = InstructPhase::AfterStream;
            self.in_flight = None;
        }
        self.events.extend(out);
    }

    fn on_op_response(&mut self, now: Instant, endpoint: Endpoint, response: &Response) {
        let result =
            match endpoint {
                Endpoint::Credits => api::parse::<Credits>(response).map(|c| {
                    self.events.push_back(Event::Credits(c));
                    Next::Done
                }),
                Endpoint::State => {
                    api::parse_state(response).map(|s| self.on_state(now, s.state.draft))
                }
                Endpoint::Upload => api::parse::<api::Uploaded>(response).map(|u| {
                    self.draft = DraftKnowledge::Unknown;
                    self.events.push_back(Event::Uploaded { files: u.files });
                    self.after_upload_part()
                }),
                Endpoint::RunSse => return self.on_sse_answer(now, response),
                Endpoint::RenderSubmit => api::parse::<api::RenderAccepted>(response)
                    .map(|a| self.on_render_accepted(now, a)),
                Endpoint::RenderStatus if response.status == 404 => {
                    match self.on_render_not_found(now, response) {
                        Some(next) => Ok(next),
                        None => api::parse_render_status(response)
                            .map(|s| self.on_render_status(now, s)),
                    }
                }
                Endpoint::RenderStatus => {
                    if let Some(Op::Export(e)) = current_op!(self) {
                        e.not_found = 0;
                        e.not_found_since = None;
                    }
                    api::parse_render_status(response).map(|s| self.on_render_status(now, s))
                }
                Endpoint::RenderCancel => api::payload(response).map(|_| {
                    if let Some(Op::Cancel { id }) = current_op!(self) {
                        let id = id.clone();
                        self.events
                            .push_back(Event::Note(format!("Render {id} cancelled.")));
                        self.events.push_back(Event::RenderEnded {
                            id,
                            outcome: RenderOutcome::Cancelled,
                        });
                    }
                    Next::Done
                }),
                Endpoint::ClaimToken => match api::parse::<api::ClaimToken>(response) {
                    Ok(c) => {
                        self.events.push_back(Event::Link {
                            kind: LinkKind::Claim,
                            url: api::claim_link(&self.config.web_url, &c),
                        });
                        Ok(Next::Done)
                    }
                    // After an export the link is a bonus: its failure is not the
                    // export's.
                    Err(_) if matches!(current_op!(self), Some(Op::Export(_))) => Ok(Next::Done),
                    Err(e) => Err(e),
                },
                Endpoint::Download => {
                    Err(api::payload(response)
                        .err()
                        .unwrap_or(ResponseError::Decode {
                            status: response.status,
                            message: "the download was refused".into(),
                            body: String::new(),
                        }))
                }
                Endpoint::AnonymousToken | Endpoint::CreateSession => Ok(Next::Wait),
            };
        match result {
            Ok(Next::Done) => {
                self.attempts = Attempts::default();
                if let Some(task) = self.tasks.front_mut() {
                    task.ops.pop_front();
                }
            }
            Ok(Next::Fail(e)) => self.fail_task(e),
            Ok(Next::Wait | Next::Send(..)) => {
                self.attempts = Attempts::default();
            }
            Err(err) => {
                let (failure, message) = failure_of(&err);
                self.on_failure(now, endpoint, failure, &message);
            }
        }
    }

    fn after_upload_part(&mut self) -> Next {
        if let Some(Op::Upload { files, urls }) = current_op!(self) {
            if !files.is_empty() {
                files.clear();
                if !urls.is_empty() {
                    return Next::Wait;
                }
            } else {
                urls.clear();
            }
        }
        Next::Done
    }

    fn on_sse_answer(&mut self, now: Instant, response: &Response) {
        // Not an event stream: an error envelope, or a stream served with
        // the wrong content type.
        match api::payload(response) {
            Err(err @ ResponseError::Api(_)) => {
                let (failure, message) = failure_of(&err);
                self.on_failure(now, Endpoint::RunSse, failure, &message);
            }
            _ => {
                let id = RequestId(self.next_request);
                self.in_flight = Some(InFlight {
                    id,
                    endpoint: Endpoint::RunSse,
                    purpose: Purpose::Op,
                });
                self.handle_stream_open(now, id);
                self.handle_stream_chunk(now, id, &response.body);
                self.handle_stream_end(now, id, Ok(()));
            }
        }
    }

    fn on_state(&mut self, now: Instant, new_draft: Option<Draft>) -> Next {
        self.draft = DraftKnowledge::Known(new_draft.clone());
        let recover_every = self.config.recover_every;
        let recover_checks = self.config.recover_checks;
        let Some(op) = current_op!(self) else {
            return Next::Done;
        };
        match op {
            Op::Timeline => {
                let (summary, ready) = match &new_draft {
                    Some(d) => (d.timeline().to_string(), d.is_ready_for_export()),
                    None => (
                        "Timeline (empty): nothing on the timeline yet".to_owned(),
                        false,
                    ),
                };
                self.events.push_back(Event::Timeline {
                    summary,
                    ready_for_export: ready,
                });
                Next::Done
            }
            Op::Instruct(i) => match i.phase {
                InstructPhase::Baseline => {
                    i.baseline = new_draft;
                    i.phase = InstructPhase::Send;
                    Next::Wait
                }
                InstructPhase::AfterStream => {
                    let change = match &new_draft {
                        Some(d) => draft::diff(i.baseline.as_ref(), d),
                        None => draft::DraftChange::default(),
                    };
                    let said = i.assembler.said_anything();
                    let model_error = i.model_error.take();
                    let stream_error = i.stream_error.take();
                    let mut events = Vec::new();
                    if !said && !change.is_empty() {
                        events.push(Event::Change {
                            summary: change.summary(),
                        });
                    }
                    // After a two-stage generation: every track, and what
                    // to say to keep or strip what post-production added.
                    if let (true, Some(d)) =
                        (i.raw_video_ready || i.post_production_done, &new_draft)
                    {
                        if i.post_production_done {
                            events.push(Event::Generation {
                                stage: GenerationStage::PostProductionDone,
                                url: None,
                                message: "Post-production is done; every track:".into(),
                            });
                        }
                        events.push(Event::Timeline {
                            summary: d.timeline().to_string(),
                            ready_for_export: d.is_ready_for_export(),
                        });
                        if i.post_production_done {
                            events.push(Event::Suggestions {
                                message: POST_PRODUCTION_CHOICES.into(),
                                suggestions: POST_PRODUCTION_SUGGESTIONS
                                    .iter()
                                    .map(|s| (*s).to_owned())
                                    .collect(),
                            });
                        }
                    }
                    let outcome = if let Some(message) = stream_error {
                        Next::Fail(NemoError::new(
                            ErrorKind::Unconfirmed,
                            format!("The agent failed while working: {message}. Your message was not sent again; check the timeline, then try again if needed."),
                        ))
                    } else if let (Some((code, message)), false) = (model_error, said) {
                        Next::Fail(NemoError::new(
                            ErrorKind::Agent,
                            format!(
                                "The agent reported an error ({code}{}). Try rephrasing the request.",
                                message.map(|m| format!(": {m}")).unwrap_or_default()
                            ),
                        ))
                    } else {
                        if !said && change.is_empty() {
                            events.push(Event::Note(
                                "The agent finished without a reply, and the timeline did not change.".into(),
                            ));
                        }
                        Next::Done
                    };
                    self.events.extend(events);
                    outcome
                }
                InstructPhase::Recover { checks, .. } => {
                    let change = match &new_draft {
                        Some(d) => draft::diff(i.baseline.as_ref(), d),
                        None => draft::DraftChange::default(),
                    };
                    if !change.is_empty() {
                        self.events.push_back(Event::Change {
                            summary: change.summary(),
                        });
                        self.events
                            .push_back(Event::Note("The edit was applied.".into()));
                        return Next::Done;
                    }
                    let checks = checks + 1;
                    if checks >= recover_checks {
                        if i.assembler.said_anything() {
                            return Next::Done;
                        }
                        return Next::Fail(NemoError::new(
                            ErrorKind::Unconfirmed,
                            format!(
                                "The connection to the agent dropped and the timeline has not changed after {checks} checks. Your message was not sent twice (that could spend credits twice); send it again when you are ready."
                            ),
                        ));
                    }
                    i.phase = InstructPhase::Recover {
                        next_at: now + recover_every,
                        checks,
                    };
                    Next::Wait
                }
                _ => Next::Wait,
            },
            Op::Export(e) => {
                match new_draft {
                    Some(d) if d.is_ready_for_export() => {
                        e.phase = ExportPhase::Submit(d);
                        Next::Wait
                    }
                    _ => Next::Fail(NemoError::new(
                        ErrorKind::NothingToExport,
                        "There is nothing to export yet: the timeline is empty. Upload a clip or describe the video you want first.",
                    )),
                }
            }
            _ => Next::Done,
        }
    }

    /// A 404 to a status poll. Only the API itself (its envelope: a `code`,
    /// or `success: false`), saying so again and again over
    /// [`NOT_FOUND_SPAN`], makes a render unknown: an HTML page or a bare
    /// JSON `{"message":"Not Found"}` from a gateway, or a single answer, is
    /// waited out like a poll that said nothing. `None` lets the answer fail
    /// the render as unknown (and forgotten).
    fn on_render_not_found(&mut self, now: Instant, response: &Response) -> Option<Next> {
        let policy = self.config.poll;
        let api = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|v| match v {
                serde_json::Value::Object(map) => Some(map),
                _ => None,
            })
            .is_some_and(|map| {
                map.contains_key("code")
                    || map.get("success") == Some(&serde_json::Value::Bool(false))
            });
        let Some(Op::Export(e)) = current_op!(self) else {
            return None;
        };
        if api {
            let since = *e.not_found_since.get_or_insert(now);
            e.not_found += 1;
            if e.not_found >= NOT_FOUND_CONFIRMATIONS && now - since >= NOT_FOUND_SPAN {
                return None;
            }
        }
        let tracker = e
            .tracker
            .get_or_insert_with(|| RenderTracker::new(policy, now));
        if tracker.expired(now) {
            // Out of time, but nothing proved the render gone: it stays
            // recorded.
            return Some(Next::Fail(NemoError::new(
                ErrorKind::Unconfirmed,
                format!(
                    "The render {} could not be confirmed: the server kept answering \"not found\" without saying so as the API does. It stays recorded; try again later.",
                    e.id
                ),
            )));
        }
        let next_at = tracker.observe(now, None);
        e.phase = ExportPhase::Poll { next_at };
        let what = if api {
            "says it does not know"
        } else {
            "answered with a page that is not the API's"
        };
        self.events.push_back(Event::Status(format!(
            "The server {what} render {}; asking again…",
            e.id
        )));
        Some(Next::Wait)
    }

    fn on_render_accepted(&mut self, now: Instant, accepted: api::RenderAccepted) -> Next {
        let policy = self.config.poll;
        let Some(Op::Export(e)) = current_op!(self) else {
            return Next::Done;
        };
        if let Some(server_id) = accepted.id.filter(|id| !id.is_empty() && *id != e.id) {
            if let Err(why) = crate::ids::check_id("render id", &server_id) {
                // Never used in a URL or a file name: it cannot be followed.
                return Next::Fail(NemoError::new(
                    ErrorKind::Protocol,
                    format!("The server named the render in a way that cannot be used, so it was not followed: {why}."),
                ));
            }
            // The server named the job itself: follow its name.
            let old = std::mem::replace(&mut e.id, server_id.clone());
            let out = e.options.download.then(|| download_path(e));
            let session_id = self.session_id().unwrap_or_default().to_owned();
            let task_id = self.task_id().map(str::to_owned);
            self.events.push_back(Event::RenderStarting {
                id: server_id,
                session_id,
                task_id,
                out,
            });
            self.events.push_back(Event::RenderEnded {
                id: old,
                outcome: RenderOutcome::Rejected,
            });
        }
        let Some(Op::Export(e)) = current_op!(self) else {
            return Next::Done;
        };
        let mut tracker = RenderTracker::new(policy, now);
        tracker.observe_submission(accepted.progress);
        e.phase = ExportPhase::Poll {
            next_at: tracker.first_poll(),
        };
        e.tracker = Some(tracker);
        e.reported = Some((RenderPhase::Pending, accepted.progress.map(|p| p as i64)));
        let ev = Event::RenderProgress {
            id: e.id.clone(),
            phase: RenderPhase::Pending,
            progress: accepted.progress,
        };
        self.events.push_back(ev);
        Next::Wait
    }

    fn on_render_status(&mut self, now: Instant, status: api::RenderStatus) -> Next {
        let policy = self.config.poll;
        let Some(Op::Export(e)) = current_op!(self) else {
            return Next::Done;
        };
        let key = (status.phase.clone(), status.progress.map(|p| p as i64));
        let mut events = Vec::new();
        if e.reported.as_ref() != Some(&key) {
            e.reported = Some(key);
            events.push(Event::RenderProgress {
                id: e.id.clone(),
                phase: status.phase.clone(),
                progress: status.progress,
            });
        }
        let next = match status.phase {
            RenderPhase::Completed => {
                if let Some(url) = &status.output_url {
                    events.push(Event::RenderCompleted {
                        id: e.id.clone(),
                        url: url.clone(),
                    });
                }
                if e.options.download {
                    e.phase = ExportPhase::Download {
                        url: status.output_url.clone(),
                        fallback: status.output_url.is_none(),
                        size: status.size,
                    };
                    Next::Wait
                } else {
                    events.push(Event::RenderEnded {
                        id: e.id.clone(),
                        outcome: RenderOutcome::Completed(
                            status.output_url.clone().unwrap_or_default(),
                        ),
                    });
                    e.phase = ExportPhase::Claim;
                    Next::Wait
                }
            }
            RenderPhase::Failed | RenderPhase::Cancelled => {
                let cancelled = status.phase == RenderPhase::Cancelled;
                events.push(Event::RenderEnded {
                    id: e.id.clone(),
                    outcome: if cancelled {
                        RenderOutcome::Cancelled
                    } else {
                        RenderOutcome::Failed
                    },
                });
                // The server's words, on one line, with nothing a terminal
                // would act on.
                let reason = status
                    .error
                    .as_deref()
                    .map(|r| crate::ids::printable_line(r).into_owned())
                    .unwrap_or_else(|| "no reason given".into());
                Next::Fail(NemoError::new(
                    ErrorKind::RenderFailed,
                    if cancelled {
                        format!("The render {} was cancelled.", e.id)
                    } else {
                        format!(
                            "The render failed on the server ({reason}). Export again; if it keeps failing, simplify the edit."
                        )
                    },
                ))
            }
            RenderPhase::Pending | RenderPhase::Processing => {
                let tracker = e
                    .tracker
                    .get_or_insert_with(|| RenderTracker::new(policy, now));
                let next_at = tracker.observe(now, status.progress);
                e.phase = ExportPhase::Poll { next_at };
                Next::Wait
            }
        };
        self.events.extend(events);
        next
    }

    /// Turns a final failure into the error users read.
    fn error_for(&self, endpoint: Endpoint, failure: &Failure, message: &str) -> NemoError {
        // Server text is shown to the user: it must not echo a credential.
        let client_id = Secret::new(self.config.client_id.clone());
        let mut secrets = vec![&client_id];
        if let Some(token) = &self.token {
            secrets.push(token);
        }
        let message = &crate::secret::redact(message, &secrets);
        let web = &self.config.web_url;
        let register = self
            .user_id
            .as_deref()
            .filter(|_| self.anonymous)
            .map(|uid| api::register_link(web, uid));
        match failure {
            Failure::Api { status, code, .. } => {
                let code_v = *code;
                match (code_v, *status) {
                    (Some(2001), _) => {
                        let mut e = NemoError::new(
                            ErrorKind::OutOfCredits,
                            match &register {
                                Some(link) => format!("You are out of credits. Register to get more: {link}"),
                                None if self.anonymous => format!("You are out of credits. Register at {web} to get more."),
                                None => format!("You are out of credits. Top up your account at {web}."),
                            },
                        )
                        .with_code(code_v);
                        if let Some(link) = register {
                            e = e.with_link(link);
                        }
                        e
                    }
                    (Some(4001), _) => api::unsupported_file(""),
                    (Some(4002), _) => api::file_too_large("", None),
                    (Some(402), _) | (_, 402) => {
                        let mut e = NemoError::new(
                            ErrorKind::PlanBlocked,
                            format!(
                                "Export is blocked on the free plan (a subscription limit, not credits). {}",
                                match &register {
                                    Some(link) => format!("Register or upgrade: {link}"),
                                    None => format!("Upgrade at {web}."),
                                }
                            ),
                        )
                        .with_code(Some(402));
                        if let Some(link) = register {
                            e = e.with_link(link);
                        }
                        e
                    }
                    (Some(1001), _) => NemoError::new(
                        ErrorKind::AuthFailed,
                        if self.anonymous {
                            "The free token expired and a new one could not be had. Set NEMO_TOKEN to a token of your account, or try again later.".to_owned()
                        } else {
                            "NEMO_TOKEN was rejected (expired or invalid). Set a valid token, or unset NEMO_TOKEN to use a free anonymous one.".to_owned()
                        },
                    )
                    .with_code(code_v),
                    (Some(1002), _) => NemoError::new(
                        ErrorKind::SessionLost,
                        "The session was lost on the server and a new one could not be started. Start again with --new-session.",
                    )
                    .with_code(code_v),
                    (_, 429) | (Some(429), _) => NemoError::new(
                        ErrorKind::RateLimited,
                        if endpoint == Endpoint::AnonymousToken {
                            "A free token was already issued to this machine in the last 7 days and the service will not issue another yet. Set NEMO_TOKEN to your account's token, or try again later.".to_owned()
                        } else {
                            "The service is rate limiting requests. Wait a minute and try again.".to_owned()
                        },
                    )
                    .with_code(Some(429)),
                    (_, s) if s >= 500 => NemoError::new(
                        ErrorKind::Server,
                        format!("The server failed (HTTP {s}: {}). Try again in a moment.", short(message)),
                    ),
                    (c, s) => NemoError::new(
                        ErrorKind::Api,
                        format!("The server refused the {} request (HTTP {s}): {}", endpoint.name(), short(message)),
                    )
                    .with_code(c),
                }
            }
            Failure::Transport(kind) => {
                let (k, hint) = match kind {
                    TransportErrorKind::Local => (ErrorKind::BadInput, ""),
                    _ if endpoint == Endpoint::Download => (
                        ErrorKind::Network,
                        " The render is finished on the server; download it later with `nemo jobs --resume`.",
                    ),
                    _ => (ErrorKind::Network, " Check your connection (or NEMO_API_URL) and try again."),
                };
                let what = match kind {
                    TransportErrorKind::Timeout => "The service did not answer in time",
                    TransportErrorKind::Connect => "Could not reach the service",
                    TransportErrorKind::Tls => "The secure connection failed",
                    TransportErrorKind::Interrupted => "The connection broke",
                    TransportErrorKind::Local => "A local file could not be used",
                    _ => "The request failed",
                };
                NemoError::new(
                    k,
                    format!("{what}: {}.{hint}", short(message).trim_end_matches('.')),
                )
            }
            Failure::Decode => NemoError::new(
                ErrorKind::Protocol,
                format!(
                    "The server's answer to {} could not be read: {}",
                    endpoint.name(),
                    short(message)
                ),
            ),
            Failure::StreamDropped => {
                NemoError::new(ErrorKind::Network, "The connection to the agent dropped.")
            }
        }
    }
}

fn short(message: &str) -> String {
    let m = message.trim();
    if m.chars().count() > 300 {
        let cut: String = m.chars().take(300).collect();
        format!("{cut}…")
    } else {
        m.to_owned()
    }
}

fn download_path(e: &Export) -> PathBuf {
    e.options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.mp4", e.id)))
}

fn check_url(url: &str) -> Result<(), NemoError> {
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && url.len() > "https://x.y".len() - 1
        && !url.chars().any(char::is_whitespace)
        && url.split("://").nth(1).is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && host.contains('.')
        });
    if ok {
        Ok(())
    } else {
        Err(NemoError::new(
            ErrorKind::BadInput,
            format!("`{url}` is not a valid link. Give a full http:// or https:// URL."),
        ))
    }
}

fn failure_of(err: &ResponseError) -> (Failure, String) {
    match err {
        ResponseError::Api(e) => (
            Failure::Api {
                status: e.status,
                code: e.code,
                retry_after: e.retry_after,
            },
            e.message.clone(),
        ),
        ResponseError::Decode { message, .. } => (Failure::Decode, message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://youtu.be/abc").is_ok());
        assert!(check_url("ftp://x.com/a").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://exa mple.com").is_err());
        assert!(check_url("http://localhost/x").is_err());
    }
}
