//! Every endpoint over raw HTTP, happy path.

use nemo_core::api::{self, Credits, SessionCreated, Uploaded};
use nemo_core::draft::Draft;
use nemo_core::wire::Endpoint;
use nemo_mock::media::{MUSIC_MP3, PHOTO_JPG, SAMPLE_MP4};
use serde_json::json;

use super::raw::*;

#[tokio::test]
async fn a_whole_session_over_http() {
    let server = server(fast()).await;
    let c = connect(server.addr(), "client-happy").await;
    assert!(c.token.starts_with("nmv_usr_"));
    assert!(c.user.starts_with("anon_"));
    assert_eq!(c.session.len(), 19);
    assert!(c.session.chars().all(|ch| ch.is_ascii_digit()));
    assert!(c.task.starts_with("task_"));

    // Credits: 100, nothing frozen.
    let r = c.get("/api/credits/balance/simple").await;
    let credits: Credits = api::parse(&r.core()).unwrap();
    assert_eq!(
        (credits.available, credits.frozen, credits.total),
        (100.0, 0.0, 100.0)
    );

    // A new session has no draft.
    assert_eq!(c.draft_text().await, None);

    // Multipart upload of a clip, a photo and music: streamed to disk, described, put into the draft.
    let r = c
        .upload(&[
            ("city_timelapse.mp4", SAMPLE_MP4),
            ("photo.jpg", PHOTO_JPG),
            ("lofi.mp3", MUSIC_MP3),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let up: Uploaded = api::parse(&r.core()).unwrap();
    assert_eq!(up.session_state_applied, Some(true));
    assert_eq!(up.files.len(), 3);
    let v = r.json();
    let f = &v["data"]["files"][0];
    assert_eq!(f["filename"], "city_timelapse.mp4");
    assert_eq!(f["file_type"], "video");
    assert_eq!(
        (f["width"].as_u64(), f["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(f["fps"], 24.0);
    assert!((f["duration"].as_f64().unwrap() - 4.0).abs() < 0.1);
    assert_eq!(f["hash"].as_str().unwrap().len(), 16);
    assert!(f["cdn_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(v["data"]["files"][1]["file_type"], "image");
    assert_eq!(v["data"]["files"][1]["width"], 640);
    assert_eq!(v["data"]["files"][2]["file_type"], "audio");

    // JSON URL upload.
    let r = c
        .post(
            &format!("/api/upload-video/nemo_agent/me/{}", c.session),
            &json!({"urls": ["https://example.com/media/beach-sunset.mp4"], "source_type": "url"}),
        )
        .await;
    let up: Uploaded = api::parse(&r.core()).unwrap();
    assert_eq!(up.files[0].file_type, "video");
    assert_eq!(up.files[0].filename, "beach_sunset.mp4");

    // State: the draft has the uploads.
    let draft = Draft::parse(&c.draft_text().await.unwrap()).unwrap();
    assert!(draft.is_ready_for_export());
    let summary = draft.timeline().to_string();
    assert!(summary.contains("city timelapse"), "{summary}");
    let state = c.state().await.json();
    assert_eq!(state["data"]["task_name"], "project");
    assert_eq!(
        state["data"]["state"]["video_infos"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(state["data"]["state"]["canvas_config"]["width"].is_u64());
    assert!(state["data"]["state"]["video_analyses"].is_array());
    assert!(state["data"]["state"]["generated_media"].is_array());

    // An edit through the agent.
    let r = c
        .chat("add lo-fi music at 35% and the title \"Urban Dreams\"")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = events(&r.body);
    let final_text = events
        .iter()
        .filter(|e| e.get("partial").is_none())
        .filter_map(|e| e["content"]["parts"][0]["text"].as_str())
        .next_back()
        .unwrap();
    assert!(
        final_text.contains("Lo-fi") && final_text.contains("35%"),
        "{final_text}"
    );
    let summary = Draft::parse(&c.draft_text().await.unwrap())
        .unwrap()
        .timeline()
        .to_string();
    assert!(
        summary.contains("BGM: Lo-fi") && summary.contains("35%"),
        "{summary}"
    );
    assert!(summary.contains("\"Urban Dreams\" (0-3s)"), "{summary}");
    let credits: Credits = api::parse(&c.get("/api/credits/balance/simple").await.core()).unwrap();
    assert_eq!((credits.available, credits.frozen), (95.0, 0.0));

    // Export: free, polled to completion, served with ranges.
    let draft_text = c.draft_text().await.unwrap();
    let r = submit(&c, "render_1", &draft_text, true).await;
    let accepted: api::RenderAccepted = api::parse(&r.core()).unwrap();
    assert_eq!(accepted.id.as_deref(), Some("render_1"));
    assert_eq!(accepted.status.as_deref(), Some("pending"));
    let status = wait_render(&c, "render_1").await;
    assert_eq!(status.phase, api::RenderPhase::Completed);
    let url = status.output_url.unwrap();
    assert_eq!(url, format!("{}/media/render_1.mp4", server.url()));
    let media = request(server.addr(), "GET", "/media/render_1.mp4", &[], b"").await;
    assert_eq!(media.status, 200);
    assert_eq!(media.body, SAMPLE_MP4);
    assert_eq!(media.header("accept-ranges"), Some("bytes"));
    assert_eq!(media.header("content-type"), Some("video/mp4"));
    let fallback = c.get("/api/render/proxy/render_1/download").await;
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.body, SAMPLE_MP4);
    let credits: Credits = api::parse(&c.get("/api/credits/balance/simple").await.core()).unwrap();
    assert_eq!(credits.available, 95.0, "export is free");

    // Cancel after completion is refused; a second render can be cancelled.
    let r = c
        .post("/api/render/proxy/lambda/render_1/cancel", &json!(null))
        .await;
    assert_eq!(r.json()["success"], false);
    submit(&c, "render_2", &draft_text, true).await;
    let r = c
        .post("/api/render/proxy/lambda/render_2/cancel", &json!(null))
        .await;
    assert_eq!(
        r.json(),
        json!({"success": true, "data": {"id": "render_2", "status": "cancelled"}})
    );
    assert_eq!(
        wait_render(&c, "render_2").await.phase,
        api::RenderPhase::Cancelled
    );

    // Claim token.
    let r = c
        .post(
            "/api/auth/claim-token",
            &json!({"task_id": c.task, "session_id": c.session}),
        )
        .await;
    let claim: api::ClaimToken = api::parse(&r.core()).unwrap();
    assert!(claim.claim_token.expose().starts_with("clm_"));
    assert_eq!(claim.expires_in, Some(3600.0));

    // The journal saw it all, with credentials masked.
    let j = server.journal();
    assert_eq!(j.count(Endpoint::RunSse), 1);
    assert_eq!(
        j.messages(),
        vec!["add lo-fi music at 35% and the title \"Urban Dreams\"".to_owned()]
    );
    assert_eq!(j.count(Endpoint::Upload), 2);
    for e in j.entries() {
        if let Some(a) = e.header("authorization") {
            assert!(!a.contains(&c.token[8..]), "token leaked: {a}");
            assert!(a.starts_with("Bearer ***"));
        }
        if let Some(id) = e.header("x-client-id") {
            assert!(id.starts_with("***"), "{id}");
        }
    }
    let uploads = j.for_endpoint(Endpoint::Upload);
    assert!(uploads[0].body.contains("multipart"));
    server.shutdown().await;
}

#[tokio::test]
async fn session_payload_parses_and_unknown_paths_are_fastapi_404() {
    let server = server(fast()).await;
    let c = connect(server.addr(), "client-404").await;
    let r = c
        .post(
            "/api/tasks/me/with-session/nemo_agent",
            &json!({"task_name": "project", "language": "zh"}),
        )
        .await;
    let s: SessionCreated = api::parse(&r.core()).unwrap();
    assert_eq!(s.session_id.len(), 19);
    let r = c.get("/api/nope").await;
    assert_eq!((r.status, r.json()), (404, json!({"detail": "Not Found"})));
    let r = c.get("/run_sse").await;
    assert_eq!(
        (r.status, r.json()),
        (405, json!({"detail": "Method Not Allowed"}))
    );
    let r = c.post("/run_sse", &json!({"app_name": "nemo_agent"})).await;
    assert_eq!(r.status, 422);
    server.shutdown().await;
}

#[tokio::test]
async fn chinese_and_generation_requests() {
    let server = server(fast()).await;
    let c = connect(server.addr(), "client-zh").await;
    let r = c
        .chat("用这个链接生成视频 https://blog.example.com/posts/city-of-dreams")
        .await;
    let text: String = events(&r.body)
        .iter()
        .filter(|e| e.get("partial").is_none())
        .filter_map(|e| e["content"]["parts"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert!(text.contains("视频已生成"), "{text}");
    let draft = Draft::parse(&c.draft_text().await.unwrap()).unwrap();
    let summary = draft.timeline().to_string();
    assert!(summary.contains("scene 1"), "{summary}");
    let credits: Credits = api::parse(&c.get("/api/credits/balance/simple").await.core()).unwrap();
    assert_eq!(credits.available, 90.0, "generation costs 10");
    c.chat("剪到8秒，竖屏").await;
    let v: serde_json::Value = serde_json::from_str(&c.draft_text().await.unwrap()).unwrap();
    assert_eq!(v["d"], 8000);
    assert_eq!(
        (v["m"]["width"].as_u64(), v["m"]["height"].as_u64()),
        (Some(1080), Some(1920))
    );
    server.shutdown().await;
}
