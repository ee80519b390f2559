//! Recorded sessions: every fixture replays to its snapshot and passes
//! `--check`; a tampered one fails with a readable diff; recordings hold no
//! secret; HAR documents round-trip; a browser's export replays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nemo_clock::TokioClock;
use nemo_core::driver::Driver;
use nemo_core::machine::{Command, Config, Event, ExportOptions, LinkKind, Session};
use nemo_core::route::UserInput;
use nemo_har::{
    replay_blocking, DifferenceKind, Har, HarError, PageCommand, Recorder, Replay, ReplayOptions,
};
use nemo_mock::{AgentBehaviour, InProcess, MockConfig};

fn sessions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sessions")
}

fn load(name: &str) -> Har {
    Har::load(sessions_dir().join(format!("{name}.har"))).expect("fixture loads")
}

fn checked(har: &Har) -> Replay {
    replay_blocking(
        har,
        &ReplayOptions {
            check: true,
            ..ReplayOptions::default()
        },
    )
    .expect("replays")
}

/// The simulator's fixtures: each replays to its snapshot, and the client's
/// requests are the recorded ones.
macro_rules! fixtures {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                let har = load($name);
                let replay = checked(&har);
                assert!(replay.passed(), "{}:\n{}", $name, replay.report());
                insta::assert_snapshot!($name, replay.transcript_text());
            }
        )*

        const FIXTURES: &[&str] = &[$($name),*];
    };
}

fixtures! {
    flavour_download_online => "flavour-download-online",
    flavour_free_download_app => "flavour-free-download-app",
    flavour_generator_by_link => "flavour-generator-by-link",
    flavour_openapi_file_edit => "flavour-openapi-file-edit",
    recover_1001_token_expired => "recover-1001-token-expired",
    recover_1002_session_lost => "recover-1002-session-lost",
    error_2001_out_of_credits => "error-2001-out-of-credits",
    error_4001_unsupported_file => "error-4001-unsupported-file",
    error_4002_file_too_large => "error-4002-file-too-large",
    error_402_plan_blocked => "error-402-plan-blocked",
    recover_429_rate_limited => "recover-429-rate-limited",
    silent_edit => "silent-edit",
    dropped_stream => "dropped-stream",
    failed_render => "failed-render",
    partial_text => "partial-text",
    gui_phrases_en => "gui-phrases-en",
    gui_phrases_zh => "gui-phrases-zh",
    long_work_still_working => "long-work-still-working",
}

#[test]
fn every_fixture_has_a_snapshot_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(sessions_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".har")?;
            (!stem.starts_with("browser-")).then(|| stem.to_owned())
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "add new fixtures to the `fixtures!` list");
    assert!(listed.len() >= 12);
}

#[test]
fn a_ten_minute_session_replays_in_virtual_time() {
    let har = load("long-work-still-working");
    let started = std::time::Instant::now();
    let replay = checked(&har);
    assert!(
        replay
            .transcript
            .iter()
            .any(|l| l.contains("still working")),
        "{}",
        replay.transcript_text()
    );
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

#[test]
fn a_tampered_recording_fails_the_check_with_a_readable_diff() {
    // The user's words changed: the message the client sends differs.
    let mut har = load("flavour-openapi-file-edit");
    for page in &mut har.log.pages {
        if let Some(PageCommand::Say { text, .. }) = &mut page.command {
            *text = text.replace("35%", "60%");
        }
    }
    let replay = checked(&har);
    assert!(!replay.passed());
    let body = replay
        .differences
        .iter()
        .find(|d| d.kind == DifferenceKind::Body)
        .expect("a body difference");
    assert_eq!(body.request, "POST /run_sse");
    let report = replay.report();
    assert!(
        report.contains("new_message.parts[0].text: recorded \"add lo-fi background music at 35%"),
        "{report}"
    );
    assert!(
        report.contains("replayed \"add lo-fi background music at 60%"),
        "{report}"
    );

    // A turn removed: its requests are reported missing.
    let mut har = load("flavour-openapi-file-edit");
    har.log
        .pages
        .retain(|p| !matches!(p.command, Some(PageCommand::Credits)));
    let replay = checked(&har);
    let report = replay.report();
    assert_eq!(replay.differences.len(), 1, "{report}");
    assert_eq!(replay.differences[0].kind, DifferenceKind::Missing);
    assert!(
        report.contains("GET /api/credits/balance/simple was not sent"),
        "{report}"
    );
}

#[test]
fn a_request_without_a_recorded_answer_is_a_clear_error() {
    let mut har = load("recover-429-rate-limited");
    har.log.pages.push(nemo_har::har::Page {
        started_date_time: String::new(),
        id: "page_x".into(),
        title: "nemo timeline".into(),
        page_timings: Default::default(),
        command: Some(PageCommand::Timeline),
        comment: None,
    });
    let replay = checked(&har);
    let text = replay.transcript_text();
    // The recording never created a session: the client's request for one
    // has no answer.
    let extra = &replay.differences[0];
    assert_eq!(extra.kind, DifferenceKind::Extra, "{}", replay.report());
    assert_eq!(extra.request, "POST /api/tasks/me/with-session/nemo_agent");
    assert!(
        text.contains(
            "replay: the recording has no answer for POST /api/tasks/me/with-session/nemo_agent"
        ),
        "{text}"
    );
}

/// Records a whole session against the simulator (anonymous token, upload,
/// edit, export with a claim link) and scans the saved file for secrets.
#[test]
fn no_secret_survives_a_recording() {
    const CLIENT_ID: &str = "0f7c2a9e-5d41-4b6e-8c2d-a1b2c3d4e5f6";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.har");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let events: Vec<Event> = rt.block_on(async {
        let mock = Arc::new(
            InProcess::new(MockConfig {
                agent: AgentBehaviour::calm(),
                start_unix_ms: Some(1_780_000_000_000),
                ..MockConfig::default()
            })
            .unwrap(),
        );
        let clock = TokioClock::new().starting_at(1_780_000_000_000);
        let recorder = Arc::new(Recorder::new(mock, InProcess::BASE_URL, Arc::new(clock)));
        let session = Session::new(Config {
            client_id: CLIENT_ID.into(),
            ..Config::default()
        });
        let mut driver = Driver::new(session, recorder.clone(), clock);
        let media = dir.path().join("city.mp4");
        std::fs::write(&media, nemo_mock::media::SAMPLE_MP4).unwrap();
        let part =
            nemo_core::api::file_part(&media, nemo_mock::media::SAMPLE_MP4.len() as u64).unwrap();
        let commands = [
            Command::Message(UserInput {
                text: "add lo-fi background music at 35%".into(),
                files: vec![part],
                urls: vec![],
            }),
            Command::Export(ExportOptions {
                download: true,
                out: Some(dir.path().join("out.mp4")),
                ..ExportOptions::default()
            }),
        ];
        let mut events = Vec::new();
        for c in commands {
            recorder.start_command(&c);
            driver
                .run(c, &mut |e: &Event| events.push(e.clone()))
                .await
                .unwrap();
        }
        recorder.save(&path).unwrap();
        events
    });
    let token = events
        .iter()
        .find_map(|e| match e {
            Event::TokenIssued { token, .. } => Some(token.expose().to_owned()),
            _ => None,
        })
        .expect("an anonymous token was issued");
    let claim = events
        .iter()
        .find_map(|e| match e {
            Event::Link {
                kind: LinkKind::Claim,
                url,
            } => Some(url.split("ct=").nth(1).unwrap().to_owned()),
            _ => None,
        })
        .expect("a claim link");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(token.len() > 10 && claim.len() > 10);
    assert!(!text.contains(&token), "the bearer token survived");
    assert!(!text.contains(&claim), "the claim token survived");
    assert!(!text.contains(CLIENT_ID), "the client id survived");
    assert!(text.contains("Bearer [redacted]"));
    assert!(text.contains(r#"\"token\":\"[redacted]\""#));
    assert!(text.contains(r#"\"claim_token\":\"[redacted]\""#));
    assert!(text.contains("\"_events\""), "stream chunks are recorded");
    assert!(!text.contains("ftyp"), "no media bytes are recorded");

    // The redacted recording replays and checks.
    let har = Har::load(&path).unwrap();
    let replay = checked(&har);
    assert!(replay.passed(), "{}", replay.report());
    assert!(replay
        .transcript
        .iter()
        .any(|l| l == "link: https://nemovideo.com/workspace/claim?ct=%5Bredacted%5D"));
}

#[test]
fn har_documents_round_trip() {
    for name in FIXTURES.iter().copied().chain(["browser-export"]) {
        let har = load(name);
        let again = Har::from_json(&har.to_json()).unwrap();
        assert_eq!(har, again, "{name}");
    }
    // Tolerant reading: unknown fields ignored, optional fields missing.
    let minimal = r#"{"log": {"creator": {"name": "x", "version": "1"}, "_x": 1,
        "entries": [{"request": {"method": "GET", "url": "https://h/api/credits/balance/simple",
        "_priority": "High"}, "response": {"status": 200, "content": {"text": "{}"}}}]}}"#;
    let har = Har::from_json(minimal).unwrap();
    assert_eq!(har.log.version, "1.2");
    assert_eq!(har.log.entries[0].request.http_version, "HTTP/1.1");
    let again = Har::from_json(&har.to_json()).unwrap();
    assert_eq!(har, again);
    // A corrupt file is a clear error, not a panic.
    for bad in ["", "{", "[]", r#"{"log": {"entries": [{"response": {}}]}}"#] {
        match Har::from_json(bad) {
            Err(HarError::Parse(m)) => assert!(!m.is_empty()),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    match Har::load(sessions_dir().join("no-such.har")) {
        Err(e @ HarError::Io { .. }) => assert!(e.to_string().contains("no-such.har")),
        other => panic!("{other:?}"),
    }
    // A log with nothing to replay.
    assert!(matches!(
        replay_blocking(&Har::new(), &ReplayOptions::default()),
        Err(HarError::Empty)
    ));
}

#[test]
fn a_browser_export_replays() {
    let har = load("browser-export");
    assert!(har.log.pages.iter().all(|p| p.command.is_none()));
    let turns: Vec<String> = nemo_har::turns(&har).into_iter().map(|t| t.title).collect();
    assert_eq!(
        turns,
        [
            "nemo upload https://cdn.example.com/clips/harbour.mp4",
            "add upbeat background music at 40%",
            "nemo export"
        ]
    );
    let replay = checked(&har);
    // The web app does not read the state before a render; the client does
    // (answered by the last state read). Nothing else differs.
    let report = replay.report();
    assert_eq!(replay.differences.len(), 1, "{report}");
    assert_eq!(
        replay.differences[0].kind,
        DifferenceKind::Extra,
        "{report}"
    );
    assert!(
        replay.differences[0].request.starts_with("GET /api/state/"),
        "{report}"
    );
    insta::assert_snapshot!("browser-export", replay.transcript_text());
}
