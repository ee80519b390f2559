//! `nemo demo`: the whole workflow against the embedded simulator — no
//! network, no token, a few seconds. It starts the simulator on 127.0.0.1,
//! uploads a sample clip, asks for lo-fi background music at 35 % and a
//! title, shows the timeline, exports and downloads a playable MP4, and
//! prints the conversation as a user would see it. Fixed seeds make every
//! run the same.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, ExportOptions};
use nemo_mock::{MockConfig, MockServer};
use serde_json::json;

use crate::app::App;
use crate::cli::Global;
use crate::inputs;
use crate::output::Output;
use crate::report::Persist;

/// Arguments of `nemo demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to save the demo video (replaced if it exists).
    #[arg(long, short, value_name = "PATH", default_value = "nemo-demo.mp4")]
    pub(crate) out: PathBuf,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// The demo's seed: the same conversation every time.
const SEED: u64 = 20_260_101;
/// Real seconds per simulated second, for the simulator and the client alike.
const TIME_SCALE: f64 = 0.01;
/// The instruction the demo sends.
const INSTRUCTION: &str = "add lo-fi background music at 35% volume and the title \"Urban Dreams\"";

fn failed(what: &str, e: impl std::fmt::Display) -> NemoError {
    NemoError::new(
        ErrorKind::BadInput,
        format!("The demo could not {what}: {e}"),
    )
}

/// Runs `nemo demo`.
pub(crate) async fn exec(args: Args, global: &Global, out: Arc<Output>) -> Result<(), NemoError> {
    let started = Instant::now();
    let config = MockConfig {
        seed: SEED,
        start_unix_ms: Some(1_767_225_600_000),
        ..MockConfig::fast()
    };
    let server = MockServer::start(config)
        .await
        .map_err(|e| failed("start the simulator on 127.0.0.1", e))?;
    let result = conversation(&args, global, out.clone(), server.url()).await;
    server.shutdown().await;
    result?;
    out.debug(&format!(
        "(finished in {:.1}s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

async fn conversation(
    args: &Args,
    global: &Global,
    out: Arc<Output>,
    url: &str,
) -> Result<(), NemoError> {
    let scratch = tempfile::tempdir().map_err(|e| failed("create a temporary folder", e))?;
    let sample = scratch.path().join("sample.mp4");
    std::fs::write(&sample, nemo_mock::media::SAMPLE_MP4)
        .map_err(|e| failed("write the sample clip", e))?;
    let file = inputs::file(&sample)?;
    let store = crate::store::open(scratch.path().join("config"));
    let mut global = global.clone();
    global.session = None;
    global.new_session = true;
    let app = App::build(
        &global,
        out.clone(),
        store,
        url.to_owned(),
        nemo_client::Env::from_env(),
    )?
    .offline(SEED, TIME_SCALE);
    let mut client = app.client(
        None,
        Persist {
            last_session: false,
            client_id: false,
        },
    )?;

    out.plain(
        "NemoVideo demo: the whole workflow against the built-in simulator (no network, no token).",
    );
    out.plain("");
    let say = |text: &str| {
        if out.json() {
            out.emit(json!({"type": "status", "message": format!("you: {text}")}));
        } else {
            out.set_speaker(None);
            out.plain(&format!("you  › {text}"));
            out.set_speaker(Some("nemo › "));
        }
    };

    say("upload sample.mp4");
    client
        .run(Command::Upload {
            files: vec![file],
            urls: Vec::new(),
        })
        .await?;
    say(INSTRUCTION);
    client
        .run(Command::Instruct(INSTRUCTION.to_owned()))
        .await?;
    say("show me the timeline");
    client.run(Command::Timeline).await?;
    say("export");
    client
        .run(Command::Export(ExportOptions {
            render_id: Some("render_demo".into()),
            download: true,
            out: Some(args.out.clone()),
            overwrite: true,
        }))
        .await?;
    out.set_speaker(None);
    out.plain("");
    out.plain(&format!(
        "Play {} to see the result. Next: `nemo chat` talks to the real service (a free starter token is fetched for you).",
        args.out.display()
    ));
    Ok(())
}
