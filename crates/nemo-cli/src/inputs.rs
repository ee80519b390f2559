//! Local checks on what the user hands over, before any request is sent:
//! files must exist, be regular readable files of an accepted format and at
//! most 500 MB; URLs must be http(s).

use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
