//! The temporary file, written on threads of its own.

use std::io::{self, Seek, Write};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use nemo_core::transport::TransportErrorKind;
use tempfile::NamedTempFile;
use tokio::sync::{mpsc, oneshot};

use crate::target::Target;
use crate::Fail;

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
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Op>>,
    done: Option<oneshot::Receiver<(NamedTempFile, io::Result<()>)>>,
    buffer: BytesMut,
}

impl Writer {
    /// Creates the temporary file beside the target and starts its thread.
    pub(crate) async fn create(target: &Target) -> Result<(Self, PathBuf), Fail> {
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
            let temp = builder.tempfile_in(&dir)?;
            // Held while the file is written, released by the system if the
            // process dies: how a later call tells a leftover from a live
            // download (see `leftovers`). Best effort: not every file
            // system has locks.
            let _ = temp.as_file().try_lock();
            Ok::<_, io::Error>(temp)
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        let temp = created.map_err(|e| {
            (
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
                (
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
    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
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
    pub(crate) async fn restart(&mut self) -> io::Result<()> {
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
    pub(crate) async fn discard(mut self) {
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
    pub(crate) async fn finish(&mut self) -> io::Result<NamedTempFile> {
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
