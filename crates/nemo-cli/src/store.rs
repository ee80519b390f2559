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
//!
//! Every file is written to a temporary file beside it (mode 0600) and
//! renamed into place, so a crash never leaves half a file; an existing file
//! readable by others is reported once.

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

impl Store {
    /// The store in `dir` (created, mode 0700, on first write).
    pub(crate) fn at(dir: PathBuf) -> Store {
        Store {
            dir,
            lock: Arc::new(Mutex::new(())),
            warned: Arc::new(Mutex::new(HashSet::new())),
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
    pub(crate) fn client_id(&self) -> Option<String> {
        let path = self.dir.join("client_id");
        let text = self.read(&path)?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }

    /// Persists the client id.
    pub(crate) fn save_client_id(&self, id: &str) -> Result<(), NemoError> {
        let _g = self.guard();
        self.write(&self.dir.join("client_id"), format!("{id}\n").as_bytes())
    }

    /// The cached anonymous token for `api_url`.
    pub(crate) fn token(&self, api_url: &str) -> Option<CachedToken> {
        self.map::<CachedToken>("tokens.json").remove(api_url)
    }

    /// Caches an anonymous token for `api_url`.
    pub(crate) fn save_token(
        &self,
        api_url: &str,
        token: &Secret,
        user_id: Option<String>,
        expires_at: Option<String>,
    ) -> Result<(), NemoError> {
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

    /// Every recorded render job.
    pub(crate) fn jobs(&self) -> Vec<Job> {
        self.read_json::<JobFile>("jobs.json")
            .unwrap_or_default()
            .jobs
    }

    /// Records a job (replacing one with the same id).
    pub(crate) fn add_job(&self, job: Job) -> Result<(), NemoError> {
        let _g = self.guard();
        let mut file = self.read_json::<JobFile>("jobs.json").unwrap_or_default();
        file.jobs.retain(|j| j.id != job.id);
        file.jobs.push(job);
        self.write_json("jobs.json", &file)
    }

    /// Forgets a job.
    pub(crate) fn remove_job(&self, id: &str) -> Result<(), NemoError> {
        let _g = self.guard();
        let mut file = self.read_json::<JobFile>("jobs.json").unwrap_or_default();
        let before = file.jobs.len();
        file.jobs.retain(|j| j.id != id);
        if file.jobs.len() == before {
            return Ok(());
        }
        self.write_json("jobs.json", &file)
    }

    fn map<T: DeserializeOwned>(&self, name: &str) -> BTreeMap<String, T> {
        self.read_json(name).unwrap_or_default()
    }

    fn read_json<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let path = self.dir.join(name);
        let text = self.read(&path)?;
        match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!(
                    "warning: ignoring {} (not valid: {e}); it will be rewritten",
                    path.display()
                );
                None
            }
        }
    }

    fn read(&self, path: &Path) -> Option<String> {
        let text = fs::read_to_string(path).ok()?;
        self.check_mode(path);
        Some(text)
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
        assert_eq!(a.jobs().len(), 80, "every job of both writers is kept");
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
        assert_eq!(store.jobs().len(), 1);
        store.remove_job("render_1").unwrap();
        assert!(store.jobs().is_empty());
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
}
