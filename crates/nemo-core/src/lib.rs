//! `nemo-core`: the sans-IO heart of `nemo`, a client for the NemoVideo cloud
//! video agent.
//!
//! Everything a client decides lives here — which requests to send, how to
//! read every variant of the answers, what to do when they fail, what the
//! user should see — and none of the I/O: no sockets, no runtime, no clock
//! reads, no randomness of its own. A transport (`nemo-http` for the real
//! service, `nemo-mock` for the simulator) carries requests; a frontend
//! (`nemo-cli`, `nemo mcp`) shows events.
//!
//! | module | what it holds |
//! |---|---|
//! | [`machine`] | the [`Session`](machine::Session) state machine: commands in, requests, events and deadlines out |
//! | [`driver`] | the async loop that runs a session over any [`Transport`](transport::Transport) and [`Clock`](time::Clock) |
//! | [`route`] | intent routing: a message becomes an ordered plan |
//! | [`api`] | request builders for every endpoint and tolerant response parsing |
//! | `field` (internal) | the one field lookup every reader uses: envelopes, `m`, aliases, numbers as strings |
//! | [`sse`], [`adk`] | the event-stream decoder and the classification of agent events |
//! | [`gui`] | removing "click the Export button" from the agent's words, as actions |
//! | [`draft`] | the draft (kept byte for byte), its timeline summary, its diff |
//! | [`recovery`], [`render`] | retry policy and adaptive render polling |
//! | [`ids`] | server values made safe: identifiers checked, URL segments encoded, terminal text neutralised |
//! | [`ndjson`] | the one wire form of events (`nemo --json`, the MCP server), described by `docs/events.schema.json` |
//!
//! # Driving the machine by hand
//!
//! ```
//! use nemo_core::machine::{Command, Config, Credential, Event, Mode, SessionRef, Session};
//! use nemo_core::secret::Secret;
//! use nemo_core::time::Instant;
//! use nemo_core::wire::Response;
//!
//! let mut session = Session::new(Config {
//!     client_id: "3f1c…".into(),
//!     credential: Credential::User(Secret::new("nmv_usr_example")),
//!     session: Some(SessionRef { session_id: "5529798706024415232".into(), task_id: None }),
//!     ..Config::default()
//! });
//! let now = Instant::ZERO;
//! session.command(now, Command::Credits);
//!
//! // The machine asks for a request; a transport would send it.
//! let tx = session.poll_transmit().expect("a request");
//! assert_eq!(tx.mode, Mode::Send);
//! assert_eq!(tx.request.target.to_string(), "/api/credits/balance/simple");
//! assert!(!format!("{:?}", tx.request).contains("nmv_usr_example"), "tokens never print");
//!
//! // The answer goes back in; events come out.
//! let body = serde_json::json!({"code": 0, "data": {"available": 90, "frozen": 10, "total": 100}});
//! session.handle_response(now, tx.id, Response::json(200, &body));
//! let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
//! assert!(matches!(&events[0], Event::Connected { created: false, .. }));
//! assert!(matches!(&events[1], Event::Credits(c) if c.available == 90.0));
//! assert!(matches!(&events[2], Event::Finished { result: Ok(()), .. }));
//! ```

pub mod adk;
pub mod api;
pub mod draft;
pub mod driver;
pub mod error;
pub(crate) mod field;
pub mod gui;
pub mod ids;
pub mod machine;
pub mod ndjson;
pub mod recovery;
pub mod render;
pub mod rng;
pub mod route;
pub mod secret;
pub mod sse;
pub mod time;
pub mod transport;
pub mod units;
pub mod wire;
