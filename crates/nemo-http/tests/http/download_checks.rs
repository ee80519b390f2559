//! What a download must be before it gets the target's name: as long as the
//! server announced and the render status said, and a video rather than an
//! error page served with `200 OK`.

use axum::body::{Body, Bytes};
use axum::extract::Path as UrlPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream;
use nemo_core::transport::{DownloadOptions, DownloadOutcome, Transport, TransportErrorKind};

use crate::download::leftovers;
use crate::support::*;

const LEN: u64 = 256 * 1024;

const ACCESS_DENIED: &str =
    "<!DOCTYPE html>\n<html><head><title>Access \x1b[31mdenied</title></head>\
    <body><h1>403</h1><p>Token nmv_usr_supersecret_token_42 is not allowed.</p></body></html>";

async fn page(UrlPath(mode): UrlPath<String>) -> Response {
    let video = || content(LEN);
    match mode.as_str() {
        "video" => ([(header::CONTENT_TYPE, "video/mp4")], video()).into_response(),
        // No Content-Length: the body's own end is all there is.
        "chunked" => Response::new(Body::from_stream(stream::iter(
            video()
                .chunks(16 * 1024)
                .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        ))),
        "html" => ([(header::CONTENT_TYPE, "text/html")], ACCESS_DENIED).into_response(),
        // Declared a video; the bytes say otherwise.
        "sniffed-html" => (
            [(header::CONTENT_TYPE, "video/mp4")],
            format!("  \r\n{}", ACCESS_DENIED.replace("<!DOCTYPE html>", "")),
        )
            .into_response(),
        "xml" => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>Access Denied</Message></Error>",
        )
            .into_response(),
        "text" => ([(header::CONTENT_TYPE, "text/plain")], "Forbidden\n").into_response(),
        "json" => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"code":1001,"message":"token expired"}"#,
        )
            .into_response(),
        "sniffed-json" => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            r#"{"success":false,"error":"render not found"}"#,
        )
            .into_response(),
        "big-json" => {
            let mut body = br#"{"pad":""#.to_vec();
            body.resize(1024 * 1024, b'x');
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "empty" => ([(header::CONTENT_TYPE, "video/mp4")], "").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn page_server() -> String {
    serve(Router::new().route("/out/{mode}", get(page))).await
}

async fn fetch(
    url: &str,
    mode: &str,
    expected_size: Option<u64>,
) -> (
    Result<DownloadOutcome, nemo_core::transport::TransportError>,
    Vec<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.mp4");
    let result = transport(url)
        .download(
            &api().download_url(&format!("{url}/out/{mode}")),
            &dest,
            DownloadOptions {
                expected_size,
                ..Default::default()
            },
            None,
        )
        .await;
    if let Ok(DownloadOutcome::Complete { .. }) = result {
        assert_eq!(std::fs::read(&dest).unwrap(), content(LEN));
    }
    (result, leftovers(dir.path()))
}

#[tokio::test]
async fn a_body_of_the_expected_size_is_saved() {
    let url = page_server().await;
    for mode in ["video", "chunked"] {
        let (result, left) = fetch(&url, mode, Some(LEN)).await;
        assert_eq!(
            result,
            Ok(DownloadOutcome::Complete { bytes: LEN }),
            "{mode}"
        );
        assert_eq!(left, ["out.mp4"], "{mode}");
    }
}

#[tokio::test]
async fn a_body_shorter_or_longer_than_the_render_status_said_is_not_saved() {
    let url = page_server().await;
    for mode in ["video", "chunked"] {
        for expected in [LEN + 1000, LEN - 1000] {
            let (result, left) = fetch(&url, mode, Some(expected)).await;
            let err = result.unwrap_err();
            assert_eq!(
                err.kind,
                TransportErrorKind::Other,
                "{mode} {expected}: {err:?}"
            );
            assert!(
                err.message.contains("the render status said")
                    && err.message.contains(&expected.to_string())
                    && err.message.ends_with("not saved"),
                "{mode}: {}",
                err.message
            );
            assert!(left.is_empty(), "{mode} {expected}: {left:?}");
        }
    }
}

#[tokio::test]
async fn an_html_page_served_with_200_is_an_error_quoting_it() {
    let url = page_server().await;
    for mode in ["html", "sniffed-html"] {
        let (result, left) = fetch(&url, mode, None).await;
        let err = result.unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Other, "{mode}: {err:?}");
        assert!(
            err.message.contains(
                "the server sent an HTML page (“Access [31mdenied”) instead of the video"
            ),
            "{mode}: {}",
            err.message
        );
        assert!(
            !err.message.chars().any(char::is_control),
            "{:?}",
            err.message
        );
        assert_no_token(&err.message);
        assert!(left.is_empty(), "{mode}: {left:?}");
    }
    let (result, left) = fetch(&url, "xml", None).await;
    let err = result.unwrap_err();
    assert!(
        err.message
            .contains("an XML document (“AccessDenied Access Denied”)"),
        "{}",
        err.message
    );
    assert!(left.is_empty());
    let (result, _) = fetch(&url, "text", None).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Other);
    assert!(
        err.message.contains("text (“Forbidden”)"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_json_body_served_with_200_goes_back_to_the_core_as_a_refusal() {
    let url = page_server().await;
    for (mode, body) in [
        ("json", r#"{"code":1001,"message":"token expired"}"#),
        (
            "sniffed-json",
            r#"{"success":false,"error":"render not found"}"#,
        ),
    ] {
        let (result, left) = fetch(&url, mode, Some(LEN)).await;
        let Ok(DownloadOutcome::Refused(response)) = result else {
            panic!("{mode}: {result:?}")
        };
        assert_eq!(response.status, 200);
        assert_eq!(response.body, body.as_bytes(), "{mode}");
        assert!(left.is_empty(), "{mode}: {left:?}");
    }
    // Only the first 64 KiB of a long one.
    let (result, _) = fetch(&url, "big-json", None).await;
    let Ok(DownloadOutcome::Refused(response)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(response.body.len(), 64 * 1024);
}

#[tokio::test]
async fn an_empty_body_is_not_a_video() {
    let url = page_server().await;
    let (result, left) = fetch(&url, "empty", None).await;
    assert_eq!(result.unwrap_err().kind, TransportErrorKind::Other);
    assert!(left.is_empty());
}
