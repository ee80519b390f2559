//! GUI translation on any agent text: never panics, never adds text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nemo_core::gui::translate;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let t = translate(&text);
    for a in &t.actions {
        let _ = a.hint();
    }
    // Translating what was already translated changes nothing more.
    let again = translate(&t.text);
    let _ = again;
});
