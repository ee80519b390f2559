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
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        Self {
            silent_rate: 0.3,
            long_work_rate: 0.1,
            temporary_issue_rate: 0.1,
            gui_rate: 0.5,
            error_code_rate: 0.0,
        }
    }
}

impl AgentBehaviour {
    /// An agent that always answers with text, quickly, and never fails:
    /// for tests that want to look at one behaviour at a time.
    pub fn calm() -> Self {
        Self {
            silent_rate: 0.0,
            long_work_rate: 0.0,
            temporary_issue_rate: 0.0,
            gui_rate: 0.0,
            error_code_rate: 0.0,
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
