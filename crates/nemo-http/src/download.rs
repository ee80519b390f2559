//! Downloads: streamed to a temporary file of the call's own beside the
//! target, resumed after a broken connection, checked, synced, then moved
//! into place.
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
//! on, so the final `fsync` has little left to do.
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
//!
//! # Putting it in place
//!
//! The file is synced before the rename and its folder after it. Without
//! `overwrite`, the rename is an atomic "create only if absent": a file that
//! appeared during the download is kept and the call fails with `Exists`.
//! With `overwrite`, only a regular file is ever replaced — a folder, link,
//! FIFO, device or socket at the target is a `Local` error before anything is
//! sent — and only the very file (device and inode) that was there when the
//! call started: if another one replaced it meanwhile (or one appeared where
//! there was none), the call fails with `Exists` rather than replace another
//! process's fresh file.
//!
//! # Resuming, within bounds
//!
//! Resuming happens *within* one call: after a broken connection or a
//! stalled body (or a connection that broke before the answer's head: the
//! request is simply sent again) the transport asks for the rest with
//! `Range: bytes=N-` (and `If-Range` with the first answer's `ETag` or
//! `Last-Modified`), and appends only when the server answers `206` with a
//! `Content-Range` that starts at `N` and agrees on the total. Any other
//! success answer (a server that ignores `Range`, or a file that changed)
//! restarts from zero, at most once per call. The call gives up — saying how
//! many attempts and bytes it spent — after `download_resume_attempts`
//! further requests, when a server that ignored `Range` breaks again, or
//! when finishing would take more than twice the file's size plus 1 MiB
//! received in all.
//!
//! # Deadlines
//!
//! Every wait for data is bounded by `read_timeout`, and the whole call,
//! every attempt included, by `download_timeout`.
//!
//! # After a failure
//!
//! When a call fails, is refused or is dropped, its temporary file is
//! removed. It is never kept for a later call to resume: across calls
//! nothing proves that the bytes belong to the same content (render outputs
//! are fetched from short-lived URLs, and a later download to the same name
//! may be another render). A leftover of a crashed process keeps its random
//! name; no later call opens it.

use std::ffi::OsStr;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use nemo_core::transport::{
    DownloadOptions, DownloadOutcome, Progress, ProgressFn, TransportError, TransportErrorKind,
};
use nemo_core::wire::{Request, Response};
use reqwest::header::{IF_RANGE, RANGE};
use tempfile::NamedTempFile;
use tokio::sync::{mpsc, oneshot};

use crate::error::Context;
use crate::http::{head, next_chunk, seconds, Deadline, HttpTransport};

/// Bytes gathered before each write to disk. Measured on 500 MiB over
/// loopback: 256 KiB writes beat 1 MiB and 2 MiB ones (the bytes are still
/// in the CPU's cache when the kernel copies them), and are few enough.
const WRITE_BUFFER: usize = 256 * 1024;

/// Full buffers waiting for the disk: bounds memory (this many chunks of
/// `WRITE_BUFFER` or one body chunk, plus the one being filled) while
/// letting the network run ahead of a slow disk for a moment.
const WRITE_QUEUE: usize = 8;

/// Bytes written between two write-backs during the download (see
/// [`Syncer`]): with them, the final `fsync` of a 500 MiB file waits for
/// the last few MiB instead of all of it.
const SYNC_EVERY: usize = 16 * 1024 * 1024;

/// How many first bytes of a body are looked at to tell an error page.
const SNIFF: usize = 64;

/// How much of a JSON body is handed back to the core.
const JSON_KEPT: usize = 64 * 1024;

/// How much of an HTML, XML or text page is read to quote it.
const PAGE_KEPT: usize = 4 * 1024;

/// How long the rest of an error page is waited for.
const PAGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Fresh starts (from byte zero) one call may make after the first.
const MAX_RESTARTS: u32 = 1;

/// What one call may receive in all, beyond twice the file's size.
const SLACK: u64 = 1024 * 1024;

/// Runs one download call. See the module docs.
pub(crate) async fn run(
    transport: &HttpTransport,
    request: &Request,
    dest: &Path,
    options: DownloadOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<DownloadOutcome, TransportError> {
    let deadline = Deadline::after(transport.config().download_timeout);
    // Built once up front for its context; nothing is sent yet.
    let ctx = transport.prepare(request).await?.ctx;
    let target = Target::check(dest, options, &ctx).await?;
    let (writer, temp_path) = Writer::create(&target, &ctx).await?;
    let mut job = Job {
        transport,
        request,
        ctx: &ctx,
        target,
        temp_path,
        options,
        progress,
        deadline,
        writer: Some(writer),
        started: false,
        written: 0,
        total: None,
        validator: None,
        attempts: 0,
        restarts: 0,
        received: 0,
        ignores_range: false,
    };
    let result = job.run().await;
    // Failed or refused: the temporary file is removed before the call
    // returns. (A call that is dropped instead leaves that to the writer's
    // thread, moments later.)
    if let Some(writer) = job.writer.take() {
        writer.discard().await;
    }
    result
}

/// The download's target, as found before anything is sent.
#[derive(Debug, Clone)]
struct Target {
    dest: PathBuf,
    dir: PathBuf,
    /// The regular file that `overwrite` may replace, when there was one.
    replaces: Option<Identity>,
    overwrite: bool,
}

/// Which file a path named: device and inode (elsewhere: length and
/// modification time, the best there is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity(u64, u64);

impl Identity {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(meta.dev(), meta.ino())
    }

    #[cfg(not(unix))]
    fn of(meta: &std::fs::Metadata) -> Self {
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        Self(meta.len(), modified)
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
    async fn check(
        dest: &Path,
        options: DownloadOptions,
        ctx: &Context,
    ) -> Result<Self, TransportError> {
        let local = |what: String| ctx.error(TransportErrorKind::Local, what);
        let shown = dest.display();
        if dest.file_name().is_none() {
            return Err(local(format!("{shown}: not a file path")));
        }
        let replaces = match tokio::fs::symlink_metadata(dest).await {
            Ok(meta) if meta.is_dir() => return Err(local(format!("{shown} is a directory"))),
            Ok(_) if !options.overwrite => {
                return Err(ctx.error(
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
    fn temp_prefix(&self) -> String {
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
    fn place(&self, temp: NamedTempFile, ctx: &Context) -> Result<(), TransportError> {
        let shown = self.dest.display();
        let moved = |e: io::Error| {
            ctx.error(
                TransportErrorKind::Local,
                format!("cannot move the download to {shown}: {e}"),
            )
        };
        let taken = |what: &str| {
            ctx.error(
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

/// What the disk thread is asked to do.
enum Op {
    Write(Bytes),
    /// Empty the file: the download starts again from zero.
    Restart,
}

/// The temporary file, written on a thread of its own.
///
/// Dropping the writer (a failed, refused or cancelled call) closes the
/// queue; the thread then drops the file, which removes it.
struct Writer {
    queue: Option<mpsc::Sender<Op>>,
    done: Option<oneshot::Receiver<(NamedTempFile, io::Result<()>)>>,
    buffer: BytesMut,
}

impl Writer {
    /// Creates the temporary file beside the target and starts its thread.
    async fn create(target: &Target, ctx: &Context) -> Result<(Self, PathBuf), TransportError> {
        let dir = target.dir.clone();
        let prefix = target.temp_prefix();
        let created = tokio::task::spawn_blocking(move || {
            let mut builder = tempfile::Builder::new();
            builder.prefix(&prefix).suffix(".part");
            // The usual mode of a new file (`0666` less the umask), not
            // tempfile's private `0600`: this becomes the user's video.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                builder.permissions(std::fs::Permissions::from_mode(0o666));
            }
            builder.tempfile_in(&dir)
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        let temp = created.map_err(|e| {
            ctx.error(
                TransportErrorKind::Local,
                format!(
                    "cannot create a temporary file in {}: {e}",
                    target.dir.display()
                ),
            )
        })?;
        let path = temp.path().to_path_buf();
        let (queue, mut rx) = mpsc::channel::<Op>(WRITE_QUEUE);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("nemo-download".into())
            .spawn(move || {
                let mut temp = temp;
                let syncer = Syncer::start(temp.as_file());
                let mut unsynced = 0usize;
                let mut work = || -> io::Result<()> {
                    while let Some(op) = rx.blocking_recv() {
                        match op {
                            Op::Write(bytes) => {
                                temp.write_all(&bytes)?;
                                unsynced += bytes.len();
                                if unsynced >= SYNC_EVERY {
                                    unsynced = 0;
                                    if let Some(syncer) = &syncer {
                                        syncer.nudge();
                                    }
                                }
                            }
                            Op::Restart => {
                                temp.as_file().set_len(0)?;
                                temp.as_file_mut().rewind()?;
                            }
                        }
                    }
                    Ok(())
                };
                let mut result = work();
                drop(rx);
                if let Some(syncer) = syncer {
                    let synced = syncer.stop();
                    result = result.and(synced);
                }
                // If nobody waits any more, the file is dropped (removed) here.
                let _ = done_tx.send((temp, result));
            })
            .map_err(|e| {
                ctx.error(
                    TransportErrorKind::Local,
                    format!("cannot start the disk writer: {e}"),
                )
            })?;
        Ok((
            Self {
                queue: Some(queue),
                done: Some(done),
                buffer: BytesMut::new(),
            },
            path,
        ))
    }

    /// Appends a chunk (buffered; written in large pieces).
    async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.buffer.len() + chunk.len() > WRITE_BUFFER {
            self.flush().await?;
        }
        if chunk.len() >= WRITE_BUFFER {
            return self.send(Op::Write(chunk)).await;
        }
        if self.buffer.capacity() == 0 {
            self.buffer = BytesMut::with_capacity(WRITE_BUFFER);
        }
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    /// Hands the buffered bytes to the disk thread.
    async fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.buffer).freeze();
        self.send(Op::Write(full)).await
    }

    /// Empties the file.
    async fn restart(&mut self) -> io::Result<()> {
        self.buffer.clear();
        self.send(Op::Restart).await
    }

    async fn send(&mut self, op: Op) -> io::Result<()> {
        let Some(queue) = &self.queue else {
            return Err(io::Error::other("the disk writer stopped"));
        };
        if queue.send(op).await.is_ok() {
            return Ok(());
        }
        // The thread stopped on an error: that error is the one to report.
        self.finish().await.map(drop)
    }

    /// Stops the disk thread and removes the file.
    async fn discard(mut self) {
        self.queue = None;
        if let Some(done) = self.done.take() {
            if let Ok((temp, _)) = done.await {
                if let Err(e) = temp.close() {
                    tracing::warn!("could not remove the temporary file: {e}");
                }
            }
        }
    }

    /// Writes what is buffered, waits for the disk thread and returns the
    /// file (not yet synced).
    async fn finish(&mut self) -> io::Result<NamedTempFile> {
        let stopped = || io::Error::other("the disk writer stopped");
        if !self.buffer.is_empty() && self.queue.is_some() {
            let full = std::mem::take(&mut self.buffer).freeze();
            if let Some(queue) = &self.queue {
                // A failed send means the thread stopped: its result says why.
                let _ = queue.send(Op::Write(full)).await;
            }
        }
        self.queue = None;
        let done = self.done.take().ok_or_else(stopped)?;
        let (temp, result) = done.await.map_err(|_| stopped())?;
        result?;
        Ok(temp)
    }
}

/// Starts writing the file back to disk while the download goes on, so
/// that the final `fsync` has little left to do: a thread of its own calls
/// `fdatasync` whenever the writer nudges it (every `SYNC_EVERY` bytes),
/// never holding the writer up.
struct Syncer {
    nudge: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<io::Result<()>>,
}

impl Syncer {
    /// `None` when the file cannot be shared with a thread: then the final
    /// `fsync` does all the work.
    fn start(file: &std::fs::File) -> Option<Self> {
        let file = file.try_clone().ok()?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("nemo-download-sync".into())
            .spawn(move || {
                // The descriptor is shared with the writer's: an error seen
                // here is not reported again to the final `fsync`, so it is
                // kept and returned.
                while nudged.recv().is_ok() {
                    file.sync_data()?;
                }
                Ok(())
            })
            .ok()?;
        Some(Self { nudge, thread })
    }

    /// Asks for a write-back, unless one is already waiting.
    fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }

    /// Waits for the thread; the first error it met, if any.
    fn stop(self) -> io::Result<()> {
        drop(self.nudge);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the sync thread stopped")))
    }
}

struct Job<'a> {
    transport: &'a HttpTransport,
    request: &'a Request,
    ctx: &'a Context,
    target: Target,
    temp_path: PathBuf,
    options: DownloadOptions,
    progress: Option<ProgressFn<'a>>,
    deadline: Deadline,
    writer: Option<Writer>,
    /// A body has started to flow at least once.
    started: bool,
    /// Bytes of the file so far.
    written: u64,
    /// The whole file's length, when the server said.
    total: Option<u64>,
    /// `ETag` (strong) or `Last-Modified` of the first answer, for `If-Range`.
    validator: Option<String>,
    /// Requests sent.
    attempts: u32,
    /// Fresh starts after the first.
    restarts: u32,
    /// Body bytes received over all attempts.
    received: u64,
    /// The server answered a range request with something else.
    ignores_range: bool,
}

/// How one attempt ended, when the call goes on.
enum Leg {
    /// The body ended and the file is complete.
    Done,
    /// The server refused: its answer, for the core.
    Refused(Response),
    /// The connection broke (or stalled) part-way; worth asking for the rest.
    Broken(TransportError),
}

/// What a body that is not a video is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotVideo {
    Json,
    Html,
    Xml,
    Text,
}

impl Job<'_> {
    async fn run(&mut self) -> Result<DownloadOutcome, TransportError> {
        loop {
            let err = match self.leg().await {
                Ok(Leg::Done) => break,
                Ok(Leg::Refused(response)) => return Ok(DownloadOutcome::Refused(response)),
                Ok(Leg::Broken(err)) => err,
                Err(err) => return Err(self.out_of_time().unwrap_or(err)),
            };
            if let Some(late) = self.out_of_time() {
                return Err(late);
            }
            if let Some(reason) = self.cannot_resume() {
                return Err(TransportError::new(
                    err.kind,
                    format!("{}; {}", err.message, self.gave_up(&reason)),
                ));
            }
            tracing::debug!(
                request = self.ctx.label(),
                at = self.written,
                attempt = self.attempts + 1,
                "download interrupted; resuming: {}",
                err.message
            );
        }
        self.finish().await
    }

    /// The error for a call past its deadline, if it is.
    fn out_of_time(&self) -> Option<TransportError> {
        self.deadline.passed().then(|| {
            self.ctx.error(
                TransportErrorKind::Timeout,
                format!(
                    "the download did not finish within {}: {}",
                    seconds(self.deadline.elapsed()),
                    self.spent()
                ),
            )
        })
    }

    /// Why another attempt is not made, if it is not.
    fn cannot_resume(&self) -> Option<String> {
        let config = self.transport.config();
        if self.attempts > config.download_resume_attempts {
            return Some("the connection kept breaking".into());
        }
        if self.ignores_range {
            return Some("the server ignores range requests, so the download cannot resume".into());
        }
        if let Some(size) = self.size() {
            let budget = size.saturating_mul(2).saturating_add(SLACK);
            let needed = size.saturating_sub(self.written);
            if self.received.saturating_add(needed) > budget {
                return Some(format!(
                    "finishing would take more than {budget} bytes in all"
                ));
            }
        }
        None
    }

    /// "gave up after …", with what was spent.
    fn gave_up(&self, reason: &str) -> String {
        format!("gave up after {}: {reason}", self.spent())
    }

    /// Attempts and bytes so far, in words.
    fn spent(&self) -> String {
        let attempts = match self.attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        let of = match self.size() {
            Some(size) => format!(" for a file of {size} bytes"),
            None => String::new(),
        };
        let restarts = match self.restarts {
            0 => String::new(),
            n => format!(", {n} restarted from zero"),
        };
        format!("{attempts}{restarts}, {} bytes received{of}", self.received)
    }

    /// The file's size, as the server or the caller said.
    fn size(&self) -> Option<u64> {
        self.total.or(self.options.expected_size)
    }

    /// Worth another attempt: a connection that broke after the request went
    /// out (even before the answer's head: a GET of a file is safe to
    /// repeat), or any transient failure once a body was flowing. A first
    /// request that cannot connect or gets no answer in time is the caller's
    /// to retry, under the core's policy.
    fn may_resume(&self, err: &TransportError) -> bool {
        err.kind == TransportErrorKind::Interrupted || (err.kind.is_transient() && self.started)
    }

    /// One request and its body.
    async fn leg(&mut self) -> Result<Leg, TransportError> {
        let config = self.transport.config();
        let mut prepared = self.transport.prepare(self.request).await?;
        let resuming = self.written > 0;
        if resuming {
            prepared.builder = prepared
                .builder
                .header(RANGE, format!("bytes={}-", self.written));
            if let Some(validator) = &self.validator {
                prepared.builder = prepared.builder.header(IF_RANGE, validator.as_str());
            }
        }
        self.attempts += 1;
        let response = match self
            .transport
            .execute(prepared, config.read_timeout, self.deadline, None)
            .await
        {
            Ok((response, _)) => response,
            Err(err) if self.may_resume(&err) && !self.deadline.passed() => {
                return Ok(Leg::Broken(err))
            }
            Err(err) => return Err(err),
        };
        let (status, headers) = head(&response);
        if !(200..300).contains(&status) {
            let body = self
                .transport
                .read_body(response, self.ctx, config.max_response_bytes, self.deadline)
                .await?;
            return Ok(Leg::Refused(Response {
                status,
                headers,
                body,
            }));
        }
        let header = |name: &str| nemo_core::wire::find_header(&headers, name);
        let range = header("content-range").and_then(parse_content_range);
        let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let declared = header("content-type").and_then(declared_kind);
        let append = resuming
            && status == 206
            && range.is_some_and(|r| {
                r.start == self.written
                    && (r.total.is_none() || self.total.is_none() || r.total == self.total)
            });
        let mut mismatch = None;
        if append {
            self.total = self.total.or(range.and_then(|r| r.total));
        } else {
            // A fresh start: the first request, or a server that answered a
            // range request with the whole file (or another file).
            let total = match (status, range) {
                (206, Some(r)) if r.start != 0 => {
                    return Err(self.ctx.error(
                        TransportErrorKind::Other,
                        format!(
                            "the server sent a part starting at byte {} of a whole file",
                            r.start
                        ),
                    ))
                }
                (206, Some(r)) => r.total,
                _ => length,
            };
            // Reported after a look at the body: an error page is worth
            // more than its length.
            if let (Some(total), Some(expected)) = (total, self.options.expected_size) {
                if total != expected {
                    mismatch = Some(self.ctx.error(
                        TransportErrorKind::Other,
                        format!(
                            "the server announced {total} bytes, but the render status said \
                             {expected}; not saved"
                        ),
                    ));
                }
            }
            if resuming {
                // What arrived so far is thrown away.
                self.ignores_range = true;
                if self.restarts >= MAX_RESTARTS {
                    return Err(self.ctx.error(
                        TransportErrorKind::Interrupted,
                        format!(
                            "the server answered {status} to a range request again; {}",
                            self.gave_up("the download cannot resume")
                        ),
                    ));
                }
                self.restarts += 1;
                tracing::debug!(
                    request = self.ctx.label(),
                    status,
                    "the server did not resume; restarting from zero"
                );
                self.writer()?
                    .restart()
                    .await
                    .map_err(|e| self.write_error(e))?;
            }
            self.total = total;
            self.validator = header("etag")
                .filter(|v| !v.trim_start().starts_with("W/"))
                .or_else(|| header("last-modified"))
                .map(str::to_owned);
            self.written = 0;
        }
        self.started = true;
        self.report();
        let mut chunks = response.bytes_stream();
        // The first bytes of the file tell an error page from a video; in
        // the middle of a file, only the declared type can.
        let mut first = Vec::new();
        if self.written == 0 {
            while first.len() < SNIFF {
                match self.next(&mut chunks).await? {
                    Ok(Some(chunk)) => {
                        self.received += chunk.len() as u64;
                        first.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(broken) => return Ok(Leg::Broken(broken)),
                }
            }
        }
        if let Some(kind) = declared.or_else(|| sniffed_kind(&first)) {
            return self
                .not_video(kind, status, headers, first, &mut chunks)
                .await;
        }
        if let Some(err) = mismatch {
            return Err(err);
        }
        if !first.is_empty() {
            self.accept(Bytes::from(first)).await?;
        }
        self.stream(&mut chunks).await
    }

    /// The next chunk: `Ok(Ok(None))` at the end of the body, `Ok(Err)` for
    /// a break worth resuming, `Err` when the call is over.
    async fn next<S>(
        &self,
        chunks: &mut S,
    ) -> Result<Result<Option<Bytes>, TransportError>, TransportError>
    where
        S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
    {
        let idle = self.transport.config().read_timeout;
        match next_chunk(chunks, idle, self.deadline, self.ctx).await {
            Ok(None) => Ok(Ok(None)),
            Ok(Some(Ok(chunk))) => Ok(Ok(Some(chunk))),
            Ok(Some(Err(broken))) => Ok(Err(broken)),
            // Stalled: worth asking again, unless the call is out of time.
            Err(err) if !self.deadline.passed() => Ok(Err(err)),
            Err(err) => Err(err),
        }
    }

    /// Writes the rest of the body to the temporary file as it arrives.
    async fn stream<S>(&mut self, chunks: &mut S) -> Result<Leg, TransportError>
    where
        S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
    {
        loop {
            let chunk = match self.next(chunks).await? {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    return Ok(match self.total {
                        Some(total) if self.written < total => Leg::Broken(self.ctx.error(
                            TransportErrorKind::Interrupted,
                            format!("the body ended after {} of {total} bytes", self.written),
                        )),
                        _ => Leg::Done,
                    })
                }
                Err(broken) => return Ok(Leg::Broken(broken)),
            };
            self.received += chunk.len() as u64;
            self.accept(chunk).await?;
        }
    }

    /// Appends a chunk of the file, refusing one that makes it too long.
    async fn accept(&mut self, chunk: Bytes) -> Result<(), TransportError> {
        self.written += chunk.len() as u64;
        if let Some(total) = self.total.filter(|t| self.written > *t) {
            return Err(self.ctx.error(
                TransportErrorKind::Other,
                format!("the server sent more than the {total} bytes it announced"),
            ));
        }
        if let Some(expected) = self.options.expected_size.filter(|e| self.written > *e) {
            return Err(self.ctx.error(
                TransportErrorKind::Other,
                format!(
                    "the server sent more than the render status said ({expected} bytes); not \
                     saved"
                ),
            ));
        }
        self.writer()?
            .write(chunk)
            .await
            .map_err(|e| self.write_error(e))?;
        self.report();
        Ok(())
    }

    /// A body that is not the video: a JSON answer goes back to the core as
    /// a refusal, anything else is an error quoting it.
    async fn not_video<S>(
        &mut self,
        kind: NotVideo,
        status: u16,
        headers: Vec<(String, String)>,
        mut body: Vec<u8>,
        chunks: &mut S,
    ) -> Result<Leg, TransportError>
    where
        S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
    {
        let keep = if kind == NotVideo::Json {
            JSON_KEPT
        } else {
            PAGE_KEPT
        };
        // Read on only as far as needed, and never wait long for it: what
        // arrived is enough to say what it was.
        let patience = PAGE_PATIENCE.min(self.transport.config().read_timeout);
        let _ = tokio::time::timeout(patience, async {
            while body.len() < keep {
                match self.next(chunks).await {
                    Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        })
        .await;
        body.truncate(keep);
        tracing::debug!(
            request = self.ctx.label(),
            status,
            ?kind,
            "the body is not a video"
        );
        if kind == NotVideo::Json {
            return Ok(Leg::Refused(Response {
                status,
                headers,
                body,
            }));
        }
        let what = match kind {
            NotVideo::Html => "an HTML page",
            NotVideo::Xml => "an XML document",
            _ => "text",
        };
        let words = first_words(&body, kind == NotVideo::Html);
        let quoted = if words.is_empty() {
            String::new()
        } else {
            format!(" (“{words}”)")
        };
        Err(self.ctx.error(
            TransportErrorKind::Other,
            format!("the server sent {what}{quoted} instead of the video (HTTP {status})"),
        ))
    }

    /// Checks the length, syncs and moves the complete file into place.
    async fn finish(&mut self) -> Result<DownloadOutcome, TransportError> {
        if let Some(expected) = self.options.expected_size {
            if self.written != expected {
                return Err(self.ctx.error(
                    TransportErrorKind::Other,
                    format!(
                        "the server sent {} bytes, but the render status said {expected}; not \
                         saved",
                        self.written
                    ),
                ));
            }
        }
        if self.written == 0 {
            return Err(self.ctx.error(
                TransportErrorKind::Other,
                "the server sent an empty body instead of the video",
            ));
        }
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| self.local("the temporary file is gone".into()))?;
        let temp = writer.finish().await.map_err(|e| self.write_error(e))?;
        let shown = self.temp_path.display().to_string();
        let ctx = self.ctx.clone();
        let target = self.target.clone();
        let placed = tokio::task::spawn_blocking(move || {
            temp.as_file().sync_all().map_err(|e| {
                ctx.error(
                    TransportErrorKind::Local,
                    format!("cannot sync {shown}: {e}"),
                )
            })?;
            target.place(temp, &ctx)?;
            sync_dir(&target.dir);
            Ok(())
        })
        .await
        .map_err(|e| self.local(format!("the disk writer stopped: {e}")))?;
        placed?;
        tracing::debug!(
            request = self.ctx.label(),
            bytes = self.written,
            attempts = self.attempts,
            received = self.received,
            "download complete"
        );
        Ok(DownloadOutcome::Complete {
            bytes: self.written,
        })
    }

    fn writer(&mut self) -> Result<&mut Writer, TransportError> {
        match self.writer.as_mut() {
            Some(writer) => Ok(writer),
            None => Err(self
                .ctx
                .error(TransportErrorKind::Local, "the temporary file is gone")),
        }
    }

    fn report(&self) {
        if let Some(report) = self.progress {
            report(Progress {
                done: self.written,
                total: self.size(),
            });
        }
    }

    fn write_error(&self, e: io::Error) -> TransportError {
        self.local(format!("cannot write {}: {e}", self.temp_path.display()))
    }

    fn local(&self, what: String) -> TransportError {
        self.ctx.error(TransportErrorKind::Local, what)
    }
}

/// Syncs a directory so the rename itself is durable. Best effort: not every
/// platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// What a `Content-Type` says the body is, when it says it is not a video.
fn declared_kind(value: &str) -> Option<NotVideo> {
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/json" => Some(NotVideo::Json),
        m if m.ends_with("+json") => Some(NotVideo::Json),
        "text/html" | "application/xhtml+xml" => Some(NotVideo::Html),
        "application/xml" | "text/xml" => Some(NotVideo::Xml),
        "text/plain" => Some(NotVideo::Text),
        _ => None,
    }
}

/// What the first bytes of a body look like, when they look like a page or
/// a JSON object rather than a video.
fn sniffed_kind(first: &[u8]) -> Option<NotVideo> {
    let start = first.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(first);
    let start = trim_start(start);
    if let Some(rest) = start.strip_prefix(b"{") {
        if trim_start(rest).starts_with(b"\"") {
            return Some(NotVideo::Json);
        }
        return None;
    }
    let lower: Vec<u8> = start.iter().take(16).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<!doctype") || lower.starts_with(b"<html") {
        Some(NotVideo::Html)
    } else if lower.starts_with(b"<?xml") {
        Some(NotVideo::Xml)
    } else {
        None
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

/// The first words of a page, fit for an error message: the title of an
/// HTML page (else its text), markup dropped, control characters and runs
/// of space made one space, anything that looks like a token masked, at
/// most 80 characters.
fn first_words(body: &[u8], html: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let mut source: &str = &text;
    if html {
        let lower = text.to_ascii_lowercase();
        if let Some(open) = lower.find("<title") {
            if let Some(start) = lower[open..].find('>').map(|i| open + i + 1) {
                let end = lower[start..]
                    .find("</title")
                    .map_or(text.len(), |i| start + i);
                if !text[start..end].trim().is_empty() {
                    source = &text[start..end];
                }
            }
        }
    }
    let mut plain = String::with_capacity(source.len().min(1024));
    let mut in_tag = false;
    for c in source.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_control() => plain.push(' '),
            c => plain.push(c),
        }
    }
    let words: Vec<&str> = plain
        .split_whitespace()
        .map(|w| {
            if looks_like_secret(w) {
                nemo_core::secret::MASK
            } else {
                w
            }
        })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() <= 80 {
        return joined;
    }
    let mut cut: String = joined.chars().take(79).collect();
    cut.push('…');
    cut
}

/// A word that might be a credential: an API token, a JWT, or any long
/// unbroken run of token characters.
fn looks_like_secret(word: &str) -> bool {
    let token_chars = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+/=".contains(c));
    word.contains("nmv_") || word.starts_with("eyJ") || (token_chars && word.len() >= 32)
}

/// `Content-Range: bytes <start>-<end>/<total|*>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    total: Option<u64>,
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (start <= end && total.is_none_or(|t| end < t)).then_some(ContentRange { start, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                start: 100,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                start: 0,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 5-1/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn error_pages_are_told_from_videos() {
        assert_eq!(
            declared_kind("application/json; charset=utf-8"),
            Some(NotVideo::Json)
        );
        assert_eq!(
            declared_kind("application/problem+json"),
            Some(NotVideo::Json)
        );
        assert_eq!(declared_kind("Text/HTML"), Some(NotVideo::Html));
        assert_eq!(declared_kind("text/plain"), Some(NotVideo::Text));
        assert_eq!(declared_kind("application/xml"), Some(NotVideo::Xml));
        assert_eq!(declared_kind("video/mp4"), None);
        assert_eq!(declared_kind("application/octet-stream"), None);

        assert_eq!(
            sniffed_kind(b"\n <!DOCTYPE html><html>"),
            Some(NotVideo::Html)
        );
        assert_eq!(sniffed_kind(b"<HTML><head>"), Some(NotVideo::Html));
        assert_eq!(
            sniffed_kind(b"\xEF\xBB\xBF<?xml version"),
            Some(NotVideo::Xml)
        );
        assert_eq!(sniffed_kind(b"{ \"code\": 1"), Some(NotVideo::Json));
        assert_eq!(sniffed_kind(b"\x00\x00\x00\x20ftypisom"), None);
        assert_eq!(sniffed_kind(b"\x1A\x45\xDF\xA3"), None);
        assert_eq!(sniffed_kind(b"{\x00\x01"), None);
        assert_eq!(sniffed_kind(b""), None);
    }

    #[test]
    fn first_words_are_clean_and_short() {
        let page = b"<!DOCTYPE html><html><head><title>Access\x1b[31m denied</title></head>\
                     <body><h1>403</h1></body></html>";
        assert_eq!(first_words(page, true), "Access [31m denied");
        let xml = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                    <Message>Access Denied</Message></Error>";
        assert_eq!(first_words(xml, false), "AccessDenied Access Denied");
        let leaky = b"token nmv_usr_abc and eyJhbGciOiJIUzI1NiJ9 and \
                      0123456789abcdef0123456789abcdef0123";
        assert_eq!(
            first_words(leaky, false),
            "token [redacted] and [redacted] and [redacted]"
        );
        let long = "word ".repeat(100);
        let short = first_words(long.as_bytes(), false);
        assert_eq!(short.chars().count(), 80);
        assert!(short.ends_with('…'));
    }
}
