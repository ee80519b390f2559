//! Against the `nemo-mock` simulator over loopback HTTP: a whole session in
//! each render shape, every error code, the fault plan's faults, a resumed
//! download.

use std::time::Duration;

use nemo_core::api::{
    self, parse, parse_render_status, parse_state, payload, AnonymousToken, ClaimToken, Credits,
    RenderPhase, ResponseError, SessionCreated, Uploaded,
};
use nemo_core::secret::Secret;
use nemo_core::transport::{DownloadOptions, DownloadOutcome, Transport, TransportErrorKind};
use nemo_core::wire::{FilePart, Request, Response};
use nemo_http::{HttpConfig, HttpTransport};
use nemo_mock::media::generated_byte;
use nemo_mock::{FaultPlan, MockConfig, MockServer, RenderShape};

use crate::support::*;

const OUTPUT_BYTES: u64 = 300_000;

fn mock_config(faults: &str) -> MockConfig {
    MockConfig {
        render_bytes: Some(OUTPUT_BYTES),
        faults: FaultPlan::parse(faults).unwrap(),
        ..MockConfig::fast()
    }
}

/// A token and a session on a fresh simulator.
struct Session {
    server: MockServer,
    t: HttpTransport,
    token: Secret,
    sid: String,
    task_id: Option<String>,
}

async fn session(config: MockConfig) -> Session {
    let server = MockServer::start(config).await.unwrap();
    let t = transport(server.url());
    let grant: AnonymousToken = parse(
        &t.send(&api().anonymous_token("client-1"), None)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(grant.token.expose().starts_with("nmv_usr_"));
    let created: SessionCreated = parse(
        &t.send(&api().create_session(&grant.token, "en"), None)
            .await
            .unwrap(),
    )
    .unwrap();
    Session {
        server,
        t,
        token: grant.token,
        sid: created.session_id,
        task_id: created.task_id,
    }
}

/// Reads a whole event stream; `Err` when it broke.
async fn run_turn(
    s: &Session,
    text: &str,
) -> (u16, Result<String, nemo_core::transport::TransportError>) {
    let mut stream =
        s.t.open_stream(&api().run_sse(&s.token, &s.sid, text))
            .await
            .unwrap();
    let mut body = Vec::new();
    for _ in 0..100_000 {
        match stream.body.next_chunk().await {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(err)) => return (stream.status, Err(err)),
            None => break,
        }
    }
    (
        stream.status,
        Ok(String::from_utf8_lossy(&body).into_owned()),
    )
}

fn clip(dir: &std::path::Path) -> FilePart {
    let path = dir.join("clip.mp4");
    std::fs::write(&path, content(20_000)).unwrap();
    FilePart {
        path,
        filename: "clip.mp4".into(),
        content_type: "video/mp4".into(),
        len: 20_000,
    }
}

fn api_error(response: &Response) -> api::ApiError {
    match payload(response) {
        Err(ResponseError::Api(err)) => err,
        other => panic!("expected an API error, got {other:?} from {response:?}"),
    }
}

async fn wait_for_render(s: &Session, id: &str) -> api::RenderStatus {
    for _ in 0..500 {
        let status = parse_render_status(
            &s.t.send(&api().render_status(&s.token, id), None)
                .await
                .unwrap(),
        )
        .unwrap();
        if status.phase.is_final() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the render did not finish");
}

/// Uploads a clip, asks for an edit and renders it: the output URL.
async fn completed_render(s: &Session, dir: &std::path::Path) -> String {
    let upload = api().upload_files(&s.token, &s.sid, vec![clip(dir)]);
    payload(&s.t.send(&upload, None).await.unwrap()).unwrap();
    let (_, turn) = run_turn(s, "make a 10 second video with a title").await;
    turn.unwrap();
    let state = parse_state(
        &s.t.send(&api().state(&s.token, &s.sid), None)
            .await
            .unwrap(),
    )
    .unwrap();
    let draft = state.state.draft.expect("the edit produced a draft");
    let submit = api().render_submit(&s.token, "render_1", &s.sid, &draft);
    payload(&s.t.send(&submit, None).await.unwrap()).unwrap();
    let done = wait_for_render(s, "render_1").await;
    assert_eq!(done.phase, RenderPhase::Completed);
    done.output_url.expect("an output URL")
}

fn check_output(path: &std::path::Path, len: u64) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() as u64, len);
    assert!(bytes
        .iter()
        .enumerate()
        .all(|(i, b)| *b == generated_byte(i as u64)));
}

#[tokio::test]
async fn a_whole_session_in_each_render_shape() {
    for shape in [RenderShape::A, RenderShape::B, RenderShape::C] {
        let s = session(MockConfig {
            render_shape: shape,
            ..mock_config("")
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let uploaded: Uploaded = parse(
            &s.t.send(
                &api().upload_files(&s.token, &s.sid, vec![clip(dir.path())]),
                None,
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert_eq!(uploaded.files.len(), 1);
        assert_eq!(uploaded.files[0].filename, "clip.mp4");
        let by_url: Uploaded = parse(
            &s.t.send(
                &api().upload_urls(&s.token, &s.sid, &["https://example.com/b.mp4".into()]),
                None,
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert_eq!(by_url.files.len(), 1);

        let (status, body) = run_turn(&s, "make a 10 second video with a title").await;
        assert_eq!(status, 200);
        assert!(body.unwrap().contains("data:"));
        let credits: Credits =
            parse(&s.t.send(&api().credits(&s.token), None).await.unwrap()).unwrap();
        assert!(credits.total > 0.0);

        let state = parse_state(
            &s.t.send(&api().state(&s.token, &s.sid), None)
                .await
                .unwrap(),
        )
        .unwrap();
        let draft = state.state.draft.expect("the edit produced a draft");
        let id = format!("render_{shape:?}");
        let accepted =
            s.t.send(&api().render_submit(&s.token, &id, &s.sid, &draft), None)
                .await
                .unwrap();
        payload(&accepted).unwrap();
        let done = wait_for_render(&s, &id).await;
        assert_eq!(done.phase, RenderPhase::Completed, "{shape:?}");
        let url = done.output_url.expect("an output URL");

        let dest = dir.path().join("out.mp4");
        let outcome =
            s.t.download(
                &api().download_url(&url),
                &dest,
                DownloadOptions::default(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            DownloadOutcome::Complete {
                bytes: OUTPUT_BYTES
            }
        );
        check_output(&dest, OUTPUT_BYTES);
        let fallback = dir.path().join("fallback.mp4");
        let outcome =
            s.t.download(
                &api().download_fallback(&s.token, &id),
                &fallback,
                DownloadOptions::default(),
                None,
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, DownloadOutcome::Complete { .. }),
            "{outcome:?}"
        );

        let claim: ClaimToken = parse(
            &s.t.send(
                &api().claim_token(&s.token, s.task_id.as_deref().unwrap_or("task"), &s.sid),
                None,
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert!(claim.claim_token.expose().starts_with("clm_"));
        let cancel =
            s.t.send(&api().render_cancel(&s.token, &id), None)
                .await
                .unwrap();
        assert!(cancel.status < 500, "{cancel:?}");

        // Every API request carried the attribution triple; the CDN got no
        // credentials; the journal masks the token.
        for entry in s.server.journal().entries() {
            if entry.path.starts_with("/media/") {
                assert_eq!(entry.header("authorization"), None, "{entry:?}");
                assert_eq!(entry.header("x-skill-source"), None, "{entry:?}");
                continue;
            }
            assert_eq!(
                entry.header("x-skill-source"),
                Some("video-openapi"),
                "{entry:?}"
            );
            if let Some(auth) = entry.header("authorization") {
                assert!(!auth.contains(s.token.expose()));
            }
        }
        s.server.shutdown().await;
    }
}

#[tokio::test]
async fn every_error_code_of_the_simulator() {
    let s = session(mock_config("")).await;
    let t = &s.t;
    // 400: no X-Client-Id.
    let mut anonymous = api().anonymous_token("x");
    anonymous.headers.retain(|h| h.name != "x-client-id");
    let err = api_error(&t.send(&anonymous, None).await.unwrap());
    assert_eq!((err.status, err.code), (400, None));
    // 429: a second token for the same client id, with Retry-After.
    let err = api_error(
        &t.send(&api().anonymous_token("client-1"), None)
            .await
            .unwrap(),
    );
    assert_eq!(err.status, 429);
    assert!(err.retry_after.is_some());
    // 1001: a token the server does not know.
    let err = api_error(
        &t.send(&api().credits(&Secret::new("nmv_usr_unknown")), None)
            .await
            .unwrap(),
    );
    assert_eq!(err.code, Some(1001));
    // 1002: a session that does not exist.
    let err = api_error(
        &t.send(&api().state(&s.token, "1234567890123456789"), None)
            .await
            .unwrap(),
    );
    assert_eq!(err.code, Some(1002));
    // 4001: an unsupported URL upload (a local file of that kind never leaves).
    let err = api_error(
        &t.send(
            &api().upload_urls(&s.token, &s.sid, &["https://example.com/a.pdf".into()]),
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(err.code, Some(4001));
    // 402: an export without the attribution headers.
    let state = parse_state(&t.send(&api().state(&s.token, &s.sid), None).await.unwrap()).unwrap();
    let draft = state.state.draft.unwrap_or_else(|| {
        nemo_core::draft::Draft::parse(r#"{"t":[{"tt":0,"sg":[{"d":1000}]}]}"#).unwrap()
    });
    let mut render: Request = api().render_submit(&s.token, "render_x", &s.sid, &draft);
    render.headers.retain(|h| !h.name.starts_with("x-skill-"));
    let err = api_error(&t.send(&render, None).await.unwrap());
    assert_eq!((err.status, err.code), (402, Some(402)));
    s.server.shutdown().await;

    // 4002: a file over the (lowered) limit.
    let s = session(MockConfig {
        max_upload_bytes: 1000,
        ..mock_config("")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = api_error(
        &s.t.send(
            &api().upload_files(&s.token, &s.sid, vec![clip(dir.path())]),
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(err.code, Some(4002));
    s.server.shutdown().await;

    // 2001: no credits left for an edit.
    let s = session(MockConfig {
        initial_credits: 0,
        ..mock_config("")
    })
    .await;
    let mut stream =
        s.t.open_stream(&api().run_sse(&s.token, &s.sid, "add a title that says hello"))
            .await
            .unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = stream.body.next_chunk().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    let err = api_error(&Response {
        status: stream.status,
        headers: stream.headers.clone(),
        body,
    });
    assert_eq!(err.code, Some(2001));
    s.server.shutdown().await;
}

#[tokio::test]
async fn faults_of_the_plan() {
    let s = session(mock_config(
        "credits:500@1;credits:429=2@2;run_sse:reset@1;run_sse:truncate@2",
    ))
    .await;
    let first = s.t.send(&api().credits(&s.token), None).await.unwrap();
    assert!(first.status >= 500, "{first:?}");
    let second = api_error(&s.t.send(&api().credits(&s.token), None).await.unwrap());
    assert_eq!(second.status, 429);
    assert!(second.retry_after.is_some());
    let third: Credits = parse(&s.t.send(&api().credits(&s.token), None).await.unwrap()).unwrap();
    assert!(third.available >= 0.0);

    let (_, reset) = run_turn(&s, "make it shorter").await;
    assert_eq!(reset.unwrap_err().kind, TransportErrorKind::Interrupted);
    let (_, truncated) = run_turn(&s, "make it shorter").await;
    assert!(
        truncated.is_ok(),
        "a clean close is a normal end: {truncated:?}"
    );
    s.server.shutdown().await;

    // A slow answer against a short read timeout.
    let s = session(mock_config("credits:delay=100s")).await;
    let t = HttpTransport::new(HttpConfig {
        read_timeout: Duration::from_millis(150),
        ..config(s.server.url())
    })
    .unwrap();
    let err = t.send(&api().credits(&s.token), None).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout);
    assert_no_token(&err.message);
    assert!(!err.message.contains(s.token.expose()));
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_reset_download_is_resumed() {
    // Large enough that the first half leaves the server before the reset
    // (a server holds a small body in its write buffer and loses it whole).
    const LEN: u64 = 4 * 1024 * 1024;
    let s = session(MockConfig {
        render_bytes: Some(LEN),
        ..mock_config("download:reset@1")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("render.mp4");
    let url = completed_render(&s, dir.path()).await;
    let last = std::sync::Mutex::new(None);
    let progress = |p: nemo_core::transport::Progress| *last.lock().unwrap() = Some(p);
    let outcome =
        s.t.download(
            &api().download_url(&url),
            &dest,
            DownloadOptions::default(),
            Some(&progress),
        )
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Complete { bytes: LEN });
    check_output(&dest, LEN);
    assert_eq!(
        *last.lock().unwrap(),
        Some(nemo_core::transport::Progress {
            done: LEN,
            total: Some(LEN)
        })
    );
    let downloads: Vec<_> = s
        .server
        .journal()
        .entries()
        .into_iter()
        .filter(|e| e.path.starts_with("/media/"))
        .collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert_eq!(downloads[0].header("range"), None);
    let range = downloads[1]
        .header("range")
        .expect("the second request resumes");
    assert!(
        range.starts_with("bytes=") && range != "bytes=0-",
        "{range}"
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_download_broken_before_its_head_is_sent_again() {
    // A small body: the reset loses the head too. A GET of a file is safe
    // to repeat, so the download simply starts over.
    let s = session(mock_config("download:reset@1")).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("render.mp4");
    let url = completed_render(&s, dir.path()).await;
    let outcome =
        s.t.download(
            &api().download_url(&url),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        DownloadOutcome::Complete {
            bytes: OUTPUT_BYTES
        }
    );
    check_output(&dest, OUTPUT_BYTES);
    s.server.shutdown().await;
}

/// Every fault that changes what a stream says, not whether it arrives: the
/// transport hands each body over intact, and the core reads it as meant.
#[tokio::test]
async fn every_stream_fault_reaches_the_decoder_intact() {
    use nemo_core::adk::{classify, AgentEvent};
    use nemo_core::sse::{Decoder, Frame};

    type Expect = fn(&[AgentEvent]) -> bool;
    let cases: [(&str, Expect); 6] = [
        ("keepalive", |e| {
            e.iter().all(|e| matches!(e, AgentEvent::KeepAlive))
        }),
        ("error", |e| {
            e.iter()
                .any(|e| matches!(e, AgentEvent::StreamError { .. }))
        }),
        ("error-raw", |e| {
            e.iter()
                .any(|e| matches!(e, AgentEvent::StreamError { .. }))
        }),
        ("errorcode", |e| {
            e.iter().any(|e| matches!(e, AgentEvent::ModelError { .. }))
        }),
        ("silent", |e| {
            !e.iter().any(|e| matches!(e, AgentEvent::Text { .. }))
                && e.iter().any(|e| matches!(e, AgentEvent::ToolCall { .. }))
        }),
        ("temp", |e| {
            e.iter().any(
                |e| matches!(e, AgentEvent::Text { text, .. } if text.contains("temporary issue")),
            )
        }),
    ];
    for (fault, expect) in cases {
        let s = session(mock_config(&format!("run_sse:{fault}@1"))).await;
        let dir = tempfile::tempdir().unwrap();
        let up =
            s.t.send(
                &api().upload_files(&s.token, &s.sid, vec![clip(dir.path())]),
                None,
            )
            .await
            .unwrap();
        let _: Uploaded = parse(&up).unwrap();
        let (status, body) = run_turn(&s, "add lo-fi background music at 35%").await;
        assert_eq!(status, 200, "{fault}");
        let body = body.unwrap_or_else(|e| panic!("{fault}: the stream broke: {e}"));
        let mut frames = Vec::new();
        Decoder::new().feed(body.as_bytes(), &mut frames);
        let events: Vec<AgentEvent> = frames
            .iter()
            .flat_map(|f| match f {
                Frame::Event(e) => classify(&e.data),
                _ => vec![AgentEvent::KeepAlive],
            })
            .collect();
        assert!(!events.is_empty(), "{fault}: an empty stream");
        assert!(expect(&events), "{fault}: {events:?}");
        s.server.shutdown().await;
    }
}
