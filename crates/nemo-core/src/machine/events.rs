//! What the machine tells the frontend: [`Event`] and the types it carries.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::adk::Addition;
use crate::error::NemoError;
use crate::secret::Secret;

/// What kind of link an [`Event::Link`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkKind {
    /// Opens the project in the web app (claim token; never the real token).
    Claim,
    /// Registers the anonymous user (out of credits). Today carried by the
    /// error's `link`; the kind stays for frontends that file links by kind.
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
    /// Cancelled on the server (by a cancel request, or by the service).
    Cancelled,
}

/// What is said after post-production added music, a title and effects on
/// its own (the [`Event::Suggestions`] that follow carry the messages).
/// Post-production that added other things is told the same way, naming
/// what it added ([`Event::Suggestions`] carries the words).
pub const POST_PRODUCTION_CHOICES: &str =
    "Post-production added music, a title and effects. Keep them, or remove what you do not want:";

/// The next messages offered after post-production added music, a title
/// and effects: keep everything, or strip one addition. After other
/// additions, the suggestions name what was actually added.
pub const POST_PRODUCTION_SUGGESTIONS: [&str; 4] = [
    "keep them",
    "remove the music",
    "remove the title",
    "remove the effects",
];

/// The choice offered after post-production, from what it added (in the
/// order of [`Addition`]); `None` when nothing known was added.
pub(super) fn post_production_choice(added: &[Addition]) -> Option<Event> {
    let mut added = added.to_vec();
    added.sort();
    added.dedup();
    let (last, rest) = added.split_last()?;
    let nouns: Vec<&str> = rest.iter().map(|a| a.noun()).collect();
    let list = if nouns.is_empty() {
        last.noun().to_owned()
    } else {
        format!("{} and {}", nouns.join(", "), last.noun())
    };
    let (message, keep) = if rest.is_empty() {
        (
            format!("Post-production added {list}. Keep it, or remove it:"),
            "keep it",
        )
    } else {
        (
            format!("Post-production added {list}. Keep them, or remove what you do not want:"),
            "keep them",
        )
    };
    Some(Event::Suggestions {
        message,
        suggestions: std::iter::once(keep)
            .chain(added.iter().map(|a| a.removal()))
            .map(str::to_owned)
            .collect(),
    })
}

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
pub(super) fn capitalised(words: &str) -> String {
    let mut c = words.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Which transfer a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Sending files.
    Upload,
    /// Receiving a render.
    Download,
}

/// What the machine tells the frontend.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A short progress line ("Connecting…").
    Status(String),
    /// A new anonymous token: frontends may cache it (mode 0600).
    TokenIssued {
        /// The anonymous token (never printed by `Debug`).
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
        /// The session id, as the server gave it (checked).
        session_id: String,
        /// The session's task id, when known (needed for claim links).
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
    /// A piece of the agent's text as it arrives, while the stream is open
    /// (only with [`Config::text_deltas`](super::Config::text_deltas)).
    /// The pieces of one message, concatenated, are its raw text: streamed
    /// pieces (ADK `partial`, a typed `text_delta`), or the whole text at
    /// once when the service sends no pieces (the typed `{"type":"text"}`
    /// dialect). They are not GUI-translated: the [`Event::AgentText`] that
    /// follows is the message as it should stay on screen, and replaces them.
    AgentTextDelta {
        /// The piece.
        text: String,
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
        /// The render id the submission will carry.
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
        /// The render id.
        id: String,
        /// Where it is.
        phase: RenderPhase,
        /// 0–100, when known.
        progress: Option<f64>,
    },
    /// A render completed.
    RenderCompleted {
        /// The render id.
        id: String,
        /// The output URL.
        url: String,
    },
    /// The file is on disk.
    Downloaded {
        /// The render id.
        id: String,
        /// Where the file was saved.
        path: PathBuf,
        /// The file's size in bytes.
        bytes: u64,
    },
    /// A render needs no more tracking: remove it from the journal.
    RenderEnded {
        /// The render id.
        id: String,
        /// How it ended.
        outcome: RenderOutcome,
    },
    /// A useful link (the project's claim link after an export, or when
    /// asked for). Each link is reported once: a link that belongs to a
    /// failure (registration when out of credits, upgrade when the plan
    /// blocks an export) comes in the error's
    /// [`NemoError::link`](crate::error::NemoError::link) instead, never
    /// as this event too.
    Link {
        /// What kind of link: claim, or registration.
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
    /// How far an upload or a download has got, while it runs. Emitted by
    /// the [`Driver`](crate::driver::Driver) (the machine does no I/O), and
    /// only when asked for with
    /// [`Driver::transfer_events`](crate::driver::Driver::transfer_events):
    /// transports report often.
    Transfer {
        /// Upload or download.
        kind: TransferKind,
        /// Bytes transferred so far (for a resumed download, including the
        /// part already on disk).
        done: u64,
        /// Total bytes, when known.
        total: Option<u64>,
    },
    /// A command finished.
    Finished {
        /// Which command: the id [`Session::command`](super::Session::command) returned.
        command: CommandId,
        /// How it ended: `Ok`, or the error that ended it (told once, here).
        result: Result<(), NemoError>,
    },
}
