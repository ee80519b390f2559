//! `nemo-core`: the sans-IO heart of `nemo`, a client for the NemoVideo cloud
//! video agent.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod draft;
pub mod secret;
pub mod time;
pub mod transport;
pub mod wire;
pub mod adk;
pub mod gui;
pub mod route;
pub mod sse;
pub mod error;
pub mod recovery;
pub mod render;
pub mod rng;
pub mod machine;
pub mod driver;
