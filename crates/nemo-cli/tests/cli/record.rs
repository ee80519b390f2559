//! `--record FILE.har` and `nemo replay FILE.har [--check]`: a session
//! recorded over HTTP replays offline, with no token in the file.

use crate::support::{mode, text, Sim};

#[test]
fn a_recorded_session_replays_offline_and_checks() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let har = sim.work.path().join("session.har");
    let out = sim
        .nemo()
        .arg("--record")
        .arg(&har)
        .args([
            "run",
            "add lo-fi background music at 35%",
            "--out",
            "final.mp4",
            "--file",
        ])
        .arg(&sample)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&har), 0o600, "a recording is private");

    // No credential survives in the file.
    let recorded = std::fs::read_to_string(&har).expect("har");
    let tokens = std::fs::read_to_string(sim.cfg_file("tokens.json")).expect("token cache");
    let token = tokens
        .split('"')
        .find(|s| s.starts_with("nmv_usr_"))
        .expect("a cached token")
        .to_owned();
    assert!(
        !recorded.contains(&token),
        "the bearer token leaked into the recording"
    );
    let client_id = std::fs::read_to_string(sim.cfg_file("client_id")).expect("client id");
    assert!(
        !recorded.contains(client_id.trim()),
        "the client id leaked into the recording"
    );
    assert!(
        !recorded.contains("clm_"),
        "a claim token leaked into the recording"
    );

    // Replayed with no simulator at all: the same conversation, the same requests.
    let keep = tempfile::tempdir().expect("dir");
    let har = keep.path().join("session.har");
    std::fs::write(&har, &recorded).expect("copy");
    drop(sim);
    let out = crate::support::nemo()
        .current_dir(har.parent().expect("dir"))
        .arg("replay")
        .arg(&har)
        .arg("--check")
        .output()
        .expect("replay");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("35%"), "{stdout}");
    assert!(
        text(&out.stderr).contains("check passed"),
        "{}",
        text(&out.stderr)
    );

    // A tampered recording fails the check with a readable difference.
    let tampered = har.with_file_name("tampered.har");
    // Only the recorded request's body changes, not the user's turn.
    let sent = r#"\"text\":\"add lo-fi background music at 35%\""#;
    assert!(recorded.contains(sent), "the message is recorded");
    std::fs::write(
        &tampered,
        recorded.replace(sent, r#"\"text\":\"add jazz\""#),
    )
    .expect("write");
    let out = crate::support::nemo()
        .arg("replay")
        .arg(&tampered)
        .arg("--check")
        .output()
        .expect("replay");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("differ"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_corrupt_recording_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.har");
    std::fs::write(&bad, "{not json").expect("write");
    let out = crate::support::nemo()
        .arg("replay")
        .arg(&bad)
        .output()
        .expect("replay");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Cannot read the recording"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_recording_path_that_cannot_be_written_fails_before_anything_is_sent() {
    let sim = Sim::fast();
    let sample = sim.sample();
    for bad in ["missing/session.har", "."] {
        let out = sim
            .nemo()
            .arg("--record")
            .arg(bad)
            .args(["run", "add a title", "--out", "final.mp4", "--file"])
            .arg(&sample)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--record"),
            "{}",
            text(&out.stderr)
        );
        assert!(sim.journal().is_empty(), "{bad}: nothing was sent");
        assert!(!sim.work.path().join("final.mp4").exists());
    }
}

/// `nemo --record RECORD run "add a title" --file SAMPLE REST…` exits 1
/// naming `--record`, and the simulator saw no request. Its stderr.
fn record_is_refused_before_anything_is_sent(
    sim: &Sim,
    sample: &std::path::Path,
    record: &str,
    rest: &[&str],
) -> String {
    let out = sim
        .nemo()
        .arg("--record")
        .arg(record)
        .args(["run", "add a title", "--file"])
        .arg(sample)
        .args(rest)
        .output()
        .expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{record} {rest:?}: {stderr}");
    assert!(stderr.contains("--record"), "{record} {rest:?}: {stderr}");
    assert!(
        sim.journal().is_empty(),
        "{record} {rest:?}: nothing was sent"
    );
    stderr
}

/// `--record` never replaces a file: not an existing one (the video of an
/// earlier export, an input), nor the `--out` of the same command. Before:
/// `run … --out v.mp4 --record v.mp4` paid for the render, printed "Saved
/// v.mp4", then wrote the recording over the video; an existing file was
/// replaced at the end.
#[test]
fn a_recording_never_replaces_a_file() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let video = sim.work.path().join("v.mp4");
    std::fs::write(&video, b"an earlier video").expect("write");
    let cases: [(&str, &[&str]); 4] = [
        // An existing file.
        ("v.mp4", &["--out", "final.mp4"]),
        // An input of the command.
        ("sample.mp4", &["--out", "final.mp4"]),
        // The command's own output, not there yet.
        ("new.mp4", &["--out", "new.mp4"]),
        ("./new.mp4", &["-o", "new.mp4"]),
    ];
    for (record, rest) in cases {
        let stderr = record_is_refused_before_anything_is_sent(&sim, &sample, record, rest);
        assert!(!sim.work.path().join("final.mp4").exists());
        assert!(
            !sim.work.path().join("new.mp4").exists(),
            "{record}: {stderr}"
        );
    }
    assert_eq!(std::fs::read(&video).expect("video"), b"an earlier video");
    assert_eq!(
        std::fs::read(&sample).expect("sample"),
        nemo_mock::media::SAMPLE_MP4
    );
}

/// The same file named another way is still found, as the command line's
/// parser reads it: a short option's attached value (`-ov.mp4`), a `..`
/// past a linked folder (the OS follows the link, then goes up), and a
/// recording named `*.mp4` in the folder `--out` saves the video into.
/// Before: only `--out FILE`, `--out=FILE` and lexical paths were compared,
/// so these were sent, paid for, and the recording then failed.
#[test]
#[cfg(unix)]
fn a_recording_named_like_the_output_in_any_spelling_is_refused() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let work = sim.work.path();
    std::fs::create_dir_all(work.join("sub/deeper")).expect("dirs");
    std::os::unix::fs::symlink(work.join("sub/deeper"), work.join("link")).expect("link");
    std::fs::create_dir_all(work.join("videos")).expect("dir");
    let cases: [(&str, &[&str]); 4] = [
        ("v.mp4", &["-ov.mp4"]),
        ("v.mp4", &["-o=v.mp4"]),
        // link/.. is sub/, not the current folder.
        ("link/../v.mp4", &["--out", "sub/v.mp4"]),
        // The video would be videos/<render id>.mp4.
        ("videos/session.mp4", &["--out", "videos"]),
    ];
    for (record, rest) in cases {
        record_is_refused_before_anything_is_sent(&sim, &sample, record, rest);
    }
    // A recording beside the output, under its own name, is fine.
    let out = sim
        .nemo()
        .args(["--record", "videos/session.har", "credits"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
