//! `nemo upload <PATH-or-URL>…`: put media into the session.

use nemo_core::error::NemoError;
use nemo_core::machine::Command;

use crate::app::{App, SessionChoice};
use crate::inputs;

/// Arguments of `nemo upload`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Local files (mp4 mov avi webm mkv · jpg png gif webp · mp3 wav m4a aac, up to 500 MB)
    /// or media URLs.
    #[arg(value_name = "PATH-or-URL", required = true)]
    pub(crate) inputs: Vec<String>,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo upload`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    let (files, urls) = inputs::paths_or_urls(&args.inputs)?;
    let mut client = app.session_client(SessionChoice::ContinueOrNew).await?;
    client.run(Command::Upload { files, urls }).await
}
