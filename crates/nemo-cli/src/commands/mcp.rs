//! `nemo mcp`: serve the engine to AI agents over the Model Context
//! Protocol (stdio). See [`crate::mcp`].

use std::sync::Arc;

use nemo_core::error::NemoError;

use crate::app::App;
use crate::cli::Global;
use crate::output::Output;

/// Arguments of `nemo mcp` (none: the global options and the environment
/// configure it).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Stdin and stdout carry the protocol; warnings (and -v notes) go to stderr. In an MCP \
client (Claude Desktop, Cursor, …) configure the command `nemo` with the arguments [\"mcp\"] and, if \
needed, env NEMO_TOKEN / NEMO_SKILL. Tools: upload, instruct, timeline, credits, export, \
render_status, jobs, resume_jobs; prompts for the four flavours; resource nemo://timeline."
)]
pub(crate) struct Args {}

/// Runs `nemo mcp`. Stdout belongs to the protocol, so nothing the session
/// reports is printed; warnings and `-v` notes go to stderr.
pub(crate) async fn exec(_args: Args, global: &Global) -> Result<(), NemoError> {
    let out = Arc::new(Output::new(false, global.verbose, false).muted());
    let app = App::from_env(global, out)?;
    crate::mcp::serve(app).await
}
