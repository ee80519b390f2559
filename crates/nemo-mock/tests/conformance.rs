//! Conformance tests: the simulator spoken to over raw HTTP (hand-written
//! HTTP/1.1 over `TcpStream`, not through `nemo-http`), and in-process under
//! paused time. One test binary to save link time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
#![allow(unreachable_pub)] // helper modules of one test binary; `pub` is for sharing between them

mod conformance {
    pub mod codes;
    pub mod concurrency;
    pub mod dialects;
    pub mod endpoints;
    pub mod faults;
    pub mod generation;
    pub mod inprocess;
    pub mod raw;
    pub mod render;
    pub mod sse;
}
