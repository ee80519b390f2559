//! The placing engine against in-memory fetchers (no sockets): each test
//! fails without the guarantee it names.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, Endpoint, Method, Request, Response, Target};
use nemo_files::{download, download_via_stream, BoxFuture, Fetch, Limits, Resume};

/// Deterministic file content.
fn content(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8 | 1)
        .collect()
}

/// One answer of a fake server.
#[derive(Clone, Default)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The connection breaks after this many body bytes.
    cut_after: Option<usize>,
    /// The body stops arriving (without breaking) after `cut_after` bytes.
    stall: bool,
}

impl Answer {
    fn ok(body: &[u8]) -> Self {
        Answer {
            status: 200,
            headers: vec![
                ("content-type".into(), "video/mp4".into()),
                ("content-length".into(), body.len().to_string()),
                ("etag".into(), "\"v1\"".into()),
            ],
            body: body.to_vec(),
            ..Answer::default()
        }
    }

    fn part(whole: &[u8], from: usize) -> Self {
        let rest = &whole[from..];
        Answer {
            status: 206,
            headers: vec![
                ("content-type".into(), "video/mp4".into()),
                ("content-length".into(), rest.len().to_string()),
                (
                    "content-range".into(),
                    format!("bytes {from}-{}/{}", whole.len() - 1, whole.len()),
                ),
            ],
            body: rest.to_vec(),
            ..Answer::default()
        }
    }

    fn typed(status: u16, content_type: &str, body: &[u8]) -> Self {
        Answer {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
            ..Answer::default()
        }
    }

    fn cut(mut self, after: usize) -> Self {
        self.cut_after = Some(after);
        self
    }

    fn stalled(mut self, after: usize) -> Self {
        self.cut_after = Some(after);
        self.stall = true;
        self
    }

    fn without(mut self, header: &str) -> Self {
        self.headers.retain(|(n, _)| n != header);
        self
    }

    fn into_response(self) -> StreamResponse {
        let (body, end) = match self.cut_after {
            Some(n) if self.stall => (self.body[..n].to_vec(), End::Stall),
            Some(n) => (self.body[..n].to_vec(), End::Break),
            None => (self.body, End::Close),
        };
        StreamResponse {
            status: self.status,
            headers: self.headers,
            body: Box::new(FakeBody {
                chunks: body.chunks(1000).map(Bytes::copy_from_slice).collect(),
                end,
            }),
        }
    }
}

enum End {
    Close,
    Break,
    Stall,
}

struct FakeBody {
    chunks: VecDeque<Bytes>,
    end: End,
}

#[async_trait]
impl ByteStream for FakeBody {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Some(Ok(chunk));
        }
        match self.end {
            End::Close => None,
            End::Break => {
                self.end = End::Close;
                Some(Err(TransportError::new(
                    TransportErrorKind::Interrupted,
                    "connection reset (fake)",
                )))
            }
            End::Stall => std::future::pending().await,
        }
    }
}

/// A fake server: answers in order, remembers what it was asked.
#[derive(Default)]
struct Fake {
    answers: VecDeque<Answer>,
    asked: Arc<Mutex<Vec<Option<Resume>>>>,
    /// Runs on the first fetch (another process at work meanwhile).
    meanwhile: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Fake {
    fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
        Fake {
            answers: answers.into_iter().collect(),
            ..Fake::default()
        }
    }

    fn asked(&self) -> Vec<Option<Resume>> {
        self.asked.lock().unwrap().clone()
    }
}

impl Fetch for Fake {
    fn fetch(
        &mut self,
        resume: Option<Resume>,
    ) -> BoxFuture<'_, Result<StreamResponse, TransportError>> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(resume);
            if let Some(meanwhile) = self.meanwhile.take() {
                meanwhile();
            }
            match self.answers.pop_front() {
                Some(answer) => Ok(answer.into_response()),
                None => Err(TransportError::new(
                    TransportErrorKind::Connect,
                    "no more answers (fake)",
                )),
            }
        })
    }
}

fn limits() -> Limits {
    Limits {
        read_timeout: Duration::from_secs(5),
        overall: Duration::from_secs(30),
        ..Limits::default()
    }
}

async fn run(
    fake: &mut Fake,
    dest: &Path,
    options: DownloadOptions,
) -> Result<DownloadOutcome, TransportError> {
    download(fake, dest, options, limits(), None).await
}

/// Everything in `dir` but `keep`: leftovers (temporary files) of a call.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

fn expecting(size: u64) -> DownloadOptions {
    DownloadOptions {
        expected_size: Some(size),
        ..DownloadOptions::default()
    }
}

fn overwriting() -> DownloadOptions {
    DownloadOptions {
        overwrite: true,
        ..DownloadOptions::default()
    }
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn at(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[tokio::test]
async fn a_whole_file_is_placed_with_progress_and_nothing_else_is_left() {
    let dir = Dir::new();
    let file = content(10_000);
    let mut fake = Fake::new([Answer::ok(&file)]);
    let seen = Mutex::new(Vec::<Progress>::new());
    let report = |p: Progress| seen.lock().unwrap().push(p);
    let progress: ProgressFn<'_> = &report;
    let outcome = download(
        &mut fake,
        &dir.at("out.mp4"),
        expecting(10_000),
        limits(),
        Some(progress),
    )
    .await
    .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: 10_000 });
    assert_eq!(std::fs::read(dir.at("out.mp4")).unwrap(), file);
    assert!(others(dir.path(), &["out.mp4"]).is_empty());
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.last(),
        Some(&Progress {
            done: 10_000,
            total: Some(10_000)
        })
    );
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
}

#[tokio::test]
async fn a_body_shorter_than_the_expected_size_is_refused_and_leaves_nothing() {
    // The server's own length agrees with its short body: only the render
    // status's size shows that it is not the whole video.
    let dir = Dir::new();
    let mut fake = Fake::new([Answer::ok(&content(6_000))]);
    let err = run(&mut fake, &dir.at("out.mp4"), expecting(10_000))
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Other, "{err}");
    assert!(err.message.contains("render status said 10000"), "{err}");
    assert!(
        others(dir.path(), &[]).is_empty(),
        "{:?}",
        others(dir.path(), &[])
    );

    // Without any announced length, the body itself is counted.
    let mut fake = Fake::new([Answer::ok(&content(6_000)).without("content-length")]);
    let err = run(&mut fake, &dir.at("out.mp4"), expecting(10_000))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("sent 6000 bytes, but the render status said 10000"),
        "{err}"
    );
    assert!(others(dir.path(), &[]).is_empty());
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_resumed_not_saved() {
    let dir = Dir::new();
    let file = content(10_000);
    // Closed cleanly after 6000 of the 10000 bytes announced, and the
    // server will not give the rest.
    let mut short = Answer::ok(&file);
    short.body.truncate(6_000);
    let mut fake = Fake::new([short]);
    let err = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("6000 bytes received for a file of 10000 bytes"),
        "{err}"
    );
    assert_eq!(fake.asked()[1].as_ref().map(|r| r.offset), Some(6_000));
    assert!(others(dir.path(), &[]).is_empty());
}

#[tokio::test]
async fn an_empty_body_is_refused() {
    let dir = Dir::new();
    let mut fake = Fake::new([Answer::ok(b"")]);
    let err = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("empty body"), "{err}");
    assert!(others(dir.path(), &[]).is_empty());
}

#[tokio::test]
async fn an_html_page_is_refused_whether_declared_or_sniffed() {
    let page = b"<!DOCTYPE html><html><head><title>Access denied</title></head></html>";
    for answer in [
        Answer::typed(200, "text/html; charset=utf-8", page),
        Answer::typed(200, "application/octet-stream", page),
    ] {
        let dir = Dir::new();
        let mut fake = Fake::new([answer]);
        let err = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Other);
        assert!(
            err.message
                .contains("an HTML page (“Access denied”) instead of the video (HTTP 200)"),
            "{err}"
        );
        assert!(others(dir.path(), &[]).is_empty());
    }
}

#[tokio::test]
async fn a_json_body_comes_back_refused_for_the_core_to_read() {
    let dir = Dir::new();
    let json = br#"{"code": 1002, "message": "session lost"}"#;
    let mut fake = Fake::new([Answer::typed(200, "application/json", json)]);
    let outcome = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap();
    let DownloadOutcome::Refused(Response { status, body, .. }) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((status, body.as_slice()), (200, &json[..]));
    assert!(others(dir.path(), &[]).is_empty());

    // An error status, whatever its body, is handed back whole.
    let mut fake = Fake::new([Answer::typed(404, "text/plain", b"Not Found")]);
    let outcome = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(&outcome, DownloadOutcome::Refused(r) if r.status == 404 && r.body == b"Not Found"),
        "{outcome:?}"
    );
    assert!(others(dir.path(), &[]).is_empty());
}

#[tokio::test]
async fn a_file_that_appears_during_the_download_is_kept() {
    let dir = Dir::new();
    let dest = dir.at("out.mp4");
    let mut fake = Fake::new([Answer::ok(&content(5_000))]);
    let theirs = dest.clone();
    fake.meanwhile = Some(Box::new(move || std::fs::write(theirs, b"theirs").unwrap()));
    let err = run(&mut fake, &dest, DownloadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists, "{err}");
    assert!(
        err.message.contains("appeared during the download"),
        "{err}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"theirs");
    assert!(others(dir.path(), &["out.mp4"]).is_empty());
}

#[tokio::test]
async fn an_existing_file_is_kept_unless_overwriting_and_then_replaced() {
    let dir = Dir::new();
    let dest = dir.at("out.mp4");
    std::fs::write(&dest, b"old").unwrap();
    let file = content(5_000);

    let mut fake = Fake::new([Answer::ok(&file)]);
    let err = run(&mut fake, &dest, DownloadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists);
    assert!(fake.asked().is_empty(), "nothing is fetched");
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");

    let mut fake = Fake::new([Answer::ok(&file)]);
    run(&mut fake, &dest, overwriting()).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    assert!(others(dir.path(), &["out.mp4"]).is_empty());
}

#[tokio::test]
async fn overwrite_replaces_only_a_regular_file_and_only_the_one_seen_first() {
    let dir = Dir::new();
    let folder = dir.at("folder.mp4");
    std::fs::create_dir(&folder).unwrap();
    let mut fake = Fake::new([Answer::ok(&content(100))]);
    let err = run(&mut fake, &folder, overwriting()).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Local, "{err}");
    assert!(fake.asked().is_empty());
    assert!(folder.is_dir());

    // Another process replaces the file during the download: its file stays.
    let dest = dir.at("out.mp4");
    std::fs::write(&dest, b"old").unwrap();
    let mut fake = Fake::new([Answer::ok(&content(5_000))]);
    let theirs = dest.clone();
    fake.meanwhile = Some(Box::new(move || {
        // Put in place as a careful process does: written aside, renamed.
        let aside = theirs.with_file_name("theirs.tmp");
        std::fs::write(&aside, b"fresh").unwrap();
        std::fs::rename(&aside, &theirs).unwrap();
    }));
    let err = run(&mut fake, &dest, overwriting()).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists, "{err}");
    assert!(
        err.message.contains("was replaced by another file"),
        "{err}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"fresh");

    // Removed and written again at once: the new file may get the old
    // one's inode, but it is not the file seen at the start either.
    let mut fake = Fake::new([Answer::ok(&content(5_000))]);
    let theirs = dest.clone();
    fake.meanwhile = Some(Box::new(move || {
        std::fs::remove_file(&theirs).unwrap();
        std::fs::write(&theirs, b"fresher").unwrap();
    }));
    let err = run(&mut fake, &dest, overwriting()).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists, "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"fresher");
    assert!(others(dir.path(), &["out.mp4", "folder.mp4"]).is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_at_the_target_is_never_followed() {
    let dir = Dir::new();
    let victim = dir.at("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let dest = dir.at("out.mp4");
    std::os::unix::fs::symlink(&victim, &dest).unwrap();
    let dangling = dir.at("dangling.mp4");
    std::os::unix::fs::symlink(dir.at("nowhere.txt"), &dangling).unwrap();

    for (target, options, kind) in [
        (
            &dest,
            DownloadOptions::default(),
            TransportErrorKind::Exists,
        ),
        (&dest, overwriting(), TransportErrorKind::Local),
        (
            &dangling,
            DownloadOptions::default(),
            TransportErrorKind::Exists,
        ),
        (&dangling, overwriting(), TransportErrorKind::Local),
    ] {
        let mut fake = Fake::new([Answer::ok(&content(100))]);
        let err = run(&mut fake, target, options).await.unwrap_err();
        assert_eq!(err.kind, kind, "{}: {err}", target.display());
        assert!(fake.asked().is_empty());
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!dir.at("nowhere.txt").exists());
    assert!(std::fs::symlink_metadata(&dest).unwrap().is_symlink());
    assert_eq!(
        others(dir.path(), &["victim.txt", "out.mp4", "dangling.mp4"]),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_cut_download_is_resumed_with_range_and_if_range_and_appended() {
    let dir = Dir::new();
    let file = content(10_000);
    let mut fake = Fake::new([Answer::ok(&file).cut(4_000), Answer::part(&file, 4_000)]);
    let outcome = run(&mut fake, &dir.at("out.mp4"), expecting(10_000))
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: 10_000 });
    assert_eq!(std::fs::read(dir.at("out.mp4")).unwrap(), file);
    assert_eq!(
        fake.asked(),
        vec![
            None,
            Some(Resume {
                offset: 4_000,
                validator: Some("\"v1\"".into())
            })
        ]
    );
    assert!(others(dir.path(), &["out.mp4"]).is_empty());
}

#[tokio::test]
async fn a_server_that_ignores_range_is_restarted_from_zero_once() {
    let dir = Dir::new();
    let file = content(10_000);
    // The whole file again, with 200: the first 4000 bytes are thrown away.
    let mut fake = Fake::new([Answer::ok(&file).cut(4_000), Answer::ok(&file)]);
    run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.at("out.mp4")).unwrap(), file);
    assert_eq!(fake.asked().len(), 2);

    // It breaks again: given up, not restarted a second time.
    let mut fake = Fake::new([
        Answer::ok(&file).cut(4_000),
        Answer::ok(&file).cut(4_000),
        Answer::ok(&file),
    ]);
    let err = run(&mut fake, &dir.at("again.mp4"), DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("ignores range requests"), "{err}");
    assert_eq!(fake.asked().len(), 2);
    assert!(!dir.at("again.mp4").exists());
    assert!(others(dir.path(), &["out.mp4"]).is_empty());
}

#[tokio::test]
async fn a_part_that_does_not_start_where_asked_is_not_appended() {
    let dir = Dir::new();
    let file = content(10_000);
    // Asked for 4000-, the server sends 3000-: restarting (once) is right,
    // appending would corrupt the file.
    let mut wrong = Answer::part(&file, 3_000);
    wrong.cut_after = Some(100);
    let mut fake = Fake::new([Answer::ok(&file).cut(4_000), wrong, Answer::ok(&file)]);
    let err = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("part starting at byte 3000"), "{err}");
    assert!(others(dir.path(), &[]).is_empty());
}

#[tokio::test]
async fn resuming_is_bounded_by_the_attempts() {
    let dir = Dir::new();
    let file = content(10_000);
    let mut answers = vec![Answer::ok(&file).cut(1_000)];
    for from in (1_000..10_000).step_by(1_000) {
        answers.push(Answer::part(&file, from).cut(1_000));
    }
    let mut fake = Fake::new(answers);
    let err = run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Interrupted);
    assert!(err.message.contains("gave up after 4 attempts"), "{err}");
    assert_eq!(fake.asked().len(), 4, "1 + resume_attempts (3)");
    assert!(others(dir.path(), &[]).is_empty());
}

#[tokio::test]
async fn a_stalled_body_is_asked_for_again_and_the_call_has_a_deadline() {
    let dir = Dir::new();
    let file = content(10_000);
    let quick = Limits {
        read_timeout: Duration::from_millis(200),
        overall: Duration::from_secs(10),
        ..Limits::default()
    };
    let mut fake = Fake::new([Answer::ok(&file).stalled(4_000), Answer::part(&file, 4_000)]);
    download(
        &mut fake,
        &dir.at("out.mp4"),
        DownloadOptions::default(),
        quick,
        None,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(dir.at("out.mp4")).unwrap(), file);

    let short = Limits {
        read_timeout: Duration::from_secs(10),
        overall: Duration::from_millis(300),
        ..Limits::default()
    };
    let mut fake = Fake::new([Answer::ok(&file).stalled(4_000)]);
    let err = download(
        &mut fake,
        &dir.at("late.mp4"),
        DownloadOptions::default(),
        short,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout);
    assert!(err.message.contains("did not finish within"), "{err}");
    assert!(others(dir.path(), &["out.mp4"]).is_empty());
}

#[tokio::test]
async fn a_dropped_call_leaves_no_temporary_file() {
    let dir = Dir::new();
    let file = content(10_000);
    let mut fake = Fake::new([Answer::ok(&file).stalled(4_000)]);
    let dest = dir.at("out.mp4");
    let call = download(&mut fake, &dest, DownloadOptions::default(), limits(), None);
    let _ = tokio::time::timeout(Duration::from_millis(200), call).await;
    // The writer's thread removes the file moments later.
    for _ in 0..100 {
        if others(dir.path(), &[]).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        others(dir.path(), &[]).is_empty(),
        "{:?}",
        others(dir.path(), &[])
    );
}

#[tokio::test]
async fn a_killed_download_s_stale_temporary_file_is_removed_by_the_next() {
    let dir = Dir::new();
    let stale = dir.at(".out.mp4.AbC123.part");
    let fresh = dir.at(".out.mp4.XyZ789.part");
    std::fs::write(&stale, b"half").unwrap();
    std::fs::write(&fresh, b"half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(25 * 3600))
        .unwrap();
    let mut fake = Fake::new([Answer::ok(&content(100))]);
    run(&mut fake, &dir.at("out.mp4"), DownloadOptions::default())
        .await
        .unwrap();
    assert!(!stale.exists(), "a day-old unlocked leftover is removed");
    assert!(fresh.exists(), "a recent one may be a live download's");
}

/// A transport that can only hand over bytes: answers `open_stream` from a
/// file in memory, honouring `Range`.
struct BytesOnly {
    file: Vec<u8>,
    /// Breaks the first answer after this many bytes.
    cut_first: Mutex<Option<usize>>,
    ranges: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl Transport for BytesOnly {
    async fn send(
        &self,
        _request: &Request,
        _progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        unreachable!("downloads only")
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let range = request.header("range").map(str::to_owned);
        self.ranges.lock().unwrap().push(range.clone());
        let from = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        let mut answer = match from {
            Some(from) => Answer::part(&self.file, from),
            None => Answer::ok(&self.file),
        };
        answer.cut_after = self.cut_first.lock().unwrap().take();
        Ok(answer.into_response())
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        download_via_stream(self, request, dest, options, progress).await
    }
}

#[tokio::test]
async fn a_bytes_only_transport_downloads_in_one_line() {
    let dir = Dir::new();
    let file = content(10_000);
    let transport = BytesOnly {
        file: file.clone(),
        cut_first: Mutex::new(Some(3_000)),
        ranges: Mutex::default(),
    };
    let request = Request {
        endpoint: Endpoint::Download,
        method: Method::Get,
        target: Target::Absolute("https://cdn.example/out.mp4".into()),
        headers: Vec::new(),
        body: Body::Empty,
    };
    let outcome = transport
        .download(&request, &dir.at("out.mp4"), expecting(10_000), None)
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: 10_000 });
    assert_eq!(std::fs::read(dir.at("out.mp4")).unwrap(), file);
    assert_eq!(
        *transport.ranges.lock().unwrap(),
        vec![None, Some("bytes=3000-".to_owned())]
    );
}

/// A body that never ends: 64 KiB chunks forever, no `Content-Length`.
struct Endless {
    sent: Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait]
impl ByteStream for Endless {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        static CHUNK: [u8; 64 * 1024] = [7; 64 * 1024];
        self.sent
            .fetch_add(CHUNK.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Some(Ok(Bytes::from_static(&CHUNK)))
    }
}

struct EndlessFetch {
    sent: Arc<std::sync::atomic::AtomicU64>,
    requests: u32,
    /// The `Content-Length` announced, if any.
    length: Option<u64>,
}

impl Fetch for EndlessFetch {
    fn fetch(
        &mut self,
        _resume: Option<Resume>,
    ) -> BoxFuture<'_, Result<StreamResponse, TransportError>> {
        self.requests += 1;
        let sent = self.sent.clone();
        let mut headers = vec![("content-type".to_owned(), "video/mp4".to_owned())];
        if let Some(length) = self.length {
            headers.push(("content-length".into(), length.to_string()));
        }
        Box::pin(async move {
            Ok(StreamResponse {
                status: 200,
                headers,
                body: Box::new(Endless { sent }),
            })
        })
    }
}

/// With no size from the server (no `Content-Length`) nor from the render
/// status, a body is still bounded: past the cap for an unknown size it is
/// an error, nothing is placed and nothing is left. Before: the call wrote
/// whatever the server streamed, without end.
#[tokio::test]
async fn a_body_of_unknown_size_is_bounded() {
    const CAP: u64 = 1 << 20;
    let dir = Dir::new();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut fetch = EndlessFetch {
        sent: sent.clone(),
        requests: 0,
        length: None,
    };
    let capped = Limits {
        read_timeout: Duration::from_secs(5),
        overall: Duration::from_secs(30),
        ..Limits::default()
    };
    let err = nemo_files::download_capped(
        &mut fetch,
        &dir.at("out.mp4"),
        DownloadOptions::default(),
        capped,
        CAP,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Other, "{err}");
    assert!(err.message.contains(&CAP.to_string()), "{err}");
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent <= CAP + 128 * 1024, "{sent} bytes taken");
    assert_eq!(fetch.requests, 1);
    assert!(
        others(dir.path(), &[]).is_empty(),
        "{:?}",
        others(dir.path(), &[])
    );
}

/// A stated size is capped like an unknown one: a `Content-Length` of
/// 10 TB, or a render status that says so, is refused before a byte is
/// written, with nothing left. Before: the cap applied only when nobody
/// said a size, and such a body streamed until the deadline or a full disk.
#[tokio::test]
async fn an_announced_size_above_the_cap_is_refused_before_a_byte_is_written() {
    let dir = Dir::new();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut fetch = EndlessFetch {
        sent: sent.clone(),
        requests: 0,
        length: Some(10_000_000_000_000),
    };
    let err = download(
        &mut fetch,
        &dir.at("out.mp4"),
        DownloadOptions::default(),
        Limits::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Other, "{err}");
    assert!(err.message.contains("10000000000000"), "{err}");
    assert!(
        err.message.contains(&nemo_files::MAX_SIZE.to_string()),
        "{err}"
    );
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent <= 128 * 1024, "{sent} bytes taken");
    assert!(others(dir.path(), &[]).is_empty());

    // The size the render status reported: refused before the request.
    let mut fetch = EndlessFetch {
        sent: sent_counter(),
        requests: 0,
        length: None,
    };
    let err = download(
        &mut fetch,
        &dir.at("out.mp4"),
        expecting(10_000_000_000_000),
        Limits::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("10000000000000"), "{err}");
    assert_eq!(fetch.requests, 0, "{err}");
    assert!(others(dir.path(), &[]).is_empty());
}

fn sent_counter() -> Arc<std::sync::atomic::AtomicU64> {
    Arc::new(std::sync::atomic::AtomicU64::new(0))
}

/// A size the target folder has no room for is refused before a byte is
/// written, saying how much is needed and how much is free. Before: the
/// download ran until the disk was full.
#[tokio::test]
async fn a_size_the_folder_has_no_room_for_is_refused() {
    let dir = Dir::new();
    let free = nemo_files::free_space(dir.path()).unwrap();
    let announced = free + (1 << 30);
    let sent = sent_counter();
    let mut fetch = EndlessFetch {
        sent: sent.clone(),
        requests: 0,
        length: Some(announced),
    };
    let err = nemo_files::download_capped(
        &mut fetch,
        &dir.at("out.mp4"),
        DownloadOptions::default(),
        Limits::default(),
        u64::MAX,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Local, "{err}");
    assert!(err.message.contains("free"), "{err}");
    assert!(err.message.contains("needs"), "{err}");
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent <= 128 * 1024, "{sent} bytes taken");
    assert!(others(dir.path(), &[]).is_empty());
}
