//! `nemo sessions [use ID | forget ID…]`: the sessions used from this
//! machine (most recent first, the one plain commands continue marked), a
//! switch to another one (checked on the server first), and forgetting.

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::Command;
use serde_json::json;

use crate::app::{App, SessionChoice};
use crate::commands::jobs::table;
use nemo_client::{SessionRecord, Store};

/// Arguments of `nemo sessions`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  nemo sessions
  nemo sessions use 1234567890        # plain commands continue it from now on
  nemo sessions forget 1234567890     # it stays on the server"
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) action: Option<Action>,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// `nemo sessions use|forget`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Continue this session from now on: its timeline is read first, so a
    /// mistyped id changes nothing.
    Use {
        /// The session id, as `nemo sessions` lists it.
        #[arg(value_name = "SESSION_ID")]
        id: String,
    },
    /// Remove sessions from the list (and as the one continued); they stay
    /// on the server.
    Forget {
        /// The session ids.
        #[arg(value_name = "SESSION_ID", required = true)]
        ids: Vec<String>,
    },
}

/// Runs `nemo sessions`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    match args.action {
        None => {
            list(app);
            Ok(())
        }
        Some(Action::Use { id }) => switch(app, id).await,
        Some(Action::Forget { ids }) => forget(app, &ids),
    }
}

fn list(app: &App) {
    let mut sessions = app.store.sessions(&app.api_url);
    let current = app.store.last_session(&app.api_url).map(|s| s.session_id);
    if let Some(id) = &current {
        if !sessions.iter().any(|s| &s.session_id == id) {
            // Continued since before the list was kept.
            sessions.insert(0, SessionRecord::new(id.clone(), None));
            sessions[0].last_used_unix = 0;
        }
    }
    if sessions.is_empty() {
        let none = crate::words::tr("No sessions used from this machine yet; `nemo upload`, `nemo say` or `nemo chat` starts one.");
        app.out.plain(none);
        app.out.emit(json!({"type": "status", "message": none}));
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows = Vec::new();
    for s in &sessions {
        let is_current = current.as_deref() == Some(s.session_id.as_str());
        app.out.emit(json!({
            "type": "session",
            "id": s.session_id,
            "title": s.title,
            "last_used_unix": (s.last_used_unix > 0).then_some(s.last_used_unix),
            "current": is_current,
        }));
        let used = if s.last_used_unix == 0 {
            "-".to_owned()
        } else {
            nemo_core::time::human_duration(std::time::Duration::from_secs(
                now.saturating_sub(s.last_used_unix),
            )) + " ago"
        };
        rows.push([
            format!("{}{}", if is_current { "* " } else { "  " }, s.session_id),
            used,
            s.title.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    app.out
        .plain(&table(["  SESSION", "LAST USED", "FIRST MESSAGE"], &rows));
    app.out.plain(crate::words::tr(
        "* the session plain commands continue; switch with `nemo sessions use <SESSION>`.",
    ));
}

async fn switch(app: &App, id: String) -> Result<(), NemoError> {
    nemo_core::ids::check_id("session id", &id)
        .map_err(|why| NemoError::new(ErrorKind::BadInput, format!("{why}.")))?;
    // As `--session ID`: read on the server first (a typo fails and changes
    // nothing); once it answers, it is remembered as the one to continue.
    let mut named = app.clone();
    named.global.session = Some(id.clone());
    named.global.new_session = false;
    let mut client = named.session_client(SessionChoice::Existing).await?;
    client.run(Command::Timeline).await?;
    app.out.info(&crate::words::trf(
        "Plain commands now continue session {}.",
        &[&id],
    ));
    Ok(())
}

fn forget(app: &App, ids: &[String]) -> Result<(), NemoError> {
    let mut missing = Vec::new();
    for id in ids {
        if app
            .store
            .forget_session(&app.api_url, id)
            .map_err(crate::store::error)?
        {
            app.out.info(&crate::words::trf(
                "Forgot session {} (it stays on the server).",
                &[id],
            ));
        } else {
            missing.push(id.as_str());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(NemoError::new(
            ErrorKind::BadInput,
            format!(
                "No session {} in the list: see `nemo sessions` for the ids.",
                missing.join(", ")
            ),
        ))
    }
}
