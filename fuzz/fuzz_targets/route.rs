//! The intent router on any message, with and without a draft and URLs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nemo_core::route::{find_urls, is_media_url, route, RouteContext, UserInput};

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = match data {
        [f, rest @ ..] => (*f, rest),
        _ => (0, data),
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    let mut urls = Vec::new();
    if flags & 2 == 2 {
        urls.extend(find_urls(&text));
    }
    for u in &urls {
        let _ = is_media_url(u);
    }
    let input = UserInput {
        text,
        files: Vec::new(),
        urls,
    };
    let plan = route(
        &input,
        RouteContext {
            has_draft: flags & 1 == 1,
        },
    );
    let _ = plan.to_string();
    let _ = plan.uses_agent();
});
