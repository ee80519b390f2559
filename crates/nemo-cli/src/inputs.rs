//! The CLI's words for the library's local checks
//! ([`nemo_client::inputs`]): which of its own options picks another place
//! to save.

use std::path::Path;

pub(crate) use nemo_client::inputs::{check_file as file, is_url, paths_or_urls};
use nemo_client::inputs::{check_url as url, OutputProblem};
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::wire::FilePart;

/// Checks `--file` and `--url` options.
pub(crate) fn attachments(
    files: &[std::path::PathBuf],
    urls: &[String],
) -> Result<(Vec<FilePart>, Vec<String>), NemoError> {
    let files = files
        .iter()
        .map(|p| file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let urls = urls.iter().map(|u| url(u)).collect::<Result<Vec<_>, _>>()?;
    Ok((files, urls))
}

/// Checks, before any request that costs anything, that a render can be
/// saved at `out` (or, without `--out`, in the current folder), with
/// advice that names the asker's own options.
pub(crate) fn check_out(
    out: Option<&Path>,
    overwrite: bool,
    asker: Asker,
) -> Result<(), NemoError> {
    nemo_client::inputs::check_output(out, overwrite).map_err(|p| advise(&p, asker))
}

/// Why a render cannot be saved somewhere, with advice that names the
/// asker's own options.
pub(crate) fn advise(problem: &OutputProblem, asker: Asker) -> NemoError {
    let (elsewhere, replace) = asker.words();
    let advice = match problem {
        OutputProblem::Exists(_) => format!("{elsewhere}, or {replace} to replace it"),
        OutputProblem::NoFolder(_) => {
            format!(
                "Create it first, or save elsewhere: {}",
                elsewhere.to_lowercase()
            )
        }
        _ => elsewhere.to_owned(),
    };
    NemoError::new(ErrorKind::BadInput, format!("{problem}. {advice}."))
}

/// Who asks for a place to save, so the advice names their own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    /// `export` / `run`: `--out`, `--overwrite`.
    Command,
    /// An export asked for in words (`say "export"`, the same in `chat`):
    /// no options of its own; it saves into the current folder.
    Words,
    /// `jobs --resume`: `--dir`, `--overwrite`.
    Jobs,
    /// A `batch` manifest item: its `output`.
    Batch,
    /// The MCP tools: the `out` and `overwrite` arguments.
    Mcp,
}

impl Asker {
    /// (how to save elsewhere, how to allow replacing)
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Asker::Command => ("Choose another path with --out", "add --overwrite"),
            Asker::Words => (
                "An export asked for in words saves into the current folder: run it from a folder you may write to, or save elsewhere with `nemo export --out PATH`",
                "use `nemo export --out PATH --overwrite`",
            ),
            Asker::Jobs => ("Save into another folder with --dir DIR", "add --overwrite"),
            Asker::Batch => (
                "Give the item another `output` in the manifest",
                "remove the file",
            ),
            Asker::Mcp => ("Give another `out` path", "set `overwrite: true`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_names_the_askers_own_options() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_out(Some(&d.join("new.mp4")), false, Asker::Command).is_ok());
        std::fs::write(d.join("old.mp4"), "x").unwrap();
        let e = check_out(Some(&d.join("old.mp4")), false, Asker::Command).unwrap_err();
        assert!(e.message.contains("--overwrite"), "{}", e.message);
        assert!(e.message.contains("already exists"), "{}", e.message);
        assert!(!e.message.contains("--force"));
        let e = check_out(Some(&d.join("old.mp4")), false, Asker::Jobs).unwrap_err();
        assert!(
            e.message.contains("--dir") && !e.message.contains("--out"),
            "{}",
            e.message
        );
        let e = check_out(Some(&d.join("old.mp4")), false, Asker::Mcp).unwrap_err();
        assert!(!e.message.contains("--"), "{}", e.message);
        // Words have no --out of their own: the advice names `nemo export`.
        #[cfg(target_os = "linux")]
        {
            let e = check_out(Some(Path::new("/proc/x.mp4")), false, Asker::Words).unwrap_err();
            assert!(
                e.message.contains("nemo export --out PATH") && !e.message.contains("with --out"),
                "{}",
                e.message
            );
        }
        let e = check_out(Some(&d.join("missing/x.mp4")), false, Asker::Command).unwrap_err();
        assert!(
            e.message.contains("does not exist") && e.message.contains("--out"),
            "{}",
            e.message
        );
    }
}
