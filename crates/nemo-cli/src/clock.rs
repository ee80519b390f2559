//! How fast the clock `nemo` waits on runs: real time, optionally sped up
//! (the one clock is `nemo_clock::TokioClock`, made by `nemo_client`).
//!
//! `nemo` waits on real time (retry back-off, render polling, the "still
//! working" notice). Against the simulator running at a fraction of real
//! speed (`nemo mock --time-scale 0.01`, the demo, the tests), the client's
//! waits shrink by the same factor when `NEMO_TIME_SCALE` is set, so a
//! thirty-second render is polled in a third of a second.

/// The clock scale for a command: `scale` when the command fixes it (the
/// demo), else `NEMO_TIME_SCALE` (default 1: real time).
pub(crate) fn scale(scale: Option<f64>) -> f64 {
    scale.unwrap_or_else(|| {
        std::env::var("NEMO_TIME_SCALE")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(1.0)
    })
}
