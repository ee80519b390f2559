//! Render tracking: when to ask for a render's status next.
//!
//! The seeds poll every 30 s; NemoVideo's own CLI starts at 2 s and backs off
//! ×1.5 up to 15 s. Both waste either time or requests. This policy starts
//! fast, and once the server reports progress it predicts completion from the
//! progress rate and polls just before the predicted moment, then densely
//! around it. Without progress it falls back to the back-off. A cap bounds
//! the total wait.

use std::time::Duration;

use crate::time::Instant;

/// Tunables of render polling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollPolicy {
    /// First poll after submission.
    pub first: Duration,
    /// Shortest interval between polls.
    pub min: Duration,
    /// Longest interval between polls.
    pub max: Duration,
    /// Back-off factor when no progress is reported.
    pub factor: f64,
    /// Aim this fraction of the predicted remaining time ahead.
    pub lead: f64,
    /// Longest total wait before giving up (the job keeps running; it can be
    /// resumed).
    pub cap: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(2),
            min: Duration::from_millis(1500),
            max: Duration::from_secs(15),
            factor: 1.5,
            lead: 0.9,
            cap: Duration::from_secs(30 * 60),
        }
    }
}

/// The polling state of one render.
#[derive(Debug, Clone)]
pub struct RenderTracker {
    policy: PollPolicy,
    submitted: Instant,
    /// The progress reports so far: (time, percent), at most a few kept.
    samples: Vec<(Instant, f64)>,
    interval: Duration,
    polls: u32,
}

impl RenderTracker {
    /// A render submitted at `now`.
    pub fn new(policy: PollPolicy, now: Instant) -> Self {
        Self {
            policy,
            submitted: now,
            samples: Vec::new(),
            interval: policy.first,
            polls: 0,
        }
    }

    /// Records the progress reported at the submission itself (usually 5).
    pub fn observe_submission(&mut self, progress: Option<f64>) {
        if let Some(p) = progress {
            self.samples.push((self.submitted, p));
        }
    }

    /// Status requests made so far.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// When the render was submitted.
    pub fn submitted(&self) -> Instant {
        self.submitted
    }

    /// True once the cap has passed.
    pub fn expired(&self, now: Instant) -> bool {
        now - self.submitted >= self.policy.cap
    }

    /// When to send the first status request.
    pub fn first_poll(&self) -> Instant {
        self.submitted + self.policy.first
    }

    /// Records a status answer at `now` and returns when to poll next.
    pub fn observe(&mut self, now: Instant, progress: Option<f64>) -> Instant {
        self.polls += 1;
        if let Some(p) = progress {
            self.record(now, p);
        }
        let backoff = self.interval;
        self.interval = Duration::from_secs_f64(
            (self.interval.as_secs_f64() * self.policy.factor).min(self.policy.max.as_secs_f64()),
        );
        let wait = self.predicted_remaining().map_or(backoff, |remaining| {
            let aim = remaining.as_secs_f64() * self.policy.lead;
            Duration::from_secs_f64(
                aim.clamp(self.policy.min.as_secs_f64(), self.policy.max.as_secs_f64()),
            )
        });
        now + wait
    }

    fn record(&mut self, now: Instant, progress: f64) {
        // Keep the sample where progress last stood still (the anchor of the
        // rate) and the latest one; the rest cannot change the prediction.
        let anchor = self.anchor_index();
        self.samples.drain(..anchor);
        if self.samples.len() > 2 {
            let last = self.samples.len() - 1;
            self.samples.drain(1..last);
        }
        self.samples.push((now, progress));
    }

    /// The last sample before progress started to move: a render may sit in
    /// a queue first, and measuring the rate from the submission would
    /// predict a late finish.
    fn anchor_index(&self) -> usize {
        self.samples
            .windows(2)
            .rposition(|w| w[1].1 <= w[0].1)
            .map_or(0, |i| i + 1)
    }

    /// Time left until completion, predicted from the progress rate since
    /// progress began to move.
    pub(crate) fn predicted_remaining(&self) -> Option<Duration> {
        let (t0, p0) = *self.samples.get(self.anchor_index())?;
        let (t1, p1) = *self.samples.last()?;
        let dt = (t1 - t0).as_secs_f64();
        let dp = p1 - p0;
        if dt <= 0.0 || dp <= 0.0 {
            return None;
        }
        let rate = dp / dt;
        Some(Duration::from_secs_f64(
            ((100.0 - p1).max(0.0) / rate).min(3600.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a render of `total` seconds whose progress grows linearly
    /// from 5 %, polled by the tracker; returns (delay after completion, polls).
    fn simulate(total: f64, report_progress: bool) -> (f64, u32) {
        let policy = PollPolicy::default();
        let start = Instant::ZERO;
        let mut t = RenderTracker::new(policy, start);
        t.observe_submission(report_progress.then_some(5.0));
        let mut next = t.first_poll();
        loop {
            let elapsed = (next - start).as_secs_f64();
            if elapsed >= total {
                return (elapsed - total, t.polls() + 1);
            }
            let p = 5.0 + 95.0 * elapsed / total;
            next = t.observe(next, report_progress.then_some(p));
        }
    }

    #[test]
    fn detects_completion_quickly_with_progress() {
        let mut delays = Vec::new();
        for total in (20..=90).step_by(5) {
            let (delay, polls) = simulate(f64::from(total), true);
            assert!(delay <= 2.0, "render of {total}s detected {delay:.2}s late");
            assert!(polls <= 12, "render of {total}s took {polls} polls");
            delays.push(delay);
        }
        delays.sort_by(f64::total_cmp);
        assert!(delays[delays.len() / 2] <= 1.5);
    }

    #[test]
    fn falls_back_to_backoff_without_progress() {
        let (delay, polls) = simulate(60.0, false);
        assert!(delay <= 15.0);
        assert!(polls <= 10, "{polls}");
    }
}
