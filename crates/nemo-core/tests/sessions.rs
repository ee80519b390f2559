//! Whole scripted sessions, driven in virtual time, as transcripts.
//!
//! Each scenario runs the real session machine against a scripted backend;
//! a 10-minute stream of keep-alives takes microseconds. The transcript of
//! requests and user-facing events is snapshot-tested, and each test also
//! asserts the invariants that matter (no message sent twice, no job lost).

mod support;

use std::time::Duration;

use nemo_core::api::file_part;
use nemo_core::error::{ErrorDetail, ErrorKind};
use nemo_core::machine::{Command, Config, Credential, Event, ExportOptions, RenderOutcome};
use nemo_core::route::UserInput;
use nemo_core::secret::Secret;
use nemo_core::transport::TransportErrorKind;
use nemo_core::wire::Endpoint;
use serde_json::json;
use support::*;

fn harness() -> Harness {
    Harness::new(Config::default())
}

fn upload_clip(h: &mut Harness) {
    let part = file_part("/media/city.mp4", 1_000_000).unwrap();
    assert!(h.run(Command::Upload {
        files: vec![part],
        urls: vec![]
    }));
}

fn error_kind(h: &Harness) -> Option<ErrorKind> {
    h.events.iter().rev().find_map(|e| match e {
        Event::Finished { result: Err(e), .. } => Some(e.kind),
        _ => None,
    })
}

#[test]
fn connect_upload_edit_timeline() {
    let mut h = harness();
    upload_clip(&mut h);
    let mut chunks = vec![(Duration::from_millis(200), b": ping\n\n".to_vec())];
    chunks.push((Duration::from_secs(2), tool_events("add_bgm")));
    chunks.push((
        Duration::from_secs(3),
        text_event("I added lo-fi music at 35% ", true),
    ));
    chunks.push((
        Duration::from_secs(3),
        text_event("and the title \"Urban Dreams\".", true),
    ));
    chunks.push((
        Duration::from_secs(4),
        text_event(
            "I added lo-fi music at 35% and the title \"Urban Dreams\". Click the Export button to download your video.",
            false,
        ),
    ));
    chunks.push((
        Duration::from_secs(5),
        text_event("I encountered a temporary issue. Please try again.", false),
    ));
    h.backend.sse.push_back(Reply::Stream {
        chunks,
        end: Ok(()),
        draft_after: Some(draft_full()),
    });
    assert!(h.run(Command::Message(UserInput::text(
        "add lo-fi BGM at 35% and a title \"Urban Dreams\""
    ))));
    assert!(h.run(Command::Timeline));
    let texts: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AgentText { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["I added lo-fi music at 35% and the title \"Urban Dreams\"."],
        "the text is shown once, without the GUI sentence or the trailing issue"
    );
    assert_eq!(h.backend.run_sse_bodies.len(), 1);
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn silent_edit_reports_the_change() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.sse.push_back(Reply::Stream {
        chunks: vec![
            (Duration::from_secs(1), tool_events("add_bgm")),
            (Duration::from_secs(2), KEEPALIVE.to_vec()),
        ],
        end: Ok(()),
        draft_after: Some(draft_full()),
    });
    assert!(h.run(Command::Message(UserInput::text(
        "add lo-fi BGM at 35% and a title"
    ))));
    assert!(h.events.iter().any(|e| matches!(e, Event::Change { summary } if summary.contains("added BGM: Lo-fi (0-10s, 35%)"))));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn token_expiry_gets_a_new_token_with_the_same_client_id() {
    let mut h = harness();
    assert!(h.run(Command::Connect));
    h.backend
        .fault(Endpoint::Credits, api_err(200, 1001, "token expired"));
    assert!(h.run(Command::Credits));
    assert_eq!(h.backend.tokens, 2);
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn a_user_token_is_never_replaced() {
    let mut h = Harness::new(Config {
        credential: Credential::User(Secret::new("nmv_usr_mine")),
        ..Config::default()
    });
    h.backend
        .fault(Endpoint::CreateSession, api_err(200, 1001, "token invalid"));
    assert!(!h.run(Command::Connect));
    assert_eq!(error_kind(&h), Some(ErrorKind::AuthFailed));
    assert_eq!(h.backend.tokens, 0, "no anonymous token was requested");
    // Sticky: the next command fails the same way without sending anything.
    let before = h.transmits;
    assert!(!h.run(Command::Credits));
    assert_eq!(h.transmits, before);
    insta::assert_snapshot!(h.transcript);
}

fn invalid_token_401() -> Reply {
    // FastAPI's answer: a status and a detail, no API code.
    Reply::Response(nemo_core::wire::Response::json(
        401,
        &json!({"detail": "Invalid token"}),
    ))
}

#[test]
fn a_401_without_a_code_gets_a_new_free_token_once() {
    let mut h = harness();
    assert!(h.run(Command::Connect));
    h.backend.fault(Endpoint::Credits, invalid_token_401());
    assert!(h.run(Command::Credits), "{}", h.transcript);
    assert_eq!(h.backend.tokens, 2, "{}", h.transcript);
    // Refused again and again: one new token, then a clear error.
    for _ in 0..5 {
        h.backend.fault(Endpoint::Credits, invalid_token_401());
    }
    assert!(!h.run(Command::Credits));
    assert_eq!(h.backend.tokens, 3, "{}", h.transcript);
    assert_eq!(error_kind(&h), Some(ErrorKind::AuthFailed));
}

#[test]
fn a_401_without_a_code_on_a_users_token_says_the_token_was_refused() {
    let mut h = Harness::new(Config {
        credential: Credential::User(Secret::new("nmv_usr_mine")),
        ..Config::default()
    });
    h.backend.fault(Endpoint::Credits, invalid_token_401());
    assert!(!h.run(Command::Credits));
    assert_eq!(h.backend.tokens, 0, "no anonymous token was requested");
    let err = h
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Finished { result: Err(e), .. } => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(err.kind, ErrorKind::AuthFailed);
    assert_eq!(err.detail, Some(ErrorDetail::UserTokenRejected));
    assert!(err.message.contains("token"), "{}", err.message);
}

#[test]
fn lost_session_starts_a_new_one() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend
        .fault(Endpoint::RunSse, api_err(404, 1002, "session not found"));
    assert!(h.run(Command::Message(UserInput::text("add a title \"Hello\""))));
    assert_eq!(h.backend.sessions, 2);
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn rate_limit_waits_retry_after_then_retries_once() {
    let mut h = harness();
    assert!(h.run(Command::Connect));
    h.backend.fault(
        Endpoint::Credits,
        with_header(api_err(429, 429, "slow down"), "retry-after", "5"),
    );
    assert!(h.run(Command::Credits));
    assert!(
        h.transcript
            .contains("[   5.000s] → GET /api/credits/balance/simple"),
        "{}",
        h.transcript
    );
    h.backend
        .fault(Endpoint::Credits, api_err(429, 429, "slow down"));
    h.backend
        .fault(Endpoint::Credits, api_err(429, 429, "slow down"));
    assert!(!h.run(Command::Credits));
    assert_eq!(error_kind(&h), Some(ErrorKind::RateLimited));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn dropped_stream_is_recovered_by_polling_state_never_resent() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.sse.push_back(Reply::Stream {
        chunks: vec![(Duration::from_secs(1), tool_events("add_title"))],
        end: Err(TransportErrorKind::Interrupted),
        draft_after: None,
    });
    // The edit lands on the server only later: the first check sees nothing.
    h.backend.fault(
        Endpoint::State,
        api_ok(json!({"state":{"draft": draft_video()}})),
    );
    h.backend.fault(
        Endpoint::State,
        api_ok(json!({"state":{"draft": draft_video()}})),
    );
    h.backend.draft = Some(draft_full());
    assert!(h.run(Command::Message(UserInput::text(
        "add lo-fi BGM and a title"
    ))));
    assert_eq!(h.backend.run_sse_bodies.len(), 1, "never re-sent");
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn keepalive_only_stream_times_out_and_fails_after_five_checks() {
    let mut h = harness();
    upload_clip(&mut h);
    let chunks = (1..=700)
        .map(|s| (Duration::from_secs(s), KEEPALIVE.to_vec()))
        .collect();
    h.backend.sse.push_back(Reply::Stream {
        chunks,
        end: Ok(()),
        draft_after: None,
    });
    assert!(!h.run(Command::Message(UserInput::text("make it cinematic"))));
    assert_eq!(error_kind(&h), Some(ErrorKind::Unconfirmed));
    let still = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::StillWorking { .. }))
        .count();
    assert_eq!(still, 4, "every two minutes during the 10-minute wait");
    assert_eq!(h.backend.run_sse_bodies.len(), 1);
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn export_polls_downloads_and_links() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.render_duration = Duration::from_secs(45);
    assert!(h.run(Command::Export(ExportOptions {
        render_id: Some("render_1795262134520".into()),
        download: true,
        out: Some("out/final.mp4".into()),
        overwrite: false,
    })));
    // The job was journaled before it was sent and released after download.
    let starting = h
        .events
        .iter()
        .position(|e| matches!(e, Event::RenderStarting { .. }))
        .unwrap();
    let ended = h
        .events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::RenderEnded {
                    outcome: RenderOutcome::Downloaded(_),
                    ..
                }
            )
        })
        .unwrap();
    assert!(starting < ended);
    let polls = h
        .transcript
        .matches("GET /api/render/proxy/lambda/")
        .count();
    assert!(polls <= 8, "{polls} status requests");
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn failed_render_is_reported_and_released() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.render_duration = Duration::from_secs(20);
    h.backend.fault(
        Endpoint::RenderStatus,
        Reply::Response(nemo_core::wire::Response::json(
            200,
            &json!({"status":"failed","error":"encoder crashed"}),
        )),
    );
    assert!(!h.run(Command::Export(ExportOptions {
        render_id: Some("render_7".into()),
        download: true,
        ..ExportOptions::default()
    })));
    assert_eq!(error_kind(&h), Some(ErrorKind::RenderFailed));
    insta::assert_snapshot!(h.transcript);
}

/// A status poll answered on HTTP 200 with an error in the body — a 404
/// repeated there, JSend's `fail` or `error` — is the call failing, not the
/// render: asked again, and the render followed to its end. (Read as the
/// API's own 404, it made the client forget the render at once.)
#[test]
fn an_error_in_the_body_of_one_status_poll_is_waited_out() {
    for body in [
        json!({"status": 404, "message": "Not Found"}),
        json!({"status": "fail", "message": "bad request"}),
        json!({"status": "error", "message": "upstream request timeout"}),
    ] {
        let mut h = harness();
        upload_clip(&mut h);
        h.backend.render_duration = Duration::from_secs(20);
        h.backend.fault(
            Endpoint::RenderStatus,
            Reply::Response(nemo_core::wire::Response::json(200, &body)),
        );
        assert!(
            h.run(Command::Export(ExportOptions {
                render_id: Some("render_7".into()),
                download: true,
                ..ExportOptions::default()
            })),
            "{body}: {}",
            h.transcript
        );
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e, Event::Downloaded { id, .. } if id == "render_7")));
    }
}

/// An upload refused on HTTP 200 with JSend's `error`: the message says
/// what came (HTTP 200), not a 500 that never was.
#[test]
fn a_jsend_error_is_reported_with_the_status_that_came() {
    let mut h = harness();
    h.backend.fault(
        Endpoint::Upload,
        Reply::Response(nemo_core::wire::Response::json(
            200,
            &json!({"status": "error", "message": "Unsupported file type"}),
        )),
    );
    assert!(!h.run(Command::Upload {
        files: vec![file_part("/media/a.mp4", 1).unwrap()],
        urls: vec![],
    }));
    let err = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::Finished { result: Err(e), .. } => Some(e.clone()),
            _ => None,
        })
        .expect("an error");
    assert!(err.message.contains("Unsupported file type"), "{err:?}");
    assert!(!err.message.contains("500"), "{err:?}");
}

#[test]
fn out_of_credits_gives_a_registration_link() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend
        .fault(Endpoint::RunSse, api_err(402, 2001, "insufficient credits"));
    assert!(!h.run(Command::Message(UserInput::text("add a title"))));
    assert_eq!(error_kind(&h), Some(ErrorKind::OutOfCredits));
    assert!(h
        .transcript
        .contains("https://nemovideo.com/register?bind=anon_42"));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn export_with_nothing_to_export_sends_no_render() {
    let mut h = harness();
    assert!(h.run(Command::Connect));
    assert!(!h.run(Command::Message(UserInput::text("导出"))));
    assert_eq!(error_kind(&h), Some(ErrorKind::NothingToExport));
    assert!(!h.run(Command::Export(ExportOptions {
        download: true,
        ..ExportOptions::default()
    })));
    assert_eq!(error_kind(&h), Some(ErrorKind::NothingToExport));
    assert!(!h.transcript.contains("render/proxy/lambda"));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn plan_blocked_export() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.fault(
        Endpoint::RenderSubmit,
        Reply::Response(nemo_core::wire::Response::json(
            402,
            &json!({"detail":"Payment Required"}),
        )),
    );
    assert!(!h.run(Command::Export(ExportOptions {
        render_id: Some("render_9".into()),
        download: true,
        ..ExportOptions::default()
    })));
    assert_eq!(error_kind(&h), Some(ErrorKind::PlanBlocked));
    // The job never existed: it leaves the journal.
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::RenderEnded {
            outcome: RenderOutcome::Rejected,
            ..
        }
    )));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn quick_edit_in_one_message() {
    let mut h = harness();
    h.backend.sse.push_back(Reply::Stream {
        chunks: vec![(
            Duration::from_secs(3),
            text_event("Converted to 1080p MP4.", false),
        )],
        end: Ok(()),
        draft_after: Some(draft_video()),
    });
    assert!(h.run(Command::Message(UserInput::text(
        "download this video https://www.youtube.com/watch?v=abc in MP4 at the highest resolution"
    ))));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Downloaded { .. })));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn server_errors_back_off_then_succeed() {
    let mut h = harness();
    assert!(h.run(Command::Connect));
    h.backend.fault(
        Endpoint::State,
        Reply::Response(nemo_core::wire::Response {
            status: 503,
            headers: vec![],
            body: b"<html>busy</html>".to_vec(),
        }),
    );
    h.backend
        .fault(Endpoint::State, Reply::Error(TransportErrorKind::Timeout));
    assert!(h.run(Command::Timeline));
    insta::assert_snapshot!(h.transcript);
}

/// A gateway's error in a 2xx body on the submission (the HTTP status
/// repeated, `{"status":504}`, or JSend's `error`): the submission may have
/// arrived, so it is sent again under the same id and the first render is
/// followed; never a second render under another id.
#[test]
fn a_gateway_error_in_the_body_of_a_submission_is_not_a_refusal() {
    for body in [
        json!({"status": 504, "message": "gateway timeout"}),
        json!({"status": "error", "message": "upstream request timeout"}),
    ] {
        let mut h = harness();
        upload_clip(&mut h);
        h.backend.fault(
            Endpoint::RenderSubmit,
            Reply::Response(nemo_core::wire::Response::json(200, &body)),
        );
        h.backend.renders.insert(
            "render_5".into(),
            FakeRender {
                started: h.now,
                duration: Duration::from_secs(20),
                fail: false,
            },
        );
        assert!(
            h.run(Command::Export(ExportOptions {
                render_id: Some("render_5".into()),
                download: true,
                ..ExportOptions::default()
            })),
            "{body}: {}",
            h.transcript
        );
        assert!(
            !h.transcript.contains("render_5_2"),
            "{body}: {}",
            h.transcript
        );
        assert!(
            !h.events.iter().any(|e| matches!(
                e,
                Event::RenderEnded {
                    outcome: RenderOutcome::Rejected,
                    ..
                }
            )),
            "{body}"
        );
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e, Event::Downloaded { id, .. } if id == "render_5")));
    }
}

#[test]
fn a_submission_that_may_have_arrived_is_followed_not_duplicated() {
    let mut h = harness();
    upload_clip(&mut h);
    // The first submission reaches the server but its answer is lost; the
    // retry is refused as a duplicate: the client follows the first job.
    h.backend.fault(
        Endpoint::RenderSubmit,
        Reply::Error(TransportErrorKind::Interrupted),
    );
    h.backend.fault(
        Endpoint::RenderSubmit,
        Reply::Response(nemo_core::wire::Response::json(
            200,
            &json!({"success":false,"error":"duplicate render id"}),
        )),
    );
    h.backend.renders.insert(
        "render_5".into(),
        FakeRender {
            started: h.now,
            duration: Duration::from_secs(20),
            fail: false,
        },
    );
    assert!(h.run(Command::Export(ExportOptions {
        render_id: Some("render_5".into()),
        download: true,
        ..ExportOptions::default()
    })));
    assert_eq!(
        h.transcript
            .matches("POST /api/render/proxy/lambda\n")
            .count(),
        2
    );
    assert!(!h.events.iter().any(|e| matches!(
        e,
        Event::RenderEnded {
            outcome: RenderOutcome::Rejected,
            ..
        }
    )));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Downloaded { id, .. } if id == "render_5")));
}

#[test]
fn a_submission_lost_for_good_stays_in_the_journal() {
    let mut h = harness();
    upload_clip(&mut h);
    for _ in 0..5 {
        h.backend.fault(
            Endpoint::RenderSubmit,
            Reply::Error(TransportErrorKind::Timeout),
        );
    }
    assert!(!h.run(Command::Export(ExportOptions {
        render_id: Some("render_6".into()),
        download: true,
        ..ExportOptions::default()
    })));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::RenderEnded { .. })),
        "the job may exist on the server: it must stay journaled"
    );
}

#[test]
fn a_server_rejecting_every_token_does_not_loop() {
    let mut h = harness();
    for _ in 0..50 {
        h.backend
            .fault(Endpoint::CreateSession, api_err(200, 1001, "token invalid"));
    }
    assert!(!h.run(Command::Connect));
    assert!(
        h.transmits <= 6,
        "{} requests:\n{}",
        h.transmits,
        h.transcript
    );
    assert_eq!(error_kind(&h), Some(ErrorKind::AuthFailed));
}

#[test]
fn a_stream_cut_after_a_complete_answer_needs_no_recovery() {
    let mut h = harness();
    upload_clip(&mut h);
    let mut cut = text_event("Here is what I can do for this clip.", false);
    cut.extend_from_slice(b"data: {\"content\":");
    h.backend.sse.push_back(Reply::Stream {
        chunks: vec![(Duration::from_secs(1), cut)],
        end: Ok(()),
        draft_after: None,
    });
    assert!(h.run(Command::Message(UserInput::text("what can you do?"))));
    assert!(
        h.now < nemo_core::time::Instant::from_origin(Duration::from_secs(10)),
        "no 30 s recovery wait"
    );
}

#[test]
fn a_failed_claim_link_does_not_fail_the_export() {
    let mut h = harness();
    upload_clip(&mut h);
    for _ in 0..5 {
        h.backend.fault(
            Endpoint::ClaimToken,
            Reply::Error(TransportErrorKind::Timeout),
        );
    }
    assert!(h.run(Command::Export(ExportOptions {
        render_id: Some("render_8".into()),
        download: true,
        ..ExportOptions::default()
    })));
}

#[test]
fn server_text_never_echoes_the_token() {
    let mut h = harness();
    assert!(h.run(Command::Connect));
    h.backend.fault(
        Endpoint::Credits,
        Reply::Response(nemo_core::wire::Response::json(
            403,
            &json!({"detail":"token nmv_usr_test1 is not allowed here"}),
        )),
    );
    assert!(!h.run(Command::Credits));
    assert!(!h.transcript.contains("nmv_usr_test1"), "{}", h.transcript);
}

#[test]
fn each_recovery_keeps_its_own_budget() {
    // A token refresh and a rate-limit wait do not eat into the back-off
    // retries that follow.
    let mut h = harness();
    assert!(h.run(Command::Connect));
    h.backend
        .fault(Endpoint::Credits, api_err(200, 1001, "token expired"));
    h.backend.fault(
        Endpoint::Credits,
        with_header(api_err(429, 429, "slow down"), "retry-after", "1"),
    );
    for _ in 0..3 {
        h.backend.fault(
            Endpoint::Credits,
            Reply::Response(nemo_core::wire::Response {
                status: 503,
                headers: vec![],
                body: b"busy".to_vec(),
            }),
        );
    }
    assert!(h.run(Command::Credits), "{}", h.transcript);
}

fn last_error(h: &Harness) -> nemo_core::error::NemoError {
    h.events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Finished { result: Err(e), .. } => Some(e.clone()),
            _ => None,
        })
        .expect("an error")
}

/// Out of credits: the registration link is reported once — in the error's
/// `link` (shown by its `Display`), neither in its message nor as a separate
/// `Event::Link` — and the amounts the server named are data.
#[test]
fn the_registration_link_is_reported_once() {
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.fault(
        Endpoint::RunSse,
        api_err(402, 2001, "Insufficient credits: this needs 5, 2 available"),
    );
    assert!(!h.run(Command::Message(UserInput::text("add a title"))));
    let link = "https://nemovideo.com/register?bind=anon_42";
    let err = last_error(&h);
    assert_eq!(err.kind, ErrorKind::OutOfCredits);
    assert_eq!(err.link.as_deref(), Some(link));
    assert!(!err.message.contains(link), "{}", err.message);
    assert_eq!(err.to_string().matches(link).count(), 1, "{err}");
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::Link { url, .. } if url == link)),
        "the link came twice:\n{}",
        h.transcript
    );
    assert_eq!(
        err.detail,
        Some(ErrorDetail::OutOfCredits {
            needed: Some(5.0),
            available: Some(2.0)
        })
    );
    let object = nemo_core::ndjson::error_to_json(&err);
    assert_eq!(object["link"], link);
    assert_eq!(object["detail"]["kind"], "out_of_credits");
}

/// The core says what happened; which command, flag or variable helps is
/// the frontend's to say, from the error's detail.
#[test]
fn messages_name_no_command_and_errors_carry_data() {
    let advice = ["nemo ", "NEMO_TOKEN", "--file", "--url", "--new-session"];
    let frontend_neutral = |err: &nemo_core::error::NemoError| {
        for word in advice {
            assert!(!err.message.contains(word), "{word} in {:?}", err.message);
        }
    };

    // A rejected user token.
    let mut h = Harness::new(Config {
        credential: Credential::User(Secret::new("nmv_usr_bad")),
        ..Config::default()
    });
    h.backend
        .fault(Endpoint::CreateSession, api_err(200, 1001, "token invalid"));
    assert!(!h.run(Command::Connect));
    let err = last_error(&h);
    frontend_neutral(&err);
    assert_eq!(err.detail, Some(ErrorDetail::UserTokenRejected));

    // Nothing to upload.
    let mut h = harness();
    assert!(!h.run(Command::Message(UserInput::text("upload"))));
    let err = last_error(&h);
    frontend_neutral(&err);
    assert_eq!(err.detail, Some(ErrorDetail::NothingToUpload));

    // A render left running by an abort.
    let mut h = harness();
    upload_clip(&mut h);
    h.backend.draft = Some(draft_video());
    h.backend.render_duration = Duration::from_secs(3600);
    let id = h.session.command(
        h.now,
        Command::Export(ExportOptions {
            render_id: Some("render_7".into()),
            download: true,
            ..ExportOptions::default()
        }),
    );
    for _ in 0..20 {
        while h.session.poll_event().is_some() {}
        if let Some(tx) = h.session.poll_transmit() {
            let reply = h.backend.answer_public(h.now, &tx.request);
            if let Reply::Response(r) = reply {
                h.session.handle_response(h.now, tx.id, r);
            }
        }
    }
    h.session.abort(h.now);
    let err = std::iter::from_fn(|| h.session.poll_event())
        .find_map(|e| match e {
            Event::Finished {
                command,
                result: Err(e),
            } if command == id => Some(e),
            _ => None,
        })
        .expect("the export ends");
    frontend_neutral(&err);
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert_eq!(err.render_id(), Some("render_7"));
    assert!(matches!(
        err.detail,
        Some(ErrorDetail::RenderRunning { .. })
    ));

    // An unsupported file.
    let err = nemo_core::api::file_part("/x/notes.txt", 10).unwrap_err();
    match err.detail {
        Some(ErrorDetail::UnsupportedFile { accepted }) => {
            assert!(accepted.iter().any(|e| e == "mp4"));
            assert!(accepted.iter().any(|e| e == "mp3"));
        }
        other => panic!("{other:?}"),
    }
}
