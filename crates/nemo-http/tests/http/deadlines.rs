//! Overall deadlines: a server that keeps sending a byte now and then never
//! trips the idle timeout, yet every call ends on time, and the message says
//! how long it really waited.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nemo_core::transport::{DownloadOptions, Transport, TransportError, TransportErrorKind};
use nemo_core::wire::FilePart;
use nemo_http::{HttpConfig, HttpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::download::leftovers;
use crate::support::*;

/// A raw server: reads each request head (and drains whatever body follows),
/// answers with a head announcing `len` bytes, then sends them one every
/// `pace`, after `first` bytes sent at once.
async fn drip_server(len: usize, first: usize, pace: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut read, mut write) = socket.into_split();
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // Whatever else comes (an upload) is read and ignored.
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
                });
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                     content-length: {len}\r\n\r\n"
                );
                if write.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let body: Vec<u8> = (0..len as u64).map(byte_at).collect();
                if write.write_all(&body[..first]).await.is_err() {
                    return;
                }
                for byte in &body[first..] {
                    tokio::time::sleep(pace).await;
                    if write.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn tight(url: &str) -> HttpTransport {
    HttpTransport::new(HttpConfig {
        // Far longer than the pace: the idle timeout never fires.
        read_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_millis(500),
        download_timeout: Duration::from_millis(500),
        ..config(url)
    })
    .unwrap()
}

/// The seconds a message says were waited: `… within 0.5 s …`.
fn waited(message: &str, after: &str) -> f64 {
    let rest = &message[message.find(after).unwrap_or_else(|| panic!("{message}")) + after.len()..];
    rest.split(" s").next().unwrap().trim().parse().unwrap()
}

/// Runs `call`, which must fail within a few seconds (a test fails rather
/// than hangs when it does not).
async fn ends<F>(call: F) -> (TransportError, Duration)
where
    F: std::future::Future<Output = Result<(), TransportError>>,
{
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("no overall deadline: still going after 5 s");
    (result.unwrap_err(), started.elapsed())
}

fn assert_real_wait(err: &TransportError, after: &str, took: Duration) {
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err:?}");
    let said = waited(&err.message, after);
    assert!(
        (said - took.as_secs_f64()).abs() < 0.25,
        "said {said} s, took {took:?}: {}",
        err.message
    );
    assert_no_token(&err.message);
}

#[tokio::test]
async fn an_api_call_has_an_overall_deadline() {
    let url = drip_server(1000, 0, Duration::from_millis(50)).await;
    let t = tight(&url);
    let (err, took) = ends(async { t.send(&api().credits(&token()), None).await.map(drop) }).await;
    assert_real_wait(&err, "no complete answer within ", took);
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn an_upload_gets_time_in_proportion_to_its_size() {
    let url = drip_server(1000, 0, Duration::from_millis(50)).await;
    let t = HttpTransport::new(HttpConfig {
        read_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_millis(300),
        // 4000 bytes at 10 000 bytes/s: 0.4 s more.
        upload_min_rate: 10_000,
        ..config(&url)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("clip.mp4");
    std::fs::write(&path, vec![7u8; 4000]).unwrap();
    let request = api().upload_files(
        &token(),
        "session-1",
        vec![FilePart {
            path,
            filename: String::new(),
            content_type: String::new(),
            len: 4000,
        }],
    );
    let (err, took) = ends(async { t.send(&request, None).await.map(drop) }).await;
    assert_real_wait(&err, "no complete answer within ", took);
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_download_has_an_overall_deadline() {
    let url = drip_server(1000, 100, Duration::from_millis(50)).await;
    let t = tight(&url);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let request = api().download_url(&format!("{url}/out.mp4"));
    let (err, took) = ends(async {
        t.download(&request, &dest, DownloadOptions::default(), None)
            .await
            .map(drop)
    })
    .await;
    assert_real_wait(&err, "the download did not finish within ", took);
    assert!(err.message.contains("1 attempt,"), "{}", err.message);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[tokio::test]
async fn a_stalled_download_says_how_long_it_waited_for_data() {
    // 100 bytes, then nothing for far longer than the idle timeout.
    let url = drip_server(1000, 100, Duration::from_secs(30)).await;
    let t = HttpTransport::new(HttpConfig {
        read_timeout: Duration::from_millis(200),
        download_resume_attempts: 0,
        ..config(&url)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let request = api().download_url(&format!("{url}/out.mp4"));
    let (err, _) = ends(async {
        t.download(
            &request,
            &dir.path().join("out.mp4"),
            DownloadOptions::default(),
            None,
        )
        .await
        .map(drop)
    })
    .await;
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err:?}");
    let said = waited(&err.message, "no data for ");
    assert!((0.15..0.5).contains(&said), "{}", err.message);
    assert!(
        err.message
            .contains("gave up after 1 attempt, 100 bytes received for a file of 1000 bytes"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn the_time_scale_shortens_every_limit_and_messages_speak_the_clients_time() {
    let url = drip_server(100_000, 0, Duration::from_millis(50)).await;
    // The default 2 minutes on a client clock a hundred times faster: 1.2 s.
    let t = HttpTransport::new(HttpConfig::new(&url).with_time_scale(0.01)).unwrap();
    let (err, took) = ends(async { t.send(&api().credits(&token()), None).await.map(drop) }).await;
    assert!(
        took >= Duration::from_millis(1150) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err:?}");
    let said = waited(&err.message, "no complete answer within ");
    assert!(
        (said - took.as_secs_f64() / 0.01).abs() < 25.0,
        "said {said} s on the client's clock, took {took:?}: {}",
        err.message
    );
}
