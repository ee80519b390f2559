//! `nemo-har`: recorded NemoVideo sessions in HAR 1.2 — record, redact,
//! replay offline, check.
//!
//! - [`Recorder`] wraps any [`Transport`](nemo_core::transport::Transport)
//!   and records every exchange: requests and responses, event streams whole
//!   plus each chunk's arrival time (`_events`), the user's turns as pages
//!   (`_command`). Secrets are masked before anything is written
//!   ([`redact`]), on decoded values: a token the server writes JSON-escaped
//!   or percent-encoded goes too. [`Recorder::new`] records in memory;
//!   [`Recorder::to_file`] streams the recording to disk as it happens, in
//!   bounded memory whatever the streams' size, and renames it into place
//!   at [`Recorder::finish`] (a path that cannot be written fails before
//!   the first request).
//! - [`ReplayTransport`] answers requests from a recording, in recorded time
//!   (virtual under a paused tokio runtime).
//! - [`replay`] runs the core's driver over it, issuing each recorded turn
//!   again, and returns what the user saw; with
//!   [`check`](ReplayOptions::check) it compares the client's requests with
//!   the recorded ones, which turns any recording into a regression test.
//! - A HAR exported from a browser's developer tools (standard fields only)
//!   replays too: the turns are inferred from its requests.
//!
//! ```
//! use std::sync::Arc;
//! use nemo_core::driver::Driver;
//! use nemo_core::machine::{Command, Config, Session};
//! use nemo_clock::TokioClock;
//! use nemo_har::{replay, Recorder, ReplayOptions};
//! use nemo_mock::{InProcess, MockConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = TokioClock::new().starting_at(1_777_000_000_000);
//! let mock = Arc::new(InProcess::new(MockConfig::fast())?);
//! let recorder = Arc::new(Recorder::new(mock, InProcess::BASE_URL, Arc::new(clock)));
//! let session = Session::new(Config { client_id: "client-1".into(), ..Config::default() });
//! let mut driver = Driver::new(session, recorder.clone(), clock);
//! recorder.start_command(&Command::Credits);
//! driver.run(Command::Credits, &mut |_| {}).await?;
//!
//! let har = recorder.har();
//! assert!(!har.to_json().contains("client-1"), "the client id is redacted");
//! let played = replay(&har, &ReplayOptions { check: true, ..Default::default() }).await?;
//! assert_eq!(played.transcript[0], "you › nemo credits");
//! assert!(played.passed(), "{}", played.report());
//! # Ok(()) }
//! ```
//!
//! Streaming to a file, as `nemo --record` does:
//!
//! ```
//! # use std::sync::Arc;
//! # use nemo_core::driver::Driver;
//! # use nemo_core::machine::{Command, Config, Session};
//! # use nemo_clock::TokioClock;
//! # use nemo_har::{Har, Recorder};
//! # use nemo_mock::{InProcess, MockConfig};
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("session.har");
//! let clock = TokioClock::new().starting_at(1_777_000_000_000);
//! let mock = Arc::new(InProcess::new(MockConfig::fast())?);
//! // Fails here, before anything is sent, if `path` cannot be written.
//! let recorder = Arc::new(Recorder::to_file(mock, InProcess::BASE_URL, Arc::new(clock), &path)?);
//! let session = Session::new(Config { client_id: "client-1".into(), ..Config::default() });
//! let mut driver = Driver::new(session, recorder.clone(), clock);
//! recorder.start_command(&Command::Credits);
//! driver.run(Command::Credits, &mut |_| {}).await?;
//! assert!(!path.exists(), "written beside it until finished");
//! recorder.finish()?;
//! assert_eq!(Har::load(&path)?.log.pages[0].title, "nemo credits");
//! # Ok(()) }
//! ```

mod check;
mod command;
pub mod har;
mod recorder;
pub mod redact;
mod replay;
mod sink;
mod transport;

use std::path::Path;

pub use check::{Difference, DifferenceKind};
pub use command::{PageCommand, RecordedFile};
pub use har::Har;
pub use recorder::Recorder;
pub use redact::Redactor;
pub use replay::{event_line, replay, replay_blocking, turns, Replay, ReplayOptions, Turn};
pub use transport::{ReplayTransport, SentRequest};

/// What can go wrong with a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a HAR document.
    #[error("not a valid HAR file: {0}")]
    Parse(String),
    /// The recording holds no user turn and no request.
    #[error("the recording holds no user turn to replay")]
    Empty,
    /// The replay's runtime could not run.
    #[error("replay: {0}")]
    Runtime(String),
}

impl HarError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        HarError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
