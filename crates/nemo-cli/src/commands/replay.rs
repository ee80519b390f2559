//! `nemo replay FILE.har [--check]`: drives the session machine through a
//! recorded session, offline and in virtual time (a ten-minute session
//! replays in milliseconds), and prints the transcript a user would have
//! seen. `--check` fails when the client's requests differ from the
//! recorded ones (generated ids and timestamps aside), which turns any
//! recording into a regression test.

use std::path::PathBuf;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_har::{Har, Replay, ReplayOptions};
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
    let spoken: Vec<Vec<(String, String)>> = replay
        .spoken
        .iter()
        .map(|entry| entry.iter().map(|(s, w)| offline(s, w)).collect())
        .collect();
    if out.json() {
        let transcript: Vec<String> = spoken.iter().map(|e| Replay::entry(e)).collect();
        out.emit(json!({
            "type": "replay",
            "transcript": transcript,
            "requests": replay.requests,
            "differences": replay.differences.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "passed": replay.passed(),
        }));
    } else {
        // Each piece under its speaker, as the live commands print the
        // server's words: never at column 0, wrapped with a hanging indent
        // on a terminal.
        for (speaker, words) in spoken.iter().flatten() {
            out.set_speaker(Some(speaker));
            out.server_content(words);
        }
        out.set_speaker(None);
        out.info(crate::words::tr(
            "Replayed offline: nothing was sent and no file was written.",
        ));
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

/// A transcript piece (speaker, words) as this replay did it: the recorded
/// download is replayed from the recording, never written where the
/// session saved it.
fn offline(speaker: &str, words: &str) -> (String, String) {
    if speaker == "downloaded: " {
        // `NAME (N bytes)`
        let what = match words
            .strip_suffix(" bytes)")
            .and_then(|w| w.rsplit_once(" ("))
        {
            Some((name, bytes)) => match bytes.parse::<u64>() {
                Ok(n) => format!("{name} ({})", crate::output::human_bytes(n)),
                Err(_) => words.to_owned(),
            },
            None => words.to_owned(),
        };
        return (
            "download replayed: ".to_owned(),
            format!("{what}, no file written"),
        );
    }
    if speaker.starts_with("render ") {
        if let Some(name) = words.strip_prefix("ended, downloaded to ") {
            return (
                speaker.to_owned(),
                format!("ended, download of {name} replayed"),
            );
        }
    }
    (speaker.to_owned(), words.to_owned())
}

#[cfg(test)]
mod tests {
    use super::offline;

    #[test]
    fn a_replayed_download_says_no_file_was_written() {
        let said = |s: &str, w: &str| (s.to_owned(), w.to_owned());
        assert_eq!(
            offline("downloaded: ", "dialect-adk.mp4 (43792 bytes)"),
            said(
                "download replayed: ",
                "dialect-adk.mp4 (43.8 kB), no file written"
            )
        );
        assert_eq!(
            offline("render r_1: ", "ended, downloaded to out.mp4"),
            said("render r_1: ", "ended, download of out.mp4 replayed")
        );
        assert_eq!(offline("you › ", "export"), said("you › ", "export"));
    }
}
