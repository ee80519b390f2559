//! Multipart uploads: parts on the wire, local checks before any byte,
//! progress, memory, and slow servers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::{Json, Router};
use nemo_core::api::{content_type_for, ACCEPTED_FORMATS, MAX_UPLOAD_BYTES};
use nemo_core::transport::{Progress, Transport, TransportErrorKind};
use nemo_core::wire::{FilePart, Request};
use nemo_http::{HttpConfig, HttpTransport};
use serde_json::{json, Value};

use crate::support::*;

#[derive(Clone, Default)]
struct Upstate {
    journal: Journal,
    /// Pause (per 512 KiB) while reading the first `slow_until` bytes.
    slow: Option<(u64, Duration)>,
}

async fn receive(
    State(state): State<Upstate>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Json<Value> {
    state.journal.record(&method, &uri, &headers, peer);
    let mut files = Vec::new();
    let mut read_total = 0u64;
    let mut paced = 0u64;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let name = field.name().map(str::to_owned);
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let mut len = 0u64;
        let mut matches = true;
        while let Ok(Some(chunk)) = field.chunk().await {
            for (i, b) in chunk.iter().enumerate() {
                if *b != byte_at(len + i as u64) {
                    matches = false;
                }
            }
            len += chunk.len() as u64;
            read_total += chunk.len() as u64;
            if let Some((until, pause)) = state.slow {
                while read_total < until && read_total >= paced + 512 * 1024 {
                    paced += 512 * 1024;
                    tokio::time::sleep(pause).await;
                }
            }
        }
        files.push(json!({
            "name": name, "filename": filename, "content_type": content_type,
            "len": len, "matches": matches,
        }));
    }
    Json(json!({"code": 0, "data": {"files": files, "session_state_applied": true}}))
}

async fn upload_server(slow: Option<(u64, Duration)>) -> (String, Journal) {
    let state = Upstate {
        journal: Journal::default(),
        slow,
    };
    let app = Router::new()
        .fallback(axum::routing::post(receive))
        .layer(DefaultBodyLimit::disable())
        .with_state(state.clone());
    let url = if slow.is_some() {
        serve_with_small_buffers(app).await
    } else {
        serve(app).await
    };
    (url, state.journal)
}

/// Writes a file of `len` bytes of [`byte_at`] content, in pieces.
fn write_content(path: &Path, len: u64) {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut at = 0;
    while at < len {
        buf.clear();
        let n = (len - at).min(64 * 1024);
        buf.extend((at..at + n).map(byte_at));
        file.write_all(&buf).unwrap();
        at += n;
    }
    file.flush().unwrap();
}

fn part(path: &Path) -> FilePart {
    let filename = path.file_name().unwrap().to_string_lossy().into_owned();
    FilePart {
        content_type: content_type_for(&filename).unwrap_or("").to_owned(),
        len: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        path: path.to_path_buf(),
        filename,
    }
}

fn upload(files: Vec<FilePart>) -> Request {
    api().upload_files(&token(), "5529798706024415232", files)
}

#[tokio::test]
async fn each_file_is_one_files_part_with_its_name_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let photo = dir.path().join("Photo One.PNG");
    write_content(&clip, 300_000);
    write_content(&photo, 10_000);
    let (url, journal) = upload_server(None).await;
    let t = transport(&url);
    let reports = Mutex::new(Vec::<Progress>::new());
    let progress = |p: Progress| reports.lock().unwrap().push(p);
    let request = upload(vec![part(&clip), part(&photo)]);
    let response = t.send(&request, Some(&progress)).await.unwrap();
    let data = nemo_core::api::payload(&response).unwrap();
    assert_eq!(
        data["files"],
        json!([
            {"name": "files", "filename": "clip.mp4", "content_type": "video/mp4", "len": 300_000, "matches": true},
            {"name": "files", "filename": "Photo One.PNG", "content_type": "image/png", "len": 10_000, "matches": true},
        ])
    );
    let seen = &journal.entries()[0];
    assert!(seen
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    assert_eq!(
        seen.header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(seen.header("x-skill-source"), Some("video-openapi"));
    let reports = reports.into_inner().unwrap();
    assert_eq!(reports.first().unwrap().done, 0);
    assert_eq!(
        reports.last().copied(),
        Some(Progress {
            done: 310_000,
            total: Some(310_000)
        })
    );
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));

    // The same request again: rebuilt, files reopened from the start.
    let again = t.send(&request, None).await.unwrap();
    assert_eq!(
        nemo_core::api::payload(&again).unwrap()["files"],
        data["files"]
    );
    assert_eq!(journal.len(), 2);
}

#[tokio::test]
async fn local_checks_fail_before_any_byte_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.mp4");
    write_content(&good, 1000);
    let pdf = dir.path().join("notes.pdf");
    write_content(&pdf, 10);
    let folder = dir.path().join("folder.mp4");
    std::fs::create_dir(&folder).unwrap();
    let huge = dir.path().join("huge.mov");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_UPLOAD_BYTES + 1)
        .unwrap(); // sparse: no disk, no memory
    let missing = dir.path().join("missing.mp4");

    let (url, journal) = upload_server(None).await;
    let t = transport(&url);
    let cases: Vec<(PathBuf, &[&str])> = vec![
        (missing, &["missing.mp4", "no such file"]),
        (folder, &["folder.mp4", "not a regular file"]),
        (
            pdf,
            &[
                "notes.pdf",
                "unsupported file type",
                "`.pdf`",
                ACCEPTED_FORMATS,
            ],
        ),
        (
            huge,
            &["huge.mov", "too large", "500 MB", "compress", "trim"],
        ),
    ];
    for (path, words) in cases {
        // The good file first: nothing of it may go out either.
        let err = t
            .send(&upload(vec![part(&good), part(&path)]), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Local, "{err:?}");
        for word in words {
            assert!(
                err.message.contains(word),
                "{word:?} not in {}",
                err.message
            );
        }
        assert_no_token(&err.message);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked.mp4");
        write_content(&locked, 10);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        // Root reads anything; only check when the file really is unreadable.
        if std::fs::File::open(&locked).is_err() {
            let err = t
                .send(&upload(vec![part(&locked)]), None)
                .await
                .unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Local);
            assert!(err.message.contains("cannot read"), "{}", err.message);
        }
    }
    assert_eq!(journal.len(), 0, "nothing reached the server");
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in bytes.
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_upload_streams_in_flat_memory() {
    const SIZE: u64 = 50 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    // Sparse: zeros that take neither disk nor memory to make.
    std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = Router::new()
        .fallback(axum::routing::post(move |mut multipart: Multipart| {
            let counter = counter.clone();
            async move {
                while let Ok(Some(mut field)) = multipart.next_field().await {
                    while let Ok(Some(chunk)) = field.chunk().await {
                        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
                Json(json!({"code": 0, "data": {"files": []}}))
            }
        }))
        .layer(DefaultBodyLimit::disable());
    let url = serve(app).await;
    let t = transport(&url);
    // Warm the connection and the allocator up with a small upload.
    let small = dir.path().join("small.mp4");
    write_content(&small, 1000);
    t.send(&upload(vec![part(&small)]), None).await.unwrap();

    // Reset the peak to the current RSS where the kernel allows it.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let Some((before, _)) = memory() else {
        eprintln!("no /proc/self/status: memory not measured");
        return;
    };
    let last = AtomicU64::new(0);
    let progress = |p: Progress| last.store(p.done, Ordering::Relaxed);
    let response = t
        .send(&upload(vec![part(&path)]), Some(&progress))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let (after, rss) = memory().unwrap();
    assert_eq!(received.load(Ordering::Relaxed), SIZE + 1000);
    assert_eq!(last.load(Ordering::Relaxed), SIZE);
    let growth = after.saturating_sub(before);
    eprintln!(
        "50 MB upload: peak RSS grew by {:.1} MiB (peak {:.1} MiB, now {:.1} MiB)",
        growth as f64 / 1048576.0,
        after as f64 / 1048576.0,
        rss as f64 / 1048576.0
    );
    assert!(growth < 32 * 1024 * 1024, "peak RSS grew by {growth} bytes");
}

#[tokio::test]
async fn an_upload_that_keeps_moving_outlasts_the_read_timeout() {
    // The server reads the first 16 MB slowly (about 0.8 s), then the rest
    // fast; its receive buffer is small, so the client's upload moves at
    // the server's pace. The inactivity timeout is 400 ms: a timer counted
    // from the start of the request would fire.
    const SIZE: u64 = 32 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.webm");
    std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();
    let (url, _) = upload_server(Some((SIZE / 2, Duration::from_millis(25)))).await;
    let t = HttpTransport::new(HttpConfig {
        read_timeout: Duration::from_millis(400),
        ..config(&url)
    })
    .unwrap();
    let started = std::time::Instant::now();
    // Zeros do not match byte_at, which is fine: only the length matters.
    let request = upload(vec![part(&path)]);
    let response = t.send(&request, None).await.unwrap();
    assert!(
        started.elapsed() > Duration::from_millis(400),
        "the test must outlast the timeout"
    );
    let data = nemo_core::api::payload(&response).unwrap();
    assert_eq!(data["files"][0]["len"], SIZE);
}
