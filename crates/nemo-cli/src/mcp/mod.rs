//! `nemo mcp`: the same engine as a Model Context Protocol server over
//! stdio, for AI agents (Claude Desktop, Cursor, Codex, …).
//!
//! Built on `rmcp`, the official Rust SDK. The configuration is the CLI's
//! ([`App`]: environment, config directory, token cache, client id,
//! `--skill`, the render-job journal). One session at a time (`--session`,
//! else the last one, else a new one on first use; `new_session` and
//! `sessions` switch), connected on first use.
//!
//! Long work is done properly (see `docs/MCP.md`): `instruct` and `export`
//! run in the background of the server; the call waits with progress
//! notifications (keep-alives included, so clients that reset their
//! timeout on progress never give up), or returns the turn or render id at
//! once (`wait: false`), or runs as an MCP task for clients that declare the
//! tasks extension. `idempotency_key` makes a retried `instruct` return the
//! same turn instead of sending the message again. Work runs one piece at a
//! time (a second one is refused with words saying what runs); queries
//! (`timeline`, `credits`, `turn_status`, `render_status`, `jobs`) never
//! wait behind it.
//!
//! | tool | what it does |
//! |---|---|
//! | `upload` | files or media URLs into the session |
//! | `instruct` | one message to the agent → its words, or what a silent edit changed (spends credits) |
//! | `turn_status`, `cancel_turn` | a turn's steps, words so far and outcome; stop waiting for it |
//! | `timeline`, `credits` | the draft as a timeline summary; the balance |
//! | `export` | render and download, waiting with progress or in the background |
//! | `render_status`, `cancel_render` | one look at a render; cancel it on the server |
//! | `jobs`, `resume_jobs` | the local job list, and finishing it |
//! | `sessions`, `new_session`, `claim_link` | list and switch sessions, start one, open it in the browser |
//!
//! Prompts: one per skill flavour ([`prompts`]). Resources: the timeline at
//! `nemo://timeline`, the balance at `nemo://credits`. Every tool has an
//! `outputSchema` ([`schemas`]) and answers `structuredContent`. Stdout
//! carries the protocol only: the reporter is muted and anything else goes
//! to stderr.

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
