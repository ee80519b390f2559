//! `nemo credits`: the credit balance.

use nemo_core::error::NemoError;
use nemo_core::machine::Command;

use crate::app::{App, SessionChoice};

/// Arguments of `nemo credits` (none).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo credits`.
pub(crate) async fn exec(_args: Args, app: &App) -> Result<(), NemoError> {
    // On a first run the balance request fetches the free token itself,
    // under the identity lock, so parallel first runs share one token.
    let guard = app.identity_for_token_fetch()?;
    let mut client = app.session_client_unprepared(SessionChoice::NotNeeded)?;
    let result = client.run(Command::Credits).await;
    if guard.is_some() && result.is_ok() && !app.has_token() {
        return Err(app.token_not_saved());
    }
    result
}
