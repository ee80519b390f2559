//! A hostile or broken server, one misbehaviour a test: what comes from the
//! network is never trusted as a path, a URL segment or a header, a render is
//! forgotten only when the API itself says so more than once, and a render
//! that cannot be recorded is never submitted.

mod support;

use nemo_core::api::file_part;
use nemo_core::error::ErrorKind;
use nemo_core::machine::{Command, Config, Event, ExportOptions, Mode, RenderOutcome};
use nemo_core::transport::TransportErrorKind;
use nemo_core::wire::{Endpoint, Response};
use serde_json::json;
use support::*;

fn harness_with_clip() -> Harness {
    let mut h = Harness::new(Config::default());
    let part = file_part("/media/city.mp4", 1_000_000).unwrap();
    assert!(h.run(Command::Upload {
        files: vec![part],
        urls: vec![]
    }));
    h
}

fn export() -> Command {
    Command::Export(ExportOptions {
        download: true,
        ..ExportOptions::default()
    })
}

fn failure(h: &Harness) -> Option<(ErrorKind, String)> {
    h.events.iter().rev().find_map(|e| match e {
        Event::Finished { result: Err(e), .. } => Some((e.kind, e.message.clone())),
        _ => None,
    })
}

fn requests(h: &Harness, endpoint_path: &str) -> usize {
    h.transcript
        .lines()
        .filter(|l| l.contains('→') && l.contains(endpoint_path))
        .count()
}

fn html(status: u16, body: &str) -> Reply {
    Reply::Response(Response {
        status,
        headers: vec![("content-type".into(), "text/html".into())],
        body: body.as_bytes().to_vec(),
    })
}

#[test]
fn one_html_404_to_a_status_poll_does_not_forget_the_render() {
    let mut h = harness_with_clip();
    h.backend.fault(
        Endpoint::RenderStatus,
        html(404, "<html><body>Not Found</body></html>"),
    );
    assert!(h.run(export()), "{}", h.transcript);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Downloaded { .. })));
    assert!(!h.events.iter().any(|e| matches!(
        e,
        Event::RenderEnded {
            outcome: RenderOutcome::Failed,
            ..
        }
    )));
}

#[test]
fn one_json_404_is_asked_again() {
    let mut h = harness_with_clip();
    h.backend.fault(
        Endpoint::RenderStatus,
        api_err(404, 404, "render not found"),
    );
    assert!(h.run(export()), "{}", h.transcript);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Downloaded { .. })));
}

#[test]
fn a_render_is_forgotten_only_after_the_api_says_again_and_again_that_it_is_unknown() {
    let mut h = Harness::new(Config::default());
    // Unknown to the backend: every status poll is the API's 404.
    assert!(!h.run(Command::ResumeRender {
        id: "render_1".into(),
        options: ExportOptions {
            download: true,
            ..ExportOptions::default()
        },
    }));
    assert!(requests(&h, "/api/render/proxy/lambda/render_1") >= 3);
    assert!(
        h.now.since_origin() >= std::time::Duration::from_secs(30),
        "over at least 30 s:\n{}",
        h.transcript
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::RenderEnded {
            outcome: RenderOutcome::Failed,
            ..
        }
    )));
    assert_eq!(failure(&h).unwrap().0, ErrorKind::RenderFailed);
}

#[test]
fn a_gateways_json_404s_never_forget_a_render() {
    let mut h = Harness::new(Config::default());
    for _ in 0..2_000 {
        h.backend.fault(
            Endpoint::RenderStatus,
            Reply::Response(Response::json(404, &json!({"message": "Not Found"}))),
        );
    }
    assert!(!h.run(Command::ResumeRender {
        id: "render_1".into(),
        options: ExportOptions::default(),
    }));
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::RenderEnded { .. })));
    assert_eq!(failure(&h).unwrap().0, ErrorKind::Unconfirmed);
}

#[test]
fn html_404s_never_forget_a_render() {
    let mut h = Harness::new(Config::default());
    // More than fit in the render's time limit.
    for _ in 0..2_000 {
        h.backend
            .fault(Endpoint::RenderStatus, html(404, "<h1>Not Found</h1>"));
    }
    let ok = h.run(Command::ResumeRender {
        id: "render_1".into(),
        options: ExportOptions::default(),
    });
    assert!(!ok);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::RenderEnded { .. })),
        "the job stays recorded:\n{}",
        h.transcript
    );
}

#[test]
fn a_server_render_id_that_is_a_path_is_never_followed() {
    for bad in [
        "../../api/credits/balance/simple",
        "/etc/passwd",
        "..",
        "a b",
    ] {
        let mut h = harness_with_clip();
        h.backend.fault(
            Endpoint::RenderSubmit,
            Reply::Response(Response::json(
                200,
                &json!({"success":true,"data":{"id": bad,"status":"pending","progress":5}}),
            )),
        );
        assert!(!h.run(export()));
        let (kind, message) = failure(&h).unwrap();
        assert_eq!(kind, ErrorKind::Protocol, "{message}");
        assert!(
            !h.transcript.contains("→ GET /api/render/proxy/lambda/."),
            "{}",
            h.transcript
        );
        assert!(!h
            .events
            .iter()
            .any(|e| matches!(e, Event::Downloaded { .. })));
    }
}

#[test]
fn a_journal_id_that_is_a_path_is_refused_before_anything_is_sent() {
    for bad in ["../../x", "/tmp/x", "render_1/../../credits", ""] {
        let mut h = Harness::new(Config::default());
        assert!(!h.run(Command::ResumeRender {
            id: bad.into(),
            options: ExportOptions::default(),
        }));
        assert_eq!(h.transmits, 0, "{bad}: {}", h.transcript);
        assert_eq!(failure(&h).unwrap().0, ErrorKind::BadInput);
        let mut h = Harness::new(Config::default());
        assert!(!h.run(Command::CancelRender { id: bad.into() }));
        assert_eq!(h.transmits, 0);
    }
}

#[test]
fn ids_in_urls_are_percent_encoded() {
    let api = nemo_core::api::Api::new(Default::default());
    let token = nemo_core::secret::Secret::new("t");
    let req = api.render_status(&token, "a/../b?c#d");
    assert_eq!(
        req.target.to_string(),
        "/api/render/proxy/lambda/a%2F..%2Fb%3Fc%23d"
    );
    let req = api.state(&token, "../x");
    assert_eq!(
        req.target.to_string(),
        "/api/state/nemo_agent/me/..%2Fx/latest"
    );
}

#[test]
fn an_unusable_token_is_never_kept_or_sent() {
    let mut h = Harness::new(Config::default());
    h.backend.fault(
        Endpoint::AnonymousToken,
        api_ok(json!({"token":"nmv_usr bad\r\nX-Evil: 1","user_id":"anon_1"})),
    );
    assert!(!h.run(Command::Credits));
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::TokenIssued { .. })));
    // Asking again would be refused (one token per client id per 7 days):
    // the answer is a clear error, and the bad token was never sent.
    assert_eq!(requests(&h, "/api/credits"), 0);
    let (kind, message) = failure(&h).unwrap();
    assert_eq!(kind, ErrorKind::AuthFailed);
    assert!(message.contains("cannot be used"), "{message}");
    assert!(!message.contains("nmv_usr"), "{message}");
    // Which token failed is data (a frontend names its own way to give one).
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::Finished { result: Err(e), .. }
            if e.detail == Some(nemo_core::error::ErrorDetail::FreeTokenRefused)
    )));
}

#[test]
fn a_session_id_that_is_a_path_is_never_used() {
    let mut h = Harness::new(Config::default());
    for _ in 0..10 {
        h.backend.fault(
            Endpoint::CreateSession,
            api_ok(json!({"task_id":"task_1","session_id":"../../api/credits"})),
        );
    }
    assert!(!h.run(Command::Timeline));
    assert!(!h.transcript.contains("/me/../"), "{}", h.transcript);
    assert!(!h.transcript.contains("..%2F"), "{}", h.transcript);
    assert_eq!(failure(&h).unwrap().0, ErrorKind::Protocol);
}

#[test]
fn a_broken_download_is_not_restarted_from_zero_by_the_core() {
    let mut h = harness_with_clip();
    for _ in 0..10 {
        h.backend.fault(
            Endpoint::Download,
            Reply::Download(Err(TransportErrorKind::Interrupted)),
        );
    }
    assert!(!h.run(export()));
    // The output URL once, the fallback endpoint once; the transport does
    // its own bounded resuming within each.
    let downloads = h
        .transcript
        .lines()
        .filter(|l| l.contains("→ GET") && (l.contains(".mp4") || l.contains("/download")))
        .count();
    assert_eq!(downloads, 2, "{}", h.transcript);
    // The render is finished on the server and stays recorded.
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::RenderEnded { .. })));
}

#[test]
fn a_render_that_cannot_be_recorded_is_never_submitted() {
    let mut h = harness_with_clip();
    let id = h.session.command(h.now, export());
    let mut submitted = false;
    let mut result = None;
    for _ in 0..10_000 {
        while let Some(ev) = h.session.poll_event() {
            if let Event::RenderStarting { id: render, .. } = &ev {
                h.session
                    .handle_journal_failure(h.now, render, "the disk is full");
            }
            if let Event::Finished { command, result: r } = &ev {
                if *command == id {
                    result = Some(r.clone());
                }
            }
        }
        if result.is_some() {
            break;
        }
        if let Some(tx) = h.session.poll_transmit() {
            submitted |= tx.request.endpoint == Endpoint::RenderSubmit;
            let reply = h.backend.answer_public(h.now, &tx.request);
            match reply {
                Reply::Response(r) if !matches!(tx.mode, Mode::Download { .. }) => {
                    h.session.handle_response(h.now, tx.id, r)
                }
                Reply::Download(Ok(o)) => h.session.handle_download(h.now, tx.id, Ok(o)),
                other => panic!("unexpected {other:?}"),
            }
            continue;
        }
        match h.session.poll_timeout() {
            Some(t) => {
                h.now = h.now.max(t);
                h.session.handle_timeout(h.now);
            }
            None => break,
        }
    }
    assert!(!submitted, "the render request never left");
    let err = result.expect("the command finished").unwrap_err();
    assert!(err.message.contains("the disk is full"), "{}", err.message);
}
