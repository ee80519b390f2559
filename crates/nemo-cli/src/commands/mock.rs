//! `nemo mock`: the NemoVideo simulator on 127.0.0.1, for tests, offline
//! work and CI. Prints `listening on http://127.0.0.1:PORT` first; point
//! `NEMO_API_URL` at it.

use std::path::Path;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_mock::{FaultPlan, MockConfig, RenderShape};

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
    /// Real seconds per simulated second (0.01: a 30 s render takes 0.3 s).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub(crate) time_scale: f64,
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
        time_scale: args.time_scale,
        ..MockConfig::default()
    };
    nemo_mock::run(config, args.port).await.map_err(|e| {
        NemoError::new(
            ErrorKind::BadInput,
            format!("Cannot start the simulator on 127.0.0.1:{}: {e}", args.port),
        )
    })
}
