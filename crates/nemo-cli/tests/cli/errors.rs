//! Exit codes: 1 for permanent failures (bad input before anything is sent,
//! out of credits), 2 for transient ones (a server failing for good), and
//! errors printed once with what to do next.

use predicates::prelude::*;

use crate::support::{ndjson, nemo, of_type, text, Sim};

#[test]
fn a_missing_file_fails_before_any_request() {
    let sim = Sim::fast();
    sim.nemo()
        .args(["upload", "nope.mp4"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "error: There is no file at nope.mp4",
        ));
    sim.nemo()
        .args(["say", "add music", "--file", "nope.mp4"])
        .assert()
        .code(1);
    sim.nemo()
        .args(["run", "x", "--file", "."])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a folder"));
    assert!(
        sim.journal().is_empty(),
        "no request may be sent for bad input"
    );
}

#[test]
fn an_unsupported_file_lists_the_accepted_formats() {
    let sim = Sim::fast();
    std::fs::write(sim.work.path().join("notes.txt"), "hello").expect("write");
    let out = sim
        .nemo()
        .args(["--json", "upload", "notes.txt"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let objects = ndjson(&out.stdout);
    let errors = of_type(&objects, "error");
    assert_eq!(errors.len(), 1, "printed once");
    assert_eq!(errors[0]["code"], "unsupported_file");
    assert_eq!(errors[0]["retryable"], false);
    assert!(errors[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("mp4 mov")));
    assert!(sim.journal().is_empty());
}

#[test]
fn usage_errors_and_unknown_skills_are_permanent() {
    nemo().arg("frobnicate").assert().code(1);
    nemo().args(["say"]).assert().code(1);
    nemo()
        .args(["--session", "1", "--new-session", "credits"])
        .assert()
        .code(1);
    let sim = Sim::fast();
    sim.nemo()
        .args(["--skill", "video-magic", "credits"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Unknown skill `video-magic`"))
        .stderr(predicate::str::contains("video-download-online"));
    assert!(sim.journal().is_empty());
}

#[test]
fn commands_that_need_a_session_say_how_to_start_one() {
    let sim = Sim::fast();
    sim.nemo()
        .arg("export")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nemo upload"));
    sim.nemo().arg("timeline").assert().code(1);
    assert!(sim.journal().is_empty());
}

#[test]
fn a_server_failing_for_good_is_transient() {
    let sim = Sim::faults("*:503");
    let out = sim
        .nemo()
        .args(["--json", "credits"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let objects = ndjson(&out.stdout);
    let errors = of_type(&objects, "error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["retryable"], true);
    assert!(sim.journal().len() <= 10);
    sim.nemo()
        .arg("credits")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error:"));
}

#[test]
fn a_failing_read_is_retried_boundedly_then_transient() {
    let sim = Sim::faults("credits:500");
    sim.nemo().arg("credits").assert().code(2);
    let n = sim
        .journal()
        .iter()
        .filter(|e| e.path == "/api/credits/balance/simple")
        .count();
    assert!((2..=6).contains(&n), "{n} attempts");
}

#[test]
fn an_unreachable_service_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cfg = tempfile::tempdir().expect("tempdir");
    nemo()
        .env("NEMO_API_URL", format!("http://127.0.0.1:{port}"))
        .env("NEMO_CONFIG_DIR", cfg.path())
        .env("NEMO_TIME_SCALE", "0.01")
        .arg("credits")
        .assert()
        .code(2);
}

#[test]
fn out_of_credits_is_permanent_and_links_to_registration() {
    let sim = Sim::start(nemo_mock::MockConfig {
        initial_credits: 0,
        ..nemo_mock::MockConfig::fast()
    });
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    let out = sim
        .nemo()
        .args(["say", "add lo-fi music at 35%"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("/register?bind="), "{all}");
}

#[test]
fn a_rejected_user_token_is_permanent_and_never_printed() {
    let sim = Sim::fast();
    let secret = "nmv_usr_bogus_secret_0123456789";
    for json in [false, true] {
        let mut cmd = sim.nemo();
        cmd.env("NEMO_TOKEN", secret).arg("-v");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg("credits").output().expect("run");
        assert_eq!(out.status.code(), Some(1));
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(all.contains("NEMO_TOKEN was rejected"), "{all}");
        assert!(
            !all.contains("bogus_secret"),
            "the token was printed: {all}"
        );
    }
    // The user's token is never replaced by an anonymous one, nor cached.
    assert!(sim
        .journal()
        .iter()
        .all(|e| e.path != "/api/auth/anonymous-token"));
    assert!(!sim.cfg_file("tokens.json").exists());
}
