//! The async driver: runs the [`Session`] machine over any [`Transport`] and
//! any [`Clock`], so frontends get a plain API (`connect`, `say`, `upload`,
//! `credits`, `timeline`, `export`, …).
//!
//! The driver owns the loop the machine's docs describe: deliver events, send
//! the next request, feed the answer back, sleep until the next deadline. It
//! is the only place where time is read and waited on. Events reach the
//! frontend through a callback as they happen (the agent's text while the
//! stream is still open); transfer progress through [`Driver::on_progress`],
//! or as [`Event::Transfer`] to the same callback when asked for with
//! [`Driver::transfer_events`].
//!
//! To stop a command (Ctrl-C), drop its future and call [`Driver::abort`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use crate::error::{ErrorKind, NemoError};
use crate::machine::{Command, Event, ExportOptions, Mode, Session, Transmit};
use crate::route::UserInput;
use crate::time::Clock;
use crate::transport::{DownloadOptions, Progress, ProgressFn, StreamResponse, Transport};
use crate::wire::{Endpoint, FilePart, Response};

pub use crate::machine::TransferKind;

/// Receives transfer progress.
pub type ProgressSink = Arc<dyn Fn(TransferKind, Progress) + Send + Sync>;

/// Writes down a render before its submission leaves: called with each
/// [`Event::RenderStarting`] before any sink sees it. An error withdraws the
/// submission (see [`Session::handle_journal_failure`]).
pub type JournalFn = Box<dyn FnMut(&Event) -> Result<(), String> + Send>;

/// The longest non-stream body read from a `/run_sse` answer.
const MAX_ERROR_BODY: usize = 1 << 20;

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls two futures, returning the first output. Written out because it is
/// ten lines and the alternative is a dependency on an executor's utilities
/// in a crate that must stay runtime-free. `a` is polled first, so a chunk
/// that is ready wins over a deadline that is due.
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// One progress report from a transport: to the [`Driver::on_progress`]
/// sink, and as [`Event::Transfer`] to the command's sink when it is lent
/// (`live`, while [`Driver::transfer_events`] is on).
fn report<S: FnMut(&Event) + Send + ?Sized>(
    progress: &Option<ProgressSink>,
    live: Option<&Mutex<&mut S>>,
    kind: TransferKind,
    p: Progress,
) {
    if let Some(sink) = progress {
        sink(kind, p);
    }
    if let Some(live) = live {
        // A sink that panicked once still gets later reports.
        let mut sink = live.lock().unwrap_or_else(|e| e.into_inner());
        sink(&Event::Transfer {
            kind,
            done: p.done,
            total: p.total,
        });
    }
}

/// Runs a session over a transport and a clock.
pub struct Driver<T: ?Sized, C> {
    session: Session,
    transport: Arc<T>,
    clock: C,
    progress: Option<ProgressSink>,
    transfer_events: bool,
    journal: Option<JournalFn>,
    /// Commands that ended while a stream was being read (the pump delivers
    /// events live; `run` still has to see the end of its command).
    ended: Vec<(crate::machine::CommandId, Result<(), NemoError>)>,
}

impl<T: Transport + ?Sized, C: Clock> Driver<T, C> {
    /// A driver for `session`.
    pub fn new(session: Session, transport: Arc<T>, clock: C) -> Self {
        Self {
            session,
            transport,
            clock,
            progress: None,
            transfer_events: false,
            journal: None,
            ended: Vec::new(),
        }
    }

    /// Records every render in a journal before it is submitted; a render
    /// that cannot be recorded is not submitted.
    pub fn on_journal(&mut self, journal: JournalFn) {
        self.journal = Some(journal);
    }

    /// Hands one event to the journal (for a render about to start) and then
    /// to `sink`. A render the journal refused never reaches the sink.
    fn deliver(&mut self, ev: &Event, sink: &mut (dyn FnMut(&Event) + Send)) {
        if let (Event::RenderStarting { id, .. }, Some(journal)) = (ev, self.journal.as_mut()) {
            if let Err(why) = journal(ev) {
                self.session
                    .handle_journal_failure(self.clock.now(), id, &why);
                return;
            }
        }
        sink(ev);
    }

    /// Reports upload and download progress to `sink`.
    pub fn on_progress(&mut self, sink: ProgressSink) {
        self.progress = Some(sink);
    }

    /// Delivers upload and download progress as [`Event::Transfer`] to the
    /// command's event sink, live, while the transfer runs (off by default:
    /// transports report often). Independent of [`Driver::on_progress`],
    /// which keeps working as it does.
    pub fn transfer_events(&mut self, on: bool) {
        self.transfer_events = on;
    }

    /// The machine, for its getters.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Stops whatever was running (after its future was dropped) and
    /// delivers the resulting events.
    pub fn abort(&mut self, sink: &mut (dyn FnMut(&Event) + Send)) {
        self.session.abort(self.clock.now());
        while let Some(ev) = self.session.poll_event() {
            self.deliver(&ev, sink);
        }
    }

    /// Runs one command to its end, delivering every event to `sink`.
    pub async fn run(
        &mut self,
        command: Command,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.session.set_unix_time(self.clock.unix_ms());
        let id = self.session.command(self.clock.now(), command);
        self.ended.clear();
        loop {
            while let Some(ev) = self.session.poll_event() {
                self.deliver(&ev, sink);
                if let Event::Finished { command, result } = ev {
                    if command == id {
                        return result;
                    }
                }
            }
            if let Some(at) = self.ended.iter().position(|(c, _)| *c == id) {
                return self.ended.swap_remove(at).1;
            }
            if let Some(tx) = self.session.poll_transmit() {
                self.carry_out(tx, sink).await;
                continue;
            }
            match self.session.poll_timeout() {
                Some(deadline) => {
                    self.clock.sleep_until(deadline).await;
                    self.session.handle_timeout(self.clock.now());
                }
                None => {
                    return Err(NemoError::new(
                        ErrorKind::Protocol,
                        "internal error: the session stopped without finishing the command",
                    ))
                }
            }
        }
    }

    async fn carry_out(&mut self, tx: Transmit, sink: &mut (dyn FnMut(&Event) + Send)) {
        let Transmit { id, request, mode } = tx;
        match mode {
            Mode::Send => {
                // The sink is lent to the progress callback for the call.
                let live = self.transfer_events.then(|| Mutex::new(&mut *sink));
                let progress = self.progress.clone();
                let report =
                    |p: Progress| report(&progress, live.as_ref(), TransferKind::Upload, p);
                let with_progress = request.endpoint == Endpoint::Upload
                    && (self.progress.is_some() || self.transfer_events);
                let report: ProgressFn<'_> = &report;
                let transport = self.transport.clone();
                let mut call = pin!(transport.send(&request, with_progress.then_some(report)));
                // The call races the machine's deadline for it: at the
                // deadline the machine gives the call up (and the call is
                // dropped); any other timer leaves it running.
                let mut fired = None;
                let result = loop {
                    let deadline = self.session.poll_timeout().filter(|d| Some(*d) != fired);
                    let next = match deadline {
                        Some(d) => race(call.as_mut(), self.clock.sleep_until(d)).await,
                        None => Either::Left(call.as_mut().await),
                    };
                    match next {
                        Either::Left(result) => break Some(result),
                        Either::Right(()) => {
                            fired = deadline;
                            self.session.handle_timeout(self.clock.now());
                            if !self.session.is_in_flight(id) {
                                break None;
                            }
                        }
                    }
                };
                let now = self.clock.now();
                match result {
                    Some(Ok(response)) => self.session.handle_response(now, id, response),
                    Some(Err(err)) => self.session.handle_transport_error(now, id, err),
                    None => {}
                }
            }
            Mode::Stream => match self.transport.open_stream(&request).await {
                Err(err) => {
                    let now = self.clock.now();
                    self.session.handle_transport_error(now, id, err);
                }
                Ok(stream) => self.pump(id, stream, sink).await,
            },
            Mode::Download {
                dest,
                overwrite,
                expected_size,
            } => {
                let live = self.transfer_events.then(|| Mutex::new(&mut *sink));
                let progress = self.progress.clone();
                let report =
                    |p: Progress| report(&progress, live.as_ref(), TransferKind::Download, p);
                let with_progress = self.progress.is_some() || self.transfer_events;
                let report: ProgressFn<'_> = &report;
                let result = self
                    .transport
                    .download(
                        &request,
                        &dest,
                        DownloadOptions {
                            overwrite,
                            expected_size,
                        },
                        with_progress.then_some(report),
                    )
                    .await;
                let now = self.clock.now();
                self.session.handle_download(now, id, result);
            }
        }
    }

    async fn pump(
        &mut self,
        id: crate::machine::RequestId,
        stream: StreamResponse,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) {
        let StreamResponse {
            status,
            headers,
            mut body,
        } = stream;
        let content_type = crate::wire::find_header(&headers, "content-type").unwrap_or("");
        let is_stream = (200..300).contains(&status)
            && (content_type.is_empty() || content_type.contains("text/event-stream"));
        if !is_stream {
            // An error answered before the stream began: read it whole (bounded).
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next_chunk().await {
                match chunk {
                    Ok(c) => {
                        let room = MAX_ERROR_BODY.saturating_sub(bytes.len());
                        bytes.extend_from_slice(&c[..c.len().min(room)]);
                        if room <= c.len() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            self.session.handle_response(
                now,
                id,
                Response {
                    status,
                    headers,
                    body: bytes,
                },
            );
            return;
        }
        self.session.handle_stream_open(self.clock.now(), id);
        loop {
            while let Some(ev) = self.session.poll_event() {
                self.deliver(&ev, sink);
                if let Event::Finished { command, result } = ev {
                    self.ended.push((command, result));
                }
            }
            if !self.session.is_in_flight(id) {
                return; // the machine stopped listening: drop the stream
            }
            let deadline = self.session.poll_timeout();
            let next = match deadline {
                Some(d) => race(body.next_chunk(), self.clock.sleep_until(d)).await,
                None => Either::Left(body.next_chunk().await),
            };
            let now = self.clock.now();
            match next {
                Either::Left(Some(Ok(chunk))) => self.session.handle_stream_chunk(now, id, &chunk),
                Either::Left(Some(Err(err))) => {
                    self.session.handle_stream_end(now, id, Err(err));
                    return;
                }
                Either::Left(None) => {
                    self.session.handle_stream_end(now, id, Ok(()));
                    return;
                }
                Either::Right(()) => self.session.handle_timeout(now),
            }
        }
    }

    // ----- the plain API -----

    /// Gets a token and a session.
    pub async fn connect(
        &mut self,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(Command::Connect, sink).await
    }

    /// A user message, routed by intent.
    pub async fn say(
        &mut self,
        input: UserInput,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(Command::Message(input), sink).await
    }

    /// Uploads files and media URLs.
    pub async fn upload(
        &mut self,
        files: Vec<FilePart>,
        urls: Vec<String>,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(Command::Upload { files, urls }, sink).await
    }

    /// The credit balance.
    pub async fn credits(
        &mut self,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(Command::Credits, sink).await
    }

    /// The timeline.
    pub async fn timeline(
        &mut self,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(Command::Timeline, sink).await
    }

    /// Renders, waits and (optionally) downloads to `out`.
    pub async fn export(
        &mut self,
        out: Option<PathBuf>,
        download: bool,
        overwrite: bool,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(
            Command::Export(ExportOptions {
                render_id: None,
                download,
                out,
                overwrite,
            }),
            sink,
        )
        .await
    }

    /// Waits for a render submitted earlier and downloads it.
    pub async fn resume(
        &mut self,
        id: String,
        out: Option<PathBuf>,
        overwrite: bool,
        sink: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        self.run(
            Command::ResumeRender {
                id,
                options: ExportOptions {
                    render_id: None,
                    download: true,
                    out,
                    overwrite,
                },
            },
            sink,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::machine::{Config, Credential};
    use crate::secret::Secret;
    use crate::time::Instant;
    use crate::transport::{DownloadOutcome, TransportError};
    use crate::wire::Request;

    /// A clock on tokio's (paused) timeline.
    struct Paused(tokio::time::Instant);

    #[async_trait::async_trait]
    impl Clock for Paused {
        fn now(&self) -> Instant {
            Instant::from_origin(self.0.elapsed())
        }
        async fn sleep_until(&self, deadline: Instant) {
            tokio::time::sleep_until(self.0 + deadline.since_origin()).await;
        }
        fn unix_ms(&self) -> u64 {
            1_795_262_134_520
        }
    }

    /// A server that never finishes an answer (a byte now and then).
    struct Silent(AtomicUsize);

    #[async_trait::async_trait]
    impl Transport for Silent {
        async fn send(
            &self,
            _: &Request,
            _: Option<ProgressFn<'_>>,
        ) -> Result<Response, TransportError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::pending().await
        }
        async fn open_stream(&self, _: &Request) -> Result<StreamResponse, TransportError> {
            std::future::pending().await
        }
        async fn download(
            &self,
            _: &Request,
            _: &Path,
            _: DownloadOptions,
            _: Option<ProgressFn<'_>>,
        ) -> Result<DownloadOutcome, TransportError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_is_given_up_at_its_deadline() {
        let config = Config {
            credential: Credential::User(Secret::new("nmv_usr_mine")),
            client_id: "client-1".into(),
            ..Config::default()
        };
        let deadline = config.request_deadline;
        let transport = Arc::new(Silent(AtomicUsize::new(0)));
        let clock = Paused(tokio::time::Instant::now());
        let mut driver = Driver::new(Session::new(config), transport.clone(), clock);
        let started = tokio::time::Instant::now();
        let err = tokio::time::timeout(deadline * 2, driver.credits(&mut |_| {}))
            .await
            .expect("the command ends by its deadline")
            .unwrap_err();
        assert_eq!(started.elapsed(), deadline);
        assert_eq!(transport.0.load(Ordering::SeqCst), 1);
        assert_eq!(err.kind, ErrorKind::Network);
        assert!(
            err.message
                .contains("no complete answer to the credits request after 5m00s"),
            "{}",
            err.message
        );
    }
}
