//! `-vv`: one line on stderr per request and per answer (method, path,
//! status, time, size), from a transport that wraps the real one. `-vvv`
//! adds the headers' names. Never a header value, a query string or a body:
//! tokens travel in headers, signed download URLs in queries.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, Transport, TransportError,
};
use nemo_core::wire::{Request, Response, Target};

/// A transport that says what goes over the wire (see the module docs).
pub(crate) struct Traced {
    inner: Arc<dyn Transport>,
    /// 2: requests and answers; 3: and header names.
    level: u8,
}

impl Traced {
    /// `inner`, traced at `level` (`-vv` is 2).
    pub(crate) fn new(inner: Arc<dyn Transport>, level: u8) -> Traced {
        Traced { inner, level }
    }

    fn request(&self, request: &Request) -> String {
        let mut line = format!("→ {} {}", request.method.as_str(), shown(&request.target));
        if self.level >= 3 {
            let names: Vec<&str> = request.headers.iter().map(|h| h.name).collect();
            line.push_str(&format!(" [headers: {}]", names.join(", ")));
        }
        line
    }

    fn say(&self, line: &str) {
        eprintln!("nemo: {}", nemo_core::ids::printable_line(line));
    }

    fn answer(&self, request: &Request, started: Instant, what: &str) {
        self.say(&format!(
            "← {what} {} {} in {} ms",
            request.method.as_str(),
            shown(&request.target),
            started.elapsed().as_millis()
        ));
    }
}

/// A target as it may be shown ([`nemo_core::ids::shown_url`]).
fn shown(target: &Target) -> String {
    nemo_core::ids::shown_url(&target.to_string())
}

fn error_line(e: &TransportError) -> String {
    format!("failed ({:?})", e.kind)
}

#[async_trait]
impl Transport for Traced {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        self.say(&self.request(request));
        let started = Instant::now();
        let result = self.inner.send(request, progress).await;
        match &result {
            Ok(r) => self.answer(
                request,
                started,
                &format!("{} ({} B)", r.status, r.body.len()),
            ),
            Err(e) => self.answer(request, started, &error_line(e)),
        }
        result
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        self.say(&self.request(request));
        let started = Instant::now();
        let result = self.inner.open_stream(request).await;
        match &result {
            Ok(r) => self.answer(request, started, &format!("{} (stream)", r.status)),
            Err(e) => self.answer(request, started, &error_line(e)),
        }
        result
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        self.say(&self.request(request));
        let started = Instant::now();
        let result = self.inner.download(request, dest, options, progress).await;
        match &result {
            Ok(DownloadOutcome::Complete { bytes }) => {
                self.answer(request, started, &format!("saved ({bytes} B)"))
            }
            Ok(DownloadOutcome::Refused(r)) => {
                self.answer(request, started, &format!("{} (refused)", r.status))
            }
            Err(e) => self.answer(request, started, &error_line(e)),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_user_info_are_never_shown() {
        assert_eq!(
            shown(&Target::Api("/api/render/proxy/lambda/r1?x=secret".into())),
            "/api/render/proxy/lambda/r1"
        );
        assert_eq!(
            shown(&Target::Absolute(
                "https://u:pw@cdn.example/out/r1.mp4?Signature=abc#f".into()
            )),
            "https://cdn.example/out/r1.mp4"
        );
    }
}
