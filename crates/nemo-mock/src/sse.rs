//! The `/run_sse` stream: ADK events (or the typed dialect), keep-alives and
//! the ways it can end.
//!
//! Framing is ADK's: `data: <compact JSON>\n\n` per event, no `event:` or
//! `id:` fields, no done marker. Keep-alives are `data: {"type":"heartbeat"}`,
//! an empty `data:` line, or a `: ping` comment. In the `typed` dialect the
//! events are `{"type":"text","content":…}`, `{"type":"tool_call","id","name","args"}`,
//! `{"type":"tool_result","id","name","result"}` (whole texts only); in the
//! `meta` dialect they are ADK's without partial pieces. In the `adk`
//! dialect, `partial` pieces come only when the request asks for them
//! (`"streaming": true`, as ADK's `RunAgentRequest` does).

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::agent::TurnKind;
use crate::agent::{self, Plan};
use crate::config::{Dialect, Pace};

/// The application's name, also the events' `author`.
pub(crate) const AUTHOR: &str = "nemo_agent";

/// One ADK `Event`, serialised in ADK's field order (camelCase, `None`s left out).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdkEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    invocation_id: &'a str,
    author: &'a str,
    actions: Actions,
    #[serde(skip_serializing_if = "Option::is_none")]
    long_running_tool_ids: Option<Vec<String>>,
    id: String,
    timestamp: f64,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Actions {
    state_delta: Map<String, Value>,
    artifact_delta: Map<String, Value>,
    requested_auth_configs: Map<String, Value>,
    requested_tool_confirmations: Map<String, Value>,
}

/// One piece of the stream, due at `at` (simulated time since the turn began).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    pub(crate) at: Duration,
    pub(crate) bytes: Bytes,
}

/// How a stream ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The server closes the body.
    Close,
    /// The connection breaks.
    Reset,
}

/// A whole turn's stream, decided up front.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) frames: Vec<Frame>,
    pub(crate) end: StreamEnd,
    /// When the edit lands on the server (simulated, since the turn began);
    /// `None` when the turn changes nothing.
    pub(crate) apply_at: Option<Duration>,
    /// When the turn is over on the server.
    pub(crate) done_at: Duration,
    /// A two-stage generation: when the raw video lands on the server
    /// (before post-production; `apply_at` is when the whole edit lands).
    pub(crate) raw_at: Option<Duration>,
}

/// Behaviours chosen for this turn, by seed and by fault plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct TurnFlags {
    pub(crate) silent: bool,
    pub(crate) long_work: bool,
    pub(crate) temporary_issue: bool,
    pub(crate) gui_hint: Option<usize>,
    pub(crate) error_code: bool,
    pub(crate) in_band_error: bool,
    pub(crate) in_band_error_raw: bool,
    pub(crate) keepalive_only: bool,
    pub(crate) truncate: bool,
    /// Break the connection after this many frames (`Some(None)`: half way).
    pub(crate) reset: Option<Option<u64>>,
}

/// A keep-alive frame of one of the three forms.
pub(crate) fn keepalive(form: usize) -> Bytes {
    Bytes::from_static(match form % 3 {
        0 => b"data: {\"type\":\"heartbeat\"}\n\n",
        1 => b"data:\n\n",
        _ => b": ping\n\n",
    })
}

/// A `data:` frame around compact JSON.
pub(crate) fn data_frame(json: &str) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

/// `n` random hex digits as a number, one draw a digit.
fn nibbles(rng: &mut fastrand::Rng, n: u32) -> u64 {
    (0..n).fold(0, |acc, _| (acc << 4) | rng.usize(..16) as u64)
}

/// A random UUID: the same draws in the same order as ever (one a hex digit,
/// one for the variant), so seeded streams and the fixtures keep their ids.
fn uuid(rng: &mut fastrand::Rng) -> String {
    let hi = (nibbles(rng, 8) << 32) | (nibbles(rng, 4) << 16) | nibbles(rng, 3);
    let variant = rng.usize(..4) as u64;
    let lo = (variant << 60) | (nibbles(rng, 3) << 48) | nibbles(rng, 12);
    nemo_core::rng::format_uuid_v4(hi, lo)
}

fn event_id(rng: &mut fastrand::Rng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| char::from(ALNUM[rng.usize(..ALNUM.len())]))
        .collect()
}

/// Splits a reply into 2–5 streaming pieces on character boundaries.
fn pieces(text: &str, rng: &mut fastrand::Rng) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = (2 + rng.usize(..4)).min(chars.len().max(1));
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Builds a turn's script.
pub(crate) struct ScriptBuilder<'a> {
    pub(crate) rng: &'a mut fastrand::Rng,
    /// Unix ms at the start of the turn.
    pub(crate) unix_start_ms: u64,
    pub(crate) plan: &'a Plan,
    /// The draft once the edit has landed.
    pub(crate) final_draft: Option<&'a Value>,
    pub(crate) flags: TurnFlags,
    /// The dialect of this stream (never `Mixed`: picked per answer).
    pub(crate) dialect: Dialect,
    /// How long the agent takes.
    pub(crate) pace: Pace,
    /// A two-stage generation: the draft once the raw video has landed.
    pub(crate) raw_draft: Option<&'a Value>,
    /// The request asked for text pieces (`"streaming": true`).
    pub(crate) streaming: bool,
}

struct Writer<'a, 'r> {
    rng: &'r mut fastrand::Rng,
    unix_start_ms: u64,
    invocation: String,
    frames: Vec<Frame>,
    t: Duration,
    typed: bool,
    _p: std::marker::PhantomData<&'a ()>,
}

impl Writer<'_, '_> {
    fn ts(&self) -> f64 {
        // Microsecond precision, as ADK writes it (`time.time()`).
        let micros =
            self.unix_start_ms * 1000 + self.t.as_micros() as u64 + u64::from(self.rng_frac());
        micros as f64 / 1e6
    }

    fn rng_frac(&self) -> u32 {
        // Deterministic sub-millisecond digits from the current time offset.
        (self.t.as_micros() % 997) as u32
    }

    fn advance(&mut self, secs: f64) {
        self.t += Duration::from_secs_f64(secs.max(0.0));
    }

    fn push(&mut self, bytes: Bytes) {
        self.frames.push(Frame { at: self.t, bytes });
    }

    fn event(
        &mut self,
        content: Option<Value>,
        partial: bool,
        state_delta: Map<String, Value>,
        extra: EventExtra<'_>,
    ) {
        let ev = AdkEvent {
            content,
            partial: partial.then_some(true),
            turn_complete: extra.turn_complete,
            error_code: extra.error_code,
            error_message: extra.error_message,
            invocation_id: &self.invocation,
            author: AUTHOR,
            actions: Actions {
                state_delta,
                ..Actions::default()
            },
            long_running_tool_ids: extra.long_running,
            id: event_id(self.rng),
            timestamp: self.ts(),
        };
        let json = serde_json::to_string(&ev).unwrap_or_default();
        self.push(data_frame(&json));
    }

    fn text(&mut self, text: &str, partial: bool) {
        if self.typed {
            self.typed_event("text", json!({"content": text}));
            return;
        }
        let content = json!({"parts": [{"text": text}], "role": "model"});
        self.event(Some(content), partial, Map::new(), EventExtra::default());
    }

    /// `{"type": kind, …rest}`, with `type` first as the API reference
    /// writes it.
    fn typed_event(&mut self, kind: &str, rest: Value) {
        let rest = rest.to_string();
        let fields = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or_default();
        let sep = if fields.is_empty() { "" } else { "," };
        self.push(data_frame(&format!("{{\"type\":\"{kind}\"{sep}{fields}}}")));
    }

    /// A tool call, in the stream's dialect.
    fn call(&mut self, id: &str, name: &str, args: Value) {
        if self.typed {
            self.typed_event("tool_call", json!({"id": id, "name": name, "args": args}));
            return;
        }
        let part = json!({"functionCall": {"id": id, "args": args, "name": name}});
        self.event(
            Some(json!({"parts": [part], "role": "model"})),
            false,
            Map::new(),
            EventExtra::default(),
        );
    }

    /// A long-running tool call (ADK lists it in `longRunningToolIds`).
    fn call_long_running(&mut self, id: &str, name: &str, args: Value) {
        if self.typed {
            self.call(id, name, args);
            return;
        }
        let part = json!({"functionCall": {"id": id, "args": args, "name": name}});
        self.event(
            Some(json!({"parts": [part], "role": "model"})),
            false,
            Map::new(),
            EventExtra {
                long_running: Some(vec![id.to_owned()]),
                ..EventExtra::default()
            },
        );
    }

    /// A tool result (and the state it changed), in the stream's dialect.
    fn result(&mut self, id: &str, name: &str, result: Value, delta: Map<String, Value>) {
        if self.typed {
            self.typed_event(
                "tool_result",
                json!({"id": id, "name": name, "result": result}),
            );
            return;
        }
        let part = json!({"functionResponse": {"id": id, "name": name, "response": result}});
        self.event(
            Some(json!({"parts": [part], "role": "user"})),
            false,
            delta,
            EventExtra::default(),
        );
    }

    /// Keep-alives every `every` seconds for `secs` seconds.
    fn wait(&mut self, secs: f64, every: f64) {
        let mut left = secs;
        while left > 0.0 {
            let step = left.min(every);
            self.advance(step);
            left -= step;
            let form = self.rng.usize(..3);
            self.push(keepalive(form));
        }
    }
}

#[derive(Default)]
struct EventExtra<'a> {
    turn_complete: Option<bool>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
    long_running: Option<Vec<String>>,
}

/// What the two stages of a generation need from the builder.
#[derive(Clone, Copy)]
struct Stages<'a> {
    pace: Pace,
    plan: &'a Plan,
    raw_draft: Option<&'a Value>,
    final_draft: Option<&'a Value>,
}

/// A generation from a description, as the real service does it: the
/// raw clip (`generate_video`, a long-running tool), its result with the
/// raw draft in the state delta, then post-production the agent starts on
/// its own (music, a title, effects) and its results with the final
/// draft. Returns when the raw video and the whole edit land.
fn two_stages(
    w: &mut Writer<'_, '_>,
    g: &crate::agent::Generation,
    long_work: bool,
    stage: Stages<'_>,
) -> (Duration, Duration) {
    let r = w.rng.f64();
    let (raw_secs, post_secs) = match stage.pace {
        // Generation 100–300 s in all, post-production 10–30 s of it.
        Pace::Published => {
            let post = 10.0 + r * 20.0;
            (100.0 + r * 200.0 - post, post)
        }
        Pace::Brisk => (15.0 + r * 10.0, 3.0 + r * 3.0),
    };
    let raw_secs = if long_work {
        raw_secs + 150.0
    } else {
        raw_secs
    };
    let version = |d: Option<&Value>| d.and_then(|d| d.get("ver")).cloned().unwrap_or(Value::Null);
    // Stage 1: the raw video.
    let id = format!("adk-{}", uuid(w.rng));
    let args = json!({
        "prompt": g.prompt,
        "duration_seconds": g.duration_ms as f64 / 1000.0,
        "model": "seedance-1.0",
        "resolution": "1080p",
    });
    w.call_long_running(&id, "generate_video", args);
    w.wait(raw_secs, 15.0);
    let mut delta = Map::new();
    if let Some(d) = stage.raw_draft {
        delta.insert("draft".into(), d.clone());
    }
    delta.insert("generation_stage".into(), json!("raw_video"));
    let result = json!({"result": {
        "status": "success",
        "stage": "raw_video",
        "video_url": g.video_url,
        "duration_seconds": g.duration_ms as f64 / 1000.0,
        "draft_version": version(stage.raw_draft),
    }});
    w.result(&id, "generate_video", result, delta);
    let raw_at = w.t;

    // Stage 2: post-production, on the agent's own initiative.
    w.advance(0.5);
    let post_ops = &stage.plan.ops[g.raw_ops.min(stage.plan.ops.len())..];
    let mut calls = Vec::new();
    for op in post_ops {
        let id = format!("adk-{}", uuid(w.rng));
        w.call(&id, op.tool_name(), op.args());
        calls.push((id, op.tool_name()));
        w.advance(0.1);
    }
    w.wait(post_secs, 5.0);
    let mut done_at = w.t;
    for (i, (id, name)) in calls.iter().enumerate() {
        let last = i + 1 == calls.len();
        let mut delta = Map::new();
        let mut result = json!({"status": "success", "draft_version": version(stage.final_draft)});
        if last {
            if let Some(d) = stage.final_draft {
                delta.insert("draft".into(), d.clone());
            }
            delta.insert("generation_stage".into(), json!("post_production"));
            result["stage"] = json!("post_production");
            result["added"] = json!(["music", "title", "effects"]);
        }
        w.result(id, name, json!({ "result": result }), delta);
        done_at = w.t;
        w.advance(0.05);
    }
    w.advance(0.5);
    (raw_at, done_at)
}

impl ScriptBuilder<'_> {
    /// Decides every frame of the turn.
    pub(crate) fn build(self) -> Script {
        let flags = self.flags;
        let plan = self.plan;
        let stages = Stages {
            pace: self.pace,
            plan: self.plan,
            raw_draft: self.raw_draft,
            final_draft: self.final_draft,
        };
        let typed = self.dialect == Dialect::Typed;
        // ADK streams partial pieces only when the request asks for them
        // (`"streaming": true`); the other dialects send whole texts.
        let partials = self.dialect == Dialect::Adk && self.streaming;
        let mut w = Writer {
            typed,
            invocation: format!("e-{}", uuid(self.rng)),
            rng: self.rng,
            unix_start_ms: self.unix_start_ms,
            frames: Vec::new(),
            t: Duration::ZERO,
            _p: std::marker::PhantomData,
        };
        let mut apply_at = None;
        let mut raw_at = None;
        // The gateway's first keep-alive, then the model thinks.
        w.advance(0.2);
        w.push(keepalive(0));
        let r = w.rng.f64();
        let think = match stages.pace {
            // A text-only answer takes 5–15 s in all: 7–14.2 s to the end
            // of thinking plus the reply's pieces (up to 1.5 s, and 0.8 s
            // for a trailing notice), less the 2.2 s kept for them.
            Pace::Published if plan.ops.is_empty() => 4.8 + r * 7.2,
            _ => 1.0 + r * 1.5,
        };
        w.advance(think);

        if flags.error_code && typed {
            w.typed_event(
                "error",
                json!({"content": "The model produced a malformed function call. Please try again."}),
            );
            let done_at = w.t;
            return Script {
                frames: w.frames,
                end: StreamEnd::Close,
                apply_at: None,
                done_at,
                raw_at: None,
            };
        }
        if flags.error_code {
            w.event(
                None,
                false,
                Map::new(),
                EventExtra {
                    error_code: Some("MALFORMED_FUNCTION_CALL"),
                    error_message: Some(
                        "The model produced a malformed function call. Please try again.",
                    ),
                    ..EventExtra::default()
                },
            );
            let done_at = w.t;
            return Script {
                frames: w.frames,
                end: StreamEnd::Close,
                apply_at: None,
                done_at,
                raw_at: None,
            };
        }

        let ops = &plan.ops;
        let mut calls = Vec::new();
        if let Some(g) = &plan.generation {
            let (raw, done) = two_stages(&mut w, g, flags.long_work, stages);
            raw_at = Some(raw);
            apply_at = Some(done);
        }
        let ops: &[crate::timeline::EditOp] = if plan.generation.is_some() { &[] } else { ops };
        for op in ops {
            let id = format!("adk-{}", uuid(w.rng));
            w.call(&id, op.tool_name(), op.args());
            calls.push((id, op.tool_name()));
            w.advance(0.1);
        }
        if !ops.is_empty() {
            let r = w.rng.f64();
            // What follows the work: the results (0.05 s each), a pause
            // (0.5–1.5 s), the reply's pieces (up to 1.5 s) and a trailing
            // notice (0.8 s) take 0.75–4 s.
            const TAIL: f64 = 4.0;
            let so_far = w.t.as_secs_f64();
            let mut work = match (stages.pace, plan.kind) {
                // Published: editing 10–30 s, generation 100–300 s, in all
                // (a turn ends 0.05–3.25 s short of its target).
                (Pace::Published, TurnKind::Generate) => 103.5 + r * 196.5 - so_far - TAIL,
                (Pace::Published, _) => 13.5 + r * 16.5 - so_far - TAIL,
                _ => plan.work_seconds * (0.75 + r * 0.5),
            }
            .max(0.5);
            if flags.long_work {
                work += 150.0 + w.rng.f64() * 150.0;
            }
            let every = if flags.long_work {
                15.0
            } else {
                5.0 + w.rng.f64() * 5.0
            };
            if flags.in_band_error || flags.in_band_error_raw {
                w.wait(work / 2.0, every);
                let tool = calls.last().map_or("tool", |c| c.1);
                let line = if flags.in_band_error_raw {
                    format!(
                        "data: {{\"error\": \"Tool {tool} failed: the renderer said \"no\"\"}}\n\n"
                    )
                } else {
                    let msg = format!(
                        "Tool {tool} failed: upstream model error (\"RESOURCE_EXHAUSTED\")"
                    );
                    let details = json!({"type": "ToolExecutionError", "tool": tool});
                    format!(
                        "data: {{\"error\": {}, \"error_details\": {}}}\n\n",
                        serde_json::to_string(&msg).unwrap_or_default(),
                        python_json(&details)
                    )
                };
                w.push(Bytes::from(line));
                let done_at = w.t;
                return Script {
                    frames: w.frames,
                    end: StreamEnd::Close,
                    apply_at: None,
                    done_at,
                    raw_at: None,
                };
            }
            w.wait(work, every);
            for (i, (id, name)) in calls.iter().enumerate() {
                let last = i + 1 == calls.len();
                let mut delta = Map::new();
                if last {
                    if let Some(d) = self.final_draft {
                        delta.insert("draft".into(), d.clone());
                    }
                }
                let version = self
                    .final_draft
                    .and_then(|d| d.get("ver"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let result = json!({"result": {"status": "success", "draft_version": version}});
                w.result(id, name, result, delta);
                if last {
                    apply_at = Some(w.t);
                }
                w.advance(0.05);
            }
            let pause = 0.5 + w.rng.f64();
            w.advance(pause);
        }

        let silent = flags.silent && !plan.ops.is_empty();
        if !silent {
            let mut reply = plan.reply.clone();
            if let Some(pick) = flags.gui_hint {
                reply.push(' ');
                reply.push_str(agent::gui_hint(plan.chinese, pick));
            }
            for piece in pieces(&reply, w.rng) {
                if partials {
                    w.text(&piece, true);
                }
                let pause = 0.1 + w.rng.f64() * 0.2;
                w.advance(pause);
            }
            w.text(&reply, false);
            if flags.temporary_issue {
                w.advance(0.8);
                w.text(agent::temporary_issue(plan.chinese), false);
            }
        } else {
            w.advance(1.0);
            let form = w.rng.usize(..3);
            w.push(keepalive(form));
        }
        let done_at = w.t;
        let mut frames = w.frames;
        let mut end = StreamEnd::Close;

        if flags.keepalive_only {
            let mut rng = fastrand::Rng::with_seed(done_at.as_millis() as u64);
            let mut t = Duration::ZERO;
            let mut only = Vec::new();
            while t < done_at {
                t += Duration::from_secs(5)
                    .min(done_at - t)
                    .max(Duration::from_millis(200));
                only.push(Frame {
                    at: t,
                    bytes: keepalive(rng.usize(..3)),
                });
            }
            frames = only;
        }
        if flags.truncate && !frames.is_empty() {
            // Cut inside the last content event (or the last frame).
            let idx = frames
                .iter()
                .rposition(|f| {
                    f.bytes.starts_with(b"data: {\"content\"")
                        || f.bytes.starts_with(b"data: {\"type\":\"text\"")
                })
                .unwrap_or(frames.len() - 1);
            frames.truncate(idx + 1);
            if let Some(last) = frames.last_mut() {
                let half = last.bytes.len() / 2;
                last.bytes = last.bytes.slice(..half);
            }
        }
        if let Some(k) = flags.reset {
            let k = k.map_or(frames.len() / 2, |k| k as usize).min(frames.len());
            frames.truncate(k.max(1).min(frames.len()));
            end = StreamEnd::Reset;
        }
        Script {
            frames,
            end,
            apply_at,
            done_at,
            raw_at,
        }
    }
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "` separators),
/// which is how ADK writes its in-band error line.
fn python_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        serde_json::to_string(k).unwrap_or_default(),
                        python_json(v)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::TurnKind;
    use crate::timeline::EditOp;

    #[test]
    fn uuids_keep_their_draws() {
        // The fixtures hold ids drawn this way from seeded generators.
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(uuid(&mut rng), "c3b712c1-2790-4fd7-9c68-6ed45129857f");
    }

    fn plan() -> Plan {
        Plan {
            kind: TurnKind::Edit,
            fresh: false,
            ops: vec![EditOp::Trim { ms: 8000 }],
            reply: "Trimmed the video to 8 seconds.".into(),
            chinese: false,
            work_seconds: 4.0,
            generation: None,
        }
    }

    fn build(flags: TurnFlags) -> Script {
        let mut rng = fastrand::Rng::with_seed(1);
        let p = plan();
        let draft = json!({"t": [], "ver": 2});
        ScriptBuilder {
            rng: &mut rng,
            unix_start_ms: 1_795_262_134_000,
            plan: &p,
            final_draft: Some(&draft),
            flags,
            dialect: Dialect::Adk,
            pace: Pace::Brisk,
            raw_draft: None,
            streaming: true,
        }
        .build()
    }

    fn text(s: &Script) -> String {
        s.frames
            .iter()
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .collect()
    }

    #[test]
    fn a_normal_turn() {
        let s = build(TurnFlags::default());
        let all = text(&s);
        assert!(
            all.contains("\"functionCall\":{\"args\":{\"target_duration_ms\":8000},\"id\":\"adk-"),
            "{all}"
        );
        assert!(all.contains("\"functionResponse\""));
        assert!(all.contains("\"stateDelta\":{\"draft\":{\"t\":[],\"ver\":2}}"));
        assert!(all.contains("\"partial\":true"));
        assert!(all.contains("{\"content\":{\"parts\":[{\"text\":\"Trimmed the video to 8 seconds.\"}],\"role\":\"model\"},\"invocationId\":\"e-"));
        assert!(all.contains("\"author\":\"nemo_agent\""));
        assert_eq!(s.end, StreamEnd::Close);
        assert!(s.apply_at.is_some());
        for f in &s.frames {
            assert!(f.bytes.ends_with(b"\n\n"));
        }
        assert!(s.frames.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn silent_and_faulty_turns() {
        let s = build(TurnFlags {
            silent: true,
            ..TurnFlags::default()
        });
        assert!(!text(&s).contains("\"text\""));
        assert!(s.apply_at.is_some());
        let s = build(TurnFlags {
            in_band_error_raw: true,
            ..TurnFlags::default()
        });
        assert!(text(&s).contains("said \"no\"\"}\n\n"));
        assert!(s.apply_at.is_none());
        let s = build(TurnFlags {
            in_band_error: true,
            ..TurnFlags::default()
        });
        let last = String::from_utf8_lossy(&s.frames.last().unwrap().bytes).into_owned();
        let v: Value = serde_json::from_str(last.trim_start_matches("data: ").trim()).unwrap();
        assert!(v["error"].as_str().unwrap().contains("RESOURCE_EXHAUSTED"));
        assert!(last.contains("\"error_details\": {\"tool\": \"trim_timeline\", \"type\": \"ToolExecutionError\"}"), "{last}");
        let s = build(TurnFlags {
            keepalive_only: true,
            ..TurnFlags::default()
        });
        assert!(!text(&s).contains("content"));
        assert!(s.apply_at.is_some());
        let s = build(TurnFlags {
            truncate: true,
            ..TurnFlags::default()
        });
        assert!(!s.frames.last().unwrap().bytes.ends_with(b"\n\n"));
        let s = build(TurnFlags {
            reset: Some(Some(2)),
            ..TurnFlags::default()
        });
        assert_eq!((s.frames.len(), s.end), (2, StreamEnd::Reset));
        let s = build(TurnFlags {
            error_code: true,
            ..TurnFlags::default()
        });
        assert!(text(&s).contains("\"errorCode\":\"MALFORMED_FUNCTION_CALL\",\"errorMessage\""));
    }
}
