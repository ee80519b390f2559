//! Event streams: chunks as they arrive, a reset is `Interrupted`, the end is
//! `None`, silence and the cap are timeouts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::stream;
use nemo_core::transport::{Transport, TransportErrorKind};
use nemo_http::{HttpConfig, HttpTransport};
use tokio::sync::mpsc;

use crate::support::*;

type Chunk = Result<Bytes, std::io::Error>;

fn sse(body: impl futures_util::Stream<Item = Chunk> + Send + 'static) -> Response {
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A server whose `/run_sse` body is fed by the test through a channel; the
/// test also sees each request's headers.
async fn fed_server() -> (String, mpsc::Sender<Chunk>, Arc<Mutex<Vec<HeaderMap>>>) {
    let (tx, rx) = mpsc::channel::<Chunk>(8);
    let rx = Arc::new(Mutex::new(Some(rx)));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (slot, seen) = (rx, heads.clone());
    let app = Router::new().route(
        "/run_sse",
        post(move |headers: HeaderMap| {
            let slot = slot.clone();
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(headers);
                let Some(rx) = slot.lock().unwrap().take() else {
                    return StatusCode::CONFLICT.into_response();
                };
                sse(stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|chunk| (chunk, rx))
                }))
            }
        }),
    );
    (serve(app).await, tx, heads)
}

fn run_sse() -> nemo_core::wire::Request {
    api().run_sse(&token(), "5529798706024415232", "make it shorter")
}

#[tokio::test]
async fn chunks_arrive_one_by_one_then_a_reset_is_interrupted() {
    let (url, tx, heads) = fed_server().await;
    let t = transport(&url);
    let mut stream = t.open_stream(&run_sse()).await.unwrap();
    assert_eq!(stream.status, 200);
    assert_eq!(
        nemo_core::wire::find_header(&stream.headers, "content-type"),
        Some("text/event-stream")
    );
    let head = heads.lock().unwrap()[0].clone();
    assert_eq!(head.get("accept").unwrap(), "text/event-stream");
    assert_eq!(head.get("content-type").unwrap(), "application/json");
    assert_eq!(
        head.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {TOKEN}")
    );

    // Each event reaches the caller before the server writes the next one:
    // nothing waits for the whole body.
    let events = [
        "data: {\"content\":{\"parts\":[{\"text\":\"Hel\"}]},\"partial\":true}\n\n",
        ": keep-alive\n\n",
        "data: {\"content\":{\"parts\":[{\"text\":\"Hello\"}]}}\n\n",
    ];
    for event in events {
        tx.send(Ok(Bytes::from_static(event.as_bytes())))
            .await
            .unwrap();
        let chunk = stream.body.next_chunk().await.unwrap().unwrap();
        assert_eq!(chunk, event.as_bytes());
    }
    tx.send(Err(std::io::Error::other("reset"))).await.unwrap();
    let err = stream.body.next_chunk().await.unwrap().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Interrupted, "{err:?}");
    assert_no_token(&err.message);
    assert!(
        stream.body.next_chunk().await.is_none(),
        "finished after an error"
    );
}

#[tokio::test]
async fn the_normal_end_is_none() {
    let (url, tx, _) = fed_server().await;
    let t = transport(&url);
    let mut stream = t.open_stream(&run_sse()).await.unwrap();
    tx.send(Ok(Bytes::from_static(b"data: {}\n\n")))
        .await
        .unwrap();
    drop(tx);
    let mut got = Vec::new();
    for _ in 0..10 {
        match stream.body.next_chunk().await {
            Some(chunk) => got.extend_from_slice(&chunk.unwrap()),
            None => break,
        }
    }
    assert_eq!(got, b"data: {}\n\n");
    assert!(stream.body.next_chunk().await.is_none());
}

#[tokio::test]
async fn silence_is_a_timeout() {
    let (url, tx, _) = fed_server().await;
    let t = HttpTransport::new(HttpConfig {
        stream_idle_timeout: Duration::from_millis(150),
        ..config(&url)
    })
    .unwrap();
    let mut stream = t.open_stream(&run_sse()).await.unwrap();
    tx.send(Ok(Bytes::from_static(b"data: {}\n\n")))
        .await
        .unwrap();
    assert!(stream.body.next_chunk().await.unwrap().is_ok());
    let err = stream.body.next_chunk().await.unwrap().unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err:?}");
    drop(tx);
}

#[tokio::test]
async fn the_stream_cap_ends_even_a_lively_stream() {
    // Keep-alives every 20 ms forever; the cap is 300 ms.
    let app = Router::new().route(
        "/run_sse",
        post(|| async {
            sse(stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok(Bytes::from_static(b":\n\n")), ()))
            }))
        }),
    );
    let url = serve(app).await;
    let t = HttpTransport::new(HttpConfig {
        stream_cap: Duration::from_millis(300),
        stream_idle_timeout: Duration::from_millis(200),
        ..config(&url)
    })
    .unwrap();
    let started = std::time::Instant::now();
    let mut stream = t.open_stream(&run_sse()).await.unwrap();
    let mut chunks = 0;
    let err = loop {
        match stream.body.next_chunk().await {
            Some(Ok(_)) => chunks += 1,
            Some(Err(err)) => break err,
            None => panic!("the stream ended without an error"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "bounded");
    };
    assert!(chunks >= 3, "{chunks}");
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn an_error_status_comes_back_with_its_body() {
    let app = Router::new().route(
        "/run_sse",
        post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"code":1001,"message":"token expired"}"#,
            )
        }),
    );
    let url = serve(app).await;
    let mut stream = transport(&url).open_stream(&run_sse()).await.unwrap();
    assert_eq!(stream.status, 401);
    let mut body = Vec::new();
    while let Some(chunk) = stream.body.next_chunk().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, br#"{"code":1001,"message":"token expired"}"#);
}

#[tokio::test]
async fn a_refused_connection_is_reported_before_any_stream() {
    let url = closed_port_url().await;
    let err = transport(&url).open_stream(&run_sse()).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect);
    assert!(err.message.starts_with("run-sse POST"), "{}", err.message);
    assert_no_token(&err.message);
}
