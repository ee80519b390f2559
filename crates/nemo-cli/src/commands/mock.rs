//! `nemo mock`: the NemoVideo simulator on 127.0.0.1, for tests, offline
//! work and CI. Prints `listening on http://127.0.0.1:PORT` first; point
//! `NEMO_API_URL` at it.

use std::path::Path;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_mock::{Dialect, FaultPlan, MockConfig, RenderShape};

/// Arguments of `nemo mock`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) port: u16,
    /// Seed for ids, agent choices and probabilistic faults.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) seed: u64,
    /// Faults to inject, e.g. "run_sse:reset@1;state:500x2;render:fail" (or a file with one rule a line).
    #[arg(long, value_name = "SPEC")]
    pub(crate) faults: Option<String>,
    /// Render-status shape: a (data.status, outputUrl), b (top-level status, output.url), c (with size).
    #[arg(long, default_value = "a", value_name = "a|b|c")]
    pub(crate) render_shape: RenderShape,
    /// The dialect of the wire: adk (ADK events; text pieces when the request asks for
    /// streaming), meta (segment details under `m`, volumes as a fraction or a percent, render
    /// answers with `success` at the top, ids as numbers, a lost session as ADK's 404), typed (`{"type":"text",…}` events,
    /// whole texts, codes ≥ 1000 on HTTP 200, errors as events), or mixed (the three take
    /// turns, from a point the seed sets).
    #[arg(long, default_value = "adk", value_name = "adk|meta|typed|mixed")]
    pub(crate) dialect: Dialect,
    /// Real seconds per simulated second (0.01: a 30 s render takes 0.3 s).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub(crate) time_scale: f64,
    /// Serve every render's output as a generated body of this size (e.g. 500M, 2G, 1048576)
    /// instead of the sample MP4: for download benchmarks; generated on the fly, never stored.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) render_bytes: Option<u64>,
}

/// Parses `500M`, `2G`, `64K` or a plain number of bytes (binary units).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 500M, 2G or a number of bytes)"))?;
    let factor: u64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use K, M or G)")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Runs `nemo mock` until Ctrl-C.
pub(crate) async fn exec(args: Args) -> Result<(), NemoError> {
    let bad = |m: String| NemoError::new(ErrorKind::BadInput, m);
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return Err(bad(format!(
            "--time-scale must be a positive number (got {}).",
            args.time_scale
        )));
    }
    let faults = match args.faults.as_deref() {
        None => Ok(FaultPlan::default()),
        Some(spec) if Path::new(spec).is_file() => FaultPlan::from_file(Path::new(spec)),
        Some(spec) => FaultPlan::parse(spec),
    }
    .map_err(|e| bad(format!("Bad --faults: {e}")))?;
    let config = MockConfig {
        seed: args.seed,
        faults,
        render_shape: args.render_shape,
        dialect: args.dialect,
        time_scale: args.time_scale,
        render_bytes: args.render_bytes,
        ..MockConfig::default()
    };
    nemo_mock::run(config, args.port).await.map_err(|e| {
        NemoError::new(
            ErrorKind::BadInput,
            format!("Cannot start the simulator on 127.0.0.1:{}: {e}", args.port),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("5X").is_err());
        assert!(parse_size("M").is_err());
    }
}
