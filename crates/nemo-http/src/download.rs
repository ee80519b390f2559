//! Downloads: [`nemo_files`] places the file (temporary file of the call's
//! own, checks, resume within bounds, sync, rename — see its docs); this
//! module only fetches: each attempt is the request rebuilt and sent once
//! with reqwest, with `Range`/`If-Range` when resuming.

use std::path::Path;
use std::time::Duration;

use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, TransportError,
    TransportErrorKind,
};
use nemo_core::wire::Request;
use nemo_files::{BoxFuture, Fetch, Limits, Resume};
use reqwest::header::{IF_RANGE, RANGE};

use crate::error::Context;
use crate::http::{head, Deadline, HttpTransport};
use crate::stream::HttpByteStream;

/// How much later than `nemo_files`' own bounds this transport's timers
/// fire, so that the engine's (with its messages) always come first.
const MARGIN: Duration = Duration::from_secs(1);

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
        read_timeout: config.read_timeout,
        overall: config.download_timeout,
        resume_attempts: config.download_resume_attempts,
        max_refused_body: config.max_response_bytes,
    };
    let mut fetch = HttpFetch {
        transport,
        request,
        ctx,
        deadline: Deadline::after(config.download_timeout.saturating_add(MARGIN)),
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
            let mut prepared = self.transport.prepare(self.request).await?;
            if let Some(resume) = &resume {
                prepared.builder = prepared.builder.header(RANGE, resume.range());
                if let Some(validator) = &resume.validator {
                    prepared.builder = prepared.builder.header(IF_RANGE, validator.as_str());
                }
            }
            let head_timeout = self.transport.config().read_timeout.saturating_add(MARGIN);
            let (response, ctx) = self
                .transport
                .execute(prepared, head_timeout, self.deadline, None)
                .await?;
            let (status, headers) = head(&response);
            Ok(StreamResponse {
                status,
                headers,
                // No idle timer of its own: the engine's bounds every wait.
                body: Box::new(HttpByteStream::new(response, None, ctx)),
            })
        })
    }

    fn error(&self, kind: TransportErrorKind, what: String) -> TransportError {
        self.ctx.error(kind, what)
    }

    fn label(&self) -> &str {
        self.ctx.label()
    }
}
