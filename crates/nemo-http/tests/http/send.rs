//! Plain requests: every endpoint's method, path, headers and body on the
//! wire, connection reuse, absolute targets.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::{Json, Router};
use nemo_core::api::{parse, payload, Credits};
use nemo_core::draft::Draft;
use nemo_core::transport::Transport;
use nemo_core::wire::Request;
use serde_json::{json, Value};

use crate::support::*;

async fn echo(
    State(journal): State<Journal>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    journal.record(&method, &uri, &headers, peer);
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    Json(json!({
        "code": 0,
        "message": "ok",
        "data": {
            "method": method.as_str(),
            "path": uri.to_string(),
            "content_type": content_type,
            "body": String::from_utf8_lossy(&body),
            "available": 90, "frozen": 10, "total": 100,
        }
    }))
}

async fn echo_server() -> (String, Journal) {
    let journal = Journal::default();
    let app = Router::new().fallback(echo).with_state(journal.clone());
    (serve(app).await, journal)
}

#[tokio::test]
async fn every_endpoint_goes_out_with_its_method_path_headers_and_body() {
    let (url, journal) = echo_server().await;
    let t = transport(&url);
    let api = api();
    let tok = token();
    let draft = Draft::parse(r#"{"t":[{"tt":0,"sg":[{"x":1.50}]}],"odd":true}"#).unwrap();
    let requests: Vec<Request> = vec![
        api.anonymous_token("client-123"),
        api.create_session(&tok, "en"),
        api.upload_urls(
            &tok,
            "5529798706024415232",
            &["https://a.example/b.mp4".into()],
        ),
        api.credits(&tok),
        api.state(&tok, "5529798706024415232"),
        api.render_submit(&tok, "render_1", "5529798706024415232", &draft),
        api.render_status(&tok, "render_1"),
        api.render_cancel(&tok, "render_1"),
        api.download_fallback(&tok, "render_1"),
        api.claim_token(&tok, "task_1", "5529798706024415232"),
    ];
    for request in &requests {
        let response = t.send(request, None).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        let data = payload(&response).unwrap();
        assert_eq!(data["method"], request.method.as_str(), "{request:?}");
        assert_eq!(data["path"], request.target.to_string(), "{request:?}");
        match request.json_body() {
            Some(body) => {
                assert_eq!(data["body"], body, "the JSON body goes out byte for byte");
                assert_eq!(data["content_type"], "application/json");
            }
            None => assert_eq!(data["body"], ""),
        }
    }
    let seen = journal.entries();
    assert_eq!(seen.len(), requests.len());
    for (request, seen) in requests.iter().zip(&seen) {
        for header in &request.headers {
            assert_eq!(
                seen.header(header.name),
                Some(header.value.expose()),
                "{} on {request:?}",
                header.name
            );
        }
        assert_eq!(seen.method, request.method.as_str());
        assert!(seen.header("user-agent").unwrap().starts_with("nemo/"));
    }
    // Bodiless POSTs still say so: some gateways answer 411 otherwise.
    for (request, seen) in requests.iter().zip(&seen) {
        if request.method == nemo_core::wire::Method::Post && request.json_body().is_none() {
            assert_eq!(seen.header("content-length"), Some("0"), "{request:?}");
        }
    }
    assert_eq!(seen[0].header("x-client-id"), Some("client-123"));
    assert_eq!(seen[0].header("authorization"), None);
    for seen in &seen[1..] {
        assert_eq!(
            seen.header("authorization"),
            Some(&*format!("Bearer {TOKEN}"))
        );
        assert_eq!(seen.header("x-skill-source"), Some("video-openapi"));
        assert!(seen.header("x-skill-version").is_some());
        assert!(seen.header("x-skill-platform").is_some());
    }
    // The draft went back verbatim.
    assert!(seen[5].path.ends_with("/api/render/proxy/lambda"));
}

#[tokio::test]
async fn one_connection_is_reused() {
    let (url, journal) = echo_server().await;
    let t = transport(&url);
    for _ in 0..5 {
        let credits: Credits =
            parse(&t.send(&api().credits(&token()), None).await.unwrap()).unwrap();
        assert_eq!(credits.total, 100.0);
    }
    let peers: std::collections::HashSet<_> = journal.entries().iter().map(|s| s.peer).collect();
    assert_eq!(
        peers.len(),
        1,
        "one connection for five requests: {peers:?}"
    );
}

#[tokio::test]
async fn absolute_targets_get_only_the_headers_they_carry() {
    let (url, journal) = echo_server().await;
    let t = transport("http://127.0.0.1:9"); // the API base is elsewhere
    let response = t
        .send(
            &api().download_url(&format!("{url}/cdn/out.mp4?sig=abc")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let seen = &journal.entries()[0];
    assert_eq!(seen.path, "/cdn/out.mp4?sig=abc");
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("x-skill-source"), None);
}

#[tokio::test]
async fn base_url_with_a_path_and_trailing_slash() {
    let (url, journal) = echo_server().await;
    let t = transport(&format!("{url}/prefix/"));
    t.send(&api().credits(&token()), None).await.unwrap();
    assert_eq!(
        journal.entries()[0].path,
        "/prefix/api/credits/balance/simple"
    );
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    let t = nemo_http::HttpTransport::new(nemo_http::HttpConfig::new(format!(
        "https://user:{TOKEN}@api.example/?token={TOKEN}"
    )))
    .unwrap();
    let text = format!("{t:?}");
    assert_no_token(&text);
    assert!(text.contains("https://api.example/"), "{text}");
    let defaults = nemo_http::HttpConfig::default();
    assert_eq!(defaults.stream_cap, std::time::Duration::from_secs(15 * 60));
    assert_eq!(defaults.base_url, nemo_core::api::DEFAULT_API_URL);
}

#[tokio::test]
async fn an_invalid_base_url_is_refused() {
    let err = nemo_http::HttpTransport::new(nemo_http::HttpConfig::new("ftp://x")).unwrap_err();
    assert_eq!(err.kind, nemo_core::transport::TransportErrorKind::Other);
}
