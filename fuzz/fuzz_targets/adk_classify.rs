//! The ADK event classifier and the text assembler on any `data:` payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nemo_core::adk::{classify, AgentEvent, TextAssembler};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let events = classify(&text);
    let mut assembler = TextAssembler::new();
    for ev in &events {
        let _ = format!("{ev:?}");
        if let AgentEvent::Text { text, partial } = ev {
            let _ = assembler.push(text, *partial);
        }
    }
    let _ = assembler.finish();
    let _ = assembler.said_anything();
});
