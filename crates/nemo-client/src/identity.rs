//! The identity rules: one client id per machine, one free token per client
//! id, one shared first session, each created once by whichever process
//! comes first; and the journal hook that records a render before it is
//! submitted.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nemo_core::driver::JournalFn;
use nemo_core::error::NemoError;
use nemo_core::machine::{Command, Event, SessionRef};

use crate::store::{IdentityGuard, Job, Store, StoreError};

/// What a frontend brings to the identity rules.
#[derive(Debug, Clone, Copy)]
pub struct IdentitySetup<'a> {
    /// The API base URL (tokens and sessions are kept per API).
    pub api_url: &'a str,
    /// A user token is configured: no anonymous token (and so no client id)
    /// is needed.
    pub user_token: bool,
    /// The client id comes from the configuration, not from the store.
    pub fixed_client_id: bool,
}

/// What an operation needs before it starts (see [`ensure_identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityNeed {
    /// The client id and the token.
    TokenOnly,
    /// Those, and the last session (created once, shared by every process
    /// that continues it).
    SharedSession,
    /// Those, and a new session of this process's own (when a token has to
    /// be fetched anyway, the session comes with it).
    OwnSession,
}

/// Why [`ensure_identity`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The store could not be locked or written (a new identity per run
    /// would burn the free token a machine gets per week).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request that fetches the token or makes the session failed.
    #[error(transparent)]
    Session(NemoError),
    /// A free token was issued but the store did not keep it.
    #[error("The free token could not be saved, and this machine gets one a week.")]
    TokenNotSaved,
}

/// 64 bits from the OS's randomness (std seeds `RandomState` from it), for
/// ids and jitter that must differ between machines and runs.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// A new client id (a UUID v4 from [`random_seed`]).
pub fn new_client_id() -> String {
    nemo_core::rng::SeededRng::new(random_seed()).uuid_v4()
}

/// True when a token is at hand: the user's own, or a cached anonymous one.
pub fn has_token<S: Store + ?Sized>(store: &S, setup: IdentitySetup<'_>) -> bool {
    setup.user_token || store.token(setup.api_url).is_some()
}

/// Makes sure this machine has its identity before anything else is sent:
/// the client id and (without a user token) the free token, and, for
/// [`IdentityNeed::SharedSession`], the last session. Each is created once,
/// under [`Store::identity_guard`], by whichever process comes first; the
/// others wait and reuse them (six first runs in parallel share one token
/// and one session).
///
/// `run` drives one command on a fresh session that persists what it is
/// issued (token, client id, last session) into `store`:
/// [`Command::Connect`] (it returns the session made) or
/// [`Command::Credits`] (the token alone; it returns `None`).
///
/// Returns the session this call created, if it created one.
pub async fn ensure_identity<S, F, Fut>(
    store: &S,
    setup: IdentitySetup<'_>,
    need: IdentityNeed,
    run: F,
) -> Result<Option<SessionRef>, IdentityError>
where
    S: Store + ?Sized,
    F: FnOnce(Command) -> Fut,
    Fut: Future<Output = Result<Option<SessionRef>, NemoError>>,
{
    let missing = || {
        let token = !setup.user_token && store.token(setup.api_url).is_none();
        let session =
            need == IdentityNeed::SharedSession && store.last_session(setup.api_url).is_none();
        let client_id = !setup.user_token && !setup.fixed_client_id && store.client_id().is_none();
        (client_id, token, session)
    };
    if missing() == (false, false, false) {
        return Ok(None);
    }
    let _identity = store.identity_guard()?;
    let (client_id, token, session) = missing();
    if client_id {
        store.save_client_id(&new_client_id())?;
    }
    if !token && !session {
        return Ok(None);
    }
    let command = if session || need == IdentityNeed::OwnSession {
        Command::Connect
    } else {
        // The token alone: a balance request needs no session.
        Command::Credits
    };
    let created = run(command).await.map_err(IdentityError::Session)?;
    if token && !has_token(store, setup) {
        return Err(IdentityError::TokenNotSaved);
    }
    Ok(created)
}

/// Holds the identity lock while a first balance request fetches the free
/// token itself (no extra request), creating the client id if needed;
/// `None` when the token is at hand. Check [`has_token`] after the request:
/// a token issued but not kept is lost for a week.
pub fn identity_for_token_fetch<S: Store + ?Sized>(
    store: &S,
    setup: IdentitySetup<'_>,
) -> Result<Option<IdentityGuard>, StoreError> {
    let ready = || {
        setup.user_token
            || ((setup.fixed_client_id || store.client_id().is_some())
                && store.token(setup.api_url).is_some())
    };
    if ready() {
        return Ok(None);
    }
    let guard = store.identity_guard()?;
    if ready() {
        return Ok(None);
    }
    if !setup.fixed_client_id && store.client_id().is_none() {
        store.save_client_id(&new_client_id())?;
    }
    Ok(Some(guard))
}

/// The leases a journal hook took for renders a command waits for. The
/// command's end gives them back ([`Leases::release_all`]): the jobs stay
/// recorded, and another process (or a later resume in this one) may then
/// finish them. A lease held past its command would keep every other
/// process off a render nobody waits for any more, for as long as a
/// long-lived frontend runs.
#[derive(Debug, Clone, Default)]
pub struct Leases(Arc<Mutex<Vec<String>>>);

impl Leases {
    /// None taken yet.
    pub fn new() -> Leases {
        Leases::default()
    }

    /// Gives back every lease taken through a hook since the last call.
    pub fn release_all<S: Store + ?Sized>(&self, store: &S) {
        let taken = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        let mut waited = waited_here();
        for id in taken {
            store.release(&id);
            if let Some(i) = waited.iter().position(|w| *w == id) {
                waited.swap_remove(i);
            }
        }
    }

    /// Notes a lease this holder took (given back by
    /// [`Leases::release_all`]).
    pub(crate) fn took(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.to_owned());
        waited_here().push(id.to_owned());
    }

    /// True when some command of this process waits for render `id`. A
    /// store's lease tells processes apart, not the clients of one process
    /// that share a store: this does.
    pub fn waited_in_this_process(id: &str) -> bool {
        waited_here().iter().any(|w| w == id)
    }
}

/// The renders the commands of this process wait for (one entry per lease
/// taken through a [`Leases`]).
fn waited_here() -> std::sync::MutexGuard<'static, Vec<String>> {
    static WAITED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    WAITED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The driver's journal hook ([`nemo_core::driver::Driver::on_journal`]):
/// each render is leased to this process (noted in `leases`, to give back
/// when the command ends) and written down before its submission leaves; an
/// error stops the submission. Errors are worded by [`StoreError`]'s
/// `Display`; see [`journal_with`] to word them yourself.
pub fn journal<S: Store + 'static>(store: S, api_url: &str, leases: &Leases) -> JournalFn {
    journal_with(store, api_url, leases, |e| e.to_string())
}

/// [`journal`], with the frontend's wording of a store error.
pub fn journal_with<S, W>(store: S, api_url: &str, leases: &Leases, word: W) -> JournalFn
where
    S: Store + 'static,
    W: Fn(StoreError) -> String + Send + 'static,
{
    let api_url = api_url.to_owned();
    let leases = leases.clone();
    Box::new(move |ev| {
        let Event::RenderStarting {
            id,
            session_id,
            task_id,
            out,
        } = ev
        else {
            return Ok(());
        };
        if !store.lease(id).map_err(&word)? {
            // Another process waits for a render of this very id (a server
            // that renamed ours after another job): never take its entry.
            return Err(format!(
                "another process is already waiting for a render named {id}"
            ));
        }
        leases.took(id);
        store
            .add_job(Job {
                id: id.clone(),
                session_id: session_id.clone(),
                task_id: task_id.clone(),
                api_url: api_url.clone(),
                // A video bound for a writer (a pipe) is downloaded into a
                // private folder that goes with the process: recorded as
                // `-`, it is resumed into a folder the user names.
                out: out.as_deref().map(|p| {
                    if crate::client::is_writer_spool(p) {
                        PathBuf::from("-")
                    } else {
                        absolute(p)
                    }
                }),
                created_unix: crate::file::unix_now(),
            })
            .map_err(&word)
    })
}

/// `p` made absolute against the current folder (journal entries must not
/// depend on where a later resume runs).
pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_owned();
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_owned())
}
