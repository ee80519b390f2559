//! The pieces every command shares: the environment (PROTOCOL.md §1), the
//! config directory, the transport, and [`Client`] — one session driven
//! over the transport, with its events reported and Ctrl-C handled.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use nemo_core::api::{DEFAULT_API_URL, DEFAULT_WEB_URL};
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, Event, SessionRef};
use nemo_core::secret::Secret;
use nemo_core::transport::Transport;
use nemo_har::Recorder;
use nemo_http::{HttpConfig, HttpTransport};

use crate::cli::{Cli, Global};
use crate::output::Output;
use crate::report::{Persist, Reporter};
use crate::store;
use nemo_client::flavour::{self as skill, Skill};
use nemo_client::{FileStore, IdentityError, IdentitySetup, Store};

/// The `--record` file and its recorder, saved when the process ends.
static RECORDING: OnceLock<(PathBuf, Arc<Recorder<dyn Transport>>)> = OnceLock::new();

/// Runs a parsed command line to its exit code.
pub(crate) fn run(cli: Cli) -> ExitCode {
    crate::words::use_chinese(cli.global.lang() == "zh");
    let out = Arc::new(Output::new(
        cli.global.json,
        cli.global.verbose,
        cli.global.quiet,
    ));
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
        // Whatever happened, the exchanges so far are saved (redacted; they
        // were streamed to a temporary file beside `path` as they happened).
        match recorder.finish() {
            Ok(()) => out.info(&crate::words::trf(
                "Recorded the session to {}",
                &[&path.display()],
            )),
            // The command's own work stands: a recording that could not be
            // placed (a file appeared under its name) is a warning, and is
            // kept beside it (`name-1.har`, else its temporary name) when it
            // was written whole.
            Err(e) => out.warn(&format!(
                "Could not save the recording to {}: {e}",
                path.display()
            )),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The config directory. Concrete, not `Arc<dyn Store>`: the CLI's
    /// messages name its folder (and `nemo chat` keeps its history there);
    /// everything in `nemo_client` it is handed to is generic over `Store`.
    pub(crate) store: FileStore,
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

impl App {
    /// The app for the real service (or whatever `NEMO_API_URL` names).
    pub(crate) fn from_env(global: &Global, out: Arc<Output>) -> Result<App, NemoError> {
        let env = nemo_client::Env::from_env();
        let api_url = env
            .api_url
            .clone()
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let store = store::open(store::default_dir(&env)?);
        Self::build(global, out, store, api_url, env)
    }

    /// The app for an explicit API and config directory (the demo).
    pub(crate) fn build(
        global: &Global,
        out: Arc<Output>,
        store: FileStore,
        api_url: String,
        env: nemo_client::Env,
    ) -> Result<App, NemoError> {
        let skill = skill::find(global.skill.as_deref())?;
        let api_url = api_url.trim_end_matches('/').to_owned();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!("NEMO_API_URL must start with http:// or https:// (got `{api_url}`)."),
            ));
        }
        // The HTTP limits run on the same (scaled) clock as everything else.
        let config =
            HttpConfig::new(api_url.clone()).with_time_scale(env.time_scale.unwrap_or(1.0));
        let transport = HttpTransport::new(config).map_err(|e| {
            NemoError::new(
                ErrorKind::Network,
                format!("Cannot set up the HTTP client: {e}"),
            )
        })?;
        let user_token = env.token.clone();
        let mut transport: Arc<dyn Transport> = Arc::new(transport);
        let mut recorder = None;
        if let Some(path) = &global.record {
            if let Some(arg) = named_elsewhere(path, std::env::args_os().skip(1)) {
                return Err(NemoError::new(
                    ErrorKind::BadInput,
                    format!(
                        "Cannot record to {}: the command also names it (`{}`), and the recording would replace that file. Give --record a file name of its own.",
                        path.display(),
                        arg.to_string_lossy()
                    ),
                ));
            }
            // Opened now, before anything is sent: a path that cannot take
            // the recording fails the command before anything is spent.
            let rec: Arc<Recorder<dyn Transport>> = Arc::new(
                Recorder::to_file(
                    transport.clone(),
                    api_url.clone(),
                    Arc::new(nemo_http::SystemClock::new()),
                    path,
                )
                .map_err(|e| {
                    let advice = if e.kind() == std::io::ErrorKind::AlreadyExists {
                        "Give --record the name of a file that does not exist yet."
                    } else {
                        "Give --record a file path in a folder you may write to."
                    };
                    NemoError::new(
                        ErrorKind::BadInput,
                        format!("Cannot record to {e}. {advice}"),
                    )
                })?,
            );
            // Every credential known now is masked from the first byte, even
            // in a body recorded before the request that would reveal it.
            if let Some(token) = &user_token {
                rec.add_secret(token.expose());
            }
            if let Some(id) = env.client_id.clone().or_else(|| store.client_id()) {
                rec.add_secret(&id);
            }
            if let Some(cached) = store.token(&api_url) {
                rec.add_secret(&cached.token);
            }
            // The first recorder of the process is the one saved at exit.
            let _ = RECORDING.set((path.clone(), rec.clone()));
            transport = rec.clone();
            recorder = Some(rec);
        }
        if global.verbose >= 2 {
            // Outermost: what is shown is what went over the wire, whatever
            // else wraps the transport.
            transport = Arc::new(crate::trace::Traced::new(transport, global.verbose));
        }
        Ok(App {
            global: global.clone(),
            out,
            store,
            skill,
            web_url: env.web_url.unwrap_or_else(|| DEFAULT_WEB_URL.to_owned()),
            user_token,
            client_id_env: env.client_id,
            api_url,
            transport,
            recorder,
            seed: None,
            time_scale: env.time_scale,
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

    /// The values in effect and where each came from (`nemo config`).
    /// A token is described, never shown; the client id is shortened.
    pub(crate) fn settings(&self) -> Vec<Setting> {
        let env_set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let from = |name: &'static str, fallback: &'static str| {
            if env_set(name) {
                name
            } else {
                fallback
            }
        };
        let short = |id: &str| format!("{}…", id.chars().take(8).collect::<String>());
        let token = if self.user_token.is_some() {
            ("your own token".to_owned(), "NEMO_TOKEN")
        } else {
            match self.store.token(&self.api_url) {
                Some(t) => (
                    match t.expires_at {
                        Some(at) => format!("a free token (expires {at})"),
                        None => "a free token".to_owned(),
                    },
                    "tokens.json",
                ),
                None => ("none yet (a free one on first use)".to_owned(), "-"),
            }
        };
        let client_id = match (&self.client_id_env, self.store.client_id()) {
            (Some(id), _) => (short(id), "NEMO_CLIENT_ID"),
            (None, Some(id)) => (short(&id), "client_id"),
            (None, None) => ("none yet (made on first use)".to_owned(), "-"),
        };
        let last = self.store.last_session(&self.api_url);
        let jobs = self.store.jobs().map_or(0, |j| j.len());
        let setting = |key, label, value: String, source| Setting {
            key,
            label,
            value,
            source,
        };
        vec![
            setting(
                "api_url",
                "API URL",
                nemo_core::ids::shown_url(&self.api_url),
                from("NEMO_API_URL", "default"),
            ),
            setting(
                "web_url",
                "Web URL",
                nemo_core::ids::shown_url(&self.web_url),
                from("NEMO_WEB_URL", "default"),
            ),
            setting("token", "Token", token.0, token.1),
            setting("client_id", "Client id", client_id.0, client_id.1),
            setting(
                "skill",
                "Skill",
                self.skill.name.to_owned(),
                match (&self.global.skill, env_set("NEMO_SKILL")) {
                    (Some(_), true) => "--skill or NEMO_SKILL",
                    (Some(_), false) => "--skill",
                    _ => "default",
                },
            ),
            setting(
                "language",
                "Language",
                self.global.lang_tag(),
                if self.global.lang.is_some() {
                    "--lang"
                } else {
                    "locale"
                },
            ),
            setting(
                "time_scale",
                "Time scale",
                self.time_scale().to_string(),
                from("NEMO_TIME_SCALE", "default"),
            ),
            setting(
                "session",
                "Session",
                last.map_or("none yet".to_owned(), |s| s.session_id),
                "sessions.json",
            ),
            setting("jobs", "Render jobs", jobs.to_string(), "jobs.json"),
        ]
    }

    /// Real seconds per second of the client's waits: the demo's, else
    /// `NEMO_TIME_SCALE`, else 1.
    pub(crate) fn time_scale(&self) -> f64 {
        self.time_scale.unwrap_or(1.0)
    }

    /// The same app printing to `out`.
    pub(crate) fn with_output(mut self, out: Arc<Output>) -> App {
        self.out = out;
        self
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
            nemo_core::ids::check_id("session id", id)
                .map_err(|why| NemoError::new(ErrorKind::BadInput, format!("--session: {why}.")))?;
            // Its task id (for browser links), if this machine has seen it.
            let task_id = self
                .store
                .last_session(&self.api_url)
                .filter(|s| &s.session_id == id)
                .and_then(|s| s.task_id)
                .or_else(|| {
                    self.store
                        .sessions(&self.api_url)
                        .into_iter()
                        .find(|s| &s.session_id == id)
                        .and_then(|s| s.task_id)
                });
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

    /// A client for one session, built by `nemo_client` from this run's
    /// environment and flags; what happens is shown by the reporter.
    pub(crate) fn client(
        &self,
        session: Option<SessionRef>,
        persist: Persist,
    ) -> Result<Client, NemoError> {
        let mut builder = nemo_client::Client::builder()
            .api_url(&self.api_url)
            .web_url(&self.web_url)
            .store(self.store.clone())
            .transport(self.transport.clone())
            .attribution(skill::attribution(self.skill))
            .language(self.global.lang_tag())
            .claim_after_export(self.claim_links)
            .time_scale(self.time_scale())
            .remember_session(persist.last_session)
            .journal_words(Arc::new(|e| store::error(e).message));
        if let Some(token) = &self.user_token {
            builder = builder.user_token(token.clone());
        }
        if let Some(id) = &self.client_id_env {
            builder = builder.client_id(id);
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        if let Some(session) = session {
            // `--session ID` is the user's word: a typo fails, it never
            // quietly becomes (and replaces) a new session.
            let named = self.global.session.as_deref() == Some(session.session_id.as_str());
            builder = builder.session(session).session_required(named);
        }
        let mut inner = builder.build()?;
        let reporter = Reporter::new(self.out.clone(), self.store.clone(), self.time_scale());
        if self.out.shows_progress() {
            inner.on_progress(reporter.progress_sink());
        }
        Ok(Client {
            inner,
            reporter,
            recorder: self.recorder.clone(),
        })
    }

    /// Everything an export needs that can be checked before anything is
    /// spent: the file can be saved at `out` (or here) and the render can
    /// be journaled. Nothing is sent.
    pub(crate) fn preflight_export(
        &self,
        out: Option<&std::path::Path>,
        download: bool,
        overwrite: bool,
        asker: crate::inputs::Asker,
    ) -> Result<(), NemoError> {
        if download {
            crate::inputs::check_out(out, overwrite, asker)?;
        }
        self.store.check_journal().map_err(store::error)?;
        self.warn_if_exported_elsewhere();
        Ok(())
    }

    /// Says so when another live `nemo` process is exporting the session
    /// this command continues: both render (and spend), so the user should
    /// know before the second one starts.
    fn warn_if_exported_elsewhere(&self) {
        let Ok(Some(session)) = self.session_ref(SessionChoice::Existing) else {
            return;
        };
        let jobs = self.store.jobs().unwrap_or_default();
        let ours: Vec<&str> = jobs
            .iter()
            .filter(|j| j.session_id == session.session_id && j.api_url == self.api_url)
            .map(|j| j.id.as_str())
            .collect();
        // Probed at once: one lease wait, not one per render.
        let leased = self.store.leased_elsewhere(ours.iter().copied());
        let running: Vec<&str> = ours.into_iter().filter(|id| leased.contains(*id)).collect();
        if !running.is_empty() {
            self.out.warn(&format!(
                "another nemo process is already exporting this session (render {}); this starts a second render. Stop with Ctrl-C to wait for that one instead (`nemo jobs`).",
                running.join(", ")
            ));
        }
    }

    /// [`App::preflight_export`] for a message that the router turns into
    /// an export ("export", "导出", "send me the video"): it saves
    /// `<render id>.mp4` in the current folder.
    pub(crate) fn preflight_message(
        &self,
        input: &nemo_core::route::UserInput,
    ) -> Result<(), NemoError> {
        let plan =
            nemo_core::route::route(input, nemo_core::route::RouteContext { has_draft: true });
        if plan.steps.contains(&nemo_core::route::Step::Export) {
            let download = plan.steps.contains(&nemo_core::route::Step::Download);
            // `say` and `chat` have no --out: the advice names what does.
            self.preflight_export(None, download, false, crate::inputs::Asker::Words)?;
        }
        Ok(())
    }

    /// Makes sure this machine has its identity before anything else is
    /// sent: the client id and (without `NEMO_TOKEN`) the free token, and,
    /// as `want` asks, the session a plain `nemo say` continues. Each
    /// is created once, under a lock, by whichever process comes first; the
    /// others wait and reuse them (six first runs in parallel share one
    /// token and one session). Returns the session this process created,
    /// if it created one. An unwritable config folder is an error here, not
    /// a new identity per run.
    pub(crate) async fn ensure_identity(
        &self,
        want: Identity,
    ) -> Result<Option<SessionRef>, NemoError> {
        let need = match want {
            Identity::SharedSession
                if self.global.session.is_none() && !self.global.new_session =>
            {
                nemo_client::IdentityNeed::SharedSession
            }
            Identity::OwnSession => nemo_client::IdentityNeed::OwnSession,
            _ => nemo_client::IdentityNeed::TokenOnly,
        };
        let persist = Persist {
            last_session: true,
            client_id: true,
        };
        let run = |command: Command| async move {
            if matches!(command, Command::Credits) {
                // The token alone, quietly: a balance request needs no session.
                let quiet = self.clone().with_output(Arc::new(self.out.muted()));
                quiet.client(None, persist)?.run(command).await?;
                return Ok(None);
            }
            let mut client = self.client(None, persist)?;
            client.run(command).await?;
            Ok(client.session_ref())
        };
        nemo_client::ensure_identity(&self.store, self.identity_setup(), need, run)
            .await
            .map_err(|e| match e {
                IdentityError::Store(e) => store::error(e),
                IdentityError::Session(e) => e,
                _ => self.token_not_saved(),
            })
    }

    /// What the identity rules need to know of this run.
    fn identity_setup(&self) -> IdentitySetup<'_> {
        IdentitySetup {
            api_url: &self.api_url,
            user_token: self.user_token.is_some(),
            fixed_client_id: self.client_id_env.is_some(),
        }
    }

    /// True when a token is at hand (`NEMO_TOKEN` or a cached one).
    pub(crate) fn has_token(&self) -> bool {
        nemo_client::has_token(&self.store, self.identity_setup())
    }

    /// The error when a fetched free token could not be kept.
    pub(crate) fn token_not_saved(&self) -> NemoError {
        NemoError::new(
            ErrorKind::BadInput,
            format!(
                "The free token could not be saved in {}, and this machine gets one a week. Make that folder writable, or set NEMO_CONFIG_DIR to a folder nemo may write to.",
                self.store.dir().display()
            ),
        )
    }

    /// Holds the identity lock while a first `nemo credits` fetches the free
    /// token itself (no extra request); `None` when the token is at hand.
    pub(crate) fn identity_for_token_fetch(
        &self,
    ) -> Result<Option<nemo_client::IdentityGuard>, NemoError> {
        nemo_client::identity_for_token_fetch(&self.store, self.identity_setup())
            .map_err(store::error)
    }

    /// [`App::session_client`] without making sure of the identity first
    /// (the MCP server, which must not send anything before its first tool
    /// call; the session machine then creates what is missing itself).
    pub(crate) fn session_client_unprepared(
        &self,
        choice: SessionChoice,
    ) -> Result<Client, NemoError> {
        let session = self.session_ref(choice)?;
        self.client(
            session,
            Persist {
                last_session: true,
                client_id: true,
            },
        )
    }

    /// A client for the session `choice` picks, remembering it as the last
    /// one. The identity comes first (see [`App::ensure_identity`]).
    pub(crate) async fn session_client(&self, choice: SessionChoice) -> Result<Client, NemoError> {
        let want = match choice {
            SessionChoice::Existing => {
                // Nothing to show: say so before anything is sent.
                self.session_ref(choice)?;
                Identity::TokenOnly
            }
            SessionChoice::ContinueOrNew => Identity::SharedSession,
            SessionChoice::NewUnlessGiven if self.global.session.is_none() => Identity::OwnSession,
            SessionChoice::NewUnlessGiven | SessionChoice::NotNeeded => Identity::TokenOnly,
        };
        let created = self.ensure_identity(want).await?;
        let session = match self.session_ref(choice)? {
            Some(s) => Some(s),
            None if choice != SessionChoice::NotNeeded => created,
            None => None,
        };
        self.client(
            session,
            Persist {
                last_session: true,
                client_id: true,
            },
        )
    }
}

/// Resolves at the first Ctrl-C: the `stop` of a command run from the
/// terminal. (If Ctrl-C cannot be watched, it resolves at once: the command
/// stops, as it always has.)
pub(crate) async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// One value in effect (see [`App::settings`]).
pub(crate) struct Setting {
    /// Its key in `--json`.
    pub(crate) key: &'static str,
    /// Its name for people.
    pub(crate) label: &'static str,
    /// Its value (a token is described, never shown).
    pub(crate) value: String,
    /// Where it came from.
    pub(crate) source: &'static str,
}

/// What a command needs of the machine's identity before it starts (see
/// [`App::ensure_identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The client id and the token.
    TokenOnly,
    /// Those, and the last session (created once, shared by every process
    /// that continues it).
    SharedSession,
    /// Those, and a new session of this process's own (when a token has to
    /// be fetched anyway, the session comes with it).
    OwnSession,
}

/// One session over the transport: a `nemo_client::Client`, its events
/// shown by the reporter (and recorded with `--record`), stopped by Ctrl-C.
pub(crate) struct Client {
    inner: nemo_client::Client,
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
        self.run_until(command, &mut |_| {}, ctrl_c()).await
    }

    /// Runs one command without showing its events (only to `watch`), for
    /// what a command reads for itself (a timeline to compare). Ctrl-C
    /// stops it.
    pub(crate) async fn run_quiet(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        let result = self.inner.run_until(command, watch, ctrl_c()).await;
        self.reporter.not_saved(self.inner.take_unsaved());
        result
    }

    /// Runs one command, showing every event to `watch` as well as to the
    /// reporter, until it finishes or `stop` resolves (see
    /// [`nemo_client::Client::run_until`]).
    pub(crate) async fn run_until(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), NemoError> {
        if let Some(recorder) = &self.recorder {
            recorder.start_command(&command);
        }
        let reporter = &mut self.reporter;
        let mut sink = |ev: &Event| {
            watch(ev);
            reporter.handle(ev);
        };
        let result = self.inner.run_until(command, &mut sink, stop).await;
        self.reporter.not_saved(self.inner.take_unsaved());
        result
    }

    /// Finishes the recorded render jobs (see
    /// [`nemo_client::Client::resume_jobs`]), each job's events shown by the
    /// reporter (and recorded with `--record`), until `stop` resolves.
    pub(crate) async fn resume_jobs(
        &mut self,
        options: &nemo_client::ResumeJobs,
        watch: &mut (dyn FnMut(&nemo_client::JobProgress<'_>) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Vec<(nemo_client::Job, nemo_client::JobResult)>, NemoError> {
        let reporter = &mut self.reporter;
        let recorder = &self.recorder;
        let mut each = |p: nemo_client::JobProgress<'_>| {
            match &p {
                nemo_client::JobProgress::Starting { command, .. } => {
                    if let Some(recorder) = recorder {
                        recorder.start_command(command);
                    }
                }
                nemo_client::JobProgress::Event { event, .. } => reporter.handle(event),
                _ => {}
            }
            watch(&p);
        };
        let result = self.inner.resume_jobs(options, &mut each, stop).await;
        self.reporter.not_saved(self.inner.take_unsaved());
        result
    }

    /// Reports upload and download progress to `sink` (instead of bars).
    pub(crate) fn on_progress(&mut self, sink: nemo_core::driver::ProgressSink) {
        self.inner.on_progress(sink);
    }

    /// The session id, when one is chosen or connected.
    pub(crate) fn session_id(&self) -> Option<String> {
        self.inner.session().map(|s| s.session_id)
    }

    /// The session, when one is chosen or connected.
    pub(crate) fn session_ref(&self) -> Option<SessionRef> {
        self.inner.session()
    }

    /// Exports to `to` (see [`nemo_client::Client::export`]), the events
    /// shown by the reporter, until Ctrl-C.
    pub(crate) async fn export_to(
        &mut self,
        to: nemo_client::ExportTo,
    ) -> Result<nemo_client::Exported, NemoError> {
        let command = Command::Export(nemo_core::machine::ExportOptions::default());
        if let Some(recorder) = &self.recorder {
            recorder.start_command(&command);
        }
        let reporter = &mut self.reporter;
        let result = self
            .inner
            .export_until(to, &mut |ev| reporter.handle(ev), ctrl_c())
            .await;
        self.reporter.not_saved(self.inner.take_unsaved());
        result
    }

    /// The draft's JSON as the server last sent it, once read.
    pub(crate) fn draft_json(&self) -> Option<String> {
        self.inner.draft_json()
    }
}

/// The value (other than `--record`'s own) that names the same file as the
/// `--record` path — the command's `--out`, an input — or the folder the
/// video is saved into when the recording is named `*.mp4` there (the
/// video may be `DIR/<render id>.mp4`). The command line is read as the
/// parser reads it (`-ov.mp4`, `-o=v.mp4`, `--out=v.mp4` are all the value
/// `v.mp4`), before anything is sent, so that no command can write its
/// recording over the file it saved or read. (On a file system that
/// ignores case, `V.mp4` and `v.mp4` are one file this does not see: the
/// recording is then kept beside it, as `name-1.har` or else under its
/// temporary name, never over the video.)
fn named_elsewhere(
    record: &std::path::Path,
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<std::ffi::OsString> {
    let target = resolved(record)?;
    let command = crate::cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(std::iter::once(std::ffi::OsString::from("nemo")).chain(args))
        .ok()?;
    let mut values = Vec::new();
    parsed_values(&command, &matches, &mut values);
    let is_video = target
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
    values.into_iter().find(|value| {
        let path = std::path::Path::new(value);
        if value.is_empty() {
            return false;
        }
        if resolved(path).is_some_and(|p| p == target) {
            return true;
        }
        // A folder the video goes into, under a name of the server's.
        is_video
            && path.is_dir()
            && std::fs::canonicalize(path).is_ok_and(|d| Some(d.as_path()) == target.parent())
    })
}

/// Every value given to an option or argument that takes one, at every
/// level of the command, `--record`'s excepted.
fn parsed_values(
    command: &clap::Command,
    matches: &clap::ArgMatches,
    out: &mut Vec<std::ffi::OsString>,
) {
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "record" || !arg.get_action().takes_values() {
            continue;
        }
        if let Ok(Some(raw)) = matches.try_get_raw(id) {
            out.extend(raw.map(std::ffi::OsStr::to_owned));
        }
    }
    if let Some((name, sub)) = matches.subcommand() {
        if let Some(command) = command.find_subcommand(name) {
            parsed_values(command, sub, out);
        }
    }
}

/// A path made absolute, its folder resolved as the OS resolves it when
/// the folder exists (links followed, then `..`: `link/../v.mp4` is in
/// the link target's parent); else `..` taken lexically. `./v.mp4`,
/// `v.mp4` and `dir/../v.mp4` are one file.
fn resolved(path: &std::path::Path) -> Option<std::path::PathBuf> {
    use std::path::{Component, PathBuf};
    let abs = std::path::absolute(path).ok()?;
    let name = abs.file_name()?.to_owned();
    if matches!(abs.components().next_back(), Some(Component::ParentDir)) {
        return None;
    }
    let parent = abs.parent()?;
    if let Ok(parent) = std::fs::canonicalize(parent) {
        return Some(parent.join(name));
    }
    // A folder that does not exist (yet): `..` taken lexically.
    let mut lexical = PathBuf::new();
    for part in parent.components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    Some(lexical.join(name))
}

#[cfg(test)]
mod tests {
    use super::named_elsewhere;
    use std::ffi::OsString;

    fn args(list: &[&str]) -> impl Iterator<Item = OsString> {
        list.iter()
            .map(OsString::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_record_path_the_command_also_names_is_found() {
        let record = std::path::Path::new("v.mp4");
        for named in [
            &["--record", "v.mp4", "run", "x", "--out", "v.mp4"][..],
            &["run", "x", "--out=./v.mp4", "--record=v.mp4"][..],
            &["--record", "v.mp4", "run", "x", "--file", "sub/../v.mp4"][..],
        ] {
            assert!(named_elsewhere(record, args(named)).is_some(), "{named:?}");
        }
        for fine in [
            &["--record", "v.mp4", "run", "x", "--out", "w.mp4"][..],
            &["--record", "v.mp4", "export"][..],
        ] {
            assert!(named_elsewhere(record, args(fine)).is_none(), "{fine:?}");
        }
    }
}
