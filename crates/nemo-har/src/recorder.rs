//! [`Recorder`]: a transport that records every exchange of the transport it
//! wraps.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::machine::Command;
use nemo_core::time::{rfc3339_millis, Clock, Instant};
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, Request, Response, Target};

use crate::command::PageCommand;
use crate::har::{
    Content, Entry, Har, HarRequest, HarResponse, NameValue, Page, Param, PostData, RecordedError,
    StreamEvent, Timings,
};
use crate::redact::Redactor;
use crate::sink::FileLog;
use crate::HarError;

struct State {
    store: Store,
    page: Option<String>,
    redactor: Redactor,
}

/// Where the entries go.
enum Store {
    /// Kept in memory, redacted when read ([`Recorder::new`]).
    Memory(Box<Har>),
    /// Written to disk as they complete ([`Recorder::to_file`]).
    File(Box<FileLog>),
}

impl Store {
    fn pages(&mut self) -> &mut Vec<Page> {
        match self {
            Store::Memory(har) => &mut har.log.pages,
            Store::File(f) => &mut f.pages,
        }
    }
}

/// An entry whose request went out.
struct Begun {
    start: Instant,
    slot: Slot,
}

enum Slot {
    /// The entry's index in the in-memory log.
    Memory(usize),
    /// The entry, written when it completes.
    File(Box<Entry>),
}

/// A [`Transport`] that delegates to an inner one and records every
/// exchange as a HAR 1.2 entry.
///
/// - requests: method, full URL (the API base joined with the path),
///   headers, the JSON body as text; a multipart upload as `params`
///   (`name=files`, `fileName`, `contentType`), never the file's bytes;
/// - responses: status, headers, the body as text; a `/run_sse` stream whole,
///   plus `_events`, each chunk with its arrival offset in ms; a download's
///   size only, never the media;
/// - a failure below HTTP as status 0 and `_error`;
/// - pages: [`Recorder::start_command`] (or [`Recorder::start_page`]) marks a
///   user turn; later entries carry its `pageref`.
///
/// Secrets are learned as they pass (the bearer token, `X-Client-Id`,
/// anonymous and claim tokens in bodies, decoded) and masked in everything
/// [`Recorder::har`] and [`Recorder::save`] return and everything
/// [`Recorder::to_file`] writes, so nothing written to disk holds one (see
/// [`redact`](crate::redact)). Times come from the [`Clock`] given: under
/// tokio's paused clock a recording is reproducible to the millisecond.
///
/// Two ways to record:
///
/// - [`Recorder::new`] keeps the recording in memory (event streams whole)
///   and redacts it when it is read ([`har`](Recorder::har),
///   [`save`](Recorder::save)), with every secret learned by then. For
///   tests and short sessions.
/// - [`Recorder::to_file`] opens the output at once (a path that cannot be
///   written fails before any request is sent), writes each entry redacted
///   as it completes, and event streams chunk by chunk as they arrive, with
///   memory bounded whatever their size (a line of the stream, one event and
///   fixed-size buffers). The file is a temporary one beside the target,
///   renamed into place by [`finish`](Recorder::finish) (or, best effort,
///   when the recorder is dropped): the target only ever holds a complete
///   HAR document. A secret is masked from the moment it is learned: add a
///   secret the transport does not see in the clear (e.g. `NEMO_TOKEN`)
///   before the first request. Entries are written in the order they
///   complete (the order they were sent, for a client that sends one request
///   at a time, as the driver does).
pub struct Recorder<T: ?Sized> {
    inner: Arc<T>,
    base_url: String,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

impl<T: ?Sized> std::fmt::Debug for Recorder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds, to the microsecond.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub(crate) fn kind_name(kind: TransportErrorKind) -> &'static str {
    match kind {
        TransportErrorKind::Connect => "connect",
        TransportErrorKind::Timeout => "timeout",
        TransportErrorKind::Tls => "tls",
        TransportErrorKind::Interrupted => "interrupted",
        TransportErrorKind::Local => "local",
        TransportErrorKind::Exists => "exists",
        _ => "other",
    }
}

pub(crate) fn kind_from_name(name: &str) -> TransportErrorKind {
    match name {
        "connect" => TransportErrorKind::Connect,
        "timeout" => TransportErrorKind::Timeout,
        "tls" => TransportErrorKind::Tls,
        "interrupted" => TransportErrorKind::Interrupted,
        "local" => TransportErrorKind::Local,
        "exists" => TransportErrorKind::Exists,
        _ => TransportErrorKind::Other,
    }
}

fn recorded_error(err: &TransportError) -> RecordedError {
    RecordedError {
        kind: kind_name(err.kind).into(),
        message: err.message.clone(),
    }
}

/// The URL a request goes to: `base` joined with an API path, or the
/// absolute URL.
pub(crate) fn full_url(base: &str, target: &Target) -> String {
    match target {
        Target::Api(path) => format!("{}{path}", base.trim_end_matches('/')),
        Target::Absolute(url) => url.clone(),
    }
}

/// A request as a HAR request (not yet redacted).
pub(crate) fn har_request(base: &str, request: &Request) -> HarRequest {
    let url = full_url(base, &request.target);
    let query_string = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    NameValue::new(n, v)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut headers: Vec<NameValue> = request
        .headers
        .iter()
        .map(|h| NameValue::new(h.name, h.value.expose()))
        .collect();
    let (post_data, body_size) = match &request.body {
        Body::Empty => (None, 0),
        Body::Json(text) => {
            headers.push(NameValue::new("content-type", "application/json"));
            (
                Some(PostData {
                    mime_type: "application/json".into(),
                    text: Some(text.clone()),
                    params: Vec::new(),
                }),
                text.len() as i64,
            )
        }
        Body::Multipart(parts) => {
            headers.push(NameValue::new("content-type", "multipart/form-data"));
            let size = parts.iter().map(|p| p.len).sum::<u64>();
            (
                Some(PostData {
                    mime_type: "multipart/form-data".into(),
                    text: None,
                    params: parts
                        .iter()
                        .map(|p| Param {
                            name: "files".into(),
                            value: None,
                            file_name: Some(p.filename.clone()),
                            content_type: Some(p.content_type.clone()),
                        })
                        .collect(),
                }),
                i64::try_from(size).unwrap_or(i64::MAX),
            )
        }
    };
    HarRequest {
        method: request.method.as_str().into(),
        url,
        http_version: "HTTP/1.1".into(),
        cookies: Vec::new(),
        headers,
        query_string,
        post_data,
        headers_size: -1,
        body_size,
    }
}

/// The reason phrase of common statuses.
fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn har_head(status: u16, headers: &[(String, String)]) -> HarResponse {
    let mime = nemo_core::wire::find_header(headers, "content-type")
        .unwrap_or("")
        .to_owned();
    HarResponse {
        status,
        status_text: status_text(status).into(),
        headers: headers
            .iter()
            .map(|(n, v)| NameValue::new(n.clone(), v.clone()))
            .collect(),
        content: Content {
            mime_type: mime,
            ..Content::default()
        },
        ..HarResponse::default()
    }
}

/// A complete response as a HAR response (not yet redacted).
pub(crate) fn har_response(response: &Response) -> HarResponse {
    let mut head = har_head(response.status, &response.headers);
    let len = i64::try_from(response.body.len()).unwrap_or(i64::MAX);
    head.body_size = len;
    head.content.size = len;
    match std::str::from_utf8(&response.body) {
        Ok(text) => head.content.text = Some(text.to_owned()),
        Err(_) => {
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD.encode(&response.body);
            head.content.text = Some(text);
            head.content.encoding = Some("base64".into());
        }
    }
    head
}

impl<T: Transport + ?Sized> Recorder<T> {
    /// Records `inner`'s exchanges. `base_url` is the API base the inner
    /// transport sends API paths to (for the entries' full URLs); `clock`
    /// gives `startedDateTime` and the timings.
    pub fn new(inner: Arc<T>, base_url: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self::with_store(inner, base_url.into(), clock, Store::Memory(Box::default()))
    }

    /// Records `inner`'s exchanges straight to the HAR file `path` (see
    /// [`Recorder`]): the file is created now, as a temporary file beside
    /// `path`, and renamed into place by [`finish`](Self::finish).
    ///
    /// Fails, before anything is sent, when `path` cannot be written: its
    /// folder is missing or not writable, or something already has that name
    /// (a recording never replaces a file: an existing one is refused with
    /// [`std::io::ErrorKind::AlreadyExists`], and one that appears under the
    /// name while recording is kept, the recording failing at the end). The
    /// error names the path.
    pub fn to_file(
        inner: Arc<T>,
        base_url: impl Into<String>,
        clock: Arc<dyn Clock>,
        path: impl AsRef<Path>,
    ) -> std::io::Result<Self> {
        let log = FileLog::create(path.as_ref())?;
        Ok(Self::with_store(
            inner,
            base_url.into(),
            clock,
            Store::File(Box::new(log)),
        ))
    }

    fn with_store(inner: Arc<T>, base_url: String, clock: Arc<dyn Clock>, store: Store) -> Self {
        Self {
            inner,
            base_url,
            clock,
            state: Arc::new(Mutex::new(State {
                store,
                page: None,
                redactor: Redactor::new(),
            })),
        }
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &Arc<T> {
        &self.inner
    }

    /// Adds a secret to mask wherever it appears (e.g. a `NEMO_TOKEN` before
    /// it was sent).
    pub fn add_secret(&self, secret: &str) {
        lock(&self.state).redactor.add(secret);
    }

    /// Starts a page (a user turn) titled `title`, with no command: a replay
    /// infers the command from the page's requests. Returns the page id.
    pub fn start_page(&self, title: &str) -> String {
        self.push_page(title.to_owned(), None)
    }

    /// Starts a page for a user turn, storing the command so that a replay
    /// issues it again. The title is the user's words (or the command line).
    pub fn start_turn(&self, command: PageCommand) -> String {
        self.push_page(command.title(), Some(command))
    }

    /// [`start_turn`](Self::start_turn) for a core command.
    pub fn start_command(&self, command: &Command) -> String {
        self.start_turn(PageCommand::from_command(command))
    }

    fn push_page(&self, title: String, command: Option<PageCommand>) -> String {
        let started = rfc3339_millis(self.clock.unix_ms());
        let mut st = lock(&self.state);
        let pages = st.store.pages();
        let id = format!("page_{}", pages.len() + 1);
        pages.push(Page {
            started_date_time: started,
            id: id.clone(),
            title,
            page_timings: Default::default(),
            command,
            comment: None,
        });
        st.page = Some(id.clone());
        id
    }

    /// Everything recorded so far, redacted. A recording made with
    /// [`to_file`](Self::to_file) keeps only its pages in memory: its
    /// entries are on disk.
    pub fn har(&self) -> Har {
        let st = lock(&self.state);
        let (mut har, mut redactor) = match &st.store {
            Store::Memory(har) => ((**har).clone(), st.redactor.clone()),
            Store::File(f) => {
                let mut har = Har::new();
                har.log.pages = f.pages.clone();
                (har, st.redactor.clone())
            }
        };
        drop(st);
        redactor.har(&mut har);
        har
    }

    /// Writes the redacted recording to `path` atomically. A recording made
    /// with [`to_file`](Self::to_file) is [finished](Self::finish) and, if
    /// `path` is another file, copied there.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), HarError> {
        let path = path.as_ref();
        let target = match &lock(&self.state).store {
            Store::Memory(_) => None,
            Store::File(f) => Some(f.target().to_path_buf()),
        };
        match target {
            None => self.har().save(path),
            Some(target) => {
                self.finish().map_err(|e| HarError::io(&target, e))?;
                if same_file(&target, path) {
                    Ok(())
                } else {
                    copy_atomic(&target, path)
                }
            }
        }
    }

    /// Starts an entry for `request`.
    fn begin(&self, request: &Request) -> Begun {
        let start = self.clock.now();
        let har_req = har_request(&self.base_url, request);
        let started = rfc3339_millis(self.clock.unix_ms());
        let mut st = lock(&self.state);
        for h in &request.headers {
            st.redactor.learn_header(h.name, h.value.expose());
        }
        if let Body::Json(text) = &request.body {
            st.redactor.learn_body(text);
        }
        let entry = Entry {
            pageref: st.page.clone(),
            started_date_time: started,
            time: 0.0,
            request: har_req,
            response: HarResponse::default(),
            cache: serde_json::json!({}),
            timings: Timings::default(),
            error: None,
            comment: None,
        };
        let slot = match &mut st.store {
            Store::Memory(har) => {
                har.log.entries.push(entry);
                Slot::Memory(har.log.entries.len() - 1)
            }
            Store::File(_) => Slot::File(Box::new(entry)),
        };
        Begun { start, slot }
    }

    /// Completes an entry: `f` fills in the response.
    fn complete(&self, begun: Begun, f: impl FnOnce(&mut Entry, &mut Redactor)) {
        let elapsed = ms(self.clock.now() - begun.start);
        let mut st = lock(&self.state);
        let State {
            store, redactor, ..
        } = &mut *st;
        let set = |e: &mut Entry, redactor: &mut Redactor| {
            e.time = elapsed;
            e.timings.wait = elapsed;
            f(e, redactor);
        };
        match (store, begun.slot) {
            (Store::Memory(har), Slot::Memory(index)) => {
                if let Some(e) = har.log.entries.get_mut(index) {
                    set(e, redactor);
                }
            }
            (Store::File(log), Slot::File(mut e)) => {
                set(&mut e, redactor);
                log.write_entry(*e, redactor);
            }
            _ => {}
        }
    }
}

impl<T: ?Sized> Recorder<T> {
    /// Ends a recording made with [`to_file`](Self::to_file): event streams
    /// still open are written as interrupted, the document is closed,
    /// synced and renamed into place. Idempotent: a later call returns the
    /// first one's result; exchanges after it are not recorded. Without a
    /// file, does nothing.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut st = lock(&self.state);
        let State {
            store, redactor, ..
        } = &mut *st;
        match store {
            Store::Memory(_) => Ok(()),
            Store::File(log) => log.finish(redactor),
        }
    }

    /// The file a [`to_file`](Self::to_file) recording ends up in.
    pub fn path(&self) -> Option<PathBuf> {
        match &lock(&self.state).store {
            Store::Memory(_) => None,
            Store::File(f) => Some(f.target().to_path_buf()),
        }
    }

    /// Bytes the recording holds in memory now beyond fixed-size buffers
    /// (streaming mode: the event streams' held lines and events; 0 in
    /// memory mode, which holds everything). For tests and benchmarks.
    #[doc(hidden)]
    pub fn buffered_bytes(&self) -> usize {
        match &lock(&self.state).store {
            Store::Memory(_) => 0,
            Store::File(f) => f.buffered(),
        }
    }

    /// The most [`buffered_bytes`](Self::buffered_bytes) ever was. For tests
    /// and benchmarks.
    #[doc(hidden)]
    pub fn peak_buffered_bytes(&self) -> usize {
        match &lock(&self.state).store {
            Store::Memory(_) => 0,
            Store::File(f) => f.peak_buffered(),
        }
    }
}

impl<T: ?Sized> Drop for Recorder<T> {
    fn drop(&mut self) {
        // Best effort: whoever needs the error calls `finish` first.
        let _ = self.finish();
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Copies `from` to `to` through a temporary file beside `to`.
fn copy_atomic(from: &Path, to: &Path) -> Result<(), HarError> {
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nemo-har")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| HarError::io(dir, e))?;
    let mut src = std::fs::File::open(from).map_err(|e| HarError::io(from, e))?;
    std::io::copy(&mut src, &mut tmp).map_err(|e| HarError::io(to, e))?;
    tmp.as_file().sync_all().map_err(|e| HarError::io(to, e))?;
    tmp.persist(to).map_err(|e| HarError::io(to, e.error))?;
    Ok(())
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Recorder<T> {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        let begun = self.begin(request);
        let result = self.inner.send(request, progress).await;
        self.complete(begun, |e, redactor| match &result {
            Ok(response) => {
                e.response = har_response(response);
                if let Some(t) = &e.response.content.text {
                    redactor.learn_body(t);
                }
            }
            Err(err) => e.error = Some(recorded_error(err)),
        });
        result
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let begun = self.begin(request);
        let start = begun.start;
        let result = self.inner.open_stream(request).await;
        match result {
            Ok(stream) => {
                let elapsed = ms(self.clock.now() - start);
                let mut head = har_head(stream.status, &stream.headers);
                head.body_size = 0;
                let mut st = lock(&self.state);
                let target = match (&mut st.store, begun.slot) {
                    (Store::Memory(har), Slot::Memory(index)) => {
                        if let Some(e) = har.log.entries.get_mut(index) {
                            e.time = elapsed;
                            e.timings.wait = elapsed;
                            head.content.text = Some(String::new());
                            head.content.events = Some(Vec::new());
                            e.response = head;
                        }
                        StreamTarget::Memory {
                            index,
                            carry: Vec::new(),
                        }
                    }
                    (Store::File(log), Slot::File(mut e)) => {
                        e.time = elapsed;
                        e.timings.wait = elapsed;
                        e.response = head;
                        match log.open_stream(*e) {
                            Some(id) => StreamTarget::File { id },
                            None => StreamTarget::None,
                        }
                    }
                    _ => StreamTarget::None,
                };
                drop(st);
                Ok(StreamResponse {
                    status: stream.status,
                    headers: stream.headers,
                    body: Box::new(RecordingStream {
                        inner: stream.body,
                        state: self.state.clone(),
                        clock: self.clock.clone(),
                        start,
                        target,
                    }),
                })
            }
            Err(err) => {
                self.complete(begun, |e, _| e.error = Some(recorded_error(&err)));
                Err(err)
            }
        }
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        let begun = self.begin(request);
        let result = self.inner.download(request, dest, options, progress).await;
        self.complete(begun, |e, redactor| match &result {
            Ok(DownloadOutcome::Complete { bytes }) => {
                let size = i64::try_from(*bytes).unwrap_or(i64::MAX);
                e.response = HarResponse {
                    status: 200,
                    status_text: "OK".into(),
                    content: Content {
                        size,
                        mime_type: "video/mp4".into(),
                        comment: Some(
                            "media not recorded; a replay writes placeholder bytes".into(),
                        ),
                        ..Content::default()
                    },
                    body_size: size,
                    ..HarResponse::default()
                };
            }
            Ok(DownloadOutcome::Refused(response)) => {
                e.response = har_response(response);
                if let Some(t) = &e.response.content.text {
                    redactor.learn_body(t);
                }
            }
            Err(err) => e.error = Some(recorded_error(err)),
        });
        result
    }
}

/// Where a stream's chunks are recorded.
enum StreamTarget {
    /// Into the in-memory entry at `index`.
    Memory {
        index: usize,
        /// The start of a UTF-8 sequence split across chunks.
        carry: Vec<u8>,
    },
    /// Into the file log's live stream `id`.
    File { id: u64 },
    /// Nowhere (the recording is finished or failed).
    None,
}

/// Records each chunk of an event stream as it passes to the caller.
struct RecordingStream {
    inner: Box<dyn ByteStream>,
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    start: Instant,
    target: StreamTarget,
}

impl RecordingStream {
    fn record(&mut self, chunk: Option<&[u8]>, error: Option<&TransportError>) {
        let t = ms(self.clock.now() - self.start);
        match &mut self.target {
            StreamTarget::Memory { index, carry } => {
                record_in_memory(&self.state, *index, carry, t, chunk, error)
            }
            StreamTarget::File { id } => {
                let id = *id;
                let mut st = lock(&self.state);
                let State {
                    store, redactor, ..
                } = &mut *st;
                if let Store::File(log) = store {
                    match chunk {
                        Some(c) => log.stream_chunk(id, redactor, t, c),
                        None => {
                            log.stream_end(id, redactor, Some(t), error.map(recorded_error));
                        }
                    }
                }
                if chunk.is_none() {
                    self.target = StreamTarget::None;
                }
            }
            StreamTarget::None => {}
        }
    }
}

impl Drop for RecordingStream {
    fn drop(&mut self) {
        // A reader that stops early: the entry holds what was read.
        if let StreamTarget::File { id } = self.target {
            let mut st = lock(&self.state);
            let State {
                store, redactor, ..
            } = &mut *st;
            if let Store::File(log) = store {
                log.stream_end(id, redactor, None, None);
            }
        }
    }
}

fn record_in_memory(
    state: &Mutex<State>,
    index: usize,
    carry: &mut Vec<u8>,
    t: f64,
    chunk: Option<&[u8]>,
    error: Option<&TransportError>,
) {
    let mut bytes = std::mem::take(carry);
    if let Some(c) = chunk {
        bytes.extend_from_slice(c);
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(s) => s.to_owned(),
        Err(e) if chunk.is_some() && e.error_len().is_none() => {
            // An incomplete character at the end: keep it for the next chunk.
            let (good, rest) = bytes.split_at(e.valid_up_to());
            *carry = rest.to_vec();
            String::from_utf8_lossy(good).into_owned()
        }
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let mut st = lock(state);
    let State {
        store, redactor, ..
    } = &mut *st;
    let Store::Memory(har) = store else {
        return;
    };
    let Some(e) = har.log.entries.get_mut(index) else {
        return;
    };
    e.time = t;
    e.timings.receive = (t - e.timings.wait).max(0.0);
    if let Some(c) = chunk {
        let n = i64::try_from(c.len()).unwrap_or(i64::MAX);
        e.response.content.size += n;
        e.response.body_size += n;
    }
    if !text.is_empty() {
        e.response
            .content
            .text
            .get_or_insert_with(String::new)
            .push_str(&text);
        e.response
            .content
            .events
            .get_or_insert_with(Vec::new)
            .push(StreamEvent { t, text });
    }
    if let Some(err) = error {
        e.error = Some(recorded_error(err));
    }
    if chunk.is_none() {
        if let Some(body) = &e.response.content.text {
            if !(200..300).contains(&e.response.status) {
                redactor.learn_body(body);
            }
        }
    }
}

#[async_trait]
impl ByteStream for RecordingStream {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        let next = self.inner.next_chunk().await;
        match &next {
            Some(Ok(chunk)) => self.record(Some(chunk), None),
            Some(Err(err)) => self.record(None, Some(err)),
            None => self.record(None, None),
        }
        next
    }
}
