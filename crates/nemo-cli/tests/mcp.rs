//! `nemo mcp` driven by an rmcp client over stdio, against the simulator
//! (`nemo-mock`) on 127.0.0.1: the tool list, the quick-edit workflow, a
//! silent edit, running out of credits, a cut download that resumes, and a
//! render left running that the job list finishes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nemo_mock::{AgentBehaviour, FaultPlan, JournalEntry, MockConfig, MockServer, Pace};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    ClientConfig, ClientRequest, GetPromptRequestParams, GetTaskParams, Implementation, JsonObject,
    ProgressNotificationParam, ProtocolVersion, ReadResourceRequestParams, Request,
    ResourceContents, TaskPayload, TaskStatus,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use tempfile::TempDir;

/// How long any one test may take, all told.
const BOUND: Duration = Duration::from_secs(90);

/// Records the progress notifications the server sends, and when each
/// arrived.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    /// Declare the MCP tasks extension, on protocol 2025-11-25.
    tasks: bool,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        if !self.tasks {
            return ClientConfig::default();
        }
        ClientConfig::new(
            ClientCapabilities::builder().enable_tasks().build(),
            Implementation::new("mcp-tasks-test", "1.0.0"),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.arrivals.lock().expect("lock").push(Instant::now());
        self.progress.lock().expect("lock").push(params);
    }
}

/// A simulator, the folders `nemo mcp` runs in, and a client connected to it.
struct Rig {
    server: Option<MockServer>,
    client: Option<RunningService<RoleClient, Recorder>>,
    recorder: Recorder,
    cfg: TempDir,
    work: TempDir,
}

impl Rig {
    async fn start(config: MockConfig) -> Rig {
        Rig::start_with(config, Recorder::default()).await
    }

    async fn start_with(config: MockConfig, recorder: Recorder) -> Rig {
        let server = MockServer::start(config.clone()).await.expect("simulator");
        let cfg = tempfile::tempdir().expect("tempdir");
        let work = tempfile::tempdir().expect("tempdir");
        let mut cmd = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("nemo"));
        for var in [
            "NEMO_TOKEN",
            "NEMO_SKILL",
            "NEMO_CLIENT_ID",
            "NEMO_WEB_URL",
            "SKILL_SOURCE",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg("mcp")
            .env("NEMO_API_URL", server.url())
            .env("NEMO_CONFIG_DIR", cfg.path())
            .env("NEMO_TIME_SCALE", config.time_scale.to_string())
            .env("NO_COLOR", "1")
            .current_dir(work.path())
            .kill_on_drop(true);
        let transport = TokioChildProcess::new(cmd).expect("spawn nemo mcp");
        let client = recorder
            .clone()
            .serve(transport)
            .await
            .expect("MCP handshake");
        Rig {
            server: Some(server),
            client: Some(client),
            recorder,
            cfg,
            work,
        }
    }

    async fn fast() -> Rig {
        Rig::start(MockConfig::fast()).await
    }

    fn client(&self) -> &RunningService<RoleClient, Recorder> {
        self.client.as_ref().expect("connected")
    }

    /// Calls a tool; a protocol error fails the test (tool errors do not).
    async fn call(&self, name: &'static str, args: Value) -> CallToolResult {
        let args: JsonObject = match args {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        };
        self.client()
            .call_tool(CallToolRequestParams::new(name).with_arguments(args))
            .await
            .unwrap_or_else(|e| panic!("{name}: protocol error {e}"))
    }

    /// Calls a tool that must succeed; returns its text and structured content.
    async fn ok(&self, name: &'static str, args: Value) -> (String, Value) {
        let result = self.call(name, args).await;
        let text = text_of(&result);
        assert_ne!(result.is_error, Some(true), "{name} failed: {text}");
        (text, result.structured_content.unwrap_or(Value::Null))
    }

    /// The sample clip, written into the working directory.
    fn sample(&self) -> String {
        let path = self.work.path().join("sample.mp4");
        std::fs::write(&path, nemo_mock::media::SAMPLE_MP4).expect("write sample");
        path.display().to_string()
    }

    fn journal(&self) -> Vec<JournalEntry> {
        self.server.as_ref().expect("running").journal().entries()
    }

    fn count(&self, path_prefix: &str) -> usize {
        self.journal()
            .iter()
            .filter(|e| e.path.starts_with(path_prefix))
            .count()
    }

    /// The progress notifications received since the last call.
    fn take_progress(&self) -> Vec<ProgressNotificationParam> {
        self.recorder.arrivals.lock().expect("lock").clear();
        std::mem::take(&mut *self.recorder.progress.lock().expect("lock"))
    }

    /// When each progress notification since the last take arrived.
    fn arrivals(&self) -> Vec<Instant> {
        let mut at = self.recorder.arrivals.lock().expect("lock").clone();
        at.sort();
        at
    }

    /// Polls `turn_status` until the turn has ended (bounded); returns the
    /// last answer.
    async fn turn_ended(&self, turn_id: &str) -> (String, Value) {
        for _ in 0..4000 {
            let result = self.call("turn_status", json!({"turn_id": turn_id})).await;
            let data = result.structured_content.clone().unwrap_or(Value::Null);
            if data["status"] != "running" {
                return (text_of(&result), data);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("turn {turn_id} never ended");
    }

    /// Polls `render_status` until the render is no longer on its way
    /// (bounded); returns the last answer.
    async fn render_ended(&self, render_id: &str) -> (String, Value) {
        for _ in 0..4000 {
            let result = self
                .call("render_status", json!({"render_id": render_id}))
                .await;
            let data = result.structured_content.clone().unwrap_or(Value::Null);
            let status = data["status"].as_str().unwrap_or_default().to_owned();
            if ![
                "submitting",
                "pending",
                "processing",
                "completed",
                "downloading",
            ]
            .contains(&status.as_str())
            {
                return (text_of(&result), data);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("render {render_id} never ended");
    }

    async fn stop(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.cancel().await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_mp4(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.len() > 8 && &bytes[4..8] == b"ftyp")
}

/// Runs a test body with a deadline.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(BOUND, body)
        .await
        .expect("the test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_prompts_and_resources_are_listed() {
    bounded(async {
        let rig = Rig::fast().await;
        let tools = rig.client().list_all_tools().await.expect("tools/list");
        let listed: Vec<Value> = tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "annotations": t.annotations,
                    "meta": t.meta,
                    "input_schema": t.input_schema,
                    "output_schema": t.output_schema,
                })
            })
            .collect();
        let listed = serde_json::to_string_pretty(&listed).expect("json");
        insta::with_settings!({snapshot_path => "mcp/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("tools", listed);
        });
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        for name in [
            "upload",
            "instruct",
            "turn_status",
            "cancel_turn",
            "timeline",
            "credits",
            "export",
            "render_status",
            "cancel_render",
            "jobs",
            "resume_jobs",
            "sessions",
            "new_session",
            "claim_link",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        // Every tool says what its structuredContent holds.
        for tool in &tools {
            let schema = tool.output_schema.as_ref();
            assert!(
                schema.is_some_and(|s| s.get("type") == Some(&json!("object"))),
                "{} has no output schema",
                tool.name
            );
        }

        let prompts = rig.client().list_all_prompts().await.expect("prompts/list");
        let mut names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "generate-from-link",
                "make-video-from-clips",
                "process-file",
                "save-online-video"
            ]
        );
        let mut args = JsonObject::new();
        args.insert("url".into(), json!("https://www.youtube.com/watch?v=x"));
        let prompt = rig
            .client()
            .get_prompt(GetPromptRequestParams::new("save-online-video").with_arguments(args))
            .await
            .expect("prompts/get");
        let said = serde_json::to_string(&prompt.messages).expect("json");
        assert!(said.contains("https://www.youtube.com/watch?v=x"), "{said}");
        assert!(said.contains("highest available resolution"), "{said}");

        let resources = rig
            .client()
            .list_all_resources()
            .await
            .expect("resources/list");
        let mut uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
        uris.sort_unstable();
        assert_eq!(uris, ["nemo://credits", "nemo://draft", "nemo://timeline"]);
        // Nothing was sent to the service just to list things.
        assert!(rig.journal().is_empty(), "{:?}", rig.journal());
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_edit_workflow_end_to_end() {
    bounded(async {
        let rig = Rig::fast().await;
        let (text, _) = rig.ok("timeline", json!({})).await;
        assert!(text.contains("no session yet"), "{text}");

        let sample = rig.sample();
        let (text, data) = rig.ok("upload", json!({"inputs": [sample]})).await;
        assert!(text.contains("Uploaded sample.mp4 (video"), "{text}");
        assert_eq!(data["files"][0]["filename"], "sample.mp4");

        let (text, data) = rig
            .ok(
                "instruct",
                json!({"message": "add lo-fi background music at 35% and the title \"Urban Dreams\""}),
            )
            .await;
        assert!(text.contains("Lo-fi"), "{text}");
        assert!(data["text"].as_str().is_some_and(|t| !t.is_empty()), "{data}");

        let (text, data) = rig.ok("timeline", json!({})).await;
        assert!(text.starts_with("Timeline (3 tracks): 1. Video: sample"), "{text}");
        assert!(text.contains("BGM: Lo-fi") && text.contains("35%"), "{text}");
        assert_eq!(data["ready_for_export"], true);

        let read = rig
            .client()
            .read_resource(ReadResourceRequestParams::new("nemo://timeline"))
            .await
            .expect("resources/read");
        match &read.contents[0] {
            ResourceContents::TextResourceContents { text: body, .. } => {
                assert_eq!(body, &text)
            }
            other => panic!("not text: {other:?}"),
        }
        // The draft itself, as the service keeps it: what the summary says.
        let read = rig
            .client()
            .read_resource(ReadResourceRequestParams::new("nemo://draft"))
            .await
            .expect("resources/read");
        match &read.contents[0] {
            ResourceContents::TextResourceContents { text: body, .. } => {
                let draft: serde_json::Value = serde_json::from_str(body).expect("JSON");
                assert!(draft.is_object(), "{body}");
                assert!(body.contains("Lo-fi"), "{body}");
            }
            other => panic!("not text: {other:?}"),
        }

        let out = rig.work.path().join("edited.mp4");
        rig.take_progress();
        let (text, data) = rig
            .ok("export", json!({"out": out.display().to_string()}))
            .await;
        assert!(text.contains("Saved "), "{text}");
        assert!(is_mp4(&out), "{} is not an MP4", out.display());
        assert_eq!(data["path"], json!(out));
        assert!(data["claim_link"]
            .as_str()
            .is_some_and(|l| l.contains("/workspace/claim?ct=")));
        // Progress notifications came with the render, ending at 100.
        let progress = rig.take_progress();
        // (The client may still be handing over the upload's last
        // notifications: only the export's count here. rmcp's client hands
        // each notification to its own task, so they may arrive out of
        // order here; the server's order is the engine's unit test.)
        let mut values: Vec<f64> = progress
            .iter()
            .filter(|p| p.total == Some(100.0))
            .filter(|p| {
                p.message.as_deref().is_some_and(|m| {
                    ["Render", "Download"].iter().any(|w| m.starts_with(w))
                })
            })
            .map(|p| p.progress)
            .collect();
        assert!(!values.is_empty(), "no progress: {progress:?}");
        values.sort_by(f64::total_cmp);
        // No value twice: each one was sent once, larger than the last.
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        assert_eq!(values.last(), Some(&100.0));
        // The render left the journal once downloaded.
        let (text, data) = rig.ok("jobs", json!({})).await;
        assert_eq!(data["jobs"], json!([]), "{text}");

        // "export" said to the agent is an instruction, not a render.
        let renders = rig.count("/api/render/proxy/lambda");
        let runs = rig.count("/run_sse");
        rig.ok("instruct", json!({"message": "export"})).await;
        assert_eq!(rig.count("/run_sse"), runs + 1);
        assert_eq!(rig.count("/api/render/proxy/lambda"), renders);

        let (text, data) = rig.ok("credits", json!({})).await;
        assert!(text.starts_with("Credits: "), "{text}");
        assert!(data["available"].is_number());

        // One token and one session for everything; the CLI sees the session.
        assert_eq!(rig.count("/api/auth/anonymous-token"), 1);
        assert_eq!(rig.count("/api/tasks/me/with-session"), 1);
        let sessions = std::fs::read_to_string(rig.cfg.path().join("sessions.json"))
            .expect("the session is remembered");
        assert!(sessions.contains("session_id"), "{sessions}");
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_edit_is_reported_as_what_changed() {
    bounded(async {
        let rig = Rig::start(MockConfig {
            agent: AgentBehaviour {
                silent_rate: 1.0,
                ..AgentBehaviour::calm()
            },
            ..MockConfig::fast()
        })
        .await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let (text, data) = rig
            .ok("instruct", json!({"message": "add lo-fi music at 35%"}))
            .await;
        assert!(text.starts_with("Changed: "), "{text}");
        assert!(text.contains("Lo-fi"), "{text}");
        assert_eq!(data["text"], "");
        assert!(data["changes"][0]
            .as_str()
            .is_some_and(|c| c.contains("Lo-fi")));
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_tool_errors_with_the_cli_messages() {
    bounded(async {
        let rig = Rig::start(MockConfig {
            initial_credits: 0,
            ..MockConfig::fast()
        })
        .await;
        // A local check (4001): nothing is sent.
        let notes = rig.work.path().join("notes.txt");
        std::fs::write(&notes, "hi").expect("write");
        let result = rig
            .call("upload", json!({"inputs": [notes.display().to_string()]}))
            .await;
        assert_eq!(result.is_error, Some(true));
        let text = text_of(&result);
        assert!(text.contains("mp4") && text.contains("png"), "{text}");
        assert_eq!(
            result.structured_content.expect("structured")["error"]["code"],
            "unsupported_file"
        );
        assert!(rig.journal().is_empty());

        // Out of credits (2001): the registration link, and the server lives on.
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let result = rig
            .call("instruct", json!({"message": "add lo-fi music at 35%"}))
            .await;
        assert_eq!(result.is_error, Some(true));
        let text = text_of(&result);
        assert!(text.contains("/register?bind="), "{text}");
        let error = &result.structured_content.expect("structured")["error"];
        assert_eq!(error["code"], "out_of_credits");
        assert_eq!(error["api_code"], 2001);
        assert_eq!(error["retryable"], false);
        let (text, _) = rig.ok("credits", json!({})).await;
        assert!(text.starts_with("Credits: 0"), "{text}");

        // Bad arguments are tool errors too, not crashes.
        let result = rig.call("render_status", json!({"render_id": " "})).await;
        assert_eq!(result.is_error, Some(true));
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_download_resumes() {
    // Large enough that the first part leaves the server before the reset.
    const LEN: u64 = 4 * 1024 * 1024;
    bounded(async {
        let rig = Rig::start(MockConfig {
            render_bytes: Some(LEN),
            faults: FaultPlan::parse("download:reset@1").expect("faults"),
            ..MockConfig::fast()
        })
        .await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        rig.ok("instruct", json!({"message": "add the title \"Hi\""}))
            .await;
        let out = rig.work.path().join("big.mp4");
        let (text, data) = rig
            .ok("export", json!({"out": out.display().to_string()}))
            .await;
        assert_eq!(data["bytes"], LEN, "{text}");
        let bytes = std::fs::read(&out).expect("downloaded");
        assert_eq!(bytes.len() as u64, LEN);
        assert!(bytes
            .iter()
            .enumerate()
            .all(|(i, b)| *b == nemo_mock::media::generated_byte(i as u64)));
        let downloads: Vec<JournalEntry> = rig
            .journal()
            .into_iter()
            .filter(|e| e.path.starts_with("/media/"))
            .collect();
        assert_eq!(downloads.len(), 2, "{downloads:?}");
        let range = downloads[1].header("range").expect("the second resumes");
        assert!(
            range.starts_with("bytes=") && range != "bytes=0-",
            "{range}"
        );
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_without_waiting_goes_on_in_the_background() {
    bounded(async {
        let rig = Rig::start(MockConfig {
            // 300 simulated seconds: three real seconds at this speed.
            render_seconds: 300.0,
            ..MockConfig::fast()
        })
        .await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let asked = Instant::now();
        let (text, data) = rig.ok("export", json!({"wait": false})).await;
        // At once: long before the render could have finished.
        assert!(asked.elapsed() < Duration::from_secs(2), "{text}");
        let id = data["render_id"].as_str().expect("an id").to_owned();
        assert!(id.starts_with("render_"), "{text}");
        assert!(text.contains("render_status"), "{text}");
        let expected: PathBuf = rig.work.path().join(format!("{id}.mp4"));

        // Once submitted, it is journaled like the CLI does: `nemo jobs`
        // sees it while it renders.
        let mut listed = false;
        for _ in 0..500 {
            let (_, data) = rig.ok("jobs", json!({})).await;
            if data["jobs"][0]["render_id"] == json!(id) {
                listed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(listed, "the render was never journaled");
        let listed = std::process::Command::new(assert_cmd::cargo::cargo_bin("nemo"))
            .args(["--json", "jobs"])
            .env("NEMO_CONFIG_DIR", rig.cfg.path())
            .env_remove("NEMO_API_URL")
            .output()
            .expect("nemo jobs");
        assert!(
            String::from_utf8_lossy(&listed.stdout).contains(&id),
            "{}",
            String::from_utf8_lossy(&listed.stdout)
        );

        // render_status and the other queries answer while it runs.
        let (text, data) = rig.ok("render_status", json!({"render_id": id})).await;
        assert!(text.starts_with(&format!("Render {id}: ")), "{text}");
        assert_eq!(data["render_id"], json!(id));
        let status = data["status"].as_str().unwrap_or_default().to_owned();
        assert!(
            ["pending", "processing", "submitting"].contains(&status.as_str()),
            "{data}"
        );
        let (text, _) = rig.ok("credits", json!({})).await;
        assert!(text.starts_with("Credits: "), "{text}");
        let (text, _) = rig.ok("timeline", json!({})).await;
        assert!(text.starts_with("Timeline"), "{text}");
        let (_, data) = rig.ok("render_status", json!({"render_id": id})).await;
        assert_ne!(data["status"], "downloaded", "the queries waited: {data}");

        // Other work is refused, clearly, while it runs.
        let result = rig
            .call("instruct", json!({"message": "add the title \"Hi\""}))
            .await;
        assert_eq!(result.is_error, Some(true));
        let said = text_of(&result);
        assert!(said.contains("busy") && said.contains(&id), "{said}");
        assert_eq!(rig.count("/run_sse"), 0);

        // It finishes by itself: downloaded, and gone from the job list.
        let (text, data) = rig.render_ended(&id).await;
        assert_eq!(data["status"], "downloaded", "{text}");
        assert_eq!(data["path"], json!(expected));
        assert!(is_mp4(&expected), "{text}");
        let (_, data) = rig.ok("jobs", json!({})).await;
        assert_eq!(data["jobs"], json!([]));
        rig.stop().await;
    })
    .await;
}

/// The largest gap between `start`, the notifications and `end`.
fn largest_gap(start: Instant, arrivals: &[Instant], end: Instant) -> Duration {
    let mut at = vec![start];
    at.extend(
        arrivals
            .iter()
            .copied()
            .filter(|t| *t >= start && *t <= end),
    );
    at.push(end);
    at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

/// A generation at the service's published pace (100–300 s), at 1/50 speed.
fn published_pace() -> MockConfig {
    MockConfig {
        time_scale: 0.02,
        agent: AgentBehaviour {
            pace: Pace::Published,
            ..AgentBehaviour::calm()
        },
        ..MockConfig::fast()
    }
}

const GENERATE: &str = "generate a 10 second city timelapse";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_generation_completes_through_progress_with_keep_alives() {
    bounded(async {
        let config = published_pace();
        let scale = config.time_scale;
        let rig = Rig::start(config).await;
        rig.take_progress();
        let asked = Instant::now();
        let (text, data) = rig.ok("instruct", json!({"message": GENERATE})).await;
        let answered = Instant::now();
        assert_eq!(data["status"], "done", "{text}");
        assert!(data["turn_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("turn_")));
        // Longer than the 60 s most clients allow a call, on the client's clock.
        let took = data["elapsed_seconds"].as_f64().expect("elapsed");
        assert!(took > 60.0, "the generation took only {took} s");
        assert!(
            !data["steps"].as_array().expect("steps").is_empty(),
            "{data}"
        );
        assert!(
            data["text"].as_str().is_some_and(|t| !t.is_empty()),
            "{data}"
        );
        // Progress all along: never 15 s of the client's clock without one
        // (with room for a loaded machine: the server sends one every 5 s).
        let gap = largest_gap(asked, &rig.arrivals(), answered);
        assert!(
            gap <= Duration::from_secs_f64(15.0 * scale),
            "{gap:?} without progress (15 s of the client's clock is {:?})",
            Duration::from_secs_f64(15.0 * scale)
        );
        let progress = rig.take_progress();
        assert!(
            progress.iter().any(|p| p
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("Still working"))),
            "no keep-alive: {progress:?}"
        );
        let mut values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        assert_eq!(values.len(), progress.len(), "a value came twice");
        assert_eq!(rig.count("/run_sse"), 1);
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_without_waiting_is_followed_by_turn_status_while_queries_answer() {
    bounded(async {
        let rig = Rig::start(published_pace()).await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let asked = Instant::now();
        let (text, data) = rig
            .ok("instruct", json!({"message": GENERATE, "wait": false}))
            .await;
        assert!(asked.elapsed() < Duration::from_secs(1), "{text}");
        assert_eq!(data["status"], "running", "{text}");
        let turn = data["turn_id"].as_str().expect("a turn id").to_owned();
        assert!(text.contains("turn_status"), "{text}");

        // Queries answer while the agent works: the turn is still running
        // after each of them.
        for (tool, args) in [
            ("credits", json!({})),
            ("timeline", json!({})),
            ("jobs", json!({})),
            ("turn_status", json!({})),
        ] {
            let started = Instant::now();
            let (text, _) = rig.ok(tool, args).await;
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{tool} waited: {text}"
            );
            let (_, data) = rig.ok("turn_status", json!({"turn_id": turn})).await;
            assert_eq!(data["status"], "running", "{tool} waited for the turn");
        }
        let (_, data) = rig.ok("turn_status", json!({})).await;
        assert_eq!(data["turn_id"], json!(turn), "the latest turn by default");

        // A second message while it runs is refused, and never sent.
        let result = rig
            .call("instruct", json!({"message": "add lo-fi music at 35%"}))
            .await;
        assert_eq!(result.is_error, Some(true));
        let said = text_of(&result);
        assert!(said.contains("busy") && said.contains(&turn), "{said}");
        assert!(said.contains("turn_status"), "{said}");
        assert_eq!(rig.count("/run_sse"), 1);

        // The steps show up while it runs, and the outcome at the end.
        let mut saw_steps = false;
        for _ in 0..4000 {
            let (_, data) = rig.ok("turn_status", json!({"turn_id": turn})).await;
            if data["status"] != "running" {
                break;
            }
            saw_steps |= data["steps"].as_array().is_some_and(|s| !s.is_empty());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(saw_steps, "no step was reported while the turn ran");
        let (text, data) = rig.turn_ended(&turn).await;
        assert_eq!(data["status"], "done", "{text}");
        assert!(
            data["elapsed_seconds"].as_f64().is_some_and(|s| s > 60.0),
            "{data}"
        );
        assert!(
            data["text"].as_str().is_some_and(|t| !t.is_empty()),
            "{data}"
        );
        assert_eq!(rig.count("/run_sse"), 1);
        // Free again.
        rig.ok("instruct", json!({"message": "add the title \"Hi\""}))
            .await;
        assert_eq!(rig.count("/run_sse"), 2);
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_instruct_with_the_same_key_reaches_the_agent_once() {
    bounded(async {
        let rig = Rig::start(published_pace()).await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let args = json!({"message": GENERATE, "idempotency_key": "4f1c-retry-test"});
        // The first call: the client gives up on it (its timeout) once the
        // agent is at work.
        rig.take_progress();
        let mut params = CallToolRequestParams::new("instruct");
        if let Value::Object(map) = args.clone() {
            params = params.with_arguments(map);
        }
        let handle = rig
            .client()
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(params)),
                PeerRequestOptions::no_options(),
            )
            .await
            .expect("tools/call");
        let mut waited = 0;
        while rig.take_progress().is_empty() || rig.count("/run_sse") == 0 {
            assert!(waited < 3000, "no progress");
            waited += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle
            .cancel(Some("timed out".into()))
            .await
            .expect("cancel");

        // The retry, with the same key: the same turn, not a new message.
        let (text, first) = rig.ok("instruct", args.clone()).await;
        assert_eq!(first["status"], "done", "{text}");
        assert!(text.contains("not sent again"), "{text}");
        assert_eq!(rig.count("/run_sse"), 1, "the message was sent twice");
        // Once more, after it finished: the same turn again.
        let (_, again) = rig.ok("instruct", args.clone()).await;
        assert_eq!(again["turn_id"], first["turn_id"]);
        assert_eq!(again["text"], first["text"]);
        // Without waiting, too.
        let mut no_wait = args.clone();
        no_wait["wait"] = json!(false);
        let (_, again) = rig.ok("instruct", no_wait).await;
        assert_eq!(again["turn_id"], first["turn_id"]);
        assert_eq!(again["status"], "done");
        assert_eq!(rig.count("/run_sse"), 1, "the message was sent twice");

        // A new key is a new message.
        rig.ok(
            "instruct",
            json!({"message": "add the title \"Hi\"", "idempotency_key": "another"}),
        )
        .await;
        assert_eq!(rig.count("/run_sse"), 2);
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_export_keeps_its_render_for_later() {
    bounded(async {
        let rig = Rig::start(MockConfig {
            // 400 simulated seconds: four real seconds at this speed, long
            // enough to cancel in the middle even on a loaded machine.
            render_seconds: 400.0,
            ..MockConfig::fast()
        })
        .await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        rig.take_progress();
        let handle = rig
            .client()
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("export"))),
                PeerRequestOptions::no_options(),
            )
            .await
            .expect("tools/call");
        // Wait until the render is being polled, then give up on it.
        let mut waited = 0;
        while !rig.take_progress().iter().any(|p| p.total == Some(100.0)) {
            assert!(waited < 2000, "no render progress");
            waited += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle
            .cancel(Some("changed my mind".into()))
            .await
            .expect("cancel");

        // The session is free again at once, and the render is still listed.
        let (text, _) = rig.ok("credits", json!({})).await;
        assert!(text.starts_with("Credits: "), "{text}");
        let (_, data) = rig.ok("jobs", json!({})).await;
        let id = data["jobs"][0]["render_id"]
            .as_str()
            .expect("the render is kept")
            .to_owned();
        let (text, data) = rig.ok("resume_jobs", json!({"render_id": id})).await;
        assert_eq!(data["jobs"][0]["ok"], true, "{text}");
        assert!(is_mp4(&rig.work.path().join(format!("{id}.mp4"))), "{text}");
        rig.stop().await;
    })
    .await;
}

/// Every key of `data` is one the tool's output schema declares.
fn assert_declared(tools: &[rmcp::model::Tool], name: &str, data: &Value) {
    let tool = tools.iter().find(|t| t.name == name).expect("listed");
    let schema = tool.output_schema.as_ref().expect("an output schema");
    let declared = schema["properties"].as_object().expect("properties");
    for key in data.as_object().expect("an object").keys() {
        assert!(
            declared.contains_key(key),
            "{name}: `{key}` is not in its output schema"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_started_switched_and_linked() {
    bounded(async {
        let rig = Rig::fast().await;
        let tools = rig.client().list_all_tools().await.expect("tools/list");
        let (text, data) = rig.ok("sessions", json!({})).await;
        assert!(text.contains("No session yet"), "{text}");
        assert_eq!(data["sessions"], json!([]));
        assert_declared(&tools, "sessions", &data);
        let result = rig.call("claim_link", json!({})).await;
        assert_eq!(result.is_error, Some(true), "no session, no link");

        let sample = rig.sample();
        let (_, data) = rig.ok("upload", json!({"inputs": [sample]})).await;
        assert_declared(&tools, "upload", &data);
        let first = data["session_id"].as_str().expect("a session").to_owned();
        let (text, data) = rig.ok("claim_link", json!({})).await;
        assert!(text.contains("/workspace/claim?ct="), "{text}");
        assert_eq!(data["session_id"], json!(first));
        assert_declared(&tools, "claim_link", &data);

        // A new session: a new project, the first one kept.
        let (text, data) = rig.ok("new_session", json!({})).await;
        assert_declared(&tools, "new_session", &data);
        let second = data["current"]["session_id"]
            .as_str()
            .expect("a new session")
            .to_owned();
        assert_ne!(second, first, "{text}");
        assert!(text.contains(&first), "{text}");
        assert_eq!(rig.count("/api/tasks/me/with-session"), 2);
        let (_, data) = rig.ok("timeline", json!({})).await;
        assert_eq!(data["session_id"], json!(second));
        assert_declared(&tools, "timeline", &data);
        let (text, data) = rig.ok("sessions", json!({})).await;
        let ids: Vec<&str> = data["sessions"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|s| s["session_id"].as_str())
            .collect();
        assert!(
            ids.contains(&first.as_str()) && ids.contains(&second.as_str()),
            "{text}"
        );
        let last: Vec<&Value> = data["sessions"]
            .as_array()
            .expect("a list")
            .iter()
            .filter(|s| s["last"] == true)
            .collect();
        assert_eq!(last.len(), 1);
        assert_eq!(
            last[0]["session_id"],
            json!(second),
            "the store's last session"
        );

        // Back to the first: its draft has the clip.
        let (text, data) = rig.ok("sessions", json!({"switch_to": first})).await;
        assert!(text.contains(&format!("to {first}")), "{text}");
        assert_eq!(data["current"]["session_id"], json!(first));
        let (text, data) = rig.ok("timeline", json!({})).await;
        assert_eq!(data["session_id"], json!(first));
        assert!(text.contains("sample"), "{text}");
        let result = rig.call("sessions", json!({"switch_to": "no/such"})).await;
        assert_eq!(result.is_error, Some(true));

        // The credits as a resource, in JSON.
        let read = rig
            .client()
            .read_resource(ReadResourceRequestParams::new("nemo://credits"))
            .await
            .expect("resources/read");
        match &read.contents[0] {
            ResourceContents::TextResourceContents { text, .. } => {
                let credits: Value = serde_json::from_str(text).expect("JSON");
                assert!(credits["available"].is_number(), "{credits}");
            }
            other => panic!("not text: {other:?}"),
        }
        let (_, data) = rig.ok("credits", json!({})).await;
        assert_declared(&tools, "credits", &data);
        let (_, data) = rig.ok("jobs", json!({})).await;
        assert_declared(&tools, "jobs", &data);
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_is_cancelled_on_the_server() {
    bounded(async {
        let rig = Rig::start(MockConfig {
            render_seconds: 400.0,
            ..MockConfig::fast()
        })
        .await;
        let tools = rig.client().list_all_tools().await.expect("tools/list");
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let (_, data) = rig.ok("export", json!({"wait": false})).await;
        assert_declared(&tools, "export", &data);
        let id = data["render_id"].as_str().expect("an id").to_owned();
        // Once the server has it, cancel it there.
        let mut rendering = false;
        for _ in 0..500 {
            let (_, data) = rig.ok("render_status", json!({"render_id": id})).await;
            assert_declared(&tools, "render_status", &data);
            if ["pending", "processing"].contains(&data["status"].as_str().unwrap_or_default()) {
                rendering = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(rendering, "the render never started");
        let (text, data) = rig.ok("cancel_render", json!({"render_id": id})).await;
        assert_declared(&tools, "cancel_render", &data);
        assert!(text.contains("cancelled"), "{text}");
        assert_eq!(
            rig.count(&format!("/api/render/proxy/lambda/{id}/cancel")),
            1
        );
        // The export that waited for it ends, without a video.
        let (text, data) = rig.render_ended(&id).await;
        assert_ne!(data["status"], "downloaded", "{text}");
        assert!(!rig.work.path().join(format!("{id}.mp4")).exists());
        rig.stop().await;
    })
    .await;
}

/// Polls `tasks/get` until the task has ended (bounded).
async fn task_ended(rig: &Rig, task_id: &str) -> rmcp::model::DetailedTask {
    let mut saw_message = false;
    for _ in 0..4000 {
        let got = rig
            .client()
            .get_task(GetTaskParams::new(task_id))
            .await
            .expect("tasks/get");
        if got.task.status().is_terminal() {
            assert!(saw_message, "no status message while it ran");
            return got.task;
        }
        saw_message |= got.task.task.status_message.is_some();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {task_id} never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instruct_and_export_run_as_tasks_for_a_client_that_declares_them() {
    bounded(async {
        let config = MockConfig {
            render_seconds: 400.0,
            ..published_pace()
        };
        let rig = Rig::start_with(
            config,
            Recorder {
                tasks: true,
                ..Recorder::default()
            },
        )
        .await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;

        // A generation as a task: the handle at once, the result by polling.
        let mut args = JsonObject::new();
        args.insert("message".into(), json!(GENERATE));
        args.insert("idempotency_key".into(), json!("task-1"));
        let asked = Instant::now();
        let response = rig
            .client()
            .call_tool_once(CallToolRequestParams::new("instruct").with_arguments(args.clone()))
            .await
            .expect("tools/call");
        assert!(asked.elapsed() < Duration::from_secs(1));
        let CallToolResponse::Task(created) = response else {
            panic!("not a task: {response:?}");
        };
        assert_eq!(created.task.status, TaskStatus::Working);
        let id = created.task.task_id.clone();
        // The polling tools see the same turn.
        let (_, data) = rig.ok("turn_status", json!({"turn_id": id})).await;
        assert_eq!(data["status"], "running");
        let ended = task_ended(&rig, &id).await;
        let TaskPayload::Completed { result } = &ended.payload else {
            panic!("not completed: {ended:?}");
        };
        let structured = &result["structuredContent"];
        assert_eq!(structured["status"], "done", "{result:?}");
        assert!(structured["elapsed_seconds"]
            .as_f64()
            .is_some_and(|s| s > 60.0));
        assert!(structured["text"].as_str().is_some_and(|t| !t.is_empty()));
        // The same key again: the same task's turn, nothing sent.
        let response = rig
            .client()
            .call_tool_once(CallToolRequestParams::new("instruct").with_arguments(args))
            .await
            .expect("tools/call");
        let CallToolResponse::Task(again) = response else {
            panic!("not a task: {response:?}");
        };
        assert_eq!(again.task.task_id, id);
        assert_eq!(rig.count("/run_sse"), 1);

        // An export as a task, cancelled: the render is cancelled on the server.
        let response = rig
            .client()
            .call_tool_once(CallToolRequestParams::new("export"))
            .await
            .expect("tools/call");
        let CallToolResponse::Task(created) = response else {
            panic!("not a task: {response:?}");
        };
        let render = created.task.task_id.clone();
        assert!(render.starts_with("render_"), "{render}");
        let mut rendering = false;
        for _ in 0..500 {
            let got = rig
                .client()
                .get_task(GetTaskParams::new(&render))
                .await
                .expect("tasks/get");
            if got
                .task
                .task
                .status_message
                .as_deref()
                .is_some_and(|m| m.starts_with("pending") || m.starts_with("processing"))
            {
                rendering = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(rendering, "the render never started");
        rig.client()
            .cancel_task(CancelTaskParams::new(&render))
            .await
            .expect("tasks/cancel");
        let got = rig
            .client()
            .get_task(GetTaskParams::new(&render))
            .await
            .expect("tasks/get");
        assert_eq!(got.task.status(), TaskStatus::Cancelled);
        assert_eq!(
            rig.count(&format!("/api/render/proxy/lambda/{render}/cancel")),
            1
        );
        let (_, data) = rig.ok("jobs", json!({})).await;
        assert_eq!(data["jobs"], json!([]), "a cancelled render is not kept");
        // Without `wait`, the polling form still answers at once.
        let (_, data) = rig
            .ok(
                "instruct",
                json!({"message": "add the title \"Hi\"", "wait": false}),
            )
            .await;
        assert_eq!(data["status"], "running");
        let turn = data["turn_id"].as_str().expect("a turn").to_owned();
        rig.turn_ended(&turn).await;
        rig.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_given_up_on_frees_the_session() {
    bounded(async {
        let rig = Rig::start(published_pace()).await;
        let (_, data) = rig
            .ok("instruct", json!({"message": GENERATE, "wait": false}))
            .await;
        let turn = data["turn_id"].as_str().expect("a turn").to_owned();
        while rig.count("/run_sse") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (text, data) = rig.ok("cancel_turn", json!({})).await;
        assert_eq!(data["turn_id"], json!(turn));
        assert_eq!(data["status"], "stopped", "{text}");
        assert!(text.contains("may still finish"), "{text}");
        let (_, data) = rig.ok("turn_status", json!({"turn_id": turn})).await;
        assert_eq!(data["status"], "stopped");
        // The session takes the next message at once.
        let (_, data) = rig
            .ok(
                "instruct",
                json!({"message": "add the title \"Hi\"", "wait": false}),
            )
            .await;
        assert_eq!(data["status"], "running");
        let mut waited = 0;
        while rig.count("/run_sse") < 2 {
            assert!(waited < 3000, "the next message was never sent");
            waited += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rig.stop().await;
    })
    .await;
}
