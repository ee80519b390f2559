//! The config directory: what `nemo` remembers between runs, kept by
//! [`nemo_client::FileStore`] (its files, locks and rules are documented
//! there), plus what only the command line adds: `NEMO_CONFIG_DIR`, the
//! `nemo chat` line history, and the advice in its messages.
//!
//! `NEMO_CONFIG_DIR`, else the platform's config dir + `nemovideo`
//! (`~/.config/nemovideo` on Linux, as the upstream skill does). Beside the
//! store's files: `history`, the `nemo chat` line history.

use std::path::PathBuf;

use nemo_client::{FileStore, StoreError, StoreFile, StoreWarning};
use nemo_core::error::{ErrorKind, NemoError};

/// The config directory `nemo` uses: `NEMO_CONFIG_DIR`, else the platform's.
pub(crate) fn default_dir(env: &nemo_client::Env) -> Result<PathBuf, NemoError> {
    if let Some(dir) = env.config_dir.clone() {
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
    env.config_dir().ok_or_else(|| {
        NemoError::new(
            ErrorKind::BadInput,
            "No config directory could be found for this user. Set NEMO_CONFIG_DIR to a folder nemo may write to.",
        )
    })
}

/// The store in `dir`, its warnings printed the CLI's way.
pub(crate) fn open(dir: PathBuf) -> FileStore {
    FileStore::at(dir).on_warning(|w| {
        let text = match w {
            StoreWarning::Unreadable(e) => describe(e),
            other => other.to_string(),
        };
        eprintln!("warning: {text}");
    })
}

/// Where `nemo chat` keeps its line history.
pub(crate) fn history_path(store: &FileStore) -> PathBuf {
    store.dir().join("history")
}

/// A store error as the CLI says it: what happened, then what to do with
/// the `nemo` command.
pub(crate) fn error(e: StoreError) -> NemoError {
    NemoError::new(e.kind(), describe(&e))
}

/// A render that another live nemo process waits for was left alone.
pub(crate) fn waited_words(id: &str) -> String {
    format!("Render {id} is being waited for by another nemo process; stop that one first.")
}

fn describe(e: &StoreError) -> String {
    const FIX: &str = "Check the folder's permissions, or set NEMO_CONFIG_DIR to another folder.";
    match e {
        StoreError::Damaged { file, .. } => {
            let next = match file {
                StoreFile::Jobs => "; look inside it for render ids to finish by hand (`nemo jobs` starts a new journal).",
                StoreFile::Tokens => "; a new free token is fetched if the service allows one (one a week per machine); if it refuses, copy the token back from that file by hand.",
                StoreFile::Sessions => "; the session ids in it can still be used with --session ID.",
                StoreFile::ClientId => "; a new client id is made (a new free token may then be refused for a week).",
                _ => ".",
            };
            let said = e.to_string();
            format!("{}{next}", said.strip_suffix('.').unwrap_or(&said))
        }
        StoreError::Read { path, source } => {
            format!("Cannot read {}: {source}. {FIX}", path.display())
        }
        StoreError::Write { path, source } => {
            format!("Cannot write {}: {source}. {FIX}", path.display())
        }
        StoreError::Waited { id } => waited_words(id),
        StoreError::Unsafe { path, .. } => format!(
            "{} Make it yours alone (chmod 700 {}), or set NEMO_CONFIG_DIR to a folder of your own.",
            e,
            path.display()
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_the_clis_words() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path().to_owned());
        std::fs::write(dir.path().join("jobs.json"), "{not json").unwrap();
        use nemo_client::Store;
        let e = error(store.jobs().unwrap_err());
        assert_eq!(e.kind, ErrorKind::BadInput);
        assert!(
            e.message.contains("jobs.json is damaged (")
                && e.message.contains(
                    "so that nothing in it is lost or overwritten; look inside it for render ids"
                ),
            "{}",
            e.message
        );
        let e = error(StoreError::Write {
            path: "/x/jobs.json".into(),
            source: std::io::Error::other("full"),
        });
        assert_eq!(
            e.message,
            "Cannot write /x/jobs.json: full. Check the folder's permissions, or set NEMO_CONFIG_DIR to another folder."
        );
        let e = error(
            store
                .save_token(
                    "http://x",
                    &nemo_core::secret::Secret::new("a b"),
                    None,
                    None,
                )
                .unwrap_err(),
        );
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.starts_with("The token was not kept: "));
    }
}
