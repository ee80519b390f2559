//! The simulated service: accounts, sessions, uploads, the agent, renders.
//! Shared by the HTTP server and the in-process transport.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::time::rfc3339;
use nemo_core::wire::Endpoint;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::agent::{self, SessionMedia, TurnInput, TurnKind};
use crate::body::{Reply, ReplyBody};
use crate::clock::SimClock;
use crate::config::{Dialect, MockConfig, RenderShape};
use crate::dialect::{self, Answer};
use crate::faults::{CallKind, FaultAction, FaultState, Hits};
use crate::journal::{mask, message_text, Journal, JournalEntry};
use crate::media::{parse_range, MediaSource, RangeRequest, SAMPLE_SECONDS};
use crate::sse::{ScriptBuilder, TurnFlags};
use crate::timeline::{self, EditOp, MediaKind};

/// A request as the backend sees it.
pub(crate) struct Incoming<'a> {
    pub(crate) method: String,
    /// Path without the query.
    pub(crate) path: String,
    /// Header names lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: IncomingBody<'a>,
}

/// A request body.
pub(crate) enum IncomingBody<'a> {
    Empty,
    Bytes(Bytes),
    Multipart(Box<dyn MultipartSource + Send + 'a>),
}

/// Why an upload stopped.
#[derive(Debug)]
pub(crate) enum UploadFail {
    Unsupported(String),
    TooLarge(String),
    Broken(String),
}

/// Receives the parts of a multipart body as they arrive.
#[async_trait]
pub(crate) trait PartSink: Send {
    /// A new part; `false` = skip its content (not a file part).
    async fn begin(&mut self, field: &str, filename: Option<&str>) -> Result<bool, UploadFail>;
    async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadFail>;
    async fn end(&mut self) -> Result<(), UploadFail>;
}

/// A multipart body, pushed part by part into a sink.
#[async_trait]
pub(crate) trait MultipartSource {
    /// Streams the next part into `sink`; `false` when there are no more.
    async fn next_part(&mut self, sink: &mut (dyn PartSink + Send)) -> Result<bool, UploadFail>;
    /// A summary of the parts for the journal, when known before reading.
    fn summary(&self) -> String;
    /// Reads and drops whatever is left of the body (after a refusal).
    async fn drain(&mut self) {}
}

#[derive(Debug)]
struct StoredFile {
    filename: String,
    ext: String,
    path: PathBuf,
    size: u64,
    hash: u64,
}

/// Writes file parts to the upload directory, checking type and size.
struct UploadStore {
    dir: PathBuf,
    limit: u64,
    counter: u64,
    files: Vec<StoredFile>,
    current: Option<(tokio::fs::File, StoredFile)>,
    skipping: bool,
}

#[async_trait]
impl PartSink for UploadStore {
    async fn begin(&mut self, field: &str, filename: Option<&str>) -> Result<bool, UploadFail> {
        let Some(filename) = filename.filter(|_| field == "files" || field == "file") else {
            self.skipping = true;
            return Ok(false);
        };
        self.skipping = false;
        let filename = filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(filename)
            .to_owned();
        let ext = agent::extension(&filename).unwrap_or_default();
        if MediaKind::from_ext(&ext).is_none() {
            return Err(UploadFail::Unsupported(filename));
        }
        self.counter += 1;
        let path = self.dir.join(format!("{:06}.{ext}", self.counter));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| UploadFail::Broken(format!("cannot store the upload: {e}")))?;
        self.current = Some((
            file,
            StoredFile {
                filename,
                ext,
                path,
                size: 0,
                hash: 0xcbf2_9ce4_8422_2325,
            },
        ));
        Ok(true)
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadFail> {
        if self.skipping {
            return Ok(());
        }
        let Some((file, meta)) = self.current.as_mut() else {
            return Ok(());
        };
        meta.size += chunk.len() as u64;
        if meta.size > self.limit {
            let name = meta.filename.clone();
            let path = meta.path.clone();
            self.current = None;
            let _ = tokio::fs::remove_file(&path).await;
            return Err(UploadFail::TooLarge(name));
        }
        for b in chunk {
            meta.hash ^= u64::from(*b);
            meta.hash = meta.hash.wrapping_mul(0x0100_0000_01b3);
        }
        file.write_all(chunk)
            .await
            .map_err(|e| UploadFail::Broken(format!("cannot store the upload: {e}")))
    }

    async fn end(&mut self) -> Result<(), UploadFail> {
        if let Some((mut file, meta)) = self.current.take() {
            file.flush()
                .await
                .map_err(|e| UploadFail::Broken(format!("cannot store the upload: {e}")))?;
            self.files.push(meta);
        }
        Ok(())
    }
}

impl UploadStore {
    async fn discard(&mut self) {
        self.current = None;
        for f in self.files.drain(..) {
            let _ = tokio::fs::remove_file(&f.path).await;
        }
    }
}

#[derive(Debug)]
struct TokenInfo {
    user_id: String,
    client_id: String,
    expires_at: Duration,
    revoked: bool,
}

#[derive(Debug, Default)]
struct Account {
    available: u64,
    frozen: u64,
}

#[derive(Debug)]
struct Session {
    task_id: String,
    user_id: String,
    language: String,
    lost: bool,
    draft: Option<Value>,
    changes: u64,
    next_seg: u64,
    turns: u64,
    media: Vec<SessionMedia>,
    video_infos: Vec<Value>,
    generated: Vec<Value>,
    analyses: Vec<Value>,
}

#[derive(Debug)]
struct RenderJob {
    user_id: String,
    submitted_at: Duration,
    fail: bool,
    cancelled: bool,
    duration_s: f64,
}

#[derive(Debug)]
enum Pending {
    Apply {
        session: String,
        user: String,
        ops: Vec<EditOp>,
        fresh: bool,
        projected: Value,
        next_seg: u64,
        base_changes: u64,
        cost: u64,
        generated: Option<Value>,
    },
    Refund {
        user: String,
        cost: u64,
    },
}

#[derive(Debug)]
struct World {
    rng: fastrand::Rng,
    faults: FaultState,
    client_tokens: HashMap<String, String>,
    client_users: HashMap<String, String>,
    tokens: HashMap<String, TokenInfo>,
    accounts: HashMap<String, Account>,
    sessions: HashMap<String, Session>,
    renders: HashMap<String, RenderJob>,
    scheduled: Vec<(Duration, Pending)>,
    /// Answers given so far, render polls and files apart (the `mixed`
    /// dialect picks by it).
    answers: u64,
    /// Render polls answered so far (the `mixed` dialect picks a poll's by
    /// it).
    polls: u64,
}

/// Why a bearer token was refused.
enum AuthFail {
    Missing,
    Invalid,
    Expired,
}

impl AuthFail {
    fn message(&self) -> &'static str {
        match self {
            AuthFail::Missing => "Missing bearer token",
            AuthFail::Invalid => "Invalid token",
            AuthFail::Expired => "Token expired",
        }
    }
}

/// Routes of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    AnonymousToken,
    CreateSession,
    RunSse,
    Upload(String),
    Credits,
    State(String),
    RenderSubmit,
    RenderStatus(String),
    RenderCancel(String),
    DownloadFallback(String),
    Media(String),
    ClaimToken,
    Root,
}

impl Route {
    fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Route::AnonymousToken => Endpoint::AnonymousToken,
            Route::CreateSession => Endpoint::CreateSession,
            Route::RunSse => Endpoint::RunSse,
            Route::Upload(_) => Endpoint::Upload,
            Route::Credits => Endpoint::Credits,
            Route::State(_) => Endpoint::State,
            Route::RenderSubmit => Endpoint::RenderSubmit,
            Route::RenderStatus(_) => Endpoint::RenderStatus,
            Route::RenderCancel(_) => Endpoint::RenderCancel,
            Route::DownloadFallback(_) | Route::Media(_) => Endpoint::Download,
            Route::ClaimToken => Endpoint::ClaimToken,
            Route::Root => return None,
        })
    }
}

/// The path with `me` where a user id stood (`/api/state/nemo_agent/<user>/…`,
/// `/api/upload-video/nemo_agent/<user>/…`), and that user id.
fn me_path(path: &str) -> (String, Option<String>) {
    for prefix in ["/api/state/nemo_agent/", "/api/upload-video/nemo_agent/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if let Some((user, tail)) = rest.split_once('/') {
                if user != "me" && !user.is_empty() {
                    return (format!("{prefix}me/{tail}"), Some(user.to_owned()));
                }
            }
        }
    }
    (path.to_owned(), None)
}

/// Finds the route; `Err(true)` = known path, wrong method.
fn route(method: &str, path: &str) -> Result<Route, bool> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let get = method == "GET" || method == "HEAD";
    let post = method == "POST";
    let (r, ok) = match segs.as_slice() {
        [] | [""] => (Route::Root, get),
        ["api", "auth", "anonymous-token"] => (Route::AnonymousToken, post),
        ["api", "auth", "claim-token"] => (Route::ClaimToken, post),
        ["api", "tasks", "me", "with-session", "nemo_agent"] => (Route::CreateSession, post),
        ["run_sse"] => (Route::RunSse, post),
        ["api", "upload-video", "nemo_agent", "me", sid] => {
            (Route::Upload((*sid).to_owned()), post)
        }
        ["api", "credits", "balance", "simple"] => (Route::Credits, get),
        ["api", "state", "nemo_agent", "me", sid, "latest"] => {
            (Route::State((*sid).to_owned()), get)
        }
        ["api", "render", "proxy", "lambda"] => (Route::RenderSubmit, post),
        ["api", "render", "proxy", "lambda", id] => (Route::RenderStatus((*id).to_owned()), get),
        ["api", "render", "proxy", "lambda", id, "cancel"] => {
            (Route::RenderCancel((*id).to_owned()), post)
        }
        ["api", "render", "proxy", id, "download"] => {
            (Route::DownloadFallback((*id).to_owned()), get)
        }
        ["media", file] if file.ends_with(".mp4") => {
            (Route::Media(file.trim_end_matches(".mp4").to_owned()), get)
        }
        _ => return Err(false),
    };
    if ok {
        Ok(r)
    } else {
        Err(true)
    }
}

fn ok(data: Value) -> Reply {
    Reply::json(200, &json!({"code": 0, "message": "success", "data": data}))
}

fn api_error(code: u16, message: &str) -> Reply {
    Reply::json(
        200,
        &json!({"code": code, "message": message, "data": null}),
    )
}

fn render_ok(data: Value) -> Reply {
    Reply::json(200, &json!({"success": true, "data": data}))
}

fn render_error(message: &str) -> Reply {
    Reply::json(200, &json!({"success": false, "error": message}))
}

fn detail(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"detail": message}))
}

fn coded(status: u16, code: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"code": code, "message": message}))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

fn bearer(headers: &[(String, String)]) -> Option<&str> {
    let auth = header(headers, "authorization")?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn hex(rng: &mut fastrand::Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
        .collect()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Formats seconds for `Retry-After`: whole seconds when whole.
fn retry_after(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}", secs as u64)
    } else {
        format!("{:.3}", secs).trim_end_matches('0').to_owned()
    }
}

/// The whole simulated service.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) config: MockConfig,
    pub(crate) clock: SimClock,
    pub(crate) journal: Journal,
    pub(crate) base_url: String,
    world: Mutex<World>,
    upload_dir: tempfile::TempDir,
}

impl Backend {
    pub(crate) fn new(config: MockConfig, base_url: String) -> std::io::Result<Self> {
        let seed = config.effective_seed();
        let clock = SimClock::new(config.time_scale, config.start_unix_ms);
        let world = World {
            rng: fastrand::Rng::with_seed(seed),
            faults: FaultState::new(config.faults.clone(), seed),
            client_tokens: HashMap::new(),
            client_users: HashMap::new(),
            tokens: HashMap::new(),
            accounts: HashMap::new(),
            sessions: HashMap::new(),
            renders: HashMap::new(),
            scheduled: Vec::new(),
            answers: 0,
            polls: 0,
        };
        Ok(Self {
            config,
            clock,
            journal: Journal::default(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            world: Mutex::new(world),
            upload_dir: tempfile::Builder::new()
                .prefix("nemo-mock-uploads")
                .tempdir()?,
        })
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session's draft now (after pending edits that are due).
    pub(crate) fn draft(&self, session_id: &str) -> Option<Value> {
        let now = self.clock.now();
        let mut w = self.world();
        w.settle(now);
        w.sessions.get(session_id).and_then(|s| s.draft.clone())
    }

    /// Credits of the user behind a token: (available, frozen).
    pub(crate) fn credits_of(&self, token: &str) -> Option<(u64, u64)> {
        let now = self.clock.now();
        let mut w = self.world();
        w.settle(now);
        let user = w.tokens.get(token)?.user_id.clone();
        w.accounts.get(&user).map(|a| (a.available, a.frozen))
    }

    /// Handles one request.
    pub(crate) async fn handle(&self, req: Incoming<'_>) -> Reply {
        let now = self.clock.now();
        // The path may carry the real user id where the client writes `me`
        // (PROTOCOL.md §10): it must be the token's user.
        let (path, other_user) = me_path(&req.path);
        if let Some(user) = other_user {
            let w = self.world();
            if w.user(bearer(&req.headers), now).is_ok_and(|u| u != user) {
                drop(w);
                let seq = self.journal.push(JournalEntry {
                    seq: 0,
                    at: now,
                    method: req.method.clone(),
                    path: req.path.clone(),
                    endpoint: None,
                    headers: Vec::new(),
                    body: String::new(),
                    status: 0,
                    faults: Vec::new(),
                    dialect: None,
                });
                self.journal.set_status(seq, 403, &[]);
                return detail(403, "This session belongs to another user");
            }
        }
        let routed = route(&req.method, &path);
        let endpoint = routed.as_ref().ok().and_then(Route::endpoint);
        let body_summary = match &req.body {
            IncomingBody::Empty => String::new(),
            IncomingBody::Bytes(b) => {
                String::from_utf8_lossy(&b[..b.len().min(64 * 1024)]).into_owned()
            }
            IncomingBody::Multipart(m) => m.summary(),
        };
        let seq = self.journal.push(JournalEntry {
            seq: 0,
            at: now,
            method: req.method.clone(),
            path: req.path.clone(),
            endpoint,
            headers: req
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), mask(n, v)))
                .collect(),
            body: body_summary,
            status: 0,
            faults: Vec::new(),
            dialect: None,
        });
        let route = match routed {
            Ok(r) => r,
            Err(true) => {
                let reply = detail(405, "Method Not Allowed");
                self.journal.set_status(seq, 405, &[]);
                return reply;
            }
            Err(false) => {
                self.journal.set_status(seq, 404, &[]);
                return detail(404, "Not Found");
            }
        };
        let json_body: Option<Value> = match &req.body {
            IncomingBody::Bytes(b) if !b.is_empty() => serde_json::from_slice(b).ok(),
            _ => None,
        };
        let session_named = match &route {
            Route::Upload(s) | Route::State(s) => Some(s.clone()),
            Route::RunSse => json_body
                .as_ref()
                .and_then(|b| b.get("session_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            Route::RenderSubmit => json_body
                .as_ref()
                .and_then(|b| b.get("sessionId"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            Route::ClaimToken => json_body
                .as_ref()
                .and_then(|b| b.get("session_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        let token = bearer(&req.headers).map(str::to_owned);
        let answer = match &route {
            Route::CreateSession => Answer::Session,
            Route::Credits => Answer::Credits,
            Route::Upload(_) => Answer::Upload,
            Route::State(_) => Answer::State,
            Route::RenderSubmit => Answer::RenderSubmit,
            Route::RenderStatus(_) => Answer::RenderStatus,
            Route::RunSse => Answer::RunSse,
            Route::DownloadFallback(_) | Route::Media(_) => Answer::Media,
            _ => Answer::Other,
        };
        let (hits, dialect) = {
            let mut w = self.world();
            w.settle(now);
            // Render polls count apart: how many a render takes depends on
            // the client's pace and the time scale, and must not shift the
            // dialect of any later answer. A file is never rewritten.
            let n = match answer {
                Answer::RenderStatus => {
                    w.polls += 1;
                    w.polls
                }
                Answer::Media => w.answers,
                _ => {
                    w.answers += 1;
                    w.answers
                }
            };
            let dialect = dialect::pick(self.config.dialect, self.config.effective_seed(), n);
            let hits = w.faults.on_request(CallKind {
                endpoint,
                authenticated: token.is_some(),
                with_session: session_named.is_some(),
            });
            if hits.has(|a| *a == FaultAction::Expire) {
                if let Some(info) = token.as_deref().and_then(|t| w.tokens.get_mut(t)) {
                    info.expires_at = info.expires_at.min(now);
                }
            }
            if hits.has(|a| *a == FaultAction::Lose) {
                if let Some(s) = session_named.as_deref().and_then(|s| w.sessions.get_mut(s)) {
                    s.lost = true;
                }
            }
            (hits, dialect)
        };
        self.journal.set_dialect(seq, dialect);
        let delay = hits.delay();
        if !delay.is_zero() {
            self.clock.sleep(delay).await;
        }
        let mut reply = match hits.refusal() {
            Some(FaultAction::Status(status)) => server_fault(*status),
            Some(FaultAction::RateLimit(secs)) => {
                coded(429, 429, "Too many requests, please slow down")
                    .header("retry-after", retry_after(secs * self.clock.scale()))
            }
            _ => {
                let req_headers = req.headers;
                let reply = match route {
                    Route::Upload(sid) => {
                        self.upload(&req_headers, &sid, req.body, json_body).await
                    }
                    other => self.dispatch(other, &req_headers, json_body, &hits, dialect),
                };
                dialect::speak(dialect, answer, reply)
            }
        };
        if let Some(k) = hits.reset() {
            if !matches!(reply.body, ReplyBody::Sse { .. }) {
                let len = reply.content_length().unwrap_or(0);
                reply.reset_after = Some(k.unwrap_or(len / 2).min(len.saturating_sub(1)));
            }
        }
        self.journal.set_status(seq, reply.status, &hits.rules);
        reply
    }

    fn dispatch(
        &self,
        route: Route,
        headers: &[(String, String)],
        body: Option<Value>,
        hits: &Hits,
        dialect: Dialect,
    ) -> Reply {
        let now = self.clock.now();
        let mut w = self.world();
        match route {
            Route::Root => Reply::new(
                200,
                "text/plain; charset=utf-8",
                "nemo-mock: a simulated NemoVideo backend\n",
            ),
            Route::AnonymousToken => self.anonymous_token(&mut w, headers, now),
            Route::CreateSession => match w.user(bearer(headers), now) {
                Err(e) => api_error(1001, e.message()),
                Ok(user) => {
                    let language = body
                        .as_ref()
                        .and_then(|b| b.get("language"))
                        .and_then(Value::as_str)
                        .unwrap_or("en")
                        .to_owned();
                    let first = char::from(b'1' + w.rng.u8(..9));
                    let sid: String = std::iter::once(first)
                        .chain((0..18).map(|_| char::from(b'0' + w.rng.u8(..10))))
                        .collect();
                    let task_id = format!("task_{}", hex(&mut w.rng, 24));
                    w.sessions.insert(
                        sid.clone(),
                        Session {
                            task_id: task_id.clone(),
                            user_id: user.clone(),
                            language,
                            lost: false,
                            draft: None,
                            changes: 0,
                            next_seg: 0,
                            turns: 0,
                            media: Vec::new(),
                            video_infos: Vec::new(),
                            generated: Vec::new(),
                            analyses: Vec::new(),
                        },
                    );
                    ok(json!({"task_id": task_id, "session_id": sid, "user_id": user}))
                }
            },
            Route::Credits => match w.user(bearer(headers), now) {
                Err(e) => api_error(1001, e.message()),
                Ok(user) => {
                    let a = w.accounts.entry(user).or_default();
                    ok(
                        json!({"available": a.available, "frozen": a.frozen, "total": a.available + a.frozen}),
                    )
                }
            },
            Route::State(sid) => match w.session(bearer(headers), &sid, now) {
                Err(reply) => *reply,
                Ok(s) => ok(json!({
                    "session_id": sid,
                    "task_id": s.task_id,
                    "task_name": "project",
                    "state": {
                        "draft": s.draft,
                        "video_infos": s.video_infos,
                        "canvas_config": timeline::canvas_config(s.draft.as_ref()),
                        "video_analyses": s.analyses,
                        "generated_media": s.generated,
                    },
                })),
            },
            Route::ClaimToken => {
                let Some(body) = body else {
                    return detail(422, "Request body must be JSON with task_id and session_id");
                };
                let sid = body
                    .get("session_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match w.session(bearer(headers), &sid, now) {
                    Err(reply) => *reply,
                    Ok(_) => {
                        let claim = format!("clm_{}", hex(&mut w.rng, 32));
                        ok(json!({"claim_token": claim, "expires_in": 3600}))
                    }
                }
            }
            Route::RunSse => drop_then(w, || self.run_sse(headers, body, hits, dialect)),
            Route::RenderSubmit => self.render_submit(&mut w, headers, body, hits, now),
            Route::RenderStatus(id) => self.render_status(&mut w, headers, &id, now),
            Route::RenderCancel(id) => match w.user(bearer(headers), now) {
                Err(e) => api_error(1001, e.message()),
                Ok(user) => {
                    let phase = self.phase(w.renders.get(&id).filter(|j| j.user_id == user), now);
                    match (phase, w.renders.get_mut(&id)) {
                        (None, _) | (_, None) => render_error("Render not found"),
                        (Some((p, _)), Some(_)) if p != "pending" && p != "processing" => {
                            render_error(&format!("Render already {p}"))
                        }
                        (Some(_), Some(job)) => {
                            job.cancelled = true;
                            render_ok(json!({"id": id, "status": "cancelled"}))
                        }
                    }
                }
            },
            Route::DownloadFallback(id) => match w.user(bearer(headers), now) {
                Err(e) => coded(401, 1001, e.message()),
                Ok(user) => match self.phase(w.renders.get(&id).filter(|j| j.user_id == user), now)
                {
                    None => coded(404, 404, "Render not found"),
                    Some(("completed", _)) => self.media_reply(headers, &id).header(
                        "content-disposition",
                        format!("attachment; filename=\"{id}.mp4\""),
                    ),
                    Some((p, _)) => coded(409, 409, &format!("Render is {p}, not completed")),
                },
            },
            Route::Media(id) => match self.phase(w.renders.get(&id), now) {
                Some(("completed", _)) => self.media_reply(headers, &id),
                _ => Reply::new(404, "text/plain; charset=utf-8", "Not Found"),
            },
            Route::Upload(_) => detail(500, "unreachable"),
        }
    }

    fn anonymous_token(&self, w: &mut World, headers: &[(String, String)], now: Duration) -> Reply {
        let Some(client) = header(headers, "x-client-id").map(str::to_owned) else {
            return detail(400, "X-Client-Id header is required");
        };
        if self.config.one_token_per_client {
            if let Some(info) = w.client_tokens.get(&client).and_then(|t| w.tokens.get(t)) {
                if !info.revoked && info.expires_at > now {
                    let wait = (info.expires_at - now).as_secs_f64() * self.clock.scale();
                    return coded(
                        429,
                        429,
                        "Rate limit: one anonymous token per client every 7 days",
                    )
                    .header("retry-after", retry_after(wait.ceil()));
                }
            }
        }
        let user = match w.client_users.get(&client) {
            Some(u) => u.clone(),
            None => {
                let u = format!("anon_{}", hex(&mut w.rng, 12));
                w.client_users.insert(client.clone(), u.clone());
                w.accounts.insert(
                    u.clone(),
                    Account {
                        available: self.config.initial_credits,
                        frozen: 0,
                    },
                );
                u
            }
        };
        let token = format!("nmv_usr_{}", hex(&mut w.rng, 32));
        if let Some(old) = w.client_tokens.insert(client.clone(), token.clone()) {
            if let Some(info) = w.tokens.get_mut(&old) {
                info.revoked = true;
            }
        }
        let expires_at = now + self.config.token_lifetime;
        w.tokens.insert(
            token.clone(),
            TokenInfo {
                user_id: user.clone(),
                client_id: client,
                expires_at,
                revoked: false,
            },
        );
        let credits = w.accounts.get(&user).map_or(0, |a| a.available);
        ok(json!({
            "token": token,
            "user_id": user,
            "expires_at": rfc3339(self.clock.unix_ms_at(expires_at)),
            "credits": credits,
        }))
    }

    fn run_sse(
        &self,
        headers: &[(String, String)],
        body: Option<Value>,
        hits: &Hits,
        dialect: Dialect,
    ) -> Reply {
        let now = self.clock.now();
        let Some(body) = body else {
            return Reply::json(
                422,
                &json!({"detail": [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}]}),
            );
        };
        if body
            .get("app_name")
            .and_then(Value::as_str)
            .is_some_and(|a| a != "nemo_agent")
        {
            return detail(404, "App not found");
        }
        let Some(sid) = body
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Reply::json(
                422,
                &json!({"detail": [{"type": "missing", "loc": ["body", "session_id"], "msg": "Field required", "input": body}]}),
            );
        };
        let message = message_text(&body);
        let mut w = self.world();
        let user = match w.user(bearer(headers), now) {
            Ok(u) => u,
            Err(e) => return coded(401, 1001, e.message()),
        };
        if w.sessions
            .get(&sid)
            .is_none_or(|s| s.lost || s.user_id != user)
        {
            return coded(404, 1002, "Session not found");
        }
        let World {
            sessions,
            scheduled,
            accounts,
            ..
        } = &mut *w;
        let Some(session) = sessions.get_mut(&sid) else {
            return coded(404, 1002, "Session not found");
        };
        // The draft as it will be once this session's pending edits land.
        let pending: Vec<&Value> = scheduled
            .iter()
            .filter_map(|(_, p)| match p {
                Pending::Apply {
                    session: s,
                    projected,
                    ..
                } if *s == sid => Some(projected),
                _ => None,
            })
            .collect();
        let pending_count = pending.len() as u64;
        let current = pending
            .last()
            .map(|d| (*d).clone())
            .or_else(|| session.draft.clone());
        let plan = agent::understand(&TurnInput {
            message: &message,
            draft: current.as_ref(),
            media: &session.media,
            source: header(headers, "x-skill-source"),
            language: &session.language,
            base_url: &self.base_url,
        });
        let cost = match plan.kind {
            TurnKind::Chat => 0,
            TurnKind::Edit => self.config.edit_cost,
            TurnKind::Generate => self.config.generate_cost,
        };
        let account = accounts.entry(user.clone()).or_default();
        if cost > account.available {
            return coded(
                402,
                2001,
                &format!(
                    "Insufficient credits: this needs {cost}, {} available",
                    account.available
                ),
            );
        }
        account.available -= cost;
        account.frozen += cost;

        session.turns += 1;
        let mut rng = fastrand::Rng::with_seed(
            self.config.effective_seed()
                ^ agent::fnv64(sid.as_bytes())
                ^ session.turns.wrapping_mul(0x9e37_79b9),
        );
        let b = &self.config.agent;
        let mut flags = TurnFlags {
            silent: rng.f64() < b.silent_rate,
            long_work: rng.f64() < b.long_work_rate,
            temporary_issue: rng.f64() < b.temporary_issue_rate,
            gui_hint: (rng.f64() < b.gui_rate).then(|| rng.usize(..16)),
            error_code: rng.f64() < b.error_code_rate,
            ..TurnFlags::default()
        };
        for a in &hits.actions {
            match a {
                FaultAction::Silent => flags.silent = true,
                FaultAction::LongWork => flags.long_work = true,
                FaultAction::TemporaryIssue => flags.temporary_issue = true,
                FaultAction::ErrorCode => flags.error_code = true,
                FaultAction::InBandError => flags.in_band_error = true,
                FaultAction::InBandErrorRaw => flags.in_band_error_raw = true,
                FaultAction::KeepAliveOnly => flags.keepalive_only = true,
                FaultAction::Truncate => flags.truncate = true,
                FaultAction::Reset(k) => flags.reset = Some(*k),
                _ => {}
            }
        }
        if plan.ops.is_empty() {
            flags.silent = false;
        }
        let mut next_seg = session.next_seg;
        // A two-stage generation lands twice: the raw video, then the rest.
        let raw_ops = plan.generation.as_ref().map(|g| g.raw_ops);
        let mut raw_stage: Option<(Value, u64)> = None;
        let projected = if plan.ops.is_empty() {
            None
        } else {
            let mut d = match (&current, plan.fresh) {
                (Some(d), false) => d.clone(),
                _ => timeline::empty_draft(if plan.chinese {
                    "我的视频"
                } else {
                    "My Video"
                }),
            };
            if plan.fresh {
                if let Some(ver) = current.as_ref().and_then(|c| c.get("ver")).cloned() {
                    d["ver"] = ver;
                }
            }
            for (i, op) in plan.ops.iter().enumerate() {
                timeline::apply(&mut d, op, &mut next_seg);
                if raw_ops == Some(i + 1) {
                    raw_stage = Some((d.clone(), next_seg));
                }
            }
            Some(d)
        };
        let spell = |d: &Value| match dialect {
            Dialect::Meta => timeline::to_meta(d),
            _ => d.clone(),
        };
        let raw_spelled = raw_stage.as_ref().map(|(d, _)| spell(d));
        // The state delta carries the draft as the dialect spells it.
        let spelled = projected.as_ref().map(spell);
        let script = ScriptBuilder {
            rng: &mut rng,
            unix_start_ms: self.clock.unix_ms_at(now),
            plan: &plan,
            final_draft: spelled.as_ref(),
            flags,
            dialect,
            pace: self.config.agent.pace,
            raw_draft: raw_spelled.as_ref(),
            // ADK's `RunAgentRequest.streaming`: text pieces only when asked.
            streaming: body
                .get("streaming")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
        .build();
        let mut base_changes = session.changes + pending_count;
        let mut ops = plan.ops.clone();
        let mut fresh = plan.fresh;
        if let (Some(at), Some((raw, raw_next)), Some(n)) = (script.raw_at, raw_stage, raw_ops) {
            // The raw video first; its credits are settled with the rest.
            scheduled.push((
                now + at,
                Pending::Apply {
                    session: sid.clone(),
                    user: user.clone(),
                    ops: ops.drain(..n.min(ops.len())).collect(),
                    fresh,
                    projected: raw,
                    next_seg: raw_next,
                    base_changes,
                    cost: 0,
                    generated: None,
                },
            ));
            base_changes += 1;
            fresh = false;
        }
        match (script.apply_at, projected) {
            (Some(at), Some(projected)) => {
                let generated = (plan.kind == TurnKind::Generate).then(|| {
                    json!({"type": "video", "title": timeline::meta(&projected).get("title").cloned().unwrap_or(Value::Null), "duration": timeline::total_ms(&projected)})
                });
                scheduled.push((
                    now + at,
                    Pending::Apply {
                        session: sid.clone(),
                        user: user.clone(),
                        ops,
                        fresh,
                        projected,
                        next_seg,
                        base_changes,
                        cost,
                        generated,
                    },
                ));
            }
            _ => {
                // No edit: the frozen credits come back when the turn ends
                // (a chat turn costs nothing).
                if cost > 0 {
                    scheduled.push((
                        now + script.done_at,
                        Pending::Refund {
                            user: user.clone(),
                            cost,
                        },
                    ));
                }
            }
        }
        let mut reply = Reply::new(200, "text/event-stream", Bytes::new());
        reply
            .headers
            .push(("cache-control".into(), "no-cache".into()));
        reply
            .headers
            .push(("x-accel-buffering".into(), "no".into()));
        reply.body = ReplyBody::Sse { script, start: now };
        reply
    }

    async fn upload(
        &self,
        headers: &[(String, String)],
        sid: &str,
        body: IncomingBody<'_>,
        json_body: Option<Value>,
    ) -> Reply {
        let now = self.clock.now();
        let rejected = {
            let w = self.world();
            w.session(bearer(headers), sid, now).err()
        };
        if let Some(reply) = rejected {
            // Read the rest of the request before answering, as a server
            // must: a connection closed under a body still being sent breaks
            // the client's next request on it.
            if let IncomingBody::Multipart(mut source) = body {
                source.drain().await;
            }
            return *reply;
        }
        let mut described: Vec<(Value, SessionMedia)> = Vec::new();
        match body {
            IncomingBody::Multipart(mut source) => {
                let mut store = UploadStore {
                    dir: self.upload_dir.path().to_owned(),
                    limit: self.config.max_upload_bytes,
                    counter: 0,
                    files: Vec::new(),
                    current: None,
                    skipping: false,
                };
                // Unique names across concurrent uploads.
                store.counter = fastrand::u64(..1 << 40) << 16;
                loop {
                    match source.next_part(&mut store).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(fail) => {
                            store.discard().await;
                            source.drain().await;
                            return match fail {
                                UploadFail::Unsupported(name) => api_error(
                                    4001,
                                    &format!(
                                        "Unsupported file type: {name}. Accepted: {}",
                                        nemo_core::api::ACCEPTED_FORMATS
                                    ),
                                ),
                                UploadFail::TooLarge(name) => api_error(
                                    4002,
                                    &format!(
                                        "File too large: {name} exceeds {} MB",
                                        self.config.max_upload_bytes / (1024 * 1024)
                                    ),
                                ),
                                UploadFail::Broken(why) => detail(400, &why),
                            };
                        }
                    }
                }
                if store.files.is_empty() {
                    return detail(422, "No `files` part in the upload");
                }
                for f in &store.files {
                    let path = f.path.clone();
                    let ext = f.ext.clone();
                    let probe =
                        tokio::task::spawn_blocking(move || crate::media::probe_file(&path, &ext))
                            .await
                            .unwrap_or_default();
                    let kind = MediaKind::from_ext(&f.ext).unwrap_or(MediaKind::Video);
                    let hash = format!("{:016x}", f.hash);
                    let url = format!(
                        "{}/cdn/uploads/{sid}/{hash}/{}",
                        self.base_url,
                        percent_encode(&f.filename)
                    );
                    let duration = match kind {
                        MediaKind::Image => None,
                        MediaKind::Video => Some(
                            probe
                                .duration
                                .unwrap_or((f.size as f64 * 8.0 / 2e6).max(1.0)),
                        ),
                        MediaKind::Audio => Some(
                            probe
                                .duration
                                .unwrap_or((f.size as f64 * 8.0 / 128e3).max(1.0)),
                        ),
                    };
                    described.push(describe(
                        &f.filename,
                        kind,
                        &url,
                        duration,
                        probe,
                        &hash,
                        Some(f.size),
                    ));
                }
            }
            IncomingBody::Bytes(_) | IncomingBody::Empty => {
                let Some(urls) = json_body
                    .as_ref()
                    .and_then(|b| b.get("urls"))
                    .and_then(Value::as_array)
                    .filter(|u| !u.is_empty())
                else {
                    return detail(422, "Expected multipart `files` parts or JSON {\"urls\":[…],\"source_type\":\"url\"}");
                };
                for u in urls {
                    let Some(url) = u
                        .as_str()
                        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                    else {
                        return api_error(4001, &format!("Unsupported source: {u}"));
                    };
                    let ext = agent::extension(url);
                    let kind = match ext.as_deref() {
                        None | Some("html" | "htm" | "php" | "aspx") => MediaKind::Video,
                        Some(e) => match MediaKind::from_ext(e) {
                            Some(k) => k,
                            None => {
                                return api_error(
                                    4001,
                                    &format!(
                                        "Unsupported file type: {url}. Accepted: {}",
                                        nemo_core::api::ACCEPTED_FORMATS
                                    ),
                                )
                            }
                        },
                    };
                    let h = agent::fnv64(url.as_bytes());
                    let filename = format!(
                        "{}.{}",
                        agent::name_from_url(url).replace(' ', "_"),
                        ext.as_deref()
                            .filter(|e| MediaKind::from_ext(e).is_some())
                            .unwrap_or("mp4")
                    );
                    let probe = crate::media::Probe {
                        duration: (kind != MediaKind::Image).then_some(10.0 + (h % 50) as f64),
                        width: (kind != MediaKind::Audio).then_some(1920),
                        height: (kind != MediaKind::Audio).then_some(1080),
                        fps: (kind == MediaKind::Video).then_some(30.0),
                    };
                    described.push(describe(
                        &filename,
                        kind,
                        url,
                        probe.duration,
                        probe,
                        &format!("{h:016x}"),
                        None,
                    ));
                }
            }
        }
        // Into the session's draft.
        let now = self.clock.now();
        let mut w = self.world();
        w.settle(now);
        let Some(session) = w.sessions.get_mut(sid).filter(|s| !s.lost) else {
            return api_error(1002, "Session not found");
        };
        let mut draft = session.draft.take().unwrap_or_else(|| {
            timeline::empty_draft(if session.language.starts_with("zh") {
                "我的视频"
            } else {
                "My Video"
            })
        });
        let mut files = Vec::new();
        for (file, media) in described {
            let op = EditOp::AddMedia {
                name: media.name.clone(),
                src: media.url.clone(),
                kind: media.kind,
                duration_ms: media.duration_ms,
            };
            timeline::apply(&mut draft, &op, &mut session.next_seg);
            session.video_infos.push(json!({
                "url": media.url, "type": media.kind.as_str(), "filename": file["filename"],
                "duration": file["duration"], "width": file["width"], "height": file["height"], "fps": file["fps"],
            }));
            session.media.push(media);
            files.push(file);
        }
        session.draft = Some(draft);
        session.changes += 1;
        ok(json!({"files": files, "session_state_applied": true}))
    }

    fn render_submit(
        &self,
        w: &mut World,
        headers: &[(String, String)],
        body: Option<Value>,
        hits: &Hits,
        now: Duration,
    ) -> Reply {
        let user = match w.user(bearer(headers), now) {
            Ok(u) => u,
            Err(e) => return api_error(1001, e.message()),
        };
        let missing: Vec<&str> = ["x-skill-source", "x-skill-version", "x-skill-platform"]
            .into_iter()
            .filter(|h| header(headers, h).is_none())
            .collect();
        if !missing.is_empty() {
            return coded(
                402,
                402,
                &format!(
                    "Export is not available on the free plan for this client (missing {})",
                    missing.join(", ")
                ),
            );
        }
        let Some(body) = body else {
            return render_error("Invalid request body: expected JSON");
        };
        let Some(id) = body
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return render_error("Missing render id");
        };
        let sid = body
            .get("sessionId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(session) = w.sessions.get(sid).filter(|s| !s.lost && s.user_id == user) else {
            return api_error(1002, "Session not found");
        };
        if w.renders.contains_key(id) {
            return render_error(&format!("Render id {id} already exists"));
        }
        let draft = body.get("draft").cloned().unwrap_or(Value::Null);
        let has_segments = draft.get("t").and_then(Value::as_array).is_some_and(|t| {
            t.iter().any(|tr| {
                tr.get("sg")
                    .and_then(Value::as_array)
                    .is_some_and(|s| !s.is_empty())
            })
        });
        if !has_segments {
            return render_error("The draft has no segments to render");
        }
        // The draft as any dialect spelt it when the state was read.
        let same = session
            .draft
            .as_ref()
            .is_some_and(|d| *d == draft || timeline::to_meta(d) == draft);
        if self.config.strict_draft && !same {
            return render_error("The draft does not match the session's latest state");
        }
        let duration_s = timeline::total_ms(&draft) as f64 / 1000.0;
        w.renders.insert(
            id.to_owned(),
            RenderJob {
                user_id: user,
                submitted_at: now,
                fail: hits.has(|a| *a == FaultAction::Fail),
                cancelled: false,
                duration_s,
            },
        );
        render_ok(json!({"id": id, "status": "pending", "progress": 5}))
    }

    /// A render's phase and progress now.
    fn phase(&self, job: Option<&RenderJob>, now: Duration) -> Option<(&'static str, u64)> {
        let job = job?;
        let elapsed = (now - job.submitted_at.min(now)).as_secs_f64();
        let total = self.config.render_seconds.max(0.1);
        let pending = (total * 0.1).min(2.0);
        Some(if job.cancelled {
            ("cancelled", 0)
        } else if job.fail && elapsed >= total / 2.0 {
            ("failed", 50)
        } else if elapsed < pending {
            ("pending", 5)
        } else if elapsed < total {
            (
                "processing",
                10 + ((elapsed - pending) / (total - pending) * 89.0) as u64,
            )
        } else {
            ("completed", 100)
        })
    }

    fn output_source(&self) -> MediaSource {
        match self.config.render_bytes {
            Some(n) => MediaSource::Generated(n),
            None => MediaSource::Sample,
        }
    }

    fn render_status(
        &self,
        w: &mut World,
        headers: &[(String, String)],
        id: &str,
        now: Duration,
    ) -> Reply {
        let user = match w.user(bearer(headers), now) {
            Ok(u) => u,
            Err(e) => return api_error(1001, e.message()),
        };
        let job = w.renders.get(id).filter(|j| j.user_id == user);
        let Some((status, progress)) = self.phase(job, now) else {
            return match self.config.render_shape {
                RenderShape::A => render_error("Render not found"),
                _ => detail(404, "Render not found"),
            };
        };
        let duration = job.map_or(0.0, |j| {
            if self.config.render_bytes.is_some() {
                j.duration_s
            } else {
                SAMPLE_SECONDS
            }
        });
        let url = (status == "completed").then(|| format!("{}/media/{id}.mp4", self.base_url));
        let error = (status == "failed")
            .then_some("Render failed: the encoder stopped unexpectedly (simulated)");
        let size = self.output_source().len();
        match self.config.render_shape {
            RenderShape::A => {
                let mut data = json!({"id": id, "status": status, "progress": progress});
                if let Some(url) = url {
                    data["outputUrl"] = json!(url);
                }
                if let Some(e) = error {
                    data["error"] = json!(e);
                }
                render_ok(data)
            }
            RenderShape::B => {
                let mut v = json!({"id": id, "status": status, "progress": progress, "output": url.map(|u| json!({"url": u}))});
                if let Some(e) = error {
                    v["error"] = json!(e);
                }
                Reply::json(200, &v)
            }
            RenderShape::C => {
                let mut v = json!({"status": status, "progress": progress,
                    "output": url.map(|u| json!({"url": u, "duration": duration, "size": size}))});
                if let Some(e) = error {
                    v["error"] = json!(e);
                }
                Reply::json(200, &v)
            }
        }
    }

    fn media_reply(&self, headers: &[(String, String)], id: &str) -> Reply {
        let source = self.output_source();
        let len = source.len();
        let content_type = match source {
            MediaSource::Sample => "video/mp4",
            MediaSource::Generated(_) => "application/octet-stream",
        };
        let (status, start, end) = match parse_range(header(headers, "range"), len) {
            RangeRequest::Full => (200, 0, len),
            RangeRequest::Part(s, e) => (206, s, e),
            RangeRequest::Unsatisfiable => {
                return Reply::new(416, "text/plain; charset=utf-8", "Range Not Satisfiable")
                    .header("content-range", format!("bytes */{len}"));
            }
        };
        let mut reply = Reply::new(status, content_type, Bytes::new())
            .header("accept-ranges", "bytes")
            .header("etag", format!("\"{id}-{len}\""));
        if status == 206 {
            reply = reply.header("content-range", format!("bytes {start}-{}/{len}", end - 1));
        }
        reply.body = ReplyBody::Media { source, start, end };
        reply
    }
}

fn drop_then<T>(guard: MutexGuard<'_, World>, f: impl FnOnce() -> T) -> T {
    drop(guard);
    f()
}

fn describe(
    filename: &str,
    kind: MediaKind,
    url: &str,
    duration: Option<f64>,
    probe: crate::media::Probe,
    hash: &str,
    size: Option<u64>,
) -> (Value, SessionMedia) {
    let (width, height, fps) = match kind {
        MediaKind::Audio => (None, None, None),
        MediaKind::Image => (
            Some(probe.width.unwrap_or(1920)),
            Some(probe.height.unwrap_or(1080)),
            None,
        ),
        MediaKind::Video => (
            Some(probe.width.unwrap_or(1920)),
            Some(probe.height.unwrap_or(1080)),
            Some(probe.fps.unwrap_or(30.0)),
        ),
    };
    let duration = duration.map(|d| (d * 1000.0).round() / 1000.0);
    let mut file = json!({
        "filename": filename,
        "file_type": kind.as_str(),
        "cdn_url": url,
        "duration": duration,
        "width": width,
        "height": height,
        "fps": fps,
        "hash": hash,
    });
    if let Some(size) = size {
        file["size"] = json!(size);
    }
    let name = filename
        .rsplit_once('.')
        .map_or(filename, |(s, _)| s)
        .replace(['_', '-'], " ");
    let media = SessionMedia {
        name,
        url: url.to_owned(),
        kind,
        duration_ms: match kind {
            MediaKind::Image => 3000,
            _ => duration
                .map_or(10_000, |d| (d * 1000.0).round() as u64)
                .max(100),
        },
    };
    (file, media)
}

fn server_fault(status: u16) -> Reply {
    match status {
        502 | 504 => Reply::new(
            status,
            "text/html",
            format!(
                "<html>\r\n<head><title>{status} {0}</title></head>\r\n<body>\r\n<center><h1>{status} {0}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                if status == 502 { "Bad Gateway" } else { "Gateway Time-out" }
            ),
        ),
        503 => Reply::new(status, "text/plain; charset=utf-8", "Service Temporarily Unavailable"),
        _ => Reply::new(status, "text/plain; charset=utf-8", "Internal Server Error"),
    }
}

impl World {
    fn user(&self, token: Option<&str>, now: Duration) -> Result<String, AuthFail> {
        let token = token.ok_or(AuthFail::Missing)?;
        let info = self.tokens.get(token).ok_or(AuthFail::Invalid)?;
        if info.revoked || info.expires_at <= now {
            return Err(AuthFail::Expired);
        }
        let _ = &info.client_id;
        Ok(info.user_id.clone())
    }

    /// The caller's session, or the API error to answer.
    fn session(
        &self,
        token: Option<&str>,
        sid: &str,
        now: Duration,
    ) -> Result<&Session, Box<Reply>> {
        let user = self
            .user(token, now)
            .map_err(|e| Box::new(api_error(1001, e.message())))?;
        self.sessions
            .get(sid)
            .filter(|s| !s.lost && s.user_id == user)
            .ok_or_else(|| Box::new(api_error(1002, "Session not found")))
    }

    /// Lands the edits and refunds that are due.
    fn settle(&mut self, now: Duration) {
        if !self.scheduled.iter().any(|(at, _)| *at <= now) {
            return;
        }
        let mut due: Vec<(Duration, Pending)> = Vec::new();
        let mut keep = Vec::new();
        for item in self.scheduled.drain(..) {
            if item.0 <= now {
                due.push(item);
            } else {
                keep.push(item);
            }
        }
        self.scheduled = keep;
        due.sort_by_key(|(at, _)| *at);
        for (_, p) in due {
            match p {
                Pending::Refund { user, cost } => {
                    let a = self.accounts.entry(user).or_default();
                    a.frozen = a.frozen.saturating_sub(cost);
                    a.available += cost;
                }
                Pending::Apply {
                    session,
                    user,
                    ops,
                    fresh,
                    projected,
                    next_seg,
                    base_changes,
                    cost,
                    generated,
                } => {
                    let a = self.accounts.entry(user).or_default();
                    match self.sessions.get_mut(&session).filter(|s| !s.lost) {
                        None => {
                            a.frozen = a.frozen.saturating_sub(cost);
                            a.available += cost;
                        }
                        Some(s) => {
                            a.frozen = a.frozen.saturating_sub(cost);
                            if s.changes == base_changes {
                                s.draft = Some(projected);
                                s.next_seg = next_seg;
                            } else {
                                let mut d = match (s.draft.take(), fresh) {
                                    (Some(d), false) => d,
                                    _ => timeline::empty_draft("My Video"),
                                };
                                for op in &ops {
                                    timeline::apply(&mut d, op, &mut s.next_seg);
                                }
                                s.draft = Some(d);
                            }
                            s.changes += 1;
                            if let Some(g) = generated {
                                s.generated.push(g);
                            }
                        }
                    }
                }
            }
        }
    }
}
