//! The target path: what may be written there, and putting the finished
//! file in place.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use nemo_core::transport::{DownloadOptions, TransportErrorKind};
use tempfile::NamedTempFile;

use crate::Fail;

/// The download's target, as found before anything is sent.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) dest: PathBuf,
    pub(crate) dir: PathBuf,
    /// The regular file that `overwrite` may replace, when there was one.
    replaces: Option<Identity>,
    overwrite: bool,
}

/// Which file a path named, unchanged: device, inode and status-change
/// time (a file removed and another created at once may get the same
/// inode, never the same change time; a file written in place meanwhile is
/// another process's fresh content too). Elsewhere: length and
/// modification time, the best there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity(u64, u64, i64, i64);

impl Identity {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
    }

    #[cfg(not(unix))]
    fn of(meta: &std::fs::Metadata) -> Self {
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        Self(meta.len(), modified, 0, 0)
    }
}

/// What a path that is not a regular file is, in words.
fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a folder";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

impl Target {
    /// Refuses a target that must not be written (an existing one unless
    /// overwriting; anything but a regular file even then; a missing folder).
    pub(crate) async fn check(dest: &Path, options: DownloadOptions) -> Result<Self, Fail> {
        let local = |what: String| (TransportErrorKind::Local, what);
        let shown = dest.display();
        if dest.file_name().is_none() {
            return Err(local(format!("{shown}: not a file path")));
        }
        let replaces = match tokio::fs::symlink_metadata(dest).await {
            Ok(meta) if meta.is_dir() => return Err(local(format!("{shown} is a directory"))),
            Ok(_) if !options.overwrite => {
                return Err((
                    TransportErrorKind::Exists,
                    format!("{shown} already exists (allow overwriting to replace it)"),
                ))
            }
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(local(format!(
                    "{shown} is {}; only a regular file is ever replaced",
                    describe(meta.file_type())
                )))
            }
            Ok(meta) => Some(Identity::of(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(local(format!("{shown}: {e}"))),
        };
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match tokio::fs::metadata(&dir).await {
            Ok(meta) if meta.is_dir() => {}
            _ => return Err(local(format!("{}: no such directory", dir.display()))),
        }
        Ok(Self {
            dest: dest.to_path_buf(),
            dir,
            replaces,
            overwrite: options.overwrite,
        })
    }

    /// `.name.`, the temporary file's prefix (the name shortened, so that the
    /// random part and `.part` still fit in a file name).
    pub(crate) fn temp_prefix(&self) -> String {
        let name = self
            .dest
            .file_name()
            .map(OsStr::to_string_lossy)
            .unwrap_or_default();
        let mut prefix = String::from(".");
        for c in name.chars() {
            if prefix.len() + c.len_utf8() > 128 {
                break;
            }
            prefix.push(c);
        }
        prefix.push('.');
        prefix
    }

    /// Gives the synced temporary file the target's name (blocking).
    pub(crate) fn place(&self, temp: NamedTempFile) -> Result<(), Fail> {
        let shown = self.dest.display();
        let moved = |e: io::Error| {
            (
                TransportErrorKind::Local,
                format!("cannot move the download to {shown}: {e}"),
            )
        };
        let taken = |what: &str| {
            (
                TransportErrorKind::Exists,
                format!("{shown} {what} during the download; not replaced"),
            )
        };
        let replaceable = match (self.overwrite, self.replaces) {
            (true, Some(identity)) => match std::fs::symlink_metadata(&self.dest) {
                Ok(meta) if meta.file_type().is_file() && Identity::of(&meta) == identity => true,
                Ok(_) => return Err(taken("was replaced by another file")),
                // Gone meanwhile: the place is free again, as if absent.
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(moved(e)),
            },
            _ => false,
        };
        if replaceable {
            temp.persist(&self.dest)
                .map(drop)
                .map_err(|e| moved(e.error))
        } else {
            // Atomic "create only if absent" (rename without replacing, or a
            // hard link).
            match temp.persist_noclobber(&self.dest) {
                Ok(_) => Ok(()),
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Err(taken("appeared")),
                Err(e) => Err(moved(e.error)),
            }
        }
    }
}

/// Syncs a directory so the rename itself is durable. Best effort: not every
/// platform can open a directory.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}
