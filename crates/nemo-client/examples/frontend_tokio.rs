//! A whole frontend on tokio, against the in-process simulator (no account,
//! nothing spent): upload a clip, stream the agent's words as they arrive,
//! export with progress, and handle running out of credits. Walked through
//! in `docs/FRONTENDS.md`.
//!
//! `cargo run -p nemo-client --example frontend_tokio`

use std::{error::Error, path::Path, path::PathBuf, sync::Arc};

use futures_util::StreamExt;
use nemo_client::{Client, ExportTo, Upload};
use nemo_core::{error::ErrorKind, machine::Event};
use nemo_mock::{InProcess, MockConfig};

/// A client on the simulator (with nemo-client's `mock` feature,
/// `Client::builder().simulator(config)?` does the same), sped up like it.
fn simulated(config: MockConfig) -> Result<Client, Box<dyn Error>> {
    let mock = InProcess::new(config)?;
    let builder = Client::builder().api_url(mock.url()).time_scale(0.01);
    let builder = builder.text_deltas(true).transfer_events(true);
    Ok(builder.transport(Arc::new(mock)).build()?)
}

/// The whole session; returns the saved video and the register link.
pub(crate) async fn run(dir: &Path) -> Result<(PathBuf, String), Box<dyn Error>> {
    let mut client = simulated(MockConfig::fast())?;
    // Every event, in order, in a task of its own (a UI's event loop).
    let mut events = client.events();
    let ui = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                Event::AgentTextDelta { text } => print!("{text}"),
                Event::AgentText { .. } => println!(),
                Event::Transfer { done, .. } => eprint!("\r{done} B"),
                Event::RenderProgress { progress, .. } => eprintln!("rendering {progress:?}%"),
                _ => {} // `Event` is non-exhaustive: ignore what is new
            }
        }
    });
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/sample.mp4");
    client.upload(&Upload::new().file(clip)?).await?; // checked before sending
    let words = "add lo-fi background music at 35% and the title \"Urban Dreams\"";
    let turn = client.instruct(words).await?; // as it is; `say` routes first
    eprintln!("changed: {:?}", turn.changes);
    let out = ExportTo::file(dir.join("urban-dreams.mp4")); // checked before any credit is spent
    let video = client.export(out).await?;
    drop(client); // ends the event stream
    ui.await?;
    // A new anonymous user with no credits left: the error says so by kind.
    let mut empty = MockConfig::fast();
    empty.initial_credits = 0;
    let mut broke = simulated(empty)?;
    match broke.instruct(words).await {
        Err(e) if e.kind == ErrorKind::OutOfCredits => {
            let link = e.link.ok_or("no register link")?;
            println!("Out of credits: register at {link} to get more.");
            Ok((video.path.ok_or("not saved")?, link))
        }
        other => Err(format!("expected to run out of credits: {other:?}").into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    run(tempfile::tempdir()?.path()).await?;
    Ok(())
}
