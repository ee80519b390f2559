//! `nemo replay FILE.har [--check]`: drives the session machine through a
//! recorded session, offline and in virtual time (a ten-minute session
//! replays in milliseconds), and prints the transcript a user would have
//! seen. `--check` fails when the client's requests differ from the
//! recorded ones (generated ids and timestamps aside), which turns any
//! recording into a regression test.

use std::path::PathBuf;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_har::{Har, ReplayOptions};
use serde_json::json;

use crate::output::Output;

/// Arguments of `nemo replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The recording: a file written by `--record`, or a HAR exported from a browser.
    #[arg(value_name = "FILE.har")]
    pub(crate) file: PathBuf,
    /// Fail (exit 1) when the client's requests differ from the recorded ones.
    #[arg(long)]
    pub(crate) check: bool,
}

/// Runs `nemo replay`.
pub(crate) fn exec(args: Args, out: &Output) -> Result<(), NemoError> {
    let bad = |m: String| NemoError::new(ErrorKind::BadInput, m);
    let har = Har::load(&args.file).map_err(|e| {
        bad(format!(
            "Cannot read the recording {}: {e}",
            args.file.display()
        ))
    })?;
    let options = ReplayOptions {
        check: args.check,
        ..ReplayOptions::default()
    };
    let replay = nemo_har::replay_blocking(&har, &options)
        .map_err(|e| bad(format!("Cannot replay {}: {e}", args.file.display())))?;
    if out.json() {
        out.emit(json!({
            "type": "replay",
            "transcript": replay.transcript,
            "requests": replay.requests,
            "differences": replay.differences.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "passed": replay.passed(),
        }));
    } else {
        out.plain(replay.transcript_text().trim_end());
    }
    if args.check {
        if replay.passed() {
            out.info(&format!(
                "check passed: {} requests match the recording",
                replay.requests
            ));
        } else {
            return Err(bad(format!(
                "The client's requests differ from the recording:\n{}",
                replay.report()
            )));
        }
    }
    Ok(())
}
