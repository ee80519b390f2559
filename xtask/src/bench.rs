//! `cargo xtask bench [--quick]`: everything between the user and the wire,
//! measured side by side with what a user would otherwise use, in the same
//! run, reported as ratios (these machines are noisy; absolute times drift).
//!
//! Writes `docs/BENCHMARKS.md` and `docs/benchmarks.json`. With
//! `--only NAME[,NAME…]` (`sse`, `credits`, `upload`, `download`,
//! `download-alone`, `polling`, `load`, `record`) runs just those and prints the
//! report without writing either file; with `--merge` as well, their rows
//! replace the same rows of the last full report (or join it).
//!
//! Whole-process comparisons alternate A and B, several runs each, and
//! report medians; peak RSS is read from the OS (`VmHWM` of the child's
//! `/proc/<pid>/status`, sampled until it exits).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cargo;

struct Sizes {
    sse_mb: usize,
    nonewline_mib: usize,
    baseline_nonewline_mib: usize,
    transfer_mib: u64,
    runs: usize,
    credit_runs: usize,
    streams: usize,
}

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            sse_mb: 8,
            nonewline_mib: 128,
            baseline_nonewline_mib: 4,
            transfer_mib: 50,
            runs: 3,
            credit_runs: 7,
            streams: 100,
        }
    } else {
        Sizes {
            sse_mb: 64,
            nonewline_mib: 1024,
            baseline_nonewline_mib: 16,
            transfer_mib: 500,
            runs: 3,
            credit_runs: 15,
            streams: 1000,
        }
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run_ok(name: &str, cmd: &mut Command) -> Result<String, String> {
    eprintln!("==> {name}");
    let out = cmd
        .output()
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Wall time and peak RSS of one process run to its end.
struct Measured {
    seconds: f64,
    peak_kib: u64,
    stdout: String,
}

fn measure(cmd: &mut Command) -> Result<Measured, String> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut out) = stdout {
            let _ = std::io::Read::read_to_string(&mut out, &mut s);
        }
        s
    });
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let stdout = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status})"));
    }
    Ok(Measured {
        seconds,
        peak_kib: peak,
        stdout,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A `nemo mock` process, stopped on drop.
struct Mock {
    child: Child,
    url: String,
}

impl Mock {
    fn start(nemo: &Path, args: &[&str]) -> Result<Mock, String> {
        let mut cmd = Command::new(nemo);
        cmd.arg("mock").args(args);
        Mock::spawn(cmd)
    }

    /// Any server that prints `listening on URL` as its first line.
    fn spawn(mut cmd: Command) -> Result<Mock, String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("{cmd:?} said `{}`", line.trim()))?
            .to_owned();
        Ok(Mock { child, url })
    }

    fn peak_kib(&self) -> u64 {
        peak_rss_kib(self.child.id()).unwrap_or(0)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nemo` with a private config dir, pointed at `url`.
fn nemo_cmd(nemo: &Path, cfg: &Path, url: &str) -> Command {
    let mut cmd = Command::new(nemo);
    cmd.env("NEMO_API_URL", url)
        .env("NEMO_CONFIG_DIR", cfg)
        .env("NEMO_TIME_SCALE", "0.001")
        .env_remove("NEMO_TOKEN");
    cmd
}

fn cached(cfg: &Path, file: &str, url: &str, field: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(cfg.join(file)).map_err(|e| format!("{file}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    v[url][field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{file} has no {field} for {url}"))
}

fn curl(token: &str) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-f", "-o", "/dev/null"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "X-Skill-Source: video-openapi"])
        .args(["-H", "X-Skill-Version: 1.0.5"])
        .args(["-H", "X-Skill-Platform: unknown"]);
    cmd
}

fn comparison(
    measure_name: &str,
    ours: &str,
    baseline: &str,
    target: &str,
    figures: Value,
    verdict: bool,
) -> Value {
    json!({
        "measure": measure_name,
        "ours": ours,
        "baseline": baseline,
        "target": target,
        "figures": figures,
        "met": verdict,
    })
}

/// The largest upload measured: the service takes at most 500 MB (decimal)
/// a file, 476.8 MiB; a round figure below it.
const MAX_UPLOAD_MIB: u64 = 470;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|names| names.split(',').map(str::to_owned).collect());
    let wants = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let s = sizes(quick);
    let root = root();
    let target = root.join("target/release");
    let nemo = target.join("nemo");

    run_ok(
        "build (release)",
        cargo().current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "nemo-cli",
            "-p",
            "nemo-core",
            "--examples",
            "--bins",
        ]),
    )?;
    run_ok(
        "build load generator",
        cargo().current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "nemo-http",
            "--example",
            "sse_load",
            "--example",
            "fetch",
            "--example",
            "serve_file",
        ]),
    )?;
    let mut results = Vec::new();
    let ex = |name: &str, a: &[&str]| -> Result<Value, String> {
        let out = run_ok(
            name,
            Command::new(target.join("examples").join(a[0])).args(&a[1..]),
        )?;
        serde_json::from_str(out.trim()).map_err(|e| format!("{name}: {e}: {out}"))
    };
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;

    // 1. SSE decoding throughput (criterion, same run for both).
    if wants("sse") {
        run_ok(
            "criterion: SSE decoding",
            cargo()
                .current_dir(&root)
                .env("NEMO_BENCH_SSE_MB", s.sse_mb.to_string())
                .args(["bench", "-p", "nemo-core", "--bench", "sse"]),
        )?;
        let mean_ns = |name: &str| -> Result<f64, String> {
            let p = root.join(format!("target/criterion/sse/{name}/new/estimates.json"));
            let v: Value = serde_json::from_str(
                &std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?,
            )
            .map_err(|e| e.to_string())?;
            v["mean"]["point_estimate"]
                .as_f64()
                .ok_or_else(|| "no mean in criterion's estimates".to_owned())
        };
        let bytes = (s.sse_mb * 1024 * 1024) as f64;
        let ours_mbs = bytes / (mean_ns("nemo-core")? / 1e9) / 1e6;
        let base_mbs = bytes / (mean_ns("eventsource-stream")? / 1e9) / 1e6;
        let mem_ours = ex(
            "SSE memory, no newline (ours)",
            &["sse_memory", "ours", &s.nonewline_mib.to_string()],
        )?;
        let mem_base = ex(
            "SSE memory, no newline (eventsource-stream)",
            &[
                "sse_memory",
                "baseline",
                &s.baseline_nonewline_mib.to_string(),
            ],
        )?;
        let ratio = ours_mbs / base_mbs;
        results.push(comparison(
            &format!(
                "SSE decoding throughput, {} MB of ADK events in 8 KiB chunks",
                s.sse_mb
            ),
            "nemo-core decoder",
            "eventsource-stream 0.2",
            "≥ 2× the baseline; memory bounded on a stream with no newline",
            json!({
                "ours_mb_s": ours_mbs, "baseline_mb_s": base_mbs, "ratio": ratio,
                "no_newline_ours": mem_ours, "no_newline_baseline": mem_base,
            }),
            ratio >= 2.0 && mem_ours["peak_rss_kib"].as_u64().unwrap_or(u64::MAX) < 32 * 1024,
        ));
    }

    // 2–4 against a real simulator process.
    if wants("credits") || wants("upload") {
        let cfg = work.path().join("cfg");
        let mock = Mock::start(&nemo, &["--time-scale", "0.001"])?;
        let url = mock.url.clone();
        run_ok(
            "warm up: token and session",
            nemo_cmd(&nemo, &cfg, &url).args(["--json", "credits"]),
        )?;
        let token = cached(&cfg, "tokens.json", &url, "token")?;
        if wants("credits") {
            let (mut ours, mut base) = (Vec::new(), Vec::new());
            for _ in 0..s.credit_runs {
                ours.push(
                    measure(nemo_cmd(&nemo, &cfg, &url).args(["--json", "credits"]))?.seconds,
                );
                base.push(
                    measure(curl(&token).arg(format!("{url}/api/credits/balance/simple")))?.seconds,
                );
            }
            let (o, b) = (median(ours), median(base));
            results.push(comparison(
        "one API call, whole process: `nemo --json credits` against `nemo mock`",
        "nemo",
        "curl, same URL and headers",
        "wall time ≤ 1.2× curl",
        json!({"ours_ms": o * 1000.0, "baseline_ms": b * 1000.0, "ratio": o / b, "runs": s.credit_runs}),
        o / b <= 1.2,
    ));
        }

        // Upload.
        if wants("upload") {
            let big = work.path().join("big.mp4");
            let upload_mib = s.transfer_mib.min(MAX_UPLOAD_MIB);
            let size = upload_mib * 1024 * 1024;
            std::fs::File::create(&big)
                .and_then(|f| f.set_len(size))
                .map_err(|e| format!("cannot create the upload file: {e}"))?;
            run_ok(
                "warm up: upload session",
                nemo_cmd(&nemo, &cfg, &url)
                    .args(["upload"])
                    .arg(root.join("fixtures/media/sample.mp4")),
            )?;
            let sid = cached(&cfg, "sessions.json", &url, "session_id")?;
            let (mut ot, mut bt, mut orss, mut brss) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..s.runs {
                let m = measure(
                    nemo_cmd(&nemo, &cfg, &url)
                        .args(["--json", "upload"])
                        .arg(&big),
                )?;
                ot.push(m.seconds);
                orss.push(m.peak_kib as f64);
                let m = measure(
                    curl(&token)
                        .args(["-F", &format!("files=@{};type=video/mp4", big.display())])
                        .arg(format!("{url}/api/upload-video/nemo_agent/me/{sid}")),
                )?;
                bt.push(m.seconds);
                brss.push(m.peak_kib as f64);
            }
            let mib = upload_mib as f64;
            let runs = json!({"ours_s": ot.clone(), "baseline_s": bt.clone()});
            let (o, b) = (mib / median(ot), mib / median(bt));
            let ours_rss = median(orss) / 1024.0;
            results.push(comparison(
        &format!("upload of a {upload_mib} MiB file to `nemo mock`"),
        "nemo upload",
        "curl -F files=@…",
        "throughput ≥ 0.9× curl, peak RSS ≤ 32 MiB",
        json!({"ours_mib_s": o, "baseline_mib_s": b, "ratio": o / b, "ours_peak_rss_mib": ours_rss, "baseline_peak_rss_mib": median(brss) / 1024.0, "runs": s.runs, "times": runs}),
        o / b >= 0.9 && ours_rss <= 32.0,
    ));
        }
        drop(mock);
    }

    // Download.
    if wants("download") {
        let mib = s.transfer_mib as f64;
        let render_size = format!("{}M", s.transfer_mib);
        let mock = Mock::start(
            &nemo,
            &["--time-scale", "0.001", "--render-bytes", &render_size],
        )?;
        let url = mock.url.clone();
        let cfg = work.path().join("cfg-download");
        run_ok(
            "warm up: a draft to export",
            nemo_cmd(&nemo, &cfg, &url)
                .args(["upload"])
                .arg(root.join("fixtures/media/sample.mp4")),
        )?;
        let token = cached(&cfg, "tokens.json", &url, "token")?;
        let (mut ot, mut bt, mut orss) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..s.runs {
            let out = work.path().join(format!("ours-{i}.mp4"));
            let m = measure(
                nemo_cmd(&nemo, &cfg, &url)
                    .args(["--json", "export", "--out"])
                    .arg(&out),
            )?;
            ot.push(m.seconds);
            orss.push(m.peak_kib as f64);
            let id = m
                .stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find_map(|v| {
                    (v["type"] == "render")
                        .then(|| v["id"].as_str().map(str::to_owned))
                        .flatten()
                })
                .ok_or("no render id in nemo's output")?;
            let _ = std::fs::remove_file(&out);
            let theirs = work.path().join(format!("curl-{i}.mp4"));
            let m = measure(
                curl(&token)
                    .args(["-o"])
                    .arg(&theirs)
                    .arg(format!("{url}/media/{id}.mp4")),
            )?;
            bt.push(m.seconds);
            let _ = std::fs::remove_file(&theirs);
        }
        let runs = json!({"ours_s": ot.clone(), "baseline_s": bt.clone()});
        let (o, b) = (mib / median(ot), mib / median(bt));
        let ours_rss = median(orss) / 1024.0;
        results.push(comparison(
        &format!("download of a {} MiB render output from `nemo mock`", s.transfer_mib),
        "nemo export (render at time scale 0.001, then download)",
        "curl -o on the output URL",
        "throughput ≥ 0.9× curl, peak RSS ≤ 32 MiB",
        json!({"ours_mib_s": o, "baseline_mib_s": b, "ratio": o / b, "ours_peak_rss_mib": ours_rss, "runs": s.runs, "times": runs}),
        o / b >= 0.9 && ours_rss <= 32.0,
    ));
        drop(mock);
    }

    if wants("download-alone") {
        results.push(download_alone(&target, work.path(), &s)?);
    }

    // 5. Render polling, in virtual time.
    if wants("polling") {
        let polling = ex("render polling policies", &["render_polling"])?;
        let find = |name: &str| {
            polling
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .find(|p| p["policy"].as_str().is_some_and(|n| n.starts_with(name)))
                })
                .cloned()
                .unwrap_or(Value::Null)
        };
        let (ours_p, cli_p) = (find("nemo"), find("2s"));
        let met = ours_p["median_delay_s"].as_f64().unwrap_or(99.0) <= 2.0
            && ours_p["mean_requests"].as_f64().unwrap_or(99.0)
                < cli_p["mean_requests"].as_f64().unwrap_or(0.0);
        results.push(comparison(
            "render completion → detected, virtual time, renders of 20–90 s (3 queue lengths)",
            "nemo_core::render",
            "fixed 30 s (seeds); 2 s ×1.5 capped at 15 s (NemoVideo's CLI)",
            "median delay ≤ 2 s, fewer status requests than the NemoVideo CLI policy",
            polling,
            met,
        ));
    }

    // 6. The simulator under load.
    if wants("load") {
        let mock = Mock::start(&nemo, &["--time-scale", "0.05", "--faults", "run_sse:long"])?;
        let load = ex(
            "simulator under load",
            &["sse_load", &mock.url, &s.streams.to_string()],
        )?;
        let peak = mock.peak_kib() as f64 / 1024.0;
        drop(mock);
        let met = load["errors"].as_u64() == Some(0) && peak <= 200.0;
        results.push(comparison(
            &format!(
                "the simulator under load: {} concurrent /run_sse streams with keep-alives",
                s.streams
            ),
            "nemo mock",
            "—",
            "no errors, peak RSS ≤ 200 MiB, p99 time to first event reported",
            json!({"load": load, "mock_peak_rss_mib": peak}),
            met,
        ));
    }

    // 7. `--record` of a long event stream: memory.
    if wants("record") {
        results.push(crate::bench_record::measure(quick)?);
    }

    if only.is_some() {
        // A partial run: shown, never written over the full report.
        if !args.iter().any(|a| a == "--merge") {
            println!("{}", report(&results, quick));
            return Ok(());
        }
        // `--merge`: these results replace their rows (same `ours`) in the
        // last full report, or join it; the other rows stay as measured.
        let text = std::fs::read_to_string(root.join("docs/benchmarks.json"))
            .map_err(|e| format!("--merge needs docs/benchmarks.json: {e}"))?;
        let old: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if old["quick"].as_bool() != Some(quick) {
            return Err(
                "--merge: the report was measured with other sizes (--quick differs)".into(),
            );
        }
        let mut merged: Vec<Value> = old["results"].as_array().cloned().unwrap_or_default();
        for new in results {
            match merged.iter_mut().find(|r| r["ours"] == new["ours"]) {
                Some(slot) => *slot = new,
                None => merged.push(new),
            }
        }
        return write_report(&root, &merged, quick);
    }
    write_report(&root, &results, quick)
}

/// The download path alone, without the rest of an export: `fetch` (an
/// example over `HttpTransport::download`) against `curl -o`, and against
/// `curl -o` followed by `sync` of the file (the same durability as ours),
/// all from one local file server, alternating.
fn download_alone(target: &Path, work: &Path, s: &Sizes) -> Result<Value, String> {
    let examples = target.join("examples");
    let mut cmd = Command::new(examples.join("serve_file"));
    cmd.arg(s.transfer_mib.to_string());
    let server = Mock::spawn(cmd)?;
    let url = format!("{}/file.mp4", server.url);
    let size = s.transfer_mib * 1024 * 1024;
    let (mut ours, mut plain, mut synced) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_rss, mut curl_rss) = (Vec::new(), Vec::new());
    let runs = s.runs.max(5);
    for i in 0..runs {
        let out = work.join(format!("alone-ours-{i}.mp4"));
        let m = measure(Command::new(examples.join("fetch")).arg(&url).arg(&out))?;
        let len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        if len != size {
            return Err(format!("fetch wrote {len} bytes, not {size}"));
        }
        ours.push(m.seconds);
        ours_rss.push(m.peak_kib as f64);
        let _ = std::fs::remove_file(&out);
        let theirs = work.join(format!("alone-curl-{i}.mp4"));
        let m = measure(
            Command::new("curl")
                .args(["-sS", "-f", "-o"])
                .arg(&theirs)
                .arg(&url),
        )?;
        // `sync FILE` is fsync(2) of that file (GNU coreutils ≥ 8.24).
        let flushed = measure(Command::new("sync").arg(&theirs))?;
        plain.push(m.seconds);
        synced.push(m.seconds + flushed.seconds);
        curl_rss.push(m.peak_kib as f64);
        let _ = std::fs::remove_file(&theirs);
    }
    drop(server);
    let mib = s.transfer_mib as f64;
    let times =
        json!({"ours_s": ours.clone(), "curl_s": plain.clone(), "curl_sync_s": synced.clone()});
    let (o, p, c) = (
        mib / median(ours),
        mib / median(plain),
        mib / median(synced),
    );
    let rss = median(ours_rss) / 1024.0;
    Ok(comparison(
        &format!(
            "download alone: {} MiB over loopback from a local file server",
            s.transfer_mib
        ),
        "`HttpTransport::download` (example `fetch`: temporary file, checks, fsync, rename)",
        "curl -o; curl -o then `sync FILE`",
        "≥ 1.0× curl -o + sync, ≥ 0.8× curl -o, peak RSS ≤ 32 MiB",
        json!({
            "ours_mib_s": o, "baseline_mib_s": c, "ratio": o / c,
            "curl_plain_mib_s": p, "ratio_vs_plain": o / p,
            "ours_peak_rss_mib": rss, "curl_peak_rss_mib": median(curl_rss) / 1024.0,
            "runs": runs, "times": times,
        }),
        o / c >= 1.0 && o / p >= 0.8 && rss <= 32.0,
    ))
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024 / 1024);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let curl = Command::new("curl")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    json!({"cpu": cpu, "cores": cores, "memory_gib": mem, "rustc": rustc, "curl": curl})
}

fn write_report(root: &Path, results: &[Value], quick: bool) -> Result<(), String> {
    let doc = json!({"machine": machine(), "quick": quick, "results": results});
    std::fs::write(
        root.join("docs/benchmarks.json"),
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| e.to_string())?;
    let md = report(results, quick);
    std::fs::write(root.join("docs/BENCHMARKS.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}");
    Ok(())
}

/// `docs/BENCHMARKS.md`: the table, what limits each missed target, how
/// each figure is measured, the raw figures.
fn report(results: &[Value], quick: bool) -> String {
    let machine = machine();
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench`{} — do not edit by hand. Every figure is measured in the same run as its baseline; the ratio is what counts (absolute times drift on shared machines). Whole-process figures are medians of alternating runs; peak RSS is the child's `VmHWM`.\n",
        if quick { " --quick (small sizes)" } else { "" }
    );
    let _ = writeln!(
        md,
        "Machine: {} ({} cores, {} GiB), {}, {}.\n",
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["memory_gib"],
        machine["rustc"].as_str().unwrap_or("?"),
        machine["curl"].as_str().unwrap_or("?")
    );
    let _ = writeln!(md, "| measure | ours | baseline | target | result | met |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for r in results {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r["measure"].as_str().unwrap_or(""),
            r["ours"].as_str().unwrap_or(""),
            r["baseline"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or(""),
            summary(r),
            if r["met"].as_bool() == Some(true) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    let missed: Vec<&Value> = results
        .iter()
        .filter(|r| r["met"].as_bool() != Some(true))
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(md, "\n## Where a target is missed, and what limits it\n");
        for r in missed {
            let m = r["measure"].as_str().unwrap_or("");
            let why = if m.starts_with("download alone") {
                DOWNLOAD_ALONE_LIMITS
            } else if m.starts_with("upload") {
                "Both sides stream the same sparse file over loopback to the same simulator process, which writes every part to disk; ours adds multipart framing and a read through tokio's blocking pool per 256 KiB. On this shared 2-core machine the run-to-run spread (see `times` below) is of the same size as the gap; the memory half of the target is met with a wide margin."
            } else if m.starts_with("download") {
                "Ours is a whole `nemo export` (process start, state read, render submission and status polls, claim link) plus the download, which goes to a temporary file of its own, is checked, fsynced and renamed into place so that a half-written file never sits under the final name; `curl -o` is one process writing straight to the target, without fsync. The download path alone is measured on its own in the `download alone` row. The memory half of the target is met with a wide margin."
            } else {
                "See the raw figures below."
            };
            let _ = writeln!(md, "- **{m}**: {why}");
        }
    }
    let _ = writeln!(md, "\n## How each figure is measured\n");
    let _ = writeln!(md, "- **SSE decoding**: criterion (`crates/nemo-core/benches/sse.rs`), both decoders on the same stream of ADK events (partial text, tool calls with state deltas, keep-alives, comments) cut in 8 KiB chunks; the bench first asserts both decode the same number of events. Memory: `crates/nemo-core/examples/sse_memory.rs` feeds a stream with no line break at all, in its own process. eventsource-stream buffers the unterminated line and rescans it on every chunk, so it is run on a smaller input to finish at all.");
    let _ = writeln!(md, "- **One API call**: `nemo --json credits` (a new process each time: runtime start, config dir, TLS-less HTTP to the simulator) against `curl` with the same URL and headers, alternating.");
    let _ = writeln!(md, "- **Upload**: a sparse file (reads cost no disk) uploaded by `nemo upload` (streamed multipart from disk) and by `curl -F`, alternating, to a simulator process that streams parts to disk.");
    let _ = writeln!(md, "- **Download**: `nemo mock --render-bytes SIZE` serves a generated output; `nemo export` (submit, poll at time scale 0.001, download to a temporary file, fsync, rename) against `curl -o` of the same output URL. Ours includes the render round trip, which the baseline does not.");
    let _ = writeln!(md, "- **Download alone**: `crates/nemo-http/examples/serve_file.rs` serves generated bytes (with a `Content-Length`) on 127.0.0.1; `crates/nemo-http/examples/fetch.rs` runs `HttpTransport::download` to a path in its own process (two tokio workers, as `nemo` runs); the file is placed by `nemo-files`, the engine every transport shares: a temporary file of its own created with `O_EXCL`, the first bytes checked for an error page, the length checked, written to disk on a thread of its own in 256 KiB writes through a queue of 8, written back every 16 MiB while it runs, fsynced, renamed into place, folder synced. Baselines in the same runs, alternating: `curl -o` (no fsync: its bytes may still be in the page cache when it exits), and `curl -o` followed by `sync FILE` (fsync of that file: the same durability as ours). Times are whole processes.");
    let _ = writeln!(md, "- **Render polling**: `crates/nemo-core/examples/render_polling.rs` replays renders of 20–90 s (queue 0, 4 or 12 s, then the simulator's progress curve) through each policy in virtual time; delay = detection − completion.");
    let _ = writeln!(md, "- **Simulator load**: `crates/nemo-http/examples/sse_load.rs` gives each stream its own token and session, then opens all `/run_sse` streams at once against `nemo mock --time-scale 0.05 --faults run_sse:long` (minutes of keep-alives, scaled) and reads them to the end.");
    let _ = writeln!(md, "- **Recording (`--record`)**: `crates/nemo-har/examples/record_stream.rs` records a synthetic stream of ADK-like events (64 KiB chunks) through `Recorder::to_file` (what `--record` uses: entries streamed to disk, redacted as they pass) in its own process; the baseline is the in-memory recorder (`Recorder::new` + `save`, what `--record` did before) on a tenth of the stream, since at full size it would need gigabytes. Peak RSS is the child's `VmHWM`.");
    let _ = writeln!(
        md,
        "\n## Raw figures\n\n```json\n{}\n```",
        serde_json::to_string_pretty(results).unwrap_or_default()
    );
    md
}

/// What limits the download-alone figure, when a target is missed.
const DOWNLOAD_ALONE_LIMITS: &str = "Both sides read the same bytes from the same loopback server. Ours pays for durability that `curl -o` does not: the file is fsynced before the rename (write-back is started every 16 MiB during the download, so the final fsync waits for little of it), plus a copy into 256 KiB write buffers and a hop to the disk thread; ours runs four threads (two tokio workers, the disk writer, the write-back) where curl runs one, so on this shared 2-core machine other processes competing for the CPUs and the disk hit ours harder: see the outliers in `times`.";

fn summary(r: &Value) -> String {
    let f = &r["figures"];
    let num = |v: &Value| v.as_f64().map_or("?".into(), |x| format!("{x:.2}"));
    if f.get("stream_mb").is_some() {
        return format!(
            "{} MB stream recorded with a peak RSS of {} MiB ({} MiB per stream MB); in memory (before): {} MiB on {} MB ({} MiB per MB)",
            f["stream_mb"],
            num(&f["ours_peak_rss_mib"]),
            num(&f["ours"]["peak_rss_mib_per_stream_mb"]),
            num(&f["baseline"]["peak_rss_mib"]),
            f["baseline_stream_mb"],
            num(&f["baseline"]["peak_rss_mib_per_stream_mb"]),
        );
    }
    if f.get("ratio_vs_plain").is_some() {
        return format!(
            "{} MiB/s vs curl + sync {} MiB/s = {}×, vs curl {} MiB/s = {}×; peak RSS {} MiB (curl {} MiB)",
            num(&f["ours_mib_s"]),
            num(&f["baseline_mib_s"]),
            num(&f["ratio"]),
            num(&f["curl_plain_mib_s"]),
            num(&f["ratio_vs_plain"]),
            num(&f["ours_peak_rss_mib"]),
            num(&f["curl_peak_rss_mib"])
        );
    }
    if f.get("ratio").is_some() && f.get("ours_mb_s").is_some() {
        format!(
            "{} vs {} MB/s = {}×; no newline: {} KiB peak on {} MiB (baseline {} KiB on {} MiB, {} s)",
            num(&f["ours_mb_s"]),
            num(&f["baseline_mb_s"]),
            num(&f["ratio"]),
            f["no_newline_ours"]["peak_rss_kib"],
            f["no_newline_ours"]["input_mib"],
            f["no_newline_baseline"]["peak_rss_kib"],
            f["no_newline_baseline"]["input_mib"],
            f["no_newline_baseline"]["seconds"],
        )
    } else if f.get("ours_ms").is_some() {
        format!(
            "{} ms vs {} ms = {}×",
            num(&f["ours_ms"]),
            num(&f["baseline_ms"]),
            num(&f["ratio"])
        )
    } else if f.get("ours_mib_s").is_some() {
        format!(
            "{} vs {} MiB/s = {}×; peak RSS {} MiB",
            num(&f["ours_mib_s"]),
            num(&f["baseline_mib_s"]),
            num(&f["ratio"]),
            num(&f["ours_peak_rss_mib"])
        )
    } else if let Some(a) = f.as_array() {
        a.iter()
            .map(|p| {
                format!(
                    "{}: median {} s (max {}), {} requests",
                    p["policy"].as_str().unwrap_or("?"),
                    num(&p["median_delay_s"]),
                    num(&p["max_delay_s"]),
                    num(&p["mean_requests"])
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    } else if f.get("load").is_some() {
        let l = &f["load"];
        format!(
            "{}/{} streams, {} errors, first event p50 {} ms, p99 {} ms; peak RSS {} MiB",
            l["completed"],
            l["streams"],
            l["errors"],
            num(&l["first_event_p50_ms"]),
            num(&l["first_event_p99_ms"]),
            num(&f["mock_peak_rss_mib"])
        )
    } else {
        f.to_string()
    }
}
