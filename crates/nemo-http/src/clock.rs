//! [`SystemClock`]: the core's [`Clock`] on tokio's timer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nemo_core::time::{Clock, Instant};

/// Real time for the driver: monotonic time from tokio (so it also runs
/// under `tokio::time::pause()`, advancing instantly in tests), measured from
/// the moment the clock was made, and the wall clock for Unix milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    /// A clock whose origin ([`Instant::ZERO`]) is now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::from_origin(tokio::time::Instant::now().saturating_duration_since(self.origin))
    }

    async fn sleep_until(&self, deadline: Instant) {
        match self.origin.checked_add(deadline.since_origin()) {
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
    async fn follows_paused_time() {
        let clock = SystemClock::new();
        assert_eq!(clock.now(), Instant::ZERO);
        let deadline = Instant::from_origin(Duration::from_secs(600));
        clock.sleep_until(deadline).await;
        assert!(clock.now() >= deadline);
        assert!(clock.now() < deadline + Duration::from_secs(1));
        // A deadline in the past returns at once.
        clock.sleep_until(Instant::ZERO).await;
        assert!(clock.unix_ms() > 1_600_000_000_000);
    }
}
