//! [`MemoryStore`]: a [`Store`] that forgets everything when dropped.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nemo_core::secret::Secret;

use crate::store::{
    check_id, check_token, CachedToken, IdentityGuard, Job, LastSession, SessionRecord, Store,
    StoreError,
};

/// A [`Store`] in memory, with the same rules as
/// [`FileStore`](crate::FileStore): for tests, and for frontends that keep
/// nothing between runs (a server holding its users' state elsewhere).
///
/// Clones share the data and the leases (one "process");
/// [`MemoryStore::sibling`] gives a store over the same data that holds
/// leases of its own, as another process would. A holder's leases are
/// released when its last clone is dropped.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    holder: Arc<Holder>,
}

#[derive(Debug, Default)]
struct Shared {
    data: Mutex<Data>,
    identity: Mutex<bool>,
    identity_free: Condvar,
}

#[derive(Debug, Default)]
struct Data {
    client_id: Option<String>,
    tokens: BTreeMap<String, CachedToken>,
    sessions: BTreeMap<String, LastSession>,
    recent: BTreeMap<String, Vec<SessionRecord>>,
    jobs: Vec<Job>,
    /// Render id → the holder of its lease.
    leases: BTreeMap<String, usize>,
    next_holder: usize,
}

/// One lease holder (a "process"); releases its leases when dropped.
#[derive(Debug, Default)]
struct Holder {
    id: Mutex<Option<usize>>,
    shared: Mutex<Option<Arc<Shared>>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let id = *self.id.get_mut().unwrap_or_else(|p| p.into_inner());
        let shared = self.shared.get_mut().unwrap_or_else(|p| p.into_inner());
        if let (Some(id), Some(shared)) = (id, shared.as_ref()) {
            lock(&shared.data).leases.retain(|_, h| *h != id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data is plain values, valid after any panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store over the same data with leases of its own, standing for
    /// another process.
    pub fn sibling(&self) -> MemoryStore {
        MemoryStore {
            shared: self.shared.clone(),
            holder: Arc::default(),
        }
    }

    /// This holder's id, given on first use.
    fn holder_id(&self, data: &mut Data) -> usize {
        let mut id = lock(&self.holder.id);
        if let Some(id) = *id {
            return id;
        }
        data.next_holder += 1;
        *id = Some(data.next_holder);
        *lock(&self.holder.shared) = Some(self.shared.clone());
        data.next_holder
    }
}

/// Releases the in-memory identity lock on drop.
struct IdentityHeld(Arc<Shared>);

impl Drop for IdentityHeld {
    fn drop(&mut self) {
        *lock(&self.0.identity) = false;
        self.0.identity_free.notify_one();
    }
}

impl Store for MemoryStore {
    fn client_id(&self) -> Option<String> {
        lock(&self.shared.data).client_id.clone()
    }

    fn save_client_id(&self, id: &str) -> Result<(), StoreError> {
        lock(&self.shared.data).client_id = Some(id.to_owned());
        Ok(())
    }

    fn token(&self, api_url: &str) -> Option<CachedToken> {
        lock(&self.shared.data).tokens.get(api_url).cloned()
    }

    fn save_token(
        &self,
        api_url: &str,
        token: &Secret,
        user_id: Option<String>,
        expires_at: Option<String>,
    ) -> Result<(), StoreError> {
        check_token(token)?;
        lock(&self.shared.data).tokens.insert(
            api_url.to_owned(),
            CachedToken {
                token: token.expose().to_owned(),
                user_id,
                expires_at,
            },
        );
        Ok(())
    }

    fn last_session(&self, api_url: &str) -> Option<LastSession> {
        lock(&self.shared.data).sessions.get(api_url).cloned()
    }

    fn save_last_session(&self, api_url: &str, session: LastSession) -> Result<(), StoreError> {
        lock(&self.shared.data)
            .sessions
            .insert(api_url.to_owned(), session);
        Ok(())
    }

    fn sessions(&self, api_url: &str) -> Vec<SessionRecord> {
        lock(&self.shared.data)
            .recent
            .get(api_url)
            .cloned()
            .unwrap_or_default()
    }

    fn note_session(&self, api_url: &str, record: SessionRecord) -> Result<(), StoreError> {
        let mut data = lock(&self.shared.data);
        SessionRecord::merge(data.recent.entry(api_url.to_owned()).or_default(), record);
        Ok(())
    }

    fn forget_session(&self, api_url: &str, session_id: &str) -> Result<bool, StoreError> {
        let mut data = lock(&self.shared.data);
        let mut found = false;
        if let Some(list) = data.recent.get_mut(api_url) {
            let before = list.len();
            list.retain(|r| r.session_id != session_id);
            found = list.len() != before;
        }
        if data
            .sessions
            .get(api_url)
            .is_some_and(|s| s.session_id == session_id)
        {
            data.sessions.remove(api_url);
            found = true;
        }
        Ok(found)
    }

    fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(lock(&self.shared.data).jobs.clone())
    }

    fn add_job(&self, job: Job) -> Result<(), StoreError> {
        let mut data = lock(&self.shared.data);
        data.jobs.retain(|j| j.id != job.id);
        data.jobs.push(job);
        Ok(())
    }

    fn remove_job(&self, id: &str) -> Result<bool, StoreError> {
        let mut data = lock(&self.shared.data);
        let before = data.jobs.len();
        data.jobs.retain(|j| j.id != id);
        if data.jobs.len() == before {
            return Ok(false);
        }
        let me = self.holder_id(&mut data);
        if data.leases.get(id) == Some(&me) {
            data.leases.remove(id);
        }
        Ok(true)
    }

    fn check_journal(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn lease(&self, id: &str) -> Result<bool, StoreError> {
        check_id(id)?;
        let mut data = lock(&self.shared.data);
        let me = self.holder_id(&mut data);
        match data.leases.get(id) {
            Some(holder) => Ok(*holder == me),
            None => {
                data.leases.insert(id.to_owned(), me);
                Ok(true)
            }
        }
    }

    fn release(&self, id: &str) {
        let mut data = lock(&self.shared.data);
        let me = self.holder_id(&mut data);
        if data.leases.get(id) == Some(&me) {
            data.leases.remove(id);
        }
    }

    fn is_leased_elsewhere(&self, id: &str) -> bool {
        if check_id(id).is_err() {
            return false;
        }
        let mut data = lock(&self.shared.data);
        let me = self.holder_id(&mut data);
        data.leases.get(id).is_some_and(|h| *h != me)
    }

    fn identity_guard(&self) -> Result<IdentityGuard, StoreError> {
        let mut held = lock(&self.shared.identity);
        while *held {
            held = self
                .shared
                .identity_free
                .wait(held)
                .unwrap_or_else(|p| p.into_inner());
        }
        *held = true;
        drop(held);
        Ok(IdentityGuard::new(IdentityHeld(self.shared.clone())))
    }
}

/// The ids leased by some holder (for tests).
#[cfg(test)]
pub(crate) fn leased(store: &MemoryStore) -> std::collections::BTreeSet<String> {
    lock(&store.shared.data).leases.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holders_leases_go_with_it() {
        let a = MemoryStore::new();
        let b = a.sibling();
        assert!(b.lease("render_1").unwrap());
        assert!(a.is_leased_elsewhere("render_1"));
        drop(b);
        assert!(leased(&a).is_empty());
        assert!(!a.is_leased_elsewhere("render_1"));
        assert!(a.lease("render_1").unwrap());
    }
}
