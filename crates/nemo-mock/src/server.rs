//! The simulator over real HTTP (axum on tokio), bound to 127.0.0.1.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{Backend, Incoming, IncomingBody, MultipartSource, PartSink, UploadFail};
use crate::body::Reply;
use crate::config::MockConfig;
use crate::journal::Journal;

/// Largest non-multipart request body read (JSON bodies carry drafts).
const MAX_JSON_BODY: usize = 32 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    backend: Arc<Backend>,
    shutdown: watch::Receiver<bool>,
}

/// A running simulator on `127.0.0.1`.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let server = nemo_mock::MockServer::start(nemo_mock::MockConfig::fast()).await?;
/// println!("API base: {}", server.url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    url: String,
    backend: Arc<Backend>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Starts a simulator on `127.0.0.1` on any free port.
    pub async fn start(config: MockConfig) -> io::Result<MockServer> {
        Self::bind(config, 0).await
    }

    /// Starts a simulator on `127.0.0.1:port` (0 = any free port).
    pub async fn bind(config: MockConfig, port: u16) -> io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let backend = Arc::new(Backend::new(config, url.clone())?);
        let (tx, rx) = watch::channel(false);
        let state = AppState {
            backend: backend.clone(),
            shutdown: rx.clone(),
        };
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(state);
        let mut stop = rx;
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|v| *v).await;
            });
            let _ = serve.await;
        });
        Ok(MockServer {
            addr,
            url,
            backend,
            shutdown: tx,
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request journal.
    pub fn journal(&self) -> &Journal {
        &self.backend.journal
    }

    /// The session's current draft (after edits that have landed), if any.
    pub fn draft(&self, session_id: &str) -> Option<serde_json::Value> {
        self.backend.draft(session_id)
    }

    /// `(available, frozen)` credits of the user behind a token.
    pub fn credits(&self, token: &str) -> Option<(u64, u64)> {
        self.backend.credits_of(token)
    }

    /// Stops accepting, breaks open streams, and waits (at most 2 s) for the
    /// server to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Runs the simulator for `nemo mock`: binds `127.0.0.1:port`, prints
/// `listening on http://127.0.0.1:PORT` as the first line on stdout, and
/// serves until Ctrl-C.
pub async fn run(config: MockConfig, port: u16) -> io::Result<()> {
    use std::io::Write;
    let server = MockServer::bind(config, port).await?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {}", server.url())?;
        out.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}

struct AxumParts {
    multipart: Multipart,
    summary: String,
}

fn broken(e: impl std::fmt::Display) -> UploadFail {
    UploadFail::Broken(format!("malformed multipart body: {e}"))
}

#[async_trait]
impl MultipartSource for AxumParts {
    async fn next_part(&mut self, sink: &mut (dyn PartSink + Send)) -> Result<bool, UploadFail> {
        let Some(mut field) = self.multipart.next_field().await.map_err(broken)? else {
            return Ok(false);
        };
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let keep = sink.begin(&name, filename.as_deref()).await?;
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(broken)? {
            size += chunk.len() as u64;
            if keep {
                sink.write(&chunk).await?;
            }
        }
        if keep {
            sink.end().await?;
        }
        if !self.summary.is_empty() {
            self.summary.push_str(", ");
        }
        self.summary.push_str(&format!(
            "{name}={} ({size} bytes)",
            filename.as_deref().unwrap_or("-")
        ));
        Ok(true)
    }

    fn summary(&self) -> String {
        "multipart/form-data".into()
    }

    async fn drain(&mut self) {
        while let Ok(Some(mut field)) = self.multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    }
}

async fn handle(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let multipart = headers.iter().any(|(n, v)| {
        n == "content-type" && v.to_ascii_lowercase().starts_with("multipart/form-data")
    });
    let body = if multipart {
        match Multipart::from_request(request, &()).await {
            Ok(m) => IncomingBody::Multipart(Box::new(AxumParts {
                multipart: m,
                summary: String::new(),
            })),
            Err(e) => return plain(400, &format!("malformed multipart request: {e}")),
        }
    } else {
        match axum::body::to_bytes(request.into_body(), MAX_JSON_BODY).await {
            Ok(b) if b.is_empty() => IncomingBody::Empty,
            Ok(b) => IncomingBody::Bytes(b),
            Err(_) => return plain(413, "Request Entity Too Large"),
        }
    };
    let reply = state
        .backend
        .handle(Incoming {
            method,
            path,
            headers,
            body,
        })
        .await;
    into_response(reply, &state)
}

fn plain(status: u16, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_owned()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn into_response(mut reply: Reply, state: &AppState) -> Response {
    let length = reply.content_length();
    let whole = reply.whole_bytes();
    let (status, headers, reader) = reply.into_parts(state.backend.clock);
    let body = match whole {
        Some(bytes) => Body::from(bytes),
        None => {
            let shutdown = state.shutdown.clone();
            let stream = futures_util::stream::unfold(
                (reader, shutdown, false),
                |(mut r, mut sd, stopped)| async move {
                    if stopped {
                        return None;
                    }
                    let item = tokio::select! {
                        item = r.next() => item,
                        _ = sd.wait_for(|v| *v) => Some(Err(crate::body::Broken)),
                    };
                    match item {
                        None => None,
                        Some(Ok(b)) => Some((Ok::<Bytes, io::Error>(b), (r, sd, false))),
                        Some(Err(_)) => {
                            // Let the server flush what was sent before breaking
                            // the connection, as a real mid-body reset would.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let e = io::Error::new(
                                io::ErrorKind::ConnectionReset,
                                "simulated connection reset",
                            );
                            Some((Err(e), (r, sd, true)))
                        }
                    }
                },
            );
            Body::from_stream(stream)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.append(n, v);
        }
    }
    if let Some(n) = length {
        h.insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    response
}
