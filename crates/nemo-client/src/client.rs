//! [`Client`]: one session against the NemoVideo API, over tokio, that
//! applies the store's rules itself.

use std::sync::Arc;

use nemo_clock::TokioClock;
use nemo_core::api::DEFAULT_API_URL;
use nemo_core::driver::Driver;
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, Config, Credential, Credits, Event, Session, SessionRef};
use nemo_core::secret::Secret;
use nemo_core::transport::Transport;

use crate::identity::{journal, new_client_id, random_seed, Leases};
use crate::memory::MemoryStore;
use crate::remember::{remember, NotSaved, Remember};
use crate::store::Store;

/// The timeline of the session's draft.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeline {
    /// One line per track and clip (`Timeline (3 tracks): …`).
    pub summary: String,
    /// True when it can be exported.
    pub ready_for_export: bool,
}

/// Builds a [`Client`] (see [`Client::builder`]).
pub struct ClientBuilder {
    api_url: String,
    store: Option<Arc<dyn Store>>,
    transport: Option<Arc<dyn Transport>>,
    user_token: Option<Secret>,
    client_id: Option<String>,
    seed: Option<u64>,
    session: Option<SessionRef>,
}

/// One session against the API: typed calls, with the token, the client
/// id, the last session and the render journal kept in its [`Store`].
///
/// ```no_run
/// # async fn demo() -> Result<(), nemo_core::error::NemoError> {
/// use nemo_client::{Client, FileStore};
///
/// let mut client = Client::builder()
///     .store(FileStore::at("/tmp/my-frontend"))
///     .build()?;
/// let credits = client.credits().await?;
/// println!("{} credits left", credits.available);
/// # Ok(()) }
/// ```
pub struct Client {
    driver: Driver<dyn Transport, TokioClock>,
    store: Arc<dyn Store>,
    api_url: String,
    /// Renders the running command leased; given back when it ends.
    leases: Leases,
    unsaved: Vec<NotSaved>,
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

impl Client {
    /// A builder with safe defaults: the service's API
    /// ([`DEFAULT_API_URL`]), an in-memory store, a client id kept in the
    /// store (made from the OS's randomness on first use), a random seed,
    /// and the HTTP transport.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            api_url: DEFAULT_API_URL.to_owned(),
            store: None,
            transport: None,
            user_token: None,
            client_id: None,
            seed: None,
            session: None,
        }
    }

    /// The credit balance.
    pub async fn credits(&mut self) -> Result<Credits, NemoError> {
        let mut found = None;
        self.run(Command::Credits, &mut |ev| {
            if let Event::Credits(c) = ev {
                found = Some(*c);
            }
        })
        .await?;
        found.ok_or_else(|| missing("credit balance"))
    }

    /// The timeline of the session's draft (a session is made if there is
    /// none).
    pub async fn timeline(&mut self) -> Result<Timeline, NemoError> {
        let mut found = None;
        self.run(Command::Timeline, &mut |ev| {
            if let Event::Timeline {
                summary,
                ready_for_export,
            } = ev
            {
                found = Some(Timeline {
                    summary: summary.clone(),
                    ready_for_export: *ready_for_export,
                });
            }
        })
        .await?;
        found.ok_or_else(|| missing("timeline"))
    }

    /// Runs any command, showing every event to `watch`; what the events
    /// leave in the store is kept there (see [`remember`]).
    pub async fn run(
        &mut self,
        command: Command,
        watch: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<(), NemoError> {
        let store = &self.store;
        let api_url = &self.api_url;
        let unsaved = &mut self.unsaved;
        let keep = Remember {
            last_session: true,
            client_id: true,
        };
        let mut sink = |ev: &Event| {
            if let Err(e) = remember(store, api_url, keep, ev) {
                unsaved.push(e);
            }
            watch(ev);
        };
        let result = self.driver.run(command, &mut sink).await;
        // Nothing waits for this command's renders any more.
        self.leases.release_all(&self.store);
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

    /// What the store could not keep since the last call (a frontend should
    /// say so: a free token that is not kept is lost for a week).
    pub fn take_unsaved(&mut self) -> Vec<NotSaved> {
        std::mem::take(&mut self.unsaved)
    }
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
                nemo_http::HttpTransport::new(nemo_http::HttpConfig::new(api_url.clone()))
                    .map_err(|e| {
                        NemoError::new(
                            ErrorKind::Network,
                            format!("Cannot set up the HTTP client: {e}"),
                        )
                    })?,
            ),
        };
        let credential = match self.user_token {
            Some(token) => Credential::User(token),
            None => match store.token(&api_url) {
                Some(cached) => Credential::Anonymous {
                    token: Secret::new(cached.token),
                    user_id: cached.user_id,
                },
                None => Credential::None,
            },
        };
        let client_id = match self.client_id {
            Some(id) => id,
            None => match store.client_id() {
                Some(id) => id,
                None => {
                    // Made once, under the identity lock, by whoever is first.
                    let _identity = store.identity_guard()?;
                    match store.client_id() {
                        Some(id) => id,
                        None => {
                            let id = new_client_id();
                            store.save_client_id(&id)?;
                            id
                        }
                    }
                }
            },
        };
        let config = Config {
            client_id,
            credential,
            session: self.session,
            seed: self.seed.unwrap_or_else(random_seed),
            ..Config::default()
        };
        let mut driver = Driver::new(Session::new(config), transport, TokioClock::new());
        let leases = Leases::new();
        driver.on_journal(journal(store.clone(), &api_url, &leases));
        Ok(Client {
            driver,
            store,
            api_url,
            leases,
            unsaved: Vec::new(),
        })
    }
}
