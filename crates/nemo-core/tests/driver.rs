//! The async driver over a scripted transport, in tokio's paused time: events
//! arrive while the stream is open, deadlines race chunks correctly, and a
//! dropped future plus `abort` stops a command cleanly.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::driver::Driver;
use nemo_core::machine::{Config, Event};
use nemo_core::route::UserInput;
use nemo_core::time::{Clock, Instant};
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, Transport,
    TransportError,
};
use nemo_core::wire::{Request, Response};
use support::*;

/// A clock on tokio's (paused) timeline.
struct TokioClock(tokio::time::Instant);

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_origin(self.0.elapsed())
    }
    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + deadline.since_origin()).await;
    }
    fn unix_ms(&self) -> u64 {
        1_795_262_134_520 + self.0.elapsed().as_millis() as u64
    }
}

struct Scripted {
    backend: Mutex<Backend>,
    start: tokio::time::Instant,
}

impl Scripted {
    fn reply(&self, req: &Request) -> Reply {
        let now = Instant::from_origin(self.start.elapsed());
        self.backend.lock().unwrap().answer_public(now, req)
    }
}

struct ChunkStream {
    start: tokio::time::Instant,
    chunks: std::collections::VecDeque<(Duration, Vec<u8>)>,
    end: Option<Result<(), nemo_core::transport::TransportErrorKind>>,
}

#[async_trait]
impl ByteStream for ChunkStream {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        if let Some((at, chunk)) = self.chunks.front().cloned() {
            tokio::time::sleep_until(self.start + at).await;
            self.chunks.pop_front();
            return Some(Ok(Bytes::from(chunk)));
        }
        match self.end.take() {
            Some(Err(kind)) => Some(Err(TransportError::new(kind, "reset"))),
            _ => None,
        }
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        // An upload reports its body going out, in two steps.
        if let Some(p) = progress {
            for done in [50, 100] {
                p(nemo_core::transport::Progress {
                    done,
                    total: Some(100),
                });
            }
        }
        match self.reply(request) {
            Reply::Response(r) => Ok(r),
            Reply::Error(kind) => Err(TransportError::new(kind, "simulated")),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        match self.reply(request) {
            Reply::Stream {
                chunks,
                end,
                draft_after,
            } => {
                if let Some(d) = draft_after {
                    self.backend.lock().unwrap().draft = Some(d);
                }
                Ok(StreamResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "text/event-stream".into())],
                    body: Box::new(ChunkStream {
                        start: tokio::time::Instant::now(),
                        chunks: chunks.into(),
                        end: Some(end),
                    }),
                })
            }
            Reply::Response(r) => Ok(StreamResponse {
                status: r.status,
                headers: r.headers,
                body: Box::new(ChunkStream {
                    start: tokio::time::Instant::now(),
                    chunks: vec![(Duration::ZERO, r.body)].into(),
                    end: Some(Ok(())),
                }),
            }),
            Reply::Error(kind) => Err(TransportError::new(kind, "simulated")),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn download(
        &self,
        request: &Request,
        _dest: &Path,
        _options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        if let Some(p) = progress {
            for done in [2048, 4096] {
                p(nemo_core::transport::Progress {
                    done,
                    total: Some(4096),
                });
            }
        }
        match self.reply(request) {
            Reply::Download(r) => r.map_err(|k| TransportError::new(k, "simulated")),
            Reply::Response(r) => Ok(DownloadOutcome::Refused(r)),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn driver(backend: Backend) -> Driver<Scripted, TokioClock> {
    let start = tokio::time::Instant::now();
    let session = nemo_core::machine::Session::new(Config {
        client_id: "client-1".into(),
        ..Config::default()
    });
    Driver::new(
        session,
        Arc::new(Scripted {
            backend: Mutex::new(backend),
            start,
        }),
        TokioClock(start),
    )
}

#[tokio::test(start_paused = true)]
async fn a_whole_workflow_over_the_driver() {
    let mut backend = Backend::default();
    backend.sse.push_back(Reply::Stream {
        chunks: vec![
            (Duration::from_secs(1), text_event("Adding music", true)),
            (Duration::from_secs(150), KEEPALIVE.to_vec()),
            (
                Duration::from_secs(200),
                text_event("Added lo-fi music at 35%. 点击导出即可下载。", false),
            ),
        ],
        end: Ok(()),
        draft_after: Some(draft_full()),
    });
    let mut d = driver(backend);
    let transfers = Arc::new(Mutex::new(Vec::new()));
    let t = transfers.clone();
    d.on_progress(Arc::new(move |kind, p| {
        t.lock().unwrap().push((kind, p.done))
    }));
    let mut seen = Vec::new();
    let mut sink = |e: &Event| seen.push(e.clone());
    let clip = nemo_core::api::file_part("clip.mp4", 100).unwrap();
    d.upload(vec![clip], vec![], &mut sink).await.unwrap();
    d.say(
        UserInput::text("add lo-fi BGM at 35% and export"),
        &mut sink,
    )
    .await
    .unwrap();
    let texts: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::AgentText { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Added lo-fi music at 35%."]);
    assert!(seen.iter().any(
        |e| matches!(e, Event::StillWorking { elapsed } if *elapsed == Duration::from_secs(120))
    ));
    let render_id = seen.iter().find_map(|e| match e {
        Event::RenderStarting { id, .. } => Some(id.clone()),
        _ => None,
    });
    assert!(
        render_id.unwrap().starts_with("render_17952621"),
        "the driver names renders by time"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::Downloaded { bytes: 4096, .. })));
    assert!(
        !transfers.lock().unwrap().is_empty(),
        "download progress reached the sink"
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_only_streams_time_out_in_virtual_time() {
    let mut backend = Backend {
        draft: Some(draft_video()),
        ..Backend::default()
    };
    backend.sse.push_back(Reply::Stream {
        chunks: (1..2000)
            .map(|s| (Duration::from_secs(s), KEEPALIVE.to_vec()))
            .collect(),
        end: Ok(()),
        draft_after: None,
    });
    let mut d = driver(backend);
    let mut seen = Vec::new();
    let started = std::time::Instant::now();
    let result = d
        .say(UserInput::text("make it cinematic"), &mut |e: &Event| {
            seen.push(e.clone())
        })
        .await;
    assert_eq!(
        result.unwrap_err().kind,
        nemo_core::error::ErrorKind::Unconfirmed
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "virtual time, not real time"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::Note(n) if n.contains("only keep-alives"))));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_future_and_abort_end_the_command() {
    let backend = Backend {
        draft: Some(draft_video()),
        render_duration: Duration::from_secs(600),
        ..Backend::default()
    };
    let mut d = driver(backend);
    let mut seen = Vec::new();
    let mut sink = |e: &Event| seen.push(e.clone());
    let clip = nemo_core::api::file_part("clip.mp4", 100).unwrap();
    d.upload(vec![clip], vec![], &mut sink).await.unwrap();
    let stopped = tokio::time::timeout(
        Duration::from_secs(20),
        d.export(None, true, false, &mut sink),
    )
    .await;
    assert!(stopped.is_err(), "still rendering after 20 s");
    let mut after = Vec::new();
    d.abort(&mut |e: &Event| after.push(e.clone()));
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::RenderStarting { .. })));
    match &after[..] {
        [Event::Finished { result: Err(e), .. }] => {
            assert_eq!(e.kind, nemo_core::error::ErrorKind::Cancelled);
            assert!(e.message.contains("keeps going on the server"), "{e}");
            assert!(e.render_id().is_some(), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// `Driver::transfer_events(true)`: upload and download progress reach the
/// command's sink as `Event::Transfer`, live (before the upload's and the
/// download's own events), next to `on_progress`, which works as before.
/// Off by default.
#[tokio::test(start_paused = true)]
async fn transfer_progress_reaches_the_sink_when_asked_for() {
    use nemo_core::machine::TransferKind;

    let run = |events: bool| async move {
        let backend = Backend {
            draft: Some(draft_video()),
            render_duration: Duration::from_secs(5),
            ..Backend::default()
        };
        let mut d = driver(backend);
        d.transfer_events(events);
        let bars = Arc::new(Mutex::new(Vec::new()));
        let b = bars.clone();
        d.on_progress(Arc::new(move |kind, p| {
            b.lock().unwrap().push((kind, p.done))
        }));
        let mut seen = Vec::new();
        let mut sink = |e: &Event| seen.push(e.clone());
        let clip = nemo_core::api::file_part("clip.mp4", 100).unwrap();
        d.upload(vec![clip], vec![], &mut sink).await.unwrap();
        d.export(None, true, false, &mut sink).await.unwrap();
        let bars = bars.lock().unwrap().clone();
        (seen, bars)
    };

    let (seen, bars) = run(true).await;
    let transfers: Vec<(TransferKind, u64, Option<u64>)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Transfer { kind, done, total } => Some((*kind, *done, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(
        transfers,
        [
            (TransferKind::Upload, 50, Some(100)),
            (TransferKind::Upload, 100, Some(100)),
            (TransferKind::Download, 2048, Some(4096)),
            (TransferKind::Download, 4096, Some(4096)),
        ]
    );
    let position = |f: &dyn Fn(&Event) -> bool| seen.iter().position(f).unwrap();
    assert!(
        position(&|e| matches!(
            e,
            Event::Transfer {
                kind: TransferKind::Upload,
                ..
            }
        )) < position(&|e| matches!(e, Event::Uploaded { .. }))
    );
    assert!(
        position(&|e| matches!(
            e,
            Event::Transfer {
                kind: TransferKind::Download,
                ..
            }
        )) < position(&|e| matches!(e, Event::Downloaded { .. }))
    );
    for event in seen.iter().filter(|e| matches!(e, Event::Transfer { .. })) {
        let object = nemo_core::ndjson::to_json(event).unwrap();
        assert_eq!(object["type"], "transfer");
    }
    // `on_progress` saw the same reports.
    assert_eq!(bars.len(), 4);

    let (seen, bars) = run(false).await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Transfer { .. })));
    assert_eq!(bars.len(), 4, "on_progress works as before");
}

/// An API code inside an open stream ends the command through the driver
/// with that code's error (the command's end is told once the stream is
/// over, never swallowed while it is being read); 1001 in a stream gets a
/// new token and the message once more.
#[tokio::test(start_paused = true)]
async fn codes_inside_the_stream_end_the_command_through_the_driver() {
    let mut backend = Backend {
        draft: Some(draft_video()),
        ..Backend::default()
    };
    backend.sse.push_back(Reply::Stream {
        chunks: vec![
            (Duration::from_secs(1), KEEPALIVE.to_vec()),
            (
                Duration::from_secs(2),
                sse_event(
                    &serde_json::json!({"type": "error", "code": 2001, "message": "Insufficient credits"}),
                ),
            ),
            (Duration::from_secs(3), KEEPALIVE.to_vec()),
        ],
        end: Ok(()),
        draft_after: None,
    });
    let mut d = driver(backend);
    let result = d
        .say(UserInput::text("add lo-fi music"), &mut |_: &Event| {})
        .await;
    assert_eq!(
        result.unwrap_err().kind,
        nemo_core::error::ErrorKind::OutOfCredits
    );

    let mut backend = Backend {
        draft: Some(draft_video()),
        ..Backend::default()
    };
    backend.sse.push_back(Reply::Stream {
        chunks: vec![(
            Duration::from_secs(1),
            sse_event(&serde_json::json!({"code": "1001", "message": "Token expired"})),
        )],
        end: Ok(()),
        draft_after: None,
    });
    let mut d = driver(backend);
    let mut said = Vec::new();
    d.say(UserInput::text("add lo-fi music"), &mut |e: &Event| {
        if let Event::AgentText { text, .. } = e {
            said.push(text.clone());
        }
    })
    .await
    .expect("renewed and sent again");
    assert_eq!(said, ["Done."]);
}

/// A code inside a stream that stays open (heartbeats for an hour after
/// it): the code is final at once, the stream is dropped, and the command
/// ends with the code's error, not after the stream or a wait for the
/// state.
#[tokio::test(start_paused = true)]
async fn a_code_inside_a_stream_that_stays_open_ends_the_command_at_once() {
    let mut backend = Backend {
        draft: Some(draft_video()),
        ..Backend::default()
    };
    let mut chunks = vec![(
        Duration::from_secs(2),
        sse_event(
            &serde_json::json!({"type": "error", "code": 2001, "message": "Insufficient credits"}),
        ),
    )];
    chunks.extend((1..=360).map(|n| (Duration::from_secs(2 + 10 * n), KEEPALIVE.to_vec())));
    backend.sse.push_back(Reply::Stream {
        chunks,
        end: Ok(()),
        draft_after: None,
    });
    let mut d = driver(backend);
    let start = tokio::time::Instant::now();
    let result = d
        .say(UserInput::text("add lo-fi music"), &mut |_: &Event| {})
        .await;
    assert_eq!(
        result.unwrap_err().kind,
        nemo_core::error::ErrorKind::OutOfCredits
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
