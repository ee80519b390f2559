//! [`FileStore`]: a [`Store`] in a folder, shared safely by processes.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nemo_core::secret::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::{
    check_id, check_token, CachedToken, IdentityGuard, Job, LastSession, SessionRecord, Store,
    StoreError, StoreFile, StoreWarning,
};

/// How warnings reach the frontend (see [`FileStore::on_warning`]).
pub type WarningFn = Arc<dyn Fn(&StoreWarning) + Send + Sync>;

/// A [`Store`] in a folder (the one the `nemo` command uses). Files:
///
/// | file | what |
/// |---|---|
/// | `client_id` | the `X-Client-Id` for anonymous tokens (plain text) |
/// | `tokens.json` | anonymous tokens, per API base URL |
/// | `sessions.json` | the last session, per API base URL |
/// | `jobs.json` | render jobs, written *before* the render request is sent |
/// | `.lock` | held (advisory lock) while a file above is read, changed and written back, so concurrent processes lose no entry |
/// | `.identity.lock` | held while the client id and the free token are created, so parallel first runs share one identity |
/// | `leases/<render id>.lock` | held by the process waiting for that render; the OS releases it when the process dies |
///
/// The folder is created with mode 0700. Every file is written to a
/// temporary file beside it (mode 0600), synced and renamed into place, so a
/// crash never leaves half a file; an existing file readable by others is
/// reported once ([`StoreWarning::Exposed`]). A file that cannot be read as
/// what it should hold is never overwritten: it is moved aside to
/// `<name>.corrupt-<unix time>` and reported (for the job journal, as an
/// error: the renders it held must not be forgotten silently).
///
/// Cheap to clone; clones share the in-process lock and the leases held.
/// Two `FileStore`s made with [`FileStore::at`] on one folder behave as two
/// processes.
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    lock: Arc<Mutex<()>>,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
    /// The leases this store holds, by render id.
    held: Arc<Mutex<BTreeMap<String, fs::File>>>,
    warn: WarningFn,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JobFile {
    jobs: Vec<Job>,
}

/// See [`FileStore::guard`]; both locks are released on drop.
struct StoreGuard<'a> {
    _local: std::sync::MutexGuard<'a, ()>,
    _file: Option<fs::File>,
}

impl FileStore {
    /// The store in `dir` (created, mode 0700, on first write). Warnings go
    /// to standard error as `warning: …` until [`FileStore::on_warning`]
    /// says otherwise.
    pub fn at(dir: impl Into<PathBuf>) -> FileStore {
        FileStore {
            dir: dir.into(),
            lock: Arc::new(Mutex::new(())),
            warned: Arc::new(Mutex::new(HashSet::new())),
            held: Arc::default(),
            warn: Arc::new(|w| eprintln!("warning: {w}")),
        }
    }

    /// The platform's folder for this user (`~/.config/nemovideo` on
    /// Linux), when it has one.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("nemovideo"))
    }

    /// Sends warnings to `warn` instead of standard error.
    pub fn on_warning(mut self, warn: impl Fn(&StoreWarning) + Send + Sync + 'static) -> Self {
        self.warn = Arc::new(warn);
        self
    }

    /// Which of `ids` another live process holds the lease on
    /// ([`Store::is_leased_elsewhere`] for each), all probed together, so
    /// that the answer takes one lease wait (at most 200 ms), not one per
    /// render.
    pub fn leased_elsewhere<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
        let mut pending: Vec<(&str, fs::File)> = Vec::new();
        {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                if check_id(id).is_err() || held.contains_key(id) {
                    continue;
                }
                if let Ok(file) = fs::OpenOptions::new()
                    .write(true)
                    .open(lease_path(&self.dir, id))
                {
                    pending.push((id, file));
                }
            }
        }
        // A probe elsewhere holds a lock for an instant: only a lock that
        // lasts counts.
        for attempt in 0..=LEASE_TRIES {
            pending
                .retain(|(_, file)| matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)));
            if pending.is_empty() || attempt == LEASE_TRIES {
                break;
            }
            std::thread::sleep(LEASE_PATIENCE / LEASE_TRIES);
        }
        pending.into_iter().map(|(id, _)| id.to_owned()).collect()
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `file` lives.
    pub fn path_of(&self, file: StoreFile) -> PathBuf {
        self.dir.join(file.file_name())
    }

    /// Holds the store for one read-modify-write: a mutex for this process
    /// and an advisory lock on `.lock` in the folder for the others (an
    /// export in one terminal and a resume in another must not lose each
    /// other's journal entries).
    fn guard(&self) -> StoreGuard<'_> {
        // A panic while holding the lock poisons it; the data is in files,
        // so the lock itself carries nothing to distrust.
        let local = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.create_dir().ok().and_then(|()| {
            let file = self.lock_file(&self.dir.join(".lock")).ok()?;
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

    fn job_file(&self) -> Result<JobFile, StoreError> {
        let file: JobFile = self.read_json_strict(StoreFile::Jobs)?.unwrap_or_default();
        // An entry whose id could walk out of a URL or a folder is not a
        // render of ours: the journal was edited by someone else. (An id
        // only unsafe as a file name — `:`, a trailing dot, a device name —
        // may come from an older version: it is a render like any other.)
        if let Some(reason) = file
            .jobs
            .iter()
            .find_map(|j| nemo_core::ids::check_id("render id", &j.id).err())
        {
            return Err(self.damaged(StoreFile::Jobs, reason));
        }
        Ok(file)
    }

    fn remove_lease_file(&self, id: &str) {
        let lease = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if lease.is_some() && check_id(id).is_ok() {
            // Only the holder removes the file (then unlocks by dropping).
            let _ = fs::remove_file(lease_path(&self.dir, id));
        }
    }

    fn map<T: DeserializeOwned>(&self, file: StoreFile) -> BTreeMap<String, T> {
        match self.read_json_strict(file) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                (self.warn)(&StoreWarning::Unreadable(e));
                BTreeMap::new()
            }
        }
    }

    /// Reads a JSON file: `Ok(None)` when it does not exist; an error (and
    /// the file moved aside, never to be overwritten) when it is damaged.
    fn read_json_strict<T: DeserializeOwned>(
        &self,
        file: StoreFile,
    ) -> Result<Option<T>, StoreError> {
        self.check_dir()?;
        let path = self.path_of(file);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(self.damaged(file, "not UTF-8 text".into()));
            }
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        self.check_mode(&path);
        match serde_json::from_str(&text) {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(self.damaged(file, e.to_string())),
        }
    }

    /// Moves the damaged `file` aside and says so.
    fn damaged(&self, file: StoreFile, reason: String) -> StoreError {
        StoreError::Damaged {
            file,
            path: self.path_of(file),
            reason,
            moved_to: self.move_aside(file.file_name()),
        }
    }

    /// Moves a damaged file to `<name>.corrupt-<unix time>`; the new path,
    /// when the move worked.
    fn move_aside(&self, name: &str) -> Option<PathBuf> {
        let now = unix_now();
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

    fn write_json<T: Serialize>(&self, file: StoreFile, value: &T) -> Result<(), StoreError> {
        let path = self.path_of(file);
        let mut text = serde_json::to_string_pretty(value).map_err(|e| StoreError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        text.push('\n');
        self.write(&path, text.as_bytes())
    }

    /// Writes `bytes` to `path` through a 0600 temporary file, a sync and a
    /// rename.
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let failed = |source| StoreError::Write {
            path: path.to_owned(),
            source,
        };
        self.create_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".nemo-")
            .tempfile_in(&self.dir)
            .map_err(failed)?;
        set_private(tmp.path());
        tmp.write_all(bytes).map_err(failed)?;
        tmp.as_file().sync_all().map_err(failed)?;
        tmp.persist(path).map_err(|e| failed(e.error))?;
        Ok(())
    }

    fn create_dir(&self) -> Result<(), StoreError> {
        if self.dir.is_dir() {
            return self.check_dir();
        }
        fs::create_dir_all(&self.dir).map_err(|source| StoreError::Write {
            path: self.dir.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// Opens (creating, 0600) a lock file.
    fn lock_file(&self, path: &Path) -> Result<fs::File, StoreError> {
        // Never through a link planted in the folder: opening it would
        // create or re-mode another file.
        if fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
            return Err(StoreError::Write {
                path: path.to_owned(),
                source: std::io::Error::other(
                    "not a regular file (a link or a folder); nemo does not follow it",
                ),
            });
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| StoreError::Write {
                path: path.to_owned(),
                source,
            })?;
        set_private(path);
        Ok(file)
    }

    /// Refuses a folder that someone else may change: one owned by another
    /// user, or writable by group or others (even with the sticky bit, they
    /// could create `jobs.json` first and send downloads anywhere this user
    /// may write). Like ssh with `~/.ssh`. An absent folder is fine: it is
    /// created 0700.
    fn check_dir(&self) -> Result<(), StoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let Ok(meta) = fs::metadata(&self.dir) else {
                return Ok(());
            };
            let mode = meta.permissions().mode() & 0o777;
            let me = rustix::process::geteuid().as_raw();
            let reason = if meta.uid() != me {
                format!("it belongs to another user (uid {}, not {me})", meta.uid())
            } else if mode & 0o022 != 0 {
                format!("others may change what is in it (mode {mode:o})")
            } else {
                return Ok(());
            };
            Err(StoreError::Unsafe {
                path: self.dir.clone(),
                reason,
            })
        }
        #[cfg(not(unix))]
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
                let first = self
                    .warned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path.to_owned());
                if first {
                    (self.warn)(&StoreWarning::Exposed {
                        path: path.to_owned(),
                        mode,
                    });
                }
            }
        }
        #[cfg(not(unix))]
        let _ = path;
    }
}

impl Store for FileStore {
    /// A damaged file (not text, or not a value that fits in a header) is
    /// moved aside with a warning and reads as absent.
    fn client_id(&self) -> Option<String> {
        self.check_dir().ok()?;
        let path = self.path_of(StoreFile::ClientId);
        let bytes = fs::read(&path).ok()?;
        self.check_mode(&path);
        let id = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
        if !id.is_empty() && nemo_core::ids::check_token(id).is_ok() {
            return Some(id.to_owned());
        }
        let g = self.guard();
        if fs::read(&path).ok()? != bytes {
            // Rewritten by another process meanwhile: read it again.
            drop(g);
            return self.client_id();
        }
        let e = self.damaged(StoreFile::ClientId, "not a client id".into());
        (self.warn)(&StoreWarning::Unreadable(e));
        None
    }

    fn save_client_id(&self, id: &str) -> Result<(), StoreError> {
        let _g = self.guard();
        self.write(
            &self.path_of(StoreFile::ClientId),
            format!("{id}\n").as_bytes(),
        )
    }

    /// A damaged cache is moved aside with a warning and reads as empty.
    fn token(&self, api_url: &str) -> Option<CachedToken> {
        self.map::<CachedToken>(StoreFile::Tokens)
            .remove(api_url)
            .filter(|t| nemo_core::ids::check_token(&t.token).is_ok())
    }

    fn save_token(
        &self,
        api_url: &str,
        token: &Secret,
        user_id: Option<String>,
        expires_at: Option<String>,
    ) -> Result<(), StoreError> {
        check_token(token)?;
        let _g = self.guard();
        let mut map = self.map::<CachedToken>(StoreFile::Tokens);
        map.insert(
            api_url.to_owned(),
            CachedToken {
                token: token.expose().to_owned(),
                user_id,
                expires_at,
            },
        );
        self.write_json(StoreFile::Tokens, &map)
    }

    fn last_session(&self, api_url: &str) -> Option<LastSession> {
        self.map::<LastSession>(StoreFile::Sessions).remove(api_url)
    }

    fn save_last_session(&self, api_url: &str, session: LastSession) -> Result<(), StoreError> {
        let _g = self.guard();
        let mut map = self.map::<LastSession>(StoreFile::Sessions);
        if map.get(api_url) == Some(&session) {
            return Ok(());
        }
        map.insert(api_url.to_owned(), session);
        self.write_json(StoreFile::Sessions, &map)
    }

    fn sessions(&self, api_url: &str) -> Vec<SessionRecord> {
        self.map::<Vec<SessionRecord>>(StoreFile::RecentSessions)
            .remove(api_url)
            .unwrap_or_default()
    }

    fn note_session(&self, api_url: &str, record: SessionRecord) -> Result<(), StoreError> {
        let _g = self.guard();
        let mut map = self.map::<Vec<SessionRecord>>(StoreFile::RecentSessions);
        let list = map.entry(api_url.to_owned()).or_default();
        SessionRecord::merge(list, record);
        self.write_json(StoreFile::RecentSessions, &map)
    }

    fn forget_session(&self, api_url: &str, session_id: &str) -> Result<bool, StoreError> {
        let _g = self.guard();
        let mut found = false;
        let mut map = self.map::<Vec<SessionRecord>>(StoreFile::RecentSessions);
        if let Some(list) = map.get_mut(api_url) {
            let before = list.len();
            list.retain(|r| r.session_id != session_id);
            if list.len() != before {
                found = true;
                self.write_json(StoreFile::RecentSessions, &map)?;
            }
        }
        let mut last = self.map::<LastSession>(StoreFile::Sessions);
        if last
            .get(api_url)
            .is_some_and(|s| s.session_id == session_id)
        {
            last.remove(api_url);
            found = true;
            self.write_json(StoreFile::Sessions, &last)?;
        }
        Ok(found)
    }

    /// A damaged journal is moved aside and reported as an error (never
    /// read as empty, never overwritten).
    fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        let _g = self.guard();
        self.job_file().map(|f| f.jobs)
    }

    fn add_job(&self, job: Job) -> Result<(), StoreError> {
        let _g = self.guard();
        let mut file = self.job_file()?;
        file.jobs.retain(|j| j.id != job.id);
        file.jobs.push(job);
        self.write_json(StoreFile::Jobs, &file)
    }

    fn remove_job(&self, id: &str) -> Result<bool, StoreError> {
        // Removed under the job's lease, taken now when this holder does not
        // have it: a render another live process waits for is never removed
        // (no look-then-remove race with `jobs forget`).
        let had = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id);
        if check_id(id).is_ok() && !self.lease(id)? {
            return Err(StoreError::Waited { id: id.to_owned() });
        }
        let removed = (|| {
            let _g = self.guard();
            let mut file = self.job_file()?;
            let before = file.jobs.len();
            file.jobs.retain(|j| j.id != id);
            if file.jobs.len() == before {
                return Ok(false);
            }
            self.write_json(StoreFile::Jobs, &file)?;
            Ok(true)
        })();
        match removed {
            // The lease file goes with the job.
            Ok(true) => self.remove_lease_file(id),
            _ if !had => self.release(id),
            _ => {}
        }
        removed
    }

    /// The journal is readable (or absent) and the folder writable.
    fn check_journal(&self) -> Result<(), StoreError> {
        let _g = self.guard();
        let file = self.job_file()?;
        self.create_dir()?;
        let probe = tempfile::Builder::new()
            .prefix(".nemo-probe-")
            .tempfile_in(&self.dir)
            .map_err(|source| StoreError::Write {
                path: self.path_of(StoreFile::Jobs),
                source,
            })?;
        drop(probe);
        drop(file);
        Ok(())
    }

    /// An OS lock on `leases/<id>.lock`, released when the process ends,
    /// however it ends.
    fn lease(&self, id: &str) -> Result<bool, StoreError> {
        check_id(id)?;
        // The store's mutex is held only for a look or an insert, never
        // while waiting: another lease of this store (another export of the
        // same MCP server) does not wait for this one.
        let held_here = || {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id)
        };
        if held_here() {
            return Ok(true);
        }
        let dir = self.dir.join("leases");
        self.create_dir()?;
        fs::create_dir_all(&dir).map_err(|source| StoreError::Write {
            path: dir.clone(),
            source,
        })?;
        let path = lease_path(&self.dir, id);
        let mut file = self.lock_file(&path)?;
        // A probe ([`Store::is_leased_elsewhere`] in another process) holds
        // the lock for an instant: a refusal is taken as final only when it
        // lasts [`LEASE_PATIENCE`].
        let mut reopened = 0;
        // Only a refusal counts as a try: a re-open does not use one up.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                // The holder removed the file (its job ended) between our
                // open and our lock: a lock on a removed file is no lease,
                // since the next process opens a new one. Open it again.
                Ok(()) if !is_at(&file, &path) && reopened < 3 => {
                    reopened += 1;
                    file = self.lock_file(&path)?;
                }
                // A file system without locks: nobody can be told apart, so
                // behave as before leases existed.
                Ok(()) | Err(fs::TryLockError::Error(_)) => {
                    let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    // Another thread of this store may have it by now: it
                    // keeps its file (this one unlocks as it is dropped).
                    held.entry(id.to_owned()).or_insert(file);
                    return Ok(true);
                }
                // Held by another thread of this very store.
                Err(fs::TryLockError::WouldBlock) if held_here() => return Ok(true),
                Err(fs::TryLockError::WouldBlock) if tries < LEASE_TRIES => {
                    tries += 1;
                    std::thread::sleep(LEASE_PATIENCE / LEASE_TRIES);
                }
                Err(fs::TryLockError::WouldBlock) => break,
            }
        }
        Ok(false)
    }

    /// Unlocks (the file stays: deleting it under another process that
    /// has just opened it would let two processes hold one render).
    fn release(&self, id: &str) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn is_leased_elsewhere(&self, id: &str) -> bool {
        // Locked for an instant by a probe elsewhere, or for good by a
        // holder: only a lock that lasts [`LEASE_PATIENCE`] counts.
        self.leased_elsewhere([id]).contains(id)
    }

    /// An OS lock on `.identity.lock`. Fails when the folder cannot be
    /// created or written: a new identity per run would burn the one free
    /// token a machine gets per week.
    fn identity_guard(&self) -> Result<IdentityGuard, StoreError> {
        self.create_dir()?;
        let file = self.lock_file(&self.dir.join(".identity.lock"))?;
        // A file system without locks still gets one identity per run.
        let _ = file.lock();
        Ok(IdentityGuard::new(file))
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

/// How long a lease is tried before it counts as held by another live
/// process: far longer than any probe holds it (an open, a lock and a
/// close), short enough not to be noticed.
const LEASE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);

/// True when `path` still names the very file `file` is (not removed or
/// replaced since it was opened).
fn is_at(file: &fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// `leases/<id>.lock`, the id made a safe file name
/// ([`nemo_core::ids::file_stem`]: `render:1` is `render%3A1`).
fn lease_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("leases")
        .join(format!("{}.lock", nemo_core::ids::file_stem(id)))
}

/// In this many tries.
const LEASE_TRIES: u32 = 40;

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A probe (`nemo jobs`, an export's warning, `jobs forget`) never makes
    /// a real lease fail. Before: the probe took the lock itself, and a
    /// `jobs --resume` that came at that moment skipped the render as
    /// "waited for by another process".
    #[test]
    fn probing_a_lease_never_blocks_it() {
        let dir = tempfile::tempdir().unwrap();
        let (prober, leaser) = (FileStore::at(dir.path()), FileStore::at(dir.path()));
        leaser.add_job(job("render_1")).unwrap();
        // The lock file exists (a lease was taken and released before).
        assert!(leaser.lease("render_1").unwrap());
        leaser.release("render_1");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probes = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = prober.is_leased_elsewhere("render_1");
                    n += 1;
                }
                n
            }
        });
        let mut refused = 0;
        for _ in 0..300 {
            if !leaser.lease("render_1").unwrap() {
                refused += 1;
            }
            leaser.release("render_1");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = probes.join().unwrap();
        assert!(n > 0, "the prober ran");
        assert_eq!(refused, 0, "leases refused during {n} probes");
    }

    /// A lease that waits (another process holds it) does not stall the
    /// other leases of the same store (an MCP server's other exports), and
    /// two threads of one store asking for the same render both have it.
    /// Before: the wait held the store's mutex for up to 200 ms.
    #[test]
    fn a_lease_that_waits_does_not_stall_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (other, store) = (FileStore::at(dir.path()), FileStore::at(dir.path()));
        assert!(other.lease("render_1").unwrap());
        let waiting = std::thread::spawn({
            let store = store.clone();
            move || store.lease("render_1").unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        let started = std::time::Instant::now();
        assert!(store.lease("render_2").unwrap());
        let took = started.elapsed();
        assert!(!waiting.join().unwrap(), "held by the other process");
        assert!(
            took < std::time::Duration::from_millis(100),
            "render_2 waited {took:?}"
        );
        // Same store, same render, two threads at once: both hold it.
        other.release("render_1");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || store.lease("render_1").unwrap())
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
        assert!(other.is_leased_elsewhere("render_1"));
    }

    /// Probing many renders takes one lease wait, not one per render
    /// (`nemo jobs` with several running renders). Before: 200 ms each.
    #[test]
    fn many_leases_are_probed_in_one_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (other, store) = (FileStore::at(dir.path()), FileStore::at(dir.path()));
        let ids: Vec<String> = (0..6).map(|i| format!("render_{i}")).collect();
        for id in &ids[..5] {
            assert!(other.lease(id).unwrap());
        }
        // render_5 was leased and released: its file is there, unlocked.
        assert!(other.lease(&ids[5]).unwrap());
        other.release(&ids[5]);
        let started = std::time::Instant::now();
        let leased = store.leased_elsewhere(ids.iter().map(String::as_str));
        let took = started.elapsed();
        let expected: HashSet<String> = ids[..5].iter().cloned().collect();
        assert_eq!(leased, expected);
        assert!(took < std::time::Duration::from_millis(600), "{took:?}");
        // The holder's own leases are not "elsewhere".
        assert!(other.leased_elsewhere(["render_0"]).is_empty());
    }

    /// Forgetting a job another store holds the lease on is refused, even
    /// when it is asked without looking first (no check-then-act race); a
    /// job nobody holds is forgotten.
    #[test]
    fn a_leased_job_is_not_removed_by_another_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (FileStore::at(dir.path()), FileStore::at(dir.path()));
        a.add_job(job("render_1")).unwrap();
        assert!(a.lease("render_1").unwrap());
        assert!(b.remove_job("render_1").is_err());
        assert_eq!(a.jobs().unwrap().len(), 1);
        a.release("render_1");
        assert!(b.remove_job("render_1").unwrap());
        assert!(a.jobs().unwrap().is_empty());
        assert!(!b.remove_job("render_1").unwrap());
        // The remover did not keep a lease.
        assert!(a.lease("render_1").unwrap());
    }

    /// A lease taken while its holder removes the job (and the lease file)
    /// is a lease on the file others will open, not on the removed one.
    #[test]
    #[cfg(unix)]
    fn a_lease_won_as_its_file_is_removed_is_on_the_file_others_see() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            FileStore::at(dir.path()),
            FileStore::at(dir.path()),
            FileStore::at(dir.path()),
        );
        a.add_job(job("render_1")).unwrap();
        assert!(a.lease("render_1").unwrap());
        // (b comes back from its thread: dropping it would let go.)
        let waiter = std::thread::spawn(move || (b.lease("render_1").unwrap(), b));
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(a.remove_job("render_1").unwrap());
        let (took, _b) = waiter.join().unwrap();
        assert!(took, "b takes the lease once a lets go");
        assert!(
            c.is_leased_elsewhere("render_1"),
            "the lease b holds is the one a third process sees"
        );
    }

    #[test]
    #[cfg(unix)]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path().join("cfg"));
        store.save_client_id("abc").unwrap();
        store
            .save_token("http://x", &Secret::new("nmv_usr_1"), None, None)
            .unwrap();
        store.add_job(job("render_1")).unwrap();
        for name in ["client_id", "tokens.json", "jobs.json"] {
            let mode = fs::metadata(store.dir().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        let mode = fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the folder");
    }

    /// A folder others may write to is not trusted: a journal planted there
    /// could send a download anywhere this user may write.
    #[test]
    #[cfg(unix)]
    fn a_folder_others_may_change_is_neither_read_nor_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg");
        let store = FileStore::at(&cfg).on_warning(|_| {});
        store.add_job(job("render_1")).unwrap();
        store.save_client_id("planted").unwrap();
        // Now anyone could have put these there.
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o777)).unwrap();
        for result in [
            store.jobs().map(drop),
            store.add_job(job("render_2")),
            store.save_client_id("abc"),
            store.save_token("http://x", &Secret::new("nmv_usr_1"), None, None),
        ] {
            let e = result.unwrap_err();
            assert!(matches!(e, StoreError::Unsafe { .. }), "{e}");
            assert!(e.to_string().contains("mode 777"), "{e}");
        }
        assert_eq!(store.client_id(), None, "a planted client id is not used");
        assert!(store.token("http://x").is_none());
        // Made private again, it is the user's store once more.
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(store.client_id().as_deref(), Some("planted"));
        assert_eq!(store.jobs().unwrap().len(), 1);
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
            let store = FileStore::at(dir.path());
            fs::write(dir.path().join("jobs.json"), garbage).unwrap();
            let e = store.jobs().unwrap_err();
            assert!(
                matches!(
                    &e,
                    StoreError::Damaged {
                        file: StoreFile::Jobs,
                        moved_to: Some(_),
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("damaged"), "{e}");
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

    /// A journal written by the previous version may hold ids the server
    /// renamed that are safe in a URL and a folder but not as a file name
    /// on every system (`:`, a trailing dot, a device name, a leading
    /// `-`): they are renders, shown, leased and forgotten like any other,
    /// and the journal is kept. Before: the whole journal was moved aside
    /// as damaged (exit 1) and every render in it dropped out.
    #[test]
    fn a_journal_with_ids_unsafe_only_as_file_names_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path());
        let legacy = ["render:1", "abc.", "nul", "COM1.x", "-x", "render_2"];
        let jobs: Vec<_> = legacy
            .iter()
            .map(|id| serde_json::json!({"id": id, "session_id": "s", "api_url": "http://x"}))
            .collect();
        fs::write(
            dir.path().join("jobs.json"),
            serde_json::json!({ "jobs": jobs }).to_string(),
        )
        .unwrap();
        let listed: Vec<String> = store.jobs().unwrap().into_iter().map(|j| j.id).collect();
        assert_eq!(listed, legacy);
        for id in legacy {
            assert!(store.lease(id).unwrap(), "{id}");
            assert!(!store.is_leased_elsewhere(id), "{id}");
        }
        // Lease files get names safe everywhere, one per render.
        let names: Vec<String> = fs::read_dir(dir.path().join("leases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), legacy.len(), "{names:?}");
        for name in &names {
            let stem = name.strip_suffix(".lock").unwrap();
            let device = stem.split('.').next().unwrap().to_ascii_lowercase();
            assert!(
                !stem.contains(':')
                    && !stem.ends_with('.')
                    && !stem.starts_with('-')
                    && !["nul", "com1"].contains(&device.as_str()),
                "{name}"
            );
        }
        for id in legacy {
            store.release(id);
            assert!(store.remove_job(id).unwrap(), "{id}");
        }
        assert!(store.jobs().unwrap().is_empty());
        assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("corrupt")));
    }

    #[test]
    fn adding_to_a_damaged_journal_fails_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path());
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
    fn a_token_written_by_hand_that_cannot_be_sent_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::at(dir.path());
        fs::write(
            dir.path().join("tokens.json"),
            r#"{"http://x":{"token":"a b"}}"#,
        )
        .unwrap();
        assert!(store.token("http://x").is_none());
    }

    #[test]
    fn a_damaged_cache_warns_reads_as_absent_and_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let store =
            FileStore::at(dir.path()).on_warning(move |w| log.lock().unwrap().push(w.to_string()));
        fs::write(dir.path().join("tokens.json"), "{oops").unwrap();
        fs::write(dir.path().join("client_id"), "a b\n").unwrap();
        assert!(store.token("http://x").is_none());
        assert!(store.client_id().is_none());
        let seen: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|w| !w.contains("readable by other users"))
            .cloned()
            .collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].contains("tokens.json is damaged"), "{}", seen[0]);
        assert!(seen[1].contains("client_id is damaged"), "{}", seen[1]);
        assert!(!dir.path().join("tokens.json").exists());
        assert!(!dir.path().join("client_id").exists());
    }

    #[test]
    #[cfg(unix)]
    fn a_file_others_may_read_is_reported_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let store =
            FileStore::at(dir.path()).on_warning(move |w| log.lock().unwrap().push(w.to_string()));
        store.save_client_id("abc").unwrap();
        let path = dir.path().join("client_id");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(store.client_id().as_deref(), Some("abc"));
        assert_eq!(store.client_id().as_deref(), Some("abc"));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].contains("readable by other users (mode 644)") && seen[0].contains("chmod 600"),
            "{}",
            seen[0]
        );
    }
}
