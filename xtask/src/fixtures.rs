//! `cargo xtask fixtures`: regenerates the recorded sessions in
//! `fixtures/sessions/` from the simulator.
//!
//! Each scenario runs the core's driver against the in-process simulator
//! (`nemo-mock`) through a `nemo-har` recorder, on a current-thread tokio
//! runtime with paused time: a session with minutes of agent work and a
//! 30-second render records in milliseconds, and the seeds, the simulator's
//! start time and the recorder's clock are fixed, so regenerating gives the
//! same files byte for byte. Hand-written files there (`browser-*.har`) are
//! left alone.
//!
//! One more session per dialect of the wire (`nemo mock --dialect`) goes to
//! `fixtures/dialects/`: the same quick edit, timeline and export, as the
//! service would send it in that dialect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nemo_clock::TokioClock;
use nemo_core::api::{file_part, Attribution};
use nemo_core::driver::Driver;
use nemo_core::machine::{Command, Config, ExportOptions, Session};
use nemo_core::route::UserInput;
use nemo_core::wire::FilePart;
use nemo_har::Recorder;
use nemo_mock::{AgentBehaviour, Dialect, FaultPlan, InProcess, MockConfig};

/// 2026-05-28T20:26:40Z: the simulated wall clock of every fixture.
const START_UNIX_MS: u64 = 1_780_000_000_000;
const CLIENT_ID: &str = "5b0c3d9e-7a41-4f6e-9d2c-1e8f3a6b9c70";

/// One user turn of a scenario.
enum Turn {
    Say(&'static str, &'static [&'static str]),
    Upload(&'static [&'static str], &'static [&'static str]),
    Credits,
    Timeline,
    Export,
}

struct Scenario {
    name: &'static str,
    source: &'static str,
    platform: &'static str,
    language: &'static str,
    faults: &'static str,
    agent: AgentBehaviour,
    tweak: fn(&mut MockConfig),
    turns: Vec<Turn>,
    /// The dialect the simulator speaks.
    dialect: Dialect,
}

fn keep(_: &mut MockConfig) {}

fn scenario(name: &'static str, source: &'static str, turns: Vec<Turn>) -> Scenario {
    Scenario {
        name,
        source,
        platform: "unknown",
        language: "en",
        faults: "",
        agent: AgentBehaviour::calm(),
        tweak: keep,
        turns,
        dialect: Dialect::Adk,
    }
}

/// The quick edit once per dialect.
fn dialect_scenarios() -> Vec<Scenario> {
    use Turn::*;
    const EDIT: &str = "add lo-fi background music at 35% and the title \"Urban Dreams\"";
    Dialect::ALL
        .into_iter()
        .map(|dialect| Scenario {
            dialect,
            ..scenario(
                match dialect {
                    Dialect::Adk => "dialect-adk",
                    Dialect::Meta => "dialect-meta",
                    Dialect::Typed => "dialect-typed",
                    _ => "dialect-mixed",
                },
                "video-openapi",
                vec![
                    Upload(&["city.mp4"], &[]),
                    Say(EDIT, &[]),
                    Timeline,
                    Credits,
                    Export,
                ],
            )
        })
        .collect()
}

fn scenarios() -> Vec<Scenario> {
    use Turn::*;
    const EDIT: &str = "add lo-fi background music at 35% and the title \"Urban Dreams\"";
    vec![
        // The four seed flavours.
        scenario(
            "flavour-download-online",
            "video-download-online",
            vec![Say(
                "download this video https://www.youtube.com/watch?v=aqz-KE-bpKQ in MP4 at the highest resolution",
                &[],
            )],
        ),
        scenario(
            "flavour-free-download-app",
            "video-maker-free-download-app",
            vec![
                Say(
                    "make a slideshow video from these clips, the photo and the music",
                    &["city.mp4", "beach.mp4", "photo.jpg", "music.mp3"],
                ),
                Timeline,
                Export,
            ],
        ),
        scenario(
            "flavour-generator-by-link",
            "generator-by-link",
            vec![
                Say(
                    "turn this article into a short video https://blog.example.com/posts/urban-gardening-guide",
                    &[],
                ),
                Timeline,
                Export,
            ],
        ),
        scenario(
            "flavour-openapi-file-edit",
            "video-openapi",
            vec![
                Upload(&["city.mp4"], &[]),
                Say(EDIT, &[]),
                Timeline,
                Credits,
                Export,
            ],
        ),
        // Recovery paths.
        Scenario {
            faults: "token:expire@3",
            ..scenario(
                "recover-1001-token-expired",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[]), Credits],
            )
        },
        Scenario {
            faults: "session:lose@3",
            ..scenario(
                "recover-1002-session-lost",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[]), Timeline],
            )
        },
        Scenario {
            tweak: |c| {
                c.initial_credits = 3;
            },
            ..scenario(
                "error-2001-out-of-credits",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[]), Credits],
            )
        },
        scenario(
            "error-4001-unsupported-file",
            "video-openapi",
            vec![Upload(&[], &["https://files.example.com/slides/keynote.pdf"])],
        ),
        Scenario {
            tweak: |c| {
                c.max_upload_bytes = 16 * 1024;
            },
            ..scenario(
                "error-4002-file-too-large",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[])],
            )
        },
        Scenario {
            platform: "",
            ..scenario(
                "error-402-plan-blocked",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[]), Export],
            )
        },
        Scenario {
            faults: "credits:429=20@1",
            ..scenario("recover-429-rate-limited", "video-openapi", vec![Credits])
        },
        Scenario {
            faults: "run_sse:silent",
            ..scenario(
                "silent-edit",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[])],
            )
        },
        Scenario {
            faults: "run_sse:reset=4@1",
            ..scenario(
                "dropped-stream",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[]), Timeline],
            )
        },
        Scenario {
            faults: "render:fail",
            ..scenario(
                "failed-render",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[]), Export],
            )
        },
        Scenario {
            faults: "run_sse:truncate",
            ..scenario(
                "partial-text",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[])],
            )
        },
        Scenario {
            agent: AgentBehaviour {
                gui_rate: 1.0,
                ..AgentBehaviour::calm()
            },
            ..scenario(
                "gui-phrases-en",
                "video-openapi",
                vec![
                    Upload(&["city.mp4"], &[]),
                    Say(EDIT, &[]),
                    Say("add a crossfade transition", &[]),
                ],
            )
        },
        Scenario {
            language: "zh",
            agent: AgentBehaviour {
                gui_rate: 1.0,
                ..AgentBehaviour::calm()
            },
            ..scenario(
                "gui-phrases-zh",
                "video-openapi",
                vec![
                    Upload(&["city.mp4"], &[]),
                    Say("添加背景音乐，音量35%，标题“城市之梦”", &[]),
                    Say("加一个转场", &[]),
                ],
            )
        },
        Scenario {
            faults: "run_sse:long",
            ..scenario(
                "long-work-still-working",
                "video-openapi",
                vec![Upload(&["city.mp4"], &[]), Say(EDIT, &[])],
            )
        },
    ]
}

fn media_file(dir: &Path, name: &str) -> Result<FilePart, String> {
    let bytes: &[u8] = match name.rsplit('.').next() {
        Some("jpg") => nemo_mock::media::PHOTO_JPG,
        Some("mp3") => nemo_mock::media::MUSIC_MP3,
        _ => nemo_mock::media::SAMPLE_MP4,
    };
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    file_part(path, bytes.len() as u64).map_err(|e| e.to_string())
}

fn command(turn: &Turn, dir: &Path, name: &str) -> Result<Command, String> {
    let files = |names: &[&str]| -> Result<Vec<FilePart>, String> {
        names.iter().map(|n| media_file(dir, n)).collect()
    };
    let urls = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Ok(match turn {
        Turn::Say(text, names) => Command::Message(UserInput {
            text: (*text).into(),
            files: files(names)?,
            urls: Vec::new(),
        }),
        Turn::Upload(names, u) => Command::Upload {
            files: files(names)?,
            urls: urls(u),
        },
        Turn::Credits => Command::Credits,
        Turn::Timeline => Command::Timeline,
        Turn::Export => Command::Export(ExportOptions {
            render_id: None,
            download: true,
            out: Some(dir.join(format!("{name}.mp4"))),
            overwrite: true,
        }),
    })
}

async fn record(s: &Scenario, out: &Path) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = MockConfig {
        seed: 42,
        faults: FaultPlan::parse(s.faults).map_err(|e| format!("{}: {e}", s.name))?,
        time_scale: 1.0,
        agent: s.agent.clone(),
        start_unix_ms: Some(START_UNIX_MS),
        dialect: s.dialect,
        ..MockConfig::default()
    };
    (s.tweak)(&mut config);
    let mock = Arc::new(InProcess::new(config).map_err(|e| e.to_string())?);
    let clock = TokioClock::new().starting_at(START_UNIX_MS);
    let recorder = Arc::new(Recorder::new(mock, InProcess::BASE_URL, Arc::new(clock)));
    let session = Session::new(Config {
        client_id: CLIENT_ID.into(),
        attribution: Attribution {
            source: s.source.into(),
            version: "1.0.5".into(),
            platform: s.platform.into(),
        },
        language: s.language.into(),
        seed: 7,
        ..Config::default()
    });
    let mut driver = Driver::new(session, recorder.clone(), clock);
    for turn in &s.turns {
        let cmd = command(turn, dir.path(), s.name)?;
        recorder.start_command(&cmd);
        let _ = driver.run(cmd, &mut |_| {}).await;
    }
    let har = recorder.har();
    let n = har.log.entries.len();
    har.save(out).map_err(|e| e.to_string())?;
    Ok(n)
}

/// The workspace's `fixtures/<name>` directory.
fn fixtures_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("fixtures")
        .join(name)
}

/// Regenerates every fixture.
pub(crate) fn run() -> Result<(), String> {
    let sessions = fixtures_dir("sessions");
    let dialects = fixtures_dir("dialects");
    for dir in [&sessions, &dialects] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A routed message downloads to `<render id>.mp4` in the current
    // directory: keep those files out of the repository.
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::env::set_current_dir(scratch.path()).map_err(|e| e.to_string())?;
    let all = scenarios()
        .into_iter()
        .map(|s| (&sessions, s))
        .chain(dialect_scenarios().into_iter().map(|s| (&dialects, s)));
    for (dir, s) in all {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|e| e.to_string())?;
        let out = dir.join(format!("{}.har", s.name));
        let n = rt.block_on(record(&s, &out))?;
        eprintln!("==> {} ({n} requests)", out.display());
    }
    Ok(())
}
