//! `cargo xtask fuzz --seconds N [--target NAME]… [--sanitizer none|address]`:
//! runs every cargo-fuzz target of `fuzz/` for N seconds each and prints a
//! table of executions, time and crashes.
//!
//! The toolchain is stable: cargo-fuzz needs nightly flags, so the runs set
//! `RUSTC_BOOTSTRAP=1`. Install cargo-fuzz with `cargo install cargo-fuzz`.
//! Crashes land in `fuzz/artifacts/<target>/`; the corpus grows in
//! `fuzz/corpus/<target>/` (both ignored by git).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The targets in `fuzz/Cargo.toml`, in the order they run.
pub(crate) const TARGETS: &[&str] = &[
    "sse_decoder",
    "adk_classify",
    "api_envelope",
    "draft_diff",
    "route",
    "gui_translate",
];

struct Options {
    seconds: u64,
    targets: Vec<String>,
    sanitizer: String,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        seconds: 60,
        targets: Vec::new(),
        sanitizer: "address".into(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--seconds" | "-s" => {
                let v = value("--seconds")?;
                opts.seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: `{v}` is not a number of seconds"))?;
            }
            "--target" | "-t" => {
                let v = value("--target")?;
                if !TARGETS.contains(&v.as_str()) {
                    return Err(format!(
                        "unknown fuzz target `{v}` (one of {})",
                        TARGETS.join(", ")
                    ));
                }
                opts.targets.push(v);
            }
            "--sanitizer" => opts.sanitizer = value("--sanitizer")?,
            other => return Err(format!("unknown option `{other}` for `cargo xtask fuzz`")),
        }
    }
    if opts.targets.is_empty() {
        opts.targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(opts)
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("fuzz"))
        .unwrap_or_else(|| PathBuf::from("fuzz"))
}

/// One target's figures, read from libFuzzer's last lines.
#[derive(Debug, Default)]
struct Figures {
    execs: u64,
    seconds: f64,
    crashed: bool,
    coverage: Option<u64>,
}

fn read_figures(log: &str) -> Figures {
    let mut f = Figures::default();
    for line in log.lines() {
        // "Done 123456 runs in 61 second(s)"
        if let Some(rest) = line.strip_prefix("Done ") {
            let mut words = rest.split_whitespace();
            f.execs = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
        // "#123456\tDONE   cov: 812 ft: 2310 corp: ..."
        if let Some(i) = line.find("cov: ") {
            f.coverage = line[i + 5..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .or(f.coverage);
        }
        if line.contains("ERROR: libFuzzer") || line.contains("panicked at") {
            f.crashed = true;
        }
    }
    f
}

/// Runs the fuzzers.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    let dir = fuzz_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let probe = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz`".into());
    }
    let mut rows = Vec::new();
    for target in &opts.targets {
        eprintln!("==> fuzz {target} for {} s", opts.seconds);
        let started = Instant::now();
        let output = Command::new(&cargo)
            .current_dir(&dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                "--sanitizer",
                &opts.sanitizer,
                target,
                "--",
                &format!("-max_total_time={}", opts.seconds),
                "-rss_limit_mb=2048",
                "-malloc_limit_mb=512",
                "-print_final_stats=1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cargo fuzz run {target}: could not start: {e}"))?;
        let log = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        let mut figures = read_figures(&log);
        figures.seconds = started.elapsed().as_secs_f64();
        if !output.status.success() {
            figures.crashed = true;
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        rows.push((target.clone(), figures));
    }
    println!(
        "{:<14} {:>12} {:>9} {:>8} {:>8}",
        "target", "execs", "seconds", "cov", "crashes"
    );
    let mut failed = Vec::new();
    for (target, f) in &rows {
        println!(
            "{:<14} {:>12} {:>9.0} {:>8} {:>8}",
            target,
            f.execs,
            f.seconds,
            f.coverage.map_or("-".into(), |c| c.to_string()),
            u8::from(f.crashed)
        );
        if f.crashed {
            failed.push(target.as_str());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets failed: {} (inputs in fuzz/artifacts/)",
            failed.join(", ")
        ))
    }
}
