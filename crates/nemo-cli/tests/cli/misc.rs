//! `nemo mock`, `nemo completions`, and the config directory's hygiene.

use std::io::{BufRead, BufReader};

use predicates::prelude::*;

use crate::support::{nemo, Sim};

#[test]
fn mock_listens_and_serves() {
    let mut child = crate::support::nemo_std()
        .args([
            "mock",
            "--port",
            "0",
            "--time-scale",
            "0.01",
            "--seed",
            "3",
            "--render-shape",
            "c",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("read");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("the first line")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let cfg = tempfile::tempdir().expect("tempdir");
    let result = nemo()
        .env("NEMO_API_URL", &url)
        .env("NEMO_CONFIG_DIR", cfg.path())
        .arg("credits")
        .output();
    let _ = child.kill();
    let _ = child.wait();
    let out = result.expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Credits: 100 available"));
}

#[test]
fn mock_rejects_a_bad_fault_plan() {
    nemo()
        .args(["mock", "--faults", "run_sse:explode"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Bad --faults"));
}

#[test]
fn completions() {
    nemo()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nemo"));
    nemo().args(["completions", "tcsh"]).assert().code(1);
}

#[cfg(unix)]
#[test]
fn a_state_file_readable_by_others_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::fast();
    sim.nemo().arg("credits").assert().success();
    let tokens = sim.cfg_file("tokens.json");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    sim.nemo()
        .arg("credits")
        .assert()
        .success()
        .stderr(predicate::str::contains("readable by other users"))
        .stderr(predicate::str::contains("chmod 600"));
}

#[test]
fn nemo_client_id_is_sent_and_not_stored() {
    let sim = Sim::fast();
    sim.nemo()
        .env("NEMO_CLIENT_ID", "11111111-2222-4333-8444-555555555555")
        .arg("credits")
        .assert()
        .success();
    assert!(!sim.cfg_file("client_id").exists());
    let token_call = sim
        .journal()
        .into_iter()
        .find(|e| e.path == "/api/auth/anonymous-token")
        .expect("a token call");
    // The simulator masks it, keeping the last four characters.
    assert!(token_call
        .header("x-client-id")
        .is_some_and(|v| v.ends_with("5555")));
}
