//! A scripted backend and a virtual-time harness for the session machine.
//!
//! The backend answers like the NemoVideo API by default; tests queue
//! [`Reply`]s per endpoint to inject faults. The harness runs the machine and
//! the backend step by step in virtual time and writes a transcript of what
//! was sent and what the user would see.

#![allow(dead_code, unreachable_pub, missing_docs)] // shared by several test files

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use nemo_core::machine::{Command, Config, Event, Mode, Session};
use nemo_core::time::Instant;
use nemo_core::transport::{DownloadOutcome, TransportError, TransportErrorKind};
use nemo_core::wire::{Body, Endpoint, Request, Response, Target};
use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole response.
    Response(Response),
    /// An event stream: chunks at offsets from the stream's start, then the end.
    Stream {
        chunks: Vec<(Duration, Vec<u8>)>,
        end: Result<(), TransportErrorKind>,
        /// The draft after the agent's work (applied when the stream starts).
        draft_after: Option<Value>,
    },
    /// No response.
    Error(TransportErrorKind),
    /// A download's outcome.
    Download(Result<DownloadOutcome, TransportErrorKind>),
}

pub fn api_ok(data: Value) -> Reply {
    Reply::Response(Response::json(
        200,
        &json!({"code":0,"message":"success","data":data}),
    ))
}

pub fn api_err(status: u16, code: i64, message: &str) -> Reply {
    Reply::Response(Response::json(
        status,
        &json!({"code":code,"message":message,"data":null}),
    ))
}

pub fn with_header(reply: Reply, name: &str, value: &str) -> Reply {
    match reply {
        Reply::Response(mut r) => {
            r.headers.push((name.to_owned(), value.to_owned()));
            Reply::Response(r)
        }
        other => other,
    }
}

pub fn sse_event(v: &Value) -> Vec<u8> {
    format!("data: {v}\n\n").into_bytes()
}

pub fn text_event(text: &str, partial: bool) -> Vec<u8> {
    sse_event(&json!({
        "content":{"role":"model","parts":[{"text":text}]},
        "partial":partial,"invocationId":"e-1","author":"nemo_agent","actions":{"stateDelta":{}},
        "id":"ev","timestamp":1795262134.52
    }))
}

pub fn tool_events(name: &str) -> Vec<u8> {
    let mut out = sse_event(&json!({
        "content":{"role":"model","parts":[{"functionCall":{"id":"c1","name":name,"args":{}}}]},
        "invocationId":"e-1","author":"nemo_agent","actions":{},"id":"ev1","timestamp":1.0
    }));
    out.extend(sse_event(&json!({
        "content":{"role":"user","parts":[{"functionResponse":{"id":"c1","name":name,"response":{"ok":true}}}]},
        "invocationId":"e-1","author":"nemo_agent","actions":{"stateDelta":{"draft":"…"}},"id":"ev2","timestamp":2.0
    })));
    out
}

pub const KEEPALIVE: &[u8] = b"data: {\"type\":\"heartbeat\"}\n\n";

pub fn draft_video() -> Value {
    json!({"t":[{"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000,"src":"https://cdn/x.mp4"}]}],"d":10000,"m":{"width":1920,"height":1080},"ver":3})
}

pub fn draft_full() -> Value {
    json!({"t":[
        {"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000,"src":"https://cdn/x.mp4"}]},
        {"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":10000,"v":0.35}]},
        {"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}
    ],"d":10000,"m":{"width":1920,"height":1080},"ver":3})
}

/// A render's timeline in the fake backend.
#[derive(Debug, Clone)]
pub struct FakeRender {
    pub started: Instant,
    pub duration: Duration,
    pub fail: bool,
}

/// The scripted backend.
pub struct Backend {
    pub draft: Option<Value>,
    pub faults: HashMap<Endpoint, VecDeque<Reply>>,
    pub sse: VecDeque<Reply>,
    pub renders: HashMap<String, FakeRender>,
    pub render_duration: Duration,
    pub sessions: u64,
    pub tokens: u64,
    pub log: Vec<String>,
    pub run_sse_bodies: Vec<String>,
    /// `/run_sse` requests the agent may have received (a stream started,
    /// or the answer was lost): must never exceed one per user message.
    pub sse_delivered: usize,
}

impl Default for Backend {
    fn default() -> Self {
        Self {
            draft: None,
            faults: HashMap::new(),
            sse: VecDeque::new(),
            renders: HashMap::new(),
            render_duration: Duration::from_secs(30),
            sessions: 0,
            tokens: 0,
            log: Vec::new(),
            run_sse_bodies: Vec::new(),
            sse_delivered: 0,
        }
    }
}

impl Backend {
    pub fn fault(&mut self, endpoint: Endpoint, reply: Reply) {
        self.faults.entry(endpoint).or_default().push_back(reply);
    }

    /// The answer to `req` at `now` (for transports built on this backend).
    pub fn answer_public(&mut self, now: Instant, req: &Request) -> Reply {
        self.answer(now, req)
    }

    fn answer(&mut self, now: Instant, req: &Request) -> Reply {
        let reply = self.answer_inner(now, req);
        if req.endpoint == Endpoint::RunSse {
            let delivered = match &reply {
                Reply::Stream { .. } => true,
                Reply::Error(kind) => *kind != TransportErrorKind::Connect,
                // An API error envelope is a refusal; anything else may
                // have been acted on.
                Reply::Response(r) => {
                    r.status >= 500
                        || !matches!(
                            nemo_core::api::payload(r),
                            Err(nemo_core::api::ResponseError::Api(_))
                        )
                }
                Reply::Download(_) => false,
            };
            if delivered {
                self.sse_delivered += 1;
            }
        }
        reply
    }

    fn answer_inner(&mut self, now: Instant, req: &Request) -> Reply {
        if let Some(reply) = self
            .faults
            .get_mut(&req.endpoint)
            .and_then(VecDeque::pop_front)
        {
            return reply;
        }
        let path = match &req.target {
            Target::Api(p) => p.clone(),
            Target::Absolute(u) => u.clone(),
        };
        match req.endpoint {
            Endpoint::AnonymousToken => {
                self.tokens += 1;
                api_ok(
                    json!({"token": format!("nmv_usr_test{}", self.tokens), "user_id":"anon_42","expires_at":"2026-11-28T00:00:00Z","credits":100}),
                )
            }
            Endpoint::CreateSession => {
                self.sessions += 1;
                self.draft = None;
                api_ok(
                    json!({"task_id": format!("task_{}", self.sessions), "session_id": format!("552979870602441523{}", self.sessions), "user_id":"anon_42"}),
                )
            }
            Endpoint::Credits => api_ok(json!({"available": 95, "frozen": 5, "total": 100})),
            Endpoint::State => api_ok(
                json!({"session_id":"x","state":{"draft": self.draft.clone(),"video_infos":[]}}),
            ),
            Endpoint::Upload => {
                let names: Vec<String> = match &req.body {
                    Body::Multipart(parts) => parts.iter().map(|p| p.filename.clone()).collect(),
                    Body::Json(j) => serde_json::from_str::<Value>(j)
                        .ok()
                        .and_then(|v| {
                            v["urls"].as_array().map(|a| {
                                a.iter()
                                    .filter_map(|u| u.as_str().map(str::to_owned))
                                    .collect()
                            })
                        })
                        .unwrap_or_default(),
                    Body::Empty => vec![],
                };
                self.draft = Some(draft_video());
                let files: Vec<Value> = names.iter().map(|n| json!({"filename": n, "file_type":"video","cdn_url": format!("https://cdn/{n}"),"duration":10.0})).collect();
                api_ok(json!({"files": files, "session_state_applied": true}))
            }
            Endpoint::RunSse => {
                self.run_sse_bodies
                    .push(req.json_body().unwrap_or_default().to_owned());
                self.sse.pop_front().unwrap_or_else(|| Reply::Stream {
                    chunks: vec![(Duration::from_secs(1), text_event("Done.", false))],
                    end: Ok(()),
                    draft_after: None,
                })
            }
            Endpoint::RenderSubmit => {
                let body: Value =
                    serde_json::from_str(req.json_body().unwrap_or("{}")).unwrap_or_default();
                let id = body["id"].as_str().unwrap_or("").to_owned();
                self.renders.insert(
                    id.clone(),
                    FakeRender {
                        started: now,
                        duration: self.render_duration,
                        fail: false,
                    },
                );
                Reply::Response(Response::json(
                    200,
                    &json!({"success":true,"data":{"id":id,"status":"pending","progress":5}}),
                ))
            }
            Endpoint::RenderStatus => {
                let id = path.rsplit('/').next().unwrap_or("").to_owned();
                let Some(r) = self.renders.get(&id) else {
                    return Reply::Response(Response::json(
                        404,
                        &json!({"success":false,"error":"render not found"}),
                    ));
                };
                let elapsed = (now - r.started).as_secs_f64();
                let total = r.duration.as_secs_f64();
                if elapsed >= total {
                    if r.fail {
                        return Reply::Response(Response::json(
                            200,
                            &json!({"status":"failed","error":"encoder crashed"}),
                        ));
                    }
                    Reply::Response(Response::json(
                        200,
                        &json!({"status":"completed","progress":100,"output":{"url":format!("https://cdn.example/{id}.mp4"),"duration":10.0,"size":4096}}),
                    ))
                } else {
                    let p = (5.0 + 95.0 * elapsed / total).floor();
                    Reply::Response(Response::json(
                        200,
                        &json!({"status":"processing","progress":p}),
                    ))
                }
            }
            Endpoint::RenderCancel => {
                Reply::Response(Response::json(200, &json!({"success":true,"data":{}})))
            }
            Endpoint::Download => Reply::Download(Ok(DownloadOutcome::Complete { bytes: 4096 })),
            Endpoint::ClaimToken => api_ok(json!({"claim_token":"clm_abc","expires_in":3600})),
        }
    }
}

fn describe(req: &Request) -> String {
    let mut line = format!("→ {} {}", req.method.as_str(), req.target);
    if req.endpoint == Endpoint::RunSse {
        let v: Value = serde_json::from_str(req.json_body().unwrap_or("{}")).unwrap_or_default();
        let _ = write!(
            line,
            " {:?}",
            v["new_message"]["parts"][0]["text"].as_str().unwrap_or("")
        );
    }
    line
}

fn show(ev: &Event) -> String {
    match ev {
        Event::Status(s) => format!("status: {s}"),
        Event::TokenIssued { user_id, .. } => {
            format!("token issued (user {})", user_id.as_deref().unwrap_or("?"))
        }
        Event::ClientIdGenerated(_) => "client id generated".into(),
        Event::Connected {
            session_id,
            created,
            ..
        } => format!("connected: session {session_id} (created: {created})"),
        Event::Note(n) => format!("note: {n}"),
        Event::Generation { message, .. } => format!("generation: {message}"),
        Event::Suggestions {
            message,
            suggestions,
        } => format!("suggestions: {message} {suggestions:?}"),
        Event::AgentText { text, actions } => {
            if actions.is_empty() {
                format!("agent: {text}")
            } else {
                format!("agent: {text} {actions:?}")
            }
        }
        Event::StillWorking { elapsed } => format!("⏳ still working ({}s)", elapsed.as_secs()),
        Event::Change { summary } => format!("change: {summary}"),
        Event::Uploaded { files } => format!(
            "uploaded: {}",
            files
                .iter()
                .map(|f| f.filename.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::Credits(c) => format!("credits: {c}"),
        Event::Timeline {
            summary,
            ready_for_export,
        } => format!("{summary} [ready: {ready_for_export}]"),
        Event::RenderStarting { id, .. } => format!("render starting: {id}"),
        Event::RenderProgress {
            id,
            phase,
            progress,
        } => format!(
            "render {id}: {} {}",
            phase.as_str(),
            progress.map(|p| format!("{p}%")).unwrap_or_default()
        ),
        Event::RenderCompleted { id, url } => format!("render {id} completed: {url}"),
        Event::Downloaded { path, bytes, .. } => {
            format!("downloaded {} ({bytes} bytes)", path.display())
        }
        Event::RenderEnded { id, outcome } => format!("render {id} ended: {outcome:?}"),
        Event::Link { kind, url } => format!("link ({kind:?}): {url}"),
        Event::Finished { command, result } => match result {
            Ok(()) => format!("finished #{}: ok", command.0),
            Err(e) => format!("finished #{}: error {:?}: {}", command.0, e.kind, e),
        },
        // An event added after these snapshots (`Event` is non-exhaustive):
        // shown by its debug form, so a snapshot change points at it.
        other => format!("{other:?}"),
    }
}

/// The machine, the backend, virtual time and a transcript.
pub struct Harness {
    pub session: Session,
    pub backend: Backend,
    pub now: Instant,
    pub transcript: String,
    pub events: Vec<Event>,
    pub transmits: usize,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self {
            session: Session::new(Config {
                client_id: "client-1".into(),
                ..config
            }),
            backend: Backend::default(),
            now: Instant::ZERO,
            transcript: String::new(),
            events: Vec::new(),
            transmits: 0,
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(
            self.transcript,
            "[{:>8.3}s] {text}",
            self.now.since_origin().as_secs_f64()
        );
    }

    fn drain(&mut self) -> bool {
        let mut finished = false;
        while let Some(ev) = self.session.poll_event() {
            let s = show(&ev);
            self.line(&s);
            finished |= matches!(ev, Event::Finished { .. });
            self.events.push(ev);
        }
        finished
    }

    /// Runs one command to its end (bounded), returning whether it succeeded.
    pub fn run(&mut self, command: Command) -> bool {
        let _ = writeln!(self.transcript, "$ {command:?}");
        let id = self.session.command(self.now, command);
        for _ in 0..100_000 {
            self.drain();
            if self
                .events
                .iter()
                .any(|e| matches!(e, Event::Finished { command, .. } if *command == id))
            {
                return matches!(
                    self.events
                        .iter()
                        .rev()
                        .find(|e| matches!(e, Event::Finished { command, .. } if *command == id)),
                    Some(Event::Finished { result: Ok(()), .. })
                );
            }
            if let Some(tx) = self.session.poll_transmit() {
                self.transmits += 1;
                let d = describe(&tx.request);
                self.line(&d);
                let reply = self.backend.answer(self.now, &tx.request);
                self.deliver(tx.id, &tx.mode, reply);
                continue;
            }
            match self.session.poll_timeout() {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.session.handle_timeout(self.now);
                }
                None => panic!("the machine stalled:\n{}", self.transcript),
            }
        }
        panic!("the command did not finish:\n{}", self.transcript);
    }

    fn deliver(&mut self, id: nemo_core::machine::RequestId, mode: &Mode, reply: Reply) {
        match reply {
            Reply::Response(r) => {
                if matches!(mode, Mode::Download { .. }) {
                    self.session
                        .handle_download(self.now, id, Ok(DownloadOutcome::Refused(r)));
                } else {
                    self.session.handle_response(self.now, id, r);
                }
            }
            Reply::Error(kind) => {
                let err = TransportError::new(kind, format!("simulated {kind:?}"));
                if matches!(mode, Mode::Download { .. }) {
                    self.session.handle_download(self.now, id, Err(err));
                } else {
                    self.session.handle_transport_error(self.now, id, err);
                }
            }
            Reply::Download(result) => {
                let result = result.map_err(|k| TransportError::new(k, format!("simulated {k:?}")));
                self.session.handle_download(self.now, id, result);
            }
            Reply::Stream {
                chunks,
                end,
                draft_after,
            } => {
                if let Some(d) = draft_after {
                    self.backend.draft = Some(d);
                }
                let start = self.now;
                self.session.handle_stream_open(self.now, id);
                for (at, chunk) in chunks {
                    let due = start + at;
                    // Let the machine's timers fire while waiting for the chunk.
                    while let Some(t) = self.session.poll_timeout() {
                        if t > due || !self.session.is_in_flight(id) {
                            break;
                        }
                        self.now = self.now.max(t);
                        self.session.handle_timeout(self.now);
                        self.drain();
                    }
                    if !self.session.is_in_flight(id) {
                        self.line("(stream abandoned by the client)");
                        return;
                    }
                    self.now = self.now.max(due);
                    self.session.handle_stream_chunk(self.now, id, &chunk);
                    self.drain();
                }
                if self.session.is_in_flight(id) {
                    let result = end.map_err(|k| TransportError::new(k, "simulated reset"));
                    self.session.handle_stream_end(self.now, id, result);
                }
            }
        }
    }
}
