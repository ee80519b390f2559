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

/// Runs `command` against a server that takes `takes` to fail each request
/// with `kind`, the machine's deadlines racing every call as a driver's do.
/// Returns the requests sent, the time from the command to its end, and
/// the error.
fn run_slow(
    h: &mut Harness,
    command: Command,
    takes: std::time::Duration,
    kind: TransportErrorKind,
) -> (usize, std::time::Duration, nemo_core::error::NemoError) {
    use nemo_core::transport::TransportError;
    let start = h.now;
    let id = h.session.command(h.now, command);
    let mut sent = 0;
    for _ in 0..1_000 {
        while let Some(ev) = h.session.poll_event() {
            if let Event::Finished { command, result } = &ev {
                if *command == id {
                    let err = result.clone().expect_err("the command fails");
                    return (sent, h.now - start, err);
                }
            }
        }
        if let Some(tx) = h.session.poll_transmit() {
            sent += 1;
            let answer_at = h.now + takes;
            if let Some(t) = h.session.poll_timeout().filter(|t| *t < answer_at) {
                h.now = h.now.max(t);
                h.session.handle_timeout(h.now);
            }
            if h.session.is_in_flight(tx.id) {
                h.now = answer_at;
                let message = match kind {
                    TransportErrorKind::Timeout => format!(
                        "credits GET http://127.0.0.1:9/api/credits/balance/simple: no complete answer within {} s",
                        takes.as_secs()
                    ),
                    _ => "credits GET http://127.0.0.1:9/api/credits/balance/simple: the connection broke".into(),
                };
                h.session
                    .handle_transport_error(h.now, tx.id, TransportError::new(kind, message));
            }
            continue;
        }
        match h.session.poll_timeout() {
            Some(t) => {
                h.now = h.now.max(t);
                h.session.handle_timeout(h.now);
            }
            None => panic!("the machine stalled"),
        }
    }
    panic!("the command did not end");
}

#[test]
fn a_call_that_times_out_again_and_again_ends_by_its_deadline_and_says_so() {
    use std::time::Duration;
    let mut h = Harness::new(Config::default());
    assert!(h.run(Command::Connect));
    let deadline = Config::default().request_deadline;
    // Each attempt runs into the transport's own 120 s limit.
    let (sent, took, err) = run_slow(
        &mut h,
        Command::Credits,
        Duration::from_secs(120),
        TransportErrorKind::Timeout,
    );
    assert!(took <= deadline, "took {took:?}, deadline {deadline:?}");
    assert!(sent >= 2, "{sent}");
    assert_eq!(err.kind, ErrorKind::Network);
    let said = format!(
        "no complete answer to the credits request after {sent} attempts over {}",
        nemo_core::time::human_duration(took)
    );
    assert!(err.message.contains(&said), "{} / {said}", err.message);
    assert!(!err.message.contains('\n'));
}

#[test]
fn a_call_that_fails_slowly_says_how_many_attempts_and_how_long() {
    use std::time::Duration;
    let mut h = Harness::new(Config::default());
    assert!(h.run(Command::Connect));
    // 10 s each: every retry fits in the deadline, and the words count them.
    let (sent, took, err) = run_slow(
        &mut h,
        Command::Credits,
        Duration::from_secs(10),
        TransportErrorKind::Timeout,
    );
    assert_eq!(sent, 4);
    let said = format!(
        "no complete answer to the credits request after 4 attempts over {} (the last one: ",
        nemo_core::time::human_duration(took)
    );
    assert!(err.message.contains(&said), "{} / {said}", err.message);
    assert!(err.message.contains("within 10 s"), "{}", err.message);
    let (sent, took, err) = run_slow(
        &mut h,
        Command::Credits,
        Duration::from_secs(10),
        TransportErrorKind::Interrupted,
    );
    assert_eq!(sent, 4);
    assert!(
        err.message.ends_with(&format!(
            "the connection broke; 4 attempts over {}.",
            nemo_core::time::human_duration(took)
        )),
        "{}",
        err.message
    );
}

#[test]
fn a_render_wait_and_an_agent_turn_keep_their_own_longer_limits() {
    use std::time::Duration;
    // A render of 20 minutes: polled to the end, far past one call's deadline.
    let mut h = harness_with_clip();
    h.backend.render_duration = Duration::from_secs(20 * 60);
    assert!(h.run(export()), "{}", h.transcript);
    // An agent turn of 8 minutes of keep-alives and then an answer.
    let mut h = harness_with_clip();
    let mut chunks: Vec<_> = (1..=16)
        .map(|i| (Duration::from_secs(30 * i), KEEPALIVE.to_vec()))
        .collect();
    chunks.push((
        Duration::from_secs(8 * 60 + 1),
        text_event("Done after a long think.", false),
    ));
    h.backend.sse.push_back(Reply::Stream {
        chunks,
        end: Ok(()),
        draft_after: None,
    });
    assert!(
        h.run(Command::Instruct("add a title".into())),
        "{}",
        h.transcript
    );
    assert!(h.transcript.contains("Done after a long think."));
}

/// The output URL carries no token: its 401 or 403 (an expired signed URL,
/// in JSON or in XML) never throws the anonymous token away; the export
/// moves to the API's fallback download endpoint and is saved.
#[test]
fn a_cdn_refusal_never_costs_the_token() {
    let refusals = [
        Reply::Response(Response::json(401, &json!({"detail": "Invalid token"}))),
        Reply::Response(Response::json(
            401,
            &json!({"code": 1001, "message": "Request has expired"}),
        )),
        Reply::Response(Response {
            status: 403,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
                .to_vec(),
        }),
    ];
    for refusal in refusals {
        let mut h = harness_with_clip();
        h.backend.fault(Endpoint::Download, refusal);
        assert!(h.run(export()), "{}", h.transcript);
        assert_eq!(h.backend.tokens, 1, "{}", h.transcript);
        assert_eq!(requests(&h, "/download"), 1, "{}", h.transcript);
        assert!(
            h.events
                .iter()
                .any(|e| matches!(e, Event::Downloaded { .. })),
            "{}",
            h.transcript
        );
    }
}

/// An HTML 401 (a gateway or a captive portal, no JSON body) is no token
/// refusal: the token is kept.
#[test]
fn an_html_401_is_no_token_refusal() {
    let mut h = harness_with_clip();
    h.backend.fault(
        Endpoint::Credits,
        html(401, "<html><body>Log in to the Wi-Fi</body></html>"),
    );
    assert!(!h.run(Command::Credits));
    assert_eq!(h.backend.tokens, 1, "{}", h.transcript);
    let (kind, _) = failure(&h).expect("fails");
    assert_ne!(kind, ErrorKind::AuthFailed, "{}", h.transcript);
}

/// The API's own 401 with an empty body (an expired token, no words) is a
/// token refusal: the free token is renewed once and the call succeeds.
#[test]
fn an_empty_401_renews_the_token_once() {
    for body in ["", " \r\n"] {
        let mut h = harness_with_clip();
        h.backend.fault(
            Endpoint::Credits,
            Reply::Response(Response {
                status: 401,
                headers: vec![],
                body: body.as_bytes().to_vec(),
            }),
        );
        assert!(h.run(Command::Credits), "{:?}: {}", body, h.transcript);
        assert_eq!(h.backend.tokens, 2, "{:?}: {}", body, h.transcript);
        assert_eq!(requests(&h, "credits"), 2, "{:?}: {}", body, h.transcript);
    }
}

/// A 401 without a code between normal answers ("still rendering"): the
/// token is renewed once for the whole command, not once per refusal: the
/// export ends, having fetched one new token.
#[test]
fn a_401_between_normal_answers_renews_the_token_once_per_command() {
    let mut h = harness_with_clip();
    h.backend.render_duration = std::time::Duration::from_secs(3600);
    for _ in 0..30 {
        h.backend.fault(
            Endpoint::RenderStatus,
            Reply::Response(Response::json(401, &json!({"detail": "Invalid token"}))),
        );
        h.backend.fault(
            Endpoint::RenderStatus,
            Reply::Response(Response::json(
                200,
                &json!({"status": "processing", "progress": 10}),
            )),
        );
    }
    assert!(!h.run(export()), "{}", h.transcript);
    assert_eq!(h.backend.tokens, 2, "{}", h.transcript);
    let (kind, _) = failure(&h).expect("fails");
    assert_eq!(kind, ErrorKind::AuthFailed, "{}", h.transcript);
}

/// A token renewal in the middle of a call does not give the call a new
/// deadline: the credits call that was refused after 200 s, then times
/// out again and again with the new token, ends by its first deadline.
#[test]
fn a_token_renewal_keeps_the_calls_deadline() {
    use nemo_core::transport::TransportError;
    use std::time::Duration;
    let mut h = Harness::new(Config::default());
    assert!(h.run(Command::Connect));
    let deadline = Config::default().request_deadline;
    let start = h.now;
    let id = h.session.command(h.now, Command::Credits);
    let mut credits = 0;
    let mut result = None;
    for _ in 0..1_000 {
        while let Some(ev) = h.session.poll_event() {
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
            if tx.request.endpoint != Endpoint::Credits {
                let Reply::Response(r) = h.backend.answer_public(h.now, &tx.request) else {
                    panic!("a response");
                };
                h.session.handle_response(h.now, tx.id, r);
                continue;
            }
            credits += 1;
            let takes = Duration::from_secs(if credits == 1 { 200 } else { 120 });
            let answer_at = h.now + takes;
            if let Some(t) = h.session.poll_timeout().filter(|t| *t < answer_at) {
                h.now = h.now.max(t);
                h.session.handle_timeout(h.now);
            }
            if h.session.is_in_flight(tx.id) {
                h.now = answer_at;
                if credits == 1 {
                    let r = Response::json(401, &json!({"detail": "Invalid token"}));
                    h.session.handle_response(h.now, tx.id, r);
                } else {
                    let e = TransportError::new(TransportErrorKind::Timeout, "no answer in 120 s");
                    h.session.handle_transport_error(h.now, tx.id, e);
                }
            }
            continue;
        }
        let t = h.session.poll_timeout().expect("the machine stalled");
        h.now = h.now.max(t);
        h.session.handle_timeout(h.now);
    }
    let err = result.expect("the command ended").expect_err("fails");
    assert_eq!(h.backend.tokens, 2, "renewed once");
    assert!(credits >= 2, "{credits}");
    let took = h.now - start;
    assert!(
        took <= deadline,
        "took {took:?}, deadline {deadline:?}: {err:?}"
    );
}
