//! The in-process transport, in virtual time.

use std::time::Duration;

use nemo_core::api::{self, Api, Attribution, RenderPhase};
use nemo_core::time::Clock;
use nemo_core::transport::{DownloadOptions, DownloadOutcome, Transport, TransportErrorKind};
use nemo_core::wire::{Endpoint, FilePart};
use nemo_mock::media::SAMPLE_MP4;
use nemo_mock::{AgentBehaviour, FaultPlan, InProcess, MockConfig, TokioClock};

async fn read_stream(mock: &InProcess, req: &nemo_core::wire::Request) -> (u16, Vec<u8>, bool) {
    let mut s = mock.open_stream(req).await.unwrap();
    let mut body = Vec::new();
    let mut broke = false;
    for _ in 0..100_000 {
        match s.body.next_chunk().await {
            Some(Ok(c)) => body.extend_from_slice(&c),
            Some(Err(e)) => {
                assert_eq!(e.kind, TransportErrorKind::Interrupted);
                broke = true;
                break;
            }
            None => break,
        }
    }
    (s.status, body, broke)
}

#[tokio::test(start_paused = true)]
async fn a_whole_session_in_virtual_time() {
    let real = std::time::Instant::now();
    let clock = TokioClock::new();
    let mock = InProcess::new(MockConfig {
        agent: AgentBehaviour {
            long_work_rate: 1.0,
            ..AgentBehaviour::calm()
        },
        ..MockConfig::default()
    })
    .unwrap();
    let api = Api::new(Attribution::default());
    let grant: api::AnonymousToken =
        api::parse(&mock.send(&api.anonymous_token("cid"), None).await.unwrap()).unwrap();
    let token = grant.token;
    let session: api::SessionCreated = api::parse(
        &mock
            .send(&api.create_session(&token, "en"), None)
            .await
            .unwrap(),
    )
    .unwrap();
    let sid = session.session_id;

    // Upload from disk with progress.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("city timelapse.mp4");
    std::fs::write(&clip, SAMPLE_MP4).unwrap();
    let part = FilePart {
        path: clip.clone(),
        filename: "city timelapse.mp4".into(),
        content_type: "video/mp4".into(),
        len: SAMPLE_MP4.len() as u64,
    };
    let seen = std::sync::Mutex::new(0u64);
    let progress = |p: nemo_core::transport::Progress| *seen.lock().unwrap() = p.done;
    let r = mock
        .send(&api.upload_files(&token, &sid, vec![part]), Some(&progress))
        .await
        .unwrap();
    let up: api::Uploaded = api::parse(&r).unwrap();
    assert_eq!(up.files[0].width, Some(320.0));
    assert_eq!(*seen.lock().unwrap(), SAMPLE_MP4.len() as u64);

    // A long turn: minutes of keep-alives in virtual time.
    let start = clock.now();
    let (status, body, broke) =
        read_stream(&mock, &api.run_sse(&token, &sid, "add lo-fi music at 35%")).await;
    assert_eq!((status, broke), (200, false));
    assert!(
        clock.now() - start >= Duration::from_secs(150),
        "{:?}",
        clock.now() - start
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("Lo-fi"));

    // State, render, poll every 2 s of virtual time.
    let state =
        api::parse_state(&mock.send(&api.state(&token, &sid), None).await.unwrap()).unwrap();
    let draft = state.state.draft.unwrap();
    assert!(draft.timeline().to_string().contains("BGM: Lo-fi"));
    let r = mock
        .send(&api.render_submit(&token, "render_1", &sid, &draft), None)
        .await
        .unwrap();
    api::parse::<api::RenderAccepted>(&r).unwrap();
    let mut url = None;
    for _ in 0..100 {
        clock
            .sleep_until(clock.now() + Duration::from_secs(2))
            .await;
        let s = api::parse_render_status(
            &mock
                .send(&api.render_status(&token, "render_1"), None)
                .await
                .unwrap(),
        )
        .unwrap();
        if s.phase == RenderPhase::Completed {
            url = s.output_url;
            break;
        }
    }
    let url = url.expect("completed");
    assert!(url.starts_with(InProcess::BASE_URL));

    // Download: temp file beside, renamed; no overwrite unless asked.
    let dest = dir.path().join("out.mp4");
    let out = mock
        .download(
            &api.download_url(&url),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        DownloadOutcome::Complete {
            bytes: SAMPLE_MP4.len() as u64
        }
    );
    assert_eq!(std::fs::read(&dest).unwrap(), SAMPLE_MP4);
    let err = mock
        .download(
            &api.download_url(&url),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Exists);
    let out = mock
        .download(
            &api.download_fallback(&token, "render_1"),
            &dest,
            DownloadOptions {
                overwrite: true,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(out, DownloadOutcome::Complete { .. }));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temp files left: {leftovers:?}");

    assert_eq!(mock.journal().count(Endpoint::RunSse), 1);
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "virtual time: {:?}",
        real.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn downloads_resume_and_refusals_write_nothing() {
    let mock = InProcess::new(MockConfig {
        faults: FaultPlan::parse("download:reset@1").unwrap(),
        render_bytes: Some(1_000_000),
        render_seconds: 10.0,
        ..MockConfig::fast()
    })
    .unwrap();
    let api = Api::new(Attribution::default());
    let token = api::parse::<api::AnonymousToken>(
        &mock.send(&api.anonymous_token("c"), None).await.unwrap(),
    )
    .unwrap()
    .token;
    let sid = api::parse::<api::SessionCreated>(
        &mock
            .send(&api.create_session(&token, "en"), None)
            .await
            .unwrap(),
    )
    .unwrap()
    .session_id;
    mock.send(
        &api.upload_urls(&token, &sid, &["https://example.com/a.mp4".into()]),
        None,
    )
    .await
    .unwrap();
    let draft = api::parse_state(&mock.send(&api.state(&token, &sid), None).await.unwrap())
        .unwrap()
        .state
        .draft
        .unwrap();
    mock.send(&api.render_submit(&token, "r1", &sid, &draft), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("big.bin");
    let url = format!("{}/media/r1.mp4", mock.url());
    let out = mock
        .download(
            &api.download_url(&url),
            &dest,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out, DownloadOutcome::Complete { bytes: 1_000_000 });
    let data = std::fs::read(&dest).unwrap();
    assert!(data
        .iter()
        .enumerate()
        .all(|(i, b)| *b == nemo_mock::media::generated_byte(i as u64)));
    let downloads = mock.journal().for_endpoint(Endpoint::Download);
    assert_eq!(downloads.len(), 2, "one reset, one resume");
    assert_eq!(downloads[1].header("range"), Some("bytes=500000-"));
    assert_eq!(downloads[1].status, 206);

    // An unknown render: refused, nothing under the name.
    let other = dir.path().join("nope.mp4");
    let out = mock
        .download(
            &api.download_fallback(&token, "r404"),
            &other,
            DownloadOptions::default(),
            None,
        )
        .await
        .unwrap();
    match out {
        DownloadOutcome::Refused(r) => assert_eq!(r.status, 404),
        other => panic!("{other:?}"),
    }
    assert!(!other.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // Other hosts are unreachable.
    let err = mock
        .send(&api.download_url("https://cdn.example.com/x.mp4"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect);
}

#[tokio::test(start_paused = true)]
async fn stream_reset_and_server_side_edit() {
    let mock = InProcess::new(MockConfig {
        faults: FaultPlan::parse("run_sse:reset@1").unwrap(),
        ..MockConfig::default()
    })
    .unwrap();
    let api = Api::new(Attribution::default());
    let token = api::parse::<api::AnonymousToken>(
        &mock.send(&api.anonymous_token("c"), None).await.unwrap(),
    )
    .unwrap()
    .token;
    let sid = api::parse::<api::SessionCreated>(
        &mock
            .send(&api.create_session(&token, "en"), None)
            .await
            .unwrap(),
    )
    .unwrap()
    .session_id;
    let (_, _, broke) =
        read_stream(&mock, &api.run_sse(&token, &sid, "add the title \"Late\"")).await;
    assert!(broke);
    // The work goes on on the server: after a while the state shows the edit.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let draft = mock.draft(&sid).expect("the edit landed");
    assert!(draft.to_string().contains("Late"));
    assert_eq!(mock.credits(token.expose()), Some((95, 0)));
}
