//! Load on a simulator: many concurrent `/run_sse` streams with keep-alives.
//!
//! `cargo run --release -p nemo-http --example sse_load -- http://127.0.0.1:PORT 1000`
//! gives every stream its own client id, token and session, uploads a media
//! link, then opens all streams at once and reads them to the end. Prints one
//! JSON object: streams, completed, errors, time to first event (p50, p99,
//! max) and the wall time. Run the simulator as its own process (e.g.
//! `nemo mock --time-scale 0.05 --faults run_sse:long`) to measure its memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nemo_core::api::{self, Api, Attribution};
use nemo_core::transport::Transport;
use nemo_http::{HttpConfig, HttpTransport};

async fn one(
    transport: Arc<HttpTransport>,
    index: usize,
    start: Arc<tokio::sync::Barrier>,
) -> Result<(Duration, usize), String> {
    let api = Api::new(Attribution::default());
    let client_id = format!("00000000-0000-4000-8000-{index:012}");
    let grant: api::AnonymousToken = api::parse(
        &transport
            .send(&api.anonymous_token(&client_id), None)
            .await
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let session: api::SessionCreated = api::parse(
        &transport
            .send(&api.create_session(&grant.token, "en"), None)
            .await
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let sid = session.session_id;
    let _: api::Uploaded = api::parse(
        &transport
            .send(
                &api.upload_urls(
                    &grant.token,
                    &sid,
                    &["https://cdn.example.com/clips/city.mp4".into()],
                ),
                None,
            )
            .await
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    start.wait().await;
    let sent = Instant::now();
    let mut stream = transport
        .open_stream(&api.run_sse(&grant.token, &sid, "add lo-fi background music at 35%"))
        .await
        .map_err(|e| e.to_string())?;
    if stream.status != 200 {
        return Err(format!("HTTP {}", stream.status));
    }
    let mut first = None;
    let mut bytes = 0;
    while let Some(chunk) = stream.body.next_chunk().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        first.get_or_insert_with(|| sent.elapsed());
        bytes += chunk.len();
    }
    Ok((first.unwrap_or_default(), bytes))
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8787".into());
    let streams: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let transport = Arc::new(
        HttpTransport::new(HttpConfig {
            stream_cap: Duration::from_secs(600),
            ..HttpConfig::new(url)
        })
        .expect("transport"),
    );
    let start = Arc::new(tokio::sync::Barrier::new(streams));
    let began = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| tokio::spawn(one(transport.clone(), i, start.clone())))
        .collect();
    let mut firsts = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok((first, _))) => firsts.push(first),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    firsts.sort();
    let sample: Vec<String> = errors.iter().take(3).map(|e| format!("{e:?}")).collect();
    println!(
        "{{\"streams\":{streams},\"completed\":{},\"errors\":{},\"first_event_p50_ms\":{:.1},\"first_event_p99_ms\":{:.1},\"first_event_max_ms\":{:.1},\"wall_s\":{:.2},\"error_sample\":[{}]}}",
        firsts.len(),
        errors.len(),
        pct(&firsts, 0.5),
        pct(&firsts, 0.99),
        firsts.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        began.elapsed().as_secs_f64(),
        sample.join(",")
    );
}
