//! The MCP server: tools, the timeline resource, and the handler that ties
//! them to the prompts in [`super::prompts`].

use std::sync::Arc;

use nemo_core::api::number;
use nemo_core::error::NemoError;
use nemo_core::gui::GuiAction;
use nemo_core::machine::{Command, ExportOptions, LinkKind, RenderPhase, SessionRef};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CreateTaskResult, DetailedTask, GetTaskParams, GetTaskResult, Implementation,
    ListResourcesResult, MetaObject, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig, Task, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{prompt_handler, tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine::{
    absolute, let_go, Call, Engine, KeyTurn, Outcome, Scale, StopAt, Waited, Work, WorkCell,
    WorkKind,
};
use super::schemas;
use crate::app::App;
use crate::commands::jobs::{job_client, skipped, summarise};
use crate::inputs;
use crate::output::human_bytes;
use nemo_client::JobResult;
use nemo_client::Store;

/// The URI of the timeline resource.
pub(crate) const TIMELINE_URI: &str = "nemo://timeline";

/// The URI of the credits resource.
pub(crate) const CREDITS_URI: &str = "nemo://credits";
/// The draft resource.
pub(crate) const DRAFT_URI: &str = "nemo://draft";

const INSTRUCTIONS: &str = "NemoVideo is a cloud video agent that edits and generates videos. \
`upload` media (local paths or URLs), describe edits in words with `instruct` (this spends \
credits), check the result with `timeline`, then `export` to render and download an MP4. Turns \
take seconds (an edit) to minutes (a generation): `instruct` waits with progress notifications, \
or returns a turn id at once with `wait: false` (follow it with `turn_status`). Give every \
`instruct` an `idempotency_key`: a retry with the same key never sends the message again. One \
turn or export runs at a time; `timeline`, `credits`, `turn_status`, `render_status` and `jobs` \
answer meanwhile. Renders are recorded before they are submitted: `jobs` lists them, \
`resume_jobs` finishes them after an interruption. `sessions` and `new_session` switch projects; \
`claim_link` opens one in the browser. Errors say what to do next (a registration link when \
credits run out, the accepted formats for an unsupported file).";

/// The NemoVideo engine as an MCP server.
pub(crate) struct NemoServer {
    engine: Arc<Engine>,
    tool_router: ToolRouter<NemoServer>,
    pub(super) prompt_router: PromptRouter<NemoServer>,
    /// MCP tasks (the tasks extension): task id (the work's id) → when it
    /// was made.
    tasks: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Arguments of `upload`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct UploadArgs {
    /// Local files (absolute paths, or relative to the server's working directory) or http(s) media URLs (YouTube and other video pages, direct links). Accepted files: mp4 mov avi webm mkv, jpg jpeg png gif webp, mp3 wav m4a aac; at most 500 MB each.
    pub(crate) inputs: Vec<String>,
}

/// Arguments of `instruct`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct InstructArgs {
    /// What the agent should do, in words, e.g. "add lo-fi background music at 35% and the title \"Urban Dreams\"" or "generate a 30-second video from this article: https://example.com/post".
    pub(crate) message: String,
    /// Wait for the turn to finish (the default; progress notifications keep the call alive). With `false`, return the turn id at once and follow it with `turn_status`.
    #[serde(default = "yes")]
    pub(crate) wait: bool,
    /// Any string unique to this message (e.g. a UUID). A call repeated with the same key (a retry after a timeout or a dropped connection) never sends the message again: it returns the same turn, running or finished.
    #[serde(default)]
    pub(crate) idempotency_key: Option<String>,
}

/// Arguments of `turn_status`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct TurnStatusArgs {
    /// The turn id (`turn_…`), as `instruct` returned it. Default: the latest turn.
    #[serde(default)]
    pub(crate) turn_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// Arguments of `export`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct ExportArgs {
    /// Where to save the MP4: an absolute path is best (a relative one is relative to the server's working directory). Default: `<render id>.mp4` in the server's working directory.
    #[serde(default)]
    pub(crate) out: Option<String>,
    /// Wait for the render and the download (the default; progress notifications keep the call alive). With `false`, return the render id at once: the render and its download go on in the background (`render_status` follows them; the render is in the job list until it is saved).
    #[serde(default = "yes")]
    pub(crate) wait: bool,
    /// Replace the file at `out` if it exists.
    #[serde(default)]
    pub(crate) overwrite: bool,
}

/// Arguments of `render_status`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct RenderStatusArgs {
    /// The render id, as `export` or `jobs` gave it (`render_…`).
    pub(crate) render_id: String,
}

/// Arguments of `sessions`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct SessionsArgs {
    /// Switch to this session (an id `sessions` listed, or one from `nemo` or the web app). Refused while a turn or an export runs.
    #[serde(default)]
    pub(crate) switch_to: Option<String>,
}

/// Arguments of `cancel_render`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct CancelRenderArgs {
    /// The render id (`render_…`), as `export` or `jobs` returned it.
    pub(crate) render_id: String,
}

/// Arguments of `resume_jobs`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct ResumeJobsArgs {
    /// Finish only this render (default: every recorded job).
    #[serde(default)]
    pub(crate) render_id: Option<String>,
    /// Replace a regular file that already exists where a job saves
    /// (default: refuse, and keep the job).
    #[serde(default)]
    pub(crate) overwrite: bool,
}

/// `_meta` for a tool: whether it spends credits.
fn spends_credits(yes: bool) -> MetaObject {
    let mut meta = MetaObject::new();
    meta.0
        .insert("nemovideo.com/spendsCredits".into(), Value::Bool(yes));
    meta
}

/// A successful answer: words for people, JSON for programs.
fn success(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A failed call: the CLI's message (with its link) as a tool error.
fn failure(err: &NemoError) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(err.to_string())]);
    // The `error` object of `nemo --json` (`docs/events.schema.json`).
    let error = nemo_core::ndjson::error_to_json(err);
    result.structured_content = Some(json!({ "error": error }));
    result
}

fn lock_tasks<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a GUI instruction means to an agent using these tools.
fn hint(action: GuiAction) -> &'static str {
    match action {
        GuiAction::Export => "The video is ready to export: call `export`.",
        GuiAction::ShowTimeline => "See the result with `timeline`.",
        GuiAction::ShowCredits => "See the balance with `credits`.",
        GuiAction::DescribeEdit => {
            "Describe further changes in words with `instruct` and they will be applied."
        }
    }
}

fn notes(text: &mut String, outcome: &Outcome) {
    for note in &outcome.notes {
        text.push('\n');
        text.push_str(note);
    }
}

fn phase_text(phase: &RenderPhase, progress: Option<f64>) -> String {
    match progress {
        Some(p) if !phase.is_final() => format!("{} ({}%)", phase.as_str(), number(p.round())),
        _ => phase.as_str().to_owned(),
    }
}

#[tool_router]
impl NemoServer {
    /// A server for `app`'s configuration (nothing is sent until a tool runs).
    pub(crate) fn new(app: App) -> Result<NemoServer, NemoError> {
        Ok(Self::with_engine(Arc::new(Engine::new(app)?)))
    }

    /// A server on a shared engine (each HTTP client's connection gets one:
    /// one session, one piece of work at a time, for all of them).
    pub(crate) fn with_engine(engine: Arc<Engine>) -> NemoServer {
        NemoServer {
            engine,
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
            tasks: Default::default(),
        }
    }

    #[tool(
        description = "Upload media to the session: local files or media URLs (a YouTube or other \
video page, a direct link). Files are checked first (format, at most 500 MB). Returns what the \
server stored (name, type, duration, size).",
        annotations(
            title = "Upload media",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        meta = spends_credits(false),
        output_schema = schemas::upload()
    )]
    async fn upload(
        &self,
        Parameters(args): Parameters<UploadArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.inputs.is_empty() {
            return Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                "Give at least one file path or media URL to upload.",
            )));
        }
        let (files, urls) = match inputs::paths_or_urls(&args.inputs) {
            Ok(x) => x,
            Err(e) => return Ok(failure(&e)),
        };
        let call = Call::new(&ctx, Scale::Upload);
        let (result, outcome) = self
            .engine
            .run(&call, "an upload", Command::Upload { files, urls })
            .await;
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        let mut lines = Vec::new();
        for f in &outcome.uploaded {
            let mut detail = vec![f.file_type.clone()];
            if let Some(d) = f.duration.filter(|d| *d > 0.0) {
                detail.push(format!("{}s", number((d * 10.0).round() / 10.0)));
            }
            if let (Some(w), Some(h)) = (f.width, f.height) {
                detail.push(format!("{}×{}", number(w), number(h)));
            }
            detail.retain(|s| !s.is_empty());
            lines.push(format!("Uploaded {} ({})", f.filename, detail.join(", ")));
        }
        if lines.is_empty() {
            lines.push("Uploaded.".into());
        }
        let mut text = lines.join("\n");
        notes(&mut text, &outcome);
        text.push_str("\nNext: describe the edit with `instruct`, or `export` to render as it is.");
        let session_id = self.engine.session_id();
        Ok(success(
            text,
            json!({"files": outcome.uploaded, "session_id": session_id, "events": outcome.events}),
        ))
    }

    #[tool(
        description = "Send one message to the video agent. By default waits for the turn (with \
progress notifications, at least every few seconds, when the request carries a progress token) \
and returns the agent's reply, or — when it edits without a word — what changed on the timeline. \
With `wait: false` returns the turn id at once; `turn_status` then reports the steps, the words \
so far and the outcome. Give an `idempotency_key` (any string unique to this message) so that a \
retried call never sends the message twice: the same key returns the same turn, running or \
finished. While a turn runs, another `instruct` is refused (follow the running one with \
`turn_status`). The message goes to the agent as written (\"export\" here is an instruction to \
the agent, not a render: use the `export` tool to render). Spends credits. Takes from seconds \
(an edit) to several minutes (generating a video).",
        annotations(
            title = "Instruct the video agent",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        ),
        meta = spends_credits(true),
        output_schema = schemas::turn()
    )]
    async fn instruct(
        &self,
        Parameters(args): Parameters<InstructArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let (cell, note) = match self.begin_instruct(&args).await {
            Ok(x) => x,
            Err(answer) => return Ok(answer),
        };
        if args.wait {
            // A cancelled wait stops waiting only: the agent has the message
            // and may still finish; `turn_status` follows it.
            self.engine
                .wait(&cell, &Call::new(&ctx, Scale::Steps))
                .await;
        }
        let work = cell.borrow();
        Ok(self.turn_answer(&work, note.as_deref()))
    }

    #[tool(
        description = "How a turn started by `instruct` is doing (default: the latest): running \
(the steps so far, the agent's words so far, how long), done (the reply, or what a silent edit \
changed), failed (why) or stopped. Never waits and never sends anything to the agent.",
        annotations(title = "Turn status", read_only_hint = true, open_world_hint = false),
        meta = spends_credits(false),
        output_schema = schemas::turn()
    )]
    async fn turn_status(
        &self,
        Parameters(args): Parameters<TurnStatusArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let cell = match self.turn_named(args.turn_id.as_deref()) {
            Ok(cell) => cell,
            Err(e) => return Ok(failure(&e)),
        };
        let work = cell.borrow();
        // Reporting a turn that failed is not a failure of this call: the
        // status (and the error) say how it ended.
        let mut answer = self.turn_answer(&work, None);
        answer.is_error = Some(false);
        Ok(answer)
    }

    #[tool(
        description = "The session's current draft as a timeline summary, e.g. `Timeline (3 \
tracks): 1. Video: clip (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: \"Urban Dreams\" (0-3s)`, \
and whether it is ready to export.",
        annotations(title = "Show the timeline", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false),
        output_schema = schemas::timeline()
    )]
    async fn timeline(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let call = Call::new(&ctx, Scale::Steps);
        match self.read_timeline(&call).await {
            Ok((summary, ready)) => Ok(success(
                summary.clone(),
                json!({"summary": summary, "ready_for_export": ready, "session_id": self.engine.session_id()}),
            )),
            Err(e) => Ok(failure(&e)),
        }
    }

    #[tool(
        description = "The credit balance: available, frozen (held by work in progress) and total.",
        annotations(title = "Show credits", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false),
        output_schema = schemas::credits()
    )]
    async fn credits(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let call = Call::new(&ctx, Scale::Steps);
        let (result, outcome) = self
            .engine
            .query(&call, Command::Credits, StopAt::Never)
            .await;
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        match outcome.credits {
            Some(c) => Ok(success(
                format!("Credits: {c}"),
                json!({"available": c.available, "frozen": c.frozen, "total": c.total}),
            )),
            None => Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::Protocol,
                "The server did not say what the balance is.",
            ))),
        }
    }

    #[tool(
        description = "Render the session's draft to an MP4 and download it to `out`. The render \
is recorded in the local job list before it is submitted, so it is never lost. Waits (with \
progress notifications when the request carries a progress token) and returns the saved path; \
with `wait: false` returns the render id as soon as the render is submitted.",
        annotations(
            title = "Export (render and download)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        meta = spends_credits(false),
        output_schema = schemas::render()
    )]
    async fn export(
        &self,
        Parameters(args): Parameters<ExportArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let cell = match self.begin_export(&args).await {
            Ok(cell) => cell,
            Err(answer) => return Ok(answer),
        };
        if args.wait {
            let call = Call::new(&ctx, Scale::Render);
            if self.engine.wait(&cell, &call).await == Waited::Cancelled {
                // Given up on: the render keeps going on the server and stays
                // in the job list; the session is free again at once.
                self.engine.stop(&cell);
                self.engine.ended(&cell).await;
            }
        }
        let work = cell.borrow();
        Ok(self.export_answer(&work))
    }

    #[tool(
        description = "Check one render once: queued, rendering (with progress), completed (with \
its URL) or failed. Does not download: `resume_jobs` does.",
        annotations(title = "Render status", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false),
        output_schema = schemas::render()
    )]
    async fn render_status(
        &self,
        Parameters(args): Parameters<RenderStatusArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let id = args.render_id.trim().to_owned();
        if id.is_empty() {
            return Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                "Give the render id (`render_…`), as `export` or `jobs` returned it.",
            )));
        }
        if let Some(cell) = self
            .engine
            .work(&id)
            .filter(|c| matches!(c.borrow().kind, WorkKind::Export { .. }))
        {
            // An export of this server's: what its own polling last saw.
            let work = cell.borrow();
            let mut answer = self.render_answer(&work);
            answer.is_error = Some(false);
            return Ok(answer);
        }
        let app = &self.engine.app;
        let jobs = match app.store.jobs().map_err(crate::store::error) {
            Ok(jobs) => jobs,
            Err(e) => return Ok(failure(&e)),
        };
        let job = jobs.into_iter().find(|j| j.id == id);
        let command = Command::ResumeRender {
            id: id.clone(),
            options: ExportOptions {
                render_id: None,
                download: false,
                out: None,
                overwrite: false,
            },
        };
        let call = Call::new(&ctx, Scale::Steps);
        let (result, outcome) = match &job {
            Some(job) if job.api_url == app.api_url => match job_client(app, job) {
                Ok(client) => {
                    self.engine
                        .run_other(client, &call, command, StopAt::RenderStillRunning)
                        .await
                }
                Err(e) => (Err(e), Outcome::default()),
            },
            _ => {
                self.engine
                    .query(&call, command, StopAt::RenderStillRunning)
                    .await
            }
        };
        // Reading the status never ends a job that is still to be downloaded.
        if let Some(job) = job.as_ref().filter(|j| j.out.is_some()) {
            let known = app
                .store
                .jobs()
                .map(|jobs| jobs.iter().any(|j| j.id == job.id));
            if result.is_ok() && matches!(known, Ok(false)) {
                let _ = app.store.add_job(job.clone());
            }
        }
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        let (phase, progress) = outcome
            .render_phase
            .clone()
            .unwrap_or((RenderPhase::Pending, None));
        let mut text = format!("Render {id}: {}.", phase_text(&phase, progress));
        if let Some(url) = &outcome.render_url {
            text.push_str(&format!(" Output: {url}"));
            if let Some(out) = job.as_ref().and_then(|j| j.out.as_ref()) {
                text.push_str(&format!(
                    "\nDownload it to {} with `resume_jobs`.",
                    out.display()
                ));
            }
        }
        Ok(success(
            text,
            json!({
                "render_id": id,
                "status": phase.as_str(),
                "progress": progress,
                "url": outcome.render_url,
                "out": job.and_then(|j| j.out),
            }),
        ))
    }

    #[tool(
        description = "The render jobs recorded locally (each is written before its render is \
submitted, by this server or the `nemo` command): id, session, when, where it is to be \
downloaded. `resume_jobs` finishes them.",
        annotations(title = "List render jobs", read_only_hint = true, open_world_hint = false),
        meta = spends_credits(false),
        output_schema = schemas::jobs()
    )]
    async fn jobs(&self) -> Result<CallToolResult, ErrorData> {
        let app = &self.engine.app;
        let jobs = match app.store.jobs().map_err(crate::store::error) {
            Ok(jobs) => jobs,
            Err(e) => return Ok(failure(&e)),
        };
        if jobs.is_empty() {
            return Ok(success(
                "No render jobs recorded.".into(),
                json!({"jobs": []}),
            ));
        }
        // Every lease probed at once: one wait (up to 200 ms, on a thread
        // of its own, not the runtime's), not one per running render.
        let (store, ids) = (
            app.store.clone(),
            jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        );
        let running = tokio::task::spawn_blocking(move || {
            store.leased_elsewhere(ids.iter().map(String::as_str))
        })
        .await
        .unwrap_or_default();
        let mut text = crate::commands::jobs::jobs_table(&jobs, |id| running.contains(id));
        let elsewhere = jobs.iter().filter(|j| j.api_url != app.api_url).count();
        if elsewhere > 0 {
            text.push_str(&format!(
                "\n{elsewhere} of them were sent to another API (NEMO_API_URL) and cannot be resumed from here."
            ));
        }
        text.push_str("\nFinish them with `resume_jobs`.");
        let list: Vec<Value> = jobs
            .iter()
            .map(|j| {
                json!({
                    "render_id": j.id,
                    "session_id": j.session_id,
                    "out": j.out,
                    "api_url": j.api_url,
                    "created_unix": j.created_unix,
                })
            })
            .collect();
        Ok(success(text, json!({ "jobs": list })))
    }

    #[tool(
        description = "Finish recorded render jobs (all, or one `render_id`): wait for each \
render and download it where it was meant to go. Use it after an interrupted `export` or an \
`export` with `wait: false`.",
        annotations(
            title = "Resume render jobs",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        ),
        meta = spends_credits(false),
        output_schema = schemas::jobs()
    )]
    async fn resume_jobs(
        &self,
        Parameters(args): Parameters<ResumeJobsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let app = &self.engine.app;
        let wanted = args
            .render_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let jobs: Vec<_> = match app.store.jobs().map_err(crate::store::error) {
            Ok(jobs) => jobs,
            Err(e) => return Ok(failure(&e)),
        }
        .into_iter()
        .filter(|j| wanted.is_none_or(|w| w == j.id))
        .collect();
        if jobs.is_empty() {
            return Ok(match wanted {
                Some(id) => failure(&NemoError::new(
                    nemo_core::error::ErrorKind::BadInput,
                    format!("There is no recorded job {id}; `jobs` lists them."),
                )),
                None => success("No render jobs to resume.".into(), json!({"jobs": []})),
            });
        }
        let call = Call::new(&ctx, Scale::Steps);
        let mut options = nemo_client::ResumeJobs::new().overwrite(args.overwrite);
        options.only = wanted.map(str::to_owned);
        let ended = match self.engine.resume_jobs(&call, &options).await {
            Ok(ended) => ended,
            Err(e) => return Ok(failure(&e)),
        };
        let mut lines = Vec::new();
        let mut results = Vec::new();
        let mut failures = Vec::new();
        let mut resumed = 0;
        let failed = |e: &NemoError| json!({"code": e.kind, "message": e.message, "retryable": e.is_retryable()});
        for (job, result, outcome) in ended {
            let e = match result {
                JobResult::Skipped(why) => {
                    lines.push(skipped(&job.id, &why).replacen("Skipping", "Skipped", 1));
                    continue;
                }
                JobResult::Finished(done) => {
                    resumed += 1;
                    lines.push(match (&done.path, done.bytes) {
                        (Some(p), Some(bytes)) => {
                            format!("{}: saved {} ({})", job.id, p.display(), human_bytes(bytes))
                        }
                        _ => format!(
                            "{}: completed {}",
                            job.id,
                            done.url.clone().unwrap_or_default()
                        ),
                    });
                    results.push(json!({"render_id": job.id, "ok": true, "path": done.path, "url": done.url, "events": outcome.events}));
                    continue;
                }
                JobResult::CannotSave(problem) => {
                    crate::inputs::advise(&problem, crate::inputs::Asker::Mcp)
                }
                JobResult::Failed(e) => e,
                other => NemoError::new(nemo_core::error::ErrorKind::Api, format!("{other:?}")),
            };
            resumed += 1;
            lines.push(format!("{}: {e}", job.id));
            results.push(json!({"render_id": job.id, "ok": false, "error": failed(&e), "events": outcome.events}));
            failures.push(e);
        }
        let text = lines.join("\n");
        match summarise(resumed, failures, "job") {
            Ok(()) => Ok(success(text, json!({ "jobs": results }))),
            Err(e) => {
                let mut result = failure(&e);
                result.content = vec![ContentBlock::text(format!("{text}\n{e}"))];
                result.structured_content = Some(
                    json!({ "jobs": results, "error": {"code": e.kind, "message": e.message, "retryable": e.is_retryable()} }),
                );
                Ok(result)
            }
        }
    }

    #[tool(
        description = "Stop waiting for a running turn (default: the latest) and free the \
session for other work. The agent already has the message and may still finish it on the \
service: check `timeline` before sending it again (that could spend credits twice).",
        annotations(
            title = "Stop waiting for a turn",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        meta = spends_credits(false),
        output_schema = schemas::turn()
    )]
    async fn cancel_turn(
        &self,
        Parameters(args): Parameters<TurnStatusArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let cell = match self.turn_named(args.turn_id.as_deref()) {
            Ok(cell) => cell,
            Err(e) => return Ok(failure(&e)),
        };
        let was_running = cell.borrow().end.is_none();
        if was_running {
            self.engine.stop(&cell);
            self.engine.ended(&cell).await;
        }
        let work = cell.borrow();
        let mut answer = self.turn_answer(&work, None);
        if was_running && work.stopped {
            // Asked for: not a failure of the call.
            answer.is_error = Some(false);
            answer.content = vec![ContentBlock::text(format!(
                "Stopped waiting for turn {}. The agent has the message and may still finish \
it: check `timeline` before sending it again (that could spend credits twice).",
                work.id
            ))];
        }
        Ok(answer)
    }

    #[tool(
        description = "The sessions this server knows: the current one, the ones it used, and the \
last session of this machine (what the `nemo` command continues). With `switch_to`, continue \
that session instead (its draft, its history); refused while a turn or an export runs.",
        annotations(
            title = "List or switch sessions",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        meta = spends_credits(false),
        output_schema = schemas::sessions()
    )]
    async fn sessions(
        &self,
        Parameters(args): Parameters<SessionsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut said = String::new();
        if let Some(id) = args
            .switch_to
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if let Err(why) = nemo_core::ids::check_id("session id", id) {
                return Ok(failure(&NemoError::new(
                    nemo_core::error::ErrorKind::BadInput,
                    format!("switch_to: {why}."),
                )));
            }
            let task_id = self
                .known_sessions()
                .into_iter()
                .find(|(s, _)| s.session_id == id)
                .and_then(|(s, _)| s.task_id);
            let session = SessionRef {
                session_id: id.to_owned(),
                task_id,
            };
            match self.engine.switch(Some(session)).await {
                Ok(previous) => {
                    said = match previous {
                        Some(p) if p != id => format!("Switched from session {p} to {id}.\n"),
                        Some(_) => format!("Already in session {id}.\n"),
                        None => format!("Switched to session {id}.\n"),
                    }
                }
                Err(e) => return Ok(failure(&e)),
            }
        }
        Ok(self.sessions_answer(said))
    }

    #[tool(
        description = "Start a new, empty session (a new project) and continue in it: later \
uploads, turns and exports go there. The previous session is kept (`sessions` lists it, and \
switches back). Refused while a turn or an export runs. Spends no credits.",
        annotations(
            title = "New session",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        meta = spends_credits(false),
        output_schema = schemas::sessions()
    )]
    async fn new_session(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let previous = match self.engine.switch(None).await {
            Ok(previous) => previous,
            Err(e) => return Ok(failure(&e)),
        };
        let call = Call::new(&ctx, Scale::Steps);
        let (result, _) = self
            .engine
            .run(&call, "a new session", Command::Connect)
            .await;
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        let id = self.engine.session_id().unwrap_or_default();
        let said = match previous {
            Some(p) => format!("Started session {id} (the previous one, {p}, is kept).\n"),
            None => format!("Started session {id}.\n"),
        };
        Ok(self.sessions_answer(said))
    }

    #[tool(
        description = "A browser link that opens the session's project in the NemoVideo web app \
(to see, edit or share it; it never carries the token).",
        annotations(title = "Project link", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false),
        output_schema = schemas::claim_link()
    )]
    async fn claim_link(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(session_id) = self.engine.session_id() else {
            return Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                "There is no session yet: `upload` media or `instruct` the agent first.",
            )));
        };
        let call = Call::new(&ctx, Scale::Steps);
        let (result, outcome) = self
            .engine
            .query(&call, Command::ClaimLink, StopAt::Never)
            .await;
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        match outcome.link(LinkKind::Claim) {
            Some(url) => Ok(success(
                format!("Open the project in the browser: {url}"),
                json!({"url": url, "session_id": session_id}),
            )),
            None => Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::Protocol,
                "The service did not give a link to the project.",
            ))),
        }
    }

    #[tool(
        description = "Cancel a render on the server (the service's cancel endpoint): one this \
server is exporting, or one from the job list. An export waiting for it ends as cancelled.",
        annotations(
            title = "Cancel a render",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        ),
        meta = spends_credits(false),
        output_schema = schemas::cancel_render()
    )]
    async fn cancel_render(
        &self,
        Parameters(args): Parameters<CancelRenderArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let id = args.render_id.trim().to_owned();
        if let Err(why) = nemo_core::ids::check_id("render id", &id) {
            return Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                format!(
                    "{why}. Give the render id (`render_…`), as `export` or `jobs` returned it."
                ),
            )));
        }
        let app = &self.engine.app;
        let job = app
            .store
            .jobs()
            .unwrap_or_default()
            .into_iter()
            .find(|j| j.id == id);
        let command = Command::CancelRender { id: id.clone() };
        let call = Call::new(&ctx, Scale::Steps);
        let (result, outcome) = match &job {
            Some(job) if job.api_url == app.api_url => match job_client(app, job) {
                Ok(client) => {
                    self.engine
                        .run_other(client, &call, command, StopAt::Never)
                        .await
                }
                Err(e) => (Err(e), Outcome::default()),
            },
            _ => self.engine.query(&call, command, StopAt::Never).await,
        };
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        let mut text = format!("Render {id} cancelled.");
        if self
            .engine
            .work(&id)
            .is_some_and(|c| c.borrow().end.is_none())
        {
            text.push_str(" The export waiting for it ends as soon as it sees that.");
        }
        Ok(success(
            text,
            json!({"render_id": id, "status": "cancelled", "events": outcome.events}),
        ))
    }
}

impl NemoServer {
    /// The turn `id` names (default: the latest), or why there is none.
    fn turn_named(&self, id: Option<&str>) -> Result<Arc<WorkCell>, NemoError> {
        let wanted = id.map(str::trim).filter(|s| !s.is_empty());
        let cell = match wanted {
            Some(id) => self
                .engine
                .work(id)
                .filter(|c| matches!(c.borrow().kind, WorkKind::Turn { .. })),
            None => self.engine.last_turn(),
        };
        cell.ok_or_else(|| {
            NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                match wanted {
                    Some(id) => format!(
                        "There is no turn {id} in this server (turn ids are `turn_…`, as `instruct` \
returned them)."
                    ),
                    None => "No turn has been started yet: `instruct` starts one.".to_owned(),
                },
            )
        })
    }

    /// The sessions to list, each with whether it is the store's last one.
    fn known_sessions(&self) -> Vec<(SessionRef, bool)> {
        let app = &self.engine.app;
        let last = app.store.last_session(&app.api_url);
        let mut all: Vec<(SessionRef, bool)> = self
            .engine
            .sessions_used()
            .into_iter()
            .map(|s| {
                let is_last = last.as_ref().is_some_and(|l| l.session_id == s.session_id);
                (s, is_last)
            })
            .collect();
        if let Some(last) = last {
            if !all.iter().any(|(s, _)| s.session_id == last.session_id) {
                all.push((
                    SessionRef {
                        session_id: last.session_id,
                        task_id: last.task_id,
                    },
                    true,
                ));
            }
        }
        all
    }

    /// What `sessions` and `new_session` answer, after `said`.
    fn sessions_answer(&self, mut said: String) -> CallToolResult {
        let current = self.engine.session_id();
        let list: Vec<Value> = self
            .known_sessions()
            .into_iter()
            .map(|(s, last)| {
                json!({
                    "session_id": s.session_id,
                    "task_id": s.task_id,
                    "current": current.as_deref() == Some(s.session_id.as_str()),
                    "last": last,
                })
            })
            .collect();
        match &current {
            Some(id) => said.push_str(&format!("Current session: {id}.")),
            None => said.push_str("No session yet: the first `upload` or `instruct` starts one."),
        }
        let others: Vec<&str> = list
            .iter()
            .filter(|s| s["current"] != true)
            .filter_map(|s| s["session_id"].as_str())
            .collect();
        if !others.is_empty() {
            said.push_str(&format!(
                "\nOther sessions: {} (`sessions` with `switch_to` continues one).",
                others.join(", ")
            ));
        }
        success(
            said,
            json!({
                "current": current.map(|id| json!({"session_id": id})),
                "sessions": list,
            }),
        )
    }

    /// Checks an `instruct` and starts its turn, or finds the turn its
    /// idempotency key started (with a note saying so); a refusal is the
    /// tool's answer.
    async fn begin_instruct(
        &self,
        args: &InstructArgs,
    ) -> Result<(Arc<WorkCell>, Option<String>), CallToolResult> {
        let message = args.message.trim().to_owned();
        if message.is_empty() {
            return Err(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                "The message is empty: say what the agent should do.",
            )));
        }
        let key = args
            .idempotency_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
        if key.as_ref().is_some_and(|k| k.chars().count() > 200) {
            return Err(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                "The idempotency_key is too long: at most 200 characters.",
            )));
        }
        let mut note = None;
        let earlier = match key.as_deref() {
            Some(k) => self.engine.turn_for_key(k),
            None => KeyTurn::New,
        };
        let cell = match earlier {
            KeyTurn::LetGo(id) => {
                return Err(failure(&let_go(key.as_deref().unwrap_or_default(), &id)));
            }
            KeyTurn::Started(cell) => {
                // A retry: the message was sent once, under this key.
                let same = matches!(&cell.borrow().kind, WorkKind::Turn { message: m, .. } if *m == message);
                note = Some(if same {
                    "This idempotency_key was used before: the message was not sent again; this is \
the same turn."
                        .to_owned()
                } else {
                    "This idempotency_key was used before for another message: nothing was sent; \
this is the turn that key started. Use a new key for a new message."
                        .to_owned()
                });
                cell
            }
            KeyTurn::New => match self
                .engine
                .start(
                    WorkKind::Turn {
                        message: message.clone(),
                        key,
                    },
                    None,
                    Command::Instruct(message),
                )
                .await
            {
                Ok(cell) => cell,
                Err(e) => return Err(failure(&e)),
            },
        };
        Ok((cell, note))
    }

    /// Checks an `export` and starts it; a refusal is the tool's answer.
    async fn begin_export(&self, args: &ExportArgs) -> Result<Arc<WorkCell>, CallToolResult> {
        let out = args
            .out
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| absolute(std::path::Path::new(s)));
        // Checked before anything is spent: a render that cannot be saved
        // where asked would be paid for and never finish.
        let checked =
            crate::inputs::check_out(out.as_deref(), args.overwrite, crate::inputs::Asker::Mcp)
                .and_then(|()| {
                    self.engine
                        .app
                        .store
                        .check_journal()
                        .map_err(crate::store::error)
                });
        if let Err(e) = checked {
            return Err(failure(&e));
        }
        let id = self.engine.new_render_id();
        let command = Command::Export(ExportOptions {
            render_id: Some(id.clone()),
            download: true,
            out: out.clone(),
            overwrite: args.overwrite,
        });
        let cell = match self
            .engine
            .start(WorkKind::Export { out }, Some(id), command)
            .await
        {
            Ok(cell) => cell,
            Err(e) => return Err(failure(&e)),
        };
        Ok(cell)
    }

    /// Starts `instruct` or `export` as an MCP task; a refusal (bad
    /// arguments, a busy session) is an ordinary tool error.
    async fn start_task(
        &self,
        request: CallToolRequestParams,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        let begun = if request.name == "instruct" {
            let args: InstructArgs = serde_json::from_value(args)
                .map_err(|e| ErrorData::invalid_params(format!("instruct: {e}"), None))?;
            self.begin_instruct(&args).await.map(|(cell, _)| cell)
        } else {
            let args: ExportArgs = serde_json::from_value(args)
                .map_err(|e| ErrorData::invalid_params(format!("export: {e}"), None))?;
            self.begin_export(&args).await
        };
        let cell = match begun {
            Ok(cell) => cell,
            Err(answer) => return Ok(CallToolResponse::Complete(answer)),
        };
        let id = cell.borrow().id.clone();
        let now = rmcp::task_manager::current_timestamp();
        let created = lock_tasks(&self.tasks)
            .entry(id.clone())
            .or_insert(now.clone())
            .clone();
        let task = Task::new(id, TaskStatus::Working, created, now)
            .with_poll_interval_ms(self.poll_interval_ms());
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    /// The work behind a task id, and when the task was made.
    fn task(&self, task_id: &str) -> Result<(Arc<WorkCell>, String), ErrorData> {
        let created = lock_tasks(&self.tasks).get(task_id).cloned();
        match (created, self.engine.work(task_id)) {
            (Some(created), Some(cell)) => Ok((cell, created)),
            _ => Err(ErrorData::invalid_params(
                format!("There is no task {task_id} in this server."),
                None,
            )),
        }
    }

    /// How often a client should poll a task: every two seconds of the
    /// client's clock.
    fn poll_interval_ms(&self) -> u64 {
        ((2000.0 * self.engine.time_scale) as u64).max(10)
    }

    /// What `instruct` and `turn_status` say about a turn.
    fn turn_answer(&self, work: &Work, note: Option<&str>) -> CallToolResult {
        let scale = self.engine.time_scale;
        let outcome = &work.outcome;
        let (message, key) = match &work.kind {
            WorkKind::Turn { message, key } => (message.clone(), key.clone()),
            WorkKind::Export { .. } => (String::new(), None),
        };
        let elapsed = work.elapsed(scale);
        let mut data = json!({
            "turn_id": work.id,
            "status": work.status(),
            "message": message,
            "idempotency_key": key,
            "elapsed_seconds": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "text": outcome.texts.join("\n\n"),
            "steps": work.steps,
            "changes": outcome.changes,
            "actions": outcome.actions,
            "notes": outcome.notes,
            "timeline": outcome.timeline.as_ref().map(|t| &t.summary),
            "suggestions": outcome.suggestions,
            "note": note,
            "events": outcome.events,
        });
        let took = nemo_core::time::human_duration(elapsed);
        match &work.end {
            None => {
                let mut text = format!(
                    "Turn {} is running ({took} so far): the agent is working on \"{}\". Check it \
with `turn_status` (turn_id \"{}\"); do not send the message again.",
                    work.id,
                    message.trim(),
                    work.id
                );
                if let Some(step) = work.steps.last() {
                    text.push_str(&format!("\nLatest step: {step}"));
                }
                if !outcome.texts.is_empty() {
                    text.push_str(&format!(
                        "\nThe agent said so far: {}",
                        outcome.texts.join("\n\n")
                    ));
                }
                if let Some(note) = note {
                    text.push('\n');
                    text.push_str(note);
                }
                success(text, data)
            }
            Some(Err(e)) => {
                let mut result = failure(e);
                let mut text = format!("Turn {}: {e}", work.id);
                if work.stopped {
                    text.push_str(
                        "\nStopped waiting: the agent has the message and may still finish; see \
the result with `timeline`. Sending the message again could spend credits twice.",
                    );
                }
                if let Some(note) = note {
                    text.push('\n');
                    text.push_str(note);
                }
                result.content = vec![ContentBlock::text(text)];
                data["error"] = nemo_core::ndjson::error_to_json(e);
                result.structured_content = Some(data);
                result
            }
            Some(Ok(())) => {
                let mut parts: Vec<String> = outcome.texts.clone();
                for change in &outcome.changes {
                    parts.push(format!("Changed: {change}"));
                }
                if parts.is_empty() {
                    parts.push("The agent finished without a reply.".into());
                }
                if let Some(timeline) = &outcome.timeline {
                    parts.push(timeline.summary.clone());
                }
                let mut text = parts.join("\n\n");
                notes(&mut text, outcome);
                if !outcome.suggestions.is_empty() {
                    let said: Vec<String> = outcome
                        .suggestions
                        .iter()
                        .map(|s| format!("\"{s}\""))
                        .collect();
                    text.push_str(&format!("\nSuggested next messages: {}", said.join(", ")));
                }
                for action in &outcome.actions {
                    text.push('\n');
                    text.push_str(hint(*action));
                }
                if let Some(note) = note {
                    text.push('\n');
                    text.push_str(note);
                }
                success(text, data)
            }
        }
    }

    /// What `export` says about its render.
    fn export_answer(&self, work: &Work) -> CallToolResult {
        match &work.end {
            Some(Ok(())) if work.outcome.downloaded.is_some() => {
                let outcome = &work.outcome;
                let id = &work.id;
                let (path, bytes) = outcome.downloaded.clone().unwrap_or_default();
                let claim = outcome.link(LinkKind::Claim).map(str::to_owned);
                let mut text = format!(
                    "Saved {} ({}). Render {id}.",
                    path.display(),
                    human_bytes(bytes)
                );
                if let Some(url) = &claim {
                    text.push_str(&format!("\nOpen the project in the browser: {url}"));
                }
                notes(&mut text, outcome);
                success(
                    text,
                    json!({
                        "render_id": id,
                        "status": "downloaded",
                        "progress": 100.0,
                        "path": path,
                        "bytes": bytes,
                        "url": outcome.render_url,
                        "claim_link": claim,
                        "events": outcome.events,
                    }),
                )
            }
            Some(Ok(())) => failure(&NemoError::new(
                nemo_core::error::ErrorKind::Protocol,
                format!(
                    "The render {} finished but nothing was downloaded.",
                    work.id
                ),
            )),
            _ => self.render_answer(work),
        }
    }

    /// What `render_status` says about an export of this server's.
    fn render_answer(&self, work: &Work) -> CallToolResult {
        let outcome = &work.outcome;
        let id = &work.id;
        let (status, progress) = work.render_state();
        let out = match &work.kind {
            WorkKind::Export { out } => out.clone(),
            WorkKind::Turn { .. } => None,
        }
        .or_else(|| outcome.downloaded.as_ref().map(|(p, _)| p.clone()));
        let elapsed = work.elapsed(self.engine.time_scale);
        let mut data = json!({
            "render_id": id,
            "status": status,
            "progress": progress,
            "elapsed_seconds": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "out": out,
            "path": outcome.downloaded.as_ref().map(|(p, _)| p),
            "bytes": outcome.downloaded.as_ref().map(|(_, b)| b),
            "url": outcome.render_url,
            "claim_link": outcome.link(LinkKind::Claim),
            "events": outcome.events,
        });
        match &work.end {
            Some(Err(e)) => {
                let mut result = failure(e);
                let mut text = format!("Render {id}: {e}");
                if work.stopped {
                    text.push_str(&format!(
                        "\nStopped waiting: the render keeps going on the server and stays in \
the job list; `resume_jobs` (render_id \"{id}\") downloads it."
                    ));
                }
                result.content = vec![ContentBlock::text(text)];
                data["error"] = nemo_core::ndjson::error_to_json(e);
                result.structured_content = Some(data);
                result
            }
            Some(Ok(())) => {
                let mut text = format!("Render {id}: {status}.");
                if let Some((path, bytes)) = &outcome.downloaded {
                    text = format!(
                        "Render {id}: downloaded to {} ({}).",
                        path.display(),
                        human_bytes(*bytes)
                    );
                }
                success(text, data)
            }
            None => {
                let shown = match progress {
                    Some(p) => format!("{status} ({}%)", number(p.round())),
                    None => status.clone(),
                };
                let mut text = format!(
                    "Render {id}: {shown}, {} so far. It goes on in the background",
                    nemo_core::time::human_duration(elapsed)
                );
                match &out {
                    Some(p) => text.push_str(&format!(" and will be saved to {}", p.display())),
                    None => text.push_str(&format!(
                        " and will be saved as {}.mp4 in the server's working directory",
                        nemo_core::ids::file_stem(id)
                    )),
                }
                text.push_str("; check again with `render_status`.");
                success(text, data)
            }
        }
    }

    /// The timeline summary and whether it can be exported. Without a
    /// session there is nothing to read (and none is created for it).
    pub(crate) async fn read_timeline(&self, call: &Call<'_>) -> Result<(String, bool), NemoError> {
        if self.engine.session_id().is_none() {
            return Ok((
                "The timeline is empty: there is no session yet. Upload media with `upload` or \
describe a video with `instruct` first."
                    .into(),
                false,
            ));
        }
        let (result, outcome) = self
            .engine
            .query(call, Command::Timeline, StopAt::Never)
            .await;
        result?;
        outcome
            .timeline
            .map(|t| (t.summary, t.ready_for_export))
            .ok_or_else(|| {
                NemoError::new(
                    nemo_core::error::ErrorKind::Protocol,
                    "The server did not return the session's state.",
                )
            })
    }

    fn timeline_resource() -> Resource {
        Resource::new(TIMELINE_URI, "timeline")
            .with_title("Current timeline")
            .with_description(
                "The session's current draft as a timeline summary (tracks, segments, spans, \
volumes).",
            )
            .with_mime_type("text/plain")
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for NemoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new("nemo", env!("CARGO_PKG_VERSION")).with_title("NemoVideo (nemo)"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    /// `instruct` and `export` run as MCP tasks for a client that declared
    /// the tasks extension (unless the call says `wait: false`: then it
    /// asked for the id itself); everything else is an ordinary call.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let as_task = context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
            && matches!(request.name.as_ref(), "instruct" | "export")
            && request.arguments.as_ref().and_then(|a| a.get("wait")) != Some(&Value::Bool(false));
        if as_task {
            return self.start_task(request).await;
        }
        let tcc = ToolCallContext::new(self, request, context);
        self.tool_router.call(tcc).await
    }

    /// `tasks/get`: the task's state; once ended, the tool's answer.
    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let (cell, created) = self.task(&request.task_id)?;
        let work = cell.borrow();
        let now = rmcp::task_manager::current_timestamp();
        let mut task = Task::new(work.id.clone(), TaskStatus::Working, created, now)
            .with_poll_interval_ms(self.poll_interval_ms());
        let payload = match &work.end {
            None => {
                let said = match &work.kind {
                    WorkKind::Turn { .. } => work.steps.last().cloned(),
                    WorkKind::Export { .. } => {
                        let (status, progress) = work.render_state();
                        Some(match progress {
                            Some(p) => format!("{status} ({}%)", number(p.round())),
                            None => status,
                        })
                    }
                };
                if let Some(said) = said {
                    task = task.with_status_message(said);
                }
                TaskPayload::Working
            }
            Some(Err(_)) if work.stopped => TaskPayload::Cancelled,
            Some(_) => {
                let answer = match &work.kind {
                    WorkKind::Turn { .. } => self.turn_answer(&work, None),
                    WorkKind::Export { .. } => self.export_answer(&work),
                };
                let result = match serde_json::to_value(answer) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        return Err(ErrorData::internal_error(
                            "The answer could not be written.",
                            None,
                        ))
                    }
                };
                TaskPayload::Completed { result }
            }
        };
        Ok(GetTaskResult::new(DetailedTask::new(task, payload)))
    }

    /// `tasks/cancel`: a turn stops being waited for (the agent has the
    /// message and may still finish: `timeline` shows what it did); a
    /// render is cancelled on the server.
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (cell, _) = self.task(&request.task_id)?;
        let (id, export, running) = {
            let work = cell.borrow();
            (
                work.id.clone(),
                matches!(work.kind, WorkKind::Export { .. }),
                work.end.is_none(),
            )
        };
        if !running {
            return Ok(());
        }
        if export {
            let call = Call::new(&context, Scale::Steps);
            let (result, _) = self
                .engine
                .query(
                    &call,
                    Command::CancelRender { id: id.clone() },
                    StopAt::Never,
                )
                .await;
            self.engine.stop(&cell);
            self.engine.ended(&cell).await;
            if result.is_ok() {
                // Cancelled for good: nothing left to download.
                let _ = self.engine.app.store.remove_job(&id);
            }
        } else {
            self.engine.stop(&cell);
            self.engine.ended(&cell).await;
        }
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Self::timeline_resource(),
            Resource::new(CREDITS_URI, "credits")
                .with_title("Credit balance")
                .with_description(
                    "The credit balance as JSON: available, frozen (held by work in progress), total.",
                )
                .with_mime_type("application/json"),
            Resource::new(DRAFT_URI, "draft")
                .with_title("Draft JSON")
                .with_description(
                    "The session's draft exactly as the service keeps it (tracks, segments, \
settings): what the timeline summarises.",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let call = Call::new(&context, Scale::Steps);
        if request.uri == CREDITS_URI {
            let (result, outcome) = self
                .engine
                .query(&call, Command::Credits, StopAt::Never)
                .await;
            let body = match (result, outcome.credits) {
                (Ok(()), Some(c)) => {
                    json!({"available": c.available, "frozen": c.frozen, "total": c.total})
                }
                (Err(e), _) => json!({ "error": nemo_core::ndjson::error_to_json(&e) }),
                (Ok(()), None) => {
                    json!({"error": {"code": "protocol", "message": "The server did not say what the balance is."}})
                }
            };
            let contents = ResourceContents::text(body.to_string(), CREDITS_URI)
                .with_mime_type("application/json");
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        if request.uri == DRAFT_URI {
            let body = if self.engine.session_id().is_none() {
                json!({"error": {"code": "bad_input", "message": "There is no session yet, so no draft: upload media with `upload` or describe a video with `instruct` first."}}).to_string()
            } else {
                match self.engine.read_draft(&call).await {
                    (Ok(()), Some(draft)) => draft,
                    (Ok(()), None) => "null".to_owned(),
                    (Err(e), _) => {
                        json!({ "error": nemo_core::ndjson::error_to_json(&e) }).to_string()
                    }
                }
            };
            let contents =
                ResourceContents::text(body, DRAFT_URI).with_mime_type("application/json");
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        if request.uri != TIMELINE_URI {
            return Err(ErrorData::resource_not_found(
                format!(
                    "No resource {}; this server has {TIMELINE_URI}, {CREDITS_URI} and {DRAFT_URI}.",
                    request.uri
                ),
                None,
            ));
        }
        let text = match self.read_timeline(&call).await {
            Ok((summary, _)) => summary,
            // A resource read has no tool-error form: say it in the text.
            Err(e) => format!("The timeline could not be read: {e}"),
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, TIMELINE_URI)]).into())
    }
}
