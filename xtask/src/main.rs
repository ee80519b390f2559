//! `cargo xtask`: the project's own tasks.
//!
//! - `cargo xtask ci` — what CI runs: format check, clippy with `-D warnings`,
//!   every test of the workspace.
//! - `cargo xtask fmt` — format the workspace.
//! - `cargo xtask bench [--quick]` — the benchmarks, written to
//!   `docs/BENCHMARKS.md` (see `bench.rs`).
//! - `cargo xtask fixtures` — regenerate the recorded sessions in
//!   `fixtures/sessions/` from the simulator (see `docs/FIXTURES.md`).

mod bench;
mod bench_record;
mod fixtures;
mod fuzz;

use std::process::{Command, ExitCode};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("==> {name}");
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    step("cargo clippy -D warnings", clippy)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    step("cargo test --workspace", test)?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fixtures") => fixtures::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("fmt") => {
            let mut fmt = cargo();
            fmt.args(["fmt", "--all"]);
            step("cargo fmt", fmt)
        }
        _ => {
            eprintln!("usage: cargo xtask <ci|fmt|fixtures|bench|fuzz>\n\n  ci        format check, clippy -D warnings, all tests (what CI runs)\n  fmt       format the workspace\n  fixtures  regenerate fixtures/sessions/*.har from the simulator\n  bench     benchmarks against named baselines → docs/BENCHMARKS.md (--quick: small sizes)\n  fuzz      run every fuzz target (--seconds N)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
