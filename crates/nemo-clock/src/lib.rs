//! `nemo-clock`: [`TokioClock`], the one [`Clock`] over tokio's timer.
//!
//! It lives outside `nemo-core`, which reads no clock and needs no runtime:
//! the core only defines the [`Clock`] trait its driver waits on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nemo_core::time::{Clock, Instant};

/// The [`Clock`] every tokio driver uses: the client over HTTP (`nemo-http`
/// re-exports it as `SystemClock`), the simulator and its in-process
/// transport (`nemo-mock`), recordings and replays (`nemo-har`).
///
/// - **Monotonic time** is tokio's, measured from the moment the clock was
///   made ([`Instant::ZERO`]). It follows tokio's paused, auto-advancing test
///   time, so a ten-minute session runs in an instant under
///   `#[tokio::test(start_paused = true)]`.
/// - **Scale**: one second of the clock lasts `scale` real seconds
///   ([`TokioClock::scaled`] for a client, [`TokioClock::simulated`] for the
///   simulator's world). Against a simulator at 0.01, the client's waits
///   (back-off, render polling, "still working") shrink by the same factor.
/// - **Unix time** is the wall clock, read on every call; or, after
///   [`TokioClock::starting_at`], a fixed value at the origin that advances
///   with the clock, so recordings made under the paused clock are the same
///   to the millisecond every time (render ids, `startedDateTime`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use nemo_clock::TokioClock;
/// use nemo_core::time::{Clock, Instant};
///
/// let clock = TokioClock::new().starting_at(1_780_000_000_000);
/// clock.sleep_until(Instant::from_origin(Duration::from_secs(90))).await;
/// assert_eq!(clock.unix_ms(), 1_780_000_090_000);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    /// Real seconds per second of this clock (1.0: real time).
    scale: f64,
    /// Unix milliseconds at the origin; `None`: read the wall clock.
    unix_origin_ms: Option<u64>,
}

/// The time scale a client runs at: `scale` when it is in `(0, 1]`, else 1
/// (real time). A client may wait less than the service asks (against a
/// sped-up simulator), never more. The one rule for the client's clock
/// ([`TokioClock::scaled`]) and its HTTP limits.
pub fn client_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale.min(1.0)
    } else {
        1.0
    }
}

impl TokioClock {
    /// A real-time clock whose origin ([`Instant::ZERO`]) is now.
    pub fn new() -> Self {
        Self::simulated(1.0)
    }

    /// A client's clock where one second lasts `scale` real seconds
    /// ([`client_scale`]: a number in `(0, 1]`, anything else real time).
    pub fn scaled(scale: f64) -> Self {
        Self::simulated(client_scale(scale))
    }

    /// A simulated world's clock where one second lasts `scale` real seconds:
    /// any positive number (above 1 the world runs slower than real time);
    /// anything else means real time.
    pub fn simulated(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Self {
            origin: tokio::time::Instant::now(),
            scale,
            unix_origin_ms: None,
        }
    }

    /// The same clock with Unix time `unix_origin_ms` at its origin,
    /// advancing with the clock instead of following the wall clock.
    pub fn starting_at(self, unix_origin_ms: u64) -> Self {
        Self {
            unix_origin_ms: Some(unix_origin_ms),
            ..self
        }
    }

    /// Real seconds per second of this clock.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// How long `d` of this clock lasts in real time (`None`: longer than
    /// the platform can count).
    pub fn real(&self, d: Duration) -> Option<Duration> {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.scale).ok()
    }

    /// Unix milliseconds at `at` on this clock's timeline. Without a fixed
    /// origin: the wall clock now, moved by `at - now`.
    pub fn unix_ms_at(&self, at: Instant) -> u64 {
        match self.unix_origin_ms {
            Some(origin) => origin.saturating_add(millis(at.since_origin())),
            None => {
                let (now, wall) = (self.now(), wall_clock_ms());
                if at >= now {
                    wall.saturating_add(millis(at - now))
                } else {
                    wall.saturating_sub(millis(now - at))
                }
            }
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
        let real = tokio::time::Instant::now().saturating_duration_since(self.origin);
        Instant::from_origin(real.div_f64(self.scale))
    }

    async fn sleep_until(&self, deadline: Instant) {
        match self
            .real(deadline.since_origin())
            .and_then(|r| self.origin.checked_add(r))
        {
            Some(at) => tokio::time::sleep_until(at).await,
            // Further away than the platform can count: never.
            None => std::future::pending().await,
        }
    }

    fn unix_ms(&self) -> u64 {
        match self.unix_origin_ms {
            Some(_) => self.unix_ms_at(self.now()),
            None => wall_clock_ms(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let clock = TokioClock::new();
        assert_eq!(clock.now(), Instant::ZERO);
        let deadline = Instant::from_origin(Duration::from_secs(600));
        clock.sleep_until(deadline).await;
        assert!(clock.now() >= deadline);
        assert!(clock.now() < deadline + Duration::from_secs(1));
        // A deadline in the past returns at once.
        clock.sleep_until(Instant::ZERO).await;
        assert!(clock.unix_ms() > 1_600_000_000_000);
        // Further away than the platform can count: never.
        let never = clock.sleep_until(Instant::from_origin(Duration::MAX));
        assert!(tokio::time::timeout(Duration::from_secs(1 << 40), never)
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_scaled_second_is_short() {
        let clock = TokioClock::scaled(0.01);
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
        assert_eq!(TokioClock::scaled(-1.0).scale(), 1.0);
        assert_eq!(TokioClock::scaled(f64::NAN).scale(), 1.0);
        // A client never waits longer than asked; a simulated world may.
        assert_eq!(TokioClock::scaled(7.0).scale(), 1.0);
        assert_eq!(TokioClock::simulated(7.0).scale(), 7.0);
        assert_eq!(TokioClock::simulated(0.0).scale(), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_unix_origin_advances_with_the_clock() {
        let clock = TokioClock::simulated(0.5).starting_at(1_780_000_000_000);
        assert_eq!(clock.unix_ms(), 1_780_000_000_000);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), Instant::from_origin(Duration::from_secs(3)));
        assert_eq!(clock.unix_ms(), 1_780_000_003_000);
        let later = Instant::from_origin(Duration::from_secs(60));
        assert_eq!(clock.unix_ms_at(later), 1_780_000_060_000);
        assert_eq!(
            clock.real(Duration::from_secs(60)),
            Some(Duration::from_secs(30))
        );

        // Following the wall clock, `unix_ms_at` is measured from now.
        let wall = TokioClock::new();
        let now = wall.unix_ms();
        let at = wall.unix_ms_at(Instant::from_origin(Duration::from_secs(60)));
        assert!((59_000..61_000).contains(&(at - now)), "{}", at - now);
    }
}
