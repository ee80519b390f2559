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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use nemo_core::error::{ErrorKind, NemoError};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt;

use crate::app::App;

pub(crate) use server::NemoServer;

/// The environment variable holding the secret HTTP clients must send
/// (`Authorization: Bearer <secret>`): required to serve beyond loopback.
pub(crate) const SECRET_VAR: &str = "NEMO_MCP_SECRET";

/// The path the Streamable HTTP endpoint is served at.
pub(crate) const HTTP_PATH: &str = "/mcp";

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

/// Serves MCP over Streamable HTTP at `http://ADDR/mcp` until Ctrl-C, for
/// agents that cannot spawn a process (`nemo mcp --http ADDR`). Loopback
/// addresses only, unless `NEMO_MCP_SECRET` is set: then every request must
/// carry `Authorization: Bearer <secret>` (on loopback too). All clients
/// share one engine: one session, one piece of work at a time.
pub(crate) async fn serve_http(app: App, addr: SocketAddr) -> Result<(), NemoError> {
    let verbose = app.global.verbose > 0;
    let chosen = std::env::var(SECRET_VAR)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    // Even on loopback every request carries a secret: any local user or
    // process could otherwise spend the credits and read or write files as
    // this user. Without NEMO_MCP_SECRET (required beyond loopback), a
    // one-time secret is made and told to the operator below.
    let made = chosen.is_none() && addr.ip().is_loopback();
    let secret = chosen.or_else(|| {
        made.then(|| {
            format!(
                "{:016x}{:016x}",
                nemo_client::random_seed(),
                nemo_client::random_seed()
            )
        })
    });
    let shown = secret.clone();
    let (bound, server) = bind_http(app, addr, secret).await?;
    // Stderr: where the agent's configuration should point.
    eprintln!("nemo mcp: serving MCP at http://{bound}{HTTP_PATH}");
    if let (true, Some(secret)) = (made, shown) {
        eprintln!(
            "nemo mcp: clients send `Authorization: Bearer {secret}` (a one-time secret; set {SECRET_VAR} to choose one)"
        );
    }
    tokio::select! {
        ended = server => ended?,
        _ = tokio::signal::ctrl_c() => {}
    }
    if verbose {
        eprintln!("nemo mcp: done");
    }
    Ok(())
}

/// Binds `addr` and returns the address bound and the server to run.
async fn bind_http(
    app: App,
    addr: SocketAddr,
    secret: Option<String>,
) -> Result<(SocketAddr, impl Future<Output = Result<(), NemoError>>), NemoError> {
    let loopback = addr.ip().is_loopback();
    match &secret {
        None if !loopback => {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!(
                    "Serving MCP on {addr} opens it beyond this machine: set {SECRET_VAR} to a \
secret of at least 16 characters (clients then send `Authorization: Bearer <secret>`), or serve \
on 127.0.0.1."
                ),
            ))
        }
        Some(s) if s.chars().count() < 16 => {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!("{SECRET_VAR} is too short: at least 16 characters."),
            ))
        }
        _ => {}
    }
    let engine = Arc::new(engine::Engine::new(app)?);
    let mut config = StreamableHttpServerConfig::default();
    if !loopback {
        // Reached by other names than localhost: the secret guards it.
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(NemoServer::with_engine(engine.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let secret: Option<Arc<str>> = secret.map(Into::into);
    let endpoint = move |request: axum::extract::Request| {
        let service = service.clone();
        let secret = secret.clone();
        async move {
            use axum::response::IntoResponse;
            if !authorised(&request, secret.as_deref()) {
                return (
                    axum::http::StatusCode::UNAUTHORIZED,
                    [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                    "Send Authorization: Bearer <the server's NEMO_MCP_SECRET>.\n",
                )
                    .into_response();
            }
            service.handle(request).await.into_response()
        }
    };
    let router = axum::Router::new().route(HTTP_PATH, axum::routing::any(endpoint));
    let cannot = |e: std::io::Error| {
        NemoError::new(
            ErrorKind::BadInput,
            format!("Cannot serve MCP on {addr}: {e}."),
        )
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(cannot)?;
    let bound = listener.local_addr().map_err(cannot)?;
    let server = async move {
        axum::serve(listener, router).await.map_err(|e| {
            NemoError::new(
                ErrorKind::Network,
                format!("The MCP HTTP server stopped: {e}."),
            )
        })
    };
    Ok((bound, server))
}

/// True when no secret is set, or the request carries it as a bearer token
/// (compared in constant time).
fn authorised(request: &axum::extract::Request, secret: Option<&str>) -> bool {
    let Some(secret) = secret else {
        return true;
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECRET: &str = "a-secret-of-24-characters";

    fn app(dir: &std::path::Path) -> App {
        let cli = crate::cli::parse_from(["nemo", "mcp"]).expect("parse");
        let out = Arc::new(crate::output::Output::new(false, 0, false).muted());
        let store = crate::store::open(dir.to_path_buf());
        // Nothing is sent to the API: only the MCP handshake is tested.
        App::build(
            &cli.global,
            out,
            store,
            "http://127.0.0.1:9".into(),
            nemo_client::Env::default(),
        )
        .expect("app")
    }

    /// Posts an `initialize` by hand; returns the status code and the body.
    async fn initialize(addr: SocketAddr, bearer: Option<&str>) -> (u16, String) {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let auth = bearer
            .map(|b| format!("Authorization: Bearer {b}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST {HTTP_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
                    .await
                    .expect("an answer in time")
                    .expect("read");
            if read == 0 {
                break;
            }
            got.extend_from_slice(&buf[..read]);
            let text = String::from_utf8_lossy(&got);
            if text.starts_with("HTTP/1.1 401") || text.contains("serverInfo") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    #[tokio::test]
    async fn http_needs_the_secret_beyond_loopback_and_checks_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let any: SocketAddr = "0.0.0.0:0".parse().expect("addr");
        let refused = bind_http(app(dir.path()), any, None)
            .await
            .err()
            .expect("refused");
        assert!(refused.message.contains(SECRET_VAR), "{refused}");
        let short = bind_http(app(dir.path()), any, Some("short".into()))
            .await
            .err()
            .expect("refused");
        assert!(short.message.contains("too short"), "{short}");

        let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let (addr, server) = bind_http(app(dir.path()), local, Some(SECRET.into()))
            .await
            .expect("bound");
        let server = tokio::spawn(server);
        let (status, _) = initialize(addr, None).await;
        assert_eq!(status, 401);
        let (status, _) = initialize(addr, Some("a-secret-of-24-characterZ")).await;
        assert_eq!(status, 401);
        let (status, body) = initialize(addr, Some(SECRET)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"name\":\"nemo\""), "{body}");
        server.abort();

        // Loopback without a secret: open to this machine only.
        let (addr, server) = bind_http(app(dir.path()), local, None)
            .await
            .expect("bound");
        let server = tokio::spawn(server);
        let (status, body) = initialize(addr, None).await;
        assert_eq!(status, 200, "{body}");
        server.abort();
    }
}
