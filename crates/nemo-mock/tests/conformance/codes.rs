//! Every code of PROTOCOL.md §7, as the wire carries it.

use nemo_core::api::{self, ApiError, ResponseError};
use nemo_mock::{FaultPlan, MockConfig};
use serde_json::json;

use super::raw::*;

fn api_error(r: &Raw) -> ApiError {
    match api::payload(&r.core()) {
        Err(ResponseError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}: {}", r.text()),
    }
}

#[tokio::test]
async fn token_codes_400_429_1001() {
    let server = server(fast()).await;
    let addr = server.addr();
    // 400: no X-Client-Id, FastAPI detail.
    let r = request(addr, "POST", "/api/auth/anonymous-token", &ATTRIBUTION, b"").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"detail": "X-Client-Id header is required"})
    );
    // 429: a second token for the same client id while the first is valid.
    let c = connect(addr, "client-codes").await;
    let mut h = ATTRIBUTION.to_vec();
    h.push(("X-Client-Id", "client-codes"));
    let r = request(addr, "POST", "/api/auth/anonymous-token", &h, b"").await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").unwrap().parse::<f64>().unwrap() > 0.0);
    let e = api_error(&r);
    assert_eq!(e.code, Some(429));
    assert!(e.retry_after.is_some());
    // 1001: an unknown token, as HTTP 200 with code 1001.
    let bad = Client {
        token: "nmv_usr_bogus".into(),
        ..c
    };
    let r = bad.get("/api/credits/balance/simple").await;
    assert_eq!(r.status, 200);
    assert_eq!(api_error(&r).code, Some(1001));
    // …and on /run_sse as HTTP 401 JSON before any stream.
    let r = bad.chat("hello").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["code"], 1001);
    server.shutdown().await;
}

#[tokio::test]
async fn expired_token_1001_then_a_new_one_is_allowed() {
    let config = MockConfig {
        faults: FaultPlan::parse("token:expire@2").unwrap(),
        ..fast()
    };
    let server = server(config).await;
    let c = connect(server.addr(), "client-exp").await; // authed call 1 = create session
    let r = c.get("/api/credits/balance/simple").await; // authed call 2: expires now
    assert_eq!(api_error(&r).code, Some(1001));
    assert_eq!(api_error(&r).message, "Token expired");
    let r = c.state().await;
    assert_eq!(api_error(&r).code, Some(1001), "stays expired");
    // The same client id may get a new token now; same anonymous user, same credits.
    let mut h = ATTRIBUTION.to_vec();
    h.push(("X-Client-Id", "client-exp"));
    let r = request(server.addr(), "POST", "/api/auth/anonymous-token", &h, b"").await;
    let grant: api::AnonymousToken = api::parse(&r.core()).unwrap();
    assert_eq!(grant.user_id.as_deref(), Some(c.user.as_str()));
    assert_eq!(grant.credits, Some(100.0));
    assert!(grant.expires_at.unwrap().ends_with('Z'));
    let c2 = Client {
        token: grant.token.expose().to_owned(),
        ..c
    };
    assert_eq!(
        c2.state().await.json()["code"],
        0,
        "the session survives a token change"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn session_codes_1002() {
    let config = MockConfig {
        faults: FaultPlan::parse("session:lose@3").unwrap(),
        ..fast()
    };
    let server = server(config).await;
    let c = connect(server.addr(), "client-1002").await;
    let unknown = Client {
        session: "1234567890123456789".into(),
        ..connect(server.addr(), "client-1002b").await
    };
    let r = unknown.state().await; // session-bearing call 1
    assert_eq!(api_error(&r).code, Some(1002));
    let r = unknown.chat("hi").await; // 2
    assert_eq!((r.status, r.json()["code"].as_u64()), (404, Some(1002)));
    let r = c.state().await; // 3: lost now
    assert_eq!(api_error(&r).code, Some(1002));
    server.shutdown().await;
}

#[tokio::test]
async fn out_of_credits_2001_and_chat_is_free() {
    let config = MockConfig {
        initial_credits: 7,
        ..fast()
    };
    let server = server(config).await;
    let c = connect(server.addr(), "client-2001").await;
    let r = c.chat("hello").await;
    assert_eq!(r.status, 200, "talking costs nothing");
    let r = c.chat("trim to 8 seconds and add a title \"A\"").await;
    assert_eq!(r.status, 200, "5 of 7 credits");
    let r = c.chat("add jazz music").await;
    assert_eq!(r.status, 402);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["code"], 2001);
    let credits: api::Credits =
        api::parse(&c.get("/api/credits/balance/simple").await.core()).unwrap();
    assert_eq!(
        (credits.available, credits.frozen, credits.total),
        (2.0, 0.0, 2.0)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn upload_codes_4001_4002() {
    let config = MockConfig {
        max_upload_bytes: 1000,
        ..fast()
    };
    let server = server(config).await;
    let c = connect(server.addr(), "client-40xx").await;
    let r = c.upload(&[("notes.pdf", b"%PDF-1.4")]).await;
    let e = api_error(&r);
    assert_eq!((r.status, e.code), (200, Some(4001)));
    assert!(e.message.contains("mp4"), "{}", e.message);
    let big = vec![7u8; 5000];
    let r = c.upload(&[("big.mp4", &big)]).await;
    assert_eq!((r.status, api_error(&r).code), (200, Some(4002)));
    let r = c
        .post(
            &format!("/api/upload-video/nemo_agent/me/{}", c.session),
            &json!({"urls": ["https://example.com/a.exe"], "source_type": "url"}),
        )
        .await;
    assert_eq!(api_error(&r).code, Some(4001));
    assert_eq!(c.draft_text().await, None, "refused uploads change nothing");
    server.shutdown().await;
}

#[tokio::test]
async fn export_without_attribution_is_402() {
    let server = server(fast()).await;
    let c = connect(server.addr(), "client-402").await;
    c.post(
        &format!("/api/upload-video/nemo_agent/me/{}", c.session),
        &json!({"urls": ["https://example.com/a.mp4"], "source_type": "url"}),
    )
    .await;
    let draft = c.draft_text().await.unwrap();
    let r = submit(&c, "render_x", &draft, false).await;
    assert_eq!(r.status, 402);
    let e = api_error(&r);
    assert_eq!(e.code, Some(402));
    assert!(
        e.message.contains("X-Skill") || e.message.contains("x-skill"),
        "{}",
        e.message
    );
    server.shutdown().await;
}

#[tokio::test]
async fn injected_5xx_and_429_bursts() {
    let config = MockConfig {
        faults: FaultPlan::parse("credits:502@1;credits:500@2;credits:503@3;state:429=2x2")
            .unwrap(),
        ..fast()
    };
    let server = server(config).await;
    let c = connect(server.addr(), "client-5xx").await;
    let r = c.get("/api/credits/balance/simple").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("<html>"));
    let r = c.get("/api/credits/balance/simple").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "Internal Server Error")
    );
    let r = c.get("/api/credits/balance/simple").await;
    assert_eq!(r.status, 503);
    assert_eq!(c.get("/api/credits/balance/simple").await.status, 200);
    for _ in 0..2 {
        let r = c.state().await;
        assert_eq!(r.status, 429);
        // 2 simulated seconds at time scale 0.001.
        assert_eq!(r.header("retry-after"), Some("0.002"));
        assert_eq!(r.json()["code"], 429);
    }
    assert_eq!(c.state().await.status, 200);
    server.shutdown().await;
}
