//! Temporary files left behind by a process that was killed mid-download.
//!
//! A download writes `dir/.name.<random>.part` and holds an advisory lock
//! on it (`File::try_lock`) for as long as it writes. A process that is
//! killed cannot remove its file, but the system releases its lock. So when
//! a download to `dir/name` starts, the `.name.<random>.part` files beside
//! it that are regular files, untouched for [`STALE_AFTER`] and whose lock
//! can be taken are removed: nobody is writing them, and nobody ever will
//! (a call never resumes another call's file).

use std::ffi::OsStr;
use std::fs::{self, File, TryLockError};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::target::Target;

/// How long a temporary file must have been left alone before it counts
/// as a leftover.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Removes the leftovers of earlier, killed downloads to the same target.
/// Best effort: what cannot be read, locked or removed is left alone.
pub(crate) async fn sweep(target: &Target) {
    let dir = target.dir.clone();
    let prefix = target.temp_prefix();
    let _ = tokio::task::spawn_blocking(move || sweep_in(&dir, &prefix, SystemTime::now())).await;
}

/// Removes `prefix<random>.part` files in `dir` older than [`STALE_AFTER`]
/// at `now` that nobody holds locked; returns how many it removed.
pub(crate) fn sweep_in(dir: &Path, prefix: &str, now: SystemTime) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !is_leftover_name(&name, prefix) {
            continue;
        }
        let path = entry.path();
        // Never a link, a folder or anything but a file of our own making.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if !old {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            // Being written: a live download holds it.
            Err(TryLockError::WouldBlock) => continue,
            // Locks not supported here: age alone decides.
            Err(TryLockError::Error(_)) => {}
        }
        if fs::remove_file(&path).is_ok() {
            tracing::debug!(path = %path.display(), "removed a stale temporary download");
            removed += 1;
        }
        drop(file);
    }
    removed
}

/// `prefix` + letters and digits + `.part`: the name this crate gives a
/// temporary file for the target whose prefix is `prefix` (and not one for
/// a longer name that merely starts the same: its random part would hold a
/// dot).
fn is_leftover_name(name: &OsStr, prefix: &str) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let Some(middle) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(".part"))
    else {
        return false;
    };
    !middle.is_empty() && middle.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_leftovers() {
        let yes = |n: &str| is_leftover_name(OsStr::new(n), ".a.mp4.");
        assert!(yes(".a.mp4.Xy12Zq.part"));
        assert!(!yes(".a.mp4..part"));
        assert!(!yes(".a.mp4.x.mp4.Xy12Zq.part"));
        assert!(!yes("a.mp4"));
        assert!(!yes(".a.mp4.Xy12Zq.part.bak"));
        assert!(!yes(".b.mp4.Xy12Zq.part"));
    }

    #[test]
    fn only_old_unlocked_files_of_the_target_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n);
        let day_ago = SystemTime::now() - STALE_AFTER - Duration::from_secs(60);
        for name in [
            ".a.mp4.old111.part",
            ".a.mp4.held22.part",
            ".a.mp4.new333.part",
            ".b.mp4.old444.part",
            "a.mp4",
        ] {
            fs::write(at(name), b"x").unwrap();
        }
        for name in [
            ".a.mp4.old111.part",
            ".a.mp4.held22.part",
            ".b.mp4.old444.part",
            "a.mp4",
        ] {
            File::options()
                .write(true)
                .open(at(name))
                .unwrap()
                .set_modified(day_ago)
                .unwrap();
        }
        // A live download's lock.
        let held = File::open(at(".a.mp4.held22.part")).unwrap();
        held.lock().unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(at("a.mp4"), at(".a.mp4.link55.part")).unwrap();

        let removed = sweep_in(dir.path(), ".a.mp4.", SystemTime::now());
        assert_eq!(removed, 1);
        assert!(!at(".a.mp4.old111.part").exists());
        for kept in [
            ".a.mp4.held22.part",
            ".a.mp4.new333.part",
            ".b.mp4.old444.part",
            "a.mp4",
        ] {
            assert!(at(kept).exists(), "{kept} was removed");
        }
        #[cfg(unix)]
        assert!(fs::symlink_metadata(at(".a.mp4.link55.part")).is_ok());
        drop(held);
    }
}
