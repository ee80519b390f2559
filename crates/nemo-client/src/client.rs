//! [`Client`]: one session against the NemoVideo API, over tokio, that
//! applies the store's rules itself, with typed calls, events as a
//! [`Stream`](futures_util::Stream), cancellation, and the render jobs'
//! resume.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use nemo_clock::TokioClock;
use nemo_core::api::{Attribution, UploadedFile, DEFAULT_API_URL, DEFAULT_WEB_URL};
use nemo_core::driver::{Driver, JournalFn, ProgressSink};
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{
    Command, Config, Credential, Credits, Event, ExportOptions, LinkKind, Session, SessionRef,
};
use nemo_core::route::UserInput;
use nemo_core::secret::Secret;
use nemo_core::time::Clock;
use nemo_core::transport::Transport;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::identity::{journal_with, new_client_id, random_seed, Leases};
use crate::inputs::{check_folder, check_output, OutputProblem, Upload};
use crate::memory::MemoryStore;
use crate::remember::{remember, NotSaved, Remember};
use crate::store::{Job, SessionRecord, Store, StoreError, StoreFile};
use crate::turn::{Exported, Timeline, Turn};

/// Turns a store error into the words the journal's refusal carries (a
/// frontend may add its own advice).
pub type JournalWords = Arc<dyn Fn(StoreError) -> String + Send + Sync>;

/// Builds a [`Client`] (see [`Client::builder`]).
pub struct ClientBuilder {
    api_url: String,
    web_url: String,
    store: Option<Arc<dyn Store>>,
    transport: Option<Arc<dyn Transport>>,
    user_token: Option<Secret>,
    client_id: Option<String>,
    seed: Option<u64>,
    session: Option<SessionRef>,
    attribution: Option<Attribution>,
    language: Option<String>,
    claim_after_export: bool,
    time_scale: f64,
    remember_session: bool,
    journal_words: Option<JournalWords>,
    text_deltas: bool,
    transfer_events: bool,
    session_required: bool,
}

/// Where an export puts the finished video (see [`ExportTo`]'s
/// constructors and [`Client::export`]).
pub struct ExportTo {
    target: Target,
    overwrite: bool,
}

enum Target {
    /// Render and wait; no download.
    Nowhere,
    File(PathBuf),
    Folder(PathBuf),
    Writer(Box<dyn AsyncWrite + Unpin + Send>),
}

impl std::fmt::Debug for ExportTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Nowhere => "nowhere".to_owned(),
            Target::File(p) => format!("file {}", p.display()),
            Target::Folder(p) => format!("folder {}", p.display()),
            Target::Writer(_) => "a writer".to_owned(),
        };
        f.debug_struct("ExportTo")
            .field("target", &target)
            .field("overwrite", &self.overwrite)
            .finish()
    }
}

impl ExportTo {
    /// Save as `path` (checked before anything is spent; an existing file
    /// is kept unless [`ExportTo::overwrite`]).
    pub fn file(path: impl Into<PathBuf>) -> ExportTo {
        ExportTo {
            target: Target::File(path.into()),
            overwrite: false,
        }
    }

    /// Save as `<render id>.mp4` in `dir`.
    pub fn folder(dir: impl Into<PathBuf>) -> ExportTo {
        ExportTo {
            target: Target::Folder(dir.into()),
            overwrite: false,
        }
    }

    /// Write the video into `writer` (a socket, a buffer, an HTTP
    /// response). It is downloaded to a private temporary file first —
    /// checked, complete — and only then copied, so the writer never gets
    /// half a video or an error page.
    pub fn writer(writer: impl AsyncWrite + Unpin + Send + 'static) -> ExportTo {
        ExportTo {
            target: Target::Writer(Box::new(writer)),
            overwrite: false,
        }
    }

    /// Render and wait, without downloading (the result has the URL).
    pub fn render_only() -> ExportTo {
        ExportTo {
            target: Target::Nowhere,
            overwrite: false,
        }
    }

    /// Replace a regular file already at the target (never a folder, link
    /// or device).
    pub fn overwrite(mut self, yes: bool) -> ExportTo {
        self.overwrite = yes;
        self
    }
}

/// How one recorded render job went in [`Client::resume_jobs`].
#[derive(Debug)]
#[non_exhaustive]
pub enum JobResult {
    /// Finished: downloaded (or completed, for a job without download).
    Finished(Exported),
    /// Left alone, and why.
    Skipped(SkipReason),
    /// Not tried: its file cannot be saved where it goes (it stays
    /// recorded; a frontend says how to pick another place).
    CannotSave(OutputProblem),
    /// Failed; still recorded unless the render failed on the server.
    Failed(NemoError),
}

/// What [`Client::resume_jobs`] is doing, as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobProgress<'a> {
    /// A job is about to be finished with this command (its lease taken).
    Starting {
        /// The job.
        job: &'a Job,
        /// The command that finishes it.
        command: &'a Command,
    },
    /// An event of that job's command.
    Event {
        /// The job.
        job: &'a Job,
        /// The event.
        event: &'a Event,
    },
    /// A job ended (finished, skipped, not tried or failed).
    Ended {
        /// The job.
        job: &'a Job,
        /// How.
        result: &'a JobResult,
    },
}

/// Why [`Client::resume_jobs`] left a job alone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// It was sent to another API URL (this one).
    OtherApi(String),
    /// Another live process is waiting for it.
    Leased,
    /// Another process finished it meanwhile.
    FinishedElsewhere,
}

/// Options of [`Client::resume_jobs`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ResumeJobs {
    /// Save every download into this folder (keeping each job's file name)
    /// instead of where each job was to save.
    pub dir: Option<PathBuf>,
    /// Replace regular files already where a job saves.
    pub overwrite: bool,
    /// Only this render (by id); `None`: every recorded one.
    pub only: Option<String>,
}

impl ResumeJobs {
    /// Each job where it was to save, never replacing a file.
    pub fn new() -> ResumeJobs {
        ResumeJobs::default()
    }

    /// Save into `dir` instead.
    pub fn into_folder(mut self, dir: impl Into<PathBuf>) -> ResumeJobs {
        self.dir = Some(dir.into());
        self
    }

    /// Replace regular files already there.
    pub fn overwrite(mut self, yes: bool) -> ResumeJobs {
        self.overwrite = yes;
        self
    }

    /// Only the render `id`.
    pub fn only(mut self, id: impl Into<String>) -> ResumeJobs {
        self.only = Some(id.into());
        self
    }
}

/// Everything a client was built from, to make another one for a recorded
/// job's own session.
struct Template {
    transport: Arc<dyn Transport>,
    /// The session's configuration (its credential and session aside).
    config: Config,
    user_token: Option<Secret>,
    seeded: bool,
    transfer_events: bool,
    time_scale: f64,
    journal_words: Option<JournalWords>,
}

/// One session against the API: typed calls, with the token, the client
/// id, the last session and the render journal kept in its [`Store`].
///
/// ```no_run
/// # async fn demo() -> Result<(), nemo_core::error::NemoError> {
/// use nemo_client::{Client, ExportTo, FileStore, Upload};
///
/// let mut client = Client::builder()
///     .store(FileStore::at("/tmp/my-frontend"))
///     .build()?;
/// client.upload(&Upload::new().file("clip.mp4")?).await?;
/// let turn = client.instruct("add lo-fi music at 35%").await?;
/// println!("{}", turn.text());
/// let video = client.export(ExportTo::folder("/tmp")).await?;
/// println!("saved {:?}", video.path);
/// # Ok(()) }
/// ```
pub struct Client {
    driver: Driver<dyn Transport, TokioClock>,
    store: Arc<dyn Store>,
    api_url: String,
    /// Renders the running command leased; given back when it ends.
    leases: Leases,
    keep: Remember,
    unsaved: Vec<NotSaved>,
    subscribers: Vec<Subscriber>,
    /// Transfer progress, passed on to the clients of recorded jobs.
    progress: Option<ProgressSink>,
    /// The session was named by the user (see
    /// [`ClientBuilder::session_required`]).
    session_required: bool,
    /// The free token the session holds (from the store, or issued to it).
    token_seen: Option<String>,
    /// The seed the session was made with.
    seed: u64,
    template: Arc<Template>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_url", &self.api_url)
            .field("store", &self.store)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.api_url)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The session's events as a [`Stream`](futures_util::Stream) (see
/// [`Client::events`]): every event of every command from the moment it
/// was made, in order. It ends when the client is dropped, or early when
/// its reader fell too far behind ([`EventStream::lagged`]).
#[derive(Debug)]
pub struct EventStream {
    events: mpsc::UnboundedReceiver<Event>,
    /// Events, and their bytes, sent and not taken yet.
    behind: Arc<Behind>,
    lagged: Arc<AtomicBool>,
}

/// What a reader has not taken yet: events, and (roughly) their bytes.
#[derive(Debug, Default)]
struct Behind {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

/// Roughly the memory an event holds: its text, when it carries the
/// agent's or the server's words, and a fixed amount for the rest.
fn weight(event: &Event) -> usize {
    256 + match event {
        Event::AgentText { text, .. } | Event::AgentTextDelta { text } => text.len(),
        Event::Status(text) | Event::Note(text) => text.len(),
        _ => 0,
    }
}

impl EventStream {
    /// True when the stream ended early: its reader fell more events behind
    /// than the stream holds, and it was let go rather than let grow (a
    /// server can send events without end). Its events so far are whole
    /// and in order; [`Client::session`], [`Client::timeline`] and the
    /// calls' own results still tell the state.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Relaxed)
    }
}

impl futures_util::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let next = self.events.poll_recv(cx);
        if let Poll::Ready(Some(event)) = &next {
            self.behind.events.fetch_sub(1, Ordering::Relaxed);
            self.behind
                .bytes
                .fetch_sub(weight(event), Ordering::Relaxed);
        }
        next
    }
}

/// How many events an [`EventStream`] from [`Client::events`] holds for a
/// reader that is behind. A stream's events are handed over as they are
/// read, many to one network chunk with no pause between them for the
/// reader to run: the room is for such bursts (a reader that keeps up is
/// never let go), and bounds the memory of one that does not read.
pub const EVENTS_BUFFER: usize = 1 << 16;

/// The bytes (roughly: the text the events carry) an [`EventStream`]
/// holds for a reader that is behind, whatever the number of events.
pub const EVENTS_BUFFER_BYTES: usize = 64 << 20;

/// The sending side of an [`EventStream`].
#[derive(Clone)]
struct Subscriber {
    events: mpsc::UnboundedSender<Event>,
    behind: Arc<Behind>,
    capacity: usize,
    lagged: Arc<AtomicBool>,
}

impl Subscriber {
    /// Passes `event` on; false when the stream is gone or let go (its
    /// reader is [`EventStream::lagged`] behind).
    fn pass(&self, event: &Event) -> bool {
        if self.lagged.load(Ordering::Relaxed) {
            // Let go already (by a job's client sharing it).
            return false;
        }
        let bytes = weight(event);
        if self.behind.events.load(Ordering::Relaxed) >= self.capacity
            || self.behind.bytes.load(Ordering::Relaxed) + bytes > EVENTS_BUFFER_BYTES
        {
            self.lagged.store(true, Ordering::Relaxed);
            return false;
        }
        // Counted before it is sent: the reader's count down never passes it.
        self.behind.events.fetch_add(1, Ordering::Relaxed);
        self.behind.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.events.send(event.clone()).is_ok()
    }
}

impl Client {
    /// A builder with safe defaults: the service's API
    /// ([`DEFAULT_API_URL`]), an in-memory store, a client id kept in the
    /// store (made from the OS's randomness on first use), a random seed,
    /// the HTTP transport, real time.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            api_url: DEFAULT_API_URL.to_owned(),
            web_url: DEFAULT_WEB_URL.to_owned(),
            store: None,
            transport: None,
            user_token: None,
            client_id: None,
            seed: None,
            session: None,
            attribution: None,
            language: None,
            claim_after_export: true,
            time_scale: 1.0,
            remember_session: true,
            journal_words: None,
            text_deltas: false,
            transfer_events: false,
            session_required: false,
        }
    }

    /// The session's events from now on, as a stream: run the client's
    /// calls in one task and read this in another. It holds up to
    /// [`EVENTS_BUFFER`] events its reader has not taken yet; a reader
    /// further behind is let go (its stream ends, [`EventStream::lagged`]),
    /// so memory stays bounded whatever the server sends.
    pub fn events(&mut self) -> EventStream {
        self.events_buffered(EVENTS_BUFFER)
    }

    /// [`Client::events`] holding up to `capacity` events (at least one).
    pub fn events_buffered(&mut self, capacity: usize) -> EventStream {
        let (events, rx) = mpsc::unbounded_channel();
        let behind = Arc::new(Behind::default());
        let lagged = Arc::new(AtomicBool::new(false));
        self.subscribers.push(Subscriber {
            events,
            behind: behind.clone(),
            capacity: capacity.max(1),
            lagged: lagged.clone(),
        });
        EventStream {
            events: rx,
            behind,
            lagged,
        }
    }

    /// Reports upload and download progress to `sink` as it happens.
    pub fn on_progress(&mut self, sink: ProgressSink) {
        self.progress = Some(sink.clone());
        self.driver.on_progress(sink);
    }

    /// The credit balance.
    pub async fn credits(&mut self) -> Result<Credits, NemoError> {
        self.turn(Command::Credits)
            .await?
            .credits
            .ok_or_else(|| missing("credit balance"))
    }

    /// The timeline of the session's draft (a session is made if there is
    /// none).
    pub async fn timeline(&mut self) -> Result<Timeline, NemoError> {
        self.turn(Command::Timeline)
            .await?
            .timeline
            .ok_or_else(|| missing("timeline"))
    }

    /// A message, routed by intent as a person would mean it: "export"
    /// renders and saves `<render id>.mp4` in the current folder, "how
    /// many credits" reads the balance, anything else goes to the agent.
    pub async fn say(&mut self, text: &str) -> Result<Turn, NemoError> {
        self.say_with(UserInput::text(text)).await
    }

    /// [`Client::say`] with attachments.
    pub async fn say_with(&mut self, input: UserInput) -> Result<Turn, NemoError> {
        self.turn(Command::Message(input)).await
    }

    /// Text sent to the agent as it is (never routed).
    pub async fn instruct(&mut self, text: &str) -> Result<Turn, NemoError> {
        self.turn(Command::Instruct(text.to_owned())).await
    }

    /// Uploads files, bytes and media URLs (all checked when they were
    /// added to `upload`).
    pub async fn upload(&mut self, upload: &Upload) -> Result<Vec<UploadedFile>, NemoError> {
        let (files, urls) = upload.parts();
        if files.is_empty() && urls.is_empty() {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                "Nothing to upload: the upload has no file and no URL.",
            ));
        }
        Ok(self.turn(Command::Upload { files, urls }).await?.uploaded)
    }

    /// Renders the draft, waits, and delivers the video to `to`. The target
    /// is checked before anything is spent; the render is journaled before
    /// it is submitted, so a process that dies meanwhile leaves it for
    /// [`Client::resume_jobs`].
    pub async fn export(&mut self, to: ExportTo) -> Result<Exported, NemoError> {
        self.export_until(to, &mut |_| {}, std::future::pending())
            .await
    }

    /// [`Client::export`], showing every event to `watch` as it happens and
    /// stopping when `stop` resolves (see [`Client::run_until`]).
    pub async fn export_until(
        &mut self,
        to: ExportTo,
        watch: &mut (dyn FnMut(&Event) + Send),
        stop: impl Future<Output = ()>,
    ) -> Result<Exported, NemoError> {
        self.deliver(to, None, Command::Export, watch, stop).await
    }

    /// Waits for a render submitted earlier (by id) and delivers it.
    pub async fn resume(&mut self, render_id: &str, to: ExportTo) -> Result<Exported, NemoError> {
        render_id_arg(render_id)?;
        let id = render_id.to_owned();
        let command = move |options: ExportOptions| Command::ResumeRender {
            id: id.clone(),
            options: ExportOptions {
                render_id: None,
                ..options
            },
        };
        self.deliver(
            to,
            Some(render_id.to_owned()),
            command,
            &mut |_| {},
            std::future::pending(),
        )
        .await
    }

    /// Checks the target, runs the command the options make, and hands the
    /// file over as the target asks.
    async fn deliver(
        &mut self,
        to: ExportTo,
        known_id: Option<String>,
        command: impl Fn(ExportOptions) -> Command,
        watch: &mut (dyn FnMut(&Event) + Send),
        stop: impl Future<Output = ()>,
    ) -> Result<Exported, NemoError> {
        self.store.check_journal().map_err(store_error)?;
        let overwrite = to.overwrite;
        // The render id is chosen here when the file name depends on it.
        let id = known_id.unwrap_or_else(|| new_render_id(self.driver.clock().unix_ms()));
        let (options, writer, spool) = match to.target {
            Target::Nowhere => (
                ExportOptions {
                    render_id: Some(id.clone()),
                    download: false,
                    out: None,
                    overwrite,
                },
                None,
                None,
            ),
            Target::File(path) => {
                check_output(Some(&path), overwrite)?;
                (options_to(&id, path, overwrite), None, None)
            }
            Target::Folder(dir) => {
                check_folder(&dir)?;
                let path = dir.join(format!("{}.mp4", nemo_core::ids::file_stem(&id)));
                check_output(Some(&path), overwrite)?;
                (options_to(&id, path, overwrite), None, None)
            }
            Target::Writer(writer) => {
                let spool = tempfile::Builder::new()
                    .prefix(WRITER_SPOOL)
                    .tempdir()
                    .map_err(|e| {
                        NemoError::new(
                            ErrorKind::BadInput,
                            format!("Cannot make a temporary folder for the download: {e}."),
                        )
                    })?;
                let path = spool
                    .path()
                    .join(format!("{}.mp4", nemo_core::ids::file_stem(&id)));
                (options_to(&id, path, false), Some(writer), Some(spool))
            }
        };
        let mut turn = Turn::default();
        let mut see = |ev: &Event| {
            turn.see(ev);
            watch(ev);
        };
        self.run_until(command(options), &mut see, stop).await?;
        let mut exported = Exported::of(&turn, &id);
        if let Some(mut writer) = writer {
            let Some(path) = exported.path.take() else {
                return Err(missing("downloaded video"));
            };
            let copy = async {
                let mut file = tokio::fs::File::open(&path).await?;
                let n = tokio::io::copy(&mut file, &mut writer).await?;
                writer.flush().await?;
                Ok::<u64, std::io::Error>(n)
            };
            let n = match copy.await {
                Ok(n) => n,
                Err(e) => {
                    // The render has left the journal (it was downloaded):
                    // the file is all there is, so it is kept, and said where.
                    let kept =
                        spool.map(|dir| dir.keep().join(path.file_name().unwrap_or_default()));
                    return Err(NemoError::new(
                        ErrorKind::BadInput,
                        format!(
                            "The video {} was downloaded but could not be written out ({e}); it is kept at {}.",
                            exported.render_id,
                            kept.unwrap_or(path).display()
                        ),
                    ));
                }
            };
            exported.bytes = Some(n);
        }
        Ok(exported)
    }

    /// Cancels a render on the server.
    pub async fn cancel_render(&mut self, render_id: &str) -> Result<(), NemoError> {
        render_id_arg(render_id)?;
        self.turn(Command::CancelRender {
            id: render_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// A browser link that opens the project in the web app (it never
    /// carries the token).
    pub async fn claim_link(&mut self) -> Result<String, NemoError> {
        self.turn(Command::ClaimLink)
            .await?
            .link(LinkKind::Claim)
            .map(str::to_owned)
            .ok_or_else(|| missing("project link"))
    }

    /// Finishes every render recorded in the store's journal for this API
    /// (or only [`ResumeJobs::only`]): waits for each and downloads it where
    /// it was to go (or into [`ResumeJobs::dir`]). A job another live
    /// process is waiting for is left alone (its lease), and so is one that
    /// another process finished meanwhile (read again under the lease); one
    /// that failed on the server is forgotten; any other failure leaves it
    /// recorded for later. `watch` is told what happens as it happens. When
    /// `stop` resolves, the job in progress stays recorded (its render keeps
    /// going on the server) and the call ends with an
    /// [`ErrorKind::Cancelled`] error.
    pub async fn resume_jobs(
        &mut self,
        options: &ResumeJobs,
        watch: &mut (dyn FnMut(JobProgress<'_>) + Send),
        stop: impl Future<Output = ()>,
    ) -> Result<Vec<(Job, JobResult)>, NemoError> {
        let jobs: Vec<Job> = self
            .store
            .jobs()
            .map_err(store_error)?
            .into_iter()
            .filter(|j| options.only.as_ref().is_none_or(|id| *id == j.id))
            .collect();
        if let Some(dir) = &options.dir {
            check_folder(dir)?;
        }
        let mut stop = std::pin::pin!(stop);
        let mut results = Vec::new();
        for job in jobs {
            let result = self.resume_job(&job, options, watch, stop.as_mut()).await;
            if let JobResult::Failed(e) = &result {
                if e.kind == ErrorKind::Cancelled {
                    return Err(e.clone());
                }
            }
            watch(JobProgress::Ended {
                job: &job,
                result: &result,
            });
            results.push((job, result));
        }
        Ok(results)
    }

    async fn resume_job(
        &mut self,
        job: &Job,
        options: &ResumeJobs,
        watch: &mut (dyn FnMut(JobProgress<'_>) + Send),
        stop: impl Future<Output = ()>,
    ) -> JobResult {
        if job.api_url != self.api_url {
            return JobResult::Skipped(SkipReason::OtherApi(job.api_url.clone()));
        }
        // Another client of this process (sharing the store, so sharing
        // its lease) may be exporting it right now.
        if Leases::waited_in_this_process(&job.id) {
            return JobResult::Skipped(SkipReason::Leased);
        }
        // A lease held elsewhere is waited out for up to 200 ms: on a
        // thread of its own, not the runtime's.
        let (store, id) = (self.store.clone(), job.id.clone());
        let leased = tokio::task::spawn_blocking(move || store.lease(&id))
            .await
            .unwrap_or(Ok(false));
        match leased {
            Ok(true) => self.leases.took(&job.id),
            Ok(false) => return JobResult::Skipped(SkipReason::Leased),
            Err(e) => return JobResult::Failed(store_error(e)),
        }
        // Read again under the lease: another process may have finished
        // (and forgotten) it since the list was read.
        let still = self
            .store
            .jobs()
            .map(|now| now.iter().any(|j| j.id == job.id))
            .unwrap_or(true);
        if !still {
            self.leases.release_all(&self.store);
            return JobResult::Skipped(SkipReason::FinishedElsewhere);
        }
        let out = match (&options.dir, &job.out) {
            (Some(dir), Some(out)) => Some(in_folder(dir, out, &job.id)),
            (_, out) => out.clone(),
        };
        if out.as_deref() == Some(Path::new("-")) {
            // Bound for a writer that is gone: only a folder can take it.
            self.leases.release_all(&self.store);
            return JobResult::CannotSave(OutputProblem::NotAFileName(PathBuf::from("-")));
        }
        if let Some(path) = &out {
            if let Err(p) = check_output(Some(path), options.overwrite) {
                self.leases.release_all(&self.store);
                return JobResult::CannotSave(p);
            }
        }
        let command = Command::ResumeRender {
            id: job.id.clone(),
            options: ExportOptions {
                render_id: None,
                download: out.is_some(),
                out,
                overwrite: options.overwrite,
            },
        };
        watch(JobProgress::Starting {
            job,
            command: &command,
        });
        let mut client = self.job_client(job);
        if let Some(sink) = &self.progress {
            client.on_progress(sink.clone());
        }
        // Shared, not moved: a resume dropped half-way keeps them.
        client.subscribers = self.subscribers.clone();
        let mut turn = Turn::default();
        let result = client
            .run_until(
                command,
                &mut |event| {
                    turn.see(event);
                    watch(JobProgress::Event { job, event });
                },
                stop,
            )
            .await;
        self.unsaved.append(&mut client.unsaved);
        // A stream let go during the job ends now, not at the next event.
        self.subscribers
            .retain(|s| !s.lagged.load(Ordering::Relaxed) && !s.events.is_closed());
        // Done waiting for it, whatever happened (a finished job is gone).
        self.leases.release_all(&self.store);
        match result {
            Ok(()) => JobResult::Finished(Exported::of(&turn, &job.id)),
            Err(e) => {
                if e.kind == ErrorKind::RenderFailed {
                    let _ = self.store.remove_job(&job.id);
                }
                JobResult::Failed(e)
            }
        }
    }

    /// A client for a recorded job's own session, not remembered as the
    /// last session.
    fn job_client(&self, job: &Job) -> Client {
        let session = SessionRef {
            session_id: job.session_id.clone(),
            task_id: job.task_id.clone(),
        };
        let seed = if self.template.seeded {
            self.template.config.seed.wrapping_add(1)
        } else {
            random_seed()
        };
        Client::from_template(
            self.template.clone(),
            self.store.clone(),
            &self.api_url,
            Some(session),
            seed,
            Remember {
                last_session: false,
                client_id: true,
            },
        )
    }

    /// Runs one command and gathers what its events said.
    pub async fn turn(&mut self, command: Command) -> Result<Turn, NemoError> {
        let mut turn = Turn::default();
        self.run(command, &mut |ev| turn.see(ev)).await?;
        Ok(turn)
    }

    /// Runs any command, showing every event to `watch` (and to the
    /// [`Client::events`] streams); what the events leave in the store is
    /// kept there (see [`remember`]).
    pub async fn run(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run_until(command, watch, std::future::pending()).await
    }

    /// [`Client::run`] until `stop` resolves (a Ctrl-C, a closed browser
    /// tab, a cancelled task): the request in flight is abandoned, a render
    /// keeps going on the server and stays in the journal, and the call
    /// ends with an [`ErrorKind::Cancelled`] error.
    pub async fn run_until(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
        stop: impl Future<Output = ()>,
    ) -> Result<(), NemoError> {
        self.take_newer_token();
        let mut stop = std::pin::pin!(stop);
        let result = self.run_once(command.clone(), watch, stop.as_mut()).await;
        match &result {
            // Refused a free token because another client or process got
            // this machine's meanwhile: go on with that one, once. (Nothing
            // else was sent: the token comes first.)
            Err(e)
                if matches!(
                    e.detail,
                    Some(nemo_core::error::ErrorDetail::FreeTokenRefused)
                ) && self.take_newer_token() =>
            {
                self.run_once(command, watch, stop).await
            }
            _ => result,
        }
    }

    async fn run_once(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
        stop: impl Future<Output = ()>,
    ) -> Result<(), NemoError> {
        // Nothing waits for this command's renders once it ends, even when
        // its future is dropped halfway: the leases it took go back.
        let _give_back = GiveBack {
            leases: self.leases.clone(),
            store: self.store.clone(),
        };
        // What a session is about: the first message sent in it.
        let title = match &command {
            Command::Message(input) => Some(input.text.clone()),
            Command::Instruct(text) => Some(text.clone()),
            _ => None,
        };
        let store = &self.store;
        let api_url = &self.api_url;
        let unsaved = &mut self.unsaved;
        let subscribers = &mut self.subscribers;
        let keep = self.keep;
        // A session the user named is remembered only once the server has
        // answered for it (a mistyped id never replaces the last session).
        let defer = keep.last_session && self.session_required;
        let mut held: Option<Event> = None;
        let mut issued: Option<String> = None;
        let mut sink = |ev: &Event| {
            if let Event::TokenIssued { token, .. } = ev {
                issued = Some(token.expose().to_owned());
            }
            let kept = match ev {
                Event::Connected { created: false, .. } if defer => {
                    held = Some(ev.clone());
                    Ok(())
                }
                Event::Finished { result: Ok(()), .. } => match held.take() {
                    Some(connected) => remember(store, api_url, keep, &connected),
                    None => Ok(()),
                },
                _ => remember(store, api_url, keep, ev),
            };
            if let Err(e) = kept {
                unsaved.push(e);
            }
            subscribers.retain(|s| s.pass(ev));
            watch(ev);
        };
        let finished = {
            let run = self.driver.run(command, &mut sink);
            tokio::select! {
                // A command that has just finished is not reported as stopped.
                biased;
                result = run => Some(result),
                () = stop => None,
            }
        };
        let result = match finished {
            Some(result) => result,
            None => {
                let mut stopped = None;
                let mut on_abort = |ev: &Event| {
                    if let Event::Finished { result: Err(e), .. } = ev {
                        stopped.get_or_insert_with(|| e.clone());
                    }
                    sink(ev);
                };
                self.driver.abort(&mut on_abort);
                Err(stopped.unwrap_or_else(|| NemoError::new(ErrorKind::Cancelled, "Stopped.")))
            }
        };
        if issued.is_some() {
            self.token_seen = issued;
        }
        if let (Ok(()), Some(title), Some(session), true) =
            (&result, title, self.session(), self.keep.last_session)
        {
            let record = SessionRecord::new(session.session_id, session.task_id).titled(&title);
            if let Err(error) = self.store.note_session(&self.api_url, record) {
                self.unsaved.push(NotSaved {
                    file: StoreFile::RecentSessions,
                    error,
                });
            }
        }
        result
    }

    /// The session, once one is chosen or connected.
    pub fn session(&self) -> Option<SessionRef> {
        let s = self.driver.session();
        s.session_id().map(|id| SessionRef {
            session_id: id.to_owned(),
            task_id: s.task_id().map(str::to_owned),
        })
    }

    /// The session's draft as the server last sent it (JSON text, byte for
    /// byte), once a command has read it (a timeline, an edit).
    pub fn draft_json(&self) -> Option<String> {
        self.driver
            .session()
            .draft()
            .map(|d| d.raw().get().to_owned())
    }

    /// The API URL (without a trailing slash).
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// What the store could not keep since the last call (a frontend should
    /// say so: a free token that is not kept is lost for a week).
    pub fn take_unsaved(&mut self) -> Vec<NotSaved> {
        std::mem::take(&mut self.unsaved)
    }

    fn from_template(
        template: Arc<Template>,
        store: Arc<dyn Store>,
        api_url: &str,
        session: Option<SessionRef>,
        seed: u64,
        keep: Remember,
    ) -> Client {
        let session_required = template.config.session_required && session.is_some();
        let leases = Leases::new();
        let (driver, token_seen) = new_driver(
            &template,
            &store,
            api_url,
            &leases,
            session,
            seed,
            session_required,
        );
        Client {
            driver,
            store,
            api_url: api_url.to_owned(),
            leases,
            keep,
            unsaved: Vec::new(),
            subscribers: Vec::new(),
            progress: None,
            session_required,
            token_seen,
            seed,
            template,
        }
    }

    /// When another client or process has saved a newer free token than
    /// the one this session holds (or this one holds none), the session
    /// goes on with it: a client made before the machine had its token
    /// would otherwise ask for a second one, which the service refuses.
    /// Between commands only; the session (id, task) is kept.
    fn take_newer_token(&mut self) -> bool {
        if self.template.user_token.is_some() {
            return false;
        }
        let Some(cached) = self.store.token(&self.api_url) else {
            return false;
        };
        if cached.token.is_empty() || self.token_seen.as_deref() == Some(cached.token.as_str()) {
            return false;
        }
        let (mut driver, token_seen) = new_driver(
            &self.template,
            &self.store,
            &self.api_url,
            &self.leases,
            self.session(),
            self.seed.wrapping_add(1),
            self.session_required,
        );
        if let Some(sink) = &self.progress {
            driver.on_progress(sink.clone());
        }
        self.driver = driver;
        self.token_seen = token_seen;
        true
    }
}

/// Gives back the leases a command took when it ends (or is dropped).
struct GiveBack {
    leases: Leases,
    store: Arc<dyn Store>,
}

impl Drop for GiveBack {
    fn drop(&mut self) {
        self.leases.release_all(&self.store);
    }
}

/// A driver for one session of `template`, with the store's token as it is
/// now (unless the user gave one), and the token it holds.
fn new_driver(
    template: &Template,
    store: &Arc<dyn Store>,
    api_url: &str,
    leases: &Leases,
    session: Option<SessionRef>,
    seed: u64,
    session_required: bool,
) -> (Driver<dyn Transport, TokioClock>, Option<String>) {
    let mut token_seen = None;
    let credential = match &template.user_token {
        Some(token) => Credential::User(token.clone()),
        None => match store.token(api_url) {
            Some(cached) if !cached.token.is_empty() => {
                token_seen = Some(cached.token.clone());
                Credential::Anonymous {
                    token: Secret::new(cached.token),
                    user_id: cached.user_id,
                }
            }
            _ => Credential::None,
        },
    };
    let config = Config {
        session_required,
        session,
        seed,
        credential,
        ..template.config.clone()
    };
    let clock = TokioClock::scaled(template.time_scale);
    let mut driver = Driver::new(Session::new(config), template.transport.clone(), clock);
    driver.transfer_events(template.transfer_events);
    driver.on_journal(journal_hook(
        store.clone(),
        api_url,
        leases,
        template.journal_words.clone(),
    ));
    (driver, token_seen)
}

fn journal_hook(
    store: Arc<dyn Store>,
    api_url: &str,
    leases: &Leases,
    words: Option<JournalWords>,
) -> JournalFn {
    match words {
        Some(words) => journal_with(store, api_url, leases, move |e| words(e)),
        None => journal_with(store, api_url, leases, |e| store_error(e).message),
    }
}

/// A render id of the client's choosing: `render_<unix ms>_<32 random
/// bits>`, so two clients (or processes) exporting in the same millisecond
/// never pick the same one.
pub fn new_render_id(unix_ms: u64) -> String {
    format!("render_{unix_ms}_{:08x}", random_seed() as u32)
}

fn options_to(id: &str, path: PathBuf, overwrite: bool) -> ExportOptions {
    ExportOptions {
        render_id: Some(id.to_owned()),
        download: true,
        out: Some(path),
        overwrite,
    }
}

/// `dir/<the job's file name>` (`<render id>.mp4` if it had none, or was
/// bound for a writer).
fn in_folder(dir: &Path, out: &Path, id: &str) -> PathBuf {
    match out.file_name().filter(|n| *n != "-") {
        Some(name) => dir.join(name),
        None => dir.join(format!("{}.mp4", nemo_core::ids::file_stem(id))),
    }
}

/// The prefix of the private folders writer exports download into.
const WRITER_SPOOL: &str = "nemo-export-";

/// True when `path` is a file in a writer export's private folder.
pub fn is_writer_spool(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    dir.parent() == Some(std::env::temp_dir().as_path())
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(WRITER_SPOOL))
}

/// A render id given by the caller, checked as the server's are.
fn render_id_arg(id: &str) -> Result<(), NemoError> {
    nemo_core::ids::check_id("render id", id)
        .map_err(|why| NemoError::new(ErrorKind::BadInput, format!("{why}.")))
}

fn store_error(e: StoreError) -> NemoError {
    NemoError::new(e.kind(), e.to_string())
}

fn missing(what: &str) -> NemoError {
    NemoError::new(
        ErrorKind::Protocol,
        format!("The service finished without sending the {what}."),
    )
}

impl ClientBuilder {
    /// The API base URL (default [`DEFAULT_API_URL`]).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = url.into();
        self
    }

    /// The web app's URL, for project links (default [`DEFAULT_WEB_URL`]).
    pub fn web_url(mut self, url: impl Into<String>) -> Self {
        self.web_url = url.into();
        self
    }

    /// Where the identity, tokens, sessions and jobs are kept (default: in
    /// memory, forgotten at the end — a new client id every run).
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The transport (default: HTTP to the API URL).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// A user's own token, used instead of a free anonymous one.
    pub fn user_token(mut self, token: Secret) -> Self {
        self.user_token = Some(token);
        self
    }

    /// A fixed client id instead of the store's (tests that need the same
    /// run every time; two installs sharing one are refused a second free
    /// token).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// A fixed seed for ids and retry jitter instead of the OS's randomness
    /// (tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Continue this session instead of making a new one on first use.
    pub fn session(mut self, session: SessionRef) -> Self {
        self.session = Some(session);
        self
    }

    /// The session given to [`ClientBuilder::session`] was named by the
    /// user: if the server does not know it, calls fail with
    /// [`ErrorKind::SessionLost`] instead of starting another session in
    /// its place (default: a lost session is replaced by a new one, with a
    /// note).
    pub fn session_required(mut self, yes: bool) -> Self {
        self.session_required = yes;
        self
    }

    /// Who is asking (`X-Skill-*` headers); see
    /// [`flavour::attribution`](crate::flavour::attribution). Default: the
    /// default flavour, this platform.
    pub fn attribution(mut self, attribution: Attribution) -> Self {
        self.attribution = Some(attribution);
        self
    }

    /// The language the agent answers in (`en`, `zh`, …; default `en`).
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Ask for a project link after each download (default: yes).
    pub fn claim_after_export(mut self, yes: bool) -> Self {
        self.claim_after_export = yes;
        self
    }

    /// Real seconds per second of the client's waits (back-off, polling):
    /// below 1 against a sped-up simulator; anything else is real time.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Remember the session as the last one for this API (default: yes).
    pub fn remember_session(mut self, yes: bool) -> Self {
        self.remember_session = yes;
        self
    }

    /// The words for a render that cannot be journaled (default: the
    /// store's own), for a frontend that adds advice.
    pub fn journal_words(mut self, words: JournalWords) -> Self {
        self.journal_words = Some(words);
        self
    }

    /// Also deliver the agent's text piece by piece as it streams
    /// ([`Event::AgentTextDelta`]), for a chat UI that shows it growing
    /// (default: whole texts only, [`Event::AgentText`]).
    pub fn text_deltas(mut self, yes: bool) -> Self {
        self.text_deltas = yes;
        self
    }

    /// Also deliver upload and download progress as events
    /// ([`Event::Transfer`]) besides [`Client::on_progress`] (default: no).
    pub fn transfer_events(mut self, yes: bool) -> Self {
        self.transfer_events = yes;
        self
    }

    /// The in-process simulator of the service (`mock` feature): no socket,
    /// no account, nothing spent.
    #[cfg(feature = "mock")]
    pub fn simulator(self, config: nemo_mock::MockConfig) -> std::io::Result<Self> {
        let mock = nemo_mock::InProcess::new(config)?;
        let url = mock.url().to_owned();
        Ok(self.api_url(url).transport(Arc::new(mock)))
    }

    /// The client. Fails when the API URL is not http(s), the HTTP client
    /// cannot be set up, or a new client id cannot be kept.
    pub fn build(self) -> Result<Client, NemoError> {
        let api_url = self.api_url.trim_end_matches('/').to_owned();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!("The API URL must start with http:// or https:// (got `{api_url}`)."),
            ));
        }
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                nemo_http::HttpTransport::new(
                    nemo_http::HttpConfig::new(api_url.clone()).with_time_scale(self.time_scale),
                )
                .map_err(|e| {
                    NemoError::new(
                        ErrorKind::Network,
                        format!("Cannot set up the HTTP client: {e}"),
                    )
                })?,
            ),
        };
        let client_id = match self.client_id {
            Some(id) => id,
            None => match store.client_id() {
                Some(id) => id,
                None => {
                    // Made once, under the identity lock, by whoever is first.
                    let _identity = store.identity_guard().map_err(store_error)?;
                    match store.client_id() {
                        Some(id) => id,
                        None => {
                            let id = new_client_id();
                            store.save_client_id(&id).map_err(store_error)?;
                            id
                        }
                    }
                }
            },
        };
        let defaults = Config::default();
        let config = Config {
            attribution: self
                .attribution
                .or_else(|| {
                    crate::flavour::find(None)
                        .ok()
                        .map(crate::flavour::attribution)
                })
                .unwrap_or_default(),
            client_id,
            credential: Credential::None,
            session: None,
            language: self.language.unwrap_or(defaults.language.clone()),
            web_url: self.web_url.trim_end_matches('/').to_owned(),
            seed: self.seed.unwrap_or_else(random_seed),
            claim_after_export: self.claim_after_export,
            text_deltas: self.text_deltas,
            session_required: self.session_required,
            ..defaults
        };
        let seed = config.seed;
        let template = Arc::new(Template {
            transport,
            config,
            user_token: self.user_token,
            seeded: self.seed.is_some(),
            transfer_events: self.transfer_events,
            time_scale: self.time_scale,
            journal_words: self.journal_words,
        });
        Ok(Client::from_template(
            template,
            store,
            &api_url,
            self.session,
            seed,
            Remember {
                last_session: self.remember_session,
                client_id: true,
            },
        ))
    }
}
