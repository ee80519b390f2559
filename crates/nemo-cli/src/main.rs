//! `nemo`: drive the NemoVideo cloud video agent from a terminal or a script.
//!
//! ```text
//! nemo demo                                  # the whole workflow, offline, in seconds
//! nemo run "add lo-fi music at 35%" --file clip.mp4 --out edited.mp4
//! nemo chat                                  # talk to the agent
//! ```
//!
//! `main` is thin (as in ripgrep): parse the command line, run it, turn the
//! outcome into an exit code — 0 success, 1 permanent failure, 2 transient
//! failure (safe to retry), 130 interrupted. The work lives in [`app`] and
//! one file per subcommand under [`commands`].

mod app;
mod cli;
mod commands;
mod inputs;
mod mcp;
mod output;
mod report;
mod store;
mod timeline_view;
mod trace;
mod words;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse() {
        Ok(cli) => app::run(cli),
        Err(code) => code,
    }
}
