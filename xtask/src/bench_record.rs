//! `nemo --record` on a long event stream: peak RSS of a recording made
//! with `Recorder::to_file` (streamed to disk) against one made in memory
//! (`Recorder::new` + `save`, what `--record` did before), both through
//! `crates/nemo-har/examples/record_stream.rs` on a synthetic stream of
//! ADK-like events generated in 64 KiB chunks.
//!
//! The in-memory baseline runs on a tenth of the stream (it holds about
//! seven times the stream: at full size it would need gigabytes); both are
//! reported with the MiB per stream MB.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bench::{peak_rss_kib, root};
use crate::cargo;

/// The target: a 300 MB stream recorded in at most this much memory.
const TARGET_PEAK_MIB: f64 = 64.0;

/// Reads a child's pipe to its end on a thread.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Runs `cmd` to its end, sampling its peak RSS; returns the peak (KiB),
/// the wall time and its stdout.
fn run_sampled(cmd: &mut Command) -> Result<(u64, f64, String), String> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let pid = child.id();
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
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
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status}): {stderr}"));
    }
    Ok((peak, seconds, stdout))
}

/// One run of the example: its own figures plus the peak RSS.
fn record(example: &Path, dir: &Path, megabytes: u64, memory: bool) -> Result<Value, String> {
    let out = dir.join(if memory { "memory.har" } else { "streamed.har" });
    let mut cmd = Command::new(example);
    cmd.arg(megabytes.to_string()).arg(&out);
    if memory {
        cmd.arg("memory");
    }
    let (peak_kib, seconds, stdout) = run_sampled(&mut cmd)?;
    let mut figures: Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("record_stream: {e}: {stdout}"))?;
    let _ = std::fs::remove_file(&out);
    let peak_mib = peak_kib as f64 / 1024.0;
    figures["peak_rss_mib"] = json!(peak_mib);
    figures["peak_rss_mib_per_stream_mb"] = json!(peak_mib / megabytes as f64);
    figures["wall_s"] = json!(seconds);
    figures["mb_s"] = json!(megabytes as f64 / seconds);
    Ok(figures)
}

/// Builds the example, records a 300 MB stream (30 MB with `quick`) to a
/// file and a tenth of it in memory, and returns the result in the shape of
/// `bench.rs`'s: `measure`, `ours`, `baseline`, `target`, `figures`, `met`.
pub(crate) fn measure(quick: bool) -> Result<Value, String> {
    let megabytes: u64 = if quick { 30 } else { 300 };
    let root = root();
    eprintln!("==> build record_stream (release)");
    let built = cargo()
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "nemo-har",
            "--example",
            "record_stream",
        ])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !built.success() {
        return Err(format!("cargo build --example record_stream: {built}"));
    }
    let example = root.join("target/release/examples/record_stream");
    // Beside the repository (not /tmp, often a RAM disk that would count
    // the file as memory): the recording is written where a user would.
    let work = tempfile::tempdir_in(root.join("target")).map_err(|e| e.to_string())?;
    eprintln!("==> record a {megabytes} MB stream to a file");
    let ours = record(&example, work.path(), megabytes, false)?;
    let base_mb = (megabytes / 10).max(1);
    eprintln!("==> record a {base_mb} MB stream in memory (before)");
    let base = record(&example, work.path(), base_mb, true)?;
    let peak = ours["peak_rss_mib"].as_f64().unwrap_or(f64::MAX);
    let met = peak <= TARGET_PEAK_MIB;
    Ok(json!({
        "measure": format!("nemo --record on a {megabytes} MB event stream: peak RSS"),
        "ours": "Recorder::to_file (streamed to disk)",
        "baseline": format!("Recorder::new + save (in memory, before), on {base_mb} MB"),
        "target": format!("peak RSS ≤ {TARGET_PEAK_MIB} MiB for 300 MB"),
        "figures": {
            "stream_mb": megabytes,
            "ours_peak_rss_mib": peak,
            "ours": ours,
            "baseline": base,
            "baseline_stream_mb": base_mb,
        },
        "met": met,
    }))
}
