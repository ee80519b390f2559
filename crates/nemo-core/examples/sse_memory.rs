//! Peak memory of decoding a stream with no line break at all (a broken or
//! hostile server), fed in 8 KiB chunks.
//!
//! `cargo run --release --example sse_memory -- ours 1024` feeds 1024 MiB to
//! `nemo-core`'s decoder; `… -- baseline 1024` to `eventsource-stream`.
//! Prints one JSON object with the process's peak RSS (VmHWM, Linux).

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use nemo_core::sse::{Decoder, Frame};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let chunk = Bytes::from(vec![b'x'; 8 * 1024]);
    let chunks = mib * 1024 / 8;
    let started = std::time::Instant::now();
    let too_long = match which.as_str() {
        "baseline" => {
            let stream = futures_util::stream::iter(
                (0..chunks).map(|_| Ok::<_, std::convert::Infallible>(chunk.clone())),
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut events = stream.eventsource();
                let mut n = 0usize;
                while let Some(e) = events.next().await {
                    n += usize::from(e.is_err());
                }
                n
            })
        }
        _ => {
            let mut decoder = Decoder::new();
            let mut frames = Vec::new();
            for _ in 0..chunks {
                decoder.feed(&chunk, &mut frames);
            }
            decoder.finish();
            frames
                .iter()
                .filter(|f| matches!(f, Frame::LineTooLong))
                .count()
        }
    };
    println!(
        "{{\"decoder\":\"{which}\",\"input_mib\":{mib},\"peak_rss_kib\":{},\"seconds\":{:.3},\"reported\":{too_long}}}",
        peak_rss_kib().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}
