//! Generation from a description, in two stages, at the published pace, in
//! virtual time: the raw video lands first, post-production adds music, a
//! title and effects on its own, and the stream shows both stages.

use std::time::Duration;

use nemo_core::adk::{self, AgentEvent, GenerationStage};
use nemo_core::api::{self, Api, Attribution};
use nemo_core::secret::Secret;
use nemo_core::sse::{Decoder, Frame};
use nemo_core::time::Clock;
use nemo_core::transport::Transport;
use nemo_mock::{AgentBehaviour, Dialect, InProcess, MockConfig, Pace, TokioClock};

struct Turn {
    /// Each classified event with the virtual time it arrived at.
    events: Vec<(Duration, AgentEvent)>,
}

async fn setup(dialect: Dialect, language: &str) -> (InProcess, Api, Secret, String) {
    let mock = InProcess::new(MockConfig {
        dialect,
        agent: AgentBehaviour {
            pace: Pace::Published,
            ..AgentBehaviour::calm()
        },
        ..MockConfig::default()
    })
    .unwrap();
    let api = Api::new(Attribution::default());
    let grant: api::AnonymousToken =
        api::parse(&mock.send(&api.anonymous_token("cid"), None).await.unwrap()).unwrap();
    let created: api::SessionCreated = api::parse(
        &mock
            .send(&api.create_session(&grant.token, language), None)
            .await
            .unwrap(),
    )
    .unwrap();
    (mock, api, grant.token, created.session_id)
}

async fn turn(mock: &InProcess, api: &Api, token: &Secret, sid: &str, text: &str) -> Turn {
    let clock = TokioClock::new();
    let started = clock.now().since_origin();
    let mut stream = mock
        .open_stream(&api.run_sse(token, sid, text))
        .await
        .unwrap();
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut events = Vec::new();
    for _ in 0..100_000 {
        match stream.body.next_chunk().await {
            Some(Ok(chunk)) => {
                decoder.feed(&chunk, &mut frames);
                let at = clock.now().since_origin() - started;
                for f in frames.drain(..) {
                    if let Frame::Event(e) = f {
                        events.extend(adk::classify(&e.data).into_iter().map(|ev| (at, ev)));
                    }
                }
            }
            _ => break,
        }
    }
    Turn { events }
}

#[tokio::test(start_paused = true)]
async fn a_description_becomes_a_video_in_two_stages() {
    for (dialect, language, message) in [
        (Dialect::Adk, "en", "generate a 10 second city timelapse"),
        (Dialect::Typed, "en", "generate a 10 second city timelapse"),
        (Dialect::Meta, "zh", "做一个城市延时视频"),
    ] {
        let (mock, api, token, sid) = setup(dialect, language).await;
        let t = turn(&mock, &api, &token, &sid, message).await;
        // The stream shows the stages: generation, then post-production.
        let raw_at = t
            .events
            .iter()
            .find_map(|(at, e)| match adk::stage_of(e) {
                Some(GenerationStage::RawVideoReady { url }) => {
                    assert!(url.is_some_and(|u| u.ends_with("raw.mp4")));
                    Some(*at)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{dialect}: no raw video: {:?}", t.events));
        let post_at = t
            .events
            .iter()
            .find_map(|(at, e)| {
                (adk::stage_of(e) == Some(GenerationStage::PostProductionDone)).then_some(*at)
            })
            .unwrap_or_else(|| panic!("{dialect}: no post-production"));
        let end = t.events.last().map(|(at, _)| *at).unwrap();
        assert!(raw_at < post_at, "{dialect}");
        assert!(
            (Duration::from_secs(100)..=Duration::from_secs(300)).contains(&end),
            "{dialect}: generation took {end:?}"
        );
        assert!(
            (Duration::from_secs(9)..=Duration::from_secs(31)).contains(&(post_at - raw_at)),
            "{dialect}: post-production took {:?}",
            post_at - raw_at
        );
        let steps: Vec<&str> = t
            .events
            .iter()
            .filter_map(|(_, e)| adk::step_words(e))
            .collect();
        assert_eq!(steps.first(), Some(&"generating the video…"), "{dialect}");
        assert!(steps.contains(&"adding music…"), "{dialect}: {steps:?}");
        assert!(steps.contains(&"adding text…"), "{dialect}: {steps:?}");
        assert!(steps.contains(&"adding effects…"), "{dialect}: {steps:?}");
        assert!(
            t.events
                .iter()
                .any(|(_, e)| matches!(e, AgentEvent::Text { partial: false, .. })),
            "{dialect}: a final answer"
        );
        // On the server: the whole video with music, a title and effects.
        let state =
            api::parse_state(&mock.send(&api.state(&token, &sid), None).await.unwrap()).unwrap();
        let summary = state.state.draft.unwrap().timeline().to_string();
        assert!(
            summary.starts_with("Timeline (3 tracks): 1. Video: "),
            "{dialect}: {summary}"
        );
        assert!(summary.contains("(0-10s)"), "{dialect}: {summary}");
        assert!(summary.contains("2. BGM: "), "{dialect}: {summary}");
        assert!(summary.contains("30%"), "{dialect}: {summary}");
        assert!(summary.contains("3. Title: \""), "{dialect}: {summary}");
        if language == "zh" {
            assert!(summary.contains("城市延时"), "{summary}");
        } else {
            assert!(summary.contains("Title: \"City Timelapse\""), "{summary}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_raw_video_lands_before_post_production() {
    let (mock, api, token, sid) = setup(Dialect::Adk, "en").await;
    let clock = TokioClock::new();
    let start = clock.now();
    // Open the stream but read the state while the agent works.
    let stream = mock
        .open_stream(&api.run_sse(&token, &sid, "generate a 10 second city timelapse"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..400 {
        clock
            .sleep_until(clock.now() + Duration::from_secs(1))
            .await;
        let s =
            api::parse_state(&mock.send(&api.state(&token, &sid), None).await.unwrap()).unwrap();
        let tracks = s.state.draft.map_or(0, |d| d.timeline().tracks.len());
        if seen.last() != Some(&tracks) {
            seen.push(tracks);
        }
        if tracks == 3 {
            break;
        }
    }
    drop(stream);
    assert_eq!(
        seen,
        vec![0, 1, 3],
        "nothing, the raw video, then everything"
    );
    assert!(clock.now() - start >= Duration::from_secs(100));
}

/// How long a turn's stream stays open, in virtual time.
async fn stream_seconds(mock: &InProcess, api: &Api, token: &Secret, sid: &str, text: &str) -> f64 {
    let clock = TokioClock::new();
    let started = clock.now();
    let mut stream = mock
        .open_stream(&api.run_sse(token, sid, text))
        .await
        .unwrap();
    for _ in 0..100_000 {
        match stream.body.next_chunk().await {
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    (clock.now() - started).as_secs_f64()
}

/// The published durations at the published pace, in virtual time: a
/// text-only reply takes 5–15 s, an edit 10–30 s (generation: above).
#[tokio::test(start_paused = true)]
async fn text_replies_and_edits_take_the_published_time() {
    let (mut texts, mut edits) = (Vec::new(), Vec::new());
    for seed in 0..12 {
        let mock = InProcess::new(MockConfig {
            seed,
            agent: AgentBehaviour {
                pace: Pace::Published,
                ..AgentBehaviour::calm()
            },
            ..MockConfig::default()
        })
        .unwrap();
        let api = Api::new(Attribution::default());
        let grant: api::AnonymousToken =
            api::parse(&mock.send(&api.anonymous_token("cid"), None).await.unwrap()).unwrap();
        let created: api::SessionCreated = api::parse(
            &mock
                .send(&api.create_session(&grant.token, "en"), None)
                .await
                .unwrap(),
        )
        .unwrap();
        let (token, sid) = (grant.token, created.session_id);
        texts.push(stream_seconds(&mock, &api, &token, &sid, "what can you do?").await);
        mock.send(
            &api.upload_urls(&token, &sid, &["https://example.com/city.mp4".into()]),
            None,
        )
        .await
        .unwrap();
        edits.push(stream_seconds(&mock, &api, &token, &sid, "add lo-fi music at 35%").await);
    }
    for (what, times, range) in [("text", &texts, 5.0..=15.0), ("edit", &edits, 10.0..=30.0)] {
        assert!(
            times.iter().all(|t| range.contains(t)),
            "{what}: {times:?} outside {range:?}"
        );
        let spread = times.iter().cloned().fold(f64::MIN, f64::max)
            - times.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 2.0, "{what}: the times vary: {times:?}");
    }
}
