//! The pieces every command shares: the environment (PROTOCOL.md §1), the
//! config directory, the transport, and [`Client`] — one session driven
//! over the transport, with its events reported and Ctrl-C handled.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use nemo_core::api::{DEFAULT_API_URL, DEFAULT_WEB_URL};
use nemo_core::driver::Driver;
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, Config, Credential, Event, SessionRef};
use nemo_core::secret::Secret;
use nemo_core::transport::Transport;
use nemo_har::Recorder;
use nemo_http::{HttpConfig, HttpTransport};

use crate::cli::{Cli, Global};
use crate::clock::ScaledClock;
use crate::output::Output;
use crate::report::{Persist, Reporter};
use crate::skill::{self, Skill};
use crate::store::{self, Store};

/// The `--record` file and its recorder, saved when the process ends.
static RECORDING: OnceLock<(PathBuf, Arc<Recorder<dyn Transport>>)> = OnceLock::new();

/// Runs a parsed command line to its exit code.
pub(crate) fn run(cli: Cli) -> ExitCode {
    let out = Arc::new(Output::new(cli.global.json, cli.global.verbose));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&NemoError::new(
                ErrorKind::BadInput,
                format!("cannot start: {e}"),
            ));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(crate::commands::exec(cli, out.clone()));
    // Background tasks (a simulator, a progress tick) end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    if let Some((path, recorder)) = RECORDING.get() {
        // Whatever happened, the exchanges so far are saved (redacted).
        match recorder.save(path) {
            Ok(()) => out.info(&format!("Recorded the session to {}", path.display())),
            Err(e) => {
                out.error(&NemoError::new(
                    ErrorKind::BadInput,
                    format!("Could not save the recording to {}: {e}", path.display()),
                ));
                if result.is_ok() {
                    return ExitCode::from(1);
                }
            }
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 0 success, 1 permanent, 2 transient (safe to retry), 130 interrupted.
pub(crate) fn exit_code(e: &NemoError) -> u8 {
    if e.kind == ErrorKind::Cancelled {
        130
    } else if e.is_retryable() {
        2
    } else {
        1
    }
}

/// Which session a command works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionChoice {
    /// `--session ID`, else the last one, else a new one.
    ContinueOrNew,
    /// `--session ID`, else the last one, else an error (nothing to show).
    Existing,
    /// `--session ID`, else a new one.
    NewUnlessGiven,
    /// None needed.
    NotNeeded,
}

/// The environment and the config directory, resolved once per run.
#[derive(Clone)]
pub(crate) struct App {
    /// Global flags.
    pub(crate) global: Global,
    /// The printer.
    pub(crate) out: Arc<Output>,
    /// The config directory.
    pub(crate) store: Store,
    /// The skill flavour.
    pub(crate) skill: Skill,
    /// `NEMO_API_URL`.
    pub(crate) api_url: String,
    web_url: String,
    user_token: Option<Secret>,
    client_id_env: Option<String>,
    transport: Arc<dyn Transport>,
    /// The recorder, with `--record`.
    recorder: Option<Arc<Recorder<dyn Transport>>>,
    seed: Option<u64>,
    time_scale: Option<f64>,
    claim_links: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl App {
    /// The app for the real service (or whatever `NEMO_API_URL` names).
    pub(crate) fn from_env(global: &Global, out: Arc<Output>) -> Result<App, NemoError> {
        let api_url = env("NEMO_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let store = Store::at(store::default_dir()?);
        Self::build(global, out, store, api_url)
    }

    /// The app for an explicit API and config directory (the demo).
    pub(crate) fn build(
        global: &Global,
        out: Arc<Output>,
        store: Store,
        api_url: String,
    ) -> Result<App, NemoError> {
        let skill = skill::find(global.skill.as_deref())?;
        let api_url = api_url.trim_end_matches('/').to_owned();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!("NEMO_API_URL must start with http:// or https:// (got `{api_url}`)."),
            ));
        }
        let transport = HttpTransport::new(HttpConfig::new(api_url.clone())).map_err(|e| {
            NemoError::new(
                ErrorKind::Network,
                format!("Cannot set up the HTTP client: {e}"),
            )
        })?;
        let user_token = env("NEMO_TOKEN").map(Secret::new);
        let mut transport: Arc<dyn Transport> = Arc::new(transport);
        let mut recorder = None;
        if let Some(path) = &global.record {
            let rec: Arc<Recorder<dyn Transport>> = Arc::new(Recorder::new(
                transport.clone(),
                api_url.clone(),
                Arc::new(nemo_http::SystemClock::new()),
            ));
            if let Some(token) = &user_token {
                rec.add_secret(token.expose());
            }
            // The first recorder of the process is the one saved at exit.
            let _ = RECORDING.set((path.clone(), rec.clone()));
            transport = rec.clone();
            recorder = Some(rec);
        }
        Ok(App {
            global: global.clone(),
            out,
            store,
            skill,
            web_url: env("NEMO_WEB_URL").unwrap_or_else(|| DEFAULT_WEB_URL.to_owned()),
            user_token,
            client_id_env: env("NEMO_CLIENT_ID"),
            api_url,
            transport,
            recorder,
            seed: None,
            time_scale: None,
            claim_links: true,
        })
    }

    /// Cuts the app off the user's environment for the offline demo: no
    /// `NEMO_TOKEN`, a fixed client id and seed (the same run every time),
    /// the simulator's speed, no browser links to a simulator that is gone.
    pub(crate) fn offline(mut self, seed: u64, time_scale: f64) -> App {
        self.user_token = None;
        self.client_id_env = Some(format!("00000000-0000-4000-8000-{seed:012}"));
        self.seed = Some(seed);
        self.time_scale = Some(time_scale);
        self.claim_links = false;
        self
    }

    /// The same app printing to `out`.
    pub(crate) fn with_output(mut self, out: Arc<Output>) -> App {
        self.out = out;
        self
    }

    /// True when a token is at hand (`NEMO_TOKEN` or a cached one).
    pub(crate) fn has_token(&self) -> bool {
        self.user_token.is_some() || self.store.token(&self.api_url).is_some()
    }

    /// The session to use, per the global flags and `choice`.
    pub(crate) fn session_ref(
        &self,
        choice: SessionChoice,
    ) -> Result<Option<SessionRef>, NemoError> {
        if choice == SessionChoice::NotNeeded {
            return Ok(None);
        }
        if let Some(id) = &self.global.session {
            let task_id = self
                .store
                .last_session(&self.api_url)
                .filter(|s| &s.session_id == id)
                .and_then(|s| s.task_id);
            return Ok(Some(SessionRef {
                session_id: id.clone(),
                task_id,
            }));
        }
        if self.global.new_session || choice == SessionChoice::NewUnlessGiven {
            return Ok(None);
        }
        match self.store.last_session(&self.api_url) {
            Some(last) => Ok(Some(SessionRef {
                session_id: last.session_id,
                task_id: last.task_id,
            })),
            None if choice == SessionChoice::Existing => Err(NemoError::new(
                ErrorKind::BadInput,
                "There is no session yet: start one with `nemo upload <FILE>`, `nemo say \"…\"` or `nemo chat` (or pass --session ID).",
            )),
            None => Ok(None),
        }
    }

    /// The session machine's configuration.
    pub(crate) fn config(&self, session: Option<SessionRef>) -> Config {
        let credential = match &self.user_token {
            Some(token) => Credential::User(token.clone()),
            None => match self.store.token(&self.api_url) {
                Some(cached) if !cached.token.is_empty() => Credential::Anonymous {
                    token: Secret::new(cached.token),
                    user_id: cached.user_id,
                },
                _ => Credential::None,
            },
        };
        let client_id = self
            .client_id_env
            .clone()
            .or_else(|| self.store.client_id())
            .unwrap_or_default();
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
                .unwrap_or(0)
        });
        Config {
            attribution: skill::attribution(self.skill),
            client_id,
            credential,
            session,
            language: self.global.lang.clone(),
            web_url: self.web_url.clone(),
            seed,
            claim_after_export: self.claim_links,
            ..Config::default()
        }
    }

    /// A client for one session.
    pub(crate) fn client(&self, session: Option<SessionRef>, persist: Persist) -> Client {
        let config = self.config(session);
        let reporter = Reporter::new(self.out.clone(), self.store.clone(), &self.api_url, persist);
        let mut driver = Driver::new(
            nemo_core::machine::Session::new(config),
            self.transport.clone(),
            crate::clock::clock(self.time_scale),
        );
        if self.out.fancy() {
            driver.on_progress(reporter.progress_sink());
        }
        Client {
            driver,
            reporter,
            recorder: self.recorder.clone(),
        }
    }

    /// A client for the session `choice` picks, remembering it as the last one.
    pub(crate) fn session_client(&self, choice: SessionChoice) -> Result<Client, NemoError> {
        let session = self.session_ref(choice)?;
        Ok(self.client(
            session,
            Persist {
                last_session: true,
                client_id: true,
            },
        ))
    }
}

/// One session over the transport.
pub(crate) struct Client {
    driver: Driver<dyn Transport, ScaledClock>,
    /// Shows and remembers what happens.
    pub(crate) reporter: Reporter,
    /// With `--record`: each command starts a page of the recording.
    recorder: Option<Arc<Recorder<dyn Transport>>>,
}

impl Client {
    /// Runs one command. The first Ctrl-C stops waiting: the request in
    /// flight is abandoned, a render keeps going on the server and stays in
    /// the job list for `nemo jobs --resume`.
    pub(crate) async fn run(&mut self, command: Command) -> Result<(), NemoError> {
        self.run_until(command, &mut |_| {}, async {
            // An error here means Ctrl-C cannot be watched: stop, as before.
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    }

    /// Runs one command, showing every event to `watch` as well as to the
    /// reporter, until it finishes or `stop` resolves. Stopping abandons the
    /// request in flight (a render keeps going on the server and stays in the
    /// job list) and ends with a [`ErrorKind::Cancelled`] error.
    pub(crate) async fn run_until(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), NemoError> {
        if let Some(recorder) = &self.recorder {
            recorder.start_command(&command);
        }
        let finished = {
            let reporter = &mut self.reporter;
            let mut sink = |ev: &Event| {
                watch(ev);
                reporter.handle(ev);
            };
            let run = self.driver.run(command, &mut sink);
            tokio::select! {
                // A command that has just finished is not reported as stopped.
                biased;
                result = run => Some(result),
                () = stop => None,
            }
        };
        if let Some(result) = finished {
            return result;
        }
        let reporter = &mut self.reporter;
        let mut stopped = None;
        let mut sink = |ev: &Event| {
            if let Event::Finished { result: Err(e), .. } = ev {
                stopped.get_or_insert_with(|| e.clone());
            }
            watch(ev);
            reporter.handle(ev);
        };
        self.driver.abort(&mut sink);
        Err(stopped.unwrap_or_else(|| NemoError::new(ErrorKind::Cancelled, "Stopped.")))
    }

    /// Reports upload and download progress to `sink` (instead of bars).
    pub(crate) fn on_progress(&mut self, sink: nemo_core::driver::ProgressSink) {
        self.driver.on_progress(sink);
    }

    /// The session id, when one is chosen or connected.
    pub(crate) fn session_id(&self) -> Option<&str> {
        self.driver.session().session_id()
    }
}
