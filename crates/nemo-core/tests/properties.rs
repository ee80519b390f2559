//! Property tests: decoding is split-invariant, drafts round-trip unchanged,
//! recovery always ends, and nothing panics on any input.

mod support;

use std::time::Duration;

use nemo_core::api::{self, Api, Attribution};
use nemo_core::draft::{diff, Draft};
use nemo_core::machine::{Command, Config, Event};
use nemo_core::recovery::{self, Attempts, Failure, Recovery, RetryPolicy, MAX_ATTEMPTS};
use nemo_core::route::{route, RouteContext, UserInput};
use nemo_core::secret::Secret;
use nemo_core::sse::{Decoder, Frame};
use nemo_core::transport::TransportErrorKind;
use nemo_core::wire::{Endpoint, Response};
use proptest::prelude::*;
use serde_json::Value;
use support::*;

fn decode(chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut d = Decoder::with_limits(256, 1024);
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    let t = d.finish();
    (out, t)
}

fn sse_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z{}\":, 导出]{0,20}".prop_map(|s| format!("data: {s}")),
        "[a-z{}\":]{0,10}".prop_map(|s| format!("data:{s}")),
        "[a-z ]{0,10}".prop_map(|s| format!(":{s}")),
        "[a-z]{0,5}".prop_map(|s| format!("event: {s}")),
        "[0-9]{0,5}".prop_map(|s| format!("id: {s}")),
        "[0-9a-z]{0,5}".prop_map(|s| format!("retry: {s}")),
        Just(String::new()),
        "[a-z]{1,300}",
    ]
}

fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec(
            (
                sse_line(),
                prop_oneof![Just("\n"), Just("\r"), Just("\r\n")],
            ),
            0..40,
        ),
    )
        .prop_map(|(bom, lines)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice(b"\xEF\xBB\xBF");
            }
            for (l, end) in lines {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(end.as_bytes());
            }
            out
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}|t|tt|sg|d|m|st|v|n", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn failure() -> impl Strategy<Value = Failure> {
    prop_oneof![
        prop_oneof![
            Just(TransportErrorKind::Connect),
            Just(TransportErrorKind::Timeout),
            Just(TransportErrorKind::Interrupted),
            Just(TransportErrorKind::Tls),
        ]
        .prop_map(Failure::Transport),
        (
            prop_oneof![
                Just(200u16),
                Just(400),
                Just(401),
                Just(402),
                Just(404),
                Just(429),
                Just(500),
                Just(503)
            ],
            prop::option::of(prop_oneof![
                Just(1001i64),
                Just(1002),
                Just(2001),
                Just(4001),
                Just(4002),
                Just(429),
                Just(7)
            ]),
            prop::option::of((0u64..200).prop_map(Duration::from_secs)),
            any::<bool>(),
        )
            .prop_map(|(status, code, retry_after, server_error)| Failure::Api {
                status,
                code,
                retry_after,
                server_error,
            }),
        Just(Failure::Decode),
        Just(Failure::StreamDropped),
    ]
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    prop_oneof![
        Just(Endpoint::AnonymousToken),
        Just(Endpoint::CreateSession),
        Just(Endpoint::RunSse),
        Just(Endpoint::Upload),
        Just(Endpoint::Credits),
        Just(Endpoint::State),
        Just(Endpoint::RenderSubmit),
        Just(Endpoint::RenderStatus),
        Just(Endpoint::Download),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn decoding_is_the_same_under_every_split(bytes in sse_stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let whole = decode(&[&bytes]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&bytes[last..p]);
            last = p;
        }
        chunks.push(&bytes[last..]);
        prop_assert_eq!(decode(&chunks), whole.clone());
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(decode(&bytewise), whole);
    }

    #[test]
    fn arbitrary_bytes_decode_the_same_in_any_split(bytes in prop::collection::vec(any::<u8>(), 0..600), cut in any::<prop::sample::Index>()) {
        let at = cut.index(bytes.len() + 1);
        prop_assert_eq!(decode(&[&bytes[..at], &bytes[at..]]), decode(&[&bytes]));
    }

    #[test]
    fn drafts_round_trip_unchanged(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { value.to_string() };
        let draft = Draft::parse(&text).unwrap();
        prop_assert_eq!(draft.raw().get(), text.as_str());
        // Through the state endpoint and back out in a render request.
        let body = format!(r#"{{"code":0,"data":{{"state":{{"draft":{text},"video_infos":[]}}}}}}"#);
        let response = Response { status: 200, headers: vec![], body: body.into_bytes() };
        let state = api::parse_state(&response).unwrap();
        if value.is_null() {
            prop_assert!(state.state.draft.is_none());
        } else {
            let d = state.state.draft.unwrap();
            let req = Api::new(Attribution::default()).render_submit(&Secret::new("t"), "render_1", "1", &d);
            let needle = format!("\"draft\":{text},");
            prop_assert!(req.json_body().unwrap().contains(&needle));
            // Summaries and diffs never panic on any draft.
            let _ = d.timeline().to_string();
            let _ = diff(Some(&draft), &d);
            let _ = diff(None, &d).summary();
        }
    }

    #[test]
    fn recovery_ends_in_bounded_attempts(endpoint in endpoint(), failures in prop::collection::vec(failure(), 1..40), anonymous in any::<bool>(), jitter in 0.0f64..1.0) {
        let policy = RetryPolicy::default();
        let mut attempts = Attempts { total: 1, ..Attempts::default() };
        let mut used = 1;
        for f in &failures {
            let r = recovery::decide(&policy, endpoint, f, &attempts, anonymous, jitter);
            match r {
                Recovery::Fail | Recovery::RecoverStream => break,
                Recovery::Retry { after } => {
                    prop_assert!(after <= Duration::from_secs(120));
                    recovery::record_retry(&mut attempts, f);
                }
                _ => {}
            }
            attempts.record(r);
            attempts.total += 1; // the next attempt is sent
            used += 1;
        }
        prop_assert!(used <= MAX_ATTEMPTS + 1, "{} attempts", used);
    }

    #[test]
    fn routing_never_panics(text in "\\PC{0,80}", has_draft in any::<bool>(), url in prop::option::of("\\PC{0,30}")) {
        let mut input = UserInput::text(text.clone());
        if let Some(u) = url { input.urls.push(u); }
        let plan = route(&input, RouteContext { has_draft });
        let _ = plan.to_string();
        let _ = nemo_core::route::find_urls(&text);
        let _ = nemo_core::gui::translate(&text);
        let _ = nemo_core::adk::classify(&text);
    }

    #[test]
    fn any_sequence_of_faults_ends_and_never_resends_a_message(
        faults in prop::collection::vec((endpoint(), 0usize..7), 0..12),
    ) {
        let mut h = Harness::new(Config::default());
        for (endpoint, kind) in faults {
            let reply = match kind {
                0 => api_err(200, 1001, "expired"),
                1 => api_err(200, 1002, "no session"),
                2 => api_err(429, 429, "slow"),
                3 => Reply::Error(TransportErrorKind::Interrupted),
                4 => Reply::Error(TransportErrorKind::Connect),
                5 => Reply::Response(Response { status: 503, headers: vec![], body: b"busy".to_vec() }),
                _ => Reply::Response(Response { status: 200, headers: vec![], body: b"garbage".to_vec() }),
            };
            h.backend.fault(endpoint, reply);
        }
        let clip = api::file_part("a.mp4", 10).unwrap();
        h.run(Command::Upload { files: vec![clip], urls: vec![] });
        h.run(Command::Message(UserInput::text("add a title")));
        h.run(Command::Export(nemo_core::machine::ExportOptions { download: true, render_id: Some("render_1".into()), ..Default::default() }));
        prop_assert!(h.transmits < 120, "{} requests", h.transmits);
        // A message goes out again only when the server refused it before
        // streaming (an API error answer) or the connection was refused.
        prop_assert!(h.backend.sse_delivered <= 1, "the message may have reached the agent {} times", h.backend.sse_delivered);
        prop_assert!(h.backend.run_sse_bodies.len() <= 4);
        let finished = h.events.iter().filter(|e| matches!(e, Event::Finished { .. })).count();
        prop_assert_eq!(finished, 3);
    }
}
