//! The SSE decoder: any bytes, split anywhere, with small and default limits.
//! Decoding in chunks must give the frames of decoding in one piece, and the
//! buffered line never outgrows the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nemo_core::sse::{Decoder, Frame};

fn decode(decoder: &mut Decoder, chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut frames = Vec::new();
    for c in chunks {
        decoder.feed(c, &mut frames);
    }
    let cut = decoder.finish();
    (frames, cut)
}

fuzz_target!(|data: &[u8]| {
    // First byte: where to cut (a stride), second: which limits.
    let (stride, small, body) = match data {
        [a, b, rest @ ..] => (usize::from(*a).max(1), b & 1 == 1, rest),
        _ => (1, false, data),
    };
    let make = || {
        if small {
            Decoder::with_limits(64, 256)
        } else {
            Decoder::new()
        }
    };
    let whole = decode(&mut make(), &[body]);
    let chunks: Vec<&[u8]> = body.chunks(stride).collect();
    let split = decode(&mut make(), &chunks);
    assert_eq!(whole, split, "chunking changed the frames");
    for f in &whole.0 {
        if let Frame::Event(e) = f {
            if small {
                // Raw bytes are bounded by the limit; lossy UTF-8 may triple them.
                assert!(e.data.len() <= 3 * 256, "event over the limit");
            }
        }
    }
    // A decoder is reusable after finish().
    let mut again = make();
    let _ = decode(&mut again, &[body]);
    let _ = decode(&mut again, &chunks);
});
