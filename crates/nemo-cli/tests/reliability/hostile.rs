//! A hostile server and a hostile machine: one misbehaviour per class of
//! issue 12 ("Trust under fire"), each against the real `nemo` process.
//!
//! The server's lies come from [`Hostile`], a proxy in front of the
//! simulator that rewrites chosen answers (armed only for the command under
//! test, so the set-up runs clean): render and session ids that are paths,
//! an HTML page or a short body as the video, a download that always
//! breaks, an HTML 404 to a status poll, escape sequences in the agent's
//! text, the timeline, a URL and a claim token, a token that cannot travel
//! in a header, a token spelt with JSON escapes under `--record`. The
//! machine's come from the files: output paths that cannot take the render
//! (for `run`, `export`, `batch` and the MCP `export` tool), a link planted
//! at the old temporary name, a damaged or unwritable job journal, a config
//! folder that cannot be created, a `--record` path that cannot be written,
//! a stdout nobody reads.
//!
//! Every test here fails on the code before the issue was fixed (235b64d):
//! each says how in its comment.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nemo_core::wire::Endpoint;
use nemo_mock::{MockConfig, RenderShape};
use serde_json::{json, Value};

use crate::hostile_server::{Hostile, Req, Resp, Seen};
use crate::support::{message_problem, Run, Sim};

/// A switch: the proxy lies only once it is on.
#[derive(Clone, Default)]
struct Armed(Arc<AtomicBool>);

impl Armed {
    fn on(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn off(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
    fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `nemo ARGS` against the proxy instead of the simulator.
/// Uploads the sample cleanly, then arms the proxy and runs `say "add a
/// title"` through it: exit 0, and the agent's answer was rewritten.
fn say_through(sim: &Sim, proxy: &Hostile, armed: &Armed) -> Run {
    sim.sample();
    let r = via(sim, proxy, &["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    armed.on();
    let r = via(sim, proxy, &["say", "add a title"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.kind == "run_sse" && s.tampered),
        "the hostile text was sent"
    );
    r
}

fn via(sim: &Sim, proxy: &Hostile, args: &[&str]) -> Run {
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", proxy.url()).args(args);
    Run::of(cmd)
}

/// [`via`] with more environment variables.
fn via_env(sim: &Sim, proxy: &Hostile, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", proxy.url()).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(cmd)
}

/// Upload the sample and make an edit (through the proxy, unarmed).
fn edited_session(sim: &Sim, proxy: &Hostile) {
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = via(sim, proxy, args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
}

/// The render ids `nemo --json jobs` lists, with their status.
fn listed_jobs(sim: &Sim, api_url: &str) -> Vec<(String, String)> {
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", api_url).args(["--json", "jobs"]);
    let r = Run::of(cmd);
    assert_eq!(r.code, Some(0), "{}", r.both());
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "render")
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_owned(),
                v["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Prints the exit code and the error lines (for the table in
/// docs/RELIABILITY.md; `-- --nocapture`).
fn show(r: &Run) {
    println!("exit {:?}: {}", r.code, r.error_lines().join(" / "));
}

/// Names in a folder (hidden ones included).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// [`message_problem`], also accepting the advice these messages give that
/// the shared list of advice words does not know ("create it first", "give
/// --out a file name", "choose another path").
fn advice_problem(r: &Run) -> Option<String> {
    let problem = message_problem(r)?;
    let text = r.stderr.to_lowercase();
    let advice = [
        "create it",
        "give --out",
        "choose another",
        "make that folder",
    ];
    if problem.starts_with("the error does not say what to do")
        && advice.iter().any(|w| text.contains(w))
    {
        return None;
    }
    Some(problem)
}

/// How many requests of these endpoints the simulator saw.
fn spent(sim: &Sim) -> usize {
    sim.journal()
        .iter()
        .filter(|e| {
            matches!(
                e.endpoint,
                Some(Endpoint::Upload | Endpoint::RunSse | Endpoint::RenderSubmit)
            )
        })
        .count()
}

// ---------------------------------------------------------------------------
// Server-supplied identifiers
// ---------------------------------------------------------------------------

/// The render submit is answered with `{"success":true,"data":{"id":"../../x"}}`.
/// Before: the id was spliced into the status URL (`…/lambda/../../x`, which
/// URL parsing turns into `/api/render/x`: another endpoint) and became the
/// default output `../../x.mp4`.
#[test]
fn a_render_id_that_is_a_path_is_not_followed() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "render" {
                if let Some(mut v) = resp.json() {
                    v["data"]["id"] = json!("../../x");
                    resp.set_json(&v);
                }
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    // Two folders down, so that `../../x.mp4` would land in the working
    // folder where it can be seen.
    let deep = sim.work.path().join("a").join("b");
    std::fs::create_dir_all(&deep).expect("mkdir");
    let mut cmd = sim.nemo();
    cmd.env("NEMO_API_URL", proxy.url())
        .current_dir(&deep)
        .arg("export");
    let r = Run::of(cmd);
    show(&r);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(
        r.stderr.contains("not followed") && r.stderr.contains("../../x"),
        "the error names the refused id: {}",
        r.both()
    );
    for s in proxy.seen() {
        assert!(
            s.kind != "other" && !s.path.contains("..") && !s.path.ends_with("/x"),
            "a request outside the API: {} {}",
            s.method,
            s.path
        );
    }
    assert!(
        !sim.work.path().join("x.mp4").exists(),
        "the render id became a path"
    );
    assert!(names(&deep).is_empty(), "{:?}", names(&deep));
    assert_eq!(names(sim.work.path()), ["a", "sample.mp4"]);
}

/// The session-create answer names the session `../../x`. Before: it was
/// kept as the last session and spliced into every later URL
/// (`/api/upload-video/nemo_agent/me/../../x`, which URL parsing turns into
/// another endpoint).
#[test]
fn a_session_id_that_is_a_path_is_not_used() {
    let sim = Sim::faults("seed=3");
    let proxy = Hostile::start(&sim.url(), |req: &Req, mut resp: Resp| {
        if req.kind() == "session" {
            if let Some(mut v) = resp.json() {
                if v["data"]["session_id"].is_string() {
                    v["data"]["session_id"] = json!("../../x");
                    resp.set_json(&v);
                }
            }
        }
        resp
    });
    sim.sample();
    let r = via(&sim, &proxy, &["upload", "sample.mp4"]);
    show(&r);
    assert!(matches!(r.code, Some(1 | 2)), "{}", r.both());
    assert!(r.stderr.contains("session id"), "{}", r.both());
    let seen = proxy.seen();
    for s in &seen {
        assert!(
            s.kind != "other" && !s.path.contains(".."),
            "a request outside the API: {} {}",
            s.method,
            s.path
        );
    }
    assert!(
        !seen.iter().any(|s| s.kind == "upload"),
        "nothing uploaded into it"
    );
    let sessions = std::fs::read_to_string(sim.cfg_dir.join("sessions.json")).unwrap_or_default();
    assert!(!sessions.contains("../"), "kept: {sessions}");
}

// ---------------------------------------------------------------------------
// Downloads
// ---------------------------------------------------------------------------

/// How a test ends a job whose download was refused.
#[derive(Clone, Copy)]
enum Then {
    /// `nemo jobs --resume` once the server behaves: the file arrives.
    Resume,
    /// `nemo jobs forget <ID>`: the job goes (and an unknown id is an error).
    Forget,
}

/// After a refused download: nothing under the final name (nor a temporary
/// file left behind), a bounded number of download requests, the job still
/// listed; then it is resumed or forgotten.
fn refused_download_keeps_the_job(sim: &Sim, proxy: &Hostile, armed: &Armed, r: &Run, then: Then) {
    assert!(
        matches!(r.code, Some(1 | 2)),
        "a refused download is a failure: {}",
        r.both()
    );
    assert!(
        !r.stdout.contains("Saved") && !r.stderr.contains("Saved"),
        "{}",
        r.both()
    );
    assert!(
        advice_problem(r).is_none(),
        "{:?}: {}",
        advice_problem(r),
        r.both()
    );
    assert_eq!(
        names(sim.work.path()),
        ["sample.mp4"],
        "nothing under the final name, no temporary file left"
    );
    let downloads = proxy.seen().iter().filter(|s| s.kind == "download").count();
    println!("download requests: {downloads}");
    assert!(
        (1..=6).contains(&downloads),
        "{downloads} download requests"
    );
    let jobs = listed_jobs(sim, proxy.url());
    assert_eq!(jobs.len(), 1, "the job is kept: {jobs:?}");
    assert_eq!(jobs[0].1, "recorded", "{jobs:?}");
    armed.off();
    match then {
        Then::Resume => {
            let r = via(sim, proxy, &["jobs", "--resume"]);
            assert_eq!(r.code, Some(0), "{}", r.both());
            let file = std::fs::read(sim.work.path().join("final.mp4")).expect("resumed");
            assert_eq!(file, nemo_mock::media::SAMPLE_MP4);
        }
        Then::Forget => {
            let r = via(sim, proxy, &["jobs", "forget", "render_0_nope"]);
            assert_eq!(r.code, Some(1), "an unknown id: {}", r.both());
            let r = via(sim, proxy, &["jobs", "forget", &jobs[0].0]);
            assert_eq!(r.code, Some(0), "{}", r.both());
            assert!(
                r.stderr.contains("Forgot") || r.stdout.contains("Forgot"),
                "{}",
                r.both()
            );
            assert!(!sim.work.path().join("final.mp4").exists());
        }
    }
    assert!(listed_jobs(sim, proxy.url()).is_empty());
}

/// A link planted at the temporary name the old client used
/// (`.final.mp4.part`) pointing at another file. Before: the download
/// opened that name with create + truncate, followed the link and wrote the
/// video over the other file.
#[cfg(unix)]
#[test]
fn a_link_planted_at_the_old_temporary_name_is_not_followed() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
    let victim = sim.work.path().join("victim.txt");
    std::fs::write(&victim, b"precious").expect("write");
    let planted = sim.work.path().join(".final.mp4.part");
    std::os::unix::fs::symlink("victim.txt", &planted).expect("symlink");
    let r = sim.run(&["export", "--out", "final.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    assert!(std::fs::symlink_metadata(&planted)
        .expect("still there")
        .file_type()
        .is_symlink());
    let file = std::fs::read(sim.work.path().join("final.mp4")).expect("saved");
    assert_eq!(file, nemo_mock::media::SAMPLE_MP4);
}

/// Every download answer breaks after 256 KiB of a 4 MiB file (resumed
/// requests too). Before: a broken download was restarted from zero again
/// and again (4.8 GB received for one 200 MB export). Now: resumed with
/// `Range`, given up within a bounded number of requests and bytes, the
/// job kept for `nemo jobs --resume`.
#[test]
fn a_download_that_always_breaks_is_given_up_within_bounds() {
    const SIZE: usize = 4 << 20;
    const CUT: usize = 256 << 10;
    let sim = Sim::start(MockConfig {
        render_bytes: Some(SIZE as u64),
        ..MockConfig::fast()
    });
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "download" && resp.body.len() > CUT {
                resp.cut = Some(CUT);
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    let r = via(&sim, &proxy, &["export", "--out", "final.mp4"]);
    show(&r);
    assert!(matches!(r.code, Some(1 | 2)), "{}", r.both());
    assert!(
        advice_problem(&r).is_none(),
        "{:?}: {}",
        advice_problem(&r),
        r.both()
    );
    let downloads: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.kind == "download")
        .collect();
    let bytes: usize = downloads.iter().map(|s| s.sent).sum();
    println!(
        "download requests: {}, bytes received: {bytes} of a {SIZE}-byte file",
        downloads.len()
    );
    assert!(
        downloads.len() <= 12,
        "{} download requests",
        downloads.len()
    );
    assert!(bytes <= 2 * SIZE + (1 << 20), "{bytes} bytes received");
    assert_eq!(
        names(sim.work.path()),
        ["sample.mp4"],
        "nothing under the final name, no temporary file left"
    );
    assert_eq!(sim.local_jobs().len(), 1, "the job is kept");
    armed.off();
    let r = via(&sim, &proxy, &["jobs", "--resume"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let file = std::fs::read(sim.work.path().join("final.mp4")).expect("resumed");
    assert_eq!(file.len(), SIZE);
    for off in [0, SIZE / 2, SIZE - 1] {
        assert_eq!(file[off], nemo_mock::media::generated_byte(off as u64));
    }
}

/// The download is an HTML "Access denied" page served with 200. Before: it
/// was saved as `final.mp4`, exit 0, and the job was cleared.
#[test]
fn an_html_page_served_as_the_video_is_refused() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, resp: Resp| {
            if armed.is_on() && req.kind() == "download" {
                return Resp::new(
                    200,
                    "text/html; charset=utf-8",
                    "<!DOCTYPE html><html><head><title>Access denied</title></head>\
                     <body><h1>Access denied</h1><p>You do not have permission.</p></body></html>",
                );
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    let r = via(&sim, &proxy, &["export", "--out", "final.mp4"]);
    show(&r);
    assert!(
        r.stderr.contains("Access denied") || r.stderr.to_lowercase().contains("html"),
        "the error says what came instead of the video: {}",
        r.both()
    );
    refused_download_keeps_the_job(&sim, &proxy, &armed, &r, Then::Resume);
}

/// The render status reports the file's size (shape C), the download is half
/// of it with a matching `Content-Length`, and a request for the rest gets
/// 416 (the server really has only half). Before: the half file was saved
/// with exit 0 and the job cleared.
#[test]
fn a_download_shorter_than_the_reported_size_is_refused() {
    let sim = Sim::start(MockConfig {
        render_shape: RenderShape::C,
        ..MockConfig::fast()
    });
    let half = nemo_mock::media::SAMPLE_MP4.len() / 2;
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "download" {
                if req.header("range").is_some() {
                    let mut r = Resp::new(416, "text/plain", "");
                    r.set_header("content-range", &format!("bytes */{half}"));
                    return r;
                }
                resp.body.truncate(half);
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    let r = via(&sim, &proxy, &["export", "--out", "final.mp4"]);
    show(&r);
    refused_download_keeps_the_job(&sim, &proxy, &armed, &r, Then::Forget);
}

/// An export whose first status poll is answered with `status`,
/// `content_type` and `body` instead: the render is waited out, saved, and
/// leaves the journal.
fn one_status_poll_answered_with(status: u16, content_type: &'static str, body: &'static str) {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let proxy = Hostile::start(&sim.url(), {
        let (armed, polls) = (armed.clone(), polls.clone());
        move |req: &Req, resp: Resp| {
            if armed.is_on() && req.kind() == "status" && polls.fetch_add(1, Ordering::SeqCst) == 0
            {
                return Resp::new(status, content_type, body);
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    let r = via(&sim, &proxy, &["export", "--out", "final.mp4"]);
    show(&r);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.kind == "status" && s.status == status && s.tampered),
        "the answer was served"
    );
    assert!(polls.load(Ordering::SeqCst) >= 2, "polled again");
    let file = std::fs::read(sim.work.path().join("final.mp4")).expect("saved");
    assert_eq!(file, nemo_mock::media::SAMPLE_MP4);
    assert!(sim.local_jobs().is_empty(), "{:?}", sim.local_jobs());
}

/// One status poll is answered with a proxy's HTML 404 page. Before: the
/// client forgot the render at once (exit 1, job dropped) though it
/// completed.
#[test]
fn one_html_404_to_a_status_poll_is_waited_out() {
    one_status_poll_answered_with(
        404,
        "text/html",
        "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>",
    );
}

/// One status poll is answered with a gateway's bare JSend error, HTTP 200
/// `{"status":"error","message":"upstream request timeout"}`. Before: read
/// as the render's own status, "failed": exit 1, the job dropped from the
/// journal though the render completed.
#[test]
fn a_bare_jsend_error_to_a_status_poll_is_waited_out() {
    one_status_poll_answered_with(
        200,
        "application/json",
        r#"{"status":"error","message":"upstream request timeout"}"#,
    );
}

/// `say "add a title"` after an upload, the first `/run_sse` answered with
/// `status` and `body` (after the simulator took the message): the run, the
/// requests seen from the `say` on, and the streams the proxy answered.
fn say_with_the_first_stream_answered(status: u16, body: &'static str) -> (Run, Vec<Seen>, usize) {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let streams = Arc::new(AtomicUsize::new(0));
    let proxy = Hostile::start(&sim.url(), {
        let (armed, streams) = (armed.clone(), streams.clone());
        move |req: &Req, resp: Resp| {
            if armed.is_on()
                && req.kind() == "run_sse"
                && streams.fetch_add(1, Ordering::SeqCst) == 0
            {
                return Resp::new(status, "application/json", body);
            }
            resp
        }
    });
    sim.sample();
    let r = via(&sim, &proxy, &["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let before = proxy.seen().len();
    armed.on();
    let r = via(&sim, &proxy, &["say", "add a title"]);
    show(&r);
    let seen = proxy.seen()[before..].to_vec();
    (r, seen, streams.load(Ordering::SeqCst))
}

/// ADK's api_server answers a session it does not know with `404
/// {"detail":"Session not found"}` (its way of saying 1002). A remembered
/// session lost that way is replaced by a new one, and the message goes to
/// it. Before: "error: The server refused the run-sse request (HTTP 404):
/// Session not found", exit 1, no new session and no advice.
#[test]
fn adk_s_session_not_found_is_a_lost_session() {
    let (r, seen, _) = say_with_the_first_stream_answered(404, r#"{"detail":"Session not found"}"#);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let after: Vec<(&str, u16)> = seen
        .iter()
        .map(|s| (s.kind, s.status))
        .filter(|(k, _)| ["session", "run_sse"].contains(k))
        .collect();
    assert_eq!(
        after,
        [("run_sse", 404), ("session", 200), ("run_sse", 200)],
        "{}",
        r.both()
    );
}

/// The message's stream answered HTTP 200 `{"status":"error",…}` after the
/// agent took the message (a gateway's error): the server's own failure,
/// so the edit is looked for, never reported refused (the user would send
/// it again). Before the review fix: "refused the run-sse request", exit 1.
#[test]
fn a_jsend_error_for_the_stream_is_checked_not_refused() {
    let (r, _, streams) = say_with_the_first_stream_answered(
        200,
        r#"{"status":"error","message":"upstream request timeout"}"#,
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(!r.both().contains("refused"), "{}", r.both());
    assert_eq!(streams, 1, "never sent twice");
}

/// Status polls whose progress goes back (50, then 1) or is missing: the
/// progress `nemo --json export` reports never goes back within the render
/// and a missing one keeps the last value. Before: the events said 50, 1,
/// and the bar fell to 0 on a poll without progress.
#[test]
fn render_progress_shown_never_goes_back() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let proxy = Hostile::start(&sim.url(), {
        let (armed, polls) = (armed.clone(), polls.clone());
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "status" {
                let n = polls.fetch_add(1, Ordering::SeqCst);
                if let Some(mut v) = resp.json() {
                    let data = if v["data"].is_object() {
                        &mut v["data"]
                    } else {
                        &mut v
                    };
                    if data["status"] != "completed" && data["status"] != "done" {
                        match n {
                            0 => data["progress"] = json!(50),
                            1 => data["progress"] = json!(1),
                            _ => {
                                if let Some(o) = data.as_object_mut() {
                                    o.remove("progress");
                                }
                            }
                        }
                        resp.set_json(&v);
                    }
                }
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    let r = via(&sim, &proxy, &["--json", "export", "--out", "final.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let shown: Vec<f64> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "render" && v["status"] != "completed")
        .filter_map(|v| v["progress"].as_f64())
        .collect();
    assert!(shown.contains(&50.0), "{shown:?}: {}", r.both());
    assert!(
        shown.windows(2).all(|w| w[1] >= w[0]),
        "progress went back: {shown:?}"
    );
    assert!(polls.load(Ordering::SeqCst) >= 2, "at least two polls");
}

// ---------------------------------------------------------------------------
// The terminal
// ---------------------------------------------------------------------------

/// What the hostile agent prepends to every text it sends (JSON-escaped):
/// set the window title, clear the screen, go back to the start of the line
/// and forge a "Saved" line.
const ESCAPES: &str = r"\u001b]0;pwned\u0007\u001b[2J\u001b[31m\rSaved fake.mp4 ";

/// Agent text carrying escape sequences and a carriage return. Before: they
/// reached the terminal raw (ESC bytes on stdout, a line overwritten with
/// "Saved fake.mp4").
#[test]
fn escape_sequences_from_the_agent_never_reach_the_terminal() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "run_sse" {
                let from = br#"{"text":""#;
                let to = format!(r#"{{"text":"{ESCAPES}"#);
                resp.body = crate::hostile_server::replace(&resp.body, from, to.as_bytes());
            }
            if armed.is_on() && req.kind() == "state" {
                // Every text of the draft (the title's, the clip's name).
                let to = format!("My Video{ESCAPES}");
                resp.body = crate::hostile_server::replace(&resp.body, b"My Video", to.as_bytes());
            }
            resp
        }
    });
    let r = say_through(&sim, &proxy, &armed);
    assert!(
        r.stdout.contains("pwned") && r.stdout.contains("fake.mp4"),
        "the agent's text is shown (neutralised): {}",
        r.both()
    );
    assert_neutralised(&r);
    // The timeline's labels come from the server too.
    let r = via(&sim, &proxy, &["timeline"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        proxy.seen().iter().any(|s| s.kind == "state" && s.tampered),
        "the hostile draft was sent"
    );
    assert!(r.stdout.contains("pwned"), "{}", r.both());
    assert_neutralised(&r);
}

/// A title label padded with 60 spaces (and braille blanks) before a forged
/// "Saved" line. Before: the summary kept the padding, so on a terminal the
/// tail soft-wrapped to column 0 ("Saved /home/u/x.mp4 (12 MB)").
#[test]
fn a_padded_title_label_stays_one_short_line() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "state" {
                let to = format!(
                    "My Video{}{}Saved /home/u/x.mp4 (12 MB)",
                    " ".repeat(60),
                    "\u{2800}\u{3000}".repeat(10)
                );
                resp.body = crate::hostile_server::replace(&resp.body, b"My Video", to.as_bytes());
            }
            resp
        }
    });
    sim.sample();
    let r = via(&sim, &proxy, &["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let r = via(&sim, &proxy, &["say", "add a title"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    armed.on();
    let r = via(&sim, &proxy, &["timeline"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        proxy.seen().iter().any(|s| s.kind == "state" && s.tampered),
        "the padded draft was sent"
    );
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("x.mp4")).collect();
    assert!(!lines.is_empty(), "the label is shown: {}", r.both());
    for line in lines {
        assert!(
            line.contains("My Video Saved /home/u/x.mp4"),
            "the padding is one space: {line:?}"
        );
        assert!(!line.starts_with("Saved"), "{line:?}");
    }
}

/// The finished render's URL and the claim token carry escape sequences.
/// Before: `export --no-download` printed the URL raw ("Rendered: …").
#[test]
fn escape_sequences_in_urls_never_reach_the_terminal() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let proxy = Hostile::start(&sim.url(), {
        let armed = armed.clone();
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && matches!(req.kind(), "status" | "claim") {
                let text = String::from_utf8_lossy(&resp.body).into_owned();
                let text = text
                    .replace(".mp4\"", &format!(".mp4{ESCAPES}\""))
                    .replace("\"clm_", &format!("\"clm_{ESCAPES}"));
                resp.body = text.into_bytes();
            }
            resp
        }
    });
    edited_session(&sim, &proxy);
    armed.on();
    let r = via(&sim, &proxy, &["export", "--no-download"]);
    show(&r);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.kind == "status" && s.tampered),
        "the hostile URL was sent"
    );
    assert!(r.stdout.contains("pwned"), "the URL is shown: {}", r.both());
    assert_neutralised(&r);
}

/// No ESC, BEL or lone CR in the output, and no line that starts with a
/// forged "Saved" (at the start of a line, where nemo's own "Saved" lines
/// start; server text runs on past its first line indented).
fn assert_neutralised(r: &Run) {
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        for (c, what) in [('\u{1b}', "ESC"), ('\u{7}', "BEL"), ('\r', "CR")] {
            assert!(!text.contains(c), "{what} on {name}: {text:?}");
        }
        assert!(
            !text.lines().any(|l| l.starts_with("Saved")),
            "a forged line start on {name}: {text:?}"
        );
    }
}

/// A newline in the agent's text and in a server error message. Before:
/// `"ok\nSaved fake.mp4 (1 MB)"` printed a "Saved" line of its own on
/// stdout, and an error message with a newline did the same on stderr; a
/// reply that opened with "Saved …" passed for nemo's own line.
#[test]
fn newlines_from_the_server_never_forge_a_line() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    // 0: "ok\nSaved …" in the reply; 1: the reply opens with "Saved …".
    let opening = Arc::new(AtomicUsize::new(0));
    let proxy = Hostile::start(&sim.url(), {
        let (armed, opening) = (armed.clone(), opening.clone());
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "run_sse" {
                let from = br#"{"text":""#;
                let to = if opening.load(Ordering::SeqCst) == 0 {
                    r#"{"text":"ok\nSaved fake.mp4 (1 MB)\n"#
                } else {
                    r#"{"text":"Saved first.mp4 (1 MB)\n"#
                };
                resp.body = crate::hostile_server::replace(&resp.body, from, to.as_bytes());
            }
            if armed.is_on() && req.kind() == "credits" {
                return Resp::new(
                    200,
                    "application/json",
                    json!({"code": 4999, "message": "x\nSaved /home/u/final.mp4 (12 MB)"})
                        .to_string(),
                );
            }
            resp
        }
    });
    let r = say_through(&sim, &proxy, &armed);
    assert!(
        r.stdout.contains("Saved fake.mp4"),
        "the agent's text is shown: {}",
        r.both()
    );
    assert_neutralised(&r);
    opening.store(1, Ordering::SeqCst);
    let r = via(&sim, &proxy, &["say", "add a title"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stdout.contains("Saved first.mp4"),
        "the agent's text is shown: {}",
        r.both()
    );
    assert_neutralised(&r);
    let r = via(&sim, &proxy, &["credits"]);
    show(&r);
    assert_ne!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stderr.contains("Saved /home/u/final.mp4"),
        "the server's message is shown: {}",
        r.both()
    );
    assert_neutralised(&r);
}

/// Replies that open like one of nemo's own lines by other means than a
/// newline: an invisible format character before "Saved" (U+2060 word
/// joiner, a soft hyphen, a tag character), a Cyrillic look-alike, nemo
/// lines no list would hold ("→ …", "⏳ Still working…", "[reply cut
/// off]"), and a first line padded to the terminal's width so that a soft
/// wrap would put "Saved" at column 0. Server text never starts at column
/// 0: every line of it is indented, the first one too, and invisible
/// characters are shown escaped. Before: `"\u{2060}Saved fake.mp4"` printed
/// at column 0 and read exactly like nemo's "Saved" line.
#[test]
fn server_text_never_starts_at_column_zero() {
    let sim = Sim::faults("seed=3");
    let armed = Armed::default();
    let opening = Arc::new(std::sync::Mutex::new(String::new()));
    let proxy = Hostile::start(&sim.url(), {
        let (armed, opening) = (armed.clone(), opening.clone());
        move |req: &Req, mut resp: Resp| {
            if armed.is_on() && req.kind() == "run_sse" {
                let text = opening.lock().unwrap().clone();
                let quoted = serde_json::to_string(&format!("{text}\n")).unwrap();
                let to = format!(r#"{{"text":{}"#, &quoted[..quoted.len() - 1]);
                resp.body =
                    crate::hostile_server::replace(&resp.body, br#"{"text":""#, to.as_bytes());
            }
            resp
        }
    });
    sim.sample();
    let r = via(&sim, &proxy, &["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    armed.on();
    let padded = format!("fake{}Saved fake.mp4 (12.0 MB)", " ".repeat(36));
    for text in [
        "\u{2060}Saved fake.mp4 (12.0 MB)",
        "\u{ad}Saved fake.mp4 (12.0 MB)",
        "\u{e0020}Saved fake.mp4 (12.0 MB)",
        "\u{180e}\u{34f}\u{2061}Saved fake.mp4 (12.0 MB)",
        "\u{405}aved fake.mp4 (12.0 MB)",
        "→ fake: run nemo export --overwrite",
        "⏳ Still working… fake",
        "[reply cut off] fake",
        padded.as_str(),
    ] {
        *opening.lock().unwrap() = text.to_owned();
        let r = via_env(&sim, &proxy, &["say", "add a title"], &[("COLUMNS", "40")]);
        assert_eq!(r.code, Some(0), "{}", r.both());
        let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("fake")).collect();
        assert!(!lines.is_empty(), "the agent's text is shown: {}", r.both());
        for line in lines {
            assert!(
                line.starts_with("  "),
                "server text at column 0: {line:?} in {:?}",
                r.stdout
            );
            for c in [
                '\u{2060}',
                '\u{ad}',
                '\u{e0020}',
                '\u{180e}',
                '\u{34f}',
                '\u{2061}',
            ] {
                assert!(
                    !line.contains(c),
                    "an invisible {c:?} reached the terminal: {line:?}"
                );
            }
        }
        assert_neutralised(&r);
    }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// `nemo credits` on a fresh config folder, the anonymous-token endpoint
/// answering with a token holding a space, CR and LF.
fn unusable_token() -> (Sim, Hostile, Run) {
    let sim = Sim::faults("seed=3");
    let proxy = Hostile::start(&sim.url(), |req: &Req, mut resp: Resp| {
        if req.kind() == "token" {
            if let Some(mut v) = resp.json() {
                if v["data"]["token"].is_string() {
                    v["data"]["token"] = json!("nmv_usr_bad token\r\nX-Evil: 1");
                    resp.set_json(&v);
                }
            }
        }
        resp
    });
    let r = via(&sim, &proxy, &["credits"]);
    (sim, proxy, r)
}

/// The anonymous-token endpoint hands out a token with a space, CR and LF.
/// Before: it was cached in tokens.json and every later run failed until the
/// file was deleted by hand.
#[test]
fn a_token_that_cannot_travel_in_a_header_is_never_cached() {
    let (sim, proxy, r) = unusable_token();
    show(&r);
    assert!(matches!(r.code, Some(1 | 2)), "{}", r.both());
    let error = r.error_lines().join("\n").to_lowercase();
    assert!(
        error.contains("token"),
        "the error names the token: {}",
        r.both()
    );
    assert_eq!(r.error_lines().len(), 1, "{}", r.both());
    assert!(!r.stderr.contains("X-Evil"), "{}", r.both());
    for name in names(&sim.cfg_dir) {
        let text = std::fs::read_to_string(sim.cfg_dir.join(&name)).unwrap_or_default();
        assert!(
            !text.contains("bad token") && !text.contains("X-Evil"),
            "{name} keeps the bad token: {text}"
        );
    }
    assert!(
        proxy.seen().iter().all(|s| s.kind == "token"),
        "nothing was sent with it: {:?}",
        proxy.seen()
    );
}

/// The same refusal, told so that the user knows what to do next (every
/// failure's one `error:` line says so, docs/RELIABILITY.md).
#[test]
fn an_unusable_token_error_says_what_to_do() {
    let (_sim, _proxy, r) = unusable_token();
    assert!(
        advice_problem(&r).is_none(),
        "{:?}: {}",
        advice_problem(&r),
        r.both()
    );
}

/// The token answer spells the token with JSON escapes (`\u005f` for each
/// `_`): the same token, legal JSON. Before: `--record` redacted only the
/// literal spelling, so the HAR file kept the token.
#[test]
fn a_json_escaped_token_is_redacted_in_the_recording() {
    let sim = Sim::faults("seed=3");
    let proxy = Hostile::start(&sim.url(), |req: &Req, mut resp: Resp| {
        if req.kind() == "token" {
            let text = String::from_utf8_lossy(&resp.body).into_owned();
            // `"token":"nmv_usr_<hex>"` → `"token":"nmv\u005fusr\u005f<hex>"`.
            if let Some(i) = text.find("\"nmv_usr_") {
                let escaped = format!(
                    "{}\"nmv\\u005fusr\\u005f{}",
                    &text[..i],
                    &text[i + "\"nmv_usr_".len()..]
                );
                resp.body = escaped.into_bytes();
            }
        }
        resp
    });
    sim.sample();
    let r = via(
        &sim,
        &proxy,
        &["--record", "session.har", "upload", "sample.mp4"],
    );
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        proxy.seen().iter().any(|s| s.kind == "token" && s.tampered),
        "the escaped token was served"
    );
    let token = sim
        .secrets()
        .into_iter()
        .find(|s| s.starts_with("nmv_usr_"))
        .expect("the token was kept (unescaped)");
    let tail = &token["nmv_usr_".len()..];
    let har = std::fs::read_to_string(sim.work.path().join("session.har")).expect("har");
    assert!(
        !har.contains(tail),
        "the token (…{}) is in the recording",
        &tail[tail.len() - 4..]
    );
    assert!(har.contains("anonymous-token"), "the exchange was recorded");
}

/// A file appears at the `--record` path while the command runs (another
/// process, a name on a case-insensitive file system): the command's work
/// stands (exit 0), the file is not replaced, and the recording is kept
/// beside it under a name of its own (`session-1.har`), which the warning
/// names. Before: the
/// recording was deleted and a successful command exited 1.
#[test]
fn a_recording_that_cannot_be_placed_is_kept_and_the_command_succeeds() {
    let sim = Sim::faults("seed=3");
    let planted = sim.work.path().join("session.har");
    let proxy = Hostile::start(&sim.url(), {
        let planted = planted.clone();
        move |req: &Req, resp: Resp| {
            if req.kind() == "credits" {
                std::fs::write(&planted, b"someone else's file").unwrap();
            }
            resp
        }
    });
    let r = via(&sim, &proxy, &["--record", "session.har", "credits"]);
    show(&r);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert_eq!(std::fs::read(&planted).unwrap(), b"someone else's file");
    assert!(r.stderr.contains("warning:"), "{}", r.both());
    let kept: Vec<_> = std::fs::read_dir(sim.work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p != &planted
                && r.stderr
                    .contains(&*p.file_name().unwrap().to_string_lossy())
        })
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the warning names the kept file: {}",
        r.both()
    );
    let har = std::fs::read_to_string(&kept[0]).unwrap();
    let har: Value = serde_json::from_str(&har).expect("a whole HAR");
    assert!(
        !har["log"]["entries"].as_array().unwrap().is_empty(),
        "the exchanges are in it"
    );
}

/// `--record` into a folder that does not exist. Before: the path was tried
/// only at the end, after the upload, the edit and the render were paid for.
#[test]
fn a_record_path_that_cannot_be_written_is_refused_before_anything_is_sent() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    let r = sim.run(&[
        "--record",
        "nope/session.har",
        "run",
        "add a title",
        "--file",
        "sample.mp4",
        "--out",
        "x.mp4",
    ]);
    show(&r);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("nope"), "{}", r.both());
    let journal = sim.journal();
    assert!(
        journal.is_empty(),
        "sent before the recording could be kept: {:?}",
        journal.iter().map(|e| &e.path).collect::<Vec<_>>()
    );
    assert!(!sim.work.path().join("x.mp4").exists());
}

// ---------------------------------------------------------------------------
// Output paths, before anything is spent
// ---------------------------------------------------------------------------

/// One output path that cannot take the render.
struct OutCase {
    name: &'static str,
    /// Prepares the working folder; returns the arguments after `nemo`
    /// (`None`: skipped, with the reason printed).
    prepare: fn(&Sim) -> Option<Vec<String>>,
    /// Needs an edited session first (the command is `export`).
    session: bool,
    says: &'static str,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn out_cases() -> Vec<OutCase> {
    vec![
        OutCase {
            name: "run: existing file without --overwrite",
            prepare: |s| {
                std::fs::write(s.work.path().join("old.mp4"), b"precious").expect("write");
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "old.mp4",
                ]))
            },
            session: false,
            says: "--overwrite",
        },
        OutCase {
            name: "run: missing folder",
            prepare: |_| {
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "nope/x.mp4",
                ]))
            },
            session: false,
            says: "does not exist",
        },
        OutCase {
            name: "run: a folder",
            prepare: |s| {
                std::fs::create_dir(s.work.path().join("clips")).expect("mkdir");
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "clips",
                ]))
            },
            session: false,
            says: "is a folder",
        },
        OutCase {
            name: "run: a FIFO with --overwrite",
            prepare: |s| {
                let p = s.work.path().join("pipe.mp4");
                let made = std::process::Command::new("mkfifo").arg(&p).status();
                if !made.is_ok_and(|st| st.success()) {
                    println!("  skipped: mkfifo is not available");
                    return None;
                }
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "pipe.mp4",
                    "--overwrite",
                ]))
            },
            session: false,
            says: "not a regular file",
        },
        OutCase {
            name: "run: a device (/dev/null)",
            prepare: |_| {
                if !cfg!(unix) {
                    return None;
                }
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "/dev/null",
                ]))
            },
            session: false,
            says: "not a regular file",
        },
        OutCase {
            name: "run: a device (/dev/null) with --overwrite",
            prepare: |_| {
                if !cfg!(unix) {
                    return None;
                }
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "/dev/null",
                    "--overwrite",
                ]))
            },
            session: false,
            says: "not a regular file",
        },
        OutCase {
            name: "run: a symlink with --overwrite",
            prepare: |s| {
                std::fs::write(s.work.path().join("target.txt"), b"precious").expect("write");
                #[cfg(unix)]
                std::os::unix::fs::symlink("target.txt", s.work.path().join("link.mp4"))
                    .expect("symlink");
                #[cfg(not(unix))]
                return None;
                Some(strings(&[
                    "run",
                    "add a title",
                    "--file",
                    "sample.mp4",
                    "--out",
                    "link.mp4",
                    "--overwrite",
                ]))
            },
            session: false,
            says: "not a regular file",
        },
        OutCase {
            name: "export: existing file without --overwrite",
            prepare: |s| {
                std::fs::write(s.work.path().join("old.mp4"), b"precious").expect("write");
                Some(strings(&["export", "--out", "old.mp4"]))
            },
            session: true,
            says: "--overwrite",
        },
        OutCase {
            // (An output that exists is a finished item, skipped: a
            // folder in its place is what cannot take the render.)
            name: "batch: the second item's output is a folder",
            prepare: |s| {
                std::fs::create_dir(s.work.path().join("adir")).expect("mkdir");
                let manifest = "instruction = \"add a title\"\n\n[[items]]\ninputs = [\"sample.mp4\"]\noutput = \"a.mp4\"\n\n[[items]]\ninputs = [\"sample.mp4\"]\noutput = \"adir\"\n";
                std::fs::write(s.work.path().join("batch.toml"), manifest).expect("manifest");
                Some(strings(&["batch", "batch.toml"]))
            },
            session: false,
            says: "nothing was sent",
        },
    ]
}

/// Before: `run`, `export` and `batch` checked the output path only after
/// the upload, the instruction and the render (credits spent, a job that
/// could never finish), named a `--force` flag that does not exist, and
/// `--overwrite` turned a FIFO into a regular file.
#[test]
fn an_output_path_that_cannot_take_the_render_is_refused_before_anything_is_spent() {
    let cases = out_cases();
    let results = crate::support::parallel(&cases, crate::support::width(), |case| {
        let sim = Sim::faults("seed=3");
        sim.sample();
        if case.session {
            for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
                let r = sim.run(args);
                assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
            }
        }
        let args = (case.prepare)(&sim)?;
        let before = spent(&sim);
        let r = sim.run(&args);
        let mut broken = Vec::new();
        if r.code != Some(1) {
            broken.push(format!("exit {:?}", r.code));
        }
        if !r.stderr.to_lowercase().contains(&case.says.to_lowercase()) {
            broken.push(format!("the error does not say `{}`", case.says));
        }
        if r.stderr.contains("--force") {
            broken.push("names --force".into());
        }
        if let Some(p) = advice_problem(&r) {
            broken.push(p);
        }
        let sent = spent(&sim) - before;
        if sent > 0 {
            broken.push(format!("{sent} upload/run_sse/render requests were sent"));
        }
        let untouched =
            |name: &str| std::fs::read(sim.work.path().join(name)).is_ok_and(|b| b == b"precious");
        for name in ["old.mp4", "target.txt"] {
            if sim.work.path().join(name).exists() && !untouched(name) {
                broken.push(format!("{name} was changed"));
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let p = sim.work.path().join("pipe.mp4");
            if let Ok(m) = std::fs::symlink_metadata(&p) {
                if !m.file_type().is_fifo() {
                    broken.push("the FIFO was replaced".into());
                }
            }
            let p = sim.work.path().join("link.mp4");
            if let Ok(m) = std::fs::symlink_metadata(&p) {
                if !m.file_type().is_symlink() {
                    broken.push("the link was replaced".into());
                }
            }
            let null = std::fs::symlink_metadata("/dev/null").map(|m| m.file_type());
            if !null.is_ok_and(|t| t.is_char_device()) {
                broken.push("/dev/null is no longer a device".into());
            }
        }
        let line = r.error_lines().first().map_or("", |l| l).to_owned();
        Some((broken, line, r))
    });
    let mut failures = Vec::new();
    println!("| output path | exit | sent | message |");
    for (case, result) in cases.iter().zip(results) {
        let Some((broken, line, r)) = result else {
            continue;
        };
        println!("| {} | {:?} | 0 | {} |", case.name, r.code, line);
        if !broken.is_empty() {
            failures.push(format!(
                "{}: {}\n{}",
                case.name,
                broken.join("; "),
                r.both()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A folder nobody may write into, root included: `chattr +i` where the
/// file system allows it, else (not root) mode 0555. Undone when dropped.
struct Unwritable(std::path::PathBuf, bool);

impl Unwritable {
    /// `None` (with the reason printed) when it cannot be made.
    #[cfg(unix)]
    fn make(dir: &Path) -> Option<Unwritable> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("mkdir");
        let immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            if crate::support::is_root() {
                println!("  skipped: root, and no chattr +i on this file system");
                return None;
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        }
        let unwritable = Unwritable(dir.to_owned(), immutable);
        if std::fs::write(dir.join("probe"), b"").is_ok() {
            println!("  skipped: the folder is still writable");
            return None;
        }
        Some(unwritable)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if self.1 {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(&self.0)
                    .status();
            }
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// An export asked for in words (`nemo say "export"`, and the same line in
/// `nemo chat`) from a current folder that cannot take the video (its
/// default place): refused before the render, nothing submitted.
#[cfg(unix)]
#[test]
fn an_export_in_words_into_a_read_only_folder_submits_nothing() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
    let ro = sim.work.path().join("ro");
    let Some(_guard) = Unwritable::make(&ro) else {
        return;
    };
    let submits = |sim: &Sim| {
        sim.journal()
            .iter()
            .filter(|e| e.endpoint == Some(Endpoint::RenderSubmit))
            .count()
    };
    let before = spent(&sim);
    let mut cmd = sim.nemo();
    cmd.current_dir(&ro).args(["say", "export"]);
    let r = Run::of(cmd);
    show(&r);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(
        advice_problem(&r).is_none(),
        "{:?}: {}",
        advice_problem(&r),
        r.both()
    );
    assert!(
        !r.stderr.contains("with --out"),
        "`say` has no --out: {}",
        r.both()
    );
    assert_eq!(submits(&sim), 0, "no render submitted: {}", r.both());
    assert_eq!(spent(&sim), before, "nothing spent");

    let mut child = sim
        .nemo()
        .current_dir(&ro)
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"export\n/quit\n").expect("write");
    }
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("nemo chat did not end in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("chat: exit {:?}: {}", out.status.code(), stderr.trim());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ro"), "names the folder: {stderr}");
    assert!(
        !stderr.contains("with --out"),
        "`chat` has no --out: {stderr}"
    );
    assert_eq!(submits(&sim), 0, "no render submitted: {stderr}");
    assert_eq!(spent(&sim), before, "nothing spent");
    assert!(sim.local_jobs().is_empty(), "{:?}", sim.local_jobs());
}

/// The MCP `export` tool with an `out` that exists and no `overwrite`.
/// Before: the render was submitted and paid for, then the download was
/// refused. Spoken as newline-delimited JSON-RPC over the real process's
/// stdio, each answer waited for at most 30 s.
#[test]
fn the_mcp_export_tool_checks_its_output_before_anything_is_spent() {
    use std::io::{BufRead, Write};
    let sim = Sim::faults("seed=3");
    let old = sim.work.path().join("old.mp4");
    std::fs::write(&old, b"precious").expect("write");
    let mut child = sim
        .nemo()
        .arg("mcp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nemo mcp");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let mut send = |v: Value| {
        writeln!(stdin, "{v}")
            .and_then(|()| stdin.flush())
            .expect("write to nemo mcp");
    };
    let answer = |id: u64| -> Value {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(v) if v["id"] == id => return v,
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        panic!("no answer to request {id}");
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "hostile-test", "version": "1"}}}),
    );
    assert!(answer(1)["result"].is_object(), "initialized");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "export", "arguments": {"out": old.to_string_lossy()}}}),
    );
    let v = answer(2);
    let _ = child.kill();
    let _ = child.wait();
    let result = &v["result"];
    println!(
        "mcp export: {}",
        result["structuredContent"]["error"]["message"]
    );
    assert_eq!(result["isError"], true, "{v}");
    let text = result.to_string();
    assert!(text.contains("already exists"), "{v}");
    assert!(!text.contains("--force"), "{v}");
    assert_eq!(std::fs::read(&old).expect("old"), b"precious");
    let journal = sim.journal();
    assert!(
        journal.is_empty(),
        "sent: {:?}",
        journal.iter().map(|e| &e.path).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// The job journal
// ---------------------------------------------------------------------------

/// The `jobs.json.corrupt-*` files of a config dir, with their bytes.
fn aside(cfg: &Path) -> Vec<(String, Vec<u8>)> {
    names(cfg)
        .into_iter()
        .filter(|n| n.starts_with("jobs.json.corrupt-"))
        .map(|n| {
            let bytes = std::fs::read(cfg.join(&n)).expect("read aside");
            (n, bytes)
        })
        .collect()
}

/// A truncated `jobs.json`, then one that is not text, then one of the
/// wrong shape, met by `export`, `jobs` and an export routed from `say`.
/// Before: it was ignored with a warning, then overwritten by the next
/// export (every render it held forgotten), and the render was submitted.
#[test]
fn a_damaged_journal_is_moved_aside_and_never_overwritten() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
    let journal = sim.cfg_dir.join("jobs.json");
    let first: &[u8] =
        b"{\"jobs\":[{\"id\":\"render_1795262134520_ab12\",\"session_id\":\"s\",\"api_url\":\"http";
    std::fs::write(&journal, first).expect("write");

    // An export with a damaged journal stops before the render.
    let submits = |sim: &Sim| {
        sim.journal()
            .iter()
            .filter(|e| e.endpoint == Some(Endpoint::RenderSubmit))
            .count()
    };
    let r = sim.run(&["export", "--out", "final.mp4"]);
    show(&r);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("damaged"), "{}", r.both());
    assert_eq!(submits(&sim), 0, "no render without a journal");
    let kept = aside(&sim.cfg_dir);
    assert_eq!(kept.len(), 1, "{:?}", names(&sim.cfg_dir));
    assert_eq!(kept[0].1, first, "moved aside byte for byte");
    assert!(!journal.exists(), "never rewritten in place");

    // `nemo jobs` on a damaged journal: exit 1, "damaged", moved aside.
    let second: &[u8] = b"\xff\xfe garbage, not even text";
    std::fs::write(&journal, second).expect("write");
    let r = sim.run(&["jobs"]);
    show(&r);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("damaged"), "{}", r.both());
    let kept = aside(&sim.cfg_dir);
    assert_eq!(kept.len(), 2, "{:?}", names(&sim.cfg_dir));
    assert!(kept.iter().any(|(_, b)| b == first));
    assert!(kept.iter().any(|(_, b)| b == second));

    // An export routed from `say` stops before the render too.
    let third: &[u8] = b"[1, 2, 3]";
    std::fs::write(&journal, third).expect("write");
    let r = sim.run(&["say", "export"]);
    show(&r);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("damaged"), "{}", r.both());
    assert_eq!(submits(&sim), 0, "no render without a journal");
    let kept = aside(&sim.cfg_dir);
    assert_eq!(kept.len(), 3, "{:?}", names(&sim.cfg_dir));
    assert!(kept.iter().any(|(_, b)| b == third));

    // Then an export starts a new journal and leaves the copies alone.
    let r = sim.run(&["export", "--out", "final.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert_eq!(submits(&sim), 1);
    assert_eq!(
        aside(&sim.cfg_dir),
        kept,
        "the damaged copies are untouched"
    );
}

/// `jobs.json` cannot be written (here: a folder took its name, which stops
/// root as well as anyone). Before: `export` warned and submitted a render
/// it could not record.
#[test]
fn a_journal_that_cannot_be_written_stops_the_export_before_the_render() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    for args in [&["upload", "sample.mp4"][..], &["say", "add a title"][..]] {
        let r = sim.run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.both());
    }
    std::fs::create_dir(sim.cfg_dir.join("jobs.json")).expect("mkdir");
    for args in [
        &["export", "--out", "final.mp4"][..],
        &[
            "run",
            "add a title",
            "--file",
            "sample.mp4",
            "--out",
            "final.mp4",
        ][..],
    ] {
        let before = spent(&sim);
        let r = sim.run(args);
        show(&r);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.both());
        assert!(r.stderr.contains("jobs.json"), "{}", r.both());
        assert!(
            advice_problem(&r).is_none(),
            "{:?}: {}",
            advice_problem(&r),
            r.both()
        );
        assert_eq!(spent(&sim), before, "{args:?}: nothing spent");
    }
    let submits = sim
        .journal()
        .iter()
        .filter(|e| e.endpoint == Some(Endpoint::RenderSubmit))
        .count();
    assert_eq!(submits, 0);
    assert!(!sim.work.path().join("final.mp4").exists());
}

/// A damaged `tokens.json` or `sessions.json` is moved aside like the
/// journal, and the warning fits the file: they hold no render ids.
#[test]
fn a_damaged_token_cache_is_reported_in_its_own_words() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    std::fs::create_dir_all(&sim.cfg_dir).expect("mkdir");
    for name in ["tokens.json", "sessions.json"] {
        std::fs::write(sim.cfg_dir.join(name), b"{not json").expect("write");
    }
    let r = sim.run(&["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(r.stderr.contains("tokens.json is damaged"), "{}", r.both());
    assert!(!r.stderr.contains("render ids"), "{}", r.both());
}

// ---------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------

/// `NEMO_CONFIG_DIR` below a regular file: it can never be created. Before:
/// each run fetched a free token it could not keep (one per machine a week).
#[test]
fn a_config_dir_that_cannot_be_created_sends_nothing() {
    let mut sim = Sim::faults("seed=3");
    sim.sample();
    let plain = sim.work.path().join("plain");
    std::fs::write(&plain, b"a file, not a folder").expect("write");
    sim.cfg_dir = plain.join("nemovideo");
    for args in [&["credits"][..], &["upload", "sample.mp4"][..]] {
        let r = sim.run(args);
        show(&r);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.both());
        assert!(
            advice_problem(&r).is_none(),
            "{:?}: {}",
            advice_problem(&r),
            r.both()
        );
        assert!(r.stderr.contains("NEMO_CONFIG_DIR"), "{}", r.both());
    }
    let journal = sim.journal();
    assert!(
        journal.is_empty(),
        "nothing sent, no token fetched: {:?}",
        journal.iter().map(|e| &e.path).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// A closed stdout
// ---------------------------------------------------------------------------

/// `nemo run … | head -1` where the reader is gone before the first line.
/// Before: the first line written to the closed pipe ended the process with
/// exit 0, in the middle of the work (no file).
#[test]
fn a_closed_stdout_does_not_stop_the_work() {
    let sim = Sim::faults("seed=3");
    sim.sample();
    let mut child = sim
        .nemo()
        .args([
            "run",
            "add a title",
            "--file",
            "sample.mp4",
            "--out",
            "x.mp4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the reading end at once.
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("nemo run did not end in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let file = std::fs::read(sim.work.path().join("x.mp4")).expect("the file is saved");
    assert_eq!(file, nemo_mock::media::SAMPLE_MP4);
    assert!(sim.local_jobs().is_empty());
}
