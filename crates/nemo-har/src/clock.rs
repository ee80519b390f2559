//! [`FixedClock`]: tokio time with a fixed wall-clock origin.

use nemo_core::time::{Clock, Instant};

/// A [`Clock`] over `tokio::time` whose Unix time starts at a given
/// millisecond: under tokio's paused clock, recordings and replays made with
/// it are reproducible to the millisecond (render ids, `startedDateTime`).
#[derive(Debug, Clone)]
pub struct FixedClock {
    origin: tokio::time::Instant,
    unix_origin_ms: u64,
}

impl FixedClock {
    /// A clock whose origin is now, at `unix_origin_ms` on the wall clock.
    pub fn new(unix_origin_ms: u64) -> Self {
        Self {
            origin: tokio::time::Instant::now(),
            unix_origin_ms,
        }
    }
}

#[async_trait::async_trait]
impl Clock for FixedClock {
    fn now(&self) -> Instant {
        Instant::from_origin(self.origin.elapsed())
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.origin + deadline.since_origin()).await;
    }

    fn unix_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.unix_origin_ms.saturating_add(elapsed)
    }
}
