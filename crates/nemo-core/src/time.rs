//! Time as the machine sees it: a value handed in, never read from a clock.
//!
//! [`Instant`] is a point on a monotonic timeline whose origin the driver
//! chooses (the moment the session started, or zero in a test). Because the
//! core never reads a clock, a whole session — a 10-minute stream of
//! keep-alives, a 90-second render — runs in microseconds in a test that
//! advances time itself, or under tokio's paused clock through the driver.
//!
//! Also here: dates as the wire and recordings write them
//! ([`rfc3339`], [`rfc3339_millis`], [`parse_rfc3339`]). The clock that
//! reads time for a tokio driver is `nemo_clock::TokioClock`, in a crate of
//! its own: this one reads no clock at all.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in monotonic time, measured from an origin the driver picks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin of the driver's timeline (a session's first instant).
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
/// `TokioClock` (feature `tokio`) is the one over tokio's timer (it also
/// runs under tokio's paused, auto-advancing test time); tests of the
/// machine itself need no clock at all.
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

/// Formats Unix milliseconds as an RFC 3339 UTC date-time to the second
/// (`2026-05-01T12:00:00Z`).
pub fn rfc3339(unix_ms: u64) -> String {
    format!("{}Z", date_time(unix_ms))
}

/// Formats Unix milliseconds as an RFC 3339 UTC date-time with milliseconds
/// (`2026-05-01T12:00:00.000Z`), as HAR's `startedDateTime` has it.
pub fn rfc3339_millis(unix_ms: u64) -> String {
    format!("{}.{:03}Z", date_time(unix_ms), unix_ms % 1000)
}

/// Parses an RFC 3339 date-time (`Z` or a `±hh:mm` offset, any fraction, to
/// the millisecond) to Unix milliseconds. `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, time) = t.split_once(['T', 't', ' '])?;
    let mut dp = date.splitn(3, '-');
    let y = num(dp.next()?)?;
    let mo = num(dp.next()?)?;
    let d = num(dp.next()?)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (clock, offset_min) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        (c, sign * (num(oh)? * 60 + num(om)?))
    } else {
        (time, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut tp = hms.splitn(3, ':');
    let h = num(tp.next()?)?;
    let mi = num(tp.next()?)?;
    let s = num(tp.next().unwrap_or("0"))?;
    let ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        let n = num(&digits)?;
        n * 10_i64.pow(3 - digits.len() as u32)
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

/// `YYYY-MM-DDThh:mm:ss` (UTC) of Unix milliseconds.
fn date_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01 (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_262_134_520), "2026-11-21T11:55:34Z");
        assert_eq!(
            rfc3339_millis(1_795_262_134_520),
            "2026-11-21T11:55:34.520Z"
        );
        assert_eq!(rfc3339_millis(5), "1970-01-01T00:00:00.005Z");
        for ms in [0, 951_782_400_123, 1_795_262_134_520] {
            assert_eq!(parse_rfc3339(&rfc3339_millis(ms)), Some(ms));
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms / 1000 * 1000));
        }
        assert_eq!(
            parse_rfc3339("2026-05-01T14:00:00.5+02:00"),
            parse_rfc3339("2026-05-01T12:00:00.500Z")
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
    }
}
