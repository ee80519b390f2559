//! `nemo mcp` driven by an rmcp client over stdio, against the simulator
//! (`nemo-mock`) on 127.0.0.1: the tool list, the quick-edit workflow, a
//! silent edit, running out of credits, a cut download that resumes, and a
//! render left running that the job list finishes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nemo_mock::{AgentBehaviour, FaultPlan, JournalEntry, MockConfig, MockServer};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, GetPromptRequestParams, JsonObject,
    ProgressNotificationParam, ReadResourceRequestParams, Request, ResourceContents,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use tempfile::TempDir;

/// How long any one test may take, all told.
const BOUND: Duration = Duration::from_secs(90);

/// Records the progress notifications the server sends.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
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
        let server = MockServer::start(config).await.expect("simulator");
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
            .env("NEMO_TIME_SCALE", "0.01")
            .env("NO_COLOR", "1")
            .current_dir(work.path())
            .kill_on_drop(true);
        let transport = TokioChildProcess::new(cmd).expect("spawn nemo mcp");
        let recorder = Recorder::default();
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
        std::mem::take(&mut *self.recorder.progress.lock().expect("lock"))
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
            "timeline",
            "credits",
            "export",
            "render_status",
            "jobs",
            "resume_jobs",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
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
        assert_eq!(resources.len(), 1);
        assert_eq!(resources[0].uri, "nemo://timeline");
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
async fn a_render_left_running_is_journaled_and_finished() {
    bounded(async {
        let rig = Rig::fast().await;
        let sample = rig.sample();
        rig.ok("upload", json!({"inputs": [sample]})).await;
        let (text, data) = rig.ok("export", json!({"wait": false})).await;
        let id = data["render_id"].as_str().expect("an id").to_owned();
        assert!(id.starts_with("render_"), "{text}");
        let expected: PathBuf = rig.work.path().join(format!("{id}.mp4"));

        // Journaled like the CLI does: `nemo jobs` sees it.
        let (_, data) = rig.ok("jobs", json!({})).await;
        assert_eq!(data["jobs"][0]["render_id"], json!(id));
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

        let (text, data) = rig.ok("render_status", json!({"render_id": id})).await;
        assert!(text.starts_with(&format!("Render {id}: ")), "{text}");
        assert!(data["status"].is_string());
        // Looking does not end the job.
        let (_, data) = rig.ok("jobs", json!({})).await;
        assert_eq!(data["jobs"][0]["render_id"], json!(id));

        let (text, data) = rig.ok("resume_jobs", json!({})).await;
        assert_eq!(data["jobs"][0]["ok"], true, "{text}");
        assert!(is_mp4(&expected), "{text}");
        let (_, data) = rig.ok("jobs", json!({})).await;
        assert_eq!(data["jobs"], json!([]));
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
