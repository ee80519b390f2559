//! `nemo export [--out PATH] [--no-download]`: render the session's draft,
//! wait with progress, download. The job is recorded before the render
//! request leaves, so `nemo jobs --resume` can finish it after a Ctrl-C.

use std::path::PathBuf;

use nemo_core::error::NemoError;
use nemo_core::machine::{Command, ExportOptions};

use crate::app::{App, SessionChoice};

/// Arguments of `nemo export`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to save the MP4 (default: `<render id>.mp4` here).
    #[arg(long, short, value_name = "PATH", conflicts_with = "no_download")]
    pub(crate) out: Option<PathBuf>,
    /// Render only; print the file's URL instead of downloading it.
    #[arg(long)]
    pub(crate) no_download: bool,
    /// Replace the file at --out if it exists (only a regular file).
    #[arg(long)]
    pub(crate) overwrite: bool,
}

/// Runs `nemo export`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    app.session_ref(SessionChoice::Existing)?;
    app.preflight_export(
        args.out.as_deref(),
        !args.no_download,
        args.overwrite,
        crate::inputs::Asker::Command,
    )?;
    let mut client = app.session_client(SessionChoice::Existing).await?;
    client
        .run(Command::Export(ExportOptions {
            render_id: None,
            download: !args.no_download,
            out: args.out,
            overwrite: args.overwrite,
        }))
        .await
}
