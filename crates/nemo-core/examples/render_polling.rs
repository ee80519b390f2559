//! Render completion → detection, in virtual time, for three polling
//! policies over renders of 20–90 s: ours (`nemo_core::render`), the seeds'
//! fixed 30 s, and NemoVideo's own CLI (2 s, ×1.5, capped at 15 s).
//!
//! Progress follows the simulator's curve (a short pending phase at 5 %,
//! then linear to 99 %) and a queued curve (up to 12 s pending first).
//! Prints one JSON object; `cargo xtask bench` reads it.

use nemo_core::render::{PollPolicy, RenderTracker};
use nemo_core::time::Instant;

/// Progress reported `t` seconds after submission of a render of `total`
/// seconds that waits `queue` seconds first; `None` once completed.
fn progress(t: f64, total: f64, queue: f64) -> Option<f64> {
    if t >= total {
        return None;
    }
    let pending = queue + (total * 0.1).min(2.0);
    if t < pending {
        Some(5.0)
    } else {
        Some(10.0 + ((t - pending) / (total - pending) * 89.0).floor())
    }
}

/// A polling policy: (render seconds, queue seconds) → outcome.
type Policy = dyn Fn(f64, f64) -> Outcome;

struct Outcome {
    delay: f64,
    requests: u32,
}

fn ours(total: f64, queue: f64) -> Outcome {
    let mut tracker = RenderTracker::new(PollPolicy::default(), Instant::ZERO);
    tracker.observe_submission(Some(5.0));
    let mut next = tracker.first_poll();
    let mut requests = 0;
    loop {
        requests += 1;
        let t = next.since_origin().as_secs_f64();
        match progress(t, total, queue) {
            None => {
                return Outcome {
                    delay: t - total,
                    requests,
                }
            }
            Some(p) => next = tracker.observe(next, Some(p)),
        }
    }
}

fn fixed(total: f64, interval: f64) -> Outcome {
    let polls = (total / interval).ceil().max(1.0);
    Outcome {
        delay: polls * interval - total,
        requests: polls as u32,
    }
}

fn backoff(total: f64) -> Outcome {
    let (mut t, mut wait, mut requests) = (0.0, 2.0f64, 0);
    loop {
        t += wait;
        requests += 1;
        if t >= total {
            return Outcome {
                delay: t - total,
                requests,
            };
        }
        wait = (wait * 1.5).min(15.0);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut cases = Vec::new();
    for total in 20..=90 {
        for queue in [0.0, 4.0, 12.0] {
            cases.push((f64::from(total), queue));
        }
    }
    let policies: [(&str, &Policy); 3] = [
        ("nemo", &|t, q| ours(t + q, q)),
        ("fixed-30s (seeds)", &|t, q| fixed(t + q, 30.0)),
        ("2s-x1.5-cap15s (NemoVideo CLI)", &|t, q| backoff(t + q)),
    ];
    let mut out = Vec::new();
    for (name, policy) in policies {
        let results: Vec<Outcome> = cases.iter().map(|&(t, q)| policy(t, q)).collect();
        let delays: Vec<f64> = results.iter().map(|o| o.delay).collect();
        let requests: Vec<f64> = results.iter().map(|o| f64::from(o.requests)).collect();
        let max_delay = delays.iter().copied().fold(0.0, f64::max);
        out.push(format!(
            "{{\"policy\":\"{name}\",\"renders\":{},\"median_delay_s\":{:.3},\"max_delay_s\":{:.3},\"mean_requests\":{:.2},\"median_requests\":{:.1}}}",
            results.len(),
            median(delays),
            max_delay,
            requests.iter().sum::<f64>() / requests.len() as f64,
            median(requests.clone()),
        ));
    }
    println!("[{}]", out.join(","));
}
