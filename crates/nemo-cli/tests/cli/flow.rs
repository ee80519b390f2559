//! The workflows, end to end over HTTP: upload → say → timeline → export,
//! `run`, `chat`, the skill flavours, the demo.

use predicates::prelude::*;

use crate::support::{mode, ndjson, nemo, of_type, text, Sim};

#[test]
fn quick_edit_across_commands_remembers_the_session() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let mut outputs = String::new();

    let out = sim.nemo().arg("upload").arg(&sample).output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Uploaded sample.mp4 (video"),
        "{}",
        text(&out.stdout)
    );
    outputs += &(text(&out.stdout) + &text(&out.stderr));

    let out = sim
        .nemo()
        .args([
            "say",
            "add lo-fi background music at 35% and the title \"Urban Dreams\"",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Lo-fi"), "{}", text(&out.stdout));
    outputs += &(text(&out.stdout) + &text(&out.stderr));

    let out = sim.nemo().arg("timeline").output().expect("run");
    assert!(out.status.success());
    let timeline = text(&out.stdout);
    assert!(
        timeline.starts_with("Timeline (3 tracks): 1. Video: sample"),
        "{timeline}"
    );
    assert!(
        timeline.contains("BGM: Lo-fi") && timeline.contains("35%"),
        "{timeline}"
    );
    outputs += &(text(&out.stdout) + &text(&out.stderr));

    let out = sim
        .nemo()
        .args(["export", "--out", "edited.mp4"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Saved edited.mp4"), "{stdout}");
    assert!(stdout.contains("/workspace/claim?ct="), "{stdout}");
    outputs += &(stdout + &text(&out.stderr));
    let video = std::fs::read(sim.work.path().join("edited.mp4")).expect("downloaded");
    assert_eq!(&video[4..8], b"ftyp", "a playable MP4");

    let out = sim.nemo().arg("credits").output().expect("run");
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("Credits: "),
        "{}",
        text(&out.stdout)
    );
    outputs += &(text(&out.stdout) + &text(&out.stderr));

    // One token and one session for the whole sequence.
    let journal = sim.journal();
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.path == "/api/auth/anonymous-token")
            .count(),
        1
    );
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.path.starts_with("/api/tasks/me/with-session"))
            .count(),
        1
    );
    // The render request was recorded and released.
    let jobs = std::fs::read_to_string(sim.cfg_file("jobs.json")).expect("jobs.json");
    assert!(!jobs.contains("render_"), "{jobs}");

    // State files are private, and no token was ever printed.
    #[cfg(unix)]
    for name in ["client_id", "tokens.json", "sessions.json", "jobs.json"] {
        assert_eq!(mode(&sim.cfg_file(name)), 0o600, "{name}");
    }
    let tokens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sim.cfg_file("tokens.json")).expect("tokens"),
    )
    .expect("json");
    let token = tokens[sim.url()]["token"]
        .as_str()
        .expect("cached token")
        .to_owned();
    assert!(token.len() > 8);
    assert!(!outputs.contains(&token), "a token was printed");
}

#[test]
fn json_output_is_ndjson_with_the_documented_types() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let mut all = Vec::new();
    for args in [
        vec![
            "--json".to_owned(),
            "upload".into(),
            sample.display().to_string(),
        ],
        vec![
            "--json".into(),
            "say".into(),
            "add jazz music at 20% and the title \"Hello\"".into(),
        ],
        vec!["--json".into(), "timeline".into()],
        vec!["--json".into(), "credits".into()],
        vec![
            "--json".into(),
            "export".into(),
            "--out".into(),
            "a.mp4".into(),
        ],
    ] {
        let out = sim.nemo().args(&args).output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        all.extend(ndjson(&out.stdout));
    }
    for ty in [
        "upload", "text", "timeline", "credits", "render", "download", "link",
    ] {
        assert!(!of_type(&all, ty).is_empty(), "no `{ty}` object");
    }
    let timeline = of_type(&all, "timeline")[0];
    assert_eq!(timeline["ready_for_export"], true);
    let download = of_type(&all, "download")[0];
    assert!(download["bytes"].as_u64().is_some_and(|b| b > 1000));
    let renders = of_type(&all, "render");
    assert!(renders.iter().any(|r| r["status"] == "completed"));
    let link = of_type(&all, "link")[0];
    assert_eq!(link["kind"], "claim");
    assert!(link["url"].as_str().is_some_and(|u| u.contains("ct=clm_")));
}

#[test]
fn run_does_the_quick_edit_in_one_command() {
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo()
        .args([
            "run",
            "add lo-fi music at 35%",
            "--out",
            "quick.mp4",
            "--file",
        ])
        .arg(&sample)
        .assert()
        .success()
        .stdout(predicate::str::contains("Uploaded sample.mp4"))
        .stdout(predicate::str::contains("Saved quick.mp4"));
    assert!(sim.work.path().join("quick.mp4").is_file());
}

#[test]
fn say_routes_intents_without_the_agent() {
    let sim = Sim::fast();
    sim.nemo()
        .args(["say", "credits"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Credits: 100 available"));
    assert_eq!(
        sim.journal()
            .iter()
            .filter(|e| e.path == "/run_sse")
            .count(),
        0
    );
}

#[test]
fn chat_reads_lines_from_stdin() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let script = format!(
        "upload {}\nadd lo-fi music at 35%\n/help\nstatus\n/quit\nnever sent\n",
        sample.display()
    );
    let out = sim
        .nemo()
        .arg("chat")
        .write_stdin(script)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Send me your video clips"), "{stdout}");
    assert!(stdout.contains("Try saying:"));
    assert!(stdout.contains("Uploaded sample.mp4"), "{stdout}");
    assert!(stdout.contains("Timeline (2 tracks)"), "{stdout}");
    assert!(stdout.contains("/quit"), "the help was shown");
    let messages: Vec<String> = sim
        .journal()
        .iter()
        .filter(|e| e.path == "/run_sse")
        .map(|e| e.body.clone())
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[test]
fn the_skill_sets_attribution_and_greeting() {
    let sim = Sim::fast();
    sim.nemo()
        .args(["--skill", "generator-by-link", "chat"])
        .env("SKILL_SOURCE", "clawhub")
        .write_stdin("credits\n")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Got URL or link to work with?"))
        .stdout(predicate::str::contains("https://example.com/blog-post"));
    let journal = sim.journal();
    assert!(!journal.is_empty());
    for entry in journal {
        assert_eq!(entry.header("x-skill-source"), Some("generator-by-link"));
        assert_eq!(entry.header("x-skill-platform"), Some("clawhub"));
        assert!(entry.header("x-skill-version").is_some());
    }
    sim.nemo()
        .arg("credits")
        .env("NEMO_SKILL", "video-download-online")
        .assert()
        .success();
    let last = sim.journal().pop().expect("a request");
    assert_eq!(last.header("x-skill-source"), Some("video-download-online"));
    assert_eq!(last.header("x-skill-platform"), Some("unknown"));
}

#[test]
fn the_demo_transcript() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("demo.mp4");
    let started = std::time::Instant::now();
    let out = nemo()
        .current_dir(dir.path())
        .env("NEMO_TOKEN", "nmv_usr_must_not_be_used")
        .args(["demo", "--out"])
        .arg(&out_path)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let transcript = text(&out.stdout).replace(&out_path.display().to_string(), "[OUT]");
    insta::assert_snapshot!("demo_transcript", transcript);
    let video = std::fs::read(&out_path).expect("the demo video");
    assert_eq!(&video[4..8], b"ftyp");
    // Nothing was written to the config dir of the user.
    assert!(!dir.path().join("nemovideo").exists());
}

#[test]
fn the_demo_in_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = nemo()
        .current_dir(dir.path())
        .args(["--json", "demo"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let objects = ndjson(&out.stdout);
    for ty in ["upload", "text", "timeline", "render", "download"] {
        assert!(!of_type(&objects, ty).is_empty(), "no `{ty}`");
    }
    assert!(dir.path().join("nemo-demo.mp4").is_file());
}

#[test]
fn a_silent_edit_is_reported_as_what_changed() {
    let sim = Sim::faults("run_sse:silent");
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    sim.nemo()
        .args(["say", "add lo-fi music at 35%"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Changed: "))
        .stdout(predicate::str::contains("Lo-fi"));
    let out = sim
        .nemo()
        .args(["--json", "say", "add the title \"Hi\""])
        .output()
        .expect("run");
    assert!(out.status.success());
    let objects = ndjson(&out.stdout);
    assert!(of_type(&objects, "text").is_empty());
    assert!(of_type(&objects, "change")[0]["summary"]
        .as_str()
        .is_some_and(|s| s.contains("Hi")));
}

#[test]
fn gui_words_are_never_shown_and_become_hints() {
    let sim = Sim::start(nemo_mock::MockConfig {
        agent: nemo_mock::AgentBehaviour {
            gui_rate: 1.0,
            ..nemo_mock::AgentBehaviour::calm()
        },
        ..nemo_mock::MockConfig::fast()
    });
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    let out = sim
        .nemo()
        .args(["say", "add lo-fi music at 35%"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let stdout = text(&out.stdout).to_lowercase();
    assert!(stdout.contains("lo-fi"), "{stdout}");
    for word in ["click", "button", "panel", "drag", "点击"] {
        assert!(!stdout.contains(word), "GUI word `{word}` shown: {stdout}");
    }
    assert!(text(&out.stderr).contains("→ "), "{}", text(&out.stderr));
    // Shown once, not once per streamed piece.
    assert_eq!(stdout.matches("lo-fi").count(), 1, "{stdout}");
}
