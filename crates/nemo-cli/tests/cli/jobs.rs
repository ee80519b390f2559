//! The render journal: written before the render request leaves, listed by
//! `nemo jobs`, finished by `nemo jobs --resume` after a failure or Ctrl-C.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::{ndjson, of_type, text, Sim};

fn prepare(sim: &Sim) {
    let sample = sim.sample();
    sim.nemo().arg("upload").arg(&sample).assert().success();
    sim.nemo()
        .args(["say", "add lo-fi music at 35%"])
        .assert()
        .success();
}

fn recorded(sim: &Sim) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(sim.cfg_file("jobs.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("jobs.json is JSON");
    v["jobs"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_failed_wait_keeps_the_job_and_resume_finishes_it() {
    // The first four status polls fail: the export gives up (transient),
    // the render keeps going on the server.
    let sim = Sim::faults("status:500x4@1");
    prepare(&sim);
    let out = sim
        .nemo()
        .args(["export", "--out", "late.mp4"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let jobs = recorded(&sim);
    assert_eq!(jobs.len(), 1, "the job stays recorded");
    let id = jobs[0]["id"].as_str().expect("id").to_owned();
    assert!(jobs[0]["out"]
        .as_str()
        .is_some_and(|p| p.ends_with("late.mp4")));

    // Recorded before the request went out: the submission is in the
    // simulator's journal with the same id.
    let submitted: Vec<_> = sim
        .journal()
        .into_iter()
        .filter(|e| e.path == "/api/render/proxy/lambda")
        .collect();
    assert_eq!(submitted.len(), 1);
    assert!(submitted[0].body.contains(&id));

    sim.nemo()
        .arg("jobs")
        .assert()
        .success()
        .stdout(predicate::str::contains(&id))
        .stdout(predicate::str::contains("nemo jobs --resume"));
    let out = sim.nemo().args(["--json", "jobs"]).output().expect("run");
    let listed = ndjson(&out.stdout);
    assert_eq!(of_type(&listed, "render")[0]["id"], id.as_str());

    sim.nemo()
        .args(["jobs", "--resume"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Saved"));
    assert!(sim.work.path().join("late.mp4").is_file());
    assert!(recorded(&sim).is_empty(), "released after the download");
    sim.nemo()
        .arg("jobs")
        .assert()
        .success()
        .stdout("No render jobs recorded.\n");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_waiting_and_says_how_to_resume() {
    // Renders take 30 simulated seconds at 1/20 speed: 1.5 s real.
    let sim = Sim::start(nemo_mock::MockConfig {
        time_scale: 0.05,
        ..nemo_mock::MockConfig::fast()
    });
    prepare(&sim);
    let child = sim
        .nemo_std()
        .args(["export", "--out", "interrupted.mp4"])
        .env("NEMO_TIME_SCALE", "0.05")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the job is recorded and submitted, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim
        .journal()
        .iter()
        .all(|e| e.path != "/api/render/proxy/lambda")
    {
        assert!(Instant::now() < deadline, "the render was never submitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(recorded(&sim).len(), 1);
    std::thread::sleep(Duration::from_millis(50));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nemo jobs --resume"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(recorded(&sim).len(), 1, "the job survives the interruption");

    sim.nemo()
        .env("NEMO_TIME_SCALE", "0.05")
        .args(["jobs", "--resume"])
        .assert()
        .success();
    assert!(sim.work.path().join("interrupted.mp4").is_file());
    assert!(recorded(&sim).is_empty());
}

#[test]
fn a_resume_that_cannot_finish_yet_keeps_the_job() {
    let sim = Sim::faults("status:500x4@1");
    prepare(&sim);
    let out = sim
        .nemo()
        .args(["export", "--out", "late.mp4"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(recorded(&sim).len(), 1);
    // Something now sits at the target: resuming fails, the job stays.
    std::fs::write(sim.work.path().join("late.mp4"), b"not mine").expect("write");
    let out = sim.nemo().args(["jobs", "--resume"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        recorded(&sim).len(),
        1,
        "the finished render is not forgotten"
    );
    assert_eq!(
        std::fs::read(sim.work.path().join("late.mp4")).expect("read"),
        b"not mine",
        "an existing file is never overwritten"
    );
}

/// A job whose file appeared meanwhile: `jobs --resume` keeps that file
/// (and the job), `jobs --resume --overwrite` replaces it with the video.
#[test]
fn resume_with_overwrite_replaces_the_file_that_appeared() {
    let sim = Sim::faults("status:500x4@1");
    prepare(&sim);
    let out = sim
        .nemo()
        .args(["export", "--out", "late.mp4"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(recorded(&sim).len(), 1, "the job stays recorded");
    let late = sim.work.path().join("late.mp4");
    std::fs::write(&late, b"precious").expect("write");

    let out = sim.nemo().args(["jobs", "--resume"]).output().expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(std::fs::read(&late).expect("late"), b"precious");
    assert_eq!(recorded(&sim).len(), 1, "the job is kept");

    sim.nemo()
        .args(["jobs", "--resume", "--overwrite"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Saved"));
    assert_eq!(
        std::fs::read(&late).expect("late"),
        nemo_mock::media::SAMPLE_MP4,
        "replaced by the video"
    );
    assert!(recorded(&sim).is_empty(), "released after the download");
}
