//! SSE decoding throughput: `nemo-core`'s decoder against the
//! `eventsource-stream` crate, on the same 64 MB stream of ADK events fed in
//! 8 KiB chunks. `cargo xtask bench` reads the results and reports the ratio.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use nemo_core::sse::{Decoder, Frame};

/// Size of the stream (`NEMO_BENCH_SSE_MB` overrides, for quick runs).
fn stream_bytes() -> usize {
    std::env::var("NEMO_BENCH_SSE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
        * 1024
        * 1024
}

/// A realistic mix: partial text pieces, tool calls and results with state
/// deltas, final texts and keep-alives, as the agent sends them.
fn adk_stream(size: usize) -> Vec<u8> {
    let events = [
        r#"data: {"content":{"parts":[{"text":"I'm adding lo-fi background music at 35% "}],"role":"model"},"partial":true,"invocationId":"e-4f1c2a9b","author":"nemo_agent","actions":{"stateDelta":{},"artifactDelta":{},"requestedAuthConfigs":{}},"id":"Xk2pQ9aB","timestamp":1795262134.521344}"#,
        r#"data: {"content":{"parts":[{"functionCall":{"args":{"track":"bgm","name":"Lo-fi","volume":0.35},"id":"adk-8c1d","name":"add_background_music"}}],"role":"model"},"invocationId":"e-4f1c2a9b","author":"nemo_agent","actions":{"stateDelta":{},"artifactDelta":{}},"id":"Yq7rT2cD","timestamp":1795262135.102931}"#,
        r#"data: {"type":"heartbeat"}"#,
        r#"data: {"content":{"parts":[{"functionResponse":{"id":"adk-8c1d","name":"add_background_music","response":{"status":"ok","track_id":"trk_a"}}}],"role":"user"},"invocationId":"e-4f1c2a9b","author":"nemo_agent","actions":{"stateDelta":{"draft":{"t":[{"tt":0,"sg":[{"n":"city","st":0,"d":10000}]},{"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":10000,"v":0.35}]}],"d":10000}}},"id":"Zm3nP8eF","timestamp":1795262137.880112}"#,
        ": ping",
        r#"data: {"content":{"parts":[{"text":"I'm adding lo-fi background music at 35% and the title \"Urban Dreams\". 点击导出即可下载。"}],"role":"model"},"invocationId":"e-4f1c2a9b","author":"nemo_agent","actions":{"stateDelta":{}},"id":"Wp4kL1gH","timestamp":1795262139.004418}"#,
        "data:",
    ];
    let mut out = Vec::with_capacity(size + 1024);
    let mut i = 0;
    while out.len() < size {
        out.extend_from_slice(events[i % events.len()].as_bytes());
        out.extend_from_slice(b"\n\n");
        i += 1;
    }
    out
}

fn chunks(stream: &[u8]) -> Vec<Bytes> {
    stream
        .chunks(8 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn ours(chunks: &[Bytes]) -> usize {
    let mut decoder = Decoder::new();
    let mut frames = Vec::with_capacity(64);
    let mut events = 0;
    for c in chunks {
        decoder.feed(c, &mut frames);
        events += frames
            .iter()
            .filter(|f| matches!(f, Frame::Event(_)))
            .count();
        frames.clear();
    }
    events
}

fn baseline(rt: &tokio::runtime::Runtime, chunks: &[Bytes]) -> usize {
    let stream = futures_util::stream::iter(
        chunks
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
    );
    rt.block_on(async move {
        let mut events = stream.eventsource();
        let mut n = 0;
        while let Some(e) = events.next().await {
            if e.is_ok() {
                n += 1;
            }
        }
        n
    })
}

fn bench(c: &mut Criterion) {
    let stream = adk_stream(stream_bytes());
    let chunks = chunks(&stream);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Both decoders must agree on what they decode: comments and keep-alive
    // comments are not events for eventsource-stream either.
    assert_eq!(
        ours(&chunks),
        baseline(&rt, &chunks),
        "the decoders disagree"
    );

    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.sample_size(10);
    group.bench_function("nemo-core", |b| {
        b.iter(|| black_box(ours(black_box(&chunks))))
    });
    group.bench_function("eventsource-stream", |b| {
        b.iter(|| black_box(baseline(&rt, black_box(&chunks))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
