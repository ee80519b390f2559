//! Downloads: [`nemo_files`] places the file (temporary file of the call's
//! own, checks, resume within bounds, sync, rename — see its docs); this
//! module only fetches: each attempt is the request rebuilt and sent once
//! with reqwest, with `Range`/`If-Range` when resuming.
//!
//! A render's file often sits behind a redirect (the API's fallback endpoint
//! to a CDN, a CDN to its edge): redirects are followed here, at most
//! [`MAX_REDIRECTS`] of them, and a hop to another origin (scheme, host or
//! port) carries none of the request's own headers — no token, no client
//! id, no attribution; only `Range`/`If-Range`.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, TransportError,
    TransportErrorKind,
};
use nemo_core::wire::{Body, Endpoint, Method, Request, Target};
use nemo_files::{BoxFuture, Fetch, Limits, Resume};
use reqwest::header::{IF_RANGE, RANGE};

use crate::error::Context;
use crate::http::{head, Deadline, HttpTransport};
use crate::stream::HttpByteStream;

/// How much later than `nemo_files`' own bounds this transport's timers
/// fire, so that the engine's (with its messages) always come first.
const MARGIN: Duration = Duration::from_secs(1);

/// The most redirects one download attempt follows.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Runs one download call.
pub(crate) async fn run(
    transport: &HttpTransport,
    request: &Request,
    dest: &Path,
    options: DownloadOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<DownloadOutcome, TransportError> {
    let config = transport.config();
    // Built once up front for its context (an invalid URL is reported before
    // the target is looked at); nothing is sent yet.
    let ctx = transport.prepare(request).await?.ctx;
    let limits = Limits {
        read_timeout: config.real(config.read_timeout),
        overall: config.real(config.download_timeout),
        resume_attempts: config.download_resume_attempts,
        max_refused_body: config.max_response_bytes,
    };
    let mut fetch = HttpFetch {
        transport,
        request,
        ctx,
        deadline: Deadline::after(config.real(config.download_timeout).saturating_add(MARGIN)),
    };
    nemo_files::download(&mut fetch, dest, options, limits, progress).await
}

/// One reqwest GET per attempt.
struct HttpFetch<'a> {
    transport: &'a HttpTransport,
    request: &'a Request,
    ctx: Context,
    deadline: Deadline,
}

impl Fetch for HttpFetch<'_> {
    fn fetch(
        &mut self,
        resume: Option<Resume>,
    ) -> BoxFuture<'_, Result<StreamResponse, TransportError>> {
        Box::pin(async move {
            let config = self.transport.config();
            let head_timeout = config.real(config.read_timeout).saturating_add(MARGIN);
            let home = origin(&self.transport.url(&self.request.target));
            let mut request = Cow::Borrowed(self.request);
            for _ in 0..=MAX_REDIRECTS {
                let mut prepared = self.transport.prepare(&request).await?;
                if let Some(resume) = &resume {
                    prepared.builder = prepared.builder.header(RANGE, resume.range());
                    if let Some(validator) = &resume.validator {
                        prepared.builder = prepared.builder.header(IF_RANGE, validator.as_str());
                    }
                }
                let (response, ctx) = self
                    .transport
                    .execute(prepared, head_timeout, self.deadline, None)
                    .await?;
                if let Some(next) = redirect(&response, &ctx)? {
                    // The API's headers stay with the API's origin.
                    let headers = if home.is_some() && origin(next.as_str()) == home {
                        self.request.headers.clone()
                    } else {
                        Vec::new()
                    };
                    request = Cow::Owned(Request {
                        endpoint: Endpoint::Download,
                        method: Method::Get,
                        target: Target::Absolute(next.into()),
                        headers,
                        body: Body::Empty,
                    });
                    continue;
                }
                let (status, headers) = head(&response);
                return Ok(StreamResponse {
                    status,
                    headers,
                    // No idle timer of its own: the engine's bounds every wait.
                    body: Box::new(HttpByteStream::new(response, None, ctx)),
                });
            }
            Err(self.ctx.error(
                TransportErrorKind::Other,
                format!("more than {MAX_REDIRECTS} redirects"),
            ))
        })
    }

    fn error(&self, kind: TransportErrorKind, what: String) -> TransportError {
        self.ctx.error(kind, what)
    }

    fn label(&self) -> &str {
        self.ctx.label()
    }
}

/// Where a redirect answer points (`301`, `302`, `303`, `307`, `308` with a
/// `Location`), resolved against the URL asked; `None` for any other answer.
/// A redirect to anything but `http`/`https` is an error.
fn redirect(
    response: &reqwest::Response,
    ctx: &Context,
) -> Result<Option<reqwest::Url>, TransportError> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
    else {
        return Ok(None);
    };
    match response.url().join(location) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
        _ => Err(ctx.error(
            TransportErrorKind::Other,
            format!(
                "a redirect (HTTP {}) to an address that is not http(s)",
                response.status().as_u16()
            ),
        )),
    }
}

/// Scheme, host and port of a URL: what must match for a redirect to keep
/// the request's headers.
fn origin(url: &str) -> Option<(String, String, Option<u16>)> {
    let url = reqwest::Url::parse(url).ok()?;
    Some((
        url.scheme().to_owned(),
        url.host_str()?.to_owned(),
        url.port_or_known_default(),
    ))
}
