//! Several real `nemo` processes at once on one config folder: one
//! identity for all first runs, one winner for one output file, and a render
//! that one process waits for is left alone by `nemo jobs --resume` in
//! another.
//!
//! Every test here fails on the code before issue 12 was fixed (235b64d):
//! each says how in its comment.

use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nemo_core::wire::Endpoint;
use nemo_mock::{FaultPlan, MockConfig};
use serde_json::Value;

use crate::hostile_server::{Hostile, Req, Resp};
use crate::support::{Run, Sim};

/// Runs `n` processes made by `make` at once (one thread each, started
/// together); results in start order.
fn at_once(n: usize, make: impl Fn() -> std::process::Command + Sync) -> Vec<Run> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, make) = (&barrier, &make);
                s.spawn(move || {
                    let cmd = make();
                    barrier.wait();
                    Run::of(cmd)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a runner thread"))
            .collect()
    })
}

fn count(sim: &Sim, endpoint: Endpoint) -> usize {
    sim.journal()
        .iter()
        .filter(|e| e.endpoint == Some(endpoint))
        .count()
}

/// Six first runs at once on a fresh config folder. Before: each minted its
/// own client id and fetched its own free token and session (four sessions
/// orphaned; some runs failed with "a free token was already issued").
#[test]
fn parallel_first_runs_share_one_identity() {
    for (args, sessions) in [(&["upload", "sample.mp4"][..], 1), (&["credits"][..], 1)] {
        let mut sim = Sim::faults("seed=3");
        // A config folder nemo creates itself, as on a fresh machine.
        sim.cfg_dir = sim.cfg.path().join("nemovideo");
        sim.sample();
        let runs = at_once(6, || {
            let mut cmd = sim.nemo();
            cmd.args(args);
            cmd
        });
        for r in &runs {
            assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
        }
        assert_eq!(
            count(&sim, Endpoint::AnonymousToken),
            1,
            "{args:?}: one free token for the machine"
        );
        assert!(
            count(&sim, Endpoint::CreateSession) <= sessions,
            "{args:?}: {} sessions created",
            count(&sim, Endpoint::CreateSession)
        );
        if args[0] == "upload" {
            assert_eq!(count(&sim, Endpoint::CreateSession), 1);
            assert_eq!(count(&sim, Endpoint::Upload), 6);
            // Every upload went into that one session.
            let sids: std::collections::BTreeSet<String> = sim
                .journal()
                .iter()
                .filter(|e| e.endpoint == Some(Endpoint::Upload))
                .map(|e| e.path.clone())
                .collect();
            assert_eq!(sids.len(), 1, "{sids:?}");
        }
        let id = std::fs::read_to_string(sim.cfg_dir.join("client_id")).expect("client id");
        assert!(!id.trim().is_empty());
        let tokens: Value = serde_json::from_str(
            &std::fs::read_to_string(sim.cfg_dir.join("tokens.json")).expect("tokens"),
        )
        .expect("tokens.json is JSON");
        assert_eq!(tokens.as_object().map(|m| m.len()), Some(1), "{tokens}");
    }
}

/// Two exports to the same `--out` at once, on one session, their downloads
/// held by the server until both have asked (so both start before either
/// file is in place). Before: both wrote one shared `.<out>.part` (create +
/// truncate) and each could print "Saved" with exit 0 for bytes the other
/// wrote.
fn race_two_exports() -> (Sim, Hostile, Vec<Run>) {
    let sim = Sim::faults("seed=5");
    // The download answers wait (at most 10 s) until both were asked for.
    let gate = Arc::new((Mutex::new(0usize), Condvar::new()));
    let proxy = Hostile::start(&sim.url(), {
        let gate = gate.clone();
        move |req: &Req, resp: Resp| {
            if req.kind() == "download" {
                let (count, cv) = &*gate;
                let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                cv.notify_all();
                let _ = cv
                    .wait_timeout_while(n, Duration::from_secs(10), |n| *n < 2)
                    .unwrap_or_else(|p| p.into_inner());
            }
            resp
        }
    });
    sim.sample();
    let via = |args: &[&str]| {
        let mut cmd = sim.nemo();
        cmd.env("NEMO_API_URL", proxy.url()).args(args);
        cmd
    };
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = Run::of(via(args));
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
    let runs = at_once(2, || via(&["export", "--out", "same.mp4"]));
    (sim, proxy, runs)
}

#[test]
fn two_exports_to_one_file_one_wins_the_other_says_so() {
    let (sim, proxy, runs) = race_two_exports();
    let downloads = proxy.seen().iter().filter(|s| s.kind == "download").count();
    assert_eq!(downloads, 2, "both downloads ran");
    let saved = |r: &Run| r.stdout.contains("Saved") || r.stderr.contains("Saved");
    let winners: Vec<&Run> = runs.iter().filter(|r| r.code == Some(0)).collect();
    let losers: Vec<&Run> = runs.iter().filter(|r| r.code != Some(0)).collect();
    assert_eq!(
        (winners.len(), losers.len()),
        (1, 1),
        "{}\n\n{}",
        runs[0].both(),
        runs[1].both()
    );
    assert!(saved(winners[0]), "{}", winners[0].both());
    let loser = losers[0];
    assert!(!saved(loser), "a false \"Saved\": {}", loser.both());
    assert!(
        loser.stderr.contains("appeared"),
        "the loser says the file appeared meanwhile: {}",
        loser.both()
    );
    println!(
        "loser: exit {:?}: {}",
        loser.code,
        loser.error_lines().join(" / ")
    );
    let bytes = std::fs::read(sim.work.path().join("same.mp4")).expect("the winner's file");
    assert_eq!(bytes, nemo_mock::media::SAMPLE_MP4, "a complete copy");
    // No temporary file left behind by either.
    let left: Vec<String> = std::fs::read_dir(sim.work.path())
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The loser's render is still recorded, and can be saved elsewhere.
    assert_eq!(sim.local_jobs().len(), 1, "{:?}", sim.local_jobs());
    // Resumed to the same place, it is refused again (the job kept)…
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", proxy.url())
        .args(["jobs", "--resume"]);
    let r = Run::of(cmd);
    println!("resume: exit {:?}: {}", r.code, r.error_lines().join(" / "));
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("--overwrite"), "{}", r.both());
    assert_eq!(sim.local_jobs().len(), 1, "{:?}", sim.local_jobs());
    assert_eq!(
        std::fs::read(sim.work.path().join("same.mp4")).expect("kept"),
        nemo_mock::media::SAMPLE_MP4
    );
    // … and saved into another folder with `--dir`.
    std::fs::create_dir(sim.work.path().join("other")).expect("mkdir");
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", proxy.url())
        .args(["jobs", "--resume", "--dir", "other"]);
    let r = Run::of(cmd);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let copy = std::fs::read(sim.work.path().join("other").join("same.mp4")).expect("resumed");
    assert_eq!(copy, nemo_mock::media::SAMPLE_MP4);
    assert!(sim.local_jobs().is_empty(), "{:?}", sim.local_jobs());
}

/// The loser's message is one sentence after another and names the way to
/// save the render elsewhere (`nemo jobs --resume --dir DIR`) or over the
/// file (`--overwrite`).
#[test]
fn the_loser_of_a_race_is_told_what_to_do() {
    let (_sim, _proxy, runs) = race_two_exports();
    let loser = runs.iter().find(|r| r.code != Some(0)).expect("a loser");
    let error = loser.error_lines().join(" ");
    assert!(!error.contains("replaced The"), "{error}");
    // The CLI's own advice follows the error on a `hint:` line.
    let hint = loser
        .stderr
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_default();
    assert!(
        hint.contains("nemo jobs --resume --dir") && hint.contains("--overwrite"),
        "{error}\n{hint}"
    );
}

/// Waits (bounded) until the simulator has seen a request of `endpoint`.
fn wait_for(sim: &Sim, endpoint: Endpoint) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if count(sim, endpoint) > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `nemo export` waits for a slow render; meanwhile `nemo jobs` in another
/// process shows it running and `nemo jobs --resume` leaves it alone.
/// Before: `jobs --resume` took the render over (the two processes raced for
/// one file), and nothing showed that a live process was waiting for it.
#[test]
fn a_render_another_process_waits_for_is_left_alone() {
    let sim = Sim::start(MockConfig {
        // 500 simulated seconds: 5 s real at the fast time scale, ample
        // for the other processes to look at it while it runs.
        render_seconds: 500.0,
        faults: FaultPlan::parse("seed=5").expect("plan"),
        ..MockConfig::fast()
    });
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
    let mut child = sim
        .nemo()
        .args(["export", "--out", "final.mp4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    assert!(wait_for(&sim, Endpoint::RenderStatus), "the export polls");
    let ids = sim.local_jobs();
    assert_eq!(ids.len(), 1, "{ids:?}");

    // `nemo jobs` shows it as running, in both forms.
    let r = sim.run(&["--json", "jobs"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let listed: Vec<Value> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["type"] == "render")
        .collect();
    assert_eq!(listed.len(), 1, "{}", r.both());
    assert_eq!(listed[0]["id"], ids[0].as_str());
    assert_eq!(listed[0]["status"], "running", "{}", r.both());
    let r = sim.run(&["jobs"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains(&ids[0]) && l.contains("running")),
        "{}",
        r.both()
    );

    // `nemo jobs --resume` in another process leaves it alone.
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the export ended before --resume ran (make the render slower)"
    );
    let r = sim.run(&["jobs", "--resume"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stderr.contains("another nemo process is waiting for it")
            || r.stdout.contains("another nemo process is waiting for it"),
        "{}",
        r.both()
    );
    assert!(!r.stderr.contains("Resuming"), "{}", r.both());
    // Nor can it be forgotten under the waiting process's feet.
    let r = sim.run(&["jobs", "forget", &ids[0]]);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("another nemo process"), "{}", r.both());
    assert_eq!(sim.local_jobs(), ids);
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the render was still running while --resume ran (make it slower)"
    );

    // The first process finishes it.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("nemo export did not end in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let file = std::fs::read(sim.work.path().join("final.mp4")).expect("saved");
    assert_eq!(file, nemo_mock::media::SAMPLE_MP4);
    assert!(sim.local_jobs().is_empty(), "{:?}", sim.local_jobs());
    assert_eq!(count(&sim, Endpoint::Download), 1, "downloaded once");
    assert_eq!(count(&sim, Endpoint::RenderSubmit), 1);
}

/// `nemo jobs --resume` to a file that exists names the flags `jobs` has
/// (`--overwrite`, `--dir`), not `export`'s `--out`.
#[test]

fn resuming_into_a_taken_file_names_the_flags_of_jobs() {
    let (sim, proxy, _runs) = race_two_exports();
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", proxy.url())
        .args(["jobs", "--resume"]);
    let r = Run::of(cmd);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(!r.stderr.contains("--out"), "{}", r.both());
    assert!(r.stderr.contains("--dir"), "{}", r.both());
}
