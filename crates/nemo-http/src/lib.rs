//! `nemo-http`: the real transport for the NemoVideo cloud video agent —
//! [`nemo_core`]'s [`Transport`](nemo_core::transport::Transport) over
//! reqwest with rustls.
//!
//! The core decides *what* to send and what to do with the answer; this
//! crate only moves bytes:
//!
//! - **one pooled client** (HTTP/1.1 and HTTP/2, rustls) with a connect
//!   timeout, an inactivity ("read") timeout, and an overall deadline on
//!   every request: 2 minutes for an API call, more for an upload in
//!   proportion to its size, 2 hours for a download, the 15-minute cap on
//!   `/run_sse` streams ([`HttpConfig`]). A timeout's message says how long
//!   it really waited. Every limit follows the client's time scale
//!   ([`HttpConfig::with_time_scale`], as `NEMO_TIME_SCALE` sets it);
//! - **no redirect is followed for an API call** (its headers would travel to
//!   the host the answer names): a `3xx` is an error that says where it
//!   pointed. A download follows its CDN's redirects, and a hop to another
//!   origin carries none of the API's headers;
//! - **each request is sent exactly once** and rebuilt from the core's
//!   [`Request`](nemo_core::wire::Request) on every call — multipart bodies
//!   reopen their files. Retrying is the core's recovery policy's decision;
//! - **uploads stream from disk**: every file is checked first (exists, is a
//!   regular readable file, a supported format, at most 500 MB — failures are
//!   `Local` errors worded like the API's 4001/4002), then read 64 KiB at a
//!   time as the connection takes it, with progress callbacks;
//! - **event streams** hand each body chunk to the caller as it arrives; a
//!   dropped connection is an `Interrupted` error, the normal end is `None`;
//! - **downloads** are fetched here (a GET per attempt, `Range`/`If-Range`
//!   when resuming, within this crate's timeouts) and placed by
//!   [`nemo_files`], the engine every transport shares: they go to a hidden
//!   temporary file of their own beside the target (`.name.<random>.part`, created exclusively, never through a
//!   link), resume with `Range` after a broken connection (within a bounded
//!   number of attempts and bytes), are checked (length against the server's
//!   and the render status's, and not an error page served with `200`),
//!   synced and renamed into place; an existing target is never replaced
//!   unless asked, and then only a regular file, and only the one that was
//!   there when the download started;
//! - **errors** are [`TransportError`](nemo_core::transport::TransportError)s
//!   with a kind (`Connect`, `Timeout`, `Tls`, `Interrupted`, `Local`,
//!   `Exists`, `Other`) and a message that names the endpoint and the URL
//!   without query or user info. Sensitive header values (the bearer token,
//!   the client id) are masked in messages, never logged, and marked
//!   sensitive on the wire; `Debug` shows no secret.
//!
//! [`SystemClock`] (`nemo-clock`'s [`TokioClock`](nemo_clock::TokioClock)
//! under the name this crate has always given it) is the matching
//! [`Clock`](nemo_core::time::Clock) for the core's driver.
//!
//! # Example
//!
//! ```no_run
//! use nemo_core::api::{parse, Api, Attribution, Credits};
//! use nemo_core::secret::Secret;
//! use nemo_core::transport::Transport;
//! use nemo_http::{HttpConfig, HttpTransport};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = HttpTransport::new(HttpConfig::new("https://mega-api-prod.nemovideo.ai"))?;
//! let api = Api::new(Attribution::default());
//! let token = Secret::new(std::env::var("NEMO_TOKEN")?);
//! let response = transport.send(&api.credits(&token), None).await?;
//! let credits: Credits = parse(&response)?;
//! println!("{credits}");
//! # Ok(())
//! # }
//! ```

mod config;
mod download;
mod error;
mod http;
mod stream;
mod upload;

pub use config::HttpConfig;
pub use http::HttpTransport;
/// The core's tokio clock: real time, or sped up against a simulator
/// ([`TokioClock::scaled`](nemo_clock::TokioClock::scaled)).
pub use nemo_clock::TokioClock as SystemClock;
