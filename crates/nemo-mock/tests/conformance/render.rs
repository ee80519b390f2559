//! Render shapes, failures, duplicates and ranged downloads.

use nemo_core::api::{self, RenderPhase};
use nemo_mock::media::{generated_byte, SAMPLE_MP4};
use nemo_mock::{FaultPlan, MockConfig, RenderShape};
use serde_json::json;

use super::raw::*;

async fn ready(config: MockConfig, client: &str) -> (nemo_mock::MockServer, Client, String) {
    let server = server(config).await;
    let c = connect(server.addr(), client).await;
    c.post(
        &format!("/api/upload-video/nemo_agent/me/{}", c.session),
        &json!({"urls": ["https://example.com/clip.mp4"], "source_type": "url"}),
    )
    .await;
    let draft = c.draft_text().await.unwrap();
    (server, c, draft)
}

#[tokio::test]
async fn every_render_shape_parses() {
    for (shape, name) in [
        (RenderShape::A, "a"),
        (RenderShape::B, "b"),
        (RenderShape::C, "c"),
    ] {
        let config = MockConfig {
            render_shape: shape,
            ..fast()
        };
        let (server, c, draft) = ready(config, name).await;
        let r = submit(&c, "render_s", &draft, true).await;
        assert_eq!(r.json()["success"], true);
        let first = c.get("/api/render/proxy/lambda/render_s").await;
        let v = first.json();
        match shape {
            RenderShape::A => assert!(v["data"]["status"].is_string(), "{v}"),
            _ => assert!(v["status"].is_string(), "{v}"),
        }
        let s = wait_render(&c, "render_s").await;
        assert_eq!(s.phase, RenderPhase::Completed);
        assert_eq!(s.progress, Some(100.0));
        assert_eq!(
            s.output_url.as_deref(),
            Some(format!("{}/media/render_s.mp4", server.url()).as_str())
        );
        let done = c.get("/api/render/proxy/lambda/render_s").await.json();
        match shape {
            RenderShape::A => assert!(done["data"]["outputUrl"].is_string(), "{done}"),
            RenderShape::B => assert!(
                done["output"]["url"].is_string() && done["output"].get("size").is_none(),
                "{done}"
            ),
            RenderShape::C => {
                assert_eq!(s.size, Some(SAMPLE_MP4.len() as u64));
                assert_eq!(s.duration, Some(4.0));
            }
        }
        // Unknown render ids.
        let r = c.get("/api/render/proxy/lambda/render_nope").await;
        assert!(api::parse_render_status(&r.core()).is_err());
        server.shutdown().await;
    }
}

#[tokio::test]
async fn failed_and_duplicate_and_mismatched_renders() {
    let config = MockConfig {
        faults: FaultPlan::parse("render:fail@1").unwrap(),
        render_shape: RenderShape::B,
        ..fast()
    };
    let (server, c, draft) = ready(config, "fail").await;
    submit(&c, "render_f", &draft, true).await;
    let s = wait_render(&c, "render_f").await;
    assert_eq!(s.phase, RenderPhase::Failed);
    assert!(s.error.unwrap().contains("failed"));
    let r = submit(&c, "render_f", &draft, true).await;
    assert_eq!(r.json()["success"], false, "duplicate id");
    assert!(api::parse::<api::RenderAccepted>(&r.core()).is_err());
    let r = submit(
        &c,
        "render_g",
        r#"{"t":[{"tt":0,"sg":[{"n":"other"}]}]}"#,
        true,
    )
    .await;
    assert_eq!(r.json()["success"], false, "draft differs from state");
    let r = submit(&c, "render_h", r#"{"t":[]}"#, true).await;
    assert_eq!(r.json()["success"], false, "empty draft");
    let r = submit(&c, "render_i", &draft, true).await;
    assert_eq!(r.json()["success"], true, "a new id works");
    assert_eq!(
        wait_render(&c, "render_i").await.phase,
        RenderPhase::Completed
    );
    // Not completed → the media URL is a 404 and the fallback a 409.
    let r = request(server.addr(), "GET", "/media/render_f.mp4", &[], b"").await;
    assert_eq!(r.status, 404);
    let r = c.get("/api/render/proxy/render_f/download").await;
    assert_eq!(r.status, 409);
    let bad = Client {
        token: "x".into(),
        ..c
    };
    let r = bad.get("/api/render/proxy/render_i/download").await;
    assert_eq!((r.status, r.json()["code"].as_u64()), (401, Some(1001)));
    server.shutdown().await;
}

#[tokio::test]
async fn range_downloads() {
    let (server, c, draft) = ready(fast(), "range").await;
    submit(&c, "render_r", &draft, true).await;
    wait_render(&c, "render_r").await;
    let len = SAMPLE_MP4.len();
    let get = |range: &'static str| {
        let addr = server.addr();
        async move { request(addr, "GET", "/media/render_r.mp4", &[("Range", range)], b"").await }
    };
    let r = get("bytes=0-99").await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.body, &SAMPLE_MP4[..100]);
    let r = get("bytes=1000-").await;
    assert_eq!(r.body, &SAMPLE_MP4[1000..]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-{}/{len}", len - 1).as_str())
    );
    let r = get("bytes=-10").await;
    assert_eq!(r.body, &SAMPLE_MP4[len - 10..]);
    let r = get("bytes=999999999-").await;
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    let r = c
        .get_with(
            "/api/render/proxy/render_r/download",
            &[("Range", "bytes=5-9")],
        )
        .await;
    assert_eq!((r.status, &r.body[..]), (206, &SAMPLE_MP4[5..10]));
    server.shutdown().await;
}

#[tokio::test]
async fn generated_render_bodies_for_benchmarks() {
    let config = MockConfig {
        render_bytes: Some(3_000_001),
        ..fast()
    };
    let (server, c, draft) = ready(config, "big").await;
    submit(&c, "render_big", &draft, true).await;
    wait_render(&c, "render_big").await;
    let r = request(server.addr(), "GET", "/media/render_big.mp4", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.body.len(), 3_000_001);
    assert!(r
        .body
        .iter()
        .enumerate()
        .step_by(997)
        .all(|(i, b)| *b == generated_byte(i as u64)));
    let r = request(
        server.addr(),
        "GET",
        "/media/render_big.mp4",
        &[("Range", "bytes=2999990-")],
        b"",
    )
    .await;
    assert_eq!(
        r.body,
        (2_999_990..3_000_001)
            .map(generated_byte)
            .collect::<Vec<u8>>()
    );
    server.shutdown().await;
}
