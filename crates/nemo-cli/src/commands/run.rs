//! `nemo run <TEXT> [--file PATH]… [--url URL]… [--out PATH]`: the
//! quick-edit workflow in one command — connect, upload, instruct, export,
//! download. Every input is checked before anything is sent.

use std::path::PathBuf;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::Event;
use nemo_core::machine::{Command, ExportOptions};
use nemo_core::wire::FilePart;

use crate::app::{App, Client, SessionChoice};
use crate::inputs;

/// Arguments of `nemo run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The instruction, e.g. "add lo-fi background music at 35% and a title".
    #[arg(value_name = "TEXT")]
    pub(crate) text: String,
    /// A local file to upload first (repeatable).
    #[arg(long = "file", value_name = "PATH")]
    pub(crate) files: Vec<PathBuf>,
    /// A media URL to upload first (repeatable).
    #[arg(long = "url", value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// Where to save the MP4 (default: `<render id>.mp4` here).
    #[arg(long, short, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
    /// Replace the file at --out if it exists (only a regular file).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo run` (in a new session unless `--session` is given).
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    let (files, urls) = inputs::attachments(&args.files, &args.urls)?;
    app.preflight_export(
        args.out.as_deref(),
        true,
        args.overwrite,
        inputs::Asker::Command,
    )?;
    let mut client = app.session_client(SessionChoice::NewUnlessGiven).await?;
    quick_edit(
        &mut client,
        files,
        urls,
        args.text,
        args.out,
        args.overwrite,
    )
    .await
}

/// Connect, upload, instruct, export, download: shared with `nemo batch`.
/// When the agent answers the instruction only with a question (the draft
/// unchanged), nothing is rendered: a render of the unedited draft would
/// spend credits on what nobody asked for.
pub(crate) async fn quick_edit(
    client: &mut Client,
    files: Vec<FilePart>,
    urls: Vec<String>,
    text: String,
    out: Option<PathBuf>,
    overwrite: bool,
) -> Result<(), NemoError> {
    client.reporter.set_exporting(true);
    client.run(Command::Connect).await?;
    if !files.is_empty() || !urls.is_empty() {
        client.run(Command::Upload { files, urls }).await?;
    }
    if !text.trim().is_empty() {
        let before = timeline(client).await?;
        let mut turn = nemo_client::Turn::default();
        client
            .run_until(
                Command::Instruct(text),
                &mut |ev| turn.see(ev),
                crate::app::ctrl_c(),
            )
            .await?;
        let reply = turn.text();
        let asked = reply
            .trim_end()
            .ends_with(['?', '？'])
            .then_some(reply.trim());
        if let Some(question) = asked {
            if turn.changes.is_empty() && timeline(client).await? == before {
                return Err(NemoError::new(
                    ErrorKind::BadInput,
                    format!(
                        "The agent asked a question instead of editing, so nothing was rendered: \"{}\" Answer it in the instruction (or with `nemo say`), then export.",
                        nemo_core::ids::printable_line(question)
                    ),
                ));
            }
        }
    }
    client
        .run(Command::Export(ExportOptions {
            render_id: None,
            download: true,
            out,
            overwrite,
        }))
        .await
}

/// The draft's timeline summary, quietly (it is not shown).
async fn timeline(client: &mut Client) -> Result<Option<String>, NemoError> {
    let mut summary = None;
    client
        .run_quiet(Command::Timeline, &mut |ev| {
            if let Event::Timeline { summary: s, .. } = ev {
                summary = Some(s.clone());
            }
        })
        .await?;
    Ok(summary)
}
