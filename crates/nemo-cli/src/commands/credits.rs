//! `nemo credits`: the credit balance.

use nemo_core::error::NemoError;
use nemo_core::machine::Command;

use crate::app::{App, SessionChoice};

/// Arguments of `nemo credits` (none).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `nemo credits`.
pub(crate) async fn exec(_args: Args, app: &App) -> Result<(), NemoError> {
    let mut client = app.session_client(SessionChoice::NotNeeded)?;
    client.run(Command::Credits).await
}
