//! The agent's stream as the user sees it, in both event dialects:
//! `Config::text_deltas` (the text piece by piece while the stream is open;
//! off by default), the two stages of a generation told from the tools and
//! state deltas the stream carries, and API codes sent inside the stream.

mod support;

use std::time::Duration;

use nemo_core::api::file_part;
use nemo_core::error::ErrorKind;
use nemo_core::machine::{Command, Config, Event, GenerationStage};
use nemo_core::route::UserInput;
use serde_json::json;
use support::*;

fn run_stream(text_deltas: bool, chunks: Vec<Vec<u8>>) -> Vec<Event> {
    run_with(text_deltas, chunks, Ok(()), Some(draft_full())).events
}

/// One message after an upload; the stream is `chunks` then `end`.
fn run_with(
    text_deltas: bool,
    chunks: Vec<Vec<u8>>,
    end: Result<(), nemo_core::transport::TransportErrorKind>,
    draft_after: Option<serde_json::Value>,
) -> Harness {
    let mut h = Harness::new(Config {
        text_deltas,
        ..Config::default()
    });
    let part = file_part("/media/city.mp4", 1_000_000).unwrap();
    assert!(h.run(Command::Upload {
        files: vec![part],
        urls: vec![]
    }));
    let chunks = chunks
        .into_iter()
        .enumerate()
        .map(|(n, c)| (Duration::from_millis(100 * (n as u64 + 1)), c))
        .collect();
    h.backend.sse.push_back(Reply::Stream {
        chunks,
        end,
        draft_after,
    });
    h.run(Command::Message(UserInput::text("add lo-fi music")));
    h
}

fn deltas(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AgentTextDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AgentText { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// ADK: partial pieces, then the final event repeating the whole text.
fn adk_chunks() -> Vec<Vec<u8>> {
    vec![
        text_event("I added lo-fi ", true),
        b": ping\n\n".to_vec(),
        text_event("music at 35% ", true),
        text_event("and a title.", true),
        text_event("I added lo-fi music at 35% and a title.", false),
    ]
}

#[test]
fn adk_pieces_arrive_as_deltas_that_make_the_text() {
    let events = run_stream(true, adk_chunks());
    let pieces = deltas(&events);
    assert_eq!(pieces.len(), 3, "{events:#?}");
    assert_eq!(pieces.concat(), "I added lo-fi music at 35% and a title.");
    // The whole text still comes once, after its pieces.
    assert_eq!(texts(&events), ["I added lo-fi music at 35% and a title."]);
    let first_delta = events
        .iter()
        .position(|e| matches!(e, Event::AgentTextDelta { .. }))
        .unwrap();
    let text = events
        .iter()
        .position(|e| matches!(e, Event::AgentText { .. }))
        .unwrap();
    assert!(first_delta < text);
}

/// ADK sends pieces only when the request asks for them, so the session
/// asks exactly when its frontend wants pieces.
#[test]
fn the_stream_is_asked_for_pieces_only_when_deltas_are_wanted() {
    for wanted in [true, false] {
        let h = run_with(wanted, adk_chunks(), Ok(()), Some(draft_full()));
        let body: serde_json::Value = serde_json::from_str(&h.backend.run_sse_bodies[0]).unwrap();
        assert_eq!(
            body.get("streaming")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            wanted,
            "{body}"
        );
    }
}

#[test]
fn deltas_are_off_by_default() {
    let events = run_stream(false, adk_chunks());
    assert!(deltas(&events).is_empty(), "{events:#?}");
    assert_eq!(texts(&events), ["I added lo-fi music at 35% and a title."]);
    assert!(!Config::default().text_deltas);
}

#[test]
fn typed_dialect_pieces_and_whole_texts() {
    // Typed pieces (`text_delta`), then the whole text.
    let events = run_stream(
        true,
        vec![
            sse_event(&json!({"type": "text_delta", "delta": "Trimmed "})),
            sse_event(&json!({"type": "heartbeat"})),
            sse_event(&json!({"type": "text_delta", "delta": "to 30 seconds."})),
            sse_event(&json!({"type": "text", "content": "Trimmed to 30 seconds."})),
        ],
    );
    assert_eq!(deltas(&events).concat(), "Trimmed to 30 seconds.");
    assert_eq!(texts(&events), ["Trimmed to 30 seconds."]);

    // Whole texts only (the typed dialect as the API reference writes it):
    // each is one delta, then the text.
    let events = run_stream(
        true,
        vec![
            sse_event(&json!({"type": "text", "content": "Adding the music."})),
            sse_event(&json!({"type": "tool_call", "name": "add_bgm", "args": {}})),
            sse_event(&json!({"type": "text", "content": "Done: lo-fi at 35%."})),
        ],
    );
    assert_eq!(
        deltas(&events),
        ["Adding the music.", "Done: lo-fi at 35%."]
    );
    assert_eq!(texts(&events), ["Adding the music.", "Done: lo-fi at 35%."]);
}

fn typed(v: serde_json::Value) -> Vec<u8> {
    sse_event(&v)
}

fn suggestions(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Suggestions { suggestions, .. } => Some(suggestions.clone()),
            _ => None,
        })
        .collect()
}

fn stages(events: &[Event]) -> Vec<GenerationStage> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Generation { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect()
}

fn finished(h: &Harness) -> Result<(), nemo_core::error::NemoError> {
    h.events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Finished { result, .. } => Some(result.clone()),
            _ => None,
        })
        .expect("finished")
}

/// No key of the simulator's own: the raw video is a `generate_video`
/// result with its URL; a music tool after it and the end of the turn are
/// post-production done; the choice names the music only.
#[test]
fn post_production_is_told_from_the_tools_after_the_raw_video() {
    let events = run_stream(
        false,
        vec![
            typed(
                json!({"type": "tool_call", "name": "generate_video", "args": {"prompt": "city"}}),
            ),
            typed(
                json!({"type": "tool_result", "name": "generate_video", "result": {"status": "pending", "task_id": "t1"}}),
            ),
            typed(json!({"type": "heartbeat"})),
            typed(
                json!({"type": "tool_result", "name": "generate_video", "result": {"status": "success", "url": "https://cdn/raw.mp4"}}),
            ),
            typed(
                json!({"type": "tool_call", "name": "add_background_music", "args": {"volume": 0.3}}),
            ),
            typed(
                json!({"type": "tool_result", "name": "add_background_music", "result": {"status": "success"}}),
            ),
            typed(json!({"type": "text", "content": "Your video is ready, with music."})),
        ],
    );
    assert_eq!(
        stages(&events),
        [
            GenerationStage::RawVideoReady,
            GenerationStage::PostProductionDone
        ],
        "{events:#?}"
    );
    let raw = events
        .iter()
        .find_map(|e| match e {
            Event::Generation { url, .. } => Some(url.clone()),
            _ => None,
        })
        .flatten();
    assert_eq!(raw.as_deref(), Some("https://cdn/raw.mp4"));
    assert_eq!(
        suggestions(&events),
        [vec!["keep it".to_owned(), "remove the music".to_owned()]]
    );
    let choice = events.iter().find_map(|e| match e {
        Event::Suggestions { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(
        choice.as_deref(),
        Some("Post-production added music. Keep it, or remove it:")
    );
    // Steps in words, never the raw calls.
    let status: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert!(status.contains(&"Generating the video…"), "{status:?}");
    assert!(status.contains(&"Adding music…"), "{status:?}");
    assert!(status.iter().all(|s| !s.contains('_')), "{status:?}");
}

/// ADK's dialect, the stage in the state delta only; the choice comes from
/// the tracks the final draft added when no tool names them.
#[test]
fn the_stage_in_a_state_delta_and_the_tracks_added() {
    let adk = |parts: serde_json::Value, delta: serde_json::Value| {
        sse_event(
            &json!({"content": {"role": "model", "parts": parts}, "author": "nemo_agent", "actions": {"stateDelta": delta}}),
        )
    };
    let events = run_stream(
        false,
        vec![
            adk(
                json!([{"functionCall": {"name": "make_clip", "args": {}}}]),
                json!({}),
            ),
            adk(
                json!([]),
                json!({"generation_stage": "raw_video", "video_url": "https://cdn/raw.mp4"}),
            ),
            adk(json!([]), json!({"draft": {"ver": 3}})),
            text_event("Done.", false),
        ],
    );
    assert_eq!(
        stages(&events),
        [
            GenerationStage::RawVideoReady,
            GenerationStage::PostProductionDone
        ],
        "{events:#?}"
    );
    // The upload's draft had the video; the final one adds music and a title.
    assert_eq!(
        suggestions(&events),
        [vec![
            "keep them".to_owned(),
            "remove the music".to_owned(),
            "remove the title".to_owned()
        ]]
    );
}

/// A raw video with nothing after it: told, with the timeline, and no
/// choice (there is nothing to keep or strip).
#[test]
fn a_raw_video_alone_offers_no_choice() {
    let events = run_stream(
        false,
        vec![
            typed(
                json!({"type": "tool_result", "name": "generate_video", "result": {"output": {"url": "https://cdn/raw.mp4"}}}),
            ),
            typed(json!({"type": "text", "content": "Here is the raw clip."})),
        ],
    );
    assert_eq!(stages(&events), [GenerationStage::RawVideoReady]);
    assert!(suggestions(&events).is_empty(), "{events:#?}");
    assert!(events.iter().any(|e| matches!(e, Event::Timeline { .. })));
}

/// 2001 as a typed event: the same error as the envelope, with the
/// registration link.
#[test]
fn out_of_credits_inside_the_stream() {
    let h = run_with(
        false,
        vec![typed(
            json!({"type": "error", "code": 2001, "message": "Insufficient credits: this needs 5, 2 available"}),
        )],
        Ok(()),
        None,
    );
    let err = finished(&h).expect_err("fails");
    assert_eq!(err.kind, ErrorKind::OutOfCredits, "{err:?}");
    assert_eq!(err.code, Some(2001));
    assert!(
        err.link.as_deref().is_some_and(|l| l.contains("register")),
        "{err:?}"
    );
    assert_eq!(h.backend.run_sse_bodies.len(), 1, "never sent again");
}

/// 1001 as a bare envelope in the stream (on HTTP 200): a new token and
/// the message sent again, as after the envelope itself.
#[test]
fn an_expired_token_inside_the_stream_is_renewed() {
    let h = run_with(
        false,
        vec![sse_event(
            &json!({"code": 1001, "message": "Token expired"}),
        )],
        Ok(()),
        None,
    );
    finished(&h).expect("recovered");
    assert_eq!(h.backend.tokens, 2, "{}", h.transcript);
    assert_eq!(h.backend.run_sse_bodies.len(), 2, "{}", h.transcript);
    assert!(
        texts(&h.events).contains(&"Done.".to_owned()),
        "{}",
        h.transcript
    );
}

/// A typed tool result carrying an `error` key is a result, not the end of
/// the stream.
#[test]
fn a_failed_tool_does_not_end_the_stream() {
    let events = run_stream(
        false,
        vec![
            typed(
                json!({"type": "tool_result", "name": "add_title", "result": {"status": "failed"}, "error": "font missing"}),
            ),
            typed(json!({"type": "text", "content": "The title could not be added; music is on."})),
        ],
    );
    assert_eq!(
        texts(&events),
        ["The title could not be added; music is on."]
    );
    assert!(finished_ok(&events), "{events:#?}");
}

fn finished_ok(events: &[Event]) -> bool {
    matches!(
        events
            .iter()
            .rev()
            .find(|e| matches!(e, Event::Finished { .. })),
        Some(Event::Finished { result: Ok(()), .. })
    )
}

/// A stream that drops during a generation: once the edit is found, every
/// track and the choice are still shown. The title's call had no result
/// before the drop: what was added is read from the draft found.
#[test]
fn a_generation_found_after_a_dropped_stream_is_reported() {
    let with_title = json!({"t":[
        {"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000,"src":"https://cdn/x.mp4"}]},
        {"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}
    ],"d":10000,"m":{"width":1920,"height":1080},"ver":4});
    let h = run_with(
        false,
        vec![
            typed(
                json!({"type": "tool_result", "name": "generate_video", "result": {"video_url": "https://cdn/raw.mp4"}}),
            ),
            typed(json!({"type": "tool_call", "name": "add_title", "args": {}})),
        ],
        Err(nemo_core::transport::TransportErrorKind::Interrupted),
        Some(with_title),
    );
    assert!(finished_ok(&h.events), "{}", h.transcript);
    assert!(
        h.events.iter().any(|e| matches!(e, Event::Timeline { .. })),
        "{}",
        h.transcript
    );
    assert_eq!(
        suggestions(&h.events),
        [vec!["keep it".to_owned(), "remove the title".to_owned()]],
        "{}",
        h.transcript
    );
}

/// The same refusal served as a whole body (an event stream read at once).
#[test]
fn out_of_credits_in_a_whole_event_stream_body() {
    let mut h = Harness::new(Config::default());
    let part = file_part("/media/city.mp4", 1_000_000).unwrap();
    assert!(h.run(Command::Upload {
        files: vec![part],
        urls: vec![]
    }));
    let mut r = nemo_core::wire::Response::json(200, &json!({}));
    r.headers = vec![("content-type".into(), "text/event-stream".into())];
    r.body = b"data: {\"type\":\"error\",\"code\":2001,\"message\":\"Insufficient credits\"}\n\n"
        .to_vec();
    h.backend.sse.push_back(Reply::Response(r));
    h.run(Command::Message(UserInput::text("add lo-fi music")));
    let err = finished(&h).expect_err("fails");
    assert_eq!(err.kind, ErrorKind::OutOfCredits, "{}", h.transcript);
}

/// The typed dialect may send one reply as many `text` events with no
/// `partial` flag: they make one reply (pieces joined as sent), shown once;
/// anything else between (a tool call) ends a reply; a trailing "temporary
/// issue" stays a message of its own (and is dropped after an answer).
#[test]
fn typed_text_events_in_a_row_are_one_reply() {
    for text_deltas in [false, true] {
        let events = run_stream(
            text_deltas,
            vec![
                typed(json!({"type": "text", "content": "Trimmed the video "})),
                typed(json!({"type": "heartbeat"})),
                typed(json!({"type": "text", "content": "to 30 seconds"})),
                typed(json!({"type": "text", "content": ", as asked."})),
                typed(json!({"type": "tool_call", "name": "add_bgm", "args": {}})),
                typed(json!({"type": "text", "content": "视频已"})),
                typed(json!({"type": "text", "content": "剪辑。"})),
                typed(json!({"type": "text", "content": "I encountered a temporary issue."})),
            ],
        );
        assert_eq!(
            texts(&events),
            ["Trimmed the video to 30 seconds, as asked.", "视频已剪辑。"],
            "{events:#?}"
        );
        if text_deltas {
            assert_eq!(
                deltas(&events).concat(),
                "Trimmed the video to 30 seconds, as asked.视频已剪辑。"
            );
        }
    }
}

/// Whole sentences sent as typed texts in a row are not glued together: a
/// sentence that ends before one that starts gets a space between (in the
/// deltas too); pieces cut inside a sentence or a number stay as sent.
#[test]
fn typed_sentences_in_a_row_keep_a_space_between() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "I added lo-fi music at 35%.",
                "Want a title too?",
                "It lasts 3.",
                "5 seconds.",
            ],
            "I added lo-fi music at 35%. Want a title too? It lasts 3.5 seconds.",
        ),
        // A name or an address cut after its dot stays whole.
        (
            &[
                "I saved it as IMG_0042.",
                "MOV in your project. See example.",
                "Com/help or Final.",
                "Mp4.",
            ],
            "I saved it as IMG_0042.MOV in your project. See example.Com/help or Final.Mp4.",
        ),
        // Short sentences, a file name before the dot, capitals.
        (
            &[
                "I added music to clip_01.",
                "Want a title too?",
                "Sure.",
                "BGM is now at 35%.",
            ],
            "I added music to clip_01. Want a title too? Sure. BGM is now at 35%.",
        ),
    ];
    for text_deltas in [false, true] {
        for (pieces, want) in cases {
            let stream = pieces
                .iter()
                .map(|p| typed(json!({"type": "text", "content": p})))
                .collect();
            let events = run_stream(text_deltas, stream);
            assert_eq!(texts(&events), [want], "{events:#?}");
            if text_deltas {
                assert_eq!(deltas(&events).concat(), want);
            }
        }
    }
}

fn changes(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Change { .. }))
        .count()
}

/// A code that would send the message again (1001, 1002, 429), after the
/// agent already worked (a tool ran): the message is never sent twice; the
/// state is read as after a dropped stream and the edit reported.
#[test]
fn a_code_after_the_agent_worked_never_sends_the_message_twice() {
    for code in [1001, 1002, 429] {
        for spelling in ["typed", "bare"] {
            let error = match spelling {
                "typed" => typed(json!({"type": "error", "code": code, "message": "stop"})),
                _ => sse_event(&json!({"code": code, "message": "stop"})),
            };
            let h = run_with(
                false,
                vec![
                    typed(json!({"type": "tool_call", "name": "add_background_music", "args": {}})),
                    typed(
                        json!({"type": "tool_result", "name": "add_background_music", "result": {"status": "success"}}),
                    ),
                    error,
                ],
                Ok(()),
                Some(draft_full()),
            );
            assert_eq!(
                h.backend.run_sse_bodies.len(),
                1,
                "{code} {spelling}: {}",
                h.transcript
            );
            assert!(
                finished_ok(&h.events),
                "{code} {spelling}: {}",
                h.transcript
            );
            assert_eq!(changes(&h.events), 1, "{code} {spelling}: {}", h.transcript);
        }
    }
}

/// Keep-alives alone before the code: the server never took the message,
/// so it is sent again after the recovery.
#[test]
fn a_code_after_keep_alives_only_sends_the_message_again() {
    let h = run_with(
        false,
        vec![
            KEEPALIVE.to_vec(),
            b": ping\n\n".to_vec(),
            typed(json!({"type": "error", "code": 1001, "message": "Token expired"})),
        ],
        Ok(()),
        None,
    );
    finished(&h).expect("recovered");
    assert_eq!(h.backend.tokens, 2, "{}", h.transcript);
    assert_eq!(h.backend.run_sse_bodies.len(), 2, "{}", h.transcript);
}

/// ADK's `errorCode` is the model's error (`"429"`: the model was rate
/// limited), not the API's 429: nothing is sent again, the agent's error is
/// told.
#[test]
fn an_adk_error_code_is_the_models_not_the_apis() {
    let h = run_with(
        false,
        vec![sse_event(
            &json!({"errorCode": "429", "errorMessage": "Resource exhausted"}),
        )],
        Ok(()),
        None,
    );
    assert_eq!(h.backend.run_sse_bodies.len(), 1, "{}", h.transcript);
    let err = finished(&h).expect_err("the agent's error");
    assert_eq!(err.kind, ErrorKind::Agent, "{}", h.transcript);
}

/// After the raw video, a tool that was called but failed added nothing:
/// the choice never offers to remove it.
#[test]
fn a_failed_tool_after_the_raw_video_is_not_offered_for_removal() {
    let events = run_stream(
        false,
        vec![
            typed(
                json!({"type": "tool_result", "name": "generate_video", "result": {"status": "success", "url": "https://cdn/raw.mp4"}}),
            ),
            typed(json!({"type": "tool_call", "name": "add_title", "args": {}})),
            typed(
                json!({"type": "tool_result", "name": "add_title", "result": {"status": "cancelled"}}),
            ),
            typed(json!({"type": "tool_call", "name": "add_background_music", "args": {}})),
            typed(
                json!({"type": "tool_result", "name": "add_background_music", "result": {"status": "success"}}),
            ),
            typed(json!({"type": "text", "content": "Done, with music."})),
        ],
    );
    assert_eq!(
        suggestions(&events),
        [vec!["keep it".to_owned(), "remove the music".to_owned()]],
        "{events:#?}"
    );
}

/// A tool whose name only contains a generation tool's (a script, a
/// thumbnail) is no generation, whatever URL it gives.
#[test]
fn a_script_tool_is_no_generation() {
    let events = run_stream(
        false,
        vec![
            typed(json!({"type": "tool_call", "name": "generate_video_script", "args": {}})),
            typed(
                json!({"type": "tool_result", "name": "generate_video_script", "result": {"status": "success", "url": "https://cdn/script.txt"}}),
            ),
            typed(json!({"type": "text", "content": "Here is a script."})),
        ],
    );
    assert!(stages(&events).is_empty(), "{events:#?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Status(s) if s.starts_with("Generating"))),
        "{events:#?}"
    );
}
