//! Persistence as a trait: what a frontend remembers between runs, and the
//! rules every implementation keeps.

use std::fmt;
use std::path::PathBuf;

use nemo_core::secret::Secret;
use serde::{Deserialize, Serialize};

/// What a frontend remembers between runs: the client id, the anonymous
/// token and the last session per API URL, and the render-job journal with
/// its leases.
///
/// Every implementation keeps the same rules (the crate's tests run one
/// suite against [`FileStore`](crate::FileStore) and
/// [`MemoryStore`](crate::MemoryStore)):
///
/// - a token is cached only if it could be sent in a header
///   ([`nemo_core::ids::check_token`]); a stored one that could not reads as
///   absent;
/// - a render id must pass [`nemo_core::ids::check_id`] (safe in a URL and
///   under a folder) before it is journaled or names a lease; an id that is
///   not a safe file name as is (`:`, a trailing dot, a device name, from
///   the server or an older version) is a render like any other, and its
///   lease file is named by [`nemo_core::ids::file_stem`];
/// - every read-modify-write is atomic against other users of the same
///   data (other processes, for the file store): no journal entry is lost;
/// - a journal that cannot be read is an error, never read as empty and
///   never overwritten;
/// - a lease is held by one store (one process) at a time, and released when
///   its job is removed or its holder goes away.
pub trait Store: fmt::Debug + Send + Sync {
    /// The persisted client id (the `X-Client-Id` of anonymous tokens), if
    /// any.
    fn client_id(&self) -> Option<String>;

    /// Persists the client id.
    fn save_client_id(&self, id: &str) -> Result<(), StoreError>;

    /// The cached anonymous token for `api_url`.
    fn token(&self, api_url: &str) -> Option<CachedToken>;

    /// Caches an anonymous token for `api_url`; refused
    /// ([`StoreError::TokenRejected`]) when it could not be sent in a header.
    fn save_token(
        &self,
        api_url: &str,
        token: &Secret,
        user_id: Option<String>,
        expires_at: Option<String>,
    ) -> Result<(), StoreError>;

    /// The last session used against `api_url`.
    fn last_session(&self, api_url: &str) -> Option<LastSession>;

    /// Remembers the last session used against `api_url`.
    fn save_last_session(&self, api_url: &str, session: LastSession) -> Result<(), StoreError>;

    /// The sessions used from this install against `api_url`, most
    /// recently used first.
    fn sessions(&self, api_url: &str) -> Vec<SessionRecord>;

    /// Notes that a session was used (see [`SessionRecord::merge`]: a
    /// title, once known, is kept).
    fn note_session(&self, api_url: &str, record: SessionRecord) -> Result<(), StoreError>;

    /// Forgets a session: from the list, and as the last session.
    /// `Ok(false)` when it was in neither.
    fn forget_session(&self, api_url: &str, session_id: &str) -> Result<bool, StoreError>;

    /// Every recorded render job.
    fn jobs(&self) -> Result<Vec<Job>, StoreError>;

    /// Records a job (replacing one with the same id). An error means the
    /// render must not start: it could not be found again.
    fn add_job(&self, job: Job) -> Result<(), StoreError>;

    /// Forgets a job and releases its lease. `Ok(false)` when there was no
    /// job with that id.
    fn remove_job(&self, id: &str) -> Result<bool, StoreError>;

    /// Checks, before anything is spent, that a render could be recorded.
    fn check_journal(&self) -> Result<(), StoreError>;

    /// Takes the lease on render `id` for this store's holder (kept until the
    /// job is removed or the holder goes away). `Ok(false)`: someone else
    /// holds it (another live process is waiting for that render).
    fn lease(&self, id: &str) -> Result<bool, StoreError>;

    /// True when someone other than this store's holder holds the lease on
    /// render `id`.
    fn is_leased_elsewhere(&self, id: &str) -> bool;

    /// Gives up this holder's lease on render `id` (the job stays recorded):
    /// the command that waited for it has ended, so another may finish it.
    fn release(&self, id: &str);

    /// Holds the identity lock until the guard is dropped, waiting while
    /// another holder has it: whoever comes first creates the client id, the
    /// free token and the first session; the others then find and reuse
    /// them. Blocks the calling thread.
    fn identity_guard(&self) -> Result<IdentityGuard, StoreError>;
}

/// A held identity lock (see [`Store::identity_guard`]); released on drop.
pub struct IdentityGuard {
    _held: Box<dyn Send + Sync>,
}

impl IdentityGuard {
    /// A guard that releases the lock when `held` is dropped (for
    /// implementations of [`Store`]).
    pub fn new(held: impl Send + Sync + 'static) -> IdentityGuard {
        IdentityGuard {
            _held: Box::new(held),
        }
    }
}

impl fmt::Debug for IdentityGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityGuard")
    }
}

/// A cached anonymous token. `Debug` masks the token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedToken {
    /// The token.
    pub token: String,
    /// The anonymous user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// When it expires (RFC 3339), as the server said.
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &nemo_core::secret::MASK)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The last session used against one API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastSession {
    /// Session id.
    pub session_id: String,
    /// Task id, when known (needed for browser links).
    #[serde(default)]
    pub task_id: Option<String>,
}

/// A session used from this install (see [`Store::sessions`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Session id.
    pub session_id: String,
    /// Task id, when known.
    #[serde(default)]
    pub task_id: Option<String>,
    /// What it is about: the first message sent in it (shortened).
    #[serde(default)]
    pub title: Option<String>,
    /// When it was last used (Unix seconds).
    #[serde(default)]
    pub last_used_unix: u64,
}

/// How many sessions a store lists per API.
pub const SESSIONS_KEPT: usize = 50;

impl SessionRecord {
    /// A session used now.
    pub fn new(session_id: impl Into<String>, task_id: Option<String>) -> SessionRecord {
        SessionRecord {
            session_id: session_id.into(),
            task_id,
            title: None,
            last_used_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The same with a title (the first line of `text`, at most 60
    /// characters, control characters removed).
    pub fn titled(mut self, text: &str) -> SessionRecord {
        let line = nemo_core::ids::printable_line(text.lines().next().unwrap_or("").trim());
        let mut title: String = line.chars().take(60).collect();
        if line.chars().count() > 60 {
            title.push('…');
        }
        self.title = (!title.is_empty()).then_some(title);
        self
    }

    /// Puts `record` into `list` (most recent first, at most
    /// [`SESSIONS_KEPT`]): a session already there is moved to the front,
    /// keeping its title and task id when the new record has none.
    pub fn merge(list: &mut Vec<SessionRecord>, mut record: SessionRecord) {
        if let Some(i) = list.iter().position(|r| r.session_id == record.session_id) {
            let old = list.remove(i);
            record.title = old.title.or(record.title);
            record.task_id = record.task_id.or(old.task_id);
        }
        list.insert(0, record);
        list.truncate(SESSIONS_KEPT);
    }
}

/// A render job, recorded before its request left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    /// Render id.
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// Its task id, when known.
    #[serde(default)]
    pub task_id: Option<String>,
    /// The API it was sent to.
    pub api_url: String,
    /// Where it is to be downloaded, if at all.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// When it was recorded (Unix seconds).
    #[serde(default)]
    pub created_unix: u64,
}

/// One of the things a [`Store`] keeps (to word what is damaged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreFile {
    /// The client id (`client_id`).
    ClientId,
    /// The token cache (`tokens.json`).
    Tokens,
    /// The last sessions (`sessions.json`).
    Sessions,
    /// The render-job journal (`jobs.json`).
    Jobs,
    /// The sessions used (`recent_sessions.json`).
    RecentSessions,
}

impl StoreFile {
    /// Its file name in a [`FileStore`](crate::FileStore).
    pub fn file_name(self) -> &'static str {
        match self {
            StoreFile::ClientId => "client_id",
            StoreFile::Tokens => "tokens.json",
            StoreFile::Sessions => "sessions.json",
            StoreFile::Jobs => "jobs.json",
            StoreFile::RecentSessions => "recent_sessions.json",
        }
    }
}

/// Why a [`Store`] could not do what it was asked. `Display` is a default
/// wording that names no frontend; a frontend may word the data itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// What was stored could not be read as what it should hold. It was
    /// moved aside (to `moved_to`), never overwritten.
    #[error("{} is damaged ({reason}). {}.", path.display(), moved_words(moved_to.as_deref()))]
    Damaged {
        /// Which thing.
        file: StoreFile,
        /// Where it was.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// Where it is now, when it could be moved aside.
        moved_to: Option<PathBuf>,
    },
    /// Reading failed (permissions, I/O).
    #[error("Cannot read {}: {source}.", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing failed (permissions, a full disk, a missing folder).
    #[error("Cannot write {}: {source}.", path.display())]
    Write {
        /// What could not be written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The token could not be sent in a header, so it is not kept.
    #[error("The token was not kept: {reason}.")]
    TokenRejected {
        /// Why ([`nemo_core::ids::check_token`]'s words).
        reason: String,
    },
    /// A render id that may not name a lease or a file.
    #[error("{reason}.")]
    BadId {
        /// Why ([`nemo_core::ids::check_id`]'s words).
        reason: String,
    },
    /// The folder may be changed by someone else (another user owns it, or
    /// others may write to it), so nothing in it is trusted or written.
    #[error("{} is not safe to keep the token and the render journal in: {reason}.", path.display())]
    Unsafe {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another live process waits for this render (it holds its lease), so
    /// it was left as it is.
    #[error("Render {id} is being waited for by another process, so it was left as it is.")]
    Waited {
        /// The render.
        id: String,
    },
}

/// "It was moved to …" / "It could not be moved aside …".
pub(crate) fn moved_words(to: Option<&std::path::Path>) -> String {
    match to {
        Some(to) => format!(
            "It was moved to {} so that nothing in it is lost or overwritten",
            to.display()
        ),
        None => "It could not be moved aside and was left as it is".to_owned(),
    }
}

impl StoreError {
    /// The kind of [`nemo_core::error::NemoError`] this becomes.
    pub fn kind(&self) -> nemo_core::error::ErrorKind {
        use nemo_core::error::ErrorKind;
        match self {
            StoreError::TokenRejected { .. } => ErrorKind::Protocol,
            _ => ErrorKind::BadInput,
        }
    }
}

impl From<StoreError> for nemo_core::error::NemoError {
    /// The default wording ([`StoreError`]'s `Display`).
    fn from(e: StoreError) -> Self {
        nemo_core::error::NemoError::new(e.kind(), e.to_string())
    }
}

/// Something a store noticed that does not stop it (a damaged cache read
/// as absent, a file others may read). See
/// [`FileStore::on_warning`](crate::FileStore::on_warning).
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreWarning {
    /// A cache could not be read; it reads as absent (and, when damaged, was
    /// moved aside).
    Unreadable(StoreError),
    /// A file holding secrets is readable by other users.
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreWarning::Unreadable(e) => e.fmt(f),
            StoreWarning::Exposed { path, mode } => write!(
                f,
                "{} is readable by other users (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        }
    }
}

pub(crate) fn check_id(id: &str) -> Result<(), StoreError> {
    nemo_core::ids::check_id("render id", id).map_err(|reason| StoreError::BadId { reason })
}

pub(crate) fn check_token(token: &Secret) -> Result<(), StoreError> {
    nemo_core::ids::check_token(token.expose())
        .map_err(|reason| StoreError::TokenRejected { reason })
}
