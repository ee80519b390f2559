//! `nemo timeline` (alias `state`): the session's draft as a timeline
//! summary — one line, all that a pipe or `--json` gets — and, on a
//! terminal, the tracks drawn under it as bars on an m:ss ruler (see
//! [`crate::timeline_view`]; the reporter draws every timeline it shows).

use nemo_core::error::NemoError;
use nemo_core::machine::Command;

use crate::app::{App, SessionChoice};

/// Arguments of `nemo timeline` (none).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo timeline`.
pub(crate) async fn exec(_args: Args, app: &App) -> Result<(), NemoError> {
    let mut client = app.session_client(SessionChoice::Existing).await?;
    client.run(Command::Timeline).await
}
