//! [`HttpTransport`]: the core's [`Transport`] over reqwest.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, HeaderValue, Method, Request, Response, Target};
use reqwest::header::{HeaderMap, HeaderName, CONTENT_LENGTH, CONTENT_TYPE};
use tokio::sync::watch;
use tokio::time::Instant;

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
            .connect_timeout(config.real(config.connect_timeout))
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            // Each request goes out once: the core's recovery policy decides
            // about retries, knowing which endpoints are safe to repeat.
            .retry(reqwest::retry::never())
            // No redirect is followed by reqwest: it would carry every header
            // but `Authorization` and `Cookie` to whatever host the answer
            // names (the client id, the attribution). An API call reports a
            // redirect as an error; a download follows its CDN's itself,
            // without the API's headers (see `download`).
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
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
    pub(crate) fn url(&self, target: &Target) -> String {
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
        let ctx = Context::new(request, &url_text, self.config.scale());
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
    /// Two clocks bound the wait. The idle one restarts whenever a chunk of
    /// the request body is handed to the connection, so a large upload that
    /// keeps moving is not cut by it, and a server that does not answer
    /// within `head_timeout` after the last byte is; the overall `deadline`
    /// never moves.
    pub(crate) async fn execute(
        &self,
        prepared: Prepared,
        head_timeout: Duration,
        deadline: Deadline,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<(reqwest::Response, Context), TransportError> {
        let Prepared {
            builder,
            ctx,
            upload,
        } = prepared;
        let started = Instant::now();
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
        let mut last_activity = Instant::now();
        let result = loop {
            let idle_at = (last_activity + head_timeout).min(deadline.at);
            tokio::select! {
                result = &mut response => break result,
                changed = changed(&mut sent) => match changed {
                    Some(done) => {
                        last_activity = Instant::now();
                        if let Some(report) = progress {
                            report(Progress { done, total: Some(total) });
                        }
                    }
                    None => sent = None,
                },
                () = tokio::time::sleep_until(idle_at) => {
                    if deadline.passed() {
                        return Err(deadline.error(&ctx));
                    }
                    return Err(ctx.error(
                        TransportErrorKind::Timeout,
                        format!("no response for {}", ctx.seconds(last_activity.elapsed())),
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

    /// Reads a whole (small) body: each chunk within the read timeout, all of
    /// it before `deadline`.
    pub(crate) async fn read_body(
        &self,
        response: reqwest::Response,
        ctx: &Context,
        limit: usize,
        deadline: Deadline,
    ) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        loop {
            let idle = self.config.real(self.config.read_timeout);
            match next_chunk(&mut chunks, idle, deadline, ctx).await? {
                None => return Ok(body),
                Some(Err(err)) => return Err(err),
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

/// The overall deadline of one call, and when the call started, so that a
/// timeout says how long it really waited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    started: Instant,
    pub(crate) at: Instant,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub(crate) fn after(limit: Duration) -> Self {
        let started = Instant::now();
        Self {
            started,
            at: started + limit,
        }
    }

    /// True once the deadline is reached.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// How long the call has been running.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The timeout error for a call that ran out of time.
    pub(crate) fn error(&self, ctx: &Context) -> TransportError {
        ctx.error(
            TransportErrorKind::Timeout,
            format!("no complete answer within {}", ctx.seconds(self.elapsed())),
        )
    }
}

/// The next chunk of a body, within the idle timeout and the deadline.
/// `Err` for a timeout (idle, or the deadline: then the message is the
/// deadline's); `Some(Err)` for a broken connection, always `Interrupted`
/// unless reqwest itself timed out.
pub(crate) async fn next_chunk<S>(
    chunks: &mut S,
    idle: Duration,
    deadline: Deadline,
    ctx: &Context,
) -> Result<Option<Result<Bytes, TransportError>>, TransportError>
where
    S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    let waiting = Instant::now();
    let at = (waiting + idle).min(deadline.at);
    match tokio::time::timeout_at(at, chunks.next()).await {
        Ok(None) => Ok(None),
        Ok(Some(Ok(chunk))) => Ok(Some(Ok(chunk))),
        Ok(Some(Err(e))) => {
            let mut err = ctx.reqwest(e);
            if err.kind != TransportErrorKind::Timeout {
                err.kind = TransportErrorKind::Interrupted;
            }
            Ok(Some(Err(err)))
        }
        Err(_) if deadline.passed() => Err(deadline.error(ctx)),
        Err(_) => Err(ctx.error(
            TransportErrorKind::Timeout,
            format!("no data for {}", ctx.seconds(waiting.elapsed())),
        )),
    }
}

/// An API call's answer that is a redirect: refused, and said so (where it
/// pointed, without its query).
fn refuse_redirect(response: &reqwest::Response, ctx: &Context) -> Option<TransportError> {
    let status = response.status();
    if !status.is_redirection() {
        return None;
    }
    let to = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| response.url().join(l).ok())
        .map(|u| format!(" to {}", display_url(u.as_str())))
        .unwrap_or_default();
    Some(ctx.error(
        TransportErrorKind::Other,
        format!(
            "the server answered with a redirect (HTTP {}){to}; API calls do not follow redirects",
            status.as_u16()
        ),
    ))
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
        // Files get time in proportion to their size on top of the usual.
        let mut limit = self.config.request_timeout;
        if let Some(upload) = &prepared.upload {
            let rate = self.config.upload_min_rate.max(1);
            limit += Duration::from_secs_f64(upload.total as f64 / rate as f64);
        }
        let deadline = Deadline::after(self.config.real(limit));
        let idle = self.config.real(self.config.read_timeout);
        let (response, ctx) = self.execute(prepared, idle, deadline, progress).await?;
        if let Some(err) = refuse_redirect(&response, &ctx) {
            return Err(err);
        }
        let (status, headers) = head(&response);
        let body = self
            .read_body(response, &ctx, self.config.max_response_bytes, deadline)
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
        let cap = self.config.real(self.config.stream_cap);
        let idle = self.config.real(self.config.stream_idle_timeout);
        prepared.builder = prepared.builder.timeout(cap);
        let deadline = Deadline::after(cap);
        let (response, ctx) = self.execute(prepared, idle, deadline, None).await?;
        if let Some(err) = refuse_redirect(&response, &ctx) {
            return Err(err);
        }
        let (status, headers) = head(&response);
        Ok(StreamResponse {
            status,
            headers,
            body: Box::new(HttpByteStream::new(response, Some(idle), ctx)),
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
