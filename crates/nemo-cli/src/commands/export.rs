//! `nemo export [--out PATH] [--no-download]`: render the session's draft,
//! wait with progress, download. The job is recorded before the render
//! request leaves, so `nemo jobs --resume` can finish it after a Ctrl-C.

use std::path::PathBuf;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, ExportOptions};

use crate::app::{App, SessionChoice};

/// Arguments of `nemo export`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to save the MP4 (default: `<render id>.mp4` here); `-` writes
    /// it to stdout (complete and checked first) for a pipe.
    #[arg(long, short, value_name = "PATH", conflicts_with = "no_download")]
    pub(crate) out: Option<PathBuf>,
    /// Render only; print the file's URL instead of downloading it.
    #[arg(long)]
    pub(crate) no_download: bool,
    /// Replace the file at --out if it exists (only a regular file).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo export`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    app.session_ref(SessionChoice::Existing)?;
    if args.out.as_deref() == Some(std::path::Path::new("-")) {
        return to_stdout(app).await;
    }
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

/// `--out -`: the video on stdout, every line of ours on stderr. It is
/// downloaded to a private temporary file first (checked, complete), then
/// copied, so a pipe never gets half a video or an error page.
async fn to_stdout(app: &App) -> Result<(), NemoError> {
    use std::io::IsTerminal;
    let bad = |what: &str| Err(NemoError::new(ErrorKind::BadInput, what.to_owned()));
    if app.out.json() {
        return bad("--out - writes the video to stdout, where --json writes its objects: use one or the other.");
    }
    if std::io::stdout().is_terminal() {
        return bad("--out - writes the video to stdout, which is a terminal here: pipe it (`nemo export -o - | mpv -`) or give --out a file name.");
    }
    crate::output::take_stdout();
    let mut client = app.session_client(SessionChoice::Existing).await?;
    let exported = client
        .export_to(nemo_client::ExportTo::writer(tokio::io::stdout()))
        .await?;
    app.out.info(&crate::words::trf(
        "Wrote render {} to stdout ({}).",
        &[
            &exported.render_id,
            &crate::output::human_bytes(exported.bytes.unwrap_or(0)),
        ],
    ));
    Ok(())
}
