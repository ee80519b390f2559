//! The config directory: what `nemo` remembers between runs.
//!
//! `NEMO_CONFIG_DIR`, else the platform's config dir + `nemovideo`
//! (`~/.config/nemovideo` on Linux, as the upstream skill does). Files:
//!
//! | file | what |
//! |---|---|
//! | `client_id` | the `X-Client-Id` for anonymous tokens (plain text, as upstream) |
//! | `tokens.json` | anonymous tokens, per API base URL |
//! | `sessions.json` | the last session, per API base URL |
//! | `jobs.json` | render jobs, written *before* the render request is sent |
//! | `history` | the `nemo chat` line history |
//! | `.lock` | held (advisory lock) while a file above is read, changed and written back, so concurrent `nemo` processes lose no entry |
//! | `.identity.lock` | held while the client id and the free token are created, so parallel first runs share one identity |
//! | `leases/<render id>.lock` | held by the process waiting for that render; the OS releases it when the process dies |
//!
//! Every file is written to a temporary file beside it (mode 0600) and
//! renamed into place, so a crash never leaves half a file; an existing file
//! readable by others is reported once. A file that cannot be read as what
//! it should hold is never overwritten: it is moved aside to
//! `<name>.corrupt-<unix time>` and reported (for the job journal, as an
//! error: the renders it held must not be forgotten silently).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::secret::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A cached anonymous token. `Debug` masks the token.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CachedToken {
    /// The token (only ever written to the 0600 cache).
    pub(crate) token: String,
    /// The anonymous user id.
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    /// When it expires (RFC 3339), as the server said.
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &nemo_core::secret::MASK)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The last session used against one API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LastSession {
    /// Session id.
    pub(crate) session_id: String,
    /// Task id, when known (needed for browser links).
    #[serde(default)]
    pub(crate) task_id: Option<String>,
}

/// A render job recorded before its request left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Job {
    /// Render id.
    pub(crate) id: String,
    /// The session it belongs to.
    pub(crate) session_id: String,
    /// Its task id, when known.
    #[serde(default)]
    pub(crate) task_id: Option<String>,
    /// The API it was sent to.
    pub(crate) api_url: String,
    /// Where it is to be downloaded, if at all.
    #[serde(default)]
    pub(crate) out: Option<PathBuf>,
    /// When it was recorded (Unix seconds).
    #[serde(default)]
    pub(crate) created_unix: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JobFile {
    jobs: Vec<Job>,
}

/// The config directory. Cheap to clone; writes are serialised within the
/// process.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
    lock: Arc<Mutex<()>>,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
    /// The leases this process holds, by render id.
    held: Arc<Mutex<BTreeMap<String, Lease>>>,
}

/// The config directory `nemo` uses: `NEMO_CONFIG_DIR`, else the platform's.
pub(crate) fn default_dir() -> Result<PathBuf, NemoError> {
    if let Some(dir) = std::env::var_os("NEMO_CONFIG_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        // Checked before anything is sent: a token fetched but not kept
        // would be lost (one free token per machine per 7 days).
        if dir.exists() && !dir.is_dir() {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!(
                    "NEMO_CONFIG_DIR ({}) is not a folder. Set NEMO_CONFIG_DIR to a folder nemo may write to.",
                    dir.display()
                ),
            ));
        }
        return Ok(dir);
    }
    dirs::config_dir().map(|d| d.join("nemovideo")).ok_or_else(|| {
        NemoError::new(
            ErrorKind::BadInput,
            "No config directory could be found for this user. Set NEMO_CONFIG_DIR to a folder nemo may write to.",
        )
    })
}

/// See [`Store::guard`]; both locks are released on drop.
struct StoreGuard<'a> {
    _local: std::sync::MutexGuard<'a, ()>,
    _file: Option<fs::File>,
}

/// Held while the identity (client id, free token, first session) is
/// created; released on drop. See [`Store::identity_guard`].
#[derive(Debug)]
pub(crate) struct IdentityGuard {
    _file: fs::File,
}

/// A render this process is waiting for: while it is held, `nemo jobs`
/// shows the render as running and `nemo jobs --resume` in another terminal
/// leaves it alone. The OS releases it when the process ends, however it
/// ends.
#[derive(Debug)]
pub(crate) struct Lease {
    _file: fs::File,
}

impl Store {
    /// The store in `dir` (created, mode 0700, on first write).
    pub(crate) fn at(dir: PathBuf) -> Store {
        Store {
            dir,
            lock: Arc::new(Mutex::new(())),
            warned: Arc::new(Mutex::new(HashSet::new())),
            held: Arc::default(),
        }
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `nemo chat` keeps its line history.
    pub(crate) fn history_path(&self) -> PathBuf {
        self.dir.join("history")
    }

    /// Holds the store for one read-modify-write: a mutex for this process
    /// and an advisory lock on `.lock` in the directory for the others (a
    /// `nemo export` in one terminal and `nemo jobs --resume` in another must
    /// not lose each other's journal entries).
    fn guard(&self) -> StoreGuard<'_> {
        // A panic while holding the lock poisons it; the data is in files,
        // so the lock itself carries nothing to distrust.
        let local = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.create_dir().ok().and_then(|()| {
            let path = self.dir.join(".lock");
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .ok()?;
            set_private(&path);
            // Best effort: a file system without locks still gets the
            // in-process mutex and atomic renames.
            file.lock().ok()?;
            Some(file)
        });
        StoreGuard {
            _local: local,
            _file: file,
        }
    }

    /// The persisted client id, if any.
    /// A damaged file (not text, or not a value that fits in a header) is
    /// moved aside with a warning and reads as absent.
    pub(crate) fn client_id(&self) -> Option<String> {
        let path = self.dir.join("client_id");
        let bytes = fs::read(&path).ok()?;
        self.check_mode(&path);
        let id = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
        if !id.is_empty() && nemo_core::ids::check_token(id).is_ok() {
            return Some(id.to_owned());
        }
        let _g = self.guard();
        if fs::read(&path).ok()? != bytes {
            // Rewritten by another process meanwhile: read it again.
            drop(_g);
            return self.client_id();
        }
        let aside = self.move_aside("client_id");
        eprintln!(
            "warning: {}",
            damaged("client_id", &path, "not a client id", aside.as_deref())
        );
        None
    }

    /// Persists the client id.
    pub(crate) fn save_client_id(&self, id: &str) -> Result<(), NemoError> {
        let _g = self.guard();
        self.write(&self.dir.join("client_id"), format!("{id}\n").as_bytes())
    }

    /// The cached anonymous token for `api_url` (a cached value that could
    /// not be sent in a header is ignored, as if absent).
    pub(crate) fn token(&self, api_url: &str) -> Option<CachedToken> {
        self.map::<CachedToken>("tokens.json")
            .remove(api_url)
            .filter(|t| nemo_core::ids::check_token(&t.token).is_ok())
    }

    /// Caches an anonymous token for `api_url`.
    pub(crate) fn save_token(
        &self,
        api_url: &str,
        token: &Secret,
        user_id: Option<String>,
        expires_at: Option<String>,
    ) -> Result<(), NemoError> {
        nemo_core::ids::check_token(token.expose()).map_err(|why| {
            NemoError::new(
                ErrorKind::Protocol,
                format!("The token was not kept: {why}."),
            )
        })?;
        let _g = self.guard();
        let mut map = self.map::<CachedToken>("tokens.json");
        map.insert(
            api_url.to_owned(),
            CachedToken {
                token: token.expose().to_owned(),
                user_id,
                expires_at,
            },
        );
        self.write_json("tokens.json", &map)
    }

    /// The last session used against `api_url`.
    pub(crate) fn last_session(&self, api_url: &str) -> Option<LastSession> {
        self.map::<LastSession>("sessions.json").remove(api_url)
    }

    /// Remembers the last session used against `api_url`.
    pub(crate) fn save_last_session(
        &self,
        api_url: &str,
        session: LastSession,
    ) -> Result<(), NemoError> {
        let _g = self.guard();
        let mut map = self.map::<LastSession>("sessions.json");
        if map.get(api_url) == Some(&session) {
            return Ok(());
        }
        map.insert(api_url.to_owned(), session);
        self.write_json("sessions.json", &map)
    }

    /// Every recorded render job. A damaged journal is moved aside and
    /// reported as an error (never read as empty, never overwritten).
    pub(crate) fn jobs(&self) -> Result<Vec<Job>, NemoError> {
        let _g = self.guard();
        self.job_file().map(|f| f.jobs)
    }

    fn job_file(&self) -> Result<JobFile, NemoError> {
        let file: JobFile = self.read_json_strict("jobs.json")?.unwrap_or_default();
        // An entry whose id could walk out of a URL or a folder is not a
        // render of ours: the journal was edited by someone else.
        if let Some(bad) = file
            .jobs
            .iter()
            .find(|j| nemo_core::ids::check_id("render id", &j.id).is_err())
        {
            let aside = self.move_aside("jobs.json");
            return Err(damaged(
                "jobs.json",
                &self.dir.join("jobs.json"),
                &nemo_core::ids::check_id("render id", &bad.id).unwrap_err(),
                aside.as_deref(),
            ));
        }
        Ok(file)
    }

    /// Records a job (replacing one with the same id). Fails when the
    /// journal cannot be read or written: the caller must not start a
    /// render it cannot record.
    pub(crate) fn add_job(&self, job: Job) -> Result<(), NemoError> {
        let _g = self.guard();
        let mut file = self.job_file()?;
        file.jobs.retain(|j| j.id != job.id);
        file.jobs.push(job);
        self.write_json("jobs.json", &file)
    }

    /// Forgets a job. `Ok(false)` when there was none with that id.
    pub(crate) fn remove_job(&self, id: &str) -> Result<bool, NemoError> {
        let _g = self.guard();
        let mut file = self.job_file()?;
        let before = file.jobs.len();
        file.jobs.retain(|j| j.id != id);
        if file.jobs.len() == before {
            return Ok(false);
        }
        self.write_json("jobs.json", &file)?;
        self.remove_lease_file(id);
        Ok(true)
    }

    /// Checks, before anything is spent, that a render could be recorded:
    /// the journal is readable (or absent) and the folder writable.
    pub(crate) fn check_journal(&self) -> Result<(), NemoError> {
        let _g = self.guard();
        let file = self.job_file()?;
        self.create_dir()?;
        let probe = tempfile::Builder::new()
            .prefix(".nemo-probe-")
            .tempfile_in(&self.dir)
            .map_err(|e| local_error(&self.dir.join("jobs.json"), e))?;
        drop(probe);
        drop(file);
        Ok(())
    }

    /// Takes the lease on render `id` for this process (kept until the job
    /// is removed or the process ends), unless another process holds it.
    /// `Ok(false)`: another live process is waiting for that render.
    pub(crate) fn lease(&self, id: &str) -> Result<bool, NemoError> {
        nemo_core::ids::check_id("render id", id)
            .map_err(|why| NemoError::new(ErrorKind::BadInput, format!("{why}.")))?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.contains_key(id) {
            return Ok(true);
        }
        let dir = self.dir.join("leases");
        self.create_dir()?;
        fs::create_dir_all(&dir).map_err(|e| local_error(&dir, e))?;
        let path = dir.join(format!("{id}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| local_error(&path, e))?;
        set_private(&path);
        match file.try_lock() {
            // A file system without locks: nobody can be told apart, so
            // behave as before leases existed.
            Ok(()) | Err(fs::TryLockError::Error(_)) => {
                held.insert(id.to_owned(), Lease { _file: file });
                Ok(true)
            }
            Err(fs::TryLockError::WouldBlock) => Ok(false),
        }
    }

    /// True when another live process holds the lease on render `id`.
    pub(crate) fn is_leased_elsewhere(&self, id: &str) -> bool {
        if nemo_core::ids::check_id("render id", id).is_err()
            || self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id)
        {
            return false;
        }
        let path = self.dir.join("leases").join(format!("{id}.lock"));
        let Ok(file) = fs::OpenOptions::new().write(true).open(&path) else {
            return false;
        };
        matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
    }

    fn remove_lease_file(&self, id: &str) {
        let lease = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if lease.is_some() && nemo_core::ids::check_id("render id", id).is_ok() {
            // Only the holder removes the file (then unlocks by dropping).
            let _ = fs::remove_file(self.dir.join("leases").join(format!("{id}.lock")));
        }
    }

    /// Holds the identity lock (blocking while another process holds it):
    /// whoever comes first creates the client id and the free token; the
    /// others wait, then find and reuse them. Fails when the config
    /// directory cannot be created or written: a new identity per run would
    /// burn the one free token this machine gets per week.
    pub(crate) fn identity_guard(&self) -> Result<IdentityGuard, NemoError> {
        self.create_dir()?;
        let path = self.dir.join(".identity.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| local_error(&path, e))?;
        set_private(&path);
        // A file system without locks still gets one identity per run.
        let _ = file.lock();
        Ok(IdentityGuard { _file: file })
    }

    fn map<T: DeserializeOwned>(&self, name: &str) -> BTreeMap<String, T> {
        match self.read_json_strict(name) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                eprintln!("warning: {e}");
                BTreeMap::new()
            }
        }
    }

    /// Reads a JSON file: `Ok(None)` when it does not exist; an error (and
    /// the file moved aside, never to be overwritten) when it is damaged.
    fn read_json_strict<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, NemoError> {
        let path = self.dir.join(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let aside = self.move_aside(name);
                return Err(damaged(name, &path, "not UTF-8 text", aside.as_deref()));
            }
            Err(e) => {
                return Err(NemoError::new(
                    ErrorKind::BadInput,
                    format!(
                        "Cannot read {}: {e}. Check the folder's permissions, or set NEMO_CONFIG_DIR to another folder.",
                        path.display()
                    ),
                ))
            }
        };
        self.check_mode(&path);
        match serde_json::from_str(&text) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let aside = self.move_aside(name);
                Err(damaged(name, &path, &e.to_string(), aside.as_deref()))
            }
        }
    }

    /// Moves a damaged file to `<name>.corrupt-<unix time>`; the new path,
    /// when the move worked.
    fn move_aside(&self, name: &str) -> Option<PathBuf> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let from = self.dir.join(name);
        for n in 0..100u32 {
            let suffix = if n == 0 {
                format!("{now}")
            } else {
                format!("{now}-{n}")
            };
            let to = self.dir.join(format!("{name}.corrupt-{suffix}"));
            if to.exists() {
                continue;
            }
            return fs::rename(&from, &to).ok().map(|()| to);
        }
        None
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), NemoError> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| local_error(&self.dir.join(name), e))?;
        text.push('\n');
        self.write(&self.dir.join(name), text.as_bytes())
    }

    /// Writes `bytes` to `path` through a 0600 temporary file and a rename.
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), NemoError> {
        self.create_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".nemo-")
            .tempfile_in(&self.dir)
            .map_err(|e| local_error(path, e))?;
        set_private(tmp.path());
        tmp.write_all(bytes).map_err(|e| local_error(path, e))?;
        tmp.as_file().sync_all().map_err(|e| local_error(path, e))?;
        tmp.persist(path).map_err(|e| local_error(path, e.error))?;
        Ok(())
    }

    fn create_dir(&self) -> Result<(), NemoError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| local_error(&self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// Warns (once per file) when a state file is readable by others.
    fn check_mode(&self, path: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let Ok(meta) = fs::metadata(path) else { return };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
                if warned.insert(path.to_owned()) {
                    eprintln!(
                        "warning: {} is readable by other users (mode {mode:o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    );
                }
            }
        }
        #[cfg(not(unix))]
        let _ = path;
    }
}

fn set_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The error for the damaged file `name` at `path`, moved to `aside`.
fn damaged(name: &str, path: &Path, why: &str, aside: Option<&Path>) -> NemoError {
    let where_now = match aside {
        Some(to) => format!(
            "It was moved to {} so that nothing in it is lost or overwritten",
            to.display()
        ),
        None => "It could not be moved aside and was left as it is".to_owned(),
    };
    let next = match name {
        "jobs.json" => "; look inside it for render ids to finish by hand (`nemo jobs` starts a new journal).",
        "tokens.json" => "; a new free token is fetched if the service allows one (one a week per machine); if it refuses, copy the token back from that file by hand.",
        "sessions.json" => "; the session ids in it can still be used with --session ID.",
        "client_id" => "; a new client id is made (a new free token may then be refused for a week).",
        _ => ".",
    };
    NemoError::new(
        ErrorKind::BadInput,
        format!("{} is damaged ({why}). {where_now}{next}", path.display()),
    )
}

fn local_error(path: &Path, e: impl std::fmt::Display) -> NemoError {
    NemoError::new(
        ErrorKind::BadInput,
        format!(
            "Cannot write {}: {e}. Check the folder's permissions, or set NEMO_CONFIG_DIR to another folder.",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_stores_on_one_directory_lose_no_job() {
        // Two stores stand for two `nemo` processes: they share no mutex,
        // only the directory (and its lock file).
        let dir = tempfile::tempdir().unwrap();
        let a = Store::at(dir.path().join("cfg"));
        let b = Store::at(dir.path().join("cfg"));
        let job = |id: String| Job {
            id,
            session_id: "s".into(),
            task_id: None,
            api_url: "http://x".into(),
            out: None,
            created_unix: 1,
        };
        std::thread::scope(|scope| {
            for (name, store) in [("a", &a), ("b", &b)] {
                scope.spawn(move || {
                    for i in 0..40 {
                        store.add_job(job(format!("render_{name}{i}"))).unwrap();
                    }
                });
            }
        });
        assert_eq!(
            a.jobs().unwrap().len(),
            80,
            "every job of both writers is kept"
        );
    }

    #[test]
    fn files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("cfg"));
        store.save_client_id("abc").unwrap();
        store
            .save_token(
                "http://x",
                &Secret::new("nmv_usr_1"),
                Some("anon_1".into()),
                None,
            )
            .unwrap();
        store
            .add_job(Job {
                id: "render_1".into(),
                session_id: "s".into(),
                task_id: None,
                api_url: "http://x".into(),
                out: None,
                created_unix: 1,
            })
            .unwrap();
        assert_eq!(store.client_id().as_deref(), Some("abc"));
        assert_eq!(store.token("http://x").unwrap().token, "nmv_usr_1");
        let shown = format!("{:?}", store.token("http://x").unwrap());
        assert!(
            !shown.contains("nmv_usr_1") && shown.contains("redacted"),
            "{shown}"
        );
        assert!(store.token("http://y").is_none());
        assert_eq!(store.jobs().unwrap().len(), 1);
        assert!(store.remove_job("render_1").unwrap());
        assert!(!store.remove_job("render_1").unwrap());
        assert!(store.jobs().unwrap().is_empty());
        #[cfg(unix)]
        for name in ["client_id", "tokens.json", "jobs.json"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.dir().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            session_id: "s".into(),
            task_id: None,
            api_url: "http://x".into(),
            out: None,
            created_unix: 1,
        }
    }

    #[test]
    fn a_damaged_journal_is_moved_aside_never_overwritten() {
        for garbage in [
            "{\"jobs\":[{\"id\":\"render_1\"".as_bytes(),
            b"\xff\xfe not text",
            b"[1,2,3]",
            b"{\"jobs\":[{\"id\":\"../../x\",\"session_id\":\"s\",\"api_url\":\"http://x\"}]}",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::at(dir.path().to_owned());
            fs::write(dir.path().join("jobs.json"), garbage).unwrap();
            let e = store.jobs().unwrap_err();
            assert!(e.message.contains("damaged"), "{}", e.message);
            // Once it is aside, a new journal starts; the old one is kept.
            store.add_job(job("render_2")).unwrap();
            let aside: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("jobs.json.corrupt-")
                })
                .collect();
            assert_eq!(aside.len(), 1, "moved aside once");
            assert_eq!(
                fs::read(aside[0].path()).unwrap(),
                garbage,
                "kept byte for byte"
            );
        }
    }

    #[test]
    fn adding_to_a_damaged_journal_fails_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().to_owned());
        fs::write(dir.path().join("jobs.json"), "{not json").unwrap();
        assert!(store.add_job(job("render_2")).is_err());
        assert!(!dir.path().join("jobs.json").exists(), "never rewritten");
        let aside = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("jobs.json.corrupt-")
            })
            .unwrap();
        assert_eq!(fs::read_to_string(aside.path()).unwrap(), "{not json");
    }

    #[test]
    fn a_lease_is_exclusive_between_stores_and_released_with_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::at(dir.path().to_owned());
        let b = Store::at(dir.path().to_owned());
        a.add_job(job("render_1")).unwrap();
        assert!(a.lease("render_1").unwrap());
        assert!(a.lease("render_1").unwrap(), "a holder may ask again");
        assert!(!a.is_leased_elsewhere("render_1"));
        assert!(b.is_leased_elsewhere("render_1"));
        assert!(!b.lease("render_1").unwrap(), "the other process keeps off");
        assert!(a.remove_job("render_1").unwrap());
        assert!(!b.is_leased_elsewhere("render_1"));
        assert!(b.lease("render_1").unwrap());
        assert!(a.lease("../x").is_err());
    }

    #[test]
    fn a_token_that_cannot_be_sent_is_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().to_owned());
        assert!(store
            .save_token("http://x", &Secret::new("nmv bad\r\n"), None, None)
            .is_err());
        assert!(store.token("http://x").is_none());
        // One written by hand is ignored, not sent.
        fs::write(
            dir.path().join("tokens.json"),
            r#"{"http://x":{"token":"a b"}}"#,
        )
        .unwrap();
        assert!(store.token("http://x").is_none());
    }
}
