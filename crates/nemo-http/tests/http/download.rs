//! Downloads: temporary file, resume with `Range`, restart when the server
//! cannot resume, length checks, refusals, and never touching an existing
//! file unless asked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream;
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
}

/// A body of `data` in pieces; when `cut_after` is set, the connection is
/// dropped after that many bytes.
fn body(data: &[u8], cut_after: Option<usize>) -> Body {
    let keep = cut_after.unwrap_or(data.len()).min(data.len());
    let mut pieces: Vec<Result<Bytes, std::io::Error>> = data[..keep]
        .chunks(PIECE)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    if cut_after.is_some() {
        pieces.push(Err(std::io::Error::other("connection cut")));
    }
    Body::from_stream(stream::iter(pieces))
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

fn get_file(url: &str, mode: &str) -> Request {
    api().download_url(&format!("{url}/out/{mode}"))
}

fn leftovers(dir: &Path) -> Vec<String> {
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
    let temp = dir.path().join(".out.mp4.part");
    let reports = Mutex::new(Vec::<Progress>::new());
    let half_written_under_final_name = AtomicBool::new(false);
    let progress = |p: Progress| {
        if dest.exists() || !temp.exists() {
            half_written_under_final_name.store(true, Ordering::Relaxed);
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
    assert!(err.message.contains("gave up after 3"), "{}", err.message);
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
async fn a_stale_temporary_file_is_replaced_not_trusted() {
    let (url, _) = file_server().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    std::fs::write(dir.path().join(".out.mp4.part"), vec![0xAB; 5000]).unwrap();
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
