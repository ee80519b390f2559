//! The engine behind the tools.
//!
//! - **Work** (`upload`, `instruct`, `export`, `resume_jobs`) runs on the
//!   main session, one at a time. `instruct` and `export` run as
//!   background [`Work`]: a task of their own that records everything the
//!   session's events say, so that the tool call may wait for it (with
//!   progress) or return its id at once, and `turn_status` /
//!   `render_status` read it at any time. A work tool that finds the
//!   session busy is refused with words saying what runs and how to follow
//!   it: nothing is queued unseen, nothing is sent twice.
//! - **Queries** (`timeline`, `credits`, the status tools, `jobs`) never
//!   wait behind work: each runs on a client of its own on the same
//!   session and store.
//! - **Progress** notifications go to every call that carried a progress
//!   token, in order, only growing, and at least every [`KEEP_ALIVE`] of
//!   the client's clock (keep-alives) while it waits, so that clients that
//!   reset their timeout on progress never give up on a long turn.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nemo_core::driver::{ProgressSink, TransferKind};
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, Event, RenderPhase, SessionRef};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use tokio::sync::{mpsc, watch, Notify, OwnedMutexGuard};
use tokio::time::Instant;

use crate::app::{App, Client, SessionChoice};
use crate::report::Persist;

/// Everything a command's events said, gathered for the tool's answer:
/// the library's [`nemo_client::Turn`].
pub(crate) use nemo_client::Turn as Outcome;

/// `p` made absolute against the working directory (as the journal
/// records it).
pub(crate) use nemo_client::absolute;

/// The longest a waiting call goes without a progress notification, on the
/// client's clock (scaled by `NEMO_TIME_SCALE` against a sped-up
/// simulator). Common clients give up after 60 s without one.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How long a work tool waits for the session to be free (the end of work
/// that was just stopped) before it says the session is busy.
const BUSY_GRACE: Duration = Duration::from_millis(1500);

/// How a tool wants its command to end early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopAt {
    /// Run to the end.
    Never,
    /// Once a render's status has been read and it is not finished.
    RenderStillRunning,
}

impl StopAt {
    fn reached(self, event: &Event) -> bool {
        match (self, event) {
            (StopAt::RenderStillRunning, Event::RenderProgress { phase, .. }) => !phase.is_final(),
            _ => false,
        }
    }
}

/// How progress is counted for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Steps (status lines, "still working"), without a total.
    Steps,
    /// 0–100: render progress up to 90, the download the rest.
    Render,
    /// 0–100: bytes uploaded.
    Upload,
}

/// Progress notifications for one tool call that carried a progress token.
/// Values only ever grow (as MCP requires); each one goes out in order
/// through a channel drained by a task (see [`forward`]).
struct Progress {
    token: ProgressToken,
    tx: mpsc::UnboundedSender<ProgressNotificationParam>,
    scale: Scale,
    last: f64,
}

impl Progress {
    fn send(&mut self, value: f64, message: String) {
        if value.is_nan() || value <= self.last {
            return;
        }
        self.last = value;
        let mut p = ProgressNotificationParam::new(self.token.clone(), value).with_message(message);
        if self.scale != Scale::Steps {
            p = p.with_total(100.0);
        }
        let _ = self.tx.send(p);
    }

    fn event(&mut self, event: &Event) {
        match (self.scale, event) {
            (Scale::Steps, Event::Status(message)) => self.send(self.last + 1.0, message.clone()),
            (Scale::Steps, Event::Generation { message, .. }) => {
                self.send(self.last + 1.0, message.clone())
            }
            (Scale::Steps, Event::AgentText { text, .. }) if !text.trim().is_empty() => {
                self.send(self.last + 1.0, first_line(text))
            }
            (Scale::Steps, Event::Change { summary }) => {
                self.send(self.last + 1.0, format!("Changed: {summary}"))
            }
            (Scale::Steps, Event::StillWorking { elapsed }) => self.send(
                self.last + 1.0,
                format!(
                    "Still working… ({})",
                    nemo_core::time::human_duration(*elapsed)
                ),
            ),
            (
                Scale::Render,
                Event::RenderProgress {
                    phase, progress, ..
                },
            ) if !phase.is_final() => {
                let percent = progress.unwrap_or(0.0).clamp(0.0, 100.0);
                self.send(
                    (percent * 0.9).max(0.5),
                    format!("Rendering: {} {percent:.0}%", phase.as_str()),
                );
            }
            (Scale::Render, Event::RenderCompleted { .. }) => {
                self.send(90.0, "Rendered; downloading…".into());
            }
            (Scale::Render, Event::Downloaded { .. }) => self.send(100.0, "Downloaded.".into()),
            _ => {}
        }
    }

    fn transfer(&mut self, kind: TransferKind, done: u64, total: Option<u64>) {
        let Some(total) = total.filter(|t| *t > 0) else {
            return;
        };
        let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
        // Whole percents only: a notification per chunk would flood the client.
        let percent = (fraction * 100.0).floor();
        match (self.scale, kind) {
            (Scale::Render, TransferKind::Download) => {
                self.send(90.0 + percent / 10.0, format!("Downloading: {percent:.0}%"))
            }
            (Scale::Upload, TransferKind::Upload) => {
                self.send(percent, format!("Uploading: {percent:.0}%"))
            }
            _ => {}
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Event(event) => self.event(event),
            Item::Transfer { kind, done, total } => self.transfer(*kind, *done, *total),
        }
    }
}

/// The first line of a text, shortened for a progress message.
fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let mut short: String = line.chars().take(120).collect();
    if line.chars().count() > 120 {
        short.push('…');
    }
    short
}

/// Sends what `rx` carries to the client, in order, each value above the
/// last; when nothing came for [`KEEP_ALIVE`] (client clock), a
/// keep-alive. Ends when every sender is gone.
fn forward(
    ctx: &RequestContext<RoleServer>,
    token: ProgressToken,
    scale: Scale,
    time_scale: f64,
    mut rx: mpsc::UnboundedReceiver<ProgressNotificationParam>,
) -> tokio::task::JoinHandle<()> {
    let peer = ctx.peer.clone();
    let every = KEEP_ALIVE.mul_f64(time_scale);
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = 0.0_f64;
        loop {
            let mut p = match tokio::time::timeout(every, rx.recv()).await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(_) => {
                    let waited = started.elapsed().div_f64(time_scale);
                    let step = if scale == Scale::Steps { 1.0 } else { 0.001 };
                    let mut p = ProgressNotificationParam::new(token.clone(), last + step)
                        .with_message(format!(
                            "Still working… ({})",
                            nemo_core::time::human_duration(waited)
                        ));
                    if scale != Scale::Steps {
                        p = p.with_total(100.0);
                    }
                    p
                }
            };
            if p.progress <= last {
                // After keep-alives: still above the last one sent.
                p.progress = last + 0.001;
            }
            last = p.progress;
            // A client that went away cannot be told anything.
            let _ = peer.notify_progress(p).await;
        }
    })
}

/// One thing that happened in a piece of work, in order.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// An event of the session.
    Event(Event),
    /// Transfer progress (whole percents only).
    Transfer {
        kind: TransferKind,
        done: u64,
        total: Option<u64>,
    },
}

/// What a piece of background work is.
#[derive(Debug, Clone)]
pub(crate) enum WorkKind {
    /// An `instruct`: the message, and the caller's idempotency key.
    Turn {
        message: String,
        key: Option<String>,
    },
    /// An `export`: where the video goes.
    Export { out: Option<PathBuf> },
}

/// An `instruct` or an `export` running (or run) in the background: what
/// its events said so far, and how it ended.
#[derive(Debug)]
pub(crate) struct Work {
    /// `turn_N`, or the render id.
    pub(crate) id: String,
    pub(crate) kind: WorkKind,
    started: Instant,
    ended_after: Option<Duration>,
    /// Everything that happened, in order.
    pub(crate) log: Vec<Item>,
    /// What the events add up to.
    pub(crate) outcome: Outcome,
    /// The steps taken: status lines, notes, generation stages.
    pub(crate) steps: Vec<String>,
    /// How it ended; `None` while it runs.
    pub(crate) end: Option<Result<(), NemoError>>,
    /// True when a caller stopped it (it did not end by itself).
    pub(crate) stopped: bool,
    last_transfer: Option<(TransferKind, u64)>,
    stop: Arc<Notify>,
}

impl Work {
    fn see(&mut self, event: &Event) {
        self.outcome.see(event);
        match event {
            Event::Status(line) | Event::Note(line) => self.steps.push(line.clone()),
            Event::Generation { message, .. } => self.steps.push(message.clone()),
            Event::Change { summary } => self.steps.push(format!("Changed: {summary}")),
            _ => {}
        }
        self.log.push(Item::Event(event.clone()));
    }

    /// Seconds on the client's clock since it started (until it ended).
    pub(crate) fn elapsed(&self, time_scale: f64) -> Duration {
        self.ended_after
            .unwrap_or_else(|| self.started.elapsed())
            .div_f64(time_scale)
    }

    /// `running`, `done`, `failed` or `stopped`.
    pub(crate) fn status(&self) -> &'static str {
        match &self.end {
            None => "running",
            Some(Ok(())) => "done",
            Some(Err(_)) if self.stopped => "stopped",
            Some(Err(_)) => "failed",
        }
    }

    /// For an export: where it is (`submitting`, a render phase,
    /// `downloading`, `downloaded`, `failed`, `stopped`) and its progress.
    pub(crate) fn render_state(&self) -> (String, Option<f64>) {
        match &self.end {
            Some(Ok(())) if self.outcome.downloaded.is_some() => ("downloaded".into(), Some(100.0)),
            Some(Err(_)) if self.stopped => ("stopped".into(), None),
            Some(Err(_)) => ("failed".into(), None),
            _ => match &self.outcome.render_phase {
                Some((RenderPhase::Completed, _)) => {
                    let percent = match self.last_transfer {
                        Some((TransferKind::Download, p)) => p as f64,
                        _ => 0.0,
                    };
                    ("downloading".into(), Some(percent))
                }
                Some((phase, progress)) => (phase.as_str().into(), *progress),
                None => ("submitting".into(), None),
            },
        }
    }

    /// The message (or export) this work is, in a few words.
    pub(crate) fn what(&self) -> String {
        match &self.kind {
            WorkKind::Turn { message, .. } => {
                format!("turn {} (\"{}\")", self.id, first_line(message))
            }
            WorkKind::Export { .. } => format!("the export of render {}", self.id),
        }
    }
}

/// A piece of work, shared with whoever watches it.
pub(crate) type WorkCell = watch::Sender<Work>;

/// What the server knows besides its sessions' own state.
#[derive(Default)]
struct State {
    /// The session the main client works in, once known.
    session: Option<SessionRef>,
    /// Sessions used by this server, oldest first.
    used: Vec<SessionRef>,
    /// Background work by id.
    works: HashMap<String, Arc<WorkCell>>,
    /// The latest turn's id.
    last_turn: Option<String>,
    /// Idempotency keys → turn ids, and the keys oldest first (bounded:
    /// [`MAX_KEYS`]).
    keys: HashMap<String, String>,
    key_order: VecDeque<String>,
    /// What holds the main session now, in words (for "busy").
    busy_with: Option<String>,
    /// Where the next transfer progress goes (the background work).
    current: Option<Arc<WorkCell>>,
    turns: u64,
}

/// Finished work kept for `turn_status` and retries (each holds its whole
/// event log); older finished work is let go, running work never.
const MAX_FINISHED_WORKS: usize = 64;
/// Idempotency keys remembered (a key and a turn id each): far more than
/// the work kept, so that a retry of a turn let go is still never sent twice.
const MAX_KEYS: usize = 10_000;

/// What an idempotency key says about a new `instruct`.
pub(crate) enum KeyTurn {
    /// Never used: start the turn.
    New,
    /// The turn it started.
    Started(Arc<WorkCell>),
    /// It started this turn, which finished long ago and was let go.
    LetGo(String),
}

impl State {
    /// Lets go of the oldest finished work beyond [`MAX_FINISHED_WORKS`] and
    /// of the oldest keys beyond [`MAX_KEYS`]: a server that runs for days
    /// holds bounded memory.
    fn prune(&mut self) {
        let mut finished: Vec<(Instant, String)> = self
            .works
            .iter()
            .filter(|(id, cell)| {
                cell.borrow().end.is_some() && self.last_turn.as_ref() != Some(*id)
            })
            .map(|(id, cell)| (cell.borrow().started, id.clone()))
            .collect();
        if finished.len() > MAX_FINISHED_WORKS {
            finished.sort();
            let extra = finished.len() - MAX_FINISHED_WORKS;
            for (_, id) in finished.into_iter().take(extra) {
                self.works.remove(&id);
            }
        }
        while self.key_order.len() > MAX_KEYS {
            if let Some(key) = self.key_order.pop_front() {
                self.keys.remove(&key);
            }
        }
    }

    fn key_turn(&self, key: &str) -> KeyTurn {
        match self.keys.get(key) {
            None => KeyTurn::New,
            Some(id) => match self.works.get(id) {
                Some(cell) => KeyTurn::Started(cell.clone()),
                None => KeyTurn::LetGo(id.clone()),
            },
        }
    }
}

type Slot = Arc<Mutex<Option<Progress>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only bookkeeping lives here; a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The session shared by every tool call, and what it runs with.
pub(crate) struct Engine {
    /// The environment and the config directory, as the CLI resolves them.
    pub(crate) app: App,
    main: Arc<tokio::sync::Mutex<Client>>,
    progress: Slot,
    state: Arc<Mutex<State>>,
    /// Real seconds per second of the client's clock.
    pub(crate) time_scale: f64,
}

/// One tool call's view of its request: cancellation and progress token.
pub(crate) struct Call<'a> {
    ctx: &'a RequestContext<RoleServer>,
    scale: Scale,
}

impl<'a> Call<'a> {
    /// A call counting progress on `scale`.
    pub(crate) fn new(ctx: &'a RequestContext<RoleServer>, scale: Scale) -> Self {
        Call { ctx, scale }
    }
}

/// How a wait for background work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The work ended.
    Ended,
    /// The caller cancelled its request first.
    Cancelled,
}

impl Engine {
    /// The engine for `app`: the session it continues (`--session`, else the
    /// last one, else a new one on first use). Nothing is sent yet.
    pub(crate) fn new(app: App) -> Result<Engine, NemoError> {
        let progress: Slot = Arc::new(Mutex::new(None));
        let state = Arc::new(Mutex::new(State::default()));
        let mut main = app.session_client_unprepared(SessionChoice::ContinueOrNew)?;
        main.on_progress(transfer_sink(&progress, &state));
        {
            let mut s = lock(&state);
            s.session = main.session_ref();
            let known = s.session.clone();
            s.used.extend(known);
        }
        // A client may wait less than real time, never more.
        let time_scale = app.time_scale().min(1.0);
        Ok(Engine {
            app,
            main: Arc::new(tokio::sync::Mutex::new(main)),
            progress,
            state,
            time_scale,
        })
    }

    /// The session id, if one is chosen or connected (never waits).
    pub(crate) fn session_id(&self) -> Option<String> {
        self.session().map(|s| s.session_id)
    }

    /// The session, if one is chosen or connected (never waits).
    pub(crate) fn session(&self) -> Option<SessionRef> {
        lock(&self.state).session.clone()
    }

    /// Sessions used by this server, oldest first.
    pub(crate) fn sessions_used(&self) -> Vec<SessionRef> {
        lock(&self.state).used.clone()
    }

    /// The main session, once free: waits a moment for work that is just
    /// ending, then says what keeps it busy.
    async fn acquire(&self) -> Result<OwnedMutexGuard<Client>, NemoError> {
        match tokio::time::timeout(BUSY_GRACE, self.main.clone().lock_owned()).await {
            Ok(guard) => Ok(guard),
            Err(_) => Err(self.busy()),
        }
    }

    fn busy(&self) -> NemoError {
        let state = lock(&self.state);
        let what = state
            .busy_with
            .clone()
            .unwrap_or_else(|| "another call".into());
        let follow = if what.starts_with("turn ") {
            "Follow it with `turn_status` and call again once it has finished"
        } else if what.starts_with("the export") {
            "Follow it with `render_status` and call again once it has finished"
        } else {
            "Call again once it has finished"
        };
        NemoError::new(
            ErrorKind::BadInput,
            format!("The session is busy with {what}. {follow}; nothing was sent."),
        )
    }

    /// Runs `command` in the main session, as work (refused while other
    /// work runs).
    pub(crate) async fn run(
        &self,
        call: &Call<'_>,
        label: &str,
        command: Command,
    ) -> (Result<(), NemoError>, Outcome) {
        let mut client = match self.acquire().await {
            Ok(c) => c,
            Err(e) => return (Err(e), Outcome::default()),
        };
        lock(&self.state).busy_with = Some(label.to_owned());
        let ended = self.run_on(&mut client, call, command, StopAt::Never).await;
        self.note_session(client.session_ref());
        lock(&self.state).busy_with = None;
        ended
    }

    /// A client of its own on the main session, for a query that must not
    /// wait behind work; `None` before this machine has a token (the first
    /// work fetches it: a second fetch would be refused).
    fn query_client(&self) -> Option<Client> {
        if !self.app.has_token() {
            return None;
        }
        self.app
            .client(
                self.session(),
                Persist {
                    last_session: false,
                    client_id: true,
                },
            )
            .ok()
    }

    /// Runs a read-only `command` on a client of its own, never behind work
    /// (before there is a token, on the main session).
    pub(crate) async fn query(
        &self,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        match self.query_client() {
            Some(client) => self.run_other(client, call, command, stop_at).await,
            None => {
                let mut client = match self.acquire().await {
                    Ok(c) => c,
                    Err(e) => return (Err(e), Outcome::default()),
                };
                let ended = self.run_on(&mut client, call, command, stop_at).await;
                self.note_session(client.session_ref());
                ended
            }
        }
    }

    /// Reads the session's draft (a timeline read, on a query's client when
    /// there is one) and returns its JSON as the server sent it.
    pub(crate) async fn read_draft(
        &self,
        call: &Call<'_>,
    ) -> (Result<(), NemoError>, Option<String>) {
        match self.query_client() {
            Some(mut client) => {
                let slot: Slot = Arc::new(Mutex::new(None));
                let (result, _) = self
                    .run_with(&mut client, &slot, call, Command::Timeline, StopAt::Never)
                    .await;
                (result, client.draft_json())
            }
            None => {
                let mut client = match self.acquire().await {
                    Ok(c) => c,
                    Err(e) => return (Err(e), None),
                };
                let (result, _) = self
                    .run_on(&mut client, call, Command::Timeline, StopAt::Never)
                    .await;
                self.note_session(client.session_ref());
                (result, client.draft_json())
            }
        }
    }

    /// Runs `command` on `client` (a job's own session, a query's client).
    pub(crate) async fn run_other(
        &self,
        mut client: Client,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        // Its own progress only: the main session's transfers go elsewhere.
        let slot: Slot = Arc::new(Mutex::new(None));
        self.run_with(&mut client, &slot, call, command, stop_at)
            .await
    }

    /// Finishes recorded render jobs ([`nemo_client::Client::resume_jobs`]:
    /// its rules, this call's progress and cancellation), with what each
    /// job's events said.
    pub(crate) async fn resume_jobs(
        &self,
        call: &Call<'_>,
        options: &nemo_client::ResumeJobs,
    ) -> Result<Vec<(nemo_client::Job, nemo_client::JobResult, Outcome)>, NemoError> {
        let mut client = self.acquire().await?;
        lock(&self.state).busy_with = Some("`resume_jobs`".into());
        let forwarder = self.start_progress(&self.progress, call);
        let mut outcomes: Vec<(String, Outcome)> = Vec::new();
        let result = {
            let progress = self.progress.clone();
            let mut watch = |p: &nemo_client::JobProgress<'_>| match p {
                nemo_client::JobProgress::Starting { job, .. } => {
                    outcomes.push((job.id.clone(), Outcome::default()));
                    if let Some(p) = lock(&progress).as_mut() {
                        p.event(&Event::Status(format!("Resuming {}…", job.id)));
                    }
                }
                nemo_client::JobProgress::Event { event, .. } => {
                    if let Some((_, outcome)) = outcomes.last_mut() {
                        outcome.see(event);
                    }
                    if let Some(p) = lock(&progress).as_mut() {
                        p.event(event);
                    }
                }
                _ => {}
            };
            let cancelled = call.ctx.ct.clone();
            client
                .resume_jobs(
                    options,
                    &mut watch,
                    async move { cancelled.cancelled().await },
                )
                .await
        };
        finish_progress(&self.progress, forwarder).await;
        lock(&self.state).busy_with = None;
        drop(client);
        let results = result?;
        Ok(results
            .into_iter()
            .map(|(job, result)| {
                let outcome = outcomes
                    .iter()
                    .position(|(id, _)| *id == job.id)
                    .map(|i| outcomes.swap_remove(i).1)
                    .unwrap_or_default();
                (job, result, outcome)
            })
            .collect())
    }

    /// Starts forwarding progress notifications into `slot`, when the call
    /// asked for them.
    fn start_progress(&self, slot: &Slot, call: &Call<'_>) -> Option<tokio::task::JoinHandle<()>> {
        let token = call.ctx.meta.get_progress_token()?;
        let (tx, rx) = mpsc::unbounded_channel::<ProgressNotificationParam>();
        *lock(slot) = Some(Progress {
            token: token.clone(),
            tx,
            scale: call.scale,
            last: 0.0,
        });
        Some(forward(call.ctx, token, call.scale, self.time_scale, rx))
    }

    async fn run_on(
        &self,
        client: &mut Client,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        let slot = self.progress.clone();
        self.run_with(client, &slot, call, command, stop_at).await
    }

    async fn run_with(
        &self,
        client: &mut Client,
        slot: &Slot,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        let forwarder = self.start_progress(slot, call);
        let reached = Arc::new(Notify::new());
        let mut stopped_early = false;
        let mut outcome = Outcome::default();
        let result = {
            let progress = slot.clone();
            let reached_tx = reached.clone();
            let verbose = self.app.global.verbose > 0;
            let state = self.state.clone();
            let mut watch = |ev: &Event| {
                outcome.see(ev);
                log_verbose(verbose, ev);
                note_connected(&state, ev);
                if let Some(p) = lock(&progress).as_mut() {
                    p.event(ev);
                }
                if stop_at.reached(ev) {
                    reached_tx.notify_one();
                }
            };
            let cancelled = call.ctx.ct.clone();
            let reached_rx = reached.clone();
            let stopped = &mut stopped_early;
            let stop = async move {
                tokio::select! {
                    () = cancelled.cancelled() => {}
                    () = reached_rx.notified() => *stopped = true,
                }
            };
            client.run_until(command, &mut watch, stop).await
        };
        finish_progress(slot, forwarder).await;
        let result = match result {
            Err(e) if stopped_early && e.kind == ErrorKind::Cancelled => Ok(()),
            other => other,
        };
        (result, outcome)
    }

    fn note_session(&self, session: Option<SessionRef>) {
        if let Some(session) = session {
            remember_session(&mut lock(&self.state), session);
        }
    }

    /// A render id for a new export (as the library makes them:
    /// `render_<unix ms>_<random>`), unused by this server.
    pub(crate) fn new_render_id(&self) -> String {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let state = lock(&self.state);
        loop {
            let id = nemo_client::new_render_id(ms);
            if !state.works.contains_key(&id) {
                return id;
            }
        }
    }

    /// The work with this id, if this server runs or ran it.
    pub(crate) fn work(&self, id: &str) -> Option<Arc<WorkCell>> {
        lock(&self.state).works.get(id).cloned()
    }

    /// The latest turn, if any.
    pub(crate) fn last_turn(&self) -> Option<Arc<WorkCell>> {
        let state = lock(&self.state);
        state
            .last_turn
            .as_ref()
            .and_then(|id| state.works.get(id).cloned())
    }

    /// What an idempotency key started, if anything.
    pub(crate) fn turn_for_key(&self, key: &str) -> KeyTurn {
        lock(&self.state).key_turn(key)
    }

    /// Starts `command` as background work on the main session (refused
    /// while other work runs). `id` is the render id of an export; a turn
    /// gets `turn_N`.
    pub(crate) async fn start(
        &self,
        kind: WorkKind,
        id: Option<String>,
        command: Command,
    ) -> Result<Arc<WorkCell>, NemoError> {
        let mut client = self.acquire().await?;
        let stop = Arc::new(Notify::new());
        let cell = {
            let mut state = lock(&self.state);
            if let WorkKind::Turn { key: Some(key), .. } = &kind {
                // The same key raced in twice: the first one started it.
                match state.key_turn(key) {
                    KeyTurn::New => {}
                    KeyTurn::Started(cell) => return Ok(cell),
                    KeyTurn::LetGo(id) => return Err(let_go(key, &id)),
                }
            }
            let id = match id {
                Some(id) => id,
                None => {
                    state.turns += 1;
                    format!("turn_{}", state.turns)
                }
            };
            let work = Work {
                id: id.clone(),
                kind: kind.clone(),
                started: Instant::now(),
                ended_after: None,
                log: Vec::new(),
                outcome: Outcome::default(),
                steps: Vec::new(),
                end: None,
                stopped: false,
                last_transfer: None,
                stop: stop.clone(),
            };
            let cell = Arc::new(watch::Sender::new(work));
            if let WorkKind::Turn { key, .. } = &kind {
                state.last_turn = Some(id.clone());
                if let Some(key) = key {
                    state.keys.insert(key.clone(), id.clone());
                    state.key_order.push_back(key.clone());
                }
            }
            state.busy_with = Some(cell.borrow().what());
            state.current = Some(cell.clone());
            state.works.insert(id, cell.clone());
            state.prune();
            cell
        };
        let state = self.state.clone();
        let verbose = self.app.global.verbose > 0;
        let task_cell = cell.clone();
        tokio::spawn(async move {
            let cell = task_cell;
            let mut watch = |ev: &Event| {
                log_verbose(verbose, ev);
                note_connected(&state, ev);
                cell.send_modify(|w| w.see(ev));
            };
            let stop_wait = stop.clone();
            let result = client
                .run_until(
                    command,
                    &mut watch,
                    async move { stop_wait.notified().await },
                )
                .await;
            {
                let mut s = lock(&state);
                if let Some(session) = client.session_ref() {
                    remember_session(&mut s, session);
                }
                s.busy_with = None;
                s.current = None;
            }
            // The session is free before anyone hears that this ended.
            drop(client);
            cell.send_modify(|w| {
                w.ended_after = Some(w.started.elapsed());
                w.end = Some(result);
            });
        });
        Ok(cell)
    }

    /// Stops a piece of work: the request in flight is abandoned (a render
    /// keeps going on the server and stays in the job list).
    pub(crate) fn stop(&self, cell: &WorkCell) {
        let running = cell.borrow().end.is_none();
        if running {
            cell.send_modify(|w| w.stopped = true);
            cell.borrow().stop.notify_one();
        }
    }

    /// Waits for `cell` to end, with progress notifications for this call
    /// (its steps so far first), until the call is cancelled.
    pub(crate) async fn wait(&self, cell: &WorkCell, call: &Call<'_>) -> Waited {
        let slot: Slot = Arc::new(Mutex::new(None));
        let forwarder = self.start_progress(&slot, call);
        let mut rx = cell.subscribe();
        let mut seen = 0;
        let waited = loop {
            {
                let work = rx.borrow_and_update();
                if let Some(p) = lock(&slot).as_mut() {
                    for item in &work.log[seen.min(work.log.len())..] {
                        p.item(item);
                    }
                }
                seen = work.log.len();
                if work.end.is_some() {
                    break Waited::Ended;
                }
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break Waited::Ended },
                () = call.ctx.ct.cancelled() => break Waited::Cancelled,
            }
        };
        finish_progress(&slot, forwarder).await;
        waited
    }

    /// Waits (without progress) until `cell` has ended.
    pub(crate) async fn ended(&self, cell: &WorkCell) {
        let mut rx = cell.subscribe();
        let _ = rx.wait_for(|w| w.end.is_some()).await;
    }

    /// Switches the main session: `session`, or a new one on first use.
    /// Refused while work runs. Returns the session it leaves.
    pub(crate) async fn switch(
        &self,
        session: Option<SessionRef>,
    ) -> Result<Option<String>, NemoError> {
        let mut client = self.acquire().await?;
        let previous = client.session_id();
        let mut fresh = self.app.client(
            session.clone(),
            Persist {
                last_session: true,
                client_id: true,
            },
        )?;
        fresh.on_progress(transfer_sink(&self.progress, &self.state));
        *client = fresh;
        let mut state = lock(&self.state);
        state.session = None;
        if let Some(session) = session {
            remember_session(&mut state, session);
        }
        Ok(previous)
    }
}

/// Dropping the sender ends the forwarder once it has sent the rest, so
/// every notification goes out before the answer.
async fn finish_progress(slot: &Slot, forwarder: Option<tokio::task::JoinHandle<()>>) {
    lock(slot).take();
    if let Some(task) = forwarder {
        let _ = task.await;
    }
}

fn log_verbose(verbose: bool, ev: &Event) {
    if verbose {
        // Stderr only: stdout carries the protocol. These lines never hold
        // a token.
        if let Some(line) = verbose_line(ev) {
            eprintln!("{line}");
        }
    }
}

/// The `-v` line for a status or a note: one printable line (a note may
/// carry a caller-given path or the server's words).
fn verbose_line(ev: &Event) -> Option<String> {
    match ev {
        Event::Status(line) | Event::Note(line) => Some(format!(
            "nemo mcp: {}",
            nemo_core::ids::printable_line(line)
        )),
        _ => None,
    }
}

fn note_connected(state: &Mutex<State>, ev: &Event) {
    if let Event::Connected {
        session_id,
        task_id,
        ..
    } = ev
    {
        remember_session(
            &mut lock(state),
            SessionRef {
                session_id: session_id.clone(),
                task_id: task_id.clone(),
            },
        );
    }
}

fn remember_session(state: &mut State, session: SessionRef) {
    match state
        .used
        .iter_mut()
        .find(|s| s.session_id == session.session_id)
    {
        Some(known) => {
            if session.task_id.is_some() {
                known.task_id = session.task_id.clone();
            }
        }
        None => state.used.push(session.clone()),
    }
    let keep_task = state
        .session
        .as_ref()
        .filter(|s| s.session_id == session.session_id && session.task_id.is_none())
        .and_then(|s| s.task_id.clone());
    state.session = Some(SessionRef {
        task_id: session.task_id.or(keep_task),
        ..session
    });
}

/// Transfer progress into whatever call or work is current.
fn transfer_sink(slot: &Slot, state: &Arc<Mutex<State>>) -> ProgressSink {
    let slot = slot.clone();
    let state = state.clone();
    Arc::new(move |kind, p| {
        if let Some(progress) = lock(&slot).as_mut() {
            progress.transfer(kind, p.done, p.total);
        }
        let current = lock(&state).current.clone();
        if let Some(cell) = current {
            let Some(total) = p.total.filter(|t| *t > 0) else {
                return;
            };
            let percent = (p.done as f64 / total as f64 * 100.0).clamp(0.0, 100.0) as u64;
            cell.send_if_modified(|w| {
                if w.last_transfer == Some((kind, percent)) {
                    return false;
                }
                w.last_transfer = Some((kind, percent));
                w.log.push(Item::Transfer {
                    kind,
                    done: p.done,
                    total: p.total,
                });
                true
            });
        }
    })
}

/// A retry whose turn was let go: refused, never sent again.
pub(crate) fn let_go(key: &str, id: &str) -> NemoError {
    NemoError::new(
        nemo_core::error::ErrorKind::BadInput,
        format!(
            "The idempotency_key `{}` started {id}, which finished long ago and is no longer \
kept: nothing was sent. Use a new key for a new message.",
            nemo_core::ids::printable_line(key)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verbose_log_shows_status_and_notes_as_one_printable_line() {
        let ev = Event::Note("Downloading to /tmp/a\nSaved /x\u{1b}[2J".into());
        assert_eq!(
            verbose_line(&ev).as_deref(),
            Some("nemo mcp: Downloading to /tmp/a Saved /x\\u{1b}[2J")
        );
        assert_eq!(
            verbose_line(&Event::Status("ok".into())).as_deref(),
            Some("nemo mcp: ok")
        );
    }

    use nemo_core::machine::RenderPhase;

    fn work(id: &str, key: Option<&str>, ended: bool) -> Arc<WorkCell> {
        Arc::new(watch::Sender::new(Work {
            id: id.into(),
            kind: WorkKind::Turn {
                message: "hi".into(),
                key: key.map(Into::into),
            },
            started: Instant::now(),
            ended_after: None,
            log: Vec::new(),
            outcome: Outcome::default(),
            steps: Vec::new(),
            end: ended.then_some(Ok(())),
            stopped: false,
            last_transfer: None,
            stop: Arc::new(Notify::new()),
        }))
    }

    #[test]
    fn finished_work_and_keys_are_bounded_and_a_let_go_key_is_never_new() {
        let mut state = State::default();
        let running = work("turn_0", None, false);
        state.works.insert("turn_0".into(), running);
        for n in 1..=MAX_FINISHED_WORKS + 40 {
            let (id, key) = (format!("turn_{n}"), format!("key-{n}"));
            state.works.insert(id.clone(), work(&id, Some(&key), true));
            state.keys.insert(key.clone(), id.clone());
            state.key_order.push_back(key);
            state.last_turn = Some(id);
            state.prune();
        }
        // The running work and the latest turn stay, with the newest
        // finished ones; the oldest finished ones are let go.
        assert!(state.works.contains_key("turn_0"));
        // (the running one, the latest turn, and MAX_FINISHED_WORKS others)
        assert_eq!(state.works.len(), MAX_FINISHED_WORKS + 2);
        assert!(!state.works.contains_key("turn_1"));
        let last = format!("turn_{}", MAX_FINISHED_WORKS + 40);
        assert!(state.works.contains_key(&last));
        // The key of a turn let go still answers: never a new turn.
        assert!(matches!(state.key_turn("key-1"), KeyTurn::LetGo(id) if id == "turn_1"));
        assert!(matches!(state.key_turn("key-100"), KeyTurn::Started(_)));
        assert!(matches!(state.key_turn("never-used"), KeyTurn::New));

        for n in 0..MAX_KEYS + 5 {
            let key = format!("k{n}");
            state.keys.insert(key.clone(), "turn_1".into());
            state.key_order.push_back(key);
        }
        state.prune();
        assert_eq!(state.keys.len(), MAX_KEYS);
        assert_eq!(state.key_order.len(), MAX_KEYS);
    }

    #[test]
    fn progress_values_only_grow_whatever_the_server_reports() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut p = Progress {
            token: ProgressToken(rmcp::model::NumberOrString::Number(1)),
            tx,
            scale: Scale::Render,
            last: 0.0,
        };
        let at = |progress: f64| Event::RenderProgress {
            id: "r1".into(),
            phase: RenderPhase::Processing,
            progress: Some(progress),
        };
        // A render status that goes back (98 then 95), a NaN, a repeat, then
        // the download: what goes out still only grows, and ends at 100.
        for event in [at(5.0), at(98.0), at(95.0), at(f64::NAN), at(98.0)] {
            p.event(&event);
        }
        p.event(&Event::RenderCompleted {
            id: "r1".into(),
            url: "https://cdn.example/r1.mp4".into(),
        });
        for done in [10, 60, 40, 100] {
            p.transfer(TransferKind::Download, done, Some(100));
        }
        p.event(&Event::Downloaded {
            id: "r1".into(),
            path: "r1.mp4".into(),
            bytes: 100,
        });
        drop(p);
        let mut values = Vec::new();
        while let Ok(n) = rx.try_recv() {
            values.push(n.progress);
        }
        assert_eq!(values, [4.5, 88.2, 90.0, 91.0, 96.0, 100.0]);
    }
}
