//! `nemo mcp`: serve the engine to AI agents over the Model Context
//! Protocol (stdio). See [`crate::mcp`].

use std::sync::Arc;

use nemo_core::error::NemoError;

use crate::app::App;
use crate::cli::Global;
use crate::output::Output;

/// Arguments of `nemo mcp`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Stdin and stdout carry the protocol; warnings (and -v notes) go to stderr. In an MCP \
client (Claude Desktop, Cursor, …) configure the command `nemo` with the arguments [\"mcp\"] and, if \
needed, env NEMO_TOKEN / NEMO_SKILL. Tools: upload, instruct (wait, idempotency_key), turn_status, \
cancel_turn, timeline, credits, export (wait), render_status, cancel_render, jobs, resume_jobs, \
sessions, new_session, claim_link; prompts for the four flavours; resources nemo://timeline, \
nemo://credits, nemo://draft. See docs/MCP.md.

Examples:
  nemo mcp                              # speak MCP on stdin/stdout
  claude mcp add nemo -- nemo mcp       # register it with an agent
  nemo mcp --http 127.0.0.1:8765        # Streamable HTTP at http://127.0.0.1:8765/mcp
  NEMO_MCP_SECRET=… nemo mcp --http 0.0.0.0:8765   # beyond this machine: a bearer secret"
)]
pub(crate) struct Args {
    /// Serve MCP over Streamable HTTP at ADDR (path /mcp) instead of stdio.
    /// Loopback only, unless NEMO_MCP_SECRET (16+ characters) is set: then
    /// every request must carry `Authorization: Bearer <secret>`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<std::net::SocketAddr>,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// Runs `nemo mcp`. Stdout belongs to the protocol, so nothing the session
/// reports is printed; warnings and `-v` notes go to stderr.
pub(crate) async fn exec(args: Args, global: &Global) -> Result<(), NemoError> {
    let out = Arc::new(Output::new(false, global.verbose, false).muted());
    let app = App::from_env(global, out)?;
    match args.http {
        Some(addr) => crate::mcp::serve_http(app, addr).await,
        None => crate::mcp::serve(app).await,
    }
}
