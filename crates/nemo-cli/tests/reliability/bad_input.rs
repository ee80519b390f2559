//! The bad-input table: what a user can hand over wrongly. Each case ends
//! with exit 1 and one clear `error:` line, and the simulator's journal shows
//! that nothing was sent that should not have been.

use std::ffi::OsString;
use std::fmt::Write as _;

use crate::support::{message_problem, parallel, width, Run, Sim};

/// One bad input.
struct Case {
    name: &'static str,
    /// Prepares the folders and returns the arguments (or a reason to skip).
    prepare: fn(&Sim) -> Result<Vec<OsString>, String>,
    /// Expected exit code.
    code: i32,
    /// Words the error must contain (case-insensitive).
    says: &'static str,
    /// How many requests may reach the simulator.
    max_requests: usize,
    /// Extra environment.
    env: fn(&Sim) -> Vec<(String, OsString)>,
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn no_env(_: &Sim) -> Vec<(String, OsString)> {
    Vec::new()
}

fn write(sim: &Sim, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = sim.work.path().join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

#[cfg(unix)]
fn unreadable(sim: &Sim) -> Result<Vec<OsString>, String> {
    use std::os::unix::fs::PermissionsExt;
    if crate::support::is_root() {
        // Root reads a mode-000 file: make the open fail differently, with a
        // path that goes through a file as if it were a folder (ENOTDIR).
        write(sim, "clip.mp4", b"x");
        println!("  (running as root, which reads mode-000 files: unreadable = a path through a file, clip.mp4/inner.mp4)");
        return Ok(os(&["upload", "clip.mp4/inner.mp4"]));
    }
    let p = write(sim, "locked.mp4", nemo_mock::media::SAMPLE_MP4);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    Ok(os(&["upload", "locked.mp4"]))
}

#[cfg(unix)]
fn symlink_loop(sim: &Sim) -> Result<Vec<OsString>, String> {
    let a = sim.work.path().join("a.mp4");
    let b = sim.work.path().join("b.mp4");
    std::os::unix::fs::symlink(&b, &a).expect("symlink");
    std::os::unix::fs::symlink(&a, &b).expect("symlink");
    Ok(os(&["upload", "a.mp4"]))
}

#[cfg(unix)]
fn fifo(sim: &Sim) -> Result<Vec<OsString>, String> {
    let p = sim.work.path().join("pipe.mp4");
    let status = std::process::Command::new("mkfifo").arg(&p).status();
    if !status.is_ok_and(|s| s.success()) {
        return Err("mkfifo is not available".into());
    }
    Ok(os(&["upload", "pipe.mp4"]))
}

#[cfg(unix)]
fn non_utf8(sim: &Sim, exists: bool, flag: bool) -> Result<Vec<OsString>, String> {
    use std::os::unix::ffi::OsStringExt;
    let name = OsString::from_vec(b"clip-\xff\xfe.mp4".to_vec());
    if exists {
        let p = sim.work.path().join(&name);
        if std::fs::write(&p, nemo_mock::media::SAMPLE_MP4).is_err() {
            return Err("the file system refuses non-UTF-8 names".into());
        }
    }
    let mut args = if flag {
        os(&["say", "add music", "--file"])
    } else {
        os(&["upload"])
    };
    args.push(name);
    Ok(args)
}

fn sparse(sim: &Sim) -> Result<Vec<OsString>, String> {
    let p = sim.work.path().join("huge.mp4");
    let f = std::fs::File::create(&p).expect("create");
    // 600 MB of nothing: no disk space used on file systems with holes.
    f.set_len(600 * 1024 * 1024)
        .map_err(|e| format!("set_len: {e}"))?;
    Ok(os(&["upload", "huge.mp4"]))
}

fn cases() -> Vec<Case> {
    let case = |name, prepare, says, max_requests| Case {
        name,
        prepare,
        code: 1,
        says,
        max_requests,
        env: no_env,
    };
    let mut v = vec![
        case(
            "missing file",
            |_| Ok(os(&["upload", "nope.mp4"])),
            "no file at nope.mp4",
            0,
        ),
        case(
            "missing --file of run",
            |_| Ok(os(&["run", "add music", "--file", "nope.mp4"])),
            "no file",
            0,
        ),
        case(
            "directory",
            |s| {
                std::fs::create_dir(s.work.path().join("clips")).expect("mkdir");
                Ok(os(&["upload", "clips"]))
            },
            "is a folder",
            0,
        ),
        case(
            "unsupported extension",
            |s| {
                write(s, "notes.txt", b"hello");
                Ok(os(&["upload", "notes.txt"]))
            },
            "accepted formats",
            0,
        ),
        case(
            "no extension",
            |s| {
                write(s, "clip", nemo_mock::media::SAMPLE_MP4);
                Ok(os(&["upload", "clip"]))
            },
            "accepted formats",
            0,
        ),
        case(
            "empty file",
            |s| {
                write(s, "empty.mp4", b"");
                Ok(os(&["upload", "empty.mp4"]))
            },
            "is empty",
            0,
        ),
        case("sparse file over 500 MB", sparse, "500 mb", 0),
        case(
            "malformed URL (scheme only)",
            |_| Ok(os(&["upload", "https://"])),
            "not a web address",
            0,
        ),
        case(
            "malformed URL (ftp)",
            |_| Ok(os(&["say", "add this", "--url", "ftp://example.com/a.mp4"])),
            "not a web address",
            0,
        ),
        case(
            "malformed URL (space)",
            |_| {
                Ok(os(&[
                    "run",
                    "add this",
                    "--url",
                    "https://exa mple.com/a.mp4",
                ]))
            },
            "not a web address",
            0,
        ),
        case(
            "broken batch manifest (TOML)",
            |s| {
                write(
                    s,
                    "batch.toml",
                    b"instruction = \"x\"\n[[items]\ninputs = [",
                );
                Ok(os(&["batch", "batch.toml"]))
            },
            "not a valid toml manifest",
            0,
        ),
        case(
            "broken batch manifest (JSON)",
            |s| {
                write(
                    s,
                    "batch.json",
                    b"{\"items\": [{\"inputs\": [\"a.mp4\"], \"bogus\": 1}]}",
                );
                Ok(os(&["batch", "batch.json"]))
            },
            "not a valid json manifest",
            0,
        ),
        case(
            "batch manifest with no items",
            |s| {
                write(s, "batch.toml", b"instruction = \"x\"\nitems = []\n");
                Ok(os(&["batch", "batch.toml"]))
            },
            "no items",
            0,
        ),
        case(
            "batch manifest missing",
            |_| Ok(os(&["batch", "nope.toml"])),
            "cannot read the manifest",
            0,
        ),
        case(
            "batch item with a missing input",
            |s| {
                write(
                    s,
                    "batch.toml",
                    b"instruction = \"x\"\n[[items]]\ninputs = [\"nope.mp4\"]\noutput = \"o.mp4\"\n",
                );
                Ok(os(&["batch", "batch.toml"]))
            },
            "no file",
            0,
        ),
        case(
            "unknown --skill",
            |_| Ok(os(&["--skill", "video-magic", "credits"])),
            "unknown skill `video-magic`",
            0,
        ),
        case(
            "unknown NEMO_SKILL",
            |_| Ok(os(&["credits"])),
            "unknown skill",
            0,
        ),
        case(
            "config dir is a file",
            |_| Ok(os(&["credits"])),
            "nemo_config_dir",
            0,
        ),
        case(
            "NEMO_API_URL malformed",
            |_| Ok(os(&["credits"])),
            "nemo_api_url",
            0,
        ),
    ];
    v[16].env = |_| vec![("NEMO_SKILL".into(), "video-magic".into())];
    v[17].env = |s| {
        let file = s.work.path().join("not-a-dir");
        std::fs::write(&file, b"oops").expect("write");
        vec![("NEMO_CONFIG_DIR".into(), file.into_os_string())]
    };
    v[18].env = |_| vec![("NEMO_API_URL".into(), "localhost:8080".into())];
    #[cfg(unix)]
    {
        v.push(case("unreadable file", unreadable, "cannot read", 0));
        v.push(case("symlink loop", symlink_loop, "symbolic links", 0));
        v.push(case(
            "not a regular file (FIFO)",
            fifo,
            "not a regular file",
            0,
        ));
        v.push(case(
            "non-UTF-8 path (upload)",
            |s| non_utf8(s, false, false),
            "invalid utf-8",
            0,
        ));
        v.push(case(
            "non-UTF-8 path, missing (--file)",
            |s| non_utf8(s, false, true),
            "no file",
            0,
        ));
    }
    v
}

/// Damaged files in a config dir that exists: moved aside (kept byte for
/// byte, never overwritten) with a warning that names them, never a crash.
#[test]
fn corrupt_config_files_are_reported_and_moved_aside() {
    let sim = Sim::faults("");
    sim.sample();
    std::fs::create_dir_all(sim.cfg.path()).expect("mkdir");
    for name in ["tokens.json", "sessions.json"] {
        std::fs::write(sim.cfg.path().join(name), b"{not json").expect("write");
    }
    std::fs::write(sim.cfg.path().join("client_id"), b"\xff\xfe\n").expect("write");
    let r = sim.run(&["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    for name in ["tokens.json", "sessions.json", "client_id"] {
        assert!(
            r.stderr.contains(&format!("{name} is damaged")),
            "{name}: {}",
            r.both()
        );
        let aside = std::fs::read_dir(sim.cfg.path())
            .expect("ls")
            .filter_map(Result::ok)
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{name}.corrupt-"))
            })
            .unwrap_or_else(|| panic!("{name} moved aside"));
        let kept = std::fs::read(aside.path()).expect("read");
        assert!(
            kept == b"{not json" || kept == b"\xff\xfe\n",
            "{name} kept as it was"
        );
    }
    let r = sim.run(&["credits"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(!r.stderr.contains("damaged"), "rewritten: {}", r.both());
}

#[test]
fn bad_input_table() {
    let cases = cases();
    let results = parallel(&cases, width(), |c| {
        let sim = Sim::faults("");
        sim.sample();
        let args = match (c.prepare)(&sim) {
            Ok(a) => a,
            Err(reason) => return (None, reason, 0),
        };
        let mut cmd = sim.nemo();
        for (k, v) in (c.env)(&sim) {
            cmd.env(k, v);
        }
        cmd.args(&args);
        let run = Run::of(cmd);
        let requests = sim.journal().len();
        let mut problems = Vec::new();
        if run.code != Some(c.code) {
            problems.push(format!("exit {:?}, expected {}", run.code, c.code));
        }
        if requests > c.max_requests {
            problems.push(format!("{requests} requests reached the simulator"));
        }
        let errors = run.error_lines();
        if errors.len() != 1 {
            problems.push(format!("{} error lines", errors.len()));
        }
        let all = format!("{}{}", run.stderr, run.stdout).to_lowercase();
        if !all.contains(&c.says.to_lowercase()) {
            problems.push(format!("the error does not say `{}`", c.says));
        }
        if let Some(p) = message_problem(&run) {
            problems.push(p);
        }
        if !run.stdout.is_empty() && args.first().is_none_or(|a| a != "batch") {
            problems.push("stdout is not empty".into());
        }
        let detail = errors.last().map(|e| e.to_string()).unwrap_or_default();
        if problems.is_empty() {
            (Some(true), detail, requests)
        } else {
            (
                Some(false),
                format!("{}\n{}", problems.join("; "), run.both()),
                requests,
            )
        }
    });
    let mut table = String::new();
    let mut failed = Vec::new();
    let mut passes = 0;
    let mut skipped = 0;
    for (c, (ok, detail, requests)) in cases.iter().zip(&results) {
        let status = match ok {
            Some(true) => {
                passes += 1;
                "pass"
            }
            Some(false) => {
                failed.push(format!("=== {}: {detail}", c.name));
                "FAIL"
            }
            None => {
                skipped += 1;
                "skip"
            }
        };
        let first = detail.lines().next().unwrap_or("");
        let _ = writeln!(
            table,
            "{:<36} {:>4} {:>4}  {status}  {}",
            c.name,
            c.code,
            requests,
            &first[..first.len().min(110)]
        );
    }
    let _ = writeln!(
        table,
        "bad inputs: {} cases, {passes} passed, {skipped} skipped",
        cases.len()
    );
    println!("{table}");
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A journal written by the previous version, holding ids the server
/// renamed that are safe in a URL but not as a file name on every system
/// (`render:1`, `abc.`): `nemo jobs` lists them (exit 0) and `jobs forget`
/// drops one; nothing is moved aside. Before: the whole journal was moved
/// to `jobs.json.corrupt-*` with exit 1 and every render in it dropped out.
#[test]
fn a_journal_from_the_previous_version_is_kept() {
    let sim = Sim::faults("");
    std::fs::create_dir_all(sim.cfg.path()).expect("mkdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sim.cfg.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
    }
    let jobs: Vec<_> = ["render:1", "abc.", "render_2"]
        .iter()
        .map(
            |id| serde_json::json!({"id": id, "session_id": "s1", "api_url": "http://127.0.0.1:9"}),
        )
        .collect();
    let path = sim.cfg.path().join("jobs.json");
    std::fs::write(&path, serde_json::json!({ "jobs": jobs }).to_string()).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let r = sim.run(&["jobs"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    for id in ["render:1", "abc.", "render_2"] {
        assert!(r.stdout.contains(id), "{id}: {}", r.both());
    }
    let r = sim.run(&["jobs", "forget", "render:1"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let r = sim.run(&["--json", "jobs"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(!r.stdout.contains("render:1"), "{}", r.both());
    assert!(r.stdout.contains("abc."), "{}", r.both());
    let aside = std::fs::read_dir(sim.cfg.path())
        .expect("ls")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("corrupt"));
    assert!(!aside, "nothing moved aside");
}
