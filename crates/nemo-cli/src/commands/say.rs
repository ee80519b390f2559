//! `nemo say <TEXT> [--file PATH]… [--url URL]…`: one turn, routed by
//! intent. Export, credits, status and upload words skip the agent
//! (PROTOCOL.md §8); everything else goes to it.

use std::path::PathBuf;

use nemo_core::error::NemoError;
use nemo_core::machine::Command;
use nemo_core::route::UserInput;

use crate::app::{App, SessionChoice};
use crate::inputs;

/// Arguments of `nemo say`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to say, e.g. "add lo-fi music at 35%" or "export".
    #[arg(value_name = "TEXT")]
    pub(crate) text: String,
    /// Attach a local file (repeatable).
    #[arg(long = "file", value_name = "PATH")]
    pub(crate) files: Vec<PathBuf>,
    /// Attach a media URL (repeatable).
    #[arg(long = "url", value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo say`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    let (mut files, urls) = inputs::attachments(&args.files, &args.urls)?;
    // Media files named in the text are attached; one that is not there is
    // an error before anything is sent.
    let (text, named) = nemo_client::inputs::named_files(&args.text)?;
    files.extend(named);
    let input = UserInput { text, files, urls };
    app.preflight_message(&input)?;
    let mut client = app.session_client(SessionChoice::ContinueOrNew).await?;
    client.run(Command::Message(input)).await
}
