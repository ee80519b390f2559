//! Error answers arrive intact for the core to read; failures below HTTP
//! become typed transport errors without the token in them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{stream, StreamExt};
use nemo_core::api::{payload, ResponseError};
use nemo_core::transport::{Transport, TransportError, TransportErrorKind};
use nemo_core::wire::{Request, Target};
use nemo_http::{HttpConfig, HttpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

fn at(path: &str) -> Request {
    let mut request = api().credits(&token());
    request.target = Target::Api(path.to_owned());
    request
}

async fn shape(Path(name): Path<String>) -> Response {
    let json = |status: u16, body: &str| {
        (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_owned(),
        )
            .into_response()
    };
    match name.as_str() {
        "1001" => json(
            200,
            r#"{"code":1001,"message":"token expired","data":null}"#,
        ),
        "1002" => json(200, r#"{"code":1002,"message":"session not found"}"#),
        "2001" => json(200, r#"{"code":2001,"message":"insufficient credits"}"#),
        "4001" => json(400, r#"{"code":4001,"message":"unsupported file type"}"#),
        "4002" => json(413, r#"{"code":4002,"message":"file too large"}"#),
        "400" => json(400, r#"{"detail":"X-Client-Id header is required"}"#),
        "402" => json(402, r#"{"code":402,"message":"free plan export blocked"}"#),
        "429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30")],
            r#"{"code":429,"message":"rate limited"}"#,
        )
            .into_response(),
        "500" => json(500, r#"{"error":"boom"}"#),
        "502" => (StatusCode::BAD_GATEWAY, "<html>Bad Gateway</html>").into_response(),
        "503" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "dup" => json(200, r#"{"success":false,"error":"duplicate id"}"#),
        "garbage" => (StatusCode::OK, "not json at all").into_response(),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        "stall" => {
            let body =
                stream::once(async { Ok::<_, std::io::Error>("{\"code\":0,".as_bytes().to_vec()) })
                    .chain(stream::once(async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(b"}".to_vec())
                    }));
            Response::new(Body::from_stream(body))
        }
        "big" => (StatusCode::OK, vec![b'x'; 64 * 1024]).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn shapes_server() -> String {
    serve(Router::new().route("/shape/{name}", get(shape))).await
}

fn fast(url: &str) -> HttpTransport {
    HttpTransport::new(HttpConfig {
        read_timeout: Duration::from_millis(200),
        max_response_bytes: 32 * 1024,
        ..config(url)
    })
    .unwrap()
}

#[tokio::test]
async fn every_error_shape_reaches_the_core_intact() {
    let url = shapes_server().await;
    let t = transport(&url);
    let cases: &[(&str, u16, Option<i64>, &str)] = &[
        ("1001", 200, Some(1001), "token expired"),
        ("1002", 200, Some(1002), "session not found"),
        ("2001", 200, Some(2001), "insufficient credits"),
        ("4001", 400, Some(4001), "unsupported file type"),
        ("4002", 413, Some(4002), "file too large"),
        ("400", 400, None, "X-Client-Id header is required"),
        ("402", 402, Some(402), "free plan export blocked"),
        ("429", 429, Some(429), "rate limited"),
        ("500", 500, None, "boom"),
        ("502", 502, None, "<html>Bad Gateway</html>"),
        ("503", 503, None, "service unavailable"),
        ("dup", 200, None, "duplicate id"),
    ];
    for (name, status, code, message) in cases {
        let response = t.send(&at(&format!("/shape/{name}")), None).await.unwrap();
        assert_eq!(response.status, *status, "{name}");
        let Err(ResponseError::Api(err)) = payload(&response) else {
            panic!("{name}: {response:?}")
        };
        assert_eq!(err.status, *status, "{name}");
        assert_eq!(err.code, *code, "{name}");
        assert_eq!(err.message, *message, "{name}");
        if *name == "429" {
            assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
        }
    }
    let response = t.send(&at("/shape/garbage"), None).await.unwrap();
    let Err(ResponseError::Decode { body, .. }) = payload(&response) else {
        panic!("{response:?}")
    };
    assert_eq!(body, "not json at all");
}

fn check(err: &TransportError, kind: TransportErrorKind) {
    assert_eq!(err.kind, kind, "{err:?}");
    assert_no_token(&err.message);
    assert_no_token(&format!("{err:?}"));
    assert!(
        err.message.starts_with("credits GET http://"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let url = closed_port_url().await;
    let err = transport(&url)
        .send(&api().credits(&token()), None)
        .await
        .unwrap_err();
    check(&err, TransportErrorKind::Connect);
    assert!(err.message.contains(&url), "{}", err.message);
}

#[tokio::test]
async fn tls_to_a_plain_server_is_a_tls_error() {
    let url = shapes_server().await.replace("http://", "https://");
    let err = transport(&url)
        .send(&at("/shape/400"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Tls, "{err:?}");
    assert_no_token(&err.message);
}

#[tokio::test]
async fn no_answer_is_a_timeout() {
    let url = shapes_server().await;
    let started = std::time::Instant::now();
    let err = fast(&url).send(&at("/shape/hang"), None).await.unwrap_err();
    check(&err, TransportErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_stalled_body_is_a_timeout() {
    let url = shapes_server().await;
    let err = fast(&url)
        .send(&at("/shape/stall"), None)
        .await
        .unwrap_err();
    check(&err, TransportErrorKind::Timeout);
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let url = shapes_server().await;
    let err = fast(&url).send(&at("/shape/big"), None).await.unwrap_err();
    check(&err, TransportErrorKind::Other);
}

/// A raw server that reads each request head, writes `reply` and closes
/// the connection. Counts the connections it accepted.
async fn raw_server(reply: &'static [u8]) -> String {
    raw_server_counting(reply).await.0
}

async fn raw_server_counting(reply: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 16 * 1024];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket.write_all(reply).await;
            let _ = socket.shutdown().await;
        }
    });
    (format!("http://{addr}"), accepted)
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_interrupted() {
    let url = raw_server(b"").await;
    let err = transport(&url)
        .send(&api().credits(&token()), None)
        .await
        .unwrap_err();
    check(&err, TransportErrorKind::Interrupted);
}

#[tokio::test]
async fn a_request_is_sent_exactly_once() {
    // Neither a broken connection nor a 503 makes the transport try again:
    // retrying is the core's decision.
    let (url, accepted) = raw_server_counting(b"").await;
    let t = transport(&url);
    let err = t.send(&api().state(&token(), "1"), None).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Interrupted);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    let (url, accepted) =
        raw_server_counting(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
    let response = transport(&url)
        .send(&api().state(&token(), "1"), None)
        .await
        .unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_truncated_body_is_interrupted() {
    let url = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"code\":0").await;
    let err = transport(&url)
        .send(&api().credits(&token()), None)
        .await
        .unwrap_err();
    check(&err, TransportErrorKind::Interrupted);
}

#[tokio::test]
async fn sensitive_values_are_masked_even_if_a_message_would_echo_them() {
    // A header value the wire refuses: the error names the header, never
    // the value.
    let mut request = api().credits(&token());
    for header in &mut request.headers {
        if header.name == "authorization" {
            header.value = nemo_core::wire::HeaderValue::Sensitive(nemo_core::secret::Secret::new(
                format!("Bearer {TOKEN}\n"),
            ));
        }
    }
    let err = transport("http://127.0.0.1:9")
        .send(&request, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Other);
    assert!(err.message.contains("authorization"), "{}", err.message);
    assert_no_token(&err.message);
}
