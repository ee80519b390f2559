//! Streaming recordings (`Recorder::to_file`): the file is the same HAR the
//! in-memory recorder gives and replays the same; a bad path fails before
//! anything is sent; the target only ever holds a complete document; memory
//! stays bounded on a stream of any size; a token the server writes
//! JSON-escaped (any escaping of any character) or percent-encoded never
//! reaches the file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use nemo_clock::TokioClock;
use nemo_core::driver::Driver;
use nemo_core::machine::{Command, Config, Event, ExportOptions, Session};
use nemo_core::route::UserInput;
use nemo_core::secret::Secret;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, Endpoint, Header, HeaderValue, Method, Request, Response, Target};
use nemo_har::{replay_blocking, Har, Recorder, ReplayOptions};
use nemo_mock::{AgentBehaviour, InProcess, MockConfig};

const CLIENT_ID: &str = "0f7c2a9e-5d41-4b6e-8c2d-a1b2c3d4e5f6";
const START_MS: u64 = 1_780_000_000_000;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn checked(har: &Har) -> nemo_har::Replay {
    replay_blocking(
        har,
        &ReplayOptions {
            check: true,
            ..ReplayOptions::default()
        },
    )
    .expect("replays")
}

/// Runs a whole session (anonymous token, upload, edit, export with a
/// claim link) over `transport` wrapped in `recorder`.
async fn session<T: Transport + ?Sized + 'static>(
    recorder: Arc<Recorder<T>>,
    clock: TokioClock,
    dir: &Path,
) -> Vec<Event> {
    let session = Session::new(Config {
        client_id: CLIENT_ID.into(),
        ..Config::default()
    });
    let mut driver = Driver::new(session, recorder.clone(), clock);
    let media = dir.join("city.mp4");
    std::fs::write(&media, nemo_mock::media::SAMPLE_MP4).unwrap();
    let part =
        nemo_core::api::file_part(&media, nemo_mock::media::SAMPLE_MP4.len() as u64).unwrap();
    let commands = [
        Command::Message(UserInput {
            text: "add lo-fi background music at 35%".into(),
            files: vec![part],
            urls: vec![],
        }),
        Command::Export(ExportOptions {
            download: true,
            out: Some(dir.join("out.mp4")),
            ..ExportOptions::default()
        }),
    ];
    let mut events = Vec::new();
    for c in commands {
        recorder.start_command(&c);
        driver
            .run(c, &mut |e: &Event| events.push(e.clone()))
            .await
            .unwrap();
    }
    events
}

fn mock() -> Arc<InProcess> {
    Arc::new(
        InProcess::new(MockConfig {
            agent: AgentBehaviour::calm(),
            start_unix_ms: Some(START_MS),
            ..MockConfig::default()
        })
        .unwrap(),
    )
}

/// The same session recorded in memory and streamed to a file gives the
/// same HAR (entries, pages, `_events`, `_command`), and the file replays
/// with `--check`: the replayer reads what the streaming writer writes as it
/// reads the in-memory recorder's files.
#[test]
fn a_streamed_recording_is_the_in_memory_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamed.har");
    let in_memory = paused_runtime().block_on(async {
        let clock = TokioClock::new().starting_at(START_MS);
        let recorder = Arc::new(Recorder::new(mock(), InProcess::BASE_URL, Arc::new(clock)));
        let out = tempfile::tempdir().unwrap();
        session(recorder.clone(), clock, out.path()).await;
        recorder.har()
    });
    paused_runtime().block_on(async {
        let clock = TokioClock::new().starting_at(START_MS);
        let recorder = Arc::new(
            Recorder::to_file(mock(), InProcess::BASE_URL, Arc::new(clock), &path).unwrap(),
        );
        session(recorder.clone(), clock, dir.path()).await;
        assert!(!path.exists(), "the target is written only when finished");
        recorder.finish().unwrap();
        recorder.finish().unwrap();
    });
    let streamed = Har::load(&path).unwrap();
    assert!(in_memory.log.entries.iter().any(|e| e
        .response
        .content
        .events
        .as_ref()
        .is_some_and(|v| v.len() > 1)));
    assert_eq!(streamed.log.pages, in_memory.log.pages);
    assert_eq!(streamed.log.entries.len(), in_memory.log.entries.len());
    for (i, (a, b)) in streamed
        .log
        .entries
        .iter()
        .zip(&in_memory.log.entries)
        .enumerate()
    {
        assert_eq!(a, b, "entry {i}");
    }
    let replay = checked(&streamed);
    assert!(replay.passed(), "{}", replay.report());
    assert_eq!(replay.transcript, checked(&in_memory).transcript);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nemo-har"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// A path that cannot be written fails at construction, with an error that
/// names it: nothing was sent, nothing was paid for.
#[test]
fn a_bad_path_fails_before_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link.har");
    let real = dir.path().join("real.har");
    std::fs::write(&real, "keep me").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut bad = vec![
        dir.path().join("missing-folder/session.har"),
        dir.path().to_path_buf(),
        dir.path().join("real.har/inside.har"),
    ];
    if cfg!(unix) {
        bad.push(link.clone());
        bad.push("/dev/null".into());
    }
    if cfg!(target_os = "linux") {
        bad.push("/proc/nemo-session.har".into());
    }
    for path in bad {
        let clock = Arc::new(TokioClock::new().starting_at(START_MS));
        let err = Recorder::to_file(mock(), InProcess::BASE_URL, clock, &path)
            .expect_err(&path.display().to_string());
        assert!(
            err.to_string().contains(&*path.display().to_string()),
            "{}: {err}",
            path.display()
        );
    }
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "keep me");
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let null = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(null.is_char_device(), "/dev/null is still a device");
    }
    let left = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(left, if cfg!(unix) { 2 } else { 1 }, "nothing was created");
}

/// A recording never replaces a file: an existing one is refused before
/// anything is sent, and one that appears under the name while recording
/// is kept (the recording fails at the end, naming the path). Before: an
/// existing regular file was accepted and replaced when finished.
#[test]
fn a_recording_never_replaces_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.mp4");
    std::fs::write(&path, "a video").unwrap();
    let clock = Arc::new(TokioClock::new().starting_at(START_MS));
    let Err(err) = Recorder::to_file(mock(), InProcess::BASE_URL, clock, &path) else {
        panic!("an existing file is refused");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("v.mp4"), "{err}");

    let late = dir.path().join("late.har");
    let result = paused_runtime().block_on(async {
        let clock = Arc::new(TokioClock::new().starting_at(START_MS));
        let recorder = Recorder::to_file(mock(), InProcess::BASE_URL, clock, &late).unwrap();
        recorder.start_command(&Command::Credits);
        recorder
            .send(&request(Endpoint::Credits), None)
            .await
            .unwrap();
        std::fs::write(&late, "written meanwhile").unwrap();
        recorder.finish()
    });
    let err = result.expect_err("the file that appeared is kept");
    assert!(err.to_string().contains("late.har"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a video");
    assert_eq!(std::fs::read_to_string(&late).unwrap(), "written meanwhile");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nemo-har"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// The target appears only at the end, whole; a recorder dropped without
/// `finish` finishes; a stream still open then is written as interrupted.
#[test]
fn the_target_only_ever_holds_a_complete_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.har");
    paused_runtime().block_on(async {
        let transport = Arc::new(Synthetic::new(256 * 1024));
        let clock = Arc::new(TokioClock::new().starting_at(START_MS));
        let recorder = Recorder::to_file(transport, "https://api.example", clock, &path).unwrap();
        recorder.start_command(&Command::Credits);
        recorder
            .send(&request(Endpoint::Credits), None)
            .await
            .unwrap();
        let mut stream = recorder
            .open_stream(&request(Endpoint::RunSse))
            .await
            .unwrap();
        let first = stream.body.next_chunk().await.unwrap().unwrap();
        assert!(!first.is_empty());
        assert!(!path.exists(), "nothing under the name before the end");
        drop(recorder);
        // Chunks after the end are not recorded (and do not fail).
        assert!(stream.body.next_chunk().await.unwrap().is_ok());
    });
    let har = Har::load(&path).unwrap();
    assert_eq!(har.log.pages.len(), 1);
    assert_eq!(har.log.entries.len(), 2);
    let e = &har.log.entries[1];
    assert_eq!(e.error.as_ref().unwrap().kind, "interrupted");
    let events = e.response.content.events.as_ref().unwrap();
    assert!(!events.is_empty());
    let text: String = events.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(e.response.content.text.as_deref(), Some(text.as_str()));
    assert!(!text.contains(Synthetic::TOKEN));
}

/// A temporary folder for the tests that write tens of megabytes: under
/// cargo's own scratch folder in `target/`, which has room for the build,
/// rather than the system's temporary folder, which may be small.
fn big_tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// 16 MiB of event stream, in 64 KiB chunks, recorded to a file: the
/// recorder never holds more than a small, fixed amount (one chunk's events,
/// a line), and the file holds the whole stream, redacted. (The file is
/// over twice the stream; 16 MiB keeps the test's disk use near 40 MB, as a
/// CI machine with little free disk space has failed on 64 MiB. The 300 MB
/// run is `cargo xtask bench`'s.)
#[test]
fn memory_stays_bounded_on_a_large_stream() {
    const TOTAL: u64 = 16 * 1024 * 1024;
    let dir = big_tempdir();
    let path = dir.path().join("large.har");
    let peak = paused_runtime().block_on(async {
        let transport = Arc::new(Synthetic::new(TOTAL));
        let clock = Arc::new(TokioClock::new().starting_at(START_MS));
        let recorder = Recorder::to_file(transport, "https://api.example", clock, &path).unwrap();
        let mut stream = recorder
            .open_stream(&request(Endpoint::RunSse))
            .await
            .unwrap();
        let mut seen = 0u64;
        while let Some(chunk) = stream.body.next_chunk().await {
            seen += chunk.unwrap().len() as u64;
        }
        assert_eq!(seen, TOTAL);
        drop(stream);
        recorder.finish().unwrap();
        recorder.peak_buffered_bytes()
    });
    assert!(peak > 0, "the counter counts");
    assert!(
        peak < 512 * 1024 && (peak as u64) < TOTAL / 32,
        "peak buffered: {peak} bytes"
    );
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 2 * TOTAL, "text and _events: {len} bytes");
    assert_valid_json_without_token(&path);
}

/// A stream with no newline at all (one endless line): still bounded, by
/// the line cap and a window.
#[test]
fn memory_stays_bounded_on_an_endless_line() {
    const TOTAL: u64 = 8 * 1024 * 1024;
    let dir = big_tempdir();
    let path = dir.path().join("line.har");
    let peak = paused_runtime().block_on(async {
        let mut synthetic = Synthetic::new(TOTAL);
        synthetic.no_newline = true;
        let transport = Arc::new(synthetic);
        let clock = Arc::new(TokioClock::new().starting_at(START_MS));
        let recorder = Recorder::to_file(transport, "https://api.example", clock, &path).unwrap();
        let mut stream = recorder
            .open_stream(&request(Endpoint::RunSse))
            .await
            .unwrap();
        while let Some(chunk) = stream.body.next_chunk().await {
            chunk.unwrap();
        }
        drop(stream);
        recorder.finish().unwrap();
        recorder.peak_buffered_bytes()
    });
    assert!(
        peak < 4 * nemo_har::redact::LINE_CAP,
        "peak buffered: {peak} bytes"
    );
    assert_valid_json_without_token(&path);
}

fn assert_valid_json_without_token(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).expect("valid JSON");
    assert!(
        memchr::memmem::find(&bytes, Synthetic::TOKEN.as_bytes()).is_none(),
        "the token is in the file"
    );
}

fn request(endpoint: Endpoint) -> Request {
    let (method, path) = match endpoint {
        Endpoint::RunSse => (Method::Post, "/run_sse"),
        _ => (Method::Get, "/api/credits/balance/simple"),
    };
    Request {
        endpoint,
        method,
        target: Target::Api(path.into()),
        headers: vec![Header {
            name: "authorization",
            value: HeaderValue::Sensitive(Secret::new(format!("Bearer {}", Synthetic::TOKEN))),
        }],
        body: if method == Method::Post {
            Body::Json(r#"{"new_message":{"parts":[{"text":"hi"}]}}"#.into())
        } else {
            Body::Empty
        },
    }
}

/// A transport answering credits and an event stream of `total` bytes,
/// generated in 64 KiB chunks (lines cross chunk boundaries), some events
/// echoing the token.
struct Synthetic {
    total: u64,
    no_newline: bool,
}

impl Synthetic {
    const TOKEN: &'static str = "nmv_usr_5f3a9c0d7e1b2468ace0bdf13579beef";

    fn new(total: u64) -> Self {
        Self {
            total,
            no_newline: false,
        }
    }
}

#[async_trait]
impl Transport for Synthetic {
    async fn send(
        &self,
        _request: &Request,
        _progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        Ok(Response::json(
            200,
            &serde_json::json!({"code": 0, "data": {"credits": 10}}),
        ))
    }

    async fn open_stream(&self, _request: &Request) -> Result<StreamResponse, TransportError> {
        let pattern = if self.no_newline {
            format!("{} lorem ipsum dolor sit amet ", Synthetic::TOKEN).repeat(64)
        } else {
            (0..64)
                .map(|i| {
                    let echo = if i % 8 == 0 {
                        Synthetic::TOKEN.replace('_', "\\u005f")
                    } else {
                        "-".into()
                    };
                    format!(
                        "data: {{\"id\":\"e-{i}\",\"content\":{{\"parts\":[{{\"text\":\"{}\"}}]}},\"echo\":\"{echo}\"}}\n\n",
                        "lorem ipsum ".repeat(i % 13 + 1)
                    )
                })
                .collect()
        };
        Ok(StreamResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: Box::new(Generated {
                pattern: pattern.into_bytes(),
                at: 0,
                left: self.total,
            }),
        })
    }

    async fn download(
        &self,
        _request: &Request,
        _dest: &Path,
        _options: DownloadOptions,
        _progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Other,
            "no downloads",
        ))
    }
}

/// `left` bytes of `pattern`, repeated, in 64 KiB chunks.
struct Generated {
    pattern: Vec<u8>,
    at: usize,
    left: u64,
}

#[async_trait]
impl ByteStream for Generated {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(64 * 1024) as usize;
        let mut chunk = Vec::with_capacity(n);
        while chunk.len() < n {
            let take = (n - chunk.len()).min(self.pattern.len() - self.at);
            chunk.extend_from_slice(&self.pattern[self.at..self.at + take]);
            self.at = (self.at + take) % self.pattern.len();
        }
        self.left -= n as u64;
        Some(Ok(Bytes::from(chunk)))
    }
}

// ---------------------------------------------------------------------------
// Escaped tokens.

/// How the server writes a token: each a legal JSON (or URL) spelling of it.
type Form = fn(&str) -> String;

fn slash_escaped(t: &str) -> String {
    t.replace('/', "\\/")
}

fn underscore_escaped(t: &str) -> String {
    t.replace('_', "\\u005f")
}

fn all_escaped(t: &str) -> String {
    t.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

fn all_escaped_upper(t: &str) -> String {
    t.chars().map(|c| format!("\\u{:04X}", c as u32)).collect()
}

fn every_other_escaped(t: &str) -> String {
    t.chars()
        .enumerate()
        .map(|(i, c)| match (i % 2, c) {
            (_, '/') => "\\/".to_owned(),
            (0, c) => format!("\\u{:04x}", c as u32),
            (_, c) => c.to_string(),
        })
        .collect()
}

fn percent_encoded(t: &str) -> String {
    t.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn percent_encoded_lower(t: &str) -> String {
    t.bytes().map(|b| format!("%{b:02x}")).collect()
}

/// The token the client sees: the simulator's, with a `/` (legal in a
/// bearer token) so that `\/` is one of its spellings.
fn client_token(mock_token: &str) -> String {
    mock_token.replacen('_', "/", 1)
}

/// Between the recorder and the simulator: answers the anonymous token with
/// `answer` spelling of a token holding a `/`, echoes it in the first stream
/// event as `echo` spelling (a JSON field the client ignores) and in an SSE
/// comment percent-encoded, and maps it back to the simulator's on the way
/// out. The client decodes every spelling to the same token, so it behaves
/// as it would without.
struct Escaping {
    inner: Arc<InProcess>,
    answer: Form,
    echo: Form,
    tokens: Mutex<Option<(String, String)>>,
}

impl Escaping {
    fn to_mock(&self, request: &Request) -> Request {
        let mut r = request.clone();
        if let Some((mock, client)) = self.tokens.lock().unwrap().clone() {
            for h in &mut r.headers {
                let v = h.value.expose();
                if v.contains(&client) {
                    h.value = HeaderValue::Sensitive(Secret::new(v.replace(&client, &mock)));
                }
            }
        }
        r
    }
}

#[async_trait]
impl Transport for Escaping {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        let mut response = self.inner.send(&self.to_mock(request), progress).await?;
        if request.endpoint == Endpoint::AnonymousToken && response.status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            let mock = v["data"]["token"].as_str().unwrap().to_owned();
            let client = client_token(&mock);
            let body = String::from_utf8(response.body).unwrap().replace(
                &format!("\"{mock}\""),
                &format!("\"{}\"", (self.answer)(&client)),
            );
            assert!(!body.contains(&mock), "{body}");
            response.body = body.into_bytes();
            *self.tokens.lock().unwrap() = Some((mock, client));
        }
        Ok(response)
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let mut response = self.inner.open_stream(&self.to_mock(request)).await?;
        let client = self.tokens.lock().unwrap().clone().map(|(_, c)| c);
        if let Some(client) = client {
            response.body = Box::new(Echo {
                inner: response.body,
                field: format!("\"_echo\":\"{}\",", (self.echo)(&client)),
                comment: format!(": echo {}\n", percent_encoded(&client)),
                done: false,
            });
        }
        Ok(response)
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        self.inner
            .download(&self.to_mock(request), dest, options, progress)
            .await
    }
}

struct Echo {
    inner: Box<dyn ByteStream>,
    field: String,
    comment: String,
    done: bool,
}

#[async_trait]
impl ByteStream for Echo {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        let next = self.inner.next_chunk().await;
        match next {
            Some(Ok(chunk)) if !self.done => {
                let text = String::from_utf8_lossy(&chunk);
                match text.find("data: {") {
                    Some(at) => {
                        self.done = true;
                        let at = at + "data: {".len();
                        let changed = format!(
                            "{}{}{}{}",
                            self.comment,
                            &text[..at],
                            self.field,
                            &text[at..]
                        );
                        Some(Ok(Bytes::from(changed)))
                    }
                    None => Some(Ok(chunk)),
                }
            }
            other => other,
        }
    }
}

/// A token the server writes escaped — `\/`, `\u005f`, every character
/// `\u`-escaped in either case, a mix — and echoes in a stream event escaped
/// differently, and percent-encoded in the stream: no spelling of it reaches
/// the file, whether streamed or saved from memory, and the recording
/// replays with `--check`.
#[test]
fn no_spelling_of_an_escaped_token_reaches_the_file() {
    let table: &[(&str, Form, Form)] = &[
        (
            "\\/ answered, \\u005f echoed",
            slash_escaped,
            underscore_escaped,
        ),
        (
            "\\u005f answered, all \\u echoed",
            underscore_escaped,
            all_escaped,
        ),
        (
            "all \\u answered, all \\U echoed",
            all_escaped,
            all_escaped_upper,
        ),
        (
            "all \\U answered, \\/ echoed",
            all_escaped_upper,
            slash_escaped,
        ),
        (
            "every other answered, raw echoed",
            every_other_escaped,
            |t| t.to_owned(),
        ),
        (
            "raw answered, every other echoed",
            |t| t.to_owned(),
            every_other_escaped,
        ),
    ];
    for (case, answer, echo) in table {
        for streamed in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("session.har");
            let events = paused_runtime().block_on(async {
                let transport = Arc::new(Escaping {
                    inner: mock(),
                    answer: *answer,
                    echo: *echo,
                    tokens: Mutex::new(None),
                });
                let clock = TokioClock::new().starting_at(START_MS);
                let recorder = Arc::new(if streamed {
                    Recorder::to_file(transport, InProcess::BASE_URL, Arc::new(clock), &path)
                        .unwrap()
                } else {
                    Recorder::new(transport, InProcess::BASE_URL, Arc::new(clock))
                });
                let events = session(recorder.clone(), clock, dir.path()).await;
                recorder.save(&path).unwrap();
                events
            });
            let token = events
                .iter()
                .find_map(|e| match e {
                    Event::TokenIssued { token, .. } => Some(token.expose().to_owned()),
                    _ => None,
                })
                .expect("an anonymous token was issued");
            assert!(token.contains('/'), "{token}");
            let case = format!(
                "{case} ({})",
                if streamed { "streamed" } else { "in memory" }
            );
            let raw = std::fs::read_to_string(&path).unwrap();
            assert!(raw.contains("_echo"), "{case}: the echo was recorded");
            // The file's own JSON escaping adds a level: look at it undone too.
            let unescaped = raw.replace("\\\\", "\\");
            let hex = token.rsplit('_').next().unwrap();
            assert!(hex.len() >= 16);
            let spellings = [
                token.clone(),
                hex.to_owned(),
                slash_escaped(&token),
                underscore_escaped(&token),
                all_escaped(&token),
                all_escaped_upper(&token),
                every_other_escaped(&token),
                percent_encoded(&token),
                percent_encoded_lower(&token),
                all_escaped(hex),
                percent_encoded(hex),
            ];
            for s in &spellings {
                assert!(!raw.contains(s.as_str()), "{case}: {s} is in the file");
                assert!(
                    !unescaped.contains(s.as_str()),
                    "{case}: {s} is in the file"
                );
            }
            assert!(!raw.contains(CLIENT_ID), "{case}: the client id survived");
            assert!(raw.contains("Bearer [redacted]"), "{case}");
            let har = Har::load(&path).unwrap();
            let replay = checked(&har);
            assert!(replay.passed(), "{case}: {}", replay.report());
        }
    }
}

/// Redaction is idempotent on the fixtures: masking a recorded session again
/// (secrets learned from it, every body and stream line walked) changes
/// nothing, so regenerating them with this redaction keeps their bytes.
#[test]
fn redacting_the_fixtures_again_changes_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sessions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "har") {
            continue;
        }
        let har = Har::load(&path).unwrap();
        let mut again = har.clone();
        nemo_har::Redactor::new().har(&mut again);
        for (i, (a, b)) in har.log.entries.iter().zip(&again.log.entries).enumerate() {
            assert_eq!(a, b, "{} entry {i}", path.display());
        }
        assert_eq!(har, again, "{}", path.display());
        seen += 1;
    }
    assert!(seen > 10);
}

/// A failure at the end (the folder went away) is returned by `finish`, and
/// by every later call; nothing is left under the target name.
#[test]
fn a_failure_to_finish_is_reported_and_sticky() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("session.har");
    let clock = Arc::new(TokioClock::new().starting_at(START_MS));
    let recorder = Recorder::to_file(mock(), InProcess::BASE_URL, clock, &path).unwrap();
    recorder.start_page("a turn");
    std::fs::remove_dir_all(&sub).unwrap();
    let first = recorder.finish().expect_err("the folder is gone");
    let second = recorder.finish().expect_err("sticky");
    assert_eq!(first.to_string(), second.to_string());
    assert!(first.to_string().contains("session.har"), "{first}");
    assert!(!path.exists());
}
