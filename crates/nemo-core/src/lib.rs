//! `nemo-core`: the sans-IO heart of `nemo`, a client for the NemoVideo cloud
//! video agent.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod adk;
pub mod api;
pub mod draft;
pub mod driver;
pub mod error;
pub mod gui;
pub mod machine;
pub mod recovery;
pub mod render;
pub mod rng;
pub mod route;
pub mod secret;
pub mod sse;
pub mod time;
pub mod transport;
pub mod wire;
