//! Local checks on what a user hands over, before any request is sent, so
//! every frontend gives the same answers: files must exist and be regular,
//! readable, non-empty files of an accepted format and at most 500 MB; URLs
//! must be http(s); the place a render will be saved must take it
//! ([`check_output`]). [`Upload`] gathers what one upload sends: files on
//! disk, media URLs, and bytes or a reader under a name (kept in a private
//! temporary file until the upload is done, so a retry can send them again).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nemo_core::api::file_part;
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::wire::FilePart;
use tokio::io::{AsyncRead, AsyncWriteExt};

/// True when `arg` is a URL rather than a path.
pub fn is_url(arg: &str) -> bool {
    let lower = arg.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// True when `arg` reads like a web address without its scheme
/// (`www.youtube.com/watch?v=x`, `example.com/clip.mp4`): a first segment
/// with a dot and a letters-only last label, then a slash.
fn looks_like_address(arg: &str) -> bool {
    let host = arg.split('/').next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    arg.contains('/')
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// Checks a local file and describes it for upload.
pub fn check_file(path: &Path) -> Result<FilePart, NemoError> {
    let bad = |what: String| NemoError::new(ErrorKind::BadInput, what);
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound if looks_like_address(&path.to_string_lossy()) => bad(format!(
            "There is no file at {shown}. If it is a web address, write it with its scheme: https://{shown}",
            shown = path.display()
        )),
        io::ErrorKind::NotFound => bad(format!(
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

/// Checks a media URL (http or https, no spaces, a host after the scheme).
pub fn check_url(text: &str) -> Result<String, NemoError> {
    let text = text.trim();
    let bad = |what: String| Err(NemoError::new(ErrorKind::BadInput, what));
    let shown = nemo_core::ids::printable_line(text);
    if !is_url(text) {
        return bad(format!(
            "`{shown}` is not a web address; URLs start with http:// or https://."
        ));
    }
    let rest = &text[text.find("://").map_or(0, |i| i + 3)..];
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return bad(format!(
            "`{shown}` is not a web address: nothing follows its scheme. Check it and give the whole address (e.g. https://example.com/clip.mp4)."
        ));
    }
    if text.contains(char::is_whitespace) {
        return bad(format!(
            "`{shown}` is not a web address: it contains spaces. Check it (a space is written %20 in an address)."
        ));
    }
    Ok(text.to_owned())
}

/// The words of a message that name local media files (by an accepted
/// extension, not a URL): the ones that exist become attachments and leave
/// the text. One that does not exist is an error when the word is clearly a
/// path (it has a folder in it, starts with `~`, or is quoted) or is the
/// whole message — so a message about a file that is not there is never
/// sent (nor routed: "intro.mp4" alone would otherwise read as "send me the
/// video"); anywhere else ("export as final.mp4", "like a.mp4 in style") it
/// is just a word. Files of other kinds are never attached or refused.
pub fn named_files(text: &str) -> Result<(String, Vec<FilePart>), NemoError> {
    const QUOTES: [char; 10] = ['"', '\'', '“', '”', '‘', '’', '「', '」', '『', '』'];
    const AROUND: [char; 6] = ['(', ')', '（', '）', '[', ']'];
    const AFTER: [char; 10] = ['.', ',', ';', ':', '!', '?', '，', '。', '；', '！'];
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '、' || c == '，')
        .filter(|w| !w.is_empty())
        .collect();
    let alone = words.len() == 1;
    let mut files = Vec::new();
    let mut kept = Vec::new();
    for raw in &words {
        let quoted = raw.contains(QUOTES);
        let word = raw
            .trim_matches(|c| QUOTES.contains(&c) || AROUND.contains(&c))
            .trim_end_matches(AFTER)
            .trim_matches(|c| QUOTES.contains(&c) || AROUND.contains(&c));
        let path = Path::new(word);
        let media = !word.is_empty()
            && !is_url(word)
            && !looks_like_address(word)
            && path.extension().is_some()
            && nemo_core::api::content_type_for(word).is_some();
        if !media {
            kept.push(*raw);
            continue;
        }
        let path_like = word.contains(['/', '\\']) || word.starts_with('~');
        if path.is_file() || path_like || quoted || alone {
            // There (attached), or clearly meant as a file: checked, so a
            // missing one is an error before anything is sent.
            files.push(check_file(path)?);
        } else {
            kept.push(*raw);
        }
    }
    Ok((kept.join(" "), files))
}

/// Splits arguments that may each be a path or a URL, checking each.
pub fn paths_or_urls(args: &[String]) -> Result<(Vec<FilePart>, Vec<String>), NemoError> {
    let mut files = Vec::new();
    let mut urls = Vec::new();
    for arg in args {
        if is_url(arg) {
            urls.push(check_url(arg)?);
        } else {
            files.push(check_file(Path::new(arg))?);
        }
    }
    Ok((files, urls))
}

/// Why a render cannot be saved where asked (see [`check_output`]). The
/// words say what is wrong; a frontend adds how its user picks another
/// place (a flag, a field, a dialog).
#[derive(Debug)]
#[non_exhaustive]
pub enum OutputProblem {
    /// The path has no file name (empty, `..`, ends in `/`).
    NotAFileName(PathBuf),
    /// A folder is there.
    IsFolder(PathBuf),
    /// A link, device, FIFO or socket is there: never replaced.
    NotRegular(PathBuf),
    /// A file is there and replacing it was not allowed.
    Exists(PathBuf),
    /// The path cannot be looked at (too long, a component is a file, no
    /// permission).
    Unusable(PathBuf, io::Error),
    /// The folder it goes in does not exist.
    NoFolder(PathBuf),
    /// What should be its folder is not one.
    NotAFolder(PathBuf),
    /// The folder takes no new file.
    Unwritable(PathBuf, io::Error),
}

impl OutputProblem {
    /// True when the only problem is a file that may be replaced on request.
    pub fn is_exists(&self) -> bool {
        matches!(self, OutputProblem::Exists(_))
    }
}

impl fmt::Display for OutputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputProblem::NotAFileName(p) => write!(f, "`{}` is not a file name", p.display()),
            OutputProblem::IsFolder(p) => write!(f, "{} is a folder", p.display()),
            OutputProblem::NotRegular(p) => write!(
                f,
                "{} is not a regular file (a link, a device or a pipe) and is never replaced",
                p.display()
            ),
            OutputProblem::Exists(p) => write!(f, "{} already exists", p.display()),
            OutputProblem::Unusable(p, e) => write!(f, "Cannot save as {}: {e}", p.display()),
            OutputProblem::NoFolder(p) => write!(f, "The folder {} does not exist", p.display()),
            OutputProblem::NotAFolder(p) => write!(f, "{} is not a folder", p.display()),
            OutputProblem::Unwritable(p, e) => write!(f, "Cannot save into {}: {e}", p.display()),
        }
    }
}

impl From<OutputProblem> for NemoError {
    fn from(p: OutputProblem) -> NemoError {
        NemoError::new(ErrorKind::BadInput, format!("{p}."))
    }
}

/// Checks, before any request that costs anything, that a render can be
/// saved at `out` (`None`: a file in the current folder): its folder exists
/// and takes new files; an existing file is replaced only with `overwrite`,
/// and only a regular one (never a folder, a device, a FIFO or a link).
pub fn check_output(out: Option<&Path>, overwrite: bool) -> Result<(), OutputProblem> {
    let dir = match out {
        Some(path) => {
            if path.as_os_str().is_empty() || path.file_name().is_none() {
                return Err(OutputProblem::NotAFileName(path.to_path_buf()));
            }
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(OutputProblem::IsFolder(path.to_path_buf()))
                }
                Ok(meta) if !meta.file_type().is_file() => {
                    return Err(OutputProblem::NotRegular(path.to_path_buf()))
                }
                Ok(_) if !overwrite => return Err(OutputProblem::Exists(path.to_path_buf())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // A name too long, a component that is a file, no
                // permission to look: it could not be saved there either.
                Err(e) => return Err(OutputProblem::Unusable(path.to_path_buf(), e)),
            }
            match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            }
        }
        None => PathBuf::from("."),
    };
    check_folder(&dir)
}

/// Checks that `dir` is a folder that takes new files.
pub fn check_folder(dir: &Path) -> Result<(), OutputProblem> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(OutputProblem::NotAFolder(dir.to_path_buf())),
        Err(_) => return Err(OutputProblem::NoFolder(dir.to_path_buf())),
    }
    // The only sure test of "may write here" is writing: a probe file,
    // created exclusively and removed at once.
    tempfile::Builder::new()
        .prefix(".nemo-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            // tempfile names its probe file in the error; say only what
            // happened, of the folder in full ("." says little).
            let os = e
                .get_ref()
                .and_then(|inner| inner.source())
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error);
            let plain = os.map_or_else(
                || std::io::Error::from(e.kind()),
                std::io::Error::from_raw_os_error,
            );
            let full = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            OutputProblem::Unwritable(full, plain)
        })
}

/// What one upload sends: files on disk, media URLs, and bytes or readers
/// under a name. Each is checked as it is added (format, size, not empty),
/// so nothing is sent when one of them is wrong.
///
/// ```
/// # async fn demo() -> Result<(), nemo_core::error::NemoError> {
/// use nemo_client::Upload;
///
/// let upload = Upload::new()
///     .url("https://example.com/clip.mp4")?
///     .bytes("logo.png", vec![0x89, b'P', b'N', b'G'])?;
/// assert_eq!(upload.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Upload {
    files: Vec<FilePart>,
    urls: Vec<String>,
    /// Where bytes and readers are kept until the upload is done (mode
    /// 0700, removed when the `Upload` is dropped).
    spool: Option<tempfile::TempDir>,
}

impl Upload {
    /// Nothing yet.
    pub fn new() -> Upload {
        Upload::default()
    }

    /// A file on disk (checked now).
    pub fn file(mut self, path: impl AsRef<Path>) -> Result<Upload, NemoError> {
        self.files.push(check_file(path.as_ref())?);
        Ok(self)
    }

    /// A media URL the service fetches itself (checked now).
    pub fn url(mut self, url: &str) -> Result<Upload, NemoError> {
        self.urls.push(check_url(url)?);
        Ok(self)
    }

    /// Each argument as a path or a URL (see [`paths_or_urls`]).
    pub fn paths_or_urls(mut self, args: &[String]) -> Result<Upload, NemoError> {
        let (files, urls) = paths_or_urls(args)?;
        self.files.extend(files);
        self.urls.extend(urls);
        Ok(self)
    }

    /// Bytes in memory, sent as a file called `name` (whose extension says
    /// the format, as for a file on disk).
    pub fn bytes(self, name: &str, bytes: impl AsRef<[u8]>) -> Result<Upload, NemoError> {
        let bytes = bytes.as_ref();
        self.spooled(name, Some(bytes.len() as u64), |file| {
            io::Write::write_all(file, bytes)
        })
    }

    /// Everything `reader` gives, sent as a file called `name`. It is read
    /// to the end now (at most 500 MB are kept; more is refused).
    pub async fn reader(
        self,
        name: &str,
        mut reader: impl AsyncRead + Unpin,
    ) -> Result<Upload, NemoError> {
        let (mut upload, path) = self.spool_path(name)?;
        let limit = nemo_core::api::MAX_UPLOAD_BYTES + 1;
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| spool_error(name, &e))?;
        let mut file = tokio::io::BufWriter::new(file);
        let mut limited = tokio::io::AsyncReadExt::take(&mut reader, limit);
        let copied = tokio::io::copy(&mut limited, &mut file)
            .await
            .map_err(|e| spool_error(name, &e))?;
        file.flush().await.map_err(|e| spool_error(name, &e))?;
        upload.add_spooled(name, &path, copied)?;
        Ok(upload)
    }

    fn spooled(
        self,
        name: &str,
        len: Option<u64>,
        write: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
    ) -> Result<Upload, NemoError> {
        if let Some(len) = len {
            // Format and size first: nothing is written for a refused part.
            file_part(Path::new(&safe_name(name)?), len.max(1))?;
        }
        let (mut upload, path) = self.spool_path(name)?;
        let mut file = std::fs::File::create(&path).map_err(|e| spool_error(name, &e))?;
        write(&mut file).map_err(|e| spool_error(name, &e))?;
        let len = file.metadata().map_err(|e| spool_error(name, &e))?.len();
        upload.add_spooled(name, &path, len)?;
        Ok(upload)
    }

    /// A fresh place in the spool for a part called `name`.
    fn spool_path(mut self, name: &str) -> Result<(Upload, PathBuf), NemoError> {
        let name = safe_name(name)?;
        // Format first, before anything is read or written.
        file_part(Path::new(&name), 1)?;
        let spool = match &self.spool {
            Some(dir) => dir.path().to_path_buf(),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("nemo-upload-")
                    .tempdir()
                    .map_err(|e| spool_error(&name, &e))?;
                let path = dir.path().to_path_buf();
                self.spool = Some(dir);
                path
            }
        };
        // One folder per part: two parts may share a name.
        let dir = spool.join(self.files.len().to_string());
        std::fs::create_dir(&dir).map_err(|e| spool_error(&name, &e))?;
        Ok((self, dir.join(name)))
    }

    fn add_spooled(&mut self, name: &str, path: &Path, len: u64) -> Result<(), NemoError> {
        if len == 0 {
            return Err(NemoError::new(
                ErrorKind::BadInput,
                format!("`{name}` is empty (0 bytes); pass the complete file."),
            ));
        }
        self.files.push(file_part(path, len)?);
        Ok(())
    }

    /// How many files and URLs.
    pub fn len(&self) -> usize {
        self.files.len() + self.urls.len()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The files and URLs, as the session's upload command takes them.
    /// The spool (if any) must outlive the command: keep the `Upload`.
    pub fn parts(&self) -> (Vec<FilePart>, Vec<String>) {
        (self.files.clone(), self.urls.clone())
    }
}

/// `name` as a plain file name: no folders, nothing hidden or empty.
fn safe_name(name: &str) -> Result<String, NemoError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." || base.contains('\0') {
        return Err(NemoError::new(
            ErrorKind::BadInput,
            format!(
                "`{}` is not a file name; name the part like a file (e.g. clip.mp4).",
                nemo_core::ids::printable_line(name)
            ),
        ));
    }
    Ok(base.trim_start_matches('.').to_owned())
}

fn spool_error(name: &str, e: &io::Error) -> NemoError {
    NemoError::new(
        ErrorKind::BadInput,
        format!("Cannot keep `{name}` in a temporary file for the upload: {e}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unwritable_folder_is_named_in_full_without_the_probe() {
        // /proc takes no new files, even for root.
        let problem = check_folder(Path::new("/proc")).unwrap_err();
        let said = problem.to_string();
        assert!(matches!(problem, OutputProblem::Unwritable(..)), "{said}");
        assert!(said.starts_with("Cannot save into /proc: "), "{said}");
        assert!(!said.contains("nemo-probe"), "{said}");
    }

    #[test]
    fn output_paths_are_checked_before_anything_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_output(Some(&d.join("new.mp4")), false).is_ok());
        std::fs::write(d.join("old.mp4"), "x").unwrap();
        let e = check_output(Some(&d.join("old.mp4")), false).unwrap_err();
        assert!(e.is_exists(), "{e}");
        assert!(check_output(Some(&d.join("old.mp4")), true).is_ok());
        assert!(matches!(
            check_output(Some(d), true),
            Err(OutputProblem::IsFolder(_))
        ));
        let long = d.join(format!("{}.mp4", "a".repeat(300)));
        assert!(matches!(
            check_output(Some(&long), false),
            Err(OutputProblem::Unusable(..))
        ));
        assert!(matches!(
            check_output(Some(&d.join("missing/x.mp4")), false),
            Err(OutputProblem::NoFolder(_))
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("old.mp4"), d.join("link.mp4")).unwrap();
            assert!(matches!(
                check_output(Some(&d.join("link.mp4")), true),
                Err(OutputProblem::NotRegular(_))
            ));
            assert!(matches!(
                check_output(Some(Path::new("/dev/null")), true),
                Err(OutputProblem::NotRegular(_))
            ));
        }
        // The words say what is wrong, never a flag of some frontend.
        let e = NemoError::from(check_output(Some(&d.join("old.mp4")), false).unwrap_err());
        assert!(!e.message.contains("--"), "{}", e.message);
    }

    #[test]
    fn local_checks() {
        let dir = tempfile::tempdir().unwrap();
        let missing = check_file(&dir.path().join("nope.mp4")).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::BadInput);
        assert!(check_file(dir.path())
            .unwrap_err()
            .message
            .contains("folder"));
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "hi").unwrap();
        assert_eq!(
            check_file(&txt).unwrap_err().kind,
            ErrorKind::UnsupportedFile
        );
        let mp4 = dir.path().join("a.mp4");
        std::fs::write(&mp4, "").unwrap();
        assert!(check_file(&mp4).unwrap_err().message.contains("empty"));
        std::fs::write(&mp4, "x").unwrap();
        assert_eq!(check_file(&mp4).unwrap().len, 1);
        assert!(check_url("ftp://x").is_err());
        let e = check_url("https://").unwrap_err();
        assert!(e.message.contains("nothing follows"), "{}", e.message);
        assert!(check_url("https://example.com/a.mp4").is_ok());
        let e = check_file(Path::new("www.youtube.com/watch?v=x")).unwrap_err();
        assert!(
            e.message.contains("https://www.youtube.com/watch?v=x"),
            "{}",
            e.message
        );
        let e = check_file(&dir.path().join("nope.mp4")).unwrap_err();
        assert!(!e.message.contains("https://"), "{}", e.message);
    }

    #[test]
    fn files_named_in_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mp4");
        std::fs::write(&clip, "x").unwrap();
        let text = format!("add \"{}\" at the start, please", clip.display());
        let (words, files) = named_files(&text).unwrap();
        assert_eq!(words, "add at the start, please");
        assert_eq!(files.len(), 1);
        // A media file name that is not there is refused, whatever else
        // the message says.
        let missing = dir.path().join("intro.mp4");
        let e = named_files(&missing.display().to_string()).unwrap_err();
        assert!(e.message.contains("There is no file"), "{}", e.message);
        // Web addresses and plain words are left in the message.
        let (words, files) =
            named_files("use https://example.com/a.mp4 and www.example.com/b.mp4 in 4k").unwrap();
        assert!(files.is_empty());
        assert_eq!(
            words,
            "use https://example.com/a.mp4 and www.example.com/b.mp4 in 4k"
        );
        let (words, _) = named_files("make it 1.5x faster").unwrap();
        assert_eq!(words, "make it 1.5x faster");
        // A missing file name alone is refused (it would route as an
        // export); inside a sentence it is just a word.
        assert!(named_files("intro.mp4").is_err());
        for text in [
            "make it look like a.mp4 in style",
            "1080p.mp4 quality please",
            "export as final.mp4",
            "加上intro.mp4、outro.mp4",
            "follow script.txt",
        ] {
            let (words, files) = named_files(text).unwrap();
            assert!(files.is_empty(), "{text}");
            assert!(!words.is_empty(), "{text}");
        }
        // Punctuation around an existing file does not hide it.
        for text in [
            format!("add ({}) at start", clip.display()),
            format!("add music from {}.", clip.display()),
        ] {
            let (_, files) = named_files(&text).unwrap();
            assert_eq!(files.len(), 1, "{text}");
        }
        // A file that is not media is left in the text, never refused.
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, "x").unwrap();
        let (words, files) = named_files(&format!("follow {}", notes.display())).unwrap();
        assert!(files.is_empty());
        assert!(words.contains("notes.txt"));
    }

    #[tokio::test]
    async fn bytes_and_readers_are_checked_and_kept_until_the_upload_is_dropped() {
        let upload = Upload::new()
            .bytes("clip.mp4", b"not really a video")
            .unwrap()
            .bytes("clip.mp4", b"another one")
            .unwrap()
            .reader("../../etc/song.mp3", &b"la la"[..])
            .await
            .unwrap();
        let (files, urls) = upload.parts();
        assert!(urls.is_empty());
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].filename, "clip.mp4");
        assert_eq!(files[1].filename, "clip.mp4");
        assert_ne!(files[0].path, files[1].path, "two parts, two files");
        // A name never walks out of the spool.
        assert_eq!(files[2].filename, "song.mp3");
        assert_eq!(std::fs::read(&files[2].path).unwrap(), b"la la");
        assert_eq!(files[0].len, 18);
        drop(upload);
        assert!(!files[0].path.exists(), "the spool goes with the upload");

        let e = Upload::new().bytes("notes.txt", b"hi").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedFile);
        let e = Upload::new().bytes("a.mp4", b"").unwrap_err();
        assert!(e.message.contains("empty"), "{}", e.message);
        let e = Upload::new().reader("a.mp4", &b""[..]).await.unwrap_err();
        assert!(e.message.contains("empty"), "{}", e.message);
        let e = Upload::new().bytes("..", b"x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadInput);
        let e = Upload::new().url("www.example.com/a.mp4").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadInput);
    }
}
