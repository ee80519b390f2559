//! Seeded, reproducible fault injection (think of str0m's netem).
//!
//! # Grammar
//!
//! A plan is a list of items separated by `;` or new lines. Blank items and
//! `#` comments (to the end of the line) are ignored, so a plan can live in a
//! file, one rule a line.
//!
//! ```text
//! plan    = item *( ";" item )
//! item    = "seed=" u64
//!         | target ":" action [ "=" value ] [ "x" count ] [ "@" when ]
//! when    = N            the N-th call (1-based) of the target
//!         | N "-" M      calls N to M
//!         | N "-"        call N and every later one
//!         | "%" P        each call with probability P percent (seeded)
//!         | "*"          every call (the default without "@" and "x")
//! count   = K            K consecutive calls from `when` (default from 1)
//! ```
//!
//! Targets are endpoints (each has its own call counter):
//! `token` (anonymous token), `session` (create session), `run_sse` (alias
//! `sse`), `upload`, `credits`, `state`, `render` (submit), `status` (render
//! status), `cancel`, `download` (output file and fallback), `claim`, and `*`
//! (any request). Two counters are special: `token:expire` counts every
//! request that carries a bearer token, `session:lose` every request that
//! names a session.
//!
//! | action | effect |
//! |---|---|
//! | `delay=DUR` | answer late by `DUR` (`250ms`, `2s`, `1.5s`; simulated time) |
//! | `500` … `599` | answer with that status and a plain-text or HTML body, doing nothing |
//! | `429[=SECS]` | rate limited, `Retry-After: SECS` (default 30, scaled), doing nothing |
//! | `reset[=K]` | do the work, then break the connection after `K` bytes of the body, or for `run_sse` after `K` events (default: half way) |
//! | `truncate` | `run_sse`: stop mid-event and close the body cleanly |
//! | `keepalive` | `run_sse`: send only keep-alives, then close (the edit still happens) |
//! | `expire` | the bearer token expires now → 1001 from here on |
//! | `lose` | the session is lost now → 1002 from here on |
//! | `fail` | `render`: the render fails half way |
//! | `error` | `run_sse`: an in-band `{"error": …, "error_details": …}` line ends the stream |
//! | `error-raw` | `run_sse`: the old unescaped, invalid-JSON `{"error": "he said "no""}` line |
//! | `errorcode` | `run_sse`: an `errorCode`/`errorMessage` event instead of the edit |
//! | `silent` | `run_sse`: the edit happens with no text at all |
//! | `long` | `run_sse`: minutes of keep-alives before the result |
//! | `temp` | `run_sse`: "I encountered a temporary issue" after the reply |
//!
//! Example: `run_sse:reset@1;state:500x2;token:expire@3;render:fail;seed=7`.
//! The same plan and seed over the same sequence of requests gives the same
//! faults.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use nemo_core::wire::Endpoint;

/// A parsed fault plan. `Default` injects nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// The seed given with `seed=N`, if any.
    pub seed: Option<u64>,
    /// The rules, in the order given.
    pub rules: Vec<FaultRule>,
}

/// Which requests a rule counts and applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    /// Every request.
    Any,
    /// One endpoint.
    Endpoint(Endpoint),
    /// Every request carrying a bearer token (`token:expire`).
    Authenticated,
    /// Every request naming a session (`session:lose`).
    WithSession,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer late by this much simulated time.
    Delay(Duration),
    /// Answer with this 5xx status without doing anything.
    Status(u16),
    /// Answer 429 with `Retry-After` of this many simulated seconds.
    RateLimit(f64),
    /// Do the work, then break the connection after this many body bytes
    /// (events for `run_sse`); `None` = half way.
    Reset(Option<u64>),
    /// `run_sse`: stop in the middle of an event, then close cleanly.
    Truncate,
    /// `run_sse`: keep-alives only, then close.
    KeepAliveOnly,
    /// The bearer token expires.
    Expire,
    /// The session is lost.
    Lose,
    /// `render`: the render fails.
    Fail,
    /// `run_sse`: in-band JSON error line.
    InBandError,
    /// `run_sse`: in-band error line with unescaped quotes (invalid JSON).
    InBandErrorRaw,
    /// `run_sse`: an `errorCode` event instead of the edit.
    ErrorCode,
    /// `run_sse`: a silent edit.
    Silent,
    /// `run_sse`: long work with keep-alives only before the result.
    LongWork,
    /// `run_sse`: a trailing "temporary issue" text.
    TemporaryIssue,
}

/// Which calls of its target a rule hits.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Every call.
    Always,
    /// Calls `from ..= from + count - 1` (1-based); `count: None` = open end.
    Calls {
        /// The first call hit.
        from: u64,
        /// How many calls are hit.
        count: Option<u64>,
    },
    /// Each call with this probability in percent, drawn from the seed.
    Percent(f64),
}

/// One rule of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What it counts.
    pub target: FaultTarget,
    /// What it does.
    pub action: FaultAction,
    /// When.
    pub when: When,
    /// The rule as written.
    pub text: String,
}

/// A fault spec that could not be parsed: which item and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault spec item {index} `{item}`: {message}")]
pub struct FaultSpecError {
    /// 1-based position of the item in the spec.
    pub index: usize,
    /// The item's text.
    pub item: String,
    /// What is wrong with it.
    pub message: String,
}

const TARGETS: &str =
    "token, session, run_sse, upload, credits, state, render, status, cancel, download, claim, *";
const ACTIONS: &str = "delay=DUR, 500..599, 429[=SECS], reset[=K], truncate, keepalive, expire, lose, fail, error, error-raw, errorcode, silent, long, temp";

fn parse_target(name: &str) -> Option<FaultTarget> {
    Some(FaultTarget::Endpoint(match name {
        "*" | "any" | "all" => return Some(FaultTarget::Any),
        "token" | "anonymous-token" | "anonymous_token" | "auth" => Endpoint::AnonymousToken,
        "session" | "create-session" | "create_session" => Endpoint::CreateSession,
        "run_sse" | "run-sse" | "sse" | "chat" => Endpoint::RunSse,
        "upload" => Endpoint::Upload,
        "credits" => Endpoint::Credits,
        "state" => Endpoint::State,
        "render" | "render-submit" | "export" => Endpoint::RenderSubmit,
        "status" | "render-status" => Endpoint::RenderStatus,
        "cancel" | "render-cancel" => Endpoint::RenderCancel,
        "download" | "media" => Endpoint::Download,
        "claim" | "claim-token" => Endpoint::ClaimToken,
        _ => return None,
    }))
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (num, mult) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 0.001)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * mult < 1e7).then(|| Duration::from_secs_f64(v * mult))
}

fn parse_rule(item: &str) -> Result<FaultRule, String> {
    let (target_text, rest) = item.split_once(':').ok_or_else(|| {
        format!("expected `target:action`, e.g. `state:500x2` (targets: {TARGETS})")
    })?;
    let target_text = target_text.trim().to_ascii_lowercase();
    let rest = rest.trim().to_ascii_lowercase();
    let target = parse_target(&target_text)
        .ok_or_else(|| format!("unknown target `{target_text}` (expected one of {TARGETS})"))?;

    // Split off `@when` first, then `xK`, then `=value`.
    let (head, when_text) = match rest.split_once('@') {
        Some((h, w)) => (h.trim(), Some(w.trim())),
        None => (rest.as_str(), None),
    };
    let (name, value, count) = split_action(head)?;
    let action = match name.as_str() {
        "delay" => {
            let v = value
                .clone()
                .ok_or("`delay` needs a duration, e.g. `delay=2s`")?;
            FaultAction::Delay(
                parse_duration(&v)
                    .ok_or_else(|| format!("bad duration `{v}` (e.g. 250ms, 2s, 1.5m)"))?,
            )
        }
        "429" => {
            let secs = match value.clone() {
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("bad Retry-After seconds `{v}`"))?,
                None => 30.0,
            };
            FaultAction::RateLimit(secs)
        }
        code if code.chars().all(|c| c.is_ascii_digit()) => {
            let status: u16 = code.parse().map_err(|_| format!("bad status `{code}`"))?;
            if !(500..=599).contains(&status) {
                return Err(format!(
                    "status `{status}` is not injectable (use 500..599 or 429)"
                ));
            }
            FaultAction::Status(status)
        }
        "reset" => FaultAction::Reset(match value.clone() {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("bad reset point `{v}` (a count of bytes or events)"))?,
            ),
            None => None,
        }),
        "truncate" => FaultAction::Truncate,
        "keepalive" | "keepalive-only" | "keepalives" => FaultAction::KeepAliveOnly,
        "expire" => FaultAction::Expire,
        "lose" | "lost" => FaultAction::Lose,
        "fail" => FaultAction::Fail,
        "error" => FaultAction::InBandError,
        "error-raw" | "error_raw" | "rawerror" => FaultAction::InBandErrorRaw,
        "errorcode" | "error-code" | "error_code" => FaultAction::ErrorCode,
        "silent" => FaultAction::Silent,
        "long" => FaultAction::LongWork,
        "temp" | "temporary" => FaultAction::TemporaryIssue,
        other => {
            return Err(format!(
                "unknown action `{other}` (expected one of {ACTIONS})"
            ))
        }
    };
    if value.is_some()
        && !matches!(
            action,
            FaultAction::Delay(_) | FaultAction::RateLimit(_) | FaultAction::Reset(_)
        )
    {
        return Err(format!("action `{name}` takes no `=value`"));
    }
    let sse_only = matches!(
        action,
        FaultAction::Truncate
            | FaultAction::KeepAliveOnly
            | FaultAction::InBandError
            | FaultAction::InBandErrorRaw
            | FaultAction::ErrorCode
            | FaultAction::Silent
            | FaultAction::LongWork
            | FaultAction::TemporaryIssue
    );
    if sse_only && target != FaultTarget::Endpoint(Endpoint::RunSse) {
        return Err(format!("action `{name}` applies to `run_sse` only"));
    }
    if action == FaultAction::Fail && target != FaultTarget::Endpoint(Endpoint::RenderSubmit) {
        return Err("action `fail` applies to `render` only".into());
    }
    let target = match (&action, target) {
        (FaultAction::Expire, FaultTarget::Endpoint(Endpoint::AnonymousToken)) => {
            FaultTarget::Authenticated
        }
        (FaultAction::Lose, FaultTarget::Endpoint(Endpoint::CreateSession)) => {
            FaultTarget::WithSession
        }
        (_, t) => t,
    };
    let when = parse_when(when_text, count)?;
    Ok(FaultRule {
        target,
        action,
        when,
        text: item.trim().to_owned(),
    })
}

/// Splits `500x2`, `reset=3x2`, `delay=2s`, `expire` into name, value, count.
fn split_action(head: &str) -> Result<(String, Option<String>, Option<u64>), String> {
    let head = head.trim();
    if head.is_empty() {
        return Err(format!("missing action (expected one of {ACTIONS})"));
    }
    // A trailing `x<digits>` is a count (no action name ends in `x`).
    let (body, count) = match head.rfind('x') {
        Some(i)
            if i + 1 < head.len() && head[i + 1..].chars().all(|c| c.is_ascii_digit()) && i > 0 =>
        {
            let k: u64 = head[i + 1..]
                .parse()
                .map_err(|_| format!("bad count `{}`", &head[i + 1..]))?;
            if k == 0 {
                return Err("a count `x0` hits nothing; use x1 or more".into());
            }
            (&head[..i], Some(k))
        }
        _ => (head, None),
    };
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n.trim().to_owned(), Some(v.trim().to_owned())),
        None => (body.trim().to_owned(), None),
    };
    if value.as_deref() == Some("") {
        return Err(format!("`{name}=` needs a value"));
    }
    Ok((name, value, count))
}

fn parse_when(text: Option<&str>, count: Option<u64>) -> Result<When, String> {
    let num = |s: &str| -> Result<u64, String> {
        let n: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("bad call number `{s}` in `@…`"))?;
        if n == 0 {
            Err("calls are counted from 1: `@0` never happens".into())
        } else {
            Ok(n)
        }
    };
    Ok(match text {
        None if count.is_none() => When::Always,
        None => When::Calls { from: 1, count },
        Some("*") if count.is_none() => When::Always,
        Some(p) if p.starts_with('%') => {
            if count.is_some() {
                return Err("`xK` and `@%P` cannot be combined".into());
            }
            let v: f64 = p[1..]
                .trim()
                .parse()
                .map_err(|_| format!("bad percentage `{p}`"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("percentage `{v}` is outside 0..100"));
            }
            When::Percent(v)
        }
        Some(range) if range.contains('-') => {
            if count.is_some() {
                return Err("`xK` and a range `@N-M` cannot be combined".into());
            }
            let (a, b) = range.split_once('-').unwrap_or((range, ""));
            let from = num(a)?;
            if b.trim().is_empty() {
                When::Calls { from, count: None }
            } else {
                let to = num(b)?;
                if to < from {
                    return Err(format!("empty range `{range}`"));
                }
                When::Calls {
                    from,
                    count: Some(to - from + 1),
                }
            }
        }
        Some(n) => When::Calls {
            from: num(n)?,
            count: Some(count.unwrap_or(1)),
        },
    })
}

impl FaultPlan {
    /// Parses a spec string (see the module docs for the grammar).
    pub fn parse(spec: &str) -> Result<FaultPlan, FaultSpecError> {
        let mut plan = FaultPlan::default();
        let cleaned: Vec<&str> = spec
            .lines()
            .map(|line| line.split_once('#').map_or(line, |(l, _)| l))
            .collect();
        let joined = cleaned.join(";");
        for (i, item) in joined
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let error = |message: String| FaultSpecError {
                index: i + 1,
                item: item.to_owned(),
                message,
            };
            if let Some(seed) = item
                .strip_prefix("seed=")
                .or_else(|| item.strip_prefix("seed ="))
            {
                let seed = seed.trim().parse().map_err(|_| {
                    error(format!("bad seed `{}` (an unsigned integer)", seed.trim()))
                })?;
                plan.seed = Some(seed);
                continue;
            }
            plan.rules.push(parse_rule(item).map_err(error)?);
        }
        Ok(plan)
    }

    /// Reads and parses a plan from a file (same grammar; one rule a line is
    /// fine; `#` starts a comment).
    pub fn from_file(path: &Path) -> Result<FaultPlan, FaultSpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| FaultSpecError {
            index: 0,
            item: path.display().to_string(),
            message: format!("cannot read the fault plan: {e}"),
        })?;
        Self::parse(&text)
    }

    /// True when the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl FromStr for FaultPlan {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = self.rules.iter().map(|r| r.text.clone()).collect();
        if let Some(seed) = self.seed {
            items.push(format!("seed={seed}"));
        }
        f.write_str(&items.join(";"))
    }
}

/// Who a request is, for counting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallKind {
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) authenticated: bool,
    pub(crate) with_session: bool,
}

/// The faults that hit one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Hits {
    pub(crate) actions: Vec<FaultAction>,
    pub(crate) rules: Vec<String>,
}

impl Hits {
    pub(crate) fn has(&self, f: impl Fn(&FaultAction) -> bool) -> bool {
        self.actions.iter().any(f)
    }

    pub(crate) fn delay(&self) -> Duration {
        self.actions
            .iter()
            .filter_map(|a| match a {
                FaultAction::Delay(d) => Some(*d),
                _ => None,
            })
            .sum()
    }

    /// The first action that replaces the answer (5xx or 429).
    pub(crate) fn refusal(&self) -> Option<&FaultAction> {
        self.actions
            .iter()
            .find(|a| matches!(a, FaultAction::Status(_) | FaultAction::RateLimit(_)))
    }

    pub(crate) fn reset(&self) -> Option<Option<u64>> {
        self.actions.iter().find_map(|a| match a {
            FaultAction::Reset(k) => Some(*k),
            _ => None,
        })
    }
}

/// Call counters and the seeded draw for `%P` rules.
#[derive(Debug)]
pub(crate) struct FaultState {
    plan: FaultPlan,
    counters: HashMap<FaultTarget, u64>,
    rng: fastrand::Rng,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan, seed: u64) -> Self {
        Self {
            plan,
            counters: HashMap::new(),
            rng: fastrand::Rng::with_seed(seed ^ 0x6e65_6d6f_6661_756c),
        }
    }

    /// Counts a request and returns the faults that hit it.
    pub(crate) fn on_request(&mut self, call: CallKind) -> Hits {
        let mut counted = vec![FaultTarget::Any];
        if let Some(e) = call.endpoint {
            counted.push(FaultTarget::Endpoint(e));
        }
        if call.authenticated {
            counted.push(FaultTarget::Authenticated);
        }
        if call.with_session {
            counted.push(FaultTarget::WithSession);
        }
        for t in &counted {
            *self.counters.entry(*t).or_insert(0) += 1;
        }
        let mut hits = Hits::default();
        for rule in &self.plan.rules {
            if !counted.contains(&rule.target) {
                continue;
            }
            let n = self.counters.get(&rule.target).copied().unwrap_or(0);
            let hit = match rule.when {
                When::Always => true,
                When::Calls { from, count } => {
                    n >= from && count.is_none_or(|c| n < from.saturating_add(c))
                }
                When::Percent(p) => self.rng.f64() * 100.0 < p,
            };
            if hit {
                hits.actions.push(rule.action.clone());
                hits.rules.push(rule.text.clone());
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example() {
        let plan =
            FaultPlan::parse("run_sse:reset@1;state:500x2;token:expire@3;render:fail;seed=7")
                .unwrap();
        assert_eq!(plan.seed, Some(7));
        assert_eq!(plan.rules.len(), 4);
        assert_eq!(plan.rules[0].action, FaultAction::Reset(None));
        assert_eq!(
            plan.rules[0].when,
            When::Calls {
                from: 1,
                count: Some(1)
            }
        );
        assert_eq!(plan.rules[1].action, FaultAction::Status(500));
        assert_eq!(
            plan.rules[1].when,
            When::Calls {
                from: 1,
                count: Some(2)
            }
        );
        assert_eq!(plan.rules[2].target, FaultTarget::Authenticated);
        assert_eq!(plan.rules[3].when, When::Always);
        assert_eq!(
            plan.to_string(),
            "run_sse:reset@1;state:500x2;token:expire@3;render:fail;seed=7"
        );
    }

    #[test]
    fn parses_values_ranges_and_comments() {
        let plan = FaultPlan::parse("# a plan\n*:delay=250ms@%50\ncredits:429=2x3@2 # burst\nsse:reset=3@2-4\nsession:lose@5-\n").unwrap();
        assert_eq!(
            plan.rules[0].action,
            FaultAction::Delay(Duration::from_millis(250))
        );
        assert_eq!(plan.rules[0].when, When::Percent(50.0));
        assert_eq!(plan.rules[1].action, FaultAction::RateLimit(2.0));
        assert_eq!(
            plan.rules[1].when,
            When::Calls {
                from: 2,
                count: Some(3)
            }
        );
        assert_eq!(plan.rules[2].action, FaultAction::Reset(Some(3)));
        assert_eq!(
            plan.rules[2].when,
            When::Calls {
                from: 2,
                count: Some(3)
            }
        );
        assert_eq!(plan.rules[3].target, FaultTarget::WithSession);
        assert_eq!(
            plan.rules[3].when,
            When::Calls {
                from: 5,
                count: None
            }
        );
        assert!(FaultPlan::parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("state:50x", "unknown action `50x`"),
            ("stat:500", "unknown target `stat`"),
            ("state", "expected `target:action`"),
            ("state:404", "not injectable"),
            ("credits:silent", "`run_sse` only"),
            ("state:fail", "`render` only"),
            ("state:500@0", "counted from 1"),
            ("state:delay=fast", "bad duration"),
            ("seed=x", "bad seed"),
            ("state:500@%150", "outside 0..100"),
            ("state:expire=3", "takes no `=value`"),
        ];
        for (spec, want) in cases {
            let err = FaultPlan::parse(&format!("credits:500;{spec}")).unwrap_err();
            assert_eq!(err.index, 2, "{spec}");
            assert!(err.to_string().contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn counts_calls_per_target() {
        let plan = FaultPlan::parse("state:500x2@2;token:expire@3").unwrap();
        let mut st = FaultState::new(plan, 1);
        let state = CallKind {
            endpoint: Some(Endpoint::State),
            authenticated: true,
            with_session: true,
        };
        let hit = |h: &Hits| h.refusal().is_some();
        assert!(!hit(&st.on_request(state)));
        assert!(hit(&st.on_request(state)));
        let third = st.on_request(state);
        assert!(hit(&third) && third.has(|a| *a == FaultAction::Expire));
        assert!(!hit(&st.on_request(state)));
    }

    #[test]
    fn percent_is_seeded() {
        let draw = |seed| {
            let mut st = FaultState::new(FaultPlan::parse("*:500@%30").unwrap(), seed);
            let call = CallKind {
                endpoint: None,
                authenticated: false,
                with_session: false,
            };
            (0..64)
                .map(|_| st.on_request(call).refusal().is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
