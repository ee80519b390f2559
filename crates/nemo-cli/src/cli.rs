//! The command line: global flags and the subcommands, each defined in its
//! own file under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// Drive the NemoVideo cloud video agent: edit, generate and export videos
/// from a terminal or a script.
#[derive(Debug, Parser)]
#[command(
    name = "nemo",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Start with `nemo demo` (offline, no token). Exit codes: 0 success, 1 permanent failure, \
2 transient failure (safe to retry), 130 interrupted."
)]
pub(crate) struct Cli {
    /// Global options.
    #[command(flatten)]
    pub(crate) global: Global,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Global {
    /// Print NDJSON on stdout (one object per line, each with a `type`), nothing else.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The skill flavour: video-download-online, video-maker-free-download-app,
    /// generator-by-link or video-openapi.
    #[arg(
        long,
        global = true,
        env = "NEMO_SKILL",
        hide_env_values = true,
        value_name = "NAME"
    )]
    pub(crate) skill: Option<String>,
    /// Continue this session instead of the last one.
    #[arg(long, global = true, value_name = "ID", conflicts_with = "new_session")]
    pub(crate) session: Option<String>,
    /// Start a new session instead of continuing the last one.
    #[arg(long, global = true)]
    pub(crate) new_session: bool,
    /// The session language (en, zh, …).
    #[arg(long, global = true, value_name = "CODE", default_value = "en")]
    pub(crate) lang: String,
    /// Record every exchange with the service to this HAR 1.2 file (tokens
    /// redacted); replay it offline with `nemo replay`.
    #[arg(long, global = true, value_name = "FILE.har")]
    pub(crate) record: Option<std::path::PathBuf>,
    /// Say more: every status line, session and render ids (on stderr).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Interactive conversation (line editing, history).
    Chat(commands::chat::Args),
    /// One turn, routed by intent (export, credits, status and upload words skip the agent).
    Say(commands::say::Args),
    /// Upload local files or media URLs to the session.
    Upload(commands::upload::Args),
    /// Show the credit balance.
    Credits(commands::credits::Args),
    /// The current draft as a timeline summary.
    #[command(visible_alias = "state")]
    Timeline(commands::timeline::Args),
    /// Render the draft, wait with progress, download.
    Export(commands::export::Args),
    /// Render jobs recorded locally; --resume finishes them.
    Jobs(commands::jobs::Args),
    /// The quick-edit workflow in one command: connect, upload, instruct, export, download.
    Run(commands::run::Args),
    /// Many inputs, one instruction and one render each, from a TOML or JSON manifest.
    Batch(commands::batch::Args),
    /// Serve the engine to AI agents over the Model Context Protocol (stdio).
    Mcp(commands::mcp::Args),
    /// Replay a recorded session (HAR) offline and print what the user saw; --check compares requests.
    Replay(commands::replay::Args),
    /// Run the NemoVideo simulator on 127.0.0.1 (for tests and offline work).
    Mock(commands::mock::Args),
    /// The whole workflow against the embedded simulator: no network, no token.
    Demo(commands::demo::Args),
    /// Print a shell completion script.
    Completions(commands::completions::Args),
}

/// Parses the command line. Help and version go to stdout with exit 0; a
/// usage error is printed once and is a permanent failure (exit 1).
pub(crate) fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            // Printing help can only fail on a closed pipe, which is fine.
            let _ = err.print();
            Err(ExitCode::from(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
