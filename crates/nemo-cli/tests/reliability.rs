//! Reliability and security tables of the `nemo` binary against the
//! simulator over HTTP on 127.0.0.1: the fault matrix, the bad-input table,
//! load, secrets, a hostile server and concurrent processes. See
//! docs/RELIABILITY.md for the promises and figures.
//!
//! `NEMO_RELIABILITY_JOBS=N` sets how many cases run at once (default 4);
//! `NEMO_MATRIX_ONLY=TEXT` runs the matrix cells whose name contains TEXT.

#[path = "reliability/bad_input.rs"]
mod bad_input;
#[path = "reliability/concurrency.rs"]
mod concurrency;
#[path = "reliability/crash.rs"]
mod crash;
#[path = "reliability/deadlines.rs"]
mod deadlines;
#[path = "reliability/hostile.rs"]
mod hostile;
#[path = "reliability/hostile_server.rs"]
mod hostile_server;
#[path = "reliability/load.rs"]
mod load;
#[path = "reliability/matrix.rs"]
mod matrix;
#[path = "reliability/secrets.rs"]
mod secrets;
#[path = "reliability/support.rs"]
mod support;
