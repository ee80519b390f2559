//! [`ScaledClock`]: real time, optionally sped up.
//!
//! `nemo` waits on real time (retry back-off, render polling, the "still
//! working" notice). Against the simulator running at a fraction of real
//! speed (`nemo mock --time-scale 0.01`, the demo, the tests), the client's
//! waits shrink by the same factor when `NEMO_TIME_SCALE` is set, so a
//! thirty-second render is polled in a third of a second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nemo_core::time::{Clock, Instant};

/// A clock on tokio's timer where one machine second lasts `scale` real
/// seconds (1.0 = real time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScaledClock {
    origin: tokio::time::Instant,
    scale: f64,
}

impl ScaledClock {
    /// A clock whose origin is now.
    pub(crate) fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale.min(1.0)
        } else {
            1.0
        };
        Self {
            origin: tokio::time::Instant::now(),
            scale,
        }
    }

    /// The scale from `NEMO_TIME_SCALE` (default 1: real time).
    pub(crate) fn from_env() -> Self {
        let scale = std::env::var("NEMO_TIME_SCALE")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        Self::new(scale)
    }
}

#[async_trait]
impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        Instant::from_origin(self.origin.elapsed().div_f64(self.scale))
    }

    async fn sleep_until(&self, deadline: Instant) {
        let real =
            Duration::try_from_secs_f64(deadline.since_origin().as_secs_f64() * self.scale).ok();
        match real.and_then(|r| self.origin.checked_add(r)) {
            Some(at) => tokio::time::sleep_until(at).await,
            // Further away than the platform can count: never.
            None => std::future::pending().await,
        }
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_scaled_second_is_short() {
        let clock = ScaledClock::new(0.01);
        let start = tokio::time::Instant::now();
        clock
            .sleep_until(Instant::from_origin(Duration::from_secs(10)))
            .await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        assert!(clock.now() >= Instant::from_origin(Duration::from_secs(10)));
    }
}
