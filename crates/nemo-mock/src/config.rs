//! How a simulated backend behaves: seed, faults, render shape, speed.

use std::time::Duration;

use crate::faults::FaultPlan;

/// Which of the three documented render-status shapes (PROTOCOL.md §4.8) the
/// simulator answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderShape {
    /// `{"success":true,"data":{"status","progress","outputUrl"}}`.
    #[default]
    A,
    /// `{"status","progress","output":{"url"}}` at the top level.
    B,
    /// `{"status","progress","output":{"url","duration","size"}}`.
    C,
}

impl std::str::FromStr for RenderShape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "a" => Ok(RenderShape::A),
            "b" => Ok(RenderShape::B),
            "c" => Ok(RenderShape::C),
            other => Err(format!(
                "unknown render shape `{other}` (expected a, b or c)"
            )),
        }
    }
}

/// Which dialect of the wire the simulator speaks (`../shared/PROTOCOL.md`
/// §10: where the published texts disagree, the real service may send any
/// of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// ADK events (camelCase, partial text pieces), segment details on the
    /// segment, the render shape of `render_shape`: what the simulator
    /// always spoke.
    #[default]
    Adk,
    /// Segment details under `m` (name, text, volume as a fraction), render
    /// answers with `"success":true` at the top level and no `data`, session
    /// ids as numbers, credits as numeric strings, error codes as strings,
    /// a lost session as ADK's api_server says it (`404 {"detail":"Session
    /// not found"}`), ADK events with whole texts only (ADK's default
    /// without `streaming`).
    Meta,
    /// The typed event dialect (`{"type":"text","content":…}`,
    /// `tool_call`, `tool_result`, `heartbeat`), whole texts only, and every
    /// code ≥ 1000 on HTTP 200.
    Typed,
    /// Each answer picks one of the others, from the seed, in turn; render
    /// polls take their turns apart, so a run's answers speak the same
    /// dialects whatever the time scale.
    Mixed,
}

impl Dialect {
    /// Every dialect, as `--dialect` names it.
    pub const ALL: [Dialect; 4] = [Dialect::Adk, Dialect::Meta, Dialect::Typed, Dialect::Mixed];

    /// The dialect's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Adk => "adk",
            Dialect::Meta => "meta",
            Dialect::Typed => "typed",
            Dialect::Mixed => "mixed",
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        Dialect::ALL
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| format!("unknown dialect `{name}` (expected adk, meta, typed or mixed)"))
    }
}

/// How long the simulated agent takes (simulated time, under `time_scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pace {
    /// The service's published durations: a text-only answer 5–15 s, an
    /// edit 10–30 s, a generation 100–300 s (post-production 10–30 s of it).
    #[default]
    Published,
    /// Quick turns (a few seconds; a generation 20–30 s), for tests that
    /// look at one behaviour at a time.
    Brisk,
}

/// How often the scripted agent shows each behaviour clients must survive.
/// Every rate is a probability in `0.0..=1.0`, drawn from the seed per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentBehaviour {
    /// Edits that end with tool events and keep-alives only, no text (~30 %).
    pub silent_rate: f64,
    /// Turns that work for minutes with only keep-alives before the result.
    pub long_work_rate: f64,
    /// Text replies followed by "I encountered a temporary issue".
    pub temporary_issue_rate: f64,
    /// Replies that speak of a GUI ("click the Export button", "点击导出").
    pub gui_rate: f64,
    /// Turns that end with an `errorCode` event instead of an edit.
    pub error_code_rate: f64,
    /// How long turns take.
    pub pace: Pace,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        Self {
            silent_rate: 0.3,
            long_work_rate: 0.1,
            temporary_issue_rate: 0.1,
            gui_rate: 0.5,
            error_code_rate: 0.0,
            pace: Pace::Published,
        }
    }
}

impl AgentBehaviour {
    /// An agent that always answers with text, quickly ([`Pace::Brisk`]),
    /// and never fails: for tests that want to look at one behaviour at a
    /// time.
    pub fn calm() -> Self {
        Self {
            silent_rate: 0.0,
            long_work_rate: 0.0,
            temporary_issue_rate: 0.0,
            gui_rate: 0.0,
            error_code_rate: 0.0,
            pace: Pace::Brisk,
        }
    }
}

/// Everything that shapes a simulated backend.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The seed for ids, agent choices and probabilistic faults. A seed given
    /// in the fault plan (`seed=N`) wins.
    pub seed: u64,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// The render-status shape.
    pub render_shape: RenderShape,
    /// The dialect of every answer.
    pub dialect: Dialect,
    /// Real seconds per simulated second: a 60 s render takes `60 ·
    /// time_scale` real seconds (0.01 → 0.6 s). Applies to renders, agent
    /// turns, keep-alive intervals, fault delays, token lifetimes and
    /// `Retry-After`.
    pub time_scale: f64,
    /// Serve a deterministic generated body of this many bytes as every
    /// render's output instead of the fixture MP4 (generated on the fly,
    /// never stored).
    pub render_bytes: Option<u64>,
    /// Largest accepted upload per file (default 500 MB); larger → 4002.
    pub max_upload_bytes: u64,
    /// Credits an anonymous token starts with.
    pub initial_credits: u64,
    /// Credits one agent edit costs.
    pub edit_cost: u64,
    /// Credits one generation (from a link, or a composed video) costs.
    pub generate_cost: u64,
    /// How long an anonymous token lives (simulated time).
    pub token_lifetime: Duration,
    /// Enforce "one anonymous token per client id while it is valid" (429).
    pub one_token_per_client: bool,
    /// Simulated seconds a render spends processing.
    pub render_seconds: f64,
    /// Reject a render whose draft differs from the session's latest draft.
    pub strict_draft: bool,
    /// The agent's behaviour mix.
    pub agent: AgentBehaviour,
    /// Unix time (ms) at which the simulated clock starts; `None` = now.
    /// Fix it to make event timestamps and token expiry dates reproducible.
    pub start_unix_ms: Option<u64>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            faults: FaultPlan::default(),
            render_shape: RenderShape::A,
            dialect: Dialect::Adk,
            time_scale: 1.0,
            render_bytes: None,
            max_upload_bytes: nemo_core::api::MAX_UPLOAD_BYTES,
            initial_credits: 100,
            edit_cost: 5,
            generate_cost: 10,
            token_lifetime: Duration::from_secs(7 * 24 * 3600),
            one_token_per_client: true,
            render_seconds: 30.0,
            strict_draft: true,
            agent: AgentBehaviour::default(),
            start_unix_ms: None,
        }
    }
}

impl MockConfig {
    /// The seed in force: the fault plan's, else the config's.
    pub fn effective_seed(&self) -> u64 {
        self.faults.seed.unwrap_or(self.seed)
    }

    /// A config for fast tests: time runs 100× faster, the agent is calm.
    pub fn fast() -> Self {
        Self {
            time_scale: 0.01,
            agent: AgentBehaviour::calm(),
            ..Self::default()
        }
    }
}
