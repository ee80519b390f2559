//! Time as the machine sees it: a value handed in, never read from a clock.
//!
//! [`Instant`] is a point on a monotonic timeline whose origin the driver
//! chooses (the moment the session started, or zero in a test). Because the
//! core never reads a clock, a whole session — a 10-minute stream of
//! keep-alives, a 90-second render — runs in microseconds in a test that
//! advances time itself, or under tokio's paused clock through the driver.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in monotonic time, measured from an origin the driver picks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `elapsed` after the origin.
    pub const fn from_origin(elapsed: Duration) -> Self {
        Instant(elapsed)
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 = self.0.saturating_add(rhs);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:.3}s", self.0.as_secs_f64())
    }
}

/// A source of time for the async [`driver`](crate::driver): the one place
/// where a clock is read and where waiting happens.
///
/// `nemo-http` provides a tokio-backed clock (which also runs under tokio's
/// paused, auto-advancing test time); tests of the machine itself need no
/// clock at all.
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    /// Now, on the machine's timeline.
    fn now(&self) -> Instant;
    /// Completes at `deadline` (at once if it has passed).
    async fn sleep_until(&self, deadline: Instant);
    /// Milliseconds since the Unix epoch (for render ids such as `render_<ms>`).
    fn unix_ms(&self) -> u64;
}

/// Formats a duration the way users read it: `45s`, `2m05s`, `1h02m`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let a = Instant::from_origin(Duration::from_secs(5));
        let b = a + Duration::from_secs(3);
        assert_eq!(b - a, Duration::from_secs(3));
        assert_eq!(a - b, Duration::ZERO);
        assert!(b > a);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
    }
}
