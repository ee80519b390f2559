//! A render is journalled before its request leaves, and a `nemo` killed
//! while it waits (SIGKILL: no clean-up at all) loses nothing: the job stays
//! in `jobs.json`, no partial file sits under the final name, and
//! `nemo jobs --resume` finishes it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nemo_core::wire::Endpoint;

use crate::support::Sim;

fn wait_for(sim: &Sim, endpoint: Endpoint) -> Option<nemo_mock::JournalEntry> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(e) = sim
            .journal()
            .into_iter()
            .find(|e| e.endpoint == Some(endpoint))
        {
            return Some(e);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn a_killed_export_loses_no_render() {
    // The first status poll hangs for 300 simulated seconds (3 s real).
    let sim = Sim::faults("status:delay=300s@1;seed=3");
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{}", r.both());
    }
    let mut child = sim
        .nemo()
        .args(["export", "--out", "final.mp4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // When the submit reaches the simulator, the job is already on disk.
    let submit = wait_for(&sim, Endpoint::RenderSubmit).expect("a render was submitted");
    let id = submit
        .json()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .expect("render id");
    assert!(
        sim.local_jobs().contains(&id),
        "render {id} reached the server before it was in jobs.json"
    );
    // Kill it while it polls.
    wait_for(&sim, Endpoint::RenderStatus).expect("a status poll");
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(sim.local_jobs().contains(&id), "the job survived the kill");
    assert!(
        !sim.work.path().join("final.mp4").exists(),
        "no file under the final name before it is complete"
    );
    // Finished later, to the recorded place.
    let r = sim.run(&["jobs", "--resume"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let file = std::fs::read(sim.work.path().join("final.mp4")).expect("downloaded");
    assert_eq!(file, nemo_mock::media::SAMPLE_MP4);
    assert!(sim.local_jobs().is_empty(), "{:?}", sim.local_jobs());
    // Only one render was ever submitted for it.
    let submits = sim
        .journal()
        .iter()
        .filter(|e| e.endpoint == Some(Endpoint::RenderSubmit))
        .count();
    assert_eq!(submits, 1);
}

#[test]
fn a_download_killed_half_way_leaves_no_final_file() {
    // A large output (64 MiB, generated) served slowly: kill mid-download.
    let sim = Sim::start(nemo_mock::MockConfig {
        render_bytes: Some(64 << 20),
        faults: nemo_mock::FaultPlan::parse("seed=5").expect("plan"),
        ..nemo_mock::MockConfig::fast()
    });
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{}", r.both());
    }
    let mut child = sim
        .nemo()
        .args(["export", "--out", "big.mp4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let download = wait_for(&sim, Endpoint::Download);
    assert!(download.is_some(), "the download started");
    // Let some bytes arrive, then kill.
    std::thread::sleep(Duration::from_millis(20));
    child.kill().expect("kill");
    let _ = child.wait();
    let dest = sim.work.path().join("big.mp4");
    if dest.exists() {
        // The kill came after the rename: then it must be whole.
        println!("killed after the download");
        let len = std::fs::metadata(&dest).expect("metadata").len();
        assert_eq!(len, 64 << 20, "a partial file under the final name");
    } else {
        // The call's own temporary file: `.big.mp4.<random>.part`.
        let held: u64 = std::fs::read_dir(sim.work.path())
            .expect("work dir")
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(".big.mp4.") && name.ends_with(".part")
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "killed mid-download: {held} of {} bytes in .big.mp4.<random>.part",
            64 << 20
        );
        assert!(
            !sim.local_jobs().is_empty(),
            "the job is kept until the file is whole"
        );
        let r = sim.run(&["jobs", "--resume"]);
        assert_eq!(r.code, Some(0), "{}", r.both());
        let len = std::fs::metadata(&dest).expect("downloaded").len();
        assert_eq!(len, 64 << 20);
        let bytes = std::fs::read(&dest).expect("read");
        for off in [0u64, 1 << 20, (64 << 20) - 1] {
            assert_eq!(bytes[off as usize], nemo_mock::media::generated_byte(off));
        }
    }
    assert!(sim.local_jobs().is_empty());
}
