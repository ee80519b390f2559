//! What every NemoVideo frontend builds on, around the sans-IO
//! [`nemo_core`]: what is remembered between runs, and the rules for it.
//!
//! - [`Store`] is persistence as a trait: the client id (`X-Client-Id`), the
//!   anonymous token and the last session per API URL, and the render-job
//!   journal with leases. [`FileStore`] keeps it in a folder shared safely
//!   by processes (the `nemo` command's); [`MemoryStore`] keeps it in
//!   memory, with the same rules.
//! - [`ensure_identity`] applies the identity rules (one client id per
//!   machine, one free token per client id per week, one shared first
//!   session, each created once by whichever process comes first), and
//!   [`journal`] is the driver hook that records each render before it is
//!   submitted; [`remember`] applies the rest of the store's rules to a
//!   session's events (token issued, client id made, session connected,
//!   render ended).
//! - [`Client`] (built by [`Client::builder`], with safe defaults: a client
//!   id and a seed from the OS's randomness, never shared by accident) is
//!   one session over tokio and `nemo-http` that applies those rules itself,
//!   with typed calls ([`Client::credits`], [`Client::timeline`]). With the
//!   `mock` feature, `ClientBuilder::simulator` points it at the in-process
//!   simulator; `examples/credits.rs` runs against it.
//!
//! Writing a frontend, with a tokio example and a hand-driven sans-IO one:
//! `docs/FRONTENDS.md` (the examples are `examples/frontend_*.rs`).
//!
//! ```
//! use nemo_client::{Job, MemoryStore, Store};
//!
//! let store = MemoryStore::new();
//! let other_process = store.sibling();
//! store
//!     .add_job(Job {
//!         id: "render_1".into(),
//!         session_id: "sess_1".into(),
//!         task_id: None,
//!         api_url: "https://example.com".into(),
//!         out: None,
//!         created_unix: 0,
//!     })
//!     .unwrap();
//! assert!(store.lease("render_1").unwrap());
//! // Another process sees the job, and leaves it alone while it is leased.
//! assert_eq!(other_process.jobs().unwrap().len(), 1);
//! assert!(other_process.is_leased_elsewhere("render_1"));
//! assert!(!other_process.lease("render_1").unwrap());
//! // Removing the job releases its lease.
//! assert!(store.remove_job("render_1").unwrap());
//! assert!(other_process.lease("render_1").unwrap());
//! ```

mod client;
mod env;
mod file;
pub mod flavour;
mod identity;
pub mod inputs;
mod memory;
mod remember;
mod store;
mod turn;

pub use client::{is_writer_spool, new_render_id};
pub use client::{
    Client, ClientBuilder, EventStream, ExportTo, JobProgress, JobResult, JournalWords, ResumeJobs,
    SkipReason, EVENTS_BUFFER, EVENTS_BUFFER_BYTES,
};
pub use env::Env;
pub use file::{FileStore, WarningFn};
pub use identity::{
    absolute, ensure_identity, has_token, identity_for_token_fetch, journal, journal_with,
    new_client_id, random_seed, IdentityError, IdentityNeed, IdentitySetup, Leases,
};
pub use inputs::Upload;
pub use memory::MemoryStore;
pub use remember::{remember, NotSaved, Remember};
pub use store::{
    CachedToken, IdentityGuard, Job, LastSession, SessionRecord, Store, StoreError, StoreFile,
    StoreWarning, SESSIONS_KEPT,
};
pub use turn::{Exported, Timeline, Turn};

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn client_id(&self) -> Option<String> {
        (**self).client_id()
    }
    fn save_client_id(&self, id: &str) -> Result<(), StoreError> {
        (**self).save_client_id(id)
    }
    fn token(&self, api_url: &str) -> Option<CachedToken> {
        (**self).token(api_url)
    }
    fn save_token(
        &self,
        api_url: &str,
        token: &nemo_core::secret::Secret,
        user_id: Option<String>,
        expires_at: Option<String>,
    ) -> Result<(), StoreError> {
        (**self).save_token(api_url, token, user_id, expires_at)
    }
    fn last_session(&self, api_url: &str) -> Option<LastSession> {
        (**self).last_session(api_url)
    }
    fn save_last_session(&self, api_url: &str, session: LastSession) -> Result<(), StoreError> {
        (**self).save_last_session(api_url, session)
    }
    fn sessions(&self, api_url: &str) -> Vec<SessionRecord> {
        (**self).sessions(api_url)
    }
    fn note_session(&self, api_url: &str, record: SessionRecord) -> Result<(), StoreError> {
        (**self).note_session(api_url, record)
    }
    fn forget_session(&self, api_url: &str, session_id: &str) -> Result<bool, StoreError> {
        (**self).forget_session(api_url, session_id)
    }
    fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        (**self).jobs()
    }
    fn add_job(&self, job: Job) -> Result<(), StoreError> {
        (**self).add_job(job)
    }
    fn remove_job(&self, id: &str) -> Result<bool, StoreError> {
        (**self).remove_job(id)
    }
    fn check_journal(&self) -> Result<(), StoreError> {
        (**self).check_journal()
    }
    fn lease(&self, id: &str) -> Result<bool, StoreError> {
        (**self).lease(id)
    }
    fn release(&self, id: &str) {
        (**self).release(id)
    }

    fn is_leased_elsewhere(&self, id: &str) -> bool {
        (**self).is_leased_elsewhere(id)
    }
    fn identity_guard(&self) -> Result<IdentityGuard, StoreError> {
        (**self).identity_guard()
    }
}
