//! The real session machine (`nemo-core`'s driver) against the simulator, in
//! virtual time: the client and the simulator check each other.

use std::path::PathBuf;
use std::sync::Arc;

use nemo_core::api::file_part;
use nemo_core::driver::Driver;
use nemo_core::error::ErrorKind;
use nemo_core::machine::{Config, Event, Session};
use nemo_core::route::UserInput;
use nemo_core::wire::Endpoint;
use nemo_mock::{AgentBehaviour, FaultPlan, InProcess, MockConfig, RenderShape, TokioClock};

struct Run {
    driver: Driver<InProcess, TokioClock>,
    mock: Arc<InProcess>,
    events: Vec<Event>,
    dir: tempfile::TempDir,
}

impl Run {
    fn new(config: MockConfig) -> Run {
        let mock = Arc::new(InProcess::new(config).unwrap());
        let session = Session::new(Config {
            client_id: "8d3e54a0-1111-4222-8333-444455556666".into(),
            ..Config::default()
        });
        Run {
            driver: Driver::new(session, mock.clone(), TokioClock::new()),
            mock,
            events: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn sample(&self) -> nemo_core::wire::FilePart {
        let path = self.dir.path().join("city.mp4");
        std::fs::write(&path, nemo_mock::media::SAMPLE_MP4).unwrap();
        file_part(path, nemo_mock::media::SAMPLE_MP4.len() as u64).unwrap()
    }

    async fn say(&mut self, text: &str) -> Result<(), nemo_core::error::NemoError> {
        let events = &mut self.events;
        self.driver
            .say(UserInput::text(text), &mut |e: &Event| {
                events.push(e.clone())
            })
            .await
    }

    async fn upload(&mut self) {
        let part = self.sample();
        let events = &mut self.events;
        self.driver
            .upload(vec![part], vec![], &mut |e: &Event| events.push(e.clone()))
            .await
            .unwrap();
    }

    async fn timeline(&mut self) -> String {
        let events = &mut self.events;
        self.driver
            .timeline(&mut |e: &Event| events.push(e.clone()))
            .await
            .unwrap();
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Timeline { summary, .. } => Some(summary.clone()),
                _ => None,
            })
            .unwrap()
    }

    async fn export(&mut self) -> Result<PathBuf, nemo_core::error::NemoError> {
        let out = self.dir.path().join("out.mp4");
        let events = &mut self.events;
        self.driver
            .export(Some(out.clone()), true, false, &mut |e: &Event| {
                events.push(e.clone())
            })
            .await?;
        Ok(out)
    }

    fn texts(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::AgentText { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn quick_edit_in_every_render_shape() {
    for shape in [RenderShape::A, RenderShape::B, RenderShape::C] {
        let mut run = Run::new(MockConfig {
            render_shape: shape,
            agent: AgentBehaviour::calm(),
            ..MockConfig::default()
        });
        run.upload().await;
        run.say("add lo-fi background music at 35% and the title \"Urban Dreams\"")
            .await
            .unwrap();
        let timeline = run.timeline().await;
        assert!(
            timeline.contains("BGM:") && timeline.contains("35%"),
            "{shape:?}: {timeline}"
        );
        assert!(
            timeline.contains("\"Urban Dreams\""),
            "{shape:?}: {timeline}"
        );
        let out = run.export().await.unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            nemo_mock::media::SAMPLE_MP4,
            "{shape:?}"
        );
        assert!(run.events.iter().any(|e| matches!(e, Event::Link { .. })));
        assert_eq!(run.mock.journal().count(Endpoint::RunSse), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn silent_edits_are_reported_as_changes() {
    let mut run = Run::new(MockConfig {
        agent: AgentBehaviour {
            silent_rate: 1.0,
            ..AgentBehaviour::calm()
        },
        ..MockConfig::default()
    });
    run.upload().await;
    run.say("add lo-fi background music at 35%").await.unwrap();
    assert!(run.texts().is_empty(), "{:?}", run.texts());
    let change = run.events.iter().find_map(|e| match e {
        Event::Change { summary } => Some(summary.clone()),
        _ => None,
    });
    assert!(
        change.as_deref().is_some_and(|c| c.contains("BGM")),
        "{change:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn gui_words_never_reach_the_user() {
    for seed in 0..6 {
        let mut run = Run::new(MockConfig {
            seed,
            agent: AgentBehaviour {
                gui_rate: 1.0,
                temporary_issue_rate: 1.0,
                ..AgentBehaviour::calm()
            },
            ..MockConfig::default()
        });
        run.upload().await;
        run.say("add a title \"Hello\" and lo-fi music")
            .await
            .unwrap();
        for text in run.texts() {
            let lower = text.to_lowercase();
            assert!(
                !lower.contains("click") && !text.contains("点击"),
                "seed {seed}: {text}"
            );
            assert!(!lower.contains("temporary issue"), "seed {seed}: {text}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_reset_stream_is_recovered_without_resending() {
    let mut run = Run::new(MockConfig {
        faults: FaultPlan::parse("run_sse:reset@1").unwrap(),
        agent: AgentBehaviour::calm(),
        ..MockConfig::default()
    });
    run.upload().await;
    run.say("add lo-fi background music at 35%").await.unwrap();
    assert_eq!(
        run.mock.journal().count(Endpoint::RunSse),
        1,
        "never re-sent"
    );
    assert!(
        run.events.iter().any(|e| matches!(e, Event::Change { .. })),
        "{:?}",
        run.events
    );
}

#[tokio::test(start_paused = true)]
async fn expired_tokens_and_lost_sessions_recover() {
    let mut run = Run::new(MockConfig {
        faults: FaultPlan::parse("token:expire@4;session:lose@6").unwrap(),
        agent: AgentBehaviour::calm(),
        ..MockConfig::default()
    });
    run.upload().await;
    run.say("add a title \"Hello\"").await.unwrap();
    let timeline = run.timeline().await;
    assert!(!timeline.is_empty());
    assert!(
        run.mock.journal().count(Endpoint::AnonymousToken) >= 2,
        "a new token was fetched"
    );
}

#[tokio::test(start_paused = true)]
async fn out_of_credits_and_failed_renders_are_final_and_helpful() {
    let mut run = Run::new(MockConfig {
        initial_credits: 0,
        agent: AgentBehaviour::calm(),
        ..MockConfig::default()
    });
    run.upload().await;
    let err = run.say("add a title \"Hello\"").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfCredits);
    // The register link comes once: in the error's link, not its words.
    let link = err.link.as_deref().unwrap_or_default();
    assert!(link.contains("/register?bind="), "{err:?}");
    assert!(!err.message.contains(link), "{err:?}");

    let mut run = Run::new(MockConfig {
        faults: FaultPlan::parse("render:fail").unwrap(),
        agent: AgentBehaviour::calm(),
        ..MockConfig::default()
    });
    run.upload().await;
    let err = run.export().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RenderFailed);
    assert!(run
        .events
        .iter()
        .any(|e| matches!(e, Event::RenderEnded { .. })));
}

/// A generation from a description, told as it happens: the steps in words,
/// the raw video as soon as it is ready (before post-production and the
/// agent's answer), then every track and the choice to keep or strip what
/// post-production added. In every event dialect, at the published pace.
#[tokio::test(start_paused = true)]
async fn two_stage_generation_is_reported_as_it_happens() {
    for dialect in [
        nemo_mock::Dialect::Adk,
        nemo_mock::Dialect::Typed,
        nemo_mock::Dialect::Meta,
    ] {
        let mut run = Run::new(MockConfig {
            dialect,
            agent: AgentBehaviour {
                pace: nemo_mock::Pace::Published,
                ..AgentBehaviour::calm()
            },
            ..MockConfig::default()
        });
        run.say("generate a 10 second city timelapse")
            .await
            .unwrap();
        let shown: Vec<String> = run
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Status(s) => Some(format!("status: {s}")),
                Event::Note(s) => Some(format!("note: {s}")),
                Event::Generation { message, .. } => Some(format!("generation: {message}")),
                Event::Suggestions {
                    message,
                    suggestions,
                } => Some(format!(
                    "suggestions: {message} {}",
                    suggestions.join(" | ")
                )),
                Event::AgentText { text, .. } => Some(format!("text: {text}")),
                Event::Timeline { summary, .. } => Some(format!("timeline: {summary}")),
                _ => None,
            })
            .collect();
        let at = |needle: &str| {
            shown
                .iter()
                .position(|s| s.starts_with(needle))
                .unwrap_or_else(|| panic!("{dialect}: no `{needle}` in {shown:#?}"))
        };
        let generating = at("status: Generating the video…");
        let raw = at("generation: The raw video is ready;");
        let music = at("status: Adding music…");
        let answer = at("text: Your video \"City Timelapse\" is ready");
        let timeline =
            at("timeline: Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: ");
        let choices = at("suggestions: Post-production added music, a title and effects. Keep them, or remove what you do not want: keep them | remove the music | remove the title | remove the effects");
        assert!(
            generating < raw
                && raw < music
                && music < answer
                && answer < timeline
                && timeline < choices,
            "{dialect}: {shown:#?}"
        );
        assert!(
            shown[timeline].contains("3. Title: \"City Timelapse\" (0-3s)"),
            "{dialect}"
        );
        for line in &shown {
            for raw_name in [
                "generate_video",
                "add_background_music",
                "apply_effects",
                "functionCall",
            ] {
                assert!(
                    !line.contains(raw_name),
                    "{dialect}: a raw tool call was shown: {line}"
                );
            }
        }
        // The offered choice works: strip the music.
        run.say("remove the music").await.unwrap();
        let summary = run.timeline().await;
        assert!(
            summary.starts_with("Timeline (2 tracks): 1. Video: city timelapse (0-10s) 2. Title: "),
            "{dialect}: {summary}"
        );
        // A quick edit afterwards shows no step lines (one "working" line).
        let before = run.events.len();
        run.say("add the title \"Hi\"").await.unwrap();
        let steps = run.events[before..]
            .iter()
            .filter(|e| matches!(e, Event::Status(s) if s.starts_with("Adding")))
            .count();
        assert_eq!(steps, 0, "{dialect}");
    }
}
