//! The harness shared by the tables: a simulator per case on one shared
//! runtime, the `nemo` process in a clean environment, bounded parallelism,
//! and the invariants every case must keep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nemo_core::wire::Endpoint;
use nemo_mock::{FaultPlan, JournalEntry, MockConfig, MockServer};
use serde_json::Value;
use tempfile::TempDir;

/// One runtime for every simulator of the binary (2 workers: CI has 2 cores).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// A simulator and the folders one case runs `nemo` in.
pub(crate) struct Sim {
    server: Option<MockServer>,
    /// `NEMO_CONFIG_DIR`.
    pub(crate) cfg: TempDir,
    /// The working directory.
    pub(crate) work: TempDir,
    /// `NEMO_TIME_SCALE` for the client.
    pub(crate) client_scale: f64,
    /// `NEMO_CONFIG_DIR` (default: `cfg` itself).
    pub(crate) cfg_dir: PathBuf,
}

impl Sim {
    /// A simulator with this configuration.
    pub(crate) fn start(config: MockConfig) -> Sim {
        let client_scale = config.time_scale;
        let server = runtime()
            .block_on(MockServer::start(config))
            .expect("simulator");
        let cfg = tempfile::tempdir().expect("tempdir");
        Sim {
            server: Some(server),
            cfg_dir: cfg.path().to_owned(),
            cfg,
            work: tempfile::tempdir().expect("tempdir"),
            client_scale,
        }
    }

    /// A fast, calm simulator with this fault plan.
    pub(crate) fn faults(spec: &str) -> Sim {
        Sim::start(MockConfig {
            faults: FaultPlan::parse(spec).expect("fault spec"),
            ..MockConfig::fast()
        })
    }

    /// The simulator's base URL.
    pub(crate) fn url(&self) -> String {
        self.server.as_ref().expect("running").url().to_owned()
    }

    /// Every request the simulator saw.
    pub(crate) fn journal(&self) -> Vec<JournalEntry> {
        self.server.as_ref().expect("running").journal().entries()
    }

    /// `nemo` pointed at the simulator, in a clean environment.
    pub(crate) fn nemo(&self) -> std::process::Command {
        let mut cmd = nemo_std();
        cmd.env("NEMO_API_URL", self.url())
            .env("NEMO_CONFIG_DIR", &self.cfg_dir)
            .env("NEMO_TIME_SCALE", self.client_scale.to_string())
            .current_dir(self.work.path());
        cmd
    }

    /// Runs `nemo ARGS` to its end (at most 60 s).
    pub(crate) fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let mut cmd = self.nemo();
        cmd.args(args);
        Run::of(cmd)
    }

    /// The sample clip, written into the working directory.
    pub(crate) fn sample(&self) -> PathBuf {
        let path = self.work.path().join("sample.mp4");
        if !path.exists() {
            std::fs::write(&path, nemo_mock::media::SAMPLE_MP4).expect("write sample");
        }
        path
    }

    /// The render ids recorded in the local jobs journal.
    pub(crate) fn local_jobs(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.cfg_dir.join("jobs.json")) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        v["jobs"]
            .as_array()
            .map(|jobs| {
                jobs.iter()
                    .filter_map(|j| j["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The credentials the client holds: cached anonymous tokens and the
    /// client id (what must never be printed).
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(text) = std::fs::read_to_string(self.cfg_dir.join("tokens.json")) {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if let Some(map) = v.as_object() {
                for t in map.values() {
                    if let Some(tok) = t["token"].as_str() {
                        out.push(tok.to_owned());
                    }
                }
            }
        }
        if let Ok(id) = std::fs::read_to_string(self.cfg_dir.join("client_id")) {
            let id = id.trim();
            if !id.is_empty() {
                out.push(id.to_owned());
            }
        }
        out
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            runtime().block_on(server.shutdown());
        }
    }
}

/// `nemo` in a clean environment (no user token, no skill, no colour).
pub(crate) fn nemo_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("nemo"));
    for var in [
        "NEMO_TOKEN",
        "NEMO_SKILL",
        "NEMO_CLIENT_ID",
        "NEMO_WEB_URL",
        "NEMO_API_URL",
        "NEMO_TIME_SCALE",
        "NEMO_CONFIG_DIR",
        "SKILL_SOURCE",
        "NEMO_MCP_SECRET",
        // The command line speaks Chinese in a zh_* locale.
        "LC_ALL",
        "LC_MESSAGES",
        "LANG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1").env("COLUMNS", "100");
    cmd
}

/// One finished `nemo` process.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The exit code (`None`: killed by a signal or the time limit).
    pub(crate) code: Option<i32>,
    /// Stdout.
    pub(crate) stdout: String,
    /// Stderr.
    pub(crate) stderr: String,
    /// How long it took.
    pub(crate) took: Duration,
}

impl Run {
    /// Runs `cmd` with a 60 s limit.
    pub(crate) fn of(cmd: std::process::Command) -> Run {
        let started = Instant::now();
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.timeout(Duration::from_secs(60));
        let out: Output = cmd.output().expect("nemo runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        }
    }

    /// The `error:` lines of stderr.
    pub(crate) fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("error:"))
            .collect()
    }

    /// Stdout and stderr, for failure messages.
    pub(crate) fn both(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Words that tell the user what to do next.
const ADVICE: &[&str] = &[
    "try again",
    "again",
    "retry",
    "nemo ",
    "set ",
    "register",
    "upgrade",
    "check",
    "wait",
    "resume",
    "--new-session",
    "compress",
    "trim",
    "pass ",
    "choose",
    "chmod",
    "use ",
    "fix",
    "accepted",
    "remove",
    "top up",
    "start with",
    "add ",
    "--help",
    "upload",
    "describe",
];

/// The problem with a failed run's message, if any: exactly one `error:`
/// line that says what to do.
pub(crate) fn message_problem(run: &Run) -> Option<String> {
    let errors = run.error_lines();
    if errors.is_empty() {
        return Some("no `error:` line on stderr".into());
    }
    // The message runs from the last `error:` line to the end of stderr;
    // a summary pointing "above" is read with the table on stdout.
    let start = run.stderr.rfind("error:").unwrap_or(0);
    let mut last = run.stderr[start..].to_lowercase();
    if last.contains("see above") {
        last.push_str(&run.stdout.to_lowercase());
    }
    if !ADVICE.iter().any(|w| last.contains(w)) {
        return Some(format!("the error does not say what to do: {last}"));
    }
    None
}

/// Anything that looks like a token of the simulator.
pub(crate) fn token_like(text: &str) -> Option<String> {
    let i = text.find("nmv_usr_")?;
    let tail: String = text[i + 8..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (tail.len() >= 6).then(|| format!("nmv_usr_{tail}"))
}

/// The leaks of `secrets` (and of any simulator token) in `texts`.
pub(crate) fn leaks(secrets: &[String], texts: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for text in texts {
        for s in secrets {
            if s.len() >= 8 && text.contains(s.as_str()) {
                found.push(format!("secret …{} printed", &s[s.len() - 4..]));
            }
        }
        if let Some(t) = token_like(text) {
            found.push(format!("token-like text `{}…` printed", &t[..10]));
        }
        if text.contains("Bearer ") && !text.contains("Bearer ***") {
            found.push("a Bearer header printed".into());
        }
    }
    found
}

/// The fault-plan name of an endpoint.
pub(crate) fn target_name(e: Endpoint) -> &'static str {
    match e {
        Endpoint::AnonymousToken => "token",
        Endpoint::CreateSession => "session",
        Endpoint::RunSse => "run_sse",
        Endpoint::Upload => "upload",
        Endpoint::Credits => "credits",
        Endpoint::State => "state",
        Endpoint::RenderSubmit => "render",
        Endpoint::RenderStatus => "status",
        Endpoint::RenderCancel => "cancel",
        Endpoint::Download => "download",
        Endpoint::ClaimToken => "claim",
    }
}

/// Requests per fault target in a journal.
pub(crate) fn counts(journal: &[JournalEntry]) -> BTreeMap<&'static str, u64> {
    let mut map = BTreeMap::new();
    for e in journal {
        if let Some(ep) = e.endpoint {
            *map.entry(target_name(ep)).or_insert(0) += 1;
        }
    }
    map
}

/// The render ids submitted with an HTTP 2xx answer (which may still be an
/// error envelope), with the faults that hit each submit; deduplicated.
pub(crate) fn submitted_renders(journal: &[JournalEntry]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for e in journal
        .iter()
        .filter(|e| e.endpoint == Some(Endpoint::RenderSubmit))
        .filter(|e| (200..300).contains(&e.status))
    {
        let Some(id) = e
            .json()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
        else {
            continue;
        };
        match out.iter_mut().find(|(i, _)| *i == id) {
            Some((_, f)) => f.extend(e.faults.iter().cloned()),
            None => out.push((id, e.faults.clone())),
        }
    }
    out
}

/// A plain HTTP/1.1 GET on the simulator (no client library needed):
/// the body parsed as JSON, if it is.
pub(crate) fn http_get_json(base: &str, path: &str, token: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let host = base.strip_prefix("http://")?.trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nX-Skill-Source: video-openapi\r\nX-Skill-Version: 1.0.0\r\nX-Skill-Platform: unknown\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let body = &text[text.find("\r\n\r\n")? + 4..];
    let json = &body[body.find('{')?..=body.rfind('}')?];
    serde_json::from_str(json).ok()
}

/// The renders the simulator really accepted: submitted with a 2xx and
/// known to its status endpoint (asked with the client's current token).
pub(crate) fn accepted_renders(sim: &Sim, journal: &[JournalEntry]) -> Vec<(String, Vec<String>)> {
    let tokens: Vec<String> = sim
        .secrets()
        .into_iter()
        .filter(|s| s.starts_with("nmv_"))
        .collect();
    submitted_renders(journal)
        .into_iter()
        .filter(|(id, _)| {
            tokens.iter().any(|t| {
                // The probe goes through the fault plan too: ask again when
                // an injected fault refuses it (bounded).
                (0..8).any(|_| {
                    let path = format!("/api/render/proxy/lambda/{id}");
                    http_get_json(&sim.url(), &path, t).is_some_and(|v| {
                        let ok = v["success"] == true || v["code"] == 0;
                        let status = v["data"]["status"].as_str().or(v["status"].as_str());
                        ok && status.is_some()
                    })
                })
            })
        })
        .collect()
}

/// Checks the invariants of one case; returns what broke.
///
/// - each user message reached `/run_sse` at most once;
/// - every render the simulator accepted is in the local jobs journal unless
///   its file was downloaded complete or it failed on the server;
/// - every `.mp4` in the working folder other than the sample is complete;
/// - no credential in any output.
pub(crate) fn invariants(sim: &Sim, runs: &[&Run], outputs: &[&Path]) -> Vec<String> {
    let mut broken = Vec::new();
    let journal = sim.journal();
    // Per message: (accepted, refused before any work, total).
    let mut seen: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for e in journal
        .iter()
        .filter(|e| e.endpoint == Some(Endpoint::RunSse))
    {
        let text = e
            .json()
            .and_then(|v| {
                v["new_message"]["parts"][0]["text"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| e.body.clone());
        let n = seen.entry(text).or_insert((0, 0, 0));
        n.2 += 1;
        if (200..300).contains(&e.status) {
            n.0 += 1;
        } else if matches!(e.status, 401 | 404 | 429) {
            // 1001, 1002 and 429 are answered before the agent sees it.
            n.1 += 1;
        }
    }
    for (text, (accepted, refused, total)) in &seen {
        if *accepted > 1 || total - refused > 1 {
            broken.push(format!(
                "the message `{text}` reached /run_sse {total} times ({accepted} accepted, {refused} refused before any work)"
            ));
        }
    }
    let complete = |p: &Path| std::fs::read(p).is_ok_and(|b| b == nemo_mock::media::SAMPLE_MP4);
    let downloaded_ok = outputs.iter().any(|p| complete(p));
    let local = sim.local_jobs();
    for (id, faults) in accepted_renders(sim, &journal) {
        let failed = faults.iter().any(|f| f.contains("fail"));
        if !failed && !downloaded_ok && !local.contains(&id) {
            broken.push(format!(
                "render {id} was accepted but is neither downloaded nor in jobs.json"
            ));
        }
    }
    if let Ok(dir) = std::fs::read_dir(sim.work.path()) {
        for entry in dir.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".mp4") && name != "sample.mp4" && !complete(&path) {
                broken.push(format!("{name} is under its final name but not complete"));
            }
        }
    }
    let secrets = sim.secrets();
    let texts: Vec<&str> = runs
        .iter()
        .flat_map(|r| [r.stdout.as_str(), r.stderr.as_str()])
        .collect();
    broken.extend(leaks(&secrets, &texts));
    broken
}

/// Runs `f` on every item with at most `width` at once; results in order.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    width: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..width.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// How many cases run at once: `NEMO_RELIABILITY_JOBS`, else 4.
pub(crate) fn width() -> usize {
    std::env::var("NEMO_RELIABILITY_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// True when running as root (permissions do not stop root from reading).
#[cfg(unix)]
pub(crate) fn is_root() -> bool {
    // The owner of a file we create is our effective user.
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("me");
    std::fs::write(&p, b"").expect("write");
    std::fs::metadata(&p).map(|m| m.uid() == 0).unwrap_or(false)
}
