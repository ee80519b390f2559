//! Integration tests of the `nemo` binary against the simulator
//! (`nemo-mock`) over HTTP on 127.0.0.1. One test binary (as in ripgrep).

mod batch;
mod dialects;
mod errors;
mod flow;
mod help;
mod jobs;
mod misc;
mod record;
mod regional_lang;
mod replay_safety;
mod schema;
mod stumbles;
mod support;
mod view_output;
