//! Property counterparts of the cargo-fuzz targets in `fuzz/` (which need a
//! nightly-flagged build and run for minutes): the same entry points on
//! arbitrary and adversarial inputs, in CI. None may panic, and none may
//! hold memory in proportion to a hostile input.

use nemo_core::adk::{classify, AgentEvent, TextAssembler};
use nemo_core::api::{self, parse_render_status, parse_state, payload, retry_after};
use nemo_core::draft::{diff, Draft};
use nemo_core::gui::translate;
use nemo_core::route::{find_urls, route, RouteContext, UserInput};
use nemo_core::sse::{Decoder, Frame};
use nemo_core::wire::Response;
use proptest::prelude::*;
use serde_json::{json, Value};

fn decode(d: &mut Decoder, chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    let cut = d.finish();
    (out, cut)
}

/// Bytes that look like SSE often enough to reach every branch.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: x".to_vec()),
        Just(b"id: 1".to_vec()),
        Just(b"retry: 300".to_vec()),
        Just(b": ping".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        "[a-z{}\":, ]{0,60}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// `data:` payloads in the shapes the agent sends, and broken variants.
fn agent_payload() -> impl Strategy<Value = String> {
    let text = "\\PC{0,40}";
    prop_oneof![
        text.prop_map(
            |t| json!({"content": {"parts": [{"text": t}], "role": "model"}}).to_string()
        ),
        (text, any::<bool>()).prop_map(|(t, p)| {
            json!({"content": {"parts": [{"text": t}]}, "partial": p}).to_string()
        }),
        text.prop_map(|t| {
            json!({"content": {"parts": [{"functionCall": {"name": t, "args": {}}}]}}).to_string()
        }),
        text.prop_map(|t| json!({"errorCode": "X", "errorMessage": t}).to_string()),
        text.prop_map(|t| json!({"error": t}).to_string()),
        text.prop_map(|t| format!("{{\"error\": \"he said \"{t}\"\"}}")),
        text.prop_map(|t| json!({"type": "text", "content": t}).to_string()),
        Just(json!({"type": "heartbeat"}).to_string()),
        Just(json!({"content": {"parts": [{"text": "x", "thought": true}]}}).to_string()),
        Just(json!({"content": {"parts": "not a list"}}).to_string()),
        Just(json!({"content": null, "actions": {"stateDelta": {"a": [1, 2]}}}).to_string()),
        "\\PC{0,80}",
    ]
}

/// JSON with hostile numbers and shapes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        prop_oneof![
            any::<f64>(),
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(1e300),
            Just(-1e300),
            Just(0.5),
        ]
        .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("t".to_owned()),
            Just("tt".to_owned()),
            Just("sg".to_owned()),
            Just("d".to_owned()),
            Just("m".to_owned()),
            Just("st".to_owned()),
            Just("et".to_owned()),
            Just("v".to_owned()),
            Just("n".to_owned()),
            Just("src".to_owned()),
            Just("width".to_owned()),
            Just("height".to_owned()),
            Just("title".to_owned()),
            "[a-z]{1,4}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A draft-like document: tracks of segments with hostile values.
fn draft_value() -> impl Strategy<Value = Value> {
    let seg = prop::collection::btree_map(
        prop_oneof![
            Just("st"),
            Just("et"),
            Just("d"),
            Just("v"),
            Just("n"),
            Just("src"),
            Just("start"),
            Just("dur")
        ],
        json_value(),
        0..5,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    let track = (json_value(), prop::collection::vec(seg, 0..4))
        .prop_map(|(tt, sg)| json!({"tt": tt, "sg": sg}));
    (
        prop::collection::vec(track, 0..5),
        json_value(),
        json_value(),
    )
        .prop_map(|(t, d, m)| json!({"t": t, "d": d, "m": m}))
}

fn response(status: u16, body: Vec<u8>, retry: Option<String>) -> Response {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(r) = retry {
        headers.push(("retry-after".to_owned(), r));
    }
    Response {
        status,
        headers,
        body,
    }
}

fn parse_everything(r: &Response) {
    let _ = retry_after(&r.headers);
    if let Err(e) = payload(r) {
        let _ = e.to_string();
    }
    if let Ok(s) = parse_state(r) {
        if let Some(d) = s.state.draft {
            let _ = d.timeline().to_string();
        }
    }
    let _ = parse_render_status(r);
    let _ = api::parse::<api::Credits>(r).map(|c| c.to_string());
    let _ = api::parse::<api::Uploaded>(r);
    let _ = api::parse::<api::RenderAccepted>(r);
    let _ = api::parse::<api::SessionCreated>(r);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sse_any_bytes_any_chunks_small_limits(bytes in sse_bytes(), stride in 1usize..64, small in any::<bool>()) {
        let make = || if small { Decoder::with_limits(64, 256) } else { Decoder::new() };
        let whole = decode(&mut make(), &[&bytes]);
        let chunks: Vec<&[u8]> = bytes.chunks(stride).collect();
        let split = decode(&mut make(), &chunks);
        prop_assert_eq!(&whole, &split);
        for f in &whole.0 {
            if let (true, Frame::Event(e)) = (small, f) {
                prop_assert!(e.data.len() <= 3 * 256, "event of {} bytes", e.data.len());
            }
        }
    }

    #[test]
    fn classify_never_panics(data in agent_payload(), partials in prop::collection::vec(any::<bool>(), 0..4)) {
        let mut a = TextAssembler::new();
        for (i, ev) in classify(&data).iter().enumerate() {
            let _ = format!("{ev:?}");
            if let AgentEvent::Text { text, partial } = ev {
                let p = partials.get(i).copied().unwrap_or(*partial);
                if let Some(shown) = a.push(text, p) {
                    // Never more than what was sent.
                    prop_assert!(shown.len() <= data.len() * 4 + 64);
                }
            }
        }
        let _ = a.finish();
    }

    #[test]
    fn envelopes_never_panic(status in 100u16..600, value in json_value(), raw in prop::collection::vec(any::<u8>(), 0..200), retry in prop::option::of("\\PC{0,12}"), as_raw in any::<bool>()) {
        let body = if as_raw { raw } else { value.to_string().into_bytes() };
        parse_everything(&response(status, body, retry));
    }

    #[test]
    fn wrapped_envelopes_never_panic(data in json_value(), code in prop::option::of(any::<i64>()), status in prop_oneof![Just(200u16), Just(400), Just(429), Just(500)]) {
        for body in [
            json!({"code": code, "data": data, "message": "m"}),
            json!({"success": true, "data": data}),
            json!({"success": false, "error": data}),
            json!({"code": 0, "data": {"state": {"draft": data}}}),
            json!({"status": data, "progress": data, "output": {"url": data}}),
            json!({"data": {"status": "completed", "progress": data, "outputUrl": data}}),
            json!({"detail": data}),
        ] {
            parse_everything(&response(status, body.to_string().into_bytes(), None));
        }
    }

    #[test]
    fn drafts_summarise_and_diff(a in draft_value(), b in draft_value(), other in json_value()) {
        for v in [&a, &b, &other] {
            if let Ok(d) = Draft::parse(&v.to_string()) {
                let s = d.timeline().to_string();
                // A summary is bounded by the draft, not by its numbers.
                prop_assert!(s.len() <= 400 + 40 * v.to_string().len(), "summary of {} bytes", s.len());
                let _ = d.is_ready_for_export();
                let _ = diff(None, &d).summary();
            }
        }
        if let (Ok(x), Ok(y)) = (Draft::parse(&a.to_string()), Draft::parse(&b.to_string())) {
            let change = diff(Some(&x), &y);
            let _ = change.summary();
            prop_assert!(diff(Some(&x), &x).is_empty(), "a draft differs from itself: {}", diff(Some(&x), &x));
        }
    }

    #[test]
    fn routes_any_message(text in "\\PC{0,200}", has_draft in any::<bool>(), extra in prop::collection::vec("(https?://)?[a-z./?=&%0-9-]{0,30}", 0..3)) {
        let urls = find_urls(&text);
        for u in &urls {
            prop_assert!(text.contains(u.as_str()) || u.starts_with("http"));
        }
        let plan = route(&UserInput { text: text.clone(), files: Vec::new(), urls: extra }, RouteContext { has_draft });
        let _ = plan.to_string();
    }

    #[test]
    fn gui_translation_never_grows_text(text in "\\PC{0,200}", gui in prop::sample::select(vec![
        "Click the Export button.", "点击导出", "open the timeline panel", "preview in timeline",
        "drag the clip", "check your account", "Done. ", "",
    ])) {
        let input = format!("{gui}{text}{gui}");
        let t = translate(&input);
        prop_assert!(t.text.len() <= input.len() + 8, "{:?} -> {:?}", input, t.text);
        let _ = translate(&t.text);
    }
}

/// 64 MiB without a single line break: the decoder reports one over-long
/// line and keeps at most a line's worth of bytes (seen through `Debug`,
/// which prints what it buffers).
#[test]
fn a_64_mib_stream_without_newline_stays_bounded() {
    let chunk = vec![b'x'; 64 * 1024];
    for (max_line, limit) in [(1024usize, 64 * 1024usize), (1 << 20, 8 << 20)] {
        let mut d = Decoder::with_limits(max_line, 4096);
        let mut frames = Vec::new();
        for i in 0..1024 {
            d.feed(&chunk, &mut frames);
            if i % 128 == 0 {
                let held = format!("{d:?}").len();
                assert!(
                    held <= limit,
                    "after {} KiB the decoder holds {held} bytes of Debug",
                    (i + 1) * 64
                );
            }
        }
        assert_eq!(
            frames,
            vec![Frame::LineTooLong],
            "one report, no pile of frames"
        );
        assert!(d.finish(), "the cut line is reported");
        // Still works afterwards.
        d.feed(b"data: ok\n\n", &mut frames);
        assert!(matches!(frames.last(), Some(Frame::Event(e)) if e.data == "ok"));
    }
}

/// 64 MiB of `data:` lines that never end an event: the event is dropped
/// once it passes the limit and the data held stays under it.
#[test]
fn a_64_mib_event_stays_bounded() {
    let line =
        b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n".repeat(1024);
    let mut d = Decoder::with_limits(1 << 20, 256 * 1024);
    let mut frames = Vec::new();
    let mut fed = 0;
    while fed < 64 << 20 {
        d.feed(&line, &mut frames);
        fed += line.len();
    }
    let held = format!("{d:?}").len();
    assert!(held <= 1 << 20, "the decoder holds {held} bytes of Debug");
    d.feed(b"\n", &mut frames);
    assert_eq!(frames, vec![Frame::EventTooLarge]);
}

/// Classifying, translating, routing and parsing large inputs takes time in
/// proportion to them. The figures are printed (`--nocapture`).
#[test]
fn large_inputs_are_handled_in_proportion() {
    fn timed<T>(what: &str, f: impl FnOnce() -> T) -> std::time::Duration {
        let started = std::time::Instant::now();
        let _ = f();
        let took = started.elapsed();
        println!("{what}: {took:?}");
        took
    }
    let n: usize = std::env::var("NEMO_BIG_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let gui = "click the Export button. ".repeat(n);
    let urls = "see https://example.com/a.mp4 ".repeat(n);
    let words = "add music and a title ".repeat(n);
    let mut total = std::time::Duration::ZERO;
    total += timed("translate", || translate(&gui));
    total += timed("route, text", || {
        route(&UserInput::text(words.clone()), RouteContext::default())
    });
    total += timed("route, urls", || {
        route(&UserInput::text(urls.clone()), RouteContext::default())
    });
    total += timed("classify", || {
        classify(&json!({"content": {"parts": [{"text": gui}]}}).to_string())
    });
    let deep = "[".repeat(100_000);
    total += timed("draft, deep", || Draft::parse(&deep));
    total += timed("envelope, deep", || {
        parse_everything(&response(200, deep.clone().into_bytes(), None))
    });
    assert!(total < std::time::Duration::from_secs(20), "took {total:?}");
}
