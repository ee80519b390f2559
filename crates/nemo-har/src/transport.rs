//! [`ReplayTransport`]: answers requests from a recording.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Request, Response};
use nemo_files::{BoxFuture, Fetch, Limits, Resume};

use crate::har::{Entry, Har, HarRequest};
use crate::recorder::{har_request, kind_from_name};

/// A request the client sent during a replay, and the entry that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRequest {
    /// The request, as a recording would have it (before redaction).
    pub request: HarRequest,
    /// The index of the entry that answered it, if any.
    pub answered_by: Option<usize>,
}

#[derive(Default)]
struct State {
    used: Vec<bool>,
    cursor: usize,
    sent: Vec<SentRequest>,
}

/// A [`Transport`] that answers each request with the recorded response of
/// the next matching entry of a HAR.
///
/// - An entry matches when it has the same method and path (the host, the
///   query and generated render ids are ignored). Entries are taken in
///   order; entries the client does not ask for are skipped. When no unused
///   entry is left, a `GET` is answered again by the last entry that matched
///   it (a client that polls once more than the recording did); anything else
///   fails with a [`TransportError`] of kind `Other` naming the method and
///   path.
/// - Answers come after the recorded time (`tokio::time::sleep`: under a
///   paused runtime, a 10-minute session replays in milliseconds). Event
///   streams arrive chunk by chunk at their recorded `_events` offsets; a
///   recording without `_events` (a browser's) is split at event boundaries,
///   with no delay.
/// - Downloads are the recorded content, or as many placeholder bytes as
///   the recorded size, placed by [`nemo_files`] as every transport's are
///   (temporary file of the call's own, length and error-page checks, sync,
///   rename without replacing; a relative target lands in
///   [`with_download_dir`](Self::with_download_dir)'s directory when one is
///   set).
/// - A recorded transport failure (status 0, `_error`) is returned as such.
pub struct ReplayTransport {
    entries: Vec<Entry>,
    base_url: String,
    download_dir: Option<PathBuf>,
    state: Mutex<State>,
}

impl std::fmt::Debug for ReplayTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayTransport")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The path of a URL: no scheme, host, query or fragment.
pub(crate) fn url_path(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            after.find('/').map_or("/", |j| &after[j..])
        }
        None => url,
    };
    let path = rest.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The service echoes the client's render id; ids are generated, so the
/// replayed submission's id replaces the recorded one in the answer.
fn echo_render_id(request: &Request, response: &mut Response) {
    let sent = request
        .json_body()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v["id"].as_str().map(str::to_owned));
    let Some(sent) = sent else { return };
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
        return;
    };
    let slot = if body["data"].is_object() {
        &mut body["data"]["id"]
    } else {
        &mut body["id"]
    };
    if slot.as_str().is_some_and(is_render_id) {
        *slot = serde_json::Value::String(sent);
        if let Ok(bytes) = serde_json::to_vec(&body) {
            response.body = bytes;
        }
    }
}

/// A render id chosen by a client: `render_<unix ms>` as the driver names
/// them, or any other `render_<name>` a frontend picked (the demo's
/// `render_demo`), optionally as a file name (`render_<id>.mp4`).
pub(crate) fn is_render_id(s: &str) -> bool {
    let stem = s.strip_suffix(".mp4").unwrap_or(s);
    stem.strip_prefix("render_").is_some_and(|d| {
        !d.is_empty()
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// What a request is matched on: its method and its path, with generated
/// render ids replaced.
pub(crate) fn route_key(method: &str, url: &str) -> (String, String) {
    let path = url_path(url)
        .split('/')
        .map(|seg| {
            if !is_render_id(seg) {
                seg
            } else if seg.ends_with(".mp4") {
                "render_*.mp4"
            } else {
                "render_*"
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    (method.to_ascii_uppercase(), path)
}

/// How long a replayed download may wait: as long as the recording did.
const REPLAY_PATIENCE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn duration_ms(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::ZERO)
    } else {
        Duration::ZERO
    }
}

/// The recorded body's bytes: the text (base64-decoded if so marked).
fn body_bytes(entry: &Entry) -> Vec<u8> {
    let content = &entry.response.content;
    match (&content.text, content.encoding.as_deref()) {
        (Some(t), Some(enc)) if enc.eq_ignore_ascii_case("base64") => {
            decode_base64(t).unwrap_or_else(|| t.as_bytes().to_vec())
        }
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    }
}

/// Base64 as recordings carry it: the standard or the URL-safe alphabet,
/// padded or not, broken into lines or not. `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let mut standard: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'=' | b' ' | b'\n' | b'\r' | b'\t'))
        .map(|b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    if standard.len() % 4 == 1
        && standard
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
    {
        // A lone last character holds no whole byte: dropped.
        standard.pop();
    }
    LENIENT.decode(standard).ok()
}

fn response_of(entry: &Entry) -> Response {
    Response {
        status: entry.response.status,
        headers: entry
            .response
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .collect(),
        body: body_bytes(entry),
    }
}

fn recorded_failure(entry: &Entry) -> Option<TransportError> {
    if entry.response.status != 0 {
        return None;
    }
    Some(match &entry.error {
        Some(e) => TransportError::new(kind_from_name(&e.kind), e.message.clone()),
        None => TransportError::new(
            TransportErrorKind::Interrupted,
            "the recorded request got no response",
        ),
    })
}

/// Splits an event-stream body after each blank line (LF, CRLF or CR).
fn split_events(body: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        let end = if body[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if body[i..].starts_with(b"\n\n") || body[i..].starts_with(b"\r\r") {
            Some(i + 2)
        } else {
            None
        };
        match end {
            Some(e) => {
                out.push(Bytes::copy_from_slice(&body[start..e]));
                start = e;
                i = e;
            }
            None => i += 1,
        }
    }
    if start < body.len() {
        out.push(Bytes::copy_from_slice(&body[start..]));
    }
    out
}

impl ReplayTransport {
    /// A transport answering from `har`'s entries.
    pub fn new(har: &Har) -> Self {
        Self {
            entries: har.log.entries.clone(),
            base_url: String::new(),
            download_dir: None,
            state: Mutex::new(State {
                used: vec![false; har.log.entries.len()],
                ..State::default()
            }),
        }
    }

    /// Puts downloads whose target is a relative path (the core's default
    /// `<render id>.mp4`) in `dir` instead of the current directory.
    pub fn with_download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = Some(dir.into());
        self
    }

    /// Every request the client sent so far, in order.
    pub fn sent(&self) -> Vec<SentRequest> {
        lock(&self.state).sent.clone()
    }

    /// Indices of the entries no request has used.
    pub fn unused(&self) -> Vec<usize> {
        lock(&self.state)
            .used
            .iter()
            .enumerate()
            .filter(|(_, u)| !**u)
            .map(|(i, _)| i)
            .collect()
    }

    fn take(&self, request: &Request) -> Result<&Entry, TransportError> {
        let har_req = har_request(&self.base_url, request);
        let key = route_key(&har_req.method, &har_req.url);
        let matches = |e: &Entry| route_key(&e.request.method, &e.request.url) == key;
        let mut st = lock(&self.state);
        let n = self.entries.len();
        let cursor = st.cursor.min(n);
        let found = (cursor..n)
            .chain(0..cursor)
            .find(|&i| !st.used[i] && matches(&self.entries[i]));
        let found = match found {
            Some(i) => {
                st.used[i] = true;
                st.cursor = i + 1;
                Some(i)
            }
            // Polled once more than recorded: answer as the last time.
            None if key.0 == "GET" => st
                .sent
                .iter()
                .rev()
                .filter_map(|s| s.answered_by)
                .find(|&i| matches(&self.entries[i])),
            None => None,
        };
        st.sent.push(SentRequest {
            request: har_req,
            answered_by: found,
        });
        match found {
            Some(i) => Ok(&self.entries[i]),
            None => Err(TransportError::new(
                TransportErrorKind::Other,
                format!(
                    "replay: the recording has no answer for {} {}",
                    key.0,
                    url_path(&full_target(request))
                ),
            )),
        }
    }
}

fn full_target(request: &Request) -> String {
    request.target.to_string()
}

struct ReplayStream {
    chunks: std::vec::IntoIter<(Duration, Bytes)>,
    start: tokio::time::Instant,
    error: Option<TransportError>,
}

#[async_trait]
impl ByteStream for ReplayStream {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        match self.chunks.next() {
            Some((at, chunk)) => {
                tokio::time::sleep_until(self.start + at).await;
                Some(Ok(chunk))
            }
            None => self.error.take().map(Err),
        }
    }
}

#[async_trait]
impl Transport for ReplayTransport {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        let entry = self.take(request)?;
        tokio::time::sleep(duration_ms(entry.time)).await;
        if let Some(err) = recorded_failure(entry) {
            return Err(err);
        }
        if let (Some(p), Some(post)) = (progress, &entry.request.post_data) {
            let total = u64::try_from(entry.request.body_size.max(0)).unwrap_or(0);
            if !post.params.is_empty() {
                p(Progress {
                    done: total,
                    total: Some(total),
                });
            }
        }
        let mut response = response_of(entry);
        if request.endpoint == nemo_core::wire::Endpoint::RenderSubmit {
            echo_render_id(request, &mut response);
        }
        Ok(response)
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let start = tokio::time::Instant::now();
        let entry = self.take(request)?;
        let wait = if entry.response.content.events.is_some() {
            entry.timings.wait
        } else {
            entry.time
        };
        tokio::time::sleep(duration_ms(wait)).await;
        if let Some(err) = recorded_failure(entry) {
            return Err(err);
        }
        let chunks: Vec<(Duration, Bytes)> = match &entry.response.content.events {
            Some(events) => events
                .iter()
                .map(|e| (duration_ms(e.t), Bytes::from(e.text.clone())))
                .collect(),
            None => split_events(&body_bytes(entry))
                .into_iter()
                .map(|c| (Duration::ZERO, c))
                .collect(),
        };
        let response = response_of(entry);
        let error = entry
            .error
            .as_ref()
            .map(|e| TransportError::new(kind_from_name(&e.kind), e.message.clone()));
        Ok(StreamResponse {
            status: response.status,
            headers: response.headers,
            body: Box::new(ReplayStream {
                chunks: chunks.into_iter(),
                start,
                error,
            }),
        })
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        let redirected;
        let dest = match &self.download_dir {
            Some(dir) if dest.is_relative() => {
                redirected = dir.join(dest);
                redirected.as_path()
            }
            _ => dest,
        };
        let mut fetch = ReplayFetch {
            transport: self,
            request,
            answered: false,
            recorded_failure: None,
        };
        // The recording's own times are waited for, however long they were.
        let limits = Limits {
            read_timeout: REPLAY_PATIENCE,
            overall: REPLAY_PATIENCE,
            ..Limits::default()
        };
        let result = nemo_files::download(&mut fetch, dest, options, limits, progress).await;
        // A recorded failure is the whole call's, as the recording has it.
        match fetch.recorded_failure.take() {
            Some(recorded) => Err(recorded),
            None => result,
        }
    }
}

/// The answer to a download, from the recording: `nemo_files` places the
/// file as it does for every transport.
///
/// A recording holds one entry per download *call* (its outcome after any
/// resumes), so the first fetch takes the entry and there is no second one.
struct ReplayFetch<'a> {
    transport: &'a ReplayTransport,
    request: &'a Request,
    answered: bool,
    /// The recorded failure of the call, returned as it is.
    recorded_failure: Option<TransportError>,
}

impl Fetch for ReplayFetch<'_> {
    fn fetch(
        &mut self,
        _resume: Option<Resume>,
    ) -> BoxFuture<'_, Result<StreamResponse, TransportError>> {
        Box::pin(async move {
            if std::mem::replace(&mut self.answered, true) {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    "replay: the recording holds one answer per download",
                ));
            }
            let entry = self.transport.take(self.request)?;
            tokio::time::sleep(duration_ms(entry.time)).await;
            if let Some(err) = recorded_failure(entry) {
                // Not to be resumed: kept for the caller, and an error the
                // download engine does not ask again after.
                let message = err.message.clone();
                self.recorded_failure = Some(err);
                return Err(TransportError::new(TransportErrorKind::Other, message));
            }
            let mut response = response_of(entry);
            let placeholder = if response.body.is_empty() {
                let size = entry.response.content.size.max(entry.response.body_size);
                u64::try_from(size).unwrap_or(0)
            } else {
                0
            };
            let length = response.body.len() as u64 + placeholder;
            // The body is replayed decoded and whole, whatever the recorded
            // transfer said.
            response.headers.retain(|(name, _)| {
                !matches!(
                    name.as_str(),
                    "content-length" | "content-encoding" | "transfer-encoding" | "content-range"
                )
            });
            if (200..300).contains(&response.status) {
                response
                    .headers
                    .push(("content-length".into(), length.to_string()));
            }
            Ok(StreamResponse {
                status: response.status,
                headers: response.headers,
                body: Box::new(RecordedBody {
                    bytes: Some(Bytes::from(response.body)),
                    zeros: placeholder,
                }),
            })
        })
    }
}

/// A recorded download body: the recorded bytes, or as many placeholder
/// zeros as the recorded size, 64 KiB at a time.
struct RecordedBody {
    bytes: Option<Bytes>,
    zeros: u64,
}

#[async_trait]
impl ByteStream for RecordedBody {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        if let Some(bytes) = self.bytes.take().filter(|b| !b.is_empty()) {
            return Some(Ok(bytes));
        }
        if self.zeros == 0 {
            return None;
        }
        let n = self.zeros.min(ZEROS.len() as u64);
        self.zeros -= n;
        Some(Ok(Bytes::from_static(&ZEROS[..n as usize])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_every_form_a_recording_may_hold() {
        use base64::Engine as _;
        for bytes in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"\x00\xff\x10binary\xfb\xff",
        ] {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            assert_eq!(decode_base64(&text).as_deref(), Some(bytes), "{text}");
            let url_safe = text.replace('+', "-").replace('/', "_");
            let bare = url_safe.trim_end_matches('=');
            assert_eq!(decode_base64(bare).as_deref(), Some(bytes), "{bare}");
        }
        assert_eq!(
            decode_base64("Zm9v\r\nYmFy").as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(decode_base64("Zm9vY").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decode_base64("Zm9v!"), None);
        assert_eq!(decode_base64("Zm9vY!"), None);
    }

    #[test]
    fn keys_ignore_host_query_and_render_ids() {
        assert_eq!(
            route_key(
                "get",
                "https://a.example/api/render/proxy/lambda/render_1777000000000?x=1"
            ),
            ("GET".into(), "/api/render/proxy/lambda/render_*".into())
        );
        assert_eq!(url_path("http://h"), "/");
        assert_eq!(url_path("/run_sse"), "/run_sse");
    }

    #[test]
    fn splits_at_blank_lines() {
        let parts = split_events(b"data: a\n\ndata: b\r\n\r\n: ping\n\ntail");
        assert_eq!(parts.len(), 4);
        assert_eq!(&parts[1][..], b"data: b\r\n\r\n");
    }

    /// A HAR with the given download answers to `GET https://cdn.example/out.mp4`.
    fn downloads(responses: &[&str]) -> Har {
        let entries: Vec<String> = responses
            .iter()
            .map(|r| {
                format!(
                    r#"{{"request": {{"method": "GET", "url": "https://cdn.example/out.mp4"}},
                        "response": {r}}}"#
                )
            })
            .collect();
        Har::from_json(&format!(
            r#"{{"log": {{"entries": [{}]}}}}"#,
            entries.join(",")
        ))
        .unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A replayed download is placed as every transport's is (`nemo-files`):
    /// an existing file is kept, a size other than the render status's or
    /// an HTML page served with 200 is refused, and nothing is left behind.
    #[tokio::test(start_paused = true)]
    async fn replayed_downloads_are_checked_and_placed_as_by_every_transport() {
        let video = r#"{"status": 200, "content": {"size": 5000, "mimeType": "video/mp4"}}"#;
        let page = r#"{"status": 200, "headers": [{"name": "Content-Type", "value": "text/html"}],
            "content": {"size": 60, "mimeType": "text/html",
                        "text": "<html><title>Access denied</title></html>"}}"#;
        let replay = ReplayTransport::new(&downloads(&[video, video, page, video]));
        let request = nemo_core::api::Api::new(nemo_core::api::Attribution::default())
            .download_url("https://cdn.example/out.mp4");
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.mp4");

        // The placeholder of the recorded size.
        let done = replay
            .download(&request, &dest, DownloadOptions::default(), None)
            .await
            .unwrap();
        assert_eq!(done, DownloadOutcome::Complete { bytes: 5000 });
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 5000);

        // Already there: kept, and no recorded answer is used up.
        let err = replay
            .download(&request, &dest, DownloadOptions::default(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Exists, "{err}");
        assert_eq!(replay.sent().len(), 1);

        // Not the size the render status said.
        let other = dir.path().join("other.mp4");
        let wrong = DownloadOptions {
            expected_size: Some(4000),
            ..DownloadOptions::default()
        };
        let err = replay
            .download(&request, &other, wrong, None)
            .await
            .unwrap_err();
        assert!(err.message.contains("render status said 4000"), "{err}");

        // An HTML page served as the video.
        let err = replay
            .download(&request, &other, DownloadOptions::default(), None)
            .await
            .unwrap_err();
        assert!(err.message.contains("an HTML page"), "{err}");
        assert_eq!(names(dir.path()), vec!["out.mp4".to_owned()]);
    }
}
