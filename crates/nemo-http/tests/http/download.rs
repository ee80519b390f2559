//! Downloads: temporary file, resume with `Range`, restart when the server
//! cannot resume, length checks, refusals, and never touching an existing
//! file unless asked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{stream, StreamExt};
use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, Progress, Transport, TransportErrorKind,
};
use nemo_core::wire::Request;

use crate::support::*;

const LEN: u64 = 1024 * 1024;
const PIECE: usize = 64 * 1024;

#[derive(Clone, Default)]
struct Files {
    journal: Journal,
    /// Body bytes the server handed to its connections, over all requests.
    served: Arc<AtomicU64>,
}

/// A body of `data` in pieces; when `cut_after` is set, the connection is
/// dropped after that many bytes.
fn body(data: &[u8], cut_after: Option<usize>) -> Body {
    let keep = cut_after.unwrap_or(data.len()).min(data.len());
    let pieces: Vec<Result<Bytes, std::io::Error>> = data[..keep]
        .chunks(PIECE)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let cut = cut_after.is_some();
    // The cut comes a moment later, so that what came before it has left
    // the server's buffers (else the server drops them with the connection).
    let end = stream::once(async move {
        if cut {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(std::io::Error::other("connection cut"))
    })
    .take(usize::from(cut));
    Body::from_stream(stream::iter(pieces).chain(end))
}

fn requested_start(headers: &HeaderMap) -> Option<u64> {
    let range = headers.get(header::RANGE)?.to_str().ok()?;
    range
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

async fn file(
    State(files): State<Files>,
    UrlPath(mode): UrlPath<String>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    files.journal.record(&method, &uri, &headers, peer);
    let data = content(LEN);
    let first = files.journal.len() == 1;
    let half = Some(LEN as usize / 2 + 123);
    let whole = |cut: Option<usize>| {
        let mut response = Response::new(body(&data, cut));
        let h = response.headers_mut();
        h.insert(header::CONTENT_LENGTH, LEN.into());
        h.insert(header::ETAG, "\"v1\"".parse().unwrap());
        h.insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
        response
    };
    let partial = |start: u64, claimed_start: u64| {
        let mut response = Response::new(body(&data[start as usize..], None));
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let h = response.headers_mut();
        h.insert(header::CONTENT_LENGTH, (LEN - start).into());
        h.insert(
            header::CONTENT_RANGE,
            format!("bytes {claimed_start}-{}/{LEN}", LEN - 1)
                .parse()
                .unwrap(),
        );
        response
    };
    let range = requested_start(&headers);
    let served = files.served.clone();
    let count = move |from: u64, cut: Option<usize>| {
        let len = (LEN - from) as usize;
        served.fetch_add(cut.unwrap_or(len).min(len) as u64, Ordering::Relaxed);
    };
    match mode.as_str() {
        "ok" => whole(None),
        "resume" => match range {
            Some(start) if headers.get(header::IF_RANGE).is_some_and(|v| v == "\"v1\"") => {
                partial(start, start)
            }
            _ if first => whole(half),
            _ => whole(None),
        },
        // Ignores Range: the whole file again.
        "norange" => whole(if first { half } else { None }),
        // Answers a range request with a 206 that does not start where asked.
        "badrange" => match range {
            Some(_) => partial(0, 0),
            None => whole(half),
        },
        // Cuts every answer at half and ignores Range.
        "halfnorange" => {
            count(0, half);
            whole(half)
        }
        // Honours Range, and cuts every answer after a quarter of the file.
        "quarters" => {
            let quarter = LEN as usize / 4;
            match range {
                Some(start) if headers.get(header::IF_RANGE).is_some_and(|v| v == "\"v1\"") => {
                    count(start, Some(quarter));
                    let mut response = partial(start, start);
                    let cut = (start as usize + quarter < LEN as usize).then_some(quarter);
                    *response.body_mut() = body(&data[start as usize..], cut);
                    response
                }
                _ => {
                    count(0, Some(quarter));
                    whole(Some(quarter))
                }
            }
        }
        "alwayscut" => match range {
            Some(start) => {
                let mut response = partial(start, start);
                *response.body_mut() = body(&data[start as usize..], Some(1000));
                response
            }
            None => whole(half),
        },
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"success":false,"error":"render not found"}"#,
        )
            .into_response(),
    }
}

async fn file_server() -> (String, Journal) {
    let files = Files::default();
    let app = Router::new()
        .route("/out/{mode}", get(file))
        .with_state(files.clone());
    (serve(app).await, files.journal)
}

async fn counting_file_server() -> (String, Journal, Arc<AtomicU64>) {
    let files = Files::default();
    let app = Router::new()
        .route("/out/{mode}", get(file))
        .with_state(files.clone());
    (serve(app).await, files.journal, files.served)
}

/// This call's temporary files for `out.mp4` (`.out.mp4.<random>.part`).
pub fn temp_files(dir: &Path) -> Vec<String> {
    leftovers(dir)
        .into_iter()
        .filter(|n| n.starts_with(".out.mp4.") && n.ends_with(".part"))
        .collect()
}

fn get_file(url: &str, mode: &str) -> Request {
    api().download_url(&format!("{url}/out/{mode}"))
}

pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_broken_download_resumes_with_range() {
    let (url, journal) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let reports = Mutex::new(Vec::<Progress>::new());
    let half_written_under_final_name = AtomicBool::new(false);
    // Every temporary file seen while the download ran: one, kept across
    // the resume.
    let temps = Mutex::new(Vec::<String>::new());
    let progress = |p: Progress| {
        let now = temp_files(dir.path());
        if dest.exists() || now.len() != 1 {
            half_written_under_final_name.store(true, Ordering::Relaxed);
        }
        let mut seen = temps.lock().unwrap();
        for name in now {
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        reports.lock().unwrap().push(p);
    };
    let outcome = transport(&url)
        .download(
            &get_file(&url, "resume"),
            &dest,
            DownloadOptions::default(),
            Some(&progress),
        )
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    assert_eq!(std::fs::read(&dest).unwrap(), content(LEN));
    assert_eq!(leftovers(dir.path()), ["out.mp4"]);
    assert!(!half_written_under_final_name.load(Ordering::Relaxed));
    assert_eq!(temps.into_inner().unwrap().len(), 1);

    let seen = journal.entries();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].header("range"), None);
    let range = seen[1].header("range").unwrap();
    let start: u64 = range
        .strip_prefix("bytes=")
        .unwrap()
        .strip_suffix('-')
        .unwrap()
        .parse()
        .unwrap();
    assert!(start > 0 && start <= LEN / 2 + 123, "{range}");
    assert_eq!(seen[1].header("if-range"), Some("\"v1\""));

    let reports = reports.into_inner().unwrap();
    assert_eq!(
        reports.last().copied(),
        Some(Progress {
            done: LEN,
            total: Some(LEN)
        })
    );
    // Resumed, not restarted: progress never went back to zero.
    assert!(
        reports.windows(2).all(|w| w[0].done <= w[1].done),
        "{reports:?}"
    );
}

#[tokio::test]
async fn a_server_without_ranges_restarts_from_zero() {
    let (url, journal) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    for mode in ["norange", "badrange"] {
        let _ = std::fs::remove_file(&dest);
        let outcome = transport(&url)
            .download(
                &get_file(&url, mode),
                &dest,
                DownloadOptions::default(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN }, "{mode}");
        assert_eq!(std::fs::read(&dest).unwrap(), content(LEN), "{mode}");
        assert_eq!(leftovers(dir.path()), ["out.mp4"]);
    }
    assert_eq!(journal.len(), 4);
}

#[tokio::test]
async fn resuming_gives_up_after_the_configured_attempts_and_cleans_up() {
    let (url, journal) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let err = transport(&url)
        .download(
            &get_file(&url, "alwayscut"),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Interrupted, "{err:?}");
    assert!(
        err.message.contains("gave up after 4 attempts") && err.message.contains("bytes received"),
        "{}",
        err.message
    );
    assert_eq!(journal.len(), 4, "one request and three resumes");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[tokio::test]
async fn a_refusal_keeps_the_answer_and_writes_nothing() {
    let (url, _) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let outcome = transport(&url)
        .download(
            &get_file(&url, "gone"),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    let DownloadOutcome::Refused(response) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(response.status, 404);
    assert_eq!(
        response.body,
        br#"{"success":false,"error":"render not found"}"#
    );
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn an_existing_file_is_kept_unless_overwriting_is_allowed() {
    let (url, journal) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    std::fs::write(&dest, b"precious").unwrap();
    let t = transport(&url);
    let err = t
        .download(
            &get_file(&url, "ok"),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists);
    assert!(err.message.contains("out.mp4"), "{}", err.message);
    assert_eq!(journal.len(), 0, "checked before the request");
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");

    let outcome = t
        .download(
            &get_file(&url, "ok"),
            &dest,
            DownloadOptions {
                overwrite: true,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    assert_eq!(std::fs::read(&dest).unwrap(), content(LEN));
    assert_eq!(leftovers(dir.path()), ["out.mp4"]);
}

#[tokio::test]
async fn a_leftover_temporary_file_is_neither_trusted_nor_touched() {
    let (url, _) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    // The old fixed name, and a crashed process's (or a running one's) file.
    std::fs::write(dir.path().join(".out.mp4.part"), vec![0xAB; 5000]).unwrap();
    std::fs::write(dir.path().join(".out.mp4.Xy12zQ.part"), vec![0xCD; 5000]).unwrap();
    transport(&url)
        .download(
            &get_file(&url, "ok"),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), content(LEN));
    assert_eq!(
        leftovers(dir.path()),
        [".out.mp4.Xy12zQ.part", ".out.mp4.part", "out.mp4"]
    );
    assert_eq!(
        std::fs::read(dir.path().join(".out.mp4.part")).unwrap(),
        vec![0xAB; 5000]
    );
    assert_eq!(
        std::fs::read(dir.path().join(".out.mp4.Xy12zQ.part")).unwrap(),
        vec![0xCD; 5000]
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_planted_at_the_old_temporary_name_is_not_followed() {
    let (url, _) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let planted = dir.path().join(".out.mp4.part");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let dest = dir.path().join("out.mp4");
    let outcome = transport(&url)
        .download(
            &get_file(&url, "ok"),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&dest).unwrap(), content(LEN));
}

#[tokio::test]
async fn a_server_that_ignores_range_is_restarted_at_most_once() {
    let (url, journal, served) = counting_file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let err = transport(&url)
        .download(
            &get_file(&url, "halfnorange"),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Interrupted, "{err:?}");
    // The first answer, and one restart from zero; no third request.
    assert_eq!(journal.len(), 2, "{:?}", journal.entries());
    assert!(journal.entries()[1].header("range").is_some());
    let served = served.load(Ordering::Relaxed);
    assert!(served <= 2 * LEN, "{served}");
    assert!(
        err.message
            .contains("gave up after 2 attempts, 1 restarted from zero, ")
            && err
                .message
                .contains(&format!("bytes received for a file of {LEN} bytes"))
            && err.message.contains("ignores range"),
        "{}",
        err.message
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[tokio::test]
async fn a_server_that_honours_range_is_resumed_without_sending_anything_twice() {
    let (url, journal, served) = counting_file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let outcome = transport(&url)
        .download(
            &get_file(&url, "quarters"),
            &dest,
            DownloadOptions {
                expected_size: Some(LEN),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    assert_eq!(std::fs::read(&dest).unwrap(), content(LEN));
    assert_eq!(journal.len(), 4, "one request and three resumes");
    assert_eq!(served.load(Ordering::Relaxed), LEN);
    assert_eq!(leftovers(dir.path()), ["out.mp4"]);
}

#[tokio::test]
async fn bad_targets_are_local_errors() {
    let (url, journal) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let t = transport(&url);
    for dest in [
        dir.path().to_path_buf(),
        dir.path().join("no/such/dir/out.mp4"),
    ] {
        let err = t
            .download(
                &get_file(&url, "ok"),
                &dest,
                DownloadOptions {
                    overwrite: true,
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Local, "{dest:?}: {err:?}");
    }
    assert_eq!(journal.len(), 0);
}

#[tokio::test]
async fn a_connection_refused_is_not_retried_by_the_transport() {
    let url = closed_port_url().await;
    let dir = tempfile::tempdir().unwrap();
    let err = transport(&url)
        .download(
            &get_file(&url, "ok"),
            &dir.path().join("out.mp4"),
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect);
    assert!(leftovers(dir.path()).is_empty());
}
