//! Newcomer stumbles (issue 15): each one, as a new user would hit it.

use predicates::prelude::*;

use crate::support::Sim;

#[test]
fn a_mistyped_session_fails_and_keeps_the_saved_one() {
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args(["upload", sample.to_str().unwrap()])
        .assert()
        .success();
    let saved = std::fs::read_to_string(sim.cfg_file("sessions.json")).expect("saved");
    for command in [
        &["timeline"][..],
        &["say", "add a title \"Hi\""][..],
        &["export", "--no-download"][..],
    ] {
        sim.nemo()
            .args(["--session", "999"])
            .args(command)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("999 is not on the server"));
    }
    assert_eq!(
        std::fs::read_to_string(sim.cfg_file("sessions.json")).unwrap(),
        saved,
        "the remembered session is untouched"
    );
    // The real draft is still what a plain `timeline` shows.
    sim.nemo()
        .arg("timeline")
        .assert()
        .success()
        .stdout(predicate::str::contains("sample"));
}

#[test]
fn a_message_naming_a_missing_file_sends_nothing() {
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args(["upload", sample.to_str().unwrap()])
        .assert()
        .success();
    let before = sim.journal().len();
    sim.nemo()
        .args(["say", "intro.mp4"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("There is no file at intro.mp4"));
    assert_eq!(
        sim.journal().len(),
        before,
        "nothing sent, nothing rendered"
    );
    assert!(!sim.work.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("render_")));
}

#[test]
fn addresses_without_a_scheme_get_a_hint() {
    let sim = Sim::fast();
    sim.nemo()
        .args(["upload", "www.youtube.com/watch?v=x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "https://www.youtube.com/watch?v=x",
        ));
    sim.nemo()
        .args(["upload", "https://"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing follows its scheme"));
    assert!(sim.journal().is_empty());
}

#[test]
fn a_question_instead_of_an_edit_is_not_rendered() {
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args(["run", "hello there", "--file", sample.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("asked a question"))
        .stderr(predicate::str::contains("What would you like to do?"));
    assert!(
        !sim.journal()
            .iter()
            .any(|e| e.path == "/api/render/proxy/lambda" && e.method == "POST"),
        "nothing rendered"
    );
}

#[test]
fn chat_skips_a_line_that_is_not_text_and_goes_on() {
    let sim = Sim::fast();
    let mut input = b"\xff\xfe not text\n".to_vec();
    input.extend_from_slice(b"credits\n/quit\n");
    sim.nemo()
        .arg("chat")
        .write_stdin(input)
        .assert()
        .success()
        .stderr(predicate::str::contains("not UTF-8"))
        .stdout(predicate::str::contains("Credits"));
}

#[test]
fn a_refused_connection_is_said_plainly() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = tempfile::tempdir().unwrap();
    crate::support::nemo()
        .env("NEMO_API_URL", format!("http://127.0.0.1:{port}"))
        .env("NEMO_CONFIG_DIR", cfg.path())
        .env("NEMO_TIME_SCALE", "0.01")
        .arg("credits")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "cannot connect to 127.0.0.1:{port}: connection refused"
        )))
        .stderr(predicate::str::contains("client error (Connect)").not())
        .stderr(predicate::str::contains("os error").not());
}

#[test]
fn two_vs_show_each_request_and_never_a_secret() {
    let sim = Sim::fast();
    let out = sim.nemo().args(["-vv", "credits"]).output().expect("run");
    assert!(out.status.success());
    let stderr = crate::support::text(&out.stderr);
    assert!(
        stderr.contains("nemo: → POST /api/auth/anonymous-token"),
        "{stderr}"
    );
    assert!(stderr.contains("nemo: ← 200"), "{stderr}");
    assert!(!stderr.contains("nmv_"), "no token: {stderr}");
    let tokens = std::fs::read_to_string(sim.cfg_file("tokens.json")).unwrap_or_default();
    assert!(!tokens.is_empty());
    // One -v says no more than before: no request lines.
    let out = sim.nemo().args(["-v", "credits"]).output().expect("run");
    assert!(!crate::support::text(&out.stderr).contains("→ "));
}

#[test]
fn languages_are_checked_and_completions_know_the_skills() {
    crate::support::nemo()
        .args(["--lang", "xx", "credits"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("use en (English) or zh"));
    let out = crate::support::nemo()
        .args(["completions", "bash"])
        .output()
        .expect("run");
    let script = crate::support::text(&out.stdout);
    assert!(script.contains("generator-by-link"), "--skill values");
    // Every command's help has examples.
    for command in [
        "say", "upload", "export", "jobs", "run", "batch", "chat", "mcp",
    ] {
        crate::support::nemo()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
    }
}

#[test]
fn quiet_prints_results_only() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let out = sim
        .nemo()
        .args(["-q", "upload", sample.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(crate::support::text(&out.stderr), "", "nothing but results");
}

#[test]
fn sessions_are_listed_switched_and_forgotten() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let sample = sample.to_str().unwrap();
    sim.nemo().args(["upload", sample]).assert().success();
    sim.nemo()
        .args(["say", "add the title \"First\""])
        .assert()
        .success();
    let first = std::fs::read_to_string(sim.cfg_file("sessions.json")).unwrap();
    sim.nemo()
        .args(["--new-session", "upload", sample])
        .assert()
        .success();
    let out = sim.nemo().args(["--json", "sessions"]).output().unwrap();
    let listed = crate::support::ndjson(&out.stdout);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["current"], true, "the newest is continued");
    assert_eq!(listed[1]["title"], "add the title \"First\"");
    let old = listed[1]["id"].as_str().unwrap().to_owned();
    // A typo changes nothing; a real id is read, then continued.
    sim.nemo()
        .args(["sessions", "use", "999"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not on the server"));
    sim.nemo()
        .args(["sessions", "use", &old])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "now continue session {old}"
        )));
    assert_eq!(
        std::fs::read_to_string(sim.cfg_file("sessions.json")).unwrap(),
        first
    );
    sim.nemo()
        .args(["sessions"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("* {old}")));
    sim.nemo()
        .args(["sessions", "forget", &old])
        .assert()
        .success();
    let out = sim.nemo().args(["--json", "sessions"]).output().unwrap();
    assert_eq!(crate::support::ndjson(&out.stdout).len(), 1);
    sim.nemo()
        .args(["sessions", "forget", &old])
        .assert()
        .code(1);
}

#[test]
fn config_says_where_things_are_and_never_the_token() {
    let sim = Sim::fast();
    sim.nemo().arg("credits").assert().success();
    sim.nemo()
        .args(["config", "path"])
        .assert()
        .success()
        .stdout(format!("{}\n", sim.cfg.path().display()));
    let out = sim.nemo().args(["--json", "config"]).output().unwrap();
    let config = crate::support::ndjson(&out.stdout);
    assert_eq!(config[0]["api_url"]["source"], "NEMO_API_URL");
    assert_eq!(config[0]["token"]["source"], "tokens.json");
    let tokens = std::fs::read_to_string(sim.cfg_file("tokens.json")).unwrap();
    let token = tokens
        .split('"')
        .find(|w| w.starts_with("nmv_"))
        .expect("a cached token");
    assert!(!crate::support::text(&out.stdout).contains(token));
    // With no jobs, `--json jobs` still answers.
    let out = sim.nemo().args(["--json", "jobs"]).output().unwrap();
    let objects = crate::support::ndjson(&out.stdout);
    assert_eq!(objects[0]["type"], "status", "{objects:?}");
}

#[test]
fn mcp_over_http_beyond_loopback_needs_a_secret() {
    let cfg = tempfile::tempdir().unwrap();
    crate::support::nemo()
        .env("NEMO_CONFIG_DIR", cfg.path())
        .args(["mcp", "--http", "0.0.0.0:0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("NEMO_MCP_SECRET"));
    crate::support::nemo()
        .env("NEMO_CONFIG_DIR", cfg.path())
        .env("NEMO_MCP_SECRET", "short")
        .args(["mcp", "--http", "0.0.0.0:0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("too short"));
}

#[test]
fn out_dash_streams_the_video_to_stdout() {
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args(["upload", sample.to_str().unwrap()])
        .assert()
        .success();
    sim.nemo()
        .args(["say", "add the title \"Piped\""])
        .assert()
        .success();
    sim.nemo()
        .args(["--json", "export", "-o", "-"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("one or the other"));
    let out = sim
        .nemo()
        .args(["export", "-o", "-"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        crate::support::text(&out.stderr)
    );
    assert_eq!(&out.stdout[4..8], b"ftyp", "an MP4 on stdout");
    assert_eq!(out.stdout, nemo_mock::media::SAMPLE_MP4, "the whole render");
    assert!(crate::support::text(&out.stderr).contains("to stdout"));
    assert!(!sim.work.path().join("-").exists(), "no file named -");
}

#[test]
fn a_second_export_of_a_session_being_exported_is_warned() {
    use nemo_client::Store;
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args(["upload", sample.to_str().unwrap()])
        .assert()
        .success();
    let sessions: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sim.cfg_file("sessions.json")).unwrap())
            .unwrap();
    let session = sessions[sim.url()]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // "Another terminal": this test process records a render of the same
    // session and holds its lease.
    let other = nemo_client::FileStore::at(sim.cfg.path());
    other
        .add_job(nemo_client::Job {
            id: "render_other".into(),
            session_id: session,
            task_id: None,
            api_url: sim.url(),
            out: None,
            created_unix: 0,
        })
        .unwrap();
    assert!(other.lease("render_other").unwrap());
    sim.nemo()
        .args(["export", "--no-download"])
        .assert()
        .stderr(predicate::str::contains(
            "already exporting this session (render render_other)",
        ));
}

#[test]
fn chinese_switches_the_command_lines_own_words() {
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args(["--lang", "zh", "upload", sample.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("已上传 sample.mp4"));
    sim.nemo()
        .args(["jobs", "--lang", "zh"])
        .assert()
        .success()
        .stdout("没有记录的渲染任务。\n");
    sim.nemo()
        .args(["sessions", "--lang", "zh"])
        .assert()
        .success()
        .stdout(predicate::str::contains("普通命令继续使用的会话"));
    sim.nemo()
        .env("LC_ALL", "zh_CN.UTF-8")
        .args(["upload", "nope.mp4"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("错误："));
    sim.nemo()
        .env("LC_ALL", "C")
        .args(["upload", "nope.mp4"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error:"));
}

#[test]
fn session_options_are_offered_where_they_mean_something() {
    for command in ["mock", "replay", "completions"] {
        crate::support::nemo()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("--session").not())
            .stdout(predicate::str::contains("--skill").not());
    }
    crate::support::nemo()
        .args(["say", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--session <ID>"));
    // Before or after the command's name; both at once is refused.
    let sim = Sim::fast();
    sim.nemo()
        .args(["credits", "--skill", "generator-by-link"])
        .assert()
        .success();
    sim.nemo()
        .args(["--session", "1", "timeline", "--new-session"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot be used together"));
    // The skill given after the command's name was the one sent.
    let sent: Vec<String> = sim
        .journal()
        .iter()
        .filter_map(|e| e.header("x-skill-source").map(str::to_owned))
        .collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|s| s == "generator-by-link"), "{sent:?}");
}
