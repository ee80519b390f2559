//! A first frontend: the balance and the timeline of a new session, against
//! the in-process simulator (no account, nothing spent).
//!
//! `cargo run -p nemo-client --features mock --example credits`

use nemo_client::{Client, MemoryStore, Store};
use nemo_mock::MockConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let mut client = Client::builder()
        .simulator(MockConfig::fast())?
        .store(store.clone())
        .build()?;

    let credits = client.credits().await?;
    println!("Credits: {credits}");

    let timeline = client.timeline().await?;
    println!("{}", timeline.summary);

    // The client kept what a later run needs: the identity, the free token
    // and the session to continue.
    let session = client.session().expect("a session was made");
    println!(
        "Session {} (client id {})",
        session.session_id,
        store.client_id().unwrap_or_default()
    );
    assert!(store.last_session(nemo_mock::InProcess::BASE_URL).is_some());
    Ok(())
}
