//! A simulator per test, a temp config dir and a temp working dir, and
//! checks of the NDJSON output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use nemo_mock::{FaultPlan, JournalEntry, MockConfig, MockServer};
use serde_json::Value;
use tempfile::TempDir;

/// A running simulator and the folders a test runs `nemo` in.
pub(crate) struct Sim {
    rt: tokio::runtime::Runtime,
    server: Option<MockServer>,
    /// `NEMO_CONFIG_DIR`.
    pub(crate) cfg: TempDir,
    /// The working directory.
    pub(crate) work: TempDir,
}

impl Sim {
    /// A fast simulator (time 100× faster, a calm agent).
    pub(crate) fn fast() -> Sim {
        Sim::start(MockConfig::fast())
    }

    /// A fast simulator with faults.
    pub(crate) fn faults(spec: &str) -> Sim {
        Sim::start(MockConfig {
            faults: FaultPlan::parse(spec).expect("fault spec"),
            ..MockConfig::fast()
        })
    }

    /// A simulator with this configuration.
    pub(crate) fn start(config: MockConfig) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(MockServer::start(config)).expect("simulator");
        Sim {
            rt,
            server: Some(server),
            cfg: tempfile::tempdir().expect("tempdir"),
            work: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The simulator's base URL.
    pub(crate) fn url(&self) -> String {
        self.server.as_ref().expect("running").url().to_owned()
    }

    /// Every request the simulator saw.
    pub(crate) fn journal(&self) -> Vec<JournalEntry> {
        self.server.as_ref().expect("running").journal().entries()
    }

    /// `nemo`, pointed at the simulator, in a clean environment.
    pub(crate) fn nemo(&self) -> Command {
        let mut cmd = Command::from_std(self.nemo_std());
        cmd.timeout(Duration::from_secs(60));
        cmd
    }

    /// The same as a `std::process::Command` (to spawn and signal).
    pub(crate) fn nemo_std(&self) -> std::process::Command {
        let mut cmd = nemo_std();
        cmd.env("NEMO_API_URL", self.url())
            .env("NEMO_CONFIG_DIR", self.cfg.path())
            .env("NEMO_TIME_SCALE", "0.01")
            .current_dir(self.work.path());
        cmd
    }

    /// The sample clip, written into the working directory.
    pub(crate) fn sample(&self) -> PathBuf {
        let path = self.work.path().join("sample.mp4");
        if !path.exists() {
            std::fs::write(&path, nemo_mock::media::SAMPLE_MP4).expect("write sample");
        }
        path
    }

    /// A file in the config dir.
    pub(crate) fn cfg_file(&self, name: &str) -> PathBuf {
        self.cfg.path().join(name)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

/// `nemo` in a clean environment (no user token, no skill, no colour).
pub(crate) fn nemo() -> Command {
    let mut cmd = Command::from_std(nemo_std());
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// `nemo` as a `std::process::Command`, in a clean environment.
pub(crate) fn nemo_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("nemo"));
    for var in [
        "NEMO_TOKEN",
        "NEMO_SKILL",
        "NEMO_CLIENT_ID",
        "NEMO_WEB_URL",
        "NEMO_API_URL",
        "NEMO_TIME_SCALE",
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

/// Stdout as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn field<'a>(line: &'a Value, name: &str, raw: &str) -> &'a Value {
    line.get(name)
        .unwrap_or_else(|| panic!("`{name}` missing in {raw}"))
}

/// Parses NDJSON output and checks every object against
/// `docs/events.schema.json` and against the fields each type has always had.
pub(crate) fn ndjson(stdout: &[u8]) -> Vec<Value> {
    let out = text(stdout);
    let mut objects = Vec::new();
    for raw in out.lines() {
        let v: Value =
            serde_json::from_str(raw).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"));
        if let Err(e) = crate::schema::check(&v) {
            panic!("not as docs/events.schema.json says ({e}): {raw}");
        }
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no type: {raw}"));
        let is_str = |n: &str| assert!(field(&v, n, raw).is_string(), "{n} not a string: {raw}");
        let is_num = |n: &str| assert!(field(&v, n, raw).is_number(), "{n} not a number: {raw}");
        match ty {
            "status" => is_str("message"),
            "text" => is_str("text"),
            "change" => is_str("summary"),
            "timeline" => {
                is_str("summary");
                assert!(field(&v, "ready_for_export", raw).is_boolean(), "{raw}");
            }
            "credits" => {
                is_num("available");
                is_num("frozen");
                is_num("total");
            }
            "upload" => {
                let files = field(&v, "files", raw)
                    .as_array()
                    .unwrap_or_else(|| panic!("{raw}"));
                for f in files {
                    for k in ["filename", "file_type", "cdn_url"] {
                        assert!(f.get(k).is_some_and(Value::is_string), "{k}: {raw}");
                    }
                }
            }
            "render" => {
                is_str("id");
                is_str("status");
                let p = field(&v, "progress", raw);
                assert!(p.is_number() || p.is_null(), "{raw}");
            }
            "download" => {
                is_str("path");
                is_num("bytes");
            }
            "link" => {
                is_str("kind");
                is_str("url");
            }
            "error" => {
                is_str("code");
                is_str("message");
                assert!(field(&v, "retryable", raw).is_boolean(), "{raw}");
            }
            "generation" => {
                is_str("stage");
                is_str("message");
                let url = field(&v, "url", raw);
                assert!(url.is_string() || url.is_null(), "{raw}");
            }
            "suggestions" => {
                is_str("message");
                let list = field(&v, "suggestions", raw);
                assert!(
                    list.as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string)),
                    "{raw}"
                );
            }
            "session" => {
                is_str("id");
                assert!(field(&v, "current", raw).is_boolean(), "{raw}");
            }
            "config" => is_str("folder"),
            other => panic!("unknown type `{other}`: {raw}"),
        }
        objects.push(v);
    }
    objects
}

/// The objects of one type.
pub(crate) fn of_type<'a>(objects: &'a [Value], ty: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["type"] == ty).collect()
}

/// The mode bits of a file.
#[cfg(unix)]
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}
