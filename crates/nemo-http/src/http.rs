//! [`HttpTransport`]: the core's [`Transport`] over reqwest.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, HeaderValue, Method, Request, Response, Target};
use reqwest::header::{HeaderMap, HeaderName, CONTENT_LENGTH, CONTENT_TYPE};
use tokio::sync::watch;

use crate::config::HttpConfig;
use crate::error::{display_url, Context};
use crate::stream::HttpByteStream;
use crate::upload;

/// Headers the transport computes itself; a request's own copies are dropped.
const COMPUTED: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// The real transport: one pooled reqwest client (rustls, HTTP/1.1 and
/// HTTP/2) and its [`HttpConfig`].
///
/// Cheap to share behind an `Arc`; every call rebuilds its request from the
/// core's [`Request`] (multipart bodies reopen their files) and sends it once.
/// `Debug` shows the configuration, never a credential.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    config: HttpConfig,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A request ready to go out, with what is needed to watch it.
pub(crate) struct Prepared {
    pub(crate) builder: reqwest::RequestBuilder,
    pub(crate) ctx: Context,
    upload: Option<upload::Upload>,
}

impl HttpTransport {
    /// A transport with the given settings.
    ///
    /// Fails only when the TLS backend cannot be set up or the base URL is
    /// not an `http`/`https` URL.
    pub fn new(config: HttpConfig) -> Result<Self, TransportError> {
        match reqwest::Url::parse(&config.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!("invalid API base URL: {}", display_url(&config.base_url)),
                ))
            }
        }
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            // Each request goes out once: the core's recovery policy decides
            // about retries, knowing which endpoints are safe to repeat.
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| {
                TransportError::new(
                    TransportErrorKind::Other,
                    format!("cannot set up the HTTP client: {}", crate::error::chain(&e)),
                )
            })?;
        Ok(Self { client, config })
    }

    /// The settings in use.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The full URL of a target.
    fn url(&self, target: &Target) -> String {
        match target {
            Target::Api(path) => {
                let base = self.config.base_url.trim_end_matches('/');
                if path.starts_with('/') {
                    format!("{base}{path}")
                } else {
                    format!("{base}/{path}")
                }
            }
            Target::Absolute(url) => url.clone(),
        }
    }

    /// Builds the reqwest request for one attempt. Local upload checks run
    /// here, before anything is sent.
    pub(crate) async fn prepare(&self, request: &Request) -> Result<Prepared, TransportError> {
        let url_text = self.url(&request.target);
        let ctx = Context::new(request, &url_text);
        let url = match reqwest::Url::parse(&url_text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return Err(ctx.error(TransportErrorKind::Other, "not an http(s) URL")),
        };
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 1);
        for header in &request.headers {
            if COMPUTED.iter().any(|c| header.name.eq_ignore_ascii_case(c)) {
                continue;
            }
            let invalid = || {
                ctx.error(
                    TransportErrorKind::Other,
                    format!("invalid header `{}`", header.name),
                )
            };
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| invalid())?;
            let mut value = reqwest::header::HeaderValue::from_str(header.value.expose())
                .map_err(|_| invalid())?;
            if matches!(header.value, HeaderValue::Sensitive(_)) {
                value.set_sensitive(true);
            }
            headers.append(name, value);
        }
        let mut builder = self.client.request(method, url).headers(headers);
        let mut upload = None;
        match &request.body {
            // A bodiless POST still says so: some gateways answer 411
            // Length Required otherwise.
            Body::Empty if request.method == Method::Post => {
                builder = builder.header(CONTENT_LENGTH, "0");
            }
            Body::Empty => {}
            Body::Json(json) => {
                builder = builder
                    .header(CONTENT_TYPE, "application/json")
                    .body(json.clone());
            }
            Body::Multipart(parts) => {
                let mut prepared = upload::prepare(parts, &ctx).await?;
                let form = std::mem::replace(&mut prepared.form, reqwest::multipart::Form::new());
                builder = builder.multipart(form);
                upload = Some(prepared);
            }
        }
        Ok(Prepared {
            builder,
            ctx,
            upload,
        })
    }

    /// Sends a prepared request and waits for the response head.
    ///
    /// The wait is bounded by inactivity, not by a total: the clock restarts
    /// whenever a chunk of the request body is handed to the connection, so
    /// a large upload that keeps moving never times out, and a server that
    /// does not answer within `head_timeout` after the last byte does.
    pub(crate) async fn execute(
        &self,
        prepared: Prepared,
        head_timeout: Duration,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<(reqwest::Response, Context), TransportError> {
        let Prepared {
            builder,
            ctx,
            upload,
        } = prepared;
        let started = tokio::time::Instant::now();
        let (mut sent, total, failure) = match upload {
            Some(u) => (Some(u.sent), u.total, Some(u.failure)),
            None => (None, 0, None),
        };
        if let (Some(report), true) = (progress, sent.is_some()) {
            report(Progress {
                done: 0,
                total: Some(total),
            });
        }
        let response = builder.send();
        tokio::pin!(response);
        let mut deadline = tokio::time::Instant::now() + head_timeout;
        let result = loop {
            tokio::select! {
                result = &mut response => break result,
                changed = changed(&mut sent) => match changed {
                    Some(done) => {
                        deadline = tokio::time::Instant::now() + head_timeout;
                        if let Some(report) = progress {
                            report(Progress { done, total: Some(total) });
                        }
                    }
                    None => sent = None,
                },
                () = tokio::time::sleep_until(deadline) => {
                    return Err(ctx.error(
                        TransportErrorKind::Timeout,
                        format!("no response for {} s", head_timeout.as_secs_f32()),
                    ));
                }
            }
        };
        match result {
            Ok(response) => {
                tracing::debug!(
                    request = ctx.label(),
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "response head"
                );
                Ok((response, ctx))
            }
            Err(e) => {
                // A file that could not be read stopped the body: that is
                // the error worth reporting, not the broken request it caused.
                if let Some(local) =
                    failure.and_then(|f| f.lock().ok().and_then(|mut slot| slot.take()))
                {
                    return Err(local);
                }
                let err = ctx.reqwest(e);
                tracing::debug!(request = ctx.label(), kind = ?err.kind, "request failed");
                Err(err)
            }
        }
    }

    /// Reads a whole (small) body, each chunk within the read timeout.
    pub(crate) async fn read_body(
        &self,
        response: reqwest::Response,
        ctx: &Context,
        limit: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.config.read_timeout, chunks.next())
                .await
                .map_err(|_| {
                    ctx.error(
                        TransportErrorKind::Timeout,
                        format!(
                            "the response body stalled for {} s",
                            self.config.read_timeout.as_secs_f32()
                        ),
                    )
                })?;
            match next {
                None => return Ok(body),
                Some(Err(e)) => {
                    let mut err = ctx.reqwest(e);
                    if err.kind != TransportErrorKind::Timeout {
                        err.kind = TransportErrorKind::Interrupted;
                    }
                    return Err(err);
                }
                Some(Ok(chunk)) => {
                    if body.len().saturating_add(chunk.len()) > limit {
                        return Err(ctx.error(
                            TransportErrorKind::Other,
                            format!("the response is larger than {limit} bytes"),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
    }
}

/// The next upload count, or `None` once the body is gone (or there is none:
/// then it never completes).
async fn changed(sent: &mut Option<watch::Receiver<u64>>) -> Option<u64> {
    match sent {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Status and headers (names lower case) of a response.
pub(crate) fn head(response: &reqwest::Response) -> (u16, Vec<(String, String)>) {
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    (response.status().as_u16(), headers)
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        let prepared = self.prepare(request).await?;
        let (response, ctx) = self
            .execute(prepared, self.config.read_timeout, progress)
            .await?;
        let (status, headers) = head(&response);
        let body = self
            .read_body(response, &ctx, self.config.max_response_bytes)
            .await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let mut prepared = self.prepare(request).await?;
        // The cap covers the whole exchange, head and body.
        prepared.builder = prepared.builder.timeout(self.config.stream_cap);
        let (response, ctx) = self
            .execute(prepared, self.config.stream_idle_timeout, None)
            .await?;
        let (status, headers) = head(&response);
        Ok(StreamResponse {
            status,
            headers,
            body: Box::new(HttpByteStream::new(
                response,
                self.config.stream_idle_timeout,
                ctx,
            )),
        })
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        crate::download::run(self, request, dest, options, progress).await
    }
}
