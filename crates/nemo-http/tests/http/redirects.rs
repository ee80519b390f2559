//! Redirects: an API call never follows one (its headers — the token, the
//! client id — would travel to whatever host the answer names), and says so;
//! a download follows a CDN's redirects but sends none of the API's headers
//! to another host.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use nemo_core::transport::{DownloadOptions, DownloadOutcome, Transport, TransportErrorKind};
use nemo_core::wire::Request;

use crate::support::*;

const CLIENT_ID: &str = "client-id-that-is-a-secret";

/// A server that records every request and answers with the file.
async fn elsewhere() -> (String, Journal) {
    let journal = Journal::default();
    let app = Router::new()
        .fallback(any(
            |State(j): State<Journal>,
             ConnectInfo(peer): ConnectInfo<SocketAddr>,
             method: Method,
             uri: Uri,
             headers: HeaderMap| async move {
                j.record(&method, &uri, &headers, ConnectInfo(peer));
                ([(header::CONTENT_TYPE, "video/mp4")], content(4096)).into_response()
            },
        ))
        .with_state(journal.clone());
    (serve(app).await, journal)
}

/// A server that answers everything with `status` and `Location: to`.
async fn redirecting(status: StatusCode, to: String) -> String {
    let app = Router::new().fallback(any(move || {
        let to = to.clone();
        async move {
            Response::builder()
                .status(status)
                .header(header::LOCATION, to)
                .body(axum::body::Body::empty())
                .unwrap()
        }
    }));
    serve(app).await
}

fn has_api_headers(seen: &Seen) -> Vec<String> {
    seen.headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| {
            n == "authorization"
                || n == "x-client-id"
                || n == "referer"
                || n.starts_with("x-skill-")
        })
        .collect()
}

#[tokio::test]
async fn an_api_call_never_follows_a_redirect_and_says_so() {
    let (other, journal) = elsewhere().await;
    for status in [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ] {
        let api_url = redirecting(status, format!("{other}/steal?sig=abc")).await;
        let t = transport(&api_url);
        for request in [api().anonymous_token(CLIENT_ID), api().credits(&token())] {
            let err = match t.send(&request, None).await {
                Ok(r) => panic!("followed: HTTP {} from elsewhere", r.status),
                Err(err) => err,
            };
            assert_eq!(err.kind, TransportErrorKind::Other, "{err:?}");
            assert!(err.message.contains("redirect"), "{}", err.message);
            assert!(
                err.message.contains(&format!("HTTP {}", status.as_u16())),
                "{}",
                err.message
            );
            assert!(
                err.message.contains(&format!("{other}/steal")),
                "{}",
                err.message
            );
            assert!(!err.message.contains("sig=abc"), "{}", err.message);
            assert!(!err.message.contains(CLIENT_ID), "{}", err.message);
            assert_no_token(&err.message);
        }
        // The event stream's call too.
        let err = match t.open_stream(&api().run_sse(&token(), "s1", "hello")).await {
            Ok(r) => panic!("followed: HTTP {} from elsewhere", r.status),
            Err(err) => err,
        };
        assert!(err.message.contains("redirect"), "{}", err.message);
    }
    assert_eq!(
        journal.len(),
        0,
        "a call followed a redirect: {:?}",
        journal.entries()
    );
}

#[tokio::test]
async fn a_download_follows_a_redirect_without_the_apis_headers() {
    let (cdn, journal) = elsewhere().await;
    let api_url = redirecting(StatusCode::FOUND, format!("{cdn}/out/render_1.mp4?sig=abc")).await;
    let t = transport(&api_url);
    let dir = tempfile::tempdir().unwrap();
    let mut fallback = api().download_fallback(&token(), "render_1");
    // Whatever the request carries, none of it goes to another host.
    fallback
        .headers
        .extend(api().anonymous_token(CLIENT_ID).headers);
    let plain = api().download_url(&format!("{api_url}/cdn/render_1.mp4"));
    for (i, request) in [fallback, plain].into_iter().enumerate() {
        let dest = dir.path().join(format!("v{i}.mp4"));
        let outcome = t
            .download(&request, &dest, DownloadOptions::default(), None)
            .await
            .unwrap();
        assert_eq!(outcome, DownloadOutcome::Complete { bytes: 4096 });
        assert_eq!(std::fs::read(&dest).unwrap(), content(4096));
    }
    let seen = journal.entries();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for s in &seen {
        assert_eq!(s.path, "/out/render_1.mp4?sig=abc");
        assert_eq!(has_api_headers(s), Vec::<String>::new(), "{s:?}");
    }
}

#[tokio::test]
async fn a_download_that_redirects_for_ever_ends() {
    // Each hop names the same server again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let again = format!("{url}/again");
    let app = Router::new().route(
        "/again",
        get(move || {
            let again = again.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, again)]).into_response() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let t = transport(&url);
    let dir = tempfile::tempdir().unwrap();
    let request: Request = api().download_url(&format!("{url}/again"));
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        t.download(
            &request,
            &dir.path().join("v.mp4"),
            DownloadOptions::default(),
            None,
        ),
    )
    .await
    .expect("ends")
    .unwrap_err();
    assert!(err.message.contains("redirect"), "{}", err.message);
    assert!(!dir.path().join("v.mp4").exists());
}
