//! `Config::text_deltas`: the agent's text piece by piece while the stream
//! is open, in both event dialects; off by default.

mod support;

use std::time::Duration;

use nemo_core::api::file_part;
use nemo_core::machine::{Command, Config, Event};
use nemo_core::route::UserInput;
use serde_json::json;
use support::*;

fn run_stream(text_deltas: bool, chunks: Vec<Vec<u8>>) -> Vec<Event> {
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
        end: Ok(()),
        draft_after: Some(draft_full()),
    });
    assert!(h.run(Command::Message(UserInput::text("add lo-fi music"))));
    h.events
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
