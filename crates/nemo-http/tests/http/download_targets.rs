//! Downloads and the file system: two downloads to one target, and what
//! `overwrite` may replace.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::stream;
use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, Progress, Transport, TransportError, TransportErrorKind,
};
use nemo_http::HttpTransport;
use tokio::sync::Semaphore;

use crate::download::leftovers;
use crate::support::*;

const LEN: u64 = 1024 * 1024;
const PIECE: usize = 64 * 1024;

/// What `/slow` and `/fast` serve: the same length, different bytes.
fn variant(tag: &str) -> Vec<u8> {
    let salt = if tag == "slow" { 0x5A } else { 0xA5 };
    content(LEN).into_iter().map(|b| b ^ salt).collect()
}

/// `/slow` sends half its body, then waits for the test to open the gate;
/// `/fast` sends everything at once.
async fn file(State(gate): State<Arc<Semaphore>>, UrlPath(tag): UrlPath<String>) -> Response {
    let data = Bytes::from(variant(&tag));
    let pieces = data.len().div_ceil(PIECE);
    let gated = tag == "slow";
    let body = stream::unfold(0usize, move |i| {
        let (gate, data) = (gate.clone(), data.clone());
        async move {
            if i == pieces {
                return None;
            }
            if gated && i == pieces / 2 {
                gate.acquire().await.unwrap().forget();
            }
            let piece = data.slice(i * PIECE..((i + 1) * PIECE).min(data.len()));
            Some((Ok::<_, std::io::Error>(piece), i + 1))
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, LEN.into());
    response
}

async fn gated_server() -> (String, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let app = Router::new()
        .route("/out/{tag}", get(file))
        .with_state(gate.clone());
    (serve(app).await, gate)
}

/// Starts the `/slow` download and returns once half of it has arrived.
async fn start_slow(
    t: &HttpTransport,
    url: &str,
    dest: &Path,
    options: DownloadOptions,
) -> tokio::task::JoinHandle<Result<DownloadOutcome, TransportError>> {
    let done = Arc::new(AtomicU64::new(0));
    let task = {
        let (t, done, dest) = (t.clone(), done.clone(), dest.to_path_buf());
        let request = api().download_url(&format!("{url}/out/slow"));
        tokio::spawn(async move {
            let progress = move |p: Progress| done.store(p.done, Ordering::Relaxed);
            t.download(&request, &dest, options, Some(&progress)).await
        })
    };
    for _ in 0..500 {
        if done.load(Ordering::Relaxed) >= LEN / 2 {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the slow download never got half-way");
}

async fn fast(
    t: &HttpTransport,
    url: &str,
    dest: &Path,
    options: DownloadOptions,
) -> Result<DownloadOutcome, TransportError> {
    let request = api().download_url(&format!("{url}/out/fast"));
    t.download(&request, dest, options, None).await
}

fn overwrite() -> DownloadOptions {
    DownloadOptions {
        overwrite: true,
        ..Default::default()
    }
}

/// Two downloads race for one target: the slow one started first, the fast
/// one finished first. The fast one wins, the slow one is refused with
/// `Exists`, and the target holds exactly the winner's bytes.
async fn race(dest_before: Option<&[u8]>, options: DownloadOptions) -> (PathBuf, TransportError) {
    let (url, gate) = gated_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    if let Some(before) = dest_before {
        std::fs::write(&dest, before).unwrap();
    }
    let t = transport(&url);
    let slow = start_slow(&t, &url, &dest, options).await;
    let outcome = fast(&t, &url, &dest, options).await.unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    gate.add_permits(1);
    let err = slow.await.unwrap().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists, "{err:?}");
    assert!(err.message.contains("out.mp4"), "{}", err.message);
    assert!(
        err.message.contains("during the download; not replaced"),
        "{}",
        err.message
    );
    assert_eq!(std::fs::read(&dest).unwrap(), variant("fast"));
    assert_eq!(leftovers(dir.path()), ["out.mp4"]);
    (dir.keep(), err)
}

#[tokio::test]
async fn of_two_downloads_to_one_target_the_first_to_finish_wins() {
    let (dir, err) = race(None, DownloadOptions::default()).await;
    assert!(err.message.contains("appeared"), "{}", err.message);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn overwriting_replaces_only_the_file_found_at_the_start() {
    // The file there at the start was replaced by another download meanwhile.
    let (dir, err) = race(Some(b"old"), overwrite()).await;
    assert!(
        err.message.contains("replaced by another file"),
        "{}",
        err.message
    );
    let _ = std::fs::remove_dir_all(dir);
    // Nothing there at the start; a file appeared meanwhile.
    let (dir, err) = race(None, overwrite()).await;
    assert!(err.message.contains("appeared"), "{}", err.message);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[tokio::test]
async fn overwriting_never_replaces_a_fifo() {
    let (url, _gate) = gated_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    match std::process::Command::new("mkfifo").arg(&dest).status() {
        Ok(status) if status.success() => {}
        _ => {
            eprintln!("mkfifo is not available; skipped");
            return;
        }
    }
    let err = fast(&transport(&url), &url, &dest, overwrite())
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Local, "{err:?}");
    assert!(
        err.message.contains(&dest.display().to_string()) && err.message.contains("FIFO"),
        "{}",
        err.message
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&dest)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(leftovers(dir.path()), ["out.mp4"]);
}

#[cfg(unix)]
#[tokio::test]
async fn overwriting_never_replaces_a_link() {
    let (url, _gate) = gated_server().await;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let dest = dir.path().join("out.mp4");
    std::os::unix::fs::symlink(&victim, &dest).unwrap();
    let err = fast(&transport(&url), &url, &dest, overwrite())
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Local, "{err:?}");
    assert!(
        err.message.contains(&dest.display().to_string()) && err.message.contains("symbolic link"),
        "{}",
        err.message
    );
    assert!(std::fs::symlink_metadata(&dest)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&dest).unwrap(), victim);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(leftovers(dir.path()), ["out.mp4", "victim.txt"]);
}

#[tokio::test]
async fn overwriting_replaces_a_regular_file() {
    let (url, _gate) = gated_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    std::fs::write(&dest, b"old").unwrap();
    let outcome = fast(&transport(&url), &url, &dest, overwrite())
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    assert_eq!(std::fs::read(&dest).unwrap(), variant("fast"));
    #[cfg(unix)]
    {
        // The usual mode of a new file, not a temporary file's 0600.
        use std::os::unix::fs::PermissionsExt;
        let usual = dir.path().join("usual");
        std::fs::write(&usual, b"").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dest), mode(&usual));
    }
}
