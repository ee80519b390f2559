//! What a session's events leave in the [`Store`]: the token issued, the
//! client id made, the session connected, the render that ended.

use nemo_core::machine::Event;

use crate::store::{LastSession, SessionRecord, Store, StoreError, StoreFile};

/// Which of a session's events are remembered beyond the token and the
/// journal (those two always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remember {
    /// Remember the session as the last one (not for a batch item or a
    /// resumed job, which work in sessions of their own).
    pub last_session: bool,
    /// Remember a client id the session made up.
    pub client_id: bool,
}

/// Something an event should have left in the store, and why it did not.
#[derive(Debug, thiserror::Error)]
#[error("{} was not saved: {error}", what(*file))]
pub struct NotSaved {
    /// What was not saved.
    pub file: StoreFile,
    /// Why.
    #[source]
    pub error: StoreError,
}

impl NotSaved {
    /// What was not saved, as the subject of a sentence ("The token").
    pub fn what(&self) -> &'static str {
        what(self.file)
    }
}

fn what(file: StoreFile) -> &'static str {
    match file {
        StoreFile::Tokens => "The token",
        StoreFile::ClientId => "The client id",
        StoreFile::Sessions => "The session",
        StoreFile::RecentSessions => "The list of sessions",
        _ => "The job list",
    }
}

/// Applies the store's rules to one event of a session against `api_url`:
/// an issued token is cached ([`Event::TokenIssued`]), a made-up client id
/// and the connected session are remembered as `remember` says, and a
/// render that truly ended leaves the journal ([`Event::RenderEnded`]).
/// Renders are written down *before* they start by the [`journal`] hook,
/// not here.
///
/// [`journal`]: crate::journal
pub fn remember<S: Store + ?Sized>(
    store: &S,
    api_url: &str,
    remember: Remember,
    event: &Event,
) -> Result<(), NotSaved> {
    let (file, result) = match event {
        Event::TokenIssued {
            token,
            user_id,
            expires_at,
        } => (
            StoreFile::Tokens,
            store.save_token(api_url, token, user_id.clone(), expires_at.clone()),
        ),
        Event::ClientIdGenerated(id) if remember.client_id => {
            (StoreFile::ClientId, store.save_client_id(id))
        }
        Event::Connected {
            session_id,
            task_id,
            ..
        } if remember.last_session => {
            let last = LastSession {
                session_id: session_id.clone(),
                task_id: task_id.clone(),
            };
            match store.save_last_session(api_url, last) {
                Err(e) => (StoreFile::Sessions, Err(e)),
                // And in the list of sessions used (`nemo sessions`).
                Ok(()) => (
                    StoreFile::RecentSessions,
                    store.note_session(
                        api_url,
                        SessionRecord::new(session_id.clone(), task_id.clone()),
                    ),
                ),
            }
        }
        Event::RenderEnded { id, .. } => (StoreFile::Jobs, store.remove_job(id).map(drop)),
        _ => return Ok(()),
    };
    result.map_err(|error| NotSaved { file, error })
}
