//! The MCP server: tools, the timeline resource, and the handler that ties
//! them to the prompts in [`super::prompts`].

use std::sync::Arc;

use nemo_core::api::number;
use nemo_core::error::NemoError;
use nemo_core::gui::GuiAction;
use nemo_core::machine::{Command, ExportOptions, LinkKind, RenderPhase};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, MetaObject,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{prompt_handler, tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine::{absolute, Call, Engine, Outcome, Scale, StopAt};
use crate::app::App;
use crate::commands::jobs::{job_client, skipped, summarise};
use crate::inputs;
use crate::output::human_bytes;
use nemo_client::JobResult;
use nemo_client::Store;

/// The URI of the timeline resource.
pub(crate) const TIMELINE_URI: &str = "nemo://timeline";

const INSTRUCTIONS: &str = "NemoVideo is a cloud video agent that edits and generates videos. \
One session lasts as long as this server: `upload` media (local paths or URLs), describe edits \
in words with `instruct` (this spends credits), check the result with `timeline`, then `export` \
to render and download an MP4. Renders are recorded before they are submitted: `jobs` lists \
them, `render_status` checks one, `resume_jobs` finishes them after an interruption. `credits` \
shows the balance. Errors say what to do next (a registration link when credits run out, the \
accepted formats for an unsupported file).";

/// The NemoVideo engine as an MCP server.
pub(crate) struct NemoServer {
    engine: Arc<Engine>,
    tool_router: ToolRouter<NemoServer>,
    pub(super) prompt_router: PromptRouter<NemoServer>,
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
    /// Wait for the render and download it (the default). With `false`, return the render id as soon as the render is submitted; it keeps going on the server and stays in the job list (`render_status` checks it, `resume_jobs` downloads it).
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
        Ok(NemoServer {
            engine: Arc::new(Engine::new(app)?),
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
        })
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
        meta = spends_credits(false)
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
            .run(&call, Command::Upload { files, urls }, StopAt::Never)
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
        let session_id = self.engine.session_id().await;
        Ok(success(
            text,
            json!({"files": outcome.uploaded, "session_id": session_id, "events": outcome.events}),
        ))
    }

    #[tool(
        description = "Send one message to the video agent and return its reply, or — when it \
edits without a word — what changed on the timeline. The message always goes to the agent as \
written (\"export\" here is an instruction to the agent, not a render: use the `export` tool to \
render). Spends credits. Takes from seconds to a few minutes; a message is never sent twice, \
even when the connection drops.",
        annotations(
            title = "Instruct the video agent",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        ),
        meta = spends_credits(true)
    )]
    async fn instruct(
        &self,
        Parameters(args): Parameters<InstructArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let message = args.message.trim().to_owned();
        if message.is_empty() {
            return Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::BadInput,
                "The message is empty: say what the agent should do.",
            )));
        }
        let call = Call::new(&ctx, Scale::Steps);
        let (result, outcome) = self
            .engine
            .run(&call, Command::Instruct(message), StopAt::Never)
            .await;
        if let Err(e) = result {
            return Ok(failure(&e));
        }
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
        notes(&mut text, &outcome);
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
        Ok(success(
            text,
            json!({
                "text": outcome.texts.join("\n\n"),
                "changes": outcome.changes,
                "actions": outcome.actions,
                "notes": outcome.notes,
                "timeline": outcome.timeline.as_ref().map(|t| &t.summary),
                "suggestions": outcome.suggestions,
                "events": outcome.events,
            }),
        ))
    }

    #[tool(
        description = "The session's current draft as a timeline summary, e.g. `Timeline (3 \
tracks): 1. Video: clip (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: \"Urban Dreams\" (0-3s)`, \
and whether it is ready to export.",
        annotations(title = "Show the timeline", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false)
    )]
    async fn timeline(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let call = Call::new(&ctx, Scale::Steps);
        match self.read_timeline(&call).await {
            Ok((summary, ready)) => Ok(success(
                summary.clone(),
                json!({"summary": summary, "ready_for_export": ready}),
            )),
            Err(e) => Ok(failure(&e)),
        }
    }

    #[tool(
        description = "The credit balance: available, frozen (held by work in progress) and total.",
        annotations(title = "Show credits", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false)
    )]
    async fn credits(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let call = Call::new(&ctx, Scale::Steps);
        let (result, outcome) = self
            .engine
            .run(&call, Command::Credits, StopAt::Never)
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
        meta = spends_credits(false)
    )]
    async fn export(
        &self,
        Parameters(args): Parameters<ExportArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
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
            return Ok(failure(&e));
        }
        let call = Call::new(&ctx, Scale::Render);
        let stop_at = if args.wait {
            StopAt::Never
        } else {
            StopAt::RenderAccepted
        };
        let (result, outcome) = self
            .engine
            .run(
                &call,
                Command::Export(ExportOptions {
                    render_id: None,
                    download: true,
                    out,
                    overwrite: args.overwrite,
                }),
                stop_at,
            )
            .await;
        if let Err(e) = result {
            return Ok(failure(&e));
        }
        let id = outcome.render_id.clone().unwrap_or_default();
        let claim = outcome.link(LinkKind::Claim).map(str::to_owned);
        if !args.wait {
            let out = self
                .engine
                .app
                .store
                .jobs()
                .unwrap_or_default()
                .into_iter()
                .find(|j| j.id == id)
                .and_then(|j| j.out);
            let (phase, progress) = outcome
                .render_phase
                .clone()
                .unwrap_or((RenderPhase::Pending, None));
            let text = format!(
                "Render {id} submitted ({}). It keeps going on the server and is recorded in the \
job list: check it with `render_status`, download it with `resume_jobs`{}.",
                phase_text(&phase, progress),
                out.as_ref()
                    .map(|p| format!(" (to {})", p.display()))
                    .unwrap_or_default()
            );
            return Ok(success(
                text,
                json!({"render_id": id, "status": phase.as_str(), "progress": progress, "out": out, "events": outcome.events}),
            ));
        }
        let Some((path, bytes)) = outcome.downloaded.clone() else {
            return Ok(failure(&NemoError::new(
                nemo_core::error::ErrorKind::Protocol,
                format!("The render {id} finished but nothing was downloaded."),
            )));
        };
        let mut text = format!(
            "Saved {} ({}). Render {id}.",
            path.display(),
            human_bytes(bytes)
        );
        if let Some(url) = &claim {
            text.push_str(&format!("\nOpen the project in the browser: {url}"));
        }
        notes(&mut text, &outcome);
        Ok(success(
            text,
            json!({
                "render_id": id,
                "status": "downloaded",
                "path": path,
                "bytes": bytes,
                "url": outcome.render_url,
                "claim_link": claim,
                "events": outcome.events,
            }),
        ))
    }

    #[tool(
        description = "Check one render once: queued, rendering (with progress), completed (with \
its URL) or failed. Does not download: `resume_jobs` does.",
        annotations(title = "Render status", read_only_hint = true, open_world_hint = true),
        meta = spends_credits(false)
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
                    .run(&call, command, StopAt::RenderStillRunning)
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
        meta = spends_credits(false)
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
        let mut text =
            crate::commands::jobs::jobs_table(&jobs, |id| app.store.is_leased_elsewhere(id));
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
        meta = spends_credits(false)
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
}

impl NemoServer {
    /// The timeline summary and whether it can be exported. Without a
    /// session there is nothing to read (and none is created for it).
    pub(crate) async fn read_timeline(&self, call: &Call<'_>) -> Result<(String, bool), NemoError> {
        if self.engine.session_id().await.is_none() {
            return Ok((
                "The timeline is empty: there is no session yet. Upload media with `upload` or \
describe a video with `instruct` first."
                    .into(),
                false,
            ));
        }
        let (result, outcome) = self
            .engine
            .run(call, Command::Timeline, StopAt::Never)
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
                .build(),
        )
        .with_server_info(
            Implementation::new("nemo", env!("CARGO_PKG_VERSION")).with_title("NemoVideo (nemo)"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Self::timeline_resource(),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != TIMELINE_URI {
            return Err(ErrorData::resource_not_found(
                format!(
                    "No resource {}; this server has {TIMELINE_URI}.",
                    request.uri
                ),
                None,
            ));
        }
        let call = Call::new(&context, Scale::Steps);
        let text = match self.read_timeline(&call).await {
            Ok((summary, _)) => summary,
            // A resource read has no tool-error form: say it in the text.
            Err(e) => format!("The timeline could not be read: {e}"),
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, TIMELINE_URI)]).into())
    }
}
