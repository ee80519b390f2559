//! Local checks on what the user hands over, before any request is sent:
//! files must exist, be regular readable files of an accepted format and at
//! most 500 MB; URLs must be http(s); the place a render will be saved must
//! be one where it can be saved, checked before anything is spent.

use std::path::{Path, PathBuf};

use nemo_core::api::file_part;
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::wire::FilePart;

/// True when `arg` is a URL rather than a path.
pub(crate) fn is_url(arg: &str) -> bool {
    let lower = arg.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Checks a local file and describes it for upload.
pub(crate) fn file(path: &Path) -> Result<FilePart, NemoError> {
    let bad = |what: String| NemoError::new(ErrorKind::BadInput, what);
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad(format!(
            "There is no file at {}. Check the path and try again.",
            path.display()
        )),
        _ => bad(format!(
            "Cannot read {}: {e}. Check the path (and its links) and try again.",
            path.display()
        )),
    })?;
    if meta.is_dir() {
        return Err(bad(format!(
            "{} is a folder; pass the files in it instead (e.g. {}/*.mp4).",
            path.display(),
            path.display()
        )));
    }
    if !meta.is_file() {
        return Err(bad(format!(
            "{} is not a regular file; pass a video, image or audio file.",
            path.display()
        )));
    }
    std::fs::File::open(path).map_err(|e| {
        bad(format!(
            "Cannot read {}: {e}. Check its permissions.",
            path.display()
        ))
    })?;
    if meta.len() == 0 {
        return Err(bad(format!(
            "{} is empty (0 bytes); pass the complete file.",
            path.display()
        )));
    }
    file_part(path, meta.len())
}

/// Checks a media URL.
pub(crate) fn url(text: &str) -> Result<String, NemoError> {
    let text = text.trim();
    if is_url(text) && text.len() > "https://".len() && !text.contains(char::is_whitespace) {
        Ok(text.to_owned())
    } else {
        Err(NemoError::new(
            ErrorKind::BadInput,
            format!("`{text}` is not a web address; URLs start with http:// or https://."),
        ))
    }
}

/// Splits arguments that may each be a path or a URL.
pub(crate) fn paths_or_urls(args: &[String]) -> Result<(Vec<FilePart>, Vec<String>), NemoError> {
    let mut files = Vec::new();
    let mut urls = Vec::new();
    for arg in args {
        if is_url(arg) {
            urls.push(url(arg)?);
        } else {
            files.push(file(Path::new(arg))?);
        }
    }
    Ok((files, urls))
}

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
/// saved at `out` (or, without `--out`, in the current folder): the folder
/// exists and takes new files; an existing `out` is replaced only with
/// `--overwrite` and only when it is a regular file (never a folder, a
/// device, a FIFO or a link).
pub(crate) fn check_out(
    out: Option<&Path>,
    overwrite: bool,
    asker: Asker,
) -> Result<(), NemoError> {
    let bad = |what: String| NemoError::new(ErrorKind::BadInput, what);
    let (elsewhere, replace) = asker.words();
    let dir = match out {
        Some(path) => {
            let shown = path.display();
            if path.as_os_str().is_empty() || path.file_name().is_none() {
                return Err(bad(format!("`{shown}` is not a file name. {elsewhere}.")));
            }
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(bad(format!("{shown} is a folder. {elsewhere}.")))
                }
                Ok(meta) if !meta.file_type().is_file() => {
                    return Err(bad(format!(
                        "{shown} is not a regular file (a link, a device or a pipe); nemo does not replace it. {elsewhere}."
                    )))
                }
                Ok(_) if !overwrite => {
                    return Err(bad(format!(
                        "{shown} already exists. {elsewhere}, or {replace} to replace it."
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A name too long, a component that is a file, no
                // permission to look: it could not be saved there either.
                Err(e) => return Err(bad(format!("Cannot save as {shown}: {e}. {elsewhere}."))),
            }
            match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            }
        }
        None => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(bad(format!(
                "{} is not a folder. {elsewhere}.",
                dir.display()
            )))
        }
        Err(_) => {
            return Err(bad(format!(
                "The folder {} does not exist. Create it first, or save elsewhere: {}.",
                dir.display(),
                elsewhere.to_lowercase()
            )))
        }
    }
    // The only sure test of "may write here" is writing: a probe file,
    // created exclusively and removed at once.
    tempfile::Builder::new()
        .prefix(".nemo-probe-")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| {
            bad(format!(
                "Cannot save into {}: {e}. {elsewhere}.",
                dir.display()
            ))
        })
}

/// Who asks for a place to save, so the advice names their own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    /// `export` / `run` / `say`: `--out`, `--overwrite`.
    Command,
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
    fn output_paths_are_checked_before_anything_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_out(Some(&d.join("new.mp4")), false, Asker::Command).is_ok());
        std::fs::write(d.join("old.mp4"), "x").unwrap();
        let e = check_out(Some(&d.join("old.mp4")), false, Asker::Command).unwrap_err();
        assert!(e.message.contains("--overwrite"), "{}", e.message);
        assert!(!e.message.contains("--force"));
        let e = check_out(Some(&d.join("old.mp4")), false, Asker::Jobs).unwrap_err();
        assert!(
            e.message.contains("--dir") && !e.message.contains("--out"),
            "{}",
            e.message
        );
        let e = check_out(Some(&d.join("old.mp4")), false, Asker::Mcp).unwrap_err();
        assert!(!e.message.contains("--"), "{}", e.message);
        assert!(check_out(Some(&d.join("old.mp4")), true, Asker::Command).is_ok());
        assert!(check_out(Some(d), true, Asker::Command)
            .unwrap_err()
            .message
            .contains("folder"));
        let long = d.join(format!("{}.mp4", "a".repeat(300)));
        let e = check_out(Some(&long), false, Asker::Command).unwrap_err();
        assert!(e.message.contains("Cannot save as"), "{}", e.message);
        let e = check_out(Some(&d.join("missing/x.mp4")), false, Asker::Command).unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("old.mp4"), d.join("link.mp4")).unwrap();
            let e = check_out(Some(&d.join("link.mp4")), true, Asker::Command).unwrap_err();
            assert!(e.message.contains("not a regular file"), "{}", e.message);
            let e = check_out(Some(Path::new("/dev/null")), true, Asker::Command).unwrap_err();
            assert!(e.message.contains("not a regular file"), "{}", e.message);
        }
    }

    #[test]
    fn local_checks() {
        let dir = tempfile::tempdir().unwrap();
        let missing = file(&dir.path().join("nope.mp4")).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::BadInput);
        assert!(file(dir.path()).unwrap_err().message.contains("folder"));
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "hi").unwrap();
        assert_eq!(file(&txt).unwrap_err().kind, ErrorKind::UnsupportedFile);
        let mp4 = dir.path().join("a.mp4");
        std::fs::write(&mp4, "").unwrap();
        assert!(file(&mp4).unwrap_err().message.contains("empty"));
        std::fs::write(&mp4, "x").unwrap();
        assert_eq!(file(&mp4).unwrap().len, 1);
        assert!(url("ftp://x").is_err());
        assert!(url("https://example.com/a.mp4").is_ok());
    }
}
