//! `nemo mcp`: the same engine as a Model Context Protocol server over
//! stdio, for AI agents (Claude Desktop, Cursor, Codex, …).
//!
//! Built on `rmcp`, the official Rust SDK. The configuration is the CLI's
//! ([`App`]: environment, config directory, token cache, client id,
//! `--skill`, the render-job journal). One session serves the server's whole
//! life, connected on first use; tool calls run one at a time.
//!
//! | tool | what it does |
//! |---|---|
//! | `upload` | files or media URLs into the session |
//! | `instruct` | one message to the agent → its words, or what a silent edit changed (spends credits) |
//! | `timeline` | the draft as a timeline summary |
//! | `credits` | the balance |
//! | `export` | render, wait with progress, download (or return the job id) |
//! | `render_status` | one look at a render |
//! | `jobs`, `resume_jobs` | the local job list, and finishing it |
//!
//! Prompts: one per skill flavour ([`prompts`]). Resource: the current
//! timeline at `nemo://timeline`. Stdout carries the protocol only: the
//! reporter is muted and anything else goes to stderr.

mod engine;
mod prompts;
mod schemas;
mod server;

use nemo_core::error::{ErrorKind, NemoError};
use rmcp::ServiceExt;

use crate::app::App;

pub(crate) use server::NemoServer;

/// Serves MCP over stdin/stdout until the client closes the connection (or
/// Ctrl-C).
pub(crate) async fn serve(app: App) -> Result<(), NemoError> {
    let verbose = app.global.verbose > 0;
    let server = NemoServer::new(app)?;
    if verbose {
        eprintln!("nemo mcp: serving MCP on stdin/stdout");
    }
    let service = server.serve(rmcp::transport::stdio()).await.map_err(|e| {
        NemoError::new(
            ErrorKind::Protocol,
            format!("The MCP connection could not be set up: {e}"),
        )
    })?;
    tokio::select! {
        ended = service.waiting() => {
            if let Err(e) = ended {
                eprintln!("nemo mcp: the connection ended: {e}");
            }
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    if verbose {
        eprintln!("nemo mcp: done");
    }
    Ok(())
}
