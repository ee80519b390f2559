//! `nemo-mock`: a faithful simulator of the NemoVideo cloud video agent
//! backend, in-process and over real HTTP.
//!
//! It speaks the wire of `PROTOCOL.md`: anonymous tokens, sessions, the
//! `/run_sse` agent (ADK events with keep-alives), uploads, credits, state,
//! renders with three status shapes, downloads with `Range`, claim tokens,
//! and every error code. A seeded [`FaultPlan`] injects delays, 5xx,
//! connection resets, truncated streams, token expiry, session loss, 429
//! bursts and failed renders; the same seed gives the same run.
//!
//! Two ways to run it:
//! - [`MockServer`]: axum on `127.0.0.1` (`nemo mock` calls [`run`]);
//! - [`InProcess`]: a [`nemo_core::transport::Transport`] without sockets,
//!   in virtual time under `#[tokio::test(start_paused = true)]`.
//!
//! ```
//! use nemo_core::api::{self, Api, Attribution};
//! use nemo_core::transport::Transport;
//! use nemo_mock::{InProcess, MockConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = InProcess::new(MockConfig::fast())?;
//! let api = Api::new(Attribution::default());
//! let response = mock.send(&api.anonymous_token("client-1"), None).await?;
//! let grant: api::AnonymousToken = api::parse(&response)?;
//! let credits: api::Credits = api::parse(&mock.send(&api.credits(&grant.token), None).await?)?;
//! assert_eq!(credits.available, 100.0);
//! assert_eq!(mock.journal().len(), 2);
//! # Ok(()) }
//! ```

mod agent;
mod backend;
mod body;
mod clock;
mod config;
mod dialect;
pub mod faults;
mod inprocess;
mod journal;
pub mod media;
mod server;
mod sse;
mod timeline;

pub use config::{AgentBehaviour, Dialect, MockConfig, Pace, RenderShape};
pub use faults::{FaultPlan, FaultSpecError};
pub use inprocess::InProcess;
pub use journal::{Journal, JournalEntry, MASKED};
/// The core's tokio clock, for drivers against the simulator (kept at this
/// path for existing users).
pub use nemo_clock::TokioClock;
pub use server::{run, MockServer};
