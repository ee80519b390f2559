//! The core scenarios under every dialect of the wire (`nemo mock
//! --dialect`): the same commands give the same results whether the service
//! speaks ADK, puts segment details under `m`, speaks the typed event
//! dialect with codes on HTTP 200, or mixes them answer by answer.

use nemo_mock::{Dialect, FaultPlan, MockConfig, RenderShape};

use crate::support::{ndjson, of_type, text, Sim};

fn sim(dialect: Dialect, faults: &str) -> Sim {
    Sim::start(MockConfig {
        dialect,
        faults: FaultPlan::parse(faults).expect("fault spec"),
        ..MockConfig::fast()
    })
}

#[test]
fn quick_edit_timeline_export_and_download() {
    for dialect in Dialect::ALL {
        let sim = sim(dialect, "");
        let sample = sim.sample();
        let out = sim.nemo().arg("upload").arg(&sample).output().expect("run");
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        let out = sim
            .nemo()
            .args([
                "say",
                "add lo-fi background music at 35% and the title \"Urban Dreams\"",
            ])
            .output()
            .expect("run");
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        let said = text(&out.stdout);
        assert_eq!(
            said.matches("Lo-fi").count(),
            1,
            "{dialect}: shown once: {said}"
        );
        let out = sim.nemo().arg("timeline").output().expect("run");
        assert!(out.status.success(), "{dialect}");
        let timeline = text(&out.stdout);
        assert!(
            timeline.starts_with("Timeline (3 tracks): 1. Video: sample"),
            "{dialect}: {timeline}"
        );
        assert!(
            timeline.contains("2. BGM: Lo-fi (0-"),
            "{dialect}: {timeline}"
        );
        assert!(timeline.contains("35%)"), "{dialect}: {timeline}");
        assert!(
            timeline.contains("3. Title: \"Urban Dreams\" (0-3s)"),
            "{dialect}: {timeline}"
        );
        let out = sim
            .nemo()
            .args(["--json", "export", "--out", "edited.mp4"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        let objects = ndjson(&out.stdout);
        assert!(
            of_type(&objects, "render")
                .iter()
                .any(|r| r["status"] == "completed"),
            "{dialect}"
        );
        assert_eq!(of_type(&objects, "download").len(), 1, "{dialect}");
        let video = std::fs::read(sim.work.path().join("edited.mp4")).expect("downloaded");
        assert_eq!(&video[4..8], b"ftyp", "{dialect}: a playable MP4");
    }
}

#[test]
fn a_silent_edit_says_what_changed_in_words() {
    for dialect in Dialect::ALL {
        let sim = sim(dialect, "run_sse:silent");
        let sample = sim.sample();
        sim.nemo().arg("upload").arg(&sample).assert().success();
        let out = sim
            .nemo()
            .args(["say", "add lo-fi music at 35% and the title \"Hi\""])
            .output()
            .expect("run");
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with("Changed: "), "{dialect}: {stdout}");
        assert!(stdout.contains("Lo-fi (0-"), "{dialect}: {stdout}");
        assert!(stdout.contains("35%"), "{dialect}: {stdout}");
        assert!(stdout.contains("Title: \"Hi\""), "{dialect}: {stdout}");
        assert!(!stdout.contains("untitled"), "{dialect}: {stdout}");
    }
}

#[test]
fn every_render_shape_exports_in_every_dialect() {
    for dialect in Dialect::ALL {
        for shape in [RenderShape::A, RenderShape::B, RenderShape::C] {
            let sim = Sim::start(MockConfig {
                dialect,
                render_shape: shape,
                ..MockConfig::fast()
            });
            let sample = sim.sample();
            let out = sim
                .nemo()
                .args(["run", "add the title \"Hi\"", "--out", "v.mp4", "--file"])
                .arg(&sample)
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{dialect} {shape:?}: {}",
                text(&out.stderr)
            );
            assert!(
                text(&out.stdout).contains("Saved v.mp4"),
                "{dialect} {shape:?}"
            );
            let video = std::fs::read(sim.work.path().join("v.mp4")).expect("downloaded");
            assert_eq!(&video[4..8], b"ftyp", "{dialect} {shape:?}");
        }
    }
}

#[test]
fn an_expired_token_and_a_lost_session_are_recovered() {
    for dialect in Dialect::ALL {
        // 1001 on the third authenticated request, then a new token.
        let sim = sim(dialect, "token:expire@3");
        let sample = sim.sample();
        sim.nemo().arg("upload").arg(&sample).assert().success();
        let out = sim.nemo().arg("timeline").output().expect("run");
        assert!(
            out.status.success(),
            "{dialect} 1001: {}",
            text(&out.stderr)
        );
        let tokens = sim
            .journal()
            .iter()
            .filter(|e| e.path == "/api/auth/anonymous-token")
            .count();
        assert_eq!(tokens, 2, "{dialect}: one refresh");

        // 1002 on the second request naming the session, then a new one.
        let sim = self::sim(dialect, "session:lose@2");
        sim.nemo().arg("upload").arg(&sample).assert().success();
        let out = sim.nemo().args(["say", "credits"]).output().expect("run");
        assert!(out.status.success(), "{dialect}");
        let out = sim.nemo().arg("timeline").output().expect("run");
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(out.status.success(), "{dialect} 1002: {all}");
        let sessions = sim
            .journal()
            .iter()
            .filter(|e| e.path.starts_with("/api/tasks/me/with-session"))
            .count();
        assert_eq!(sessions, 2, "{dialect}: a new session");
    }
}

#[test]
fn out_of_credits_links_to_registration() {
    for dialect in Dialect::ALL {
        let sim = Sim::start(MockConfig {
            dialect,
            initial_credits: 0,
            ..MockConfig::fast()
        });
        let sample = sim.sample();
        sim.nemo().arg("upload").arg(&sample).assert().success();
        let out = sim
            .nemo()
            .args(["say", "add lo-fi music at 35%"])
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{dialect}: {}",
            text(&out.stderr)
        );
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(all.contains("/register?bind="), "{dialect}: {all}");
    }
}

#[test]
fn a_rate_limit_is_waited_out() {
    for dialect in Dialect::ALL {
        let sim = sim(dialect, "credits:429=2x1");
        let out = sim.nemo().arg("credits").output().expect("run");
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("Credits: 100 available"),
            "{dialect}"
        );
        let calls = sim
            .journal()
            .iter()
            .filter(|e| e.path == "/api/credits/balance/simple")
            .count();
        assert_eq!(calls, 2, "{dialect}: one wait, one retry");
    }
}

#[test]
fn a_dropped_stream_is_never_resent_and_the_edit_is_found() {
    for dialect in Dialect::ALL {
        let sim = sim(dialect, "run_sse:reset=2@1");
        let sample = sim.sample();
        sim.nemo().arg("upload").arg(&sample).assert().success();
        let out = sim
            .nemo()
            .args(["say", "add lo-fi music at 35%"])
            .output()
            .expect("run");
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        assert!(stdout.contains("Lo-fi"), "{dialect}: {stdout}");
        let sent = sim
            .journal()
            .iter()
            .filter(|e| e.path == "/run_sse")
            .count();
        assert_eq!(sent, 1, "{dialect}: never re-sent");
    }
}

/// The recorded session of each dialect (`cargo xtask fixtures`) replays
/// offline, makes the requests it recorded, and shows the same timeline.
#[test]
fn each_dialect_recording_replays_to_the_same_timeline() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dialects");
    for dialect in Dialect::ALL {
        let har = dir.join(format!("dialect-{dialect}.har"));
        let work = tempfile::tempdir().expect("tempdir");
        let out = crate::support::nemo()
            .current_dir(work.path())
            .arg("replay")
            .arg(&har)
            .arg("--check")
            .output()
            .expect("run");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{dialect}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains(
                "timeline: Timeline (3 tracks): 1. Video: city (0-4s) 2. BGM: Lo-fi (0-4s, 35%) 3. Title: \"Urban Dreams\" (0-3s)"
            ),
            "{dialect}: {stdout}"
        );
        assert!(
            stdout.contains("download replayed: dialect-"),
            "{dialect}: {stdout}"
        );
        let all = stdout.clone() + &text(&out.stderr);
        assert!(all.contains("check passed"), "{dialect}: {all}");
        // What each recording holds: typed events (in `mixed` too, from
        // its seed), volumes as a percent under `m`.
        let recorded = std::fs::read_to_string(&har).expect("har");
        let typed_events = recorded.contains(r#"data: {\"type\":\"tool_call\""#);
        assert_eq!(
            typed_events,
            matches!(dialect, Dialect::Typed | Dialect::Mixed),
            "{dialect}: typed events"
        );
        if dialect == Dialect::Meta {
            assert!(
                recorded.contains(r#"\"m\":{\"name\":\"Lo-fi\",\"volume\":35}"#),
                "meta: a volume as a percent"
            );
        }
    }
}

/// A video from a description alone, in two stages, in every dialect: the
/// steps and the raw video reported before the answer, then every track and
/// the choice to keep or strip what post-production added.
#[test]
fn a_description_becomes_a_video_in_two_stages() {
    for dialect in Dialect::ALL {
        let sim = sim(dialect, "");
        let out = sim
            .nemo()
            .args(["--json", "say", "generate a 10 second city timelapse"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
        let objects = ndjson(&out.stdout);
        let index = |pred: &dyn Fn(&serde_json::Value) -> bool, what: &str| {
            objects
                .iter()
                .position(pred)
                .unwrap_or_else(|| panic!("{dialect}: no {what} in {objects:#?}"))
        };
        let message = |v: &serde_json::Value, start: &str| {
            v["type"] == "status" && v["message"].as_str().is_some_and(|m| m.starts_with(start))
        };
        let generating = index(&|v| message(v, "Generating the video…"), "step");
        let raw = index(
            &|v| v["type"] == "generation" && v["stage"] == "raw_video_ready",
            "raw video",
        );
        let answer = index(&|v| v["type"] == "text", "answer");
        let timeline = index(
            &|v| {
                v["type"] == "timeline"
                    && v["summary"].as_str().is_some_and(|s| {
                        s.starts_with(
                            "Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: ",
                        )
                    })
            },
            "timeline",
        );
        let choices = index(
            &|v| {
                v["type"] == "suggestions"
                    && v["suggestions"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s == "remove the music"))
            },
            "choices",
        );
        let done = index(
            &|v| v["type"] == "generation" && v["stage"] == "post_production_done",
            "post-production",
        );
        assert!(answer < done && done < timeline, "{dialect}: {objects:#?}");
        assert!(
            generating < raw && raw < answer && answer < timeline && timeline < choices,
            "{dialect}: {objects:#?}"
        );
        let all = text(&out.stdout);
        assert!(
            !all.contains("generate_video"),
            "{dialect}: a raw tool call was shown"
        );
    }
}

/// The typed dialect refuses a message with no credits as an event of the
/// stream (`{"type":"error","code":2001,…}` on HTTP 200): the same error,
/// exit 1, with the registration link.
#[test]
fn out_of_credits_as_a_typed_stream_event() {
    let sim = Sim::start(MockConfig {
        dialect: Dialect::Typed,
        initial_credits: 0,
        ..MockConfig::fast()
    });
    let out = sim
        .nemo()
        .args(["say", "add lo-fi music at 35%"])
        .output()
        .expect("run");
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("out of credits"), "{all}");
    assert!(all.contains("/register?bind="), "{all}");
    assert!(!all.contains("The agent failed"), "{all}");
    let streams: Vec<_> = sim
        .journal()
        .into_iter()
        .filter(|e| e.path == "/run_sse")
        .collect();
    assert_eq!(streams.len(), 1, "never sent again");
    assert_eq!(streams[0].status, 200, "the code came in the stream");
}

/// 1001 on the message itself (`/run_sse`; on HTTP 200 in the typed
/// dialect, as a stream event): a new token, the message sent once more,
/// and the answer.
#[test]
fn an_expired_token_on_the_message_is_renewed() {
    for dialect in Dialect::ALL {
        // Authenticated requests: the session (1), the baseline state (2),
        // the message (3).
        let sim = sim(dialect, "token:expire@3");
        let out = sim
            .nemo()
            .args(["say", "add the title \"Hi\""])
            .output()
            .expect("run");
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(out.status.success(), "{dialect}: {all}");
        let journal = sim.journal();
        let streams: Vec<_> = journal.iter().filter(|e| e.path == "/run_sse").collect();
        assert_eq!(streams.len(), 2, "{dialect}: refused once, then sent");
        assert!(
            !streams[0].faults.is_empty(),
            "{dialect}: the fault hit the message"
        );
        if dialect == Dialect::Typed {
            assert_eq!(streams[0].status, 200, "1001 on HTTP 200");
        }
        let tokens = journal
            .iter()
            .filter(|e| e.path == "/api/auth/anonymous-token")
            .count();
        assert_eq!(tokens, 2, "{dialect}: one refresh");
        assert!(text(&out.stdout).contains("Hi"), "{dialect}: {all}");
    }
}

/// `nemo mock --dialect NAME`, the binary itself: it starts, prints where
/// it listens, and serves that dialect's own spelling to a `nemo run` (as
/// the recording shows), so a `--dialect` that does not reach the simulator
/// fails here. Render shape b: `meta` puts `success` at the top of its
/// render answers, the others do not.
#[test]
fn nemo_mock_serves_every_dialect() {
    for dialect in Dialect::ALL {
        let (har, out) = live_run(dialect.as_str());
        let said = text(&out.stdout);
        let seen = spellings(&har);
        let has = |s: Spelling| seen.contains(&s);
        match dialect {
            Dialect::Adk => {
                assert!(
                    has(Spelling::AdkEvents) && !has(Spelling::TypedEvents),
                    "adk: {seen:?}"
                );
                assert!(
                    has(Spelling::Plain) && !has(Spelling::Meta),
                    "adk: {seen:?}"
                );
            }
            Dialect::Meta => {
                assert!(
                    has(Spelling::AdkEvents) && !has(Spelling::TypedEvents),
                    "meta: {seen:?}"
                );
                assert!(
                    has(Spelling::Meta) && !has(Spelling::Plain),
                    "meta: {seen:?}"
                );
            }
            Dialect::Typed => {
                assert!(
                    has(Spelling::TypedEvents) && !has(Spelling::AdkEvents),
                    "typed: {seen:?}"
                );
                assert!(
                    has(Spelling::Plain) && !has(Spelling::Meta),
                    "typed: {seen:?}"
                );
                // Steps in words, never the raw tool calls.
                assert!(
                    !said.contains("tool_call") && !said.contains("add_title"),
                    "{said}"
                );
            }
            _ => {
                // Two spellings no one dialect writes together.
                let two = (has(Spelling::Meta) && has(Spelling::Plain))
                    || (has(Spelling::TypedEvents) && has(Spelling::AdkEvents))
                    || (has(Spelling::TypedEvents) && has(Spelling::Meta));
                assert!(two, "mixed: at least two dialects: {seen:?}");
            }
        }
    }
}

/// What one answer's spelling proves about its dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Spelling {
    /// A stream of ADK events (`adk` or `meta`).
    AdkEvents,
    /// A stream of typed events (`{"type":"text",…}`: `typed`).
    TypedEvents,
    /// A draft with segment details under `m`, or a render status with
    /// `success` at the top in shape b: `meta`.
    Meta,
    /// A draft with details on the segment, or a bare render status in
    /// shape b: `adk` or `typed`.
    Plain,
}

/// The spellings the recorded answers show.
fn spellings(har: &serde_json::Value) -> std::collections::BTreeSet<Spelling> {
    use serde_json::Value;
    fn segments<'a>(v: &'a Value, out: &mut Vec<&'a serde_json::Map<String, Value>>) {
        match v {
            Value::Object(map) => {
                if let Some(sg) = map.get("sg").and_then(Value::as_array) {
                    out.extend(sg.iter().filter_map(Value::as_object));
                }
                map.values().for_each(|v| segments(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| segments(v, out)),
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for entry in har["log"]["entries"].as_array().expect("entries") {
        let url = entry["request"]["url"].as_str().unwrap_or("");
        let method = entry["request"]["method"].as_str().unwrap_or("");
        let body = entry["response"]["content"]["text"].as_str().unwrap_or("");
        if url.ends_with("/run_sse") {
            // (`{"type":"heartbeat"}` is every dialect's keep-alive.)
            if ["text", "tool_call", "tool_result"]
                .iter()
                .any(|t| body.contains(&format!("data: {{\"type\":\"{t}\"")))
            {
                seen.insert(Spelling::TypedEvents);
            }
            if body.contains("\"content\":{\"parts\"") || body.contains("\"functionCall\"") {
                seen.insert(Spelling::AdkEvents);
            }
            continue;
        }
        let Ok(json) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        if url.contains("/api/render/proxy/lambda/") && method == "GET" {
            seen.insert(if json.get("success").is_some() {
                Spelling::Meta
            } else {
                Spelling::Plain
            });
        } else if url.contains("/api/state/") {
            let mut segs = Vec::new();
            segments(&json, &mut segs);
            for seg in segs {
                let under_m = seg.get("m").and_then(Value::as_object).is_some_and(|m| {
                    ["name", "text", "volume"]
                        .iter()
                        .any(|k| m.contains_key(*k))
                });
                let on_segment = ["n", "text", "v"].iter().any(|k| seg.contains_key(*k));
                if under_m {
                    seen.insert(Spelling::Meta);
                }
                if on_segment {
                    seen.insert(Spelling::Plain);
                }
            }
        }
    }
    seen
}

/// `nemo mock --dialect NAME --render-shape b` as a process, and a recorded
/// `nemo run` against it: the HAR and the run's output.
fn live_run(dialect: &str) -> (serde_json::Value, std::process::Output) {
    use std::io::BufRead as _;

    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Child(
        crate::support::nemo_std()
            .args(["mock", "--dialect", dialect, "--render-shape", "b"])
            .args(["--time-scale", "0.01"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nemo mock starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("a first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let work = tempfile::tempdir().expect("tempdir");
    let cfg = tempfile::tempdir().expect("tempdir");
    let sample = work.path().join("sample.mp4");
    std::fs::write(&sample, nemo_mock::media::SAMPLE_MP4).expect("sample");
    let har = work.path().join("live.har");
    let out = crate::support::nemo()
        .env("NEMO_API_URL", &url)
        .env("NEMO_CONFIG_DIR", cfg.path())
        .env("NEMO_TIME_SCALE", "0.01")
        .current_dir(work.path())
        .arg("--record")
        .arg(&har)
        .args(["run", "add the title \"Hi\"", "--out", "v.mp4", "--file"])
        .arg(&sample)
        .output()
        .expect("run");
    assert!(out.status.success(), "{dialect}: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Saved v.mp4"),
        "{dialect}: {}",
        text(&out.stdout)
    );
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&har).expect("recorded")).expect("HAR");
    (recorded, out)
}
