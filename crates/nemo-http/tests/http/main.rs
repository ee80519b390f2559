//! Integration tests of `nemo-http` over real loopback HTTP: small axum
//! servers written here, and the `nemo-mock` simulator.
// A test binary: helpers are `pub` for its modules, and failures should panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod support;

mod deadlines;
mod download;
mod download_checks;
mod download_targets;
mod errors;
mod mock;
mod redirects;
mod send;
mod sse;
mod upload;
