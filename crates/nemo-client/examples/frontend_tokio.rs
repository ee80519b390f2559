//! A whole frontend on tokio, against the in-process simulator (no account,
//! nothing spent): connect, upload a clip, say something and show the
//! agent's words as they arrive, export with progress, and handle running
//! out of credits. Walked through in `docs/FRONTENDS.md`.
//!
//! `cargo run -p nemo-client --example frontend_tokio`

use std::{error::Error, path::Path, path::PathBuf, sync::Arc};

use nemo_client::Client;
use nemo_core::api::file_part;
use nemo_core::error::ErrorKind;
use nemo_core::machine::{Command, Event, ExportOptions};
use nemo_core::ndjson::to_json;
use nemo_mock::{InProcess, MockConfig};

/// A client on the simulator, with an in-memory store (the default; a real
/// frontend keeps a `FileStore`). With nemo-client's `mock` feature,
/// `Client::builder().simulator(config)?` does the same in one call.
fn simulated(config: MockConfig) -> Result<Client, Box<dyn Error>> {
    let mock = InProcess::new(config)?;
    let client = Client::builder().api_url(mock.url());
    Ok(client.transport(Arc::new(mock)).build()?)
}

/// Shows each event the moment the session emits it.
fn show(event: &Event) {
    match event {
        Event::AgentText { text, .. } => println!("agent: {text}"),
        Event::RenderProgress {
            progress: Some(p), ..
        } => eprintln!("rendering… {p:.0}%"),
        Event::Downloaded { path, bytes, .. } => eprintln!("saved {} ({bytes} B)", path.display()),
        // Everything else in its wire form (docs/events.schema.json); a
        // frontend ignores what it does not know.
        _ => to_json(event).iter().for_each(|json| eprintln!("{json}")),
    }
}

/// The whole session; returns the saved video and the register link.
pub(crate) async fn run(dir: &Path) -> Result<(PathBuf, String), Box<dyn Error>> {
    let mut client = simulated(MockConfig::fast())?;
    // Optional: any command connects first (a free token, then a session).
    client.run(Command::Connect, &mut show).await?;

    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/sample.mp4");
    let files = vec![file_part(&clip, std::fs::metadata(&clip)?.len())?];
    let upload = Command::Upload {
        files,
        urls: vec![],
    };
    client.run(upload, &mut show).await?;

    let words = "add lo-fi background music at 35% and the title \"Urban Dreams\"";
    // `Instruct` goes to the agent as it is; `Message(UserInput)` is routed
    // first ("export" renders, "credits" shows the balance, …).
    let say = Command::Instruct(words.into());
    client.run(say, &mut show).await?;

    let out = dir.join("urban-dreams.mp4");
    let export = ExportOptions {
        download: true, // render, wait (progress events), download
        out: Some(out.clone()),
        ..Default::default()
    };
    client.run(Command::Export(export), &mut show).await?;

    // A new anonymous user with no credits left: the error says so by kind.
    let mut broke = simulated(MockConfig {
        initial_credits: 0,
        ..MockConfig::fast()
    })?;
    match broke.run(Command::Instruct(words.into()), &mut show).await {
        Err(e) if e.kind == ErrorKind::OutOfCredits => {
            let link = e.link.ok_or("no register link")?;
            println!("Out of credits: register at {link} to get more.");
            Ok((out, link))
        }
        other => Err(format!("expected to run out of credits: {other:?}").into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    run(tempfile::tempdir()?.path()).await?;
    Ok(())
}
