//! Draft summaries and diffs: two JSON documents (split at the first 0xFF).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nemo_core::draft::{diff, Draft};

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&c| c == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let parse = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| Draft::parse(s).ok())
    };
    let before = parse(a);
    let after = parse(b);
    for d in before.iter().chain(after.iter()) {
        let _ = d.timeline().to_string();
        let _ = d.is_ready_for_export();
        for t in &d.timeline().tracks {
            let _ = t.describe();
        }
    }
    if let Some(after) = &after {
        let change = diff(before.as_ref(), after);
        let _ = change.summary();
        let _ = change.is_empty();
    }
    if let Some(before) = &before {
        let _ = diff(None, before).summary();
        let _ = diff(Some(before), before).summary();
    }
});
