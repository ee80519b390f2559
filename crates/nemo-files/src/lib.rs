//! `nemo-files`: the one place where a download becomes a file — temporary
//! file, verify, sync, rename — for every transport.
//!
//! Transports move bytes; this crate alone places files. A transport hands
//! over the answer to one request at a time (a [`StreamResponse`]: status,
//! headers, a body chunk by chunk) through a [`Fetch`]; [`download`] asks
//! for as many answers as it needs (a resumed attempt gets a [`Resume`]:
//! the fetcher adds `Range` and `If-Range`), checks them and puts the file in
//! place. `nemo-http` fetches with its reqwest client and its timeouts; a
//! transport that can only hand over bytes (the in-process simulator, a HAR
//! replay, a browser, a test) calls [`download_via_stream`], which fetches
//! through [`Transport::open_stream`], and gets the same guarantees.
//!
//! # The temporary file
//!
//! `dir/name.mp4` is written as `dir/.name.mp4.<random>.part`, created
//! exclusively (`O_EXCL`: an existing file or link of that name is never
//! opened, let alone followed) by [`tempfile`], so two processes or two
//! calls downloading to the same target never share one. It only ever gets
//! the final name once it is complete, checked, synced to disk, so a
//! half-written file never sits under the final name. The bytes go to disk on
//! a thread of the call's own, in 256 KiB writes, through a short bounded
//! queue: memory stays at a few MiB whatever the file's size. Another thread
//! has the kernel write the file back every 16 MiB while the download goes
//! on, so the final `fsync` has little left to do. The file is locked
//! (`File::try_lock`, advisory) while it is written.
//!
//! # What is checked before it gets the final name
//!
//! - **The length**: the body must be exactly as long as the server announced
//!   (`Content-Length`, `Content-Range`) and as the caller expected
//!   ([`DownloadOptions::expected_size`], the render status's size). A body
//!   that grows past either is stopped at once; a shorter one is resumed (see
//!   below) or refused. An empty body is refused.
//! - **That it is not an error page**: a body whose `Content-Type` is JSON,
//!   HTML, XML or plain text, or whose first bytes look like one (`{"`,
//!   `<!DOCTYPE`, `<html`, `<?xml`), is not a video, whatever its status. A
//!   JSON body comes back as [`DownloadOutcome::Refused`] with its status,
//!   headers and first 64 KiB, so the core reads the API error in it as it
//!   does for an error status. An HTML, XML or text page is an `Other` error
//!   quoting its first words (control characters removed, anything that
//!   looks like a token masked).
//! - **An error status** (anything but 2xx) is [`DownloadOutcome::Refused`]
//!   with the whole answer (at most [`Limits::max_refused_body`] bytes);
//!   nothing is written under the target name.
//!
//! # Putting it in place
//!
//! The file is synced before the rename and its folder after it. Without
//! `overwrite`, the rename is an atomic "create only if absent": a file that
//! appeared during the download is kept and the call fails with `Exists`.
//! With `overwrite`, only a regular file is ever replaced — a folder, link,
//! FIFO, device or socket at the target is a `Local` error before anything is
//! fetched — and only the very file (device, inode and change time) that
//! was there when the call started, unchanged: if another one replaced it meanwhile (or one appeared
//! where there was none), the call fails with `Exists` rather than replace
//! another process's fresh file. A link at the target is never followed.
//!
//! # Resuming, within bounds
//!
//! Resuming happens *within* one call: after a broken connection or a
//! stalled body (or a connection that broke before the answer's head: the
//! request is simply sent again) the fetcher is asked for the rest
//! ([`Resume`]: `Range: bytes=N-`, and `If-Range` with the first answer's
//! strong `ETag` or `Last-Modified`), and the bytes are appended only when
//! the answer is `206` with a `Content-Range` that starts at `N` and agrees
//! on the total. Any other success answer (a server that ignores `Range`, or
//! a file that changed) restarts from zero, at most once per call. The call
//! gives up — saying how many attempts and bytes it spent — after
//! [`Limits::resume_attempts`] further requests, when a server that ignored
//! `Range` breaks again, or when finishing would take more than twice the
//! file's size plus 1 MiB received in all.
//!
//! # Size and room
//!
//! A size announced (`Content-Length`, a `Content-Range` total) or expected
//! above [`MAX_SIZE`] (8 GiB; [`download_capped`] takes another cap) is
//! refused before a byte is written, and so is one the target's file system
//! has no room for ([`free_space`]; the message says how much is needed and
//! how much is free). A file whose size nobody said (no `Content-Length`,
//! no `Content-Range` total, no expected size) is bounded all the same: past
//! the cap the call fails, and the cap counts as the size in the bytes
//! budget.
//!
//! # Deadlines
//!
//! Every wait for an answer's head or for data is bounded by
//! [`Limits::read_timeout`], and the whole call, every attempt included, by
//! [`Limits::overall`].
//!
//! # After a failure
//!
//! When a call fails, is refused or is dropped, its temporary file is
//! removed. It is never kept for a later call to resume: across calls
//! nothing proves that the bytes belong to the same content (render outputs
//! are fetched from short-lived URLs, and a later download to the same name
//! may be another render). A process that is killed cannot remove its file;
//! the next download to the same target removes such leftovers once they
//! are a day old and nobody holds their lock.
//!
//! # Errors
//!
//! Every error is a [`TransportError`] built by [`Fetch::error`], so a
//! transport can put its request's label in front and mask its secrets.
//! Kinds: `Local` (the disk, the target), `Exists` (the target is taken),
//! `Timeout`, `Interrupted` (gave up resuming), `Other` (not a video, a
//! wrong length), or whatever the fetcher returned.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, ProgressFn, StreamResponse, Transport, TransportError,
    TransportErrorKind,
};
use nemo_core::wire::{Header, HeaderValue, Request};

mod inspect;
mod job;
mod leftovers;
mod target;
mod writer;

/// A boxed, sendable future: what [`Fetch::fetch`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure inside the crate, before the fetcher words it.
type Fail = (TransportErrorKind, String);

/// Where to ask for the rest of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The first byte wanted (the bytes already on disk).
    pub offset: u64,
    /// The first answer's strong `ETag` or its `Last-Modified`, for
    /// `If-Range`, when it had one.
    pub validator: Option<String>,
}

impl Resume {
    /// The `Range` header's value: `bytes=N-`.
    pub fn range(&self) -> String {
        format!("bytes={}-", self.offset)
    }

    /// The headers to add to the request: `range`, and `if-range` when
    /// there is a validator.
    pub fn headers(&self) -> Vec<Header> {
        let mut headers = vec![Header {
            name: "range",
            value: HeaderValue::Plain(self.range()),
        }];
        if let Some(validator) = &self.validator {
            headers.push(Header {
                name: "if-range",
                value: HeaderValue::Plain(validator.clone()),
            });
        }
        headers
    }
}

/// Where the bytes of a download come from: one request per call of
/// [`fetch`](Fetch::fetch), its answer as a stream.
///
/// An implementation sends the download's request once per call (adding
/// `Range`/`If-Range` from the [`Resume`] when there is one) and returns
/// the answer's head and body as they arrive. It need not bound its waits:
/// [`download`] does ([`Limits`]). A body that breaks returns an error chunk
/// (best of kind `Interrupted`); a request that fails before the head
/// returns the error (`Interrupted` is tried again, within the limits).
pub trait Fetch: Send + Sync {
    /// Sends the request (for the rest of the file, with `resume`) and
    /// returns the answer.
    fn fetch(
        &mut self,
        resume: Option<Resume>,
    ) -> BoxFuture<'_, Result<StreamResponse, TransportError>>;

    /// Words an error of the download (by default: as is). A transport
    /// puts its request's label in front and masks its secrets here.
    fn error(&self, kind: TransportErrorKind, what: String) -> TransportError {
        TransportError::new(kind, what)
    }

    /// What the request is, for log lines.
    fn label(&self) -> &str {
        "download"
    }
}

/// The bounds of one download call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest wait for an answer's head or for the next chunk of a
    /// body. A body that stalls this long is asked for again (resumed).
    /// Default 60 s.
    pub read_timeout: Duration,
    /// The longest the whole call may take, every attempt included.
    /// Default 2 h.
    pub overall: Duration,
    /// How many further requests one call makes after the connection broke.
    /// Whatever this says, a call restarts from zero at most once (a server
    /// that ignores `Range`) and never receives more than twice the file's
    /// size plus 1 MiB in all. Default 3.
    pub resume_attempts: u32,
    /// The longest error answer (a non-2xx status) that is read and handed
    /// back as [`DownloadOutcome::Refused`]; a longer one is an error.
    /// Default 16 MiB.
    pub max_refused_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(60),
            overall: Duration::from_secs(2 * 60 * 60),
            resume_attempts: 3,
            max_refused_body: 16 * 1024 * 1024,
        }
    }
}

/// The most a download may be: 8 GiB, far above any render. A size
/// announced by the server (`Content-Length`, a `Content-Range` total) or
/// expected by the caller ([`DownloadOptions::expected_size`]) above it is
/// refused before a byte is written; a body whose size nobody said fails
/// once it passes it. Either way nothing is placed.
pub const MAX_SIZE: u64 = 8 << 30;

/// Bytes an unprivileged process may still write in the file system that
/// holds `path` (`statvfs`: available blocks × fragment size). `None` where
/// the platform or the file system does not tell.
pub fn free_space(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(path)
            .ok()
            .and_then(|s| space_from_statvfs(s.f_bavail, s.f_frsize, s.f_bsize, s.f_blocks))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Free bytes from `statvfs` fields: available blocks × fragment size (the
/// block size when no fragment size is given). `None` when the file system
/// reports no blocks or no block size at all, as a FUSE file system that
/// does not implement `statfs` does (libfuse answers zeros): unknown, not
/// full.
#[cfg_attr(not(unix), allow(dead_code))]
fn space_from_statvfs(bavail: u64, frsize: u64, bsize: u64, blocks: u64) -> Option<u64> {
    let unit = if frsize > 0 { frsize } else { bsize };
    (unit > 0 && blocks > 0).then(|| bavail.saturating_mul(unit))
}

/// Downloads to `dest` what `fetch` answers: into a temporary file of the
/// call's own beside it, resumed within `limits`, checked, synced and
/// renamed into place (see the crate docs for every guarantee).
///
/// `Ok(Refused)` when the answer was an error (a non-2xx status, or a JSON
/// body): nothing was written under `dest`.
pub async fn download<F: Fetch + ?Sized>(
    fetch: &mut F,
    dest: &Path,
    options: DownloadOptions,
    limits: Limits,
    progress: Option<ProgressFn<'_>>,
) -> Result<DownloadOutcome, TransportError> {
    job::run(fetch, dest, options, limits, MAX_SIZE, progress).await
}

/// [`download`] with another cap than [`MAX_SIZE`] (`max_size`
/// bytes: for a size announced or expected, refused above it; for a file
/// whose size nobody said, the bytes received in all, resumed attempts
/// included, stay within twice that plus 1 MiB).
pub async fn download_capped<F: Fetch + ?Sized>(
    fetch: &mut F,
    dest: &Path,
    options: DownloadOptions,
    limits: Limits,
    max_size: u64,
    progress: Option<ProgressFn<'_>>,
) -> Result<DownloadOutcome, TransportError> {
    job::run(fetch, dest, options, limits, max_size, progress).await
}

/// A [`Fetch`] over any [`Transport`]: each attempt is the request sent
/// with [`Transport::open_stream`], resumed attempts with `Range` and
/// `If-Range` added to a copy of it.
pub struct StreamFetch<'a, T: ?Sized> {
    transport: &'a T,
    request: &'a Request,
}

impl<'a, T: Transport + ?Sized> StreamFetch<'a, T> {
    /// Fetches `request` through `transport`.
    pub fn new(transport: &'a T, request: &'a Request) -> Self {
        Self { transport, request }
    }
}

impl<T: ?Sized> std::fmt::Debug for StreamFetch<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamFetch")
            .field("endpoint", &self.request.endpoint)
            .finish_non_exhaustive()
    }
}

impl<T: Transport + ?Sized> Fetch for StreamFetch<'_, T> {
    fn fetch(
        &mut self,
        resume: Option<Resume>,
    ) -> BoxFuture<'_, Result<StreamResponse, TransportError>> {
        Box::pin(async move {
            match resume {
                None => self.transport.open_stream(self.request).await,
                Some(resume) => {
                    let mut request = self.request.clone();
                    request.headers.retain(|h| {
                        !h.name.eq_ignore_ascii_case("range")
                            && !h.name.eq_ignore_ascii_case("if-range")
                    });
                    request.headers.extend(resume.headers());
                    self.transport.open_stream(&request).await
                }
            }
        })
    }
}

/// Downloads `request`'s answer to `dest` through `transport`'s
/// [`open_stream`](Transport::open_stream), with the default [`Limits`]:
/// the whole of [`Transport::download`] for a transport that can only hand
/// over bytes.
pub async fn download_via_stream<T: Transport + ?Sized>(
    transport: &T,
    request: &Request,
    dest: &Path,
    options: DownloadOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<DownloadOutcome, TransportError> {
    let mut fetch = StreamFetch::new(transport, request);
    download(&mut fetch, dest, options, Limits::default(), progress).await
}

/// A size in a message: `12.3 GB` (decimal units, as the CLI shows sizes).
pub(crate) use nemo_core::units::human_bytes;

#[cfg(test)]
mod tests {
    use super::space_from_statvfs;

    #[test]
    fn a_file_system_that_reports_zeros_has_unknown_free_space() {
        // libfuse answers statfs with zeros when the file system does not
        // implement it: not "0 B free".
        assert_eq!(space_from_statvfs(0, 0, 0, 0), None);
        assert_eq!(space_from_statvfs(0, 4096, 4096, 0), None);
        assert_eq!(space_from_statvfs(10, 0, 0, 100), None);
        // A real answer, full or not.
        assert_eq!(space_from_statvfs(10, 4096, 4096, 100), Some(40960));
        assert_eq!(space_from_statvfs(0, 4096, 4096, 100), Some(0));
        // No fragment size: the block size is the unit.
        assert_eq!(space_from_statvfs(10, 0, 512, 100), Some(5120));
    }
}
