//! Records a synthetic event stream of N MB through `Recorder::to_file`, as
//! `nemo --record` would: `record_stream <megabytes> <output.har> [memory]`.
//!
//! The stream is ADK-like `data:` events (some echoing the bearer token,
//! JSON-escaped) in 64 KiB chunks, generated on the fly, so the process's
//! peak RSS is the recorder's. With `memory`, records with `Recorder::new`
//! and `save` instead (the whole stream in memory), for comparison.
//!
//! Prints one JSON object: `{"mode", "megabytes", "seconds", "file_bytes",
//! "peak_buffered_bytes"}`. `cargo xtask bench` runs it and reads the peak
//! RSS from the OS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_clock::TokioClock;
use nemo_core::secret::Secret;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, Endpoint, Header, HeaderValue, Method, Request, Response, Target};
use nemo_har::Recorder;

const TOKEN: &str = "nmv_usr_5f3a9c0d7e1b2468ace0bdf13579beef";
const CHUNK: usize = 64 * 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mb), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: record_stream <megabytes> <output.har> [memory]".into());
    };
    let megabytes: u64 = mb.parse()?;
    let out = PathBuf::from(out);
    let in_memory = args.get(2).is_some_and(|m| m == "memory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let started = Instant::now();
    let peak = runtime.block_on(record(megabytes * 1_000_000, &out, in_memory))?;
    let seconds = started.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&out)?.len();
    println!(
        "{}",
        serde_json::json!({
            "mode": if in_memory { "memory" } else { "to_file" },
            "megabytes": megabytes,
            "seconds": seconds,
            "file_bytes": file_bytes,
            "peak_buffered_bytes": peak,
        })
    );
    Ok(())
}

async fn record(
    total: u64,
    out: &Path,
    in_memory: bool,
) -> Result<usize, Box<dyn std::error::Error>> {
    let transport = Arc::new(Synthetic { total });
    let clock = Arc::new(TokioClock::new().starting_at(1_780_000_000_000));
    let recorder = if in_memory {
        Recorder::new(transport, "https://api.example", clock)
    } else {
        Recorder::to_file(transport, "https://api.example", clock, out)?
    };
    recorder.start_page("a long stream");
    let request = Request {
        endpoint: Endpoint::RunSse,
        method: Method::Post,
        target: Target::Api("/run_sse".into()),
        headers: vec![Header {
            name: "authorization",
            value: HeaderValue::Sensitive(Secret::new(format!("Bearer {TOKEN}"))),
        }],
        body: Body::Json(r#"{"new_message":{"parts":[{"text":"make it long"}]}}"#.into()),
    };
    let mut stream = recorder.open_stream(&request).await?;
    while let Some(chunk) = stream.body.next_chunk().await {
        chunk?;
    }
    drop(stream);
    recorder.save(out)?;
    Ok(recorder.peak_buffered_bytes())
}

/// An event stream of `total` bytes.
struct Synthetic {
    total: u64,
}

#[async_trait]
impl Transport for Synthetic {
    async fn send(
        &self,
        _request: &Request,
        _progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Other,
            "stream only",
        ))
    }

    async fn open_stream(&self, _request: &Request) -> Result<StreamResponse, TransportError> {
        let escaped = TOKEN.replace('_', "\\u005f");
        let pattern: String = (0..97)
            .map(|i| {
                let echo = if i % 10 == 0 { escaped.as_str() } else { "" };
                format!(
                    "data: {{\"content\":{{\"parts\":[{{\"text\":\"{}\"}}],\"role\":\"model\"}},\
                     \"partial\":true,\"invocationId\":\"e-{i:04}\",\"author\":\"nemo_agent\",\
                     \"echo\":\"{echo}\"}}\n\n",
                    "the quick brown fox jumps over the lazy dog ".repeat(i % 17 + 1)
                )
            })
            .collect();
        Ok(StreamResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: Box::new(Generated {
                pattern: pattern.into_bytes(),
                at: 0,
                left: self.total,
            }),
        })
    }

    async fn download(
        &self,
        _request: &Request,
        _dest: &Path,
        _options: DownloadOptions,
        _progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        Err(TransportError::new(
            TransportErrorKind::Other,
            "stream only",
        ))
    }
}

/// `left` bytes of `pattern`, repeated, in 64 KiB chunks.
struct Generated {
    pattern: Vec<u8>,
    at: usize,
    left: u64,
}

#[async_trait]
impl ByteStream for Generated {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        if self.left == 0 {
            return None;
        }
        let n = usize::try_from(self.left).map_or(CHUNK, |l| l.min(CHUNK));
        let mut chunk = Vec::with_capacity(n);
        while chunk.len() < n {
            let take = (n - chunk.len()).min(self.pattern.len() - self.at);
            chunk.extend_from_slice(&self.pattern[self.at..self.at + take]);
            self.at = (self.at + take) % self.pattern.len();
        }
        self.left -= n as u64;
        Some(Ok(Bytes::from(chunk)))
    }
}
