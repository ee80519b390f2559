//! The envelope, state and render-status parsers on any answer: a status,
//! a `Retry-After`, a body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nemo_core::api::{self, parse_render_status, parse_state, payload, retry_after};
use nemo_core::wire::Response;

fuzz_target!(|data: &[u8]| {
    let (status, retry, body) = match data {
        [a, b, r, rest @ ..] => (100 + (u16::from_le_bytes([*a, *b]) % 500), *r, rest),
        _ => (200, 0, data),
    };
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if retry & 1 == 1 {
        let text = String::from_utf8_lossy(&body[..body.len().min(usize::from(retry >> 2))]);
        headers.push(("retry-after".to_owned(), text.into_owned()));
    }
    if retry & 2 == 2 {
        headers.push(("retry-after-ms".to_owned(), format!("{}", retry)));
    }
    let response = Response {
        status,
        headers,
        body: body.to_vec(),
    };
    let _ = retry_after(&response.headers);
    if let Err(e) = payload(&response) {
        let _ = e.to_string();
    }
    let _ = parse_state(&response).map(|s| s.state.draft.map(|d| d.timeline().to_string()));
    let _ = parse_render_status(&response);
    let _ = api::parse::<api::Credits>(&response).map(|c| c.to_string());
    let _ = api::parse::<api::Uploaded>(&response);
    let _ = api::parse::<api::SessionCreated>(&response);
    let _ = api::parse::<api::AnonymousToken>(&response);
    let _ = api::parse::<api::RenderAccepted>(&response);
    let _ = api::parse::<api::ClaimToken>(&response);
});
