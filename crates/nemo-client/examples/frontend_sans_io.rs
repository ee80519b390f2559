//! A frontend that drives the sans-IO [`Session`] by hand: one blocking loop
//! of `poll_event` → `poll_transmit` → `poll_timeout`, answers fed back with
//! `handle_*`, time passed in as a value. Walked through in
//! `docs/FRONTENDS.md`.
//!
//! The loop has no async and no runtime. The simulator it talks to is async,
//! so `Frontend::block_on` runs each transport call on a small current-thread
//! tokio runtime: that one helper is the only place tokio appears, and a
//! blocking frontend with a blocking HTTP client would have none.
//!
//! `cargo run -p nemo-client --example frontend_sans_io`

use std::error::Error;
use std::path::{Path, PathBuf};

use nemo_client::{
    journal, new_client_id, random_seed, remember, Leases, MemoryStore, Remember, Store,
};
use nemo_core::api::file_part;
use nemo_core::driver::JournalFn;
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, Config, Event, ExportOptions, Mode, RequestId, Session};
use nemo_core::time::Instant;
use nemo_core::transport::{DownloadOptions, StreamResponse, Transport};
use nemo_core::wire::{find_header, Response};
use nemo_mock::{InProcess, MockConfig};

/// How many times faster than real time this frontend's clock runs: as fast
/// as the simulator's world (`MockConfig::fast`, time scale 0.01). Against
/// the real service it is 1.
const SPEED: f64 = 100.0;

/// Everything a blocking frontend holds.
struct Frontend {
    session: Session,
    /// The transport: the in-process simulator.
    mock: InProcess,
    runtime: tokio::runtime::Runtime,
    /// The origin of the machine's time.
    started: std::time::Instant,
    /// An event stream being read (the agent's turn), and its request.
    stream: Option<(RequestId, StreamResponse)>,
    /// What is remembered between runs, and the render journal.
    store: MemoryStore,
    journal: JournalFn,
    /// Renders leased while a command waits; given back when it ends.
    leases: Leases,
}

impl Frontend {
    /// Time as the machine sees it: a value passed in, never read by it.
    fn now(&self) -> Instant {
        Instant::from_origin(self.started.elapsed().mul_f64(SPEED))
    }

    /// The one place async code runs: a transport call, to its end.
    fn block_on<F: std::future::Future>(&self, call: F) -> F::Output {
        self.runtime.block_on(call)
    }

    /// Runs one command to its end; returns its events.
    fn run(&mut self, command: Command) -> Result<Vec<Event>, NemoError> {
        let id = self.session.command(self.now(), command);
        let mut events = Vec::new();
        loop {
            // 1. Events first: a render is announced before its submission
            //    is handed out, so that it is written down before it leaves.
            while let Some(event) = self.session.poll_event() {
                self.keep(&event);
                show(&event);
                match event {
                    Event::Finished { command, result } if command == id => {
                        // Nothing waits for its renders any more.
                        self.leases.release_all(&self.store);
                        return result.map(|()| events);
                    }
                    event => events.push(event),
                }
            }
            // 2. An open event stream: the next chunk (deadlines are checked
            //    between chunks; a socket would use a read timeout).
            if let Some((rid, mut stream)) = self.stream.take() {
                if self.session.poll_timeout().is_some_and(|t| t <= self.now()) {
                    self.session.handle_timeout(self.now());
                }
                if !self.session.is_in_flight(rid) {
                    continue; // the machine stopped listening: drop the stream
                }
                let chunk = self.block_on(stream.body.next_chunk());
                let now = self.now();
                match chunk {
                    Some(Ok(bytes)) => {
                        self.session.handle_stream_chunk(now, rid, &bytes);
                        self.stream = Some((rid, stream));
                    }
                    Some(Err(e)) => self.session.handle_stream_end(now, rid, Err(e)),
                    None => self.session.handle_stream_end(now, rid, Ok(())),
                }
                continue;
            }
            // 3. A request to carry out.
            if let Some(tx) = self.session.poll_transmit() {
                self.carry_out(tx.id, &tx.request, tx.mode);
                continue;
            }
            // 4. Nothing to send: sleep until the next deadline.
            let Some(deadline) = self.session.poll_timeout() else {
                let why = "the session stopped without finishing the command";
                return Err(NemoError::new(ErrorKind::Protocol, why));
            };
            std::thread::sleep((deadline - self.now()).div_f64(SPEED));
            self.session.handle_timeout(self.now());
        }
    }

    /// Sends one request and feeds the answer back.
    fn carry_out(&mut self, id: RequestId, request: &nemo_core::wire::Request, mode: Mode) {
        match mode {
            Mode::Send => {
                let result = self.block_on(self.mock.send(request, None));
                match result {
                    Ok(response) => self.session.handle_response(self.now(), id, response),
                    Err(e) => self.session.handle_transport_error(self.now(), id, e),
                }
            }
            Mode::Stream => match self.block_on(self.mock.open_stream(request)) {
                Err(e) => self.session.handle_transport_error(self.now(), id, e),
                Ok(mut stream) => {
                    let kind = find_header(&stream.headers, "content-type").unwrap_or("");
                    if (200..300).contains(&stream.status) && kind.contains("event-stream") {
                        self.session.handle_stream_open(self.now(), id);
                        self.stream = Some((id, stream));
                        return;
                    }
                    // An error answered instead of a stream: read it whole.
                    let mut body = Vec::new();
                    while let Some(Ok(chunk)) = self.block_on(stream.body.next_chunk()) {
                        body.extend_from_slice(&chunk);
                    }
                    let (status, headers) = (stream.status, stream.headers);
                    let response = Response {
                        status,
                        headers,
                        body,
                    };
                    self.session.handle_response(self.now(), id, response);
                }
            },
            Mode::Download {
                dest,
                overwrite,
                expected_size,
            } => {
                let options = DownloadOptions {
                    overwrite,
                    expected_size,
                };
                let result = self.block_on(self.mock.download(request, &dest, options, None));
                self.session.handle_download(self.now(), id, result);
            }
        }
    }

    /// The store's rules: a render is journaled before it is submitted (a
    /// render that cannot be written down is withdrawn); the identity, the
    /// token and the session are kept for the next run.
    fn keep(&mut self, event: &Event) {
        if let Event::RenderStarting { id, .. } = event {
            if let Err(why) = (self.journal)(event) {
                self.session.handle_journal_failure(self.now(), id, &why);
            }
        }
        let keep = Remember {
            last_session: true,
            client_id: true,
        };
        if let Err(e) = remember(&self.store, self.mock.url(), keep, event) {
            eprintln!("not saved: {e}");
        }
    }
}

/// Shows an event to the user.
fn show(event: &Event) {
    match event {
        Event::Status(line) | Event::Note(line) => eprintln!("{line}"),
        Event::AgentText { text, .. } => println!("agent: {text}"),
        Event::RenderProgress {
            progress: Some(p), ..
        } => eprintln!("rendering… {p:.0}%"),
        Event::Downloaded { path, bytes, .. } => eprintln!("saved {} ({bytes} B)", path.display()),
        _ => {} // a frontend ignores what it does not know
    }
}

/// The whole session; returns the saved video and the agent's words.
pub(crate) fn run(dir: &Path) -> Result<(PathBuf, String), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mock = runtime.block_on(async { InProcess::new(MockConfig::fast()) })?;
    let store = MemoryStore::new();
    // One client id per install, made once and kept in the store (a
    // `FileStore` for a real frontend): the service gives one free token per
    // client id per week, so a new id every run, or one id shared by every
    // install, both go wrong. (`ensure_identity` does this under a lock when
    // several processes share a store.)
    let client_id = store.client_id().unwrap_or_else(new_client_id);
    store.save_client_id(&client_id)?;
    let config = Config {
        client_id,
        seed: random_seed(),
        ..Config::default()
    };
    let leases = Leases::new();
    let mut frontend = Frontend {
        session: Session::new(config),
        journal: journal(store.clone(), mock.url(), &leases),
        leases,
        mock,
        runtime,
        started: std::time::Instant::now(),
        stream: None,
        store,
    };

    frontend.run(Command::Connect)?;
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/sample.mp4");
    let files = vec![file_part(&clip, std::fs::metadata(&clip)?.len())?];
    frontend.run(Command::Upload {
        files,
        urls: vec![],
    })?;
    let turn = frontend.run(Command::Instruct("add the title \"Hand Made\"".into()))?;
    let words = turn.iter().filter_map(|e| match e {
        Event::AgentText { text, .. } => Some(text.as_str()),
        _ => None,
    });
    let words = words.collect::<Vec<_>>().join("\n");
    let out = dir.join("hand-made.mp4");
    let export = ExportOptions {
        download: true,
        out: Some(out.clone()),
        ..Default::default()
    };
    frontend.run(Command::Export(export))?;
    // The render was journaled before it was submitted, and dropped from
    // the journal when it ended.
    if !frontend.store.jobs()?.is_empty() {
        return Err("the finished render is still in the journal".into());
    }
    Ok((out, words))
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (video, _words) = run(dir.path())?;
    println!("{} bytes of video", std::fs::metadata(video)?.len());
    Ok(())
}
