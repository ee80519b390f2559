//! [`SystemClock`]: the core's [`Clock`] on tokio's timer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nemo_core::time::{Clock, Instant};

/// Real time for the driver: monotonic time from tokio (so it also runs
/// under `tokio::time::pause()`, advancing instantly in tests), measured from
/// the moment the clock was made, and the wall clock for Unix milliseconds.
///
/// A clock can also run faster than real time ([`SystemClock::scaled`]):
/// against a simulator running at a fraction of real speed, the client's
/// waits (back-off, render polling, "still working") shrink by the same
/// factor.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: tokio::time::Instant,
    /// Real seconds per machine second (1.0: real time).
    scale: f64,
}

impl SystemClock {
    /// A real-time clock whose origin ([`Instant::ZERO`]) is now.
    pub fn new() -> Self {
        Self::scaled(1.0)
    }

    /// A clock where one machine second lasts `scale` real seconds (a
    /// number in `(0, 1]`; anything else means real time).
    pub fn scaled(scale: f64) -> Self {
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

    /// Real seconds per machine second.
    pub fn scale(&self) -> f64 {
        self.scale
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
        let real = tokio::time::Instant::now().saturating_duration_since(self.origin);
        Instant::from_origin(real.div_f64(self.scale))
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

    #[tokio::test(start_paused = true)]
    async fn a_scaled_second_is_short() {
        let clock = SystemClock::scaled(0.01);
        let start = tokio::time::Instant::now();
        clock
            .sleep_until(Instant::from_origin(Duration::from_secs(30)))
            .await;
        let real = start.elapsed();
        assert!(
            real >= Duration::from_millis(300) && real < Duration::from_millis(310),
            "{real:?}"
        );
        assert!(clock.now() >= Instant::from_origin(Duration::from_secs(30)));
        assert_eq!(SystemClock::scaled(-1.0).scale(), 1.0);
        assert_eq!(SystemClock::scaled(f64::NAN).scale(), 1.0);
        assert_eq!(SystemClock::scaled(7.0).scale(), 1.0);
    }
}
