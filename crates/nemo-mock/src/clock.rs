//! Time: simulated seconds mapped onto tokio's clock, and a
//! [`Clock`](nemo_core::time::Clock) for drivers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nemo_core::time::{Clock, Instant};

/// A [`Clock`] over `tokio::time`: it follows tokio's paused, auto-advancing
/// test time, so a driver using it runs a ten-minute session in an instant
/// under `#[tokio::test(start_paused = true)]`.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    unix_origin_ms: u64,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
            unix_origin_ms: wall_clock_ms(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_origin(self.origin.elapsed())
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.origin + deadline.since_origin()).await;
    }

    fn unix_ms(&self) -> u64 {
        self.unix_origin_ms + self.origin.elapsed().as_millis() as u64
    }
}

pub(crate) fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Simulated time: `scale` real seconds per simulated second, starting at
/// the backend's creation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock {
    origin: tokio::time::Instant,
    scale: f64,
    unix_origin_ms: u64,
}

impl SimClock {
    pub(crate) fn new(scale: f64, unix_origin_ms: u64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Self {
            origin: tokio::time::Instant::now(),
            scale,
            unix_origin_ms,
        }
    }

    /// Simulated time since the origin.
    pub(crate) fn now(&self) -> Duration {
        let real = self.origin.elapsed();
        Duration::from_secs_f64(real.as_secs_f64() / self.scale)
    }

    /// The real duration of a simulated one.
    pub(crate) fn real(&self, sim: Duration) -> Duration {
        Duration::from_secs_f64((sim.as_secs_f64() * self.scale).min(1e9))
    }

    /// Sleeps until the simulated instant `at`.
    pub(crate) async fn sleep_until(&self, at: Duration) {
        tokio::time::sleep_until(self.origin + self.real(at)).await;
    }

    /// Sleeps for a simulated duration.
    pub(crate) async fn sleep(&self, d: Duration) {
        if !d.is_zero() {
            tokio::time::sleep(self.real(d)).await;
        }
    }

    /// Unix milliseconds at simulated time `at`.
    pub(crate) fn unix_ms_at(&self, at: Duration) -> u64 {
        self.unix_origin_ms + at.as_millis() as u64
    }

    pub(crate) fn scale(&self) -> f64 {
        self.scale
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-05-01T12:00:00Z`).
pub(crate) fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_262_134_520), "2026-11-21T11:55:34Z");
    }
}
