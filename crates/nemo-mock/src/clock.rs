//! The simulator's clock: simulated seconds on the one tokio clock.

use std::time::Duration;

use nemo_clock::TokioClock;
use nemo_core::time::{Clock, Instant};

/// The simulator's view of a [`TokioClock`]: simulated time as a duration
/// since the backend was made, `scale` real seconds per simulated second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock(TokioClock);

impl SimClock {
    /// A clock whose origin is now, at `start_unix_ms` (default: the wall
    /// clock's reading now).
    pub(crate) fn new(scale: f64, start_unix_ms: Option<u64>) -> Self {
        let clock = TokioClock::simulated(scale);
        let start = start_unix_ms.unwrap_or_else(|| clock.unix_ms());
        Self(clock.starting_at(start))
    }

    /// Simulated time since the origin.
    pub(crate) fn now(&self) -> Duration {
        self.0.now().since_origin()
    }

    /// Sleeps until the simulated instant `at`.
    pub(crate) async fn sleep_until(&self, at: Duration) {
        self.0.sleep_until(Instant::from_origin(at)).await;
    }

    /// Sleeps for a simulated duration.
    pub(crate) async fn sleep(&self, d: Duration) {
        if !d.is_zero() {
            match self.0.real(d) {
                Some(real) => tokio::time::sleep(real).await,
                None => std::future::pending().await,
            }
        }
    }

    /// Unix milliseconds at simulated time `at`.
    pub(crate) fn unix_ms_at(&self, at: Duration) -> u64 {
        self.0.unix_ms_at(Instant::from_origin(at))
    }

    /// Real seconds per simulated second.
    pub(crate) fn scale(&self) -> f64 {
        self.0.scale()
    }
}
