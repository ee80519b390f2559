//! One download call: the attempts, the checks, the bounds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::Response;
use tokio::time::Instant;

use crate::inspect::{declared_kind, first_words, parse_content_range, sniffed_kind, NotVideo};
use crate::target::{sync_dir, Target};
use crate::writer::Writer;
use crate::{Fetch, Limits, Resume};

/// How many first bytes of a body are looked at to tell an error page.
const SNIFF: usize = 64;

/// How much of a JSON body is handed back to the core.
const JSON_KEPT: usize = 64 * 1024;

/// How much of an HTML, XML or text page is read to quote it.
const PAGE_KEPT: usize = 4 * 1024;

/// How long the rest of an error page is waited for.
const PAGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Fresh starts (from byte zero) one call may make after the first.
const MAX_RESTARTS: u32 = 1;

/// What one call may receive in all, beyond twice the file's size.
const SLACK: u64 = 1024 * 1024;

/// Runs one download call. See the crate docs.
pub(crate) async fn run<F: Fetch + ?Sized>(
    fetch: &mut F,
    dest: &Path,
    options: DownloadOptions,
    limits: Limits,
    max_size: u64,
    progress: Option<ProgressFn<'_>>,
) -> Result<DownloadOutcome, TransportError> {
    let deadline = Deadline::after(limits.overall);
    let target = Target::check(dest, options)
        .await
        .map_err(|(kind, what)| fetch.error(kind, what))?;
    crate::leftovers::sweep(&target).await;
    let (writer, temp_path) = Writer::create(&target)
        .await
        .map_err(|(kind, what)| fetch.error(kind, what))?;
    let mut job = Job {
        fetch,
        target,
        temp_path,
        options,
        limits,
        max_size,
        progress,
        deadline,
        writer: Some(writer),
        started: false,
        written: 0,
        total: None,
        validator: None,
        attempts: 0,
        restarts: 0,
        received: 0,
        ignores_range: false,
    };
    let result = job.run().await;
    // Failed or refused: the temporary file is removed before the call
    // returns. (A call that is dropped instead leaves that to the writer's
    // thread, moments later.)
    if let Some(writer) = job.writer.take() {
        writer.discard().await;
    }
    result
}

/// The overall deadline of one call, and when the call started, so that a
/// timeout says how long it really waited.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    started: Instant,
    at: Instant,
}

impl Deadline {
    fn after(limit: Duration) -> Self {
        let started = Instant::now();
        // A limit too large for the clock is no limit.
        let at = started
            .checked_add(limit)
            .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 24 * 3600));
        Self { started, at }
    }

    /// `wait` after `from`, or the deadline if that comes first.
    fn cap(&self, from: Instant, wait: Duration) -> Instant {
        from.checked_add(wait).map_or(self.at, |t| t.min(self.at))
    }

    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A duration as people read it in a message: `0.5 s`, `2.0 s`, `120 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

struct Job<'a, F: Fetch + ?Sized> {
    fetch: &'a mut F,
    target: Target,
    temp_path: PathBuf,
    options: DownloadOptions,
    limits: Limits,
    /// The cap for a file whose size nobody said.
    max_size: u64,
    progress: Option<ProgressFn<'a>>,
    deadline: Deadline,
    writer: Option<Writer>,
    /// A body has started to flow at least once.
    started: bool,
    /// Bytes of the file so far.
    written: u64,
    /// The whole file's length, when the server said.
    total: Option<u64>,
    /// `ETag` (strong) or `Last-Modified` of the first answer, for `If-Range`.
    validator: Option<String>,
    /// Requests sent.
    attempts: u32,
    /// Fresh starts after the first.
    restarts: u32,
    /// Body bytes received over all attempts.
    received: u64,
    /// The server answered a range request with something else.
    ignores_range: bool,
}

/// How one attempt ended, when the call goes on.
enum Leg {
    /// The body ended and the file is complete.
    Done,
    /// The server refused: its answer, for the core.
    Refused(Response),
    /// The connection broke (or stalled) part-way; worth asking for the rest.
    Broken(TransportError),
}

impl<F: Fetch + ?Sized> Job<'_, F> {
    async fn run(&mut self) -> Result<DownloadOutcome, TransportError> {
        if let Some(expected) = self.options.expected_size {
            self.check_size(expected, "the render status said")?;
        }
        loop {
            let err = match self.leg().await {
                Ok(Leg::Done) => break,
                Ok(Leg::Refused(response)) => return Ok(DownloadOutcome::Refused(response)),
                Ok(Leg::Broken(err)) => err,
                Err(err) => return Err(self.out_of_time().unwrap_or(err)),
            };
            if let Some(late) = self.out_of_time() {
                return Err(late);
            }
            if let Some(reason) = self.cannot_resume() {
                return Err(TransportError::new(
                    err.kind,
                    format!("{}; {}", err.message, self.gave_up(&reason)),
                ));
            }
            tracing::debug!(
                request = self.fetch.label(),
                at = self.written,
                attempt = self.attempts + 1,
                "download interrupted; resuming: {}",
                err.message
            );
        }
        self.finish().await
    }

    /// The error for a call past its deadline, if it is.
    fn out_of_time(&self) -> Option<TransportError> {
        self.deadline.passed().then(|| {
            self.err(
                TransportErrorKind::Timeout,
                format!(
                    "the download did not finish within {}: {}",
                    seconds(self.deadline.elapsed()),
                    self.spent()
                ),
            )
        })
    }

    /// Why another attempt is not made, if it is not.
    fn cannot_resume(&self) -> Option<String> {
        if self.attempts > self.limits.resume_attempts {
            return Some("the connection kept breaking".into());
        }
        if self.ignores_range {
            return Some("the server ignores range requests, so the download cannot resume".into());
        }
        // An unknown size counts as its cap.
        let size = self.size().unwrap_or(self.max_size);
        let budget = size.saturating_mul(2).saturating_add(SLACK);
        let needed = size.saturating_sub(self.written);
        if self.received.saturating_add(needed) > budget {
            return Some(format!(
                "finishing would take more than {budget} bytes in all"
            ));
        }
        None
    }

    /// "gave up after …", with what was spent.
    fn gave_up(&self, reason: &str) -> String {
        format!("gave up after {}: {reason}", self.spent())
    }

    /// Attempts and bytes so far, in words.
    fn spent(&self) -> String {
        let attempts = match self.attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        let of = match self.size() {
            Some(size) => format!(" for a file of {size} bytes"),
            None => String::new(),
        };
        let restarts = match self.restarts {
            0 => String::new(),
            n => format!(", {n} restarted from zero"),
        };
        format!("{attempts}{restarts}, {} bytes received{of}", self.received)
    }

    /// Refuses a stated size above the cap, or one the target's file
    /// system has no room for (what is already written counts as placed).
    fn check_size(&self, size: u64, who: &str) -> Result<(), TransportError> {
        let cap = self.max_size;
        if size > cap {
            return Err(self.err(
                TransportErrorKind::Other,
                format!(
                    "{who} {size} bytes, more than the {cap} bytes a download may be; not saved"
                ),
            ));
        }
        let needed = size.saturating_sub(self.written);
        if let Some(free) = crate::free_space(&self.temp_path) {
            if free < needed {
                return Err(self.local(format!(
                    "not enough room in {}: the video needs {}, {} is free; not saved",
                    self.target_folder().display(),
                    crate::human_bytes(needed),
                    crate::human_bytes(free)
                )));
            }
        }
        Ok(())
    }

    /// The folder the file goes to.
    fn target_folder(&self) -> &Path {
        match self.temp_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The file's size, as the server or the caller said.
    fn size(&self) -> Option<u64> {
        self.total.or(self.options.expected_size)
    }

    /// Worth another attempt: a connection that broke after the request went
    /// out (even before the answer's head: a GET of a file is safe to
    /// repeat), or any transient failure once a body was flowing. A first
    /// request that cannot connect or gets no answer in time is the caller's
    /// to retry, under the core's policy.
    fn may_resume(&self, err: &TransportError) -> bool {
        err.kind == TransportErrorKind::Interrupted || (err.kind.is_transient() && self.started)
    }

    /// One request and its body.
    async fn leg(&mut self) -> Result<Leg, TransportError> {
        let resuming = self.written > 0;
        let resume = resuming.then(|| Resume {
            offset: self.written,
            validator: self.validator.clone(),
        });
        self.attempts += 1;
        let response = match self.open(resume).await {
            Ok(response) => response,
            Err(err) if self.may_resume(&err) && !self.deadline.passed() => {
                return Ok(Leg::Broken(err))
            }
            Err(err) => return Err(err),
        };
        let StreamResponse {
            status,
            headers,
            body: mut chunks,
        } = response;
        if !(200..300).contains(&status) {
            let body = self.read_refused(&mut *chunks).await?;
            return Ok(Leg::Refused(Response {
                status,
                headers,
                body,
            }));
        }
        let header = |name: &str| nemo_core::wire::find_header(&headers, name);
        let range = header("content-range").and_then(parse_content_range);
        let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let declared = header("content-type").and_then(declared_kind);
        let append = resuming
            && status == 206
            && range.is_some_and(|r| {
                r.start == self.written
                    && (r.total.is_none() || self.total.is_none() || r.total == self.total)
            });
        let mut mismatch = None;
        if append {
            self.total = self.total.or(range.and_then(|r| r.total));
            if let Some(total) = self.total {
                self.check_size(total, "the server announced")?;
            }
        } else {
            // A fresh start: the first request, or a server that answered a
            // range request with the whole file (or another file).
            let total = match (status, range) {
                (206, Some(r)) if r.start != 0 => {
                    return Err(self.err(
                        TransportErrorKind::Other,
                        format!(
                            "the server sent a part starting at byte {} of a whole file",
                            r.start
                        ),
                    ))
                }
                (206, Some(r)) => r.total,
                _ => length,
            };
            // Refused before a byte is written, error page or not.
            if let Some(total) = total {
                self.check_size(total, "the server announced")?;
            }
            // Reported after a look at the body: an error page is worth
            // more than its length.
            if let (Some(total), Some(expected)) = (total, self.options.expected_size) {
                if total != expected {
                    mismatch = Some(self.err(
                        TransportErrorKind::Other,
                        format!(
                            "the server announced {total} bytes, but the render status said \
                             {expected}; not saved"
                        ),
                    ));
                }
            }
            if resuming {
                // What arrived so far is thrown away.
                self.ignores_range = true;
                if self.restarts >= MAX_RESTARTS {
                    return Err(self.err(
                        TransportErrorKind::Interrupted,
                        format!(
                            "the server answered {status} to a range request again; {}",
                            self.gave_up("the download cannot resume")
                        ),
                    ));
                }
                self.restarts += 1;
                tracing::debug!(
                    request = self.fetch.label(),
                    status,
                    "the server did not resume; restarting from zero"
                );
                self.writer()?
                    .restart()
                    .await
                    .map_err(|e| self.write_error(e))?;
            }
            self.total = total;
            self.validator = header("etag")
                .filter(|v| !v.trim_start().starts_with("W/"))
                .or_else(|| header("last-modified"))
                .map(str::to_owned);
            self.written = 0;
        }
        self.started = true;
        self.report();
        // The first bytes of the file tell an error page from a video; in
        // the middle of a file, only the declared type can.
        let mut first = Vec::new();
        if self.written == 0 {
            while first.len() < SNIFF {
                match self.next(&mut *chunks).await? {
                    Ok(Some(chunk)) => {
                        self.received += chunk.len() as u64;
                        first.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(broken) => return Ok(Leg::Broken(broken)),
                }
            }
        }
        if let Some(kind) = declared.or_else(|| sniffed_kind(&first)) {
            return self
                .not_video(kind, status, headers, first, &mut *chunks)
                .await;
        }
        if let Some(err) = mismatch {
            return Err(err);
        }
        if !first.is_empty() {
            self.accept(Bytes::from(first)).await?;
        }
        self.stream(&mut *chunks).await
    }

    /// The next chunk: `Ok(Ok(None))` at the end of the body, `Ok(Err)` for
    /// a break worth resuming, `Err` when the call is over.
    async fn next(
        &self,
        chunks: &mut dyn ByteStream,
    ) -> Result<Result<Option<Bytes>, TransportError>, TransportError> {
        match self.chunk(chunks).await {
            Ok(None) => Ok(Ok(None)),
            Ok(Some(Ok(chunk))) => Ok(Ok(Some(chunk))),
            Ok(Some(Err(broken))) => Ok(Err(broken)),
            // Stalled: worth asking again, unless the call is out of time.
            Err(err) if !self.deadline.passed() => Ok(Err(err)),
            Err(err) => Err(err),
        }
    }

    /// The next chunk of a body, within the read timeout and the deadline.
    /// `Err` for a timeout (idle, or the deadline: then the message is the
    /// deadline's); `Some(Err)` for a broken connection.
    async fn chunk(
        &self,
        chunks: &mut dyn ByteStream,
    ) -> Result<Option<Result<Bytes, TransportError>>, TransportError> {
        let waiting = Instant::now();
        let at = self.deadline.cap(waiting, self.limits.read_timeout);
        match tokio::time::timeout_at(at, chunks.next_chunk()).await {
            Ok(next) => Ok(next),
            Err(_) if self.deadline.passed() => Err(self.deadline_error()),
            Err(_) => Err(self.err(
                TransportErrorKind::Timeout,
                format!("no data for {}", seconds(waiting.elapsed())),
            )),
        }
    }

    /// Sends the request for one attempt and waits for the answer's head,
    /// within the read timeout and the deadline.
    async fn open(&mut self, resume: Option<Resume>) -> Result<StreamResponse, TransportError> {
        let waiting = Instant::now();
        let at = self.deadline.cap(waiting, self.limits.read_timeout);
        match tokio::time::timeout_at(at, self.fetch.fetch(resume)).await {
            Ok(answer) => answer,
            Err(_) if self.deadline.passed() => Err(self.deadline_error()),
            Err(_) => Err(self.err(
                TransportErrorKind::Timeout,
                format!("no response for {}", seconds(waiting.elapsed())),
            )),
        }
    }

    /// Reads the whole (small) body of an error answer.
    async fn read_refused(&self, chunks: &mut dyn ByteStream) -> Result<Vec<u8>, TransportError> {
        let limit = self.limits.max_refused_body;
        let mut body = Vec::new();
        loop {
            match self.chunk(chunks).await? {
                None => return Ok(body),
                Some(Err(err)) => return Err(err),
                Some(Ok(chunk)) => {
                    if body.len().saturating_add(chunk.len()) > limit {
                        return Err(self.err(
                            TransportErrorKind::Other,
                            format!("the response is larger than {limit} bytes"),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
    }

    /// The timeout error for a call that ran out of time.
    fn deadline_error(&self) -> TransportError {
        self.err(
            TransportErrorKind::Timeout,
            format!(
                "no complete answer within {}",
                seconds(self.deadline.elapsed())
            ),
        )
    }

    /// An error, in the fetcher's words (its request's label, its secrets
    /// masked).
    fn err(&self, kind: TransportErrorKind, what: impl Into<String>) -> TransportError {
        self.fetch.error(kind, what.into())
    }

    /// Writes the rest of the body to the temporary file as it arrives.
    async fn stream(&mut self, chunks: &mut dyn ByteStream) -> Result<Leg, TransportError> {
        loop {
            let chunk = match self.next(chunks).await? {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    return Ok(match self.total {
                        Some(total) if self.written < total => Leg::Broken(self.err(
                            TransportErrorKind::Interrupted,
                            format!("the body ended after {} of {total} bytes", self.written),
                        )),
                        _ => Leg::Done,
                    })
                }
                Err(broken) => return Ok(Leg::Broken(broken)),
            };
            self.received += chunk.len() as u64;
            self.accept(chunk).await?;
        }
    }

    /// Appends a chunk of the file, refusing one that makes it too long.
    async fn accept(&mut self, chunk: Bytes) -> Result<(), TransportError> {
        self.written += chunk.len() as u64;
        if let Some(total) = self.total.filter(|t| self.written > *t) {
            return Err(self.err(
                TransportErrorKind::Other,
                format!("the server sent more than the {total} bytes it announced"),
            ));
        }
        if self.size().is_none() && self.written > self.max_size {
            return Err(self.err(
                TransportErrorKind::Other,
                format!(
                    "the server sent more than {} bytes without saying how many; not saved",
                    self.max_size
                ),
            ));
        }
        if let Some(expected) = self.options.expected_size.filter(|e| self.written > *e) {
            return Err(self.err(
                TransportErrorKind::Other,
                format!(
                    "the server sent more than the render status said ({expected} bytes); not \
                     saved"
                ),
            ));
        }
        self.writer()?
            .write(chunk)
            .await
            .map_err(|e| self.write_error(e))?;
        self.report();
        Ok(())
    }

    /// A body that is not the video: a JSON answer goes back to the core as
    /// a refusal, anything else is an error quoting it.
    async fn not_video(
        &mut self,
        kind: NotVideo,
        status: u16,
        headers: Vec<(String, String)>,
        mut body: Vec<u8>,
        chunks: &mut dyn ByteStream,
    ) -> Result<Leg, TransportError> {
        let keep = if kind == NotVideo::Json {
            JSON_KEPT
        } else {
            PAGE_KEPT
        };
        // Read on only as far as needed, and never wait long for it: what
        // arrived is enough to say what it was.
        let patience = PAGE_PATIENCE.min(self.limits.read_timeout);
        let _ = tokio::time::timeout(patience, async {
            while body.len() < keep {
                match self.next(chunks).await {
                    Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        })
        .await;
        body.truncate(keep);
        tracing::debug!(
            request = self.fetch.label(),
            status,
            ?kind,
            "the body is not a video"
        );
        if kind == NotVideo::Json {
            return Ok(Leg::Refused(Response {
                status,
                headers,
                body,
            }));
        }
        let what = match kind {
            NotVideo::Html => "an HTML page",
            NotVideo::Xml => "an XML document",
            _ => "text",
        };
        let words = first_words(&body, kind == NotVideo::Html);
        let quoted = if words.is_empty() {
            String::new()
        } else {
            format!(" (“{words}”)")
        };
        Err(self.err(
            TransportErrorKind::Other,
            format!("the server sent {what}{quoted} instead of the video (HTTP {status})"),
        ))
    }

    /// Checks the length, syncs and moves the complete file into place.
    async fn finish(&mut self) -> Result<DownloadOutcome, TransportError> {
        if let Some(expected) = self.options.expected_size {
            if self.written != expected {
                return Err(self.err(
                    TransportErrorKind::Other,
                    format!(
                        "the server sent {} bytes, but the render status said {expected}; not \
                         saved",
                        self.written
                    ),
                ));
            }
        }
        if self.written == 0 {
            return Err(self.err(
                TransportErrorKind::Other,
                "the server sent an empty body instead of the video",
            ));
        }
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| self.local("the temporary file is gone".into()))?;
        let temp = writer.finish().await.map_err(|e| self.write_error(e))?;
        let shown = self.temp_path.display().to_string();
        let target = self.target.clone();
        let placed = tokio::task::spawn_blocking(move || {
            temp.as_file().sync_all().map_err(|e| {
                (
                    TransportErrorKind::Local,
                    format!("cannot sync {shown}: {e}"),
                )
            })?;
            target.place(temp)?;
            sync_dir(&target.dir);
            Ok(())
        })
        .await
        .map_err(|e| self.local(format!("the disk writer stopped: {e}")))?;
        placed.map_err(|(kind, what)| self.err(kind, what))?;
        tracing::debug!(
            request = self.fetch.label(),
            bytes = self.written,
            attempts = self.attempts,
            received = self.received,
            "download complete"
        );
        Ok(DownloadOutcome::Complete {
            bytes: self.written,
        })
    }

    fn writer(&mut self) -> Result<&mut Writer, TransportError> {
        match self.writer.as_mut() {
            Some(writer) => Ok(writer),
            None => Err(self.fetch.error(
                TransportErrorKind::Local,
                "the temporary file is gone".into(),
            )),
        }
    }

    fn report(&self) {
        if let Some(report) = self.progress {
            report(Progress {
                done: self.written,
                total: self.size(),
            });
        }
    }

    fn write_error(&self, e: std::io::Error) -> TransportError {
        self.local(format!("cannot write {}: {e}", self.temp_path.display()))
    }

    fn local(&self, what: String) -> TransportError {
        self.err(TransportErrorKind::Local, what)
    }
}
