//! What the user sees (issue 15, presentation): the timeline summary is all
//! a pipe gets, sizes in one unit system, progress off a terminal on stderr
//! only, a cut reply marked, no export hint from commands that export on
//! their own, a replay that says it wrote nothing. (The drawn timeline and
//! the bars need a terminal: unit and snapshot tests in `src/`.)

use crate::support::{ndjson, of_type, text, Sim};

/// A simulator whose renders take a few real seconds (60 simulated
/// seconds at 1/20), and `nemo` at the same pace.
fn slow_render() -> Sim {
    Sim::start(nemo_mock::MockConfig {
        time_scale: 0.05,
        render_seconds: 60.0,
        agent: nemo_mock::AgentBehaviour::calm(),
        ..nemo_mock::MockConfig::default()
    })
}

fn edited(sim: &Sim) {
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    sim.nemo()
        .args([
            "say",
            "add lo-fi music at 35% and the title \"Urban Dreams\"",
        ])
        .assert()
        .success();
}

#[test]
fn a_pipe_and_json_get_the_timeline_summary_only() {
    let sim = Sim::fast();
    edited(&sim);
    let out = sim.nemo().arg("timeline").output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line, no drawing: {stdout}");
    assert!(
        stdout.starts_with("Timeline (3 tracks): 1. Video: "),
        "{stdout}"
    );
    assert!(
        !stdout.contains('─') && !stdout.contains('\x1b'),
        "{stdout}"
    );

    let out = sim
        .nemo()
        .args(["--json", "timeline"])
        .output()
        .expect("run");
    let objects = ndjson(&out.stdout);
    let timelines = of_type(&objects, "timeline");
    assert_eq!(timelines.len(), 1);
    assert_eq!(timelines[0]["summary"], stdout.trim_end());
}

#[test]
fn sizes_are_decimal_units() {
    let sim = Sim::fast();
    edited(&sim);
    let out = sim
        .nemo()
        .args(["export", "--out", "v.mp4"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // 43,792 bytes: 43.8 kB (not "KB", not KiB).
    assert!(stdout.contains("Saved v.mp4 (43.8 kB)"), "{stdout}");
}

#[test]
fn off_a_terminal_render_progress_is_a_plain_line_on_stderr() {
    let sim = slow_render();
    edited(&sim);
    let out = sim
        .nemo()
        .env("NEMO_TIME_SCALE", "0.05")
        .args(["export", "--out", "v.mp4"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("rendering "))
        .collect();
    assert!(!lines.is_empty(), "a progress line: {stderr}");
    for line in &lines {
        let percent = line
            .trim_start_matches("rendering ")
            .split('%')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        assert!(percent.is_some_and(|p| p <= 100), "{line}");
    }
    assert!(!stdout.contains("rendering"), "never on stdout: {stdout}");
    assert!(stdout.contains("Saved v.mp4"), "{stdout}");

    // `--json`: stdout is NDJSON and stderr has no progress lines.
    let out = sim
        .nemo()
        .env("NEMO_TIME_SCALE", "0.05")
        .args(["--json", "export", "--out", "w.mp4"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    ndjson(&out.stdout);
    assert!(
        !text(&out.stderr).contains("rendering"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_reply_cut_by_a_dropped_stream_is_marked() {
    // The stream breaks after six events: in the middle of the reply.
    let sim = Sim::faults("run_sse:reset=6@1");
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    let out = sim
        .nemo()
        .args(["say", "add lo-fi music at 35%"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let cut = lines
        .iter()
        .position(|l| *l == "[reply cut off]")
        .unwrap_or_else(|| panic!("the cut reply is marked: {stdout}"));
    assert!(cut > 0, "after the words so far: {stdout}");
    assert!(
        text(&out.stderr).contains("whether the edit was applied"),
        "{}",
        text(&out.stderr)
    );
    // A whole reply is not marked.
    let sim = Sim::fast();
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    let out = sim
        .nemo()
        .args(["say", "add lo-fi music at 35%"])
        .output()
        .expect("run");
    assert!(
        !text(&out.stdout).contains("cut off"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn run_and_batch_do_not_offer_to_export_what_they_export() {
    // An agent that always speaks of the GUI ("click Export …").
    let sim = Sim::start(nemo_mock::MockConfig {
        agent: nemo_mock::AgentBehaviour {
            gui_rate: 1.0,
            ..nemo_mock::AgentBehaviour::calm()
        },
        ..nemo_mock::MockConfig::fast()
    });
    let sample = sim.sample();
    let out = sim
        .nemo()
        .args(["run", "add lo-fi music at 35%", "--out", "r.mp4", "--file"])
        .arg(&sample)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("ready to export"), "{stderr}");
    assert!(!stderr.contains("nemo export"), "{stderr}");
    assert!(text(&out.stdout).contains("Saved r.mp4"));

    std::fs::write(
        sim.work.path().join("m.toml"),
        "[[items]]\ninputs = [\"sample.mp4\"]\ninstruction = \"add lo-fi music at 35%\"\noutput = \"b.mp4\"\n",
    )
    .expect("manifest");
    let out = sim.nemo().args(["batch", "m.toml"]).output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("ready to export"), "{stderr}");

    // `say` still offers it.
    let out = sim
        .nemo()
        .args(["say", "add the title \"Urban Dreams\""])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("→ "), "{}", text(&out.stderr));
}

#[test]
fn replay_says_it_wrote_nothing() {
    let har = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/dialects/dialect-adk.har");
    let work = tempfile::tempdir().expect("tempdir");
    let out = crate::support::nemo()
        .current_dir(work.path())
        .arg("replay")
        .arg(&har)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("downloaded: "), "{stdout}");
    assert!(
        stdout.contains("download replayed: dialect-adk.mp4") && stdout.contains("no file written"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("no file was written"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(work.path()).expect("dir").count(),
        0,
        "nothing written"
    );
}

#[test]
fn quiet_prints_results_and_errors_only() {
    let sim = slow_render();
    let sample = sim.sample();
    let out = sim
        .nemo()
        .env("NEMO_TIME_SCALE", "0.05")
        .args([
            "-q",
            "run",
            "add lo-fi music at 35%",
            "--out",
            "q.mp4",
            "--file",
        ])
        .arg(&sample)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "nothing but errors on stderr");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Saved q.mp4 (43.8 kB)"), "{stdout}");

    // An error still says what went wrong.
    let out = sim
        .nemo()
        .args(["-q", "upload", "missing.mp4"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("error:"),
        "{}",
        text(&out.stderr)
    );
}
