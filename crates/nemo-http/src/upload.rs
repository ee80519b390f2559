//! Multipart uploads streamed from disk.
//!
//! Every file is checked before any byte goes out (exists, readable, a
//! regular file, a supported format, at most 500 MB), then each becomes one
//! `files` part whose body is read from the open file 64 KiB at a time as
//! the connection takes it. Nothing is read whole: memory stays flat however
//! large the file is.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures_util::Stream;
use nemo_core::api::{content_type_for, ACCEPTED_FORMATS, MAX_UPLOAD_BYTES};
use nemo_core::transport::{TransportError, TransportErrorKind};
use nemo_core::wire::FilePart;
use reqwest::multipart::{Form, Part};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, Take};
use tokio::sync::watch;
use tokio_util::io::ReaderStream;

use crate::error::Context;

/// Bytes read from disk per step: large enough that a 500 MB upload takes
/// few trips through the blocking pool, small enough to keep memory flat.
const CHUNK: usize = 256 * 1024;

/// A multipart body ready to send, with the means to watch it go out.
pub(crate) struct Upload {
    /// The form, one `files` part per file.
    pub(crate) form: Form,
    /// All files' bytes together.
    pub(crate) total: u64,
    /// Bytes read from disk so far (they have been handed to the connection).
    pub(crate) sent: watch::Receiver<u64>,
    /// A local read failure, if one stopped the body.
    pub(crate) failure: Arc<Mutex<Option<TransportError>>>,
}

/// A file that passed the local checks.
struct Checked {
    file: File,
    len: u64,
    filename: String,
    content_type: String,
}

/// Checks every file, then builds the form. Nothing is sent here.
pub(crate) async fn prepare(parts: &[FilePart], ctx: &Context) -> Result<Upload, TransportError> {
    if parts.is_empty() {
        return Err(ctx.error(TransportErrorKind::Local, "no files to upload"));
    }
    let mut checked = Vec::with_capacity(parts.len());
    for part in parts {
        checked.push(check(part, ctx).await?);
    }
    let total = checked.iter().map(|c| c.len).sum();
    let (tx, rx) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let counter = Arc::new(AtomicU64::new(0));
    let failure = Arc::new(Mutex::new(None));
    let mut form = Form::new();
    for c in checked {
        let body = FileBody {
            reader: ReaderStream::with_capacity(c.file.take(c.len), CHUNK),
            remaining: c.len,
            filename: c.filename.clone(),
            counter: counter.clone(),
            sent: tx.clone(),
            failure: failure.clone(),
            ctx: ctx.clone(),
            done: false,
        };
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(body), c.len)
            .file_name(c.filename.clone())
            .mime_str(&c.content_type)
            .map_err(|_| {
                ctx.error(
                    TransportErrorKind::Local,
                    format!("{}: invalid content type `{}`", c.filename, c.content_type),
                )
            })?;
        form = form.part("files", part);
    }
    Ok(Upload {
        form,
        total,
        sent: rx,
        failure,
    })
}

/// The local checks for one file, in the order a person would want them
/// reported: missing, not a file, wrong format, too large, unreadable.
async fn check(part: &FilePart, ctx: &Context) -> Result<Checked, TransportError> {
    let local = |what: String| ctx.error(TransportErrorKind::Local, what);
    let shown = part.path.display();
    let filename = part_filename(part);
    let meta = match tokio::fs::metadata(&part.path).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(local(format!("{shown}: no such file")));
        }
        Err(e) => return Err(local(format!("{shown}: cannot read: {e}"))),
    };
    if !meta.is_file() {
        return Err(local(format!("{shown}: not a regular file")));
    }
    let Some(default_type) = content_type_for(&filename) else {
        let ext = filename
            .rsplit_once('.')
            .map(|(_, e)| format!("`.{e}`"))
            .unwrap_or_else(|| "without an extension".to_owned());
        return Err(local(format!(
            "{filename}: unsupported file type ({ext}); accepted formats: {ACCEPTED_FORMATS}"
        )));
    };
    let len = meta.len();
    if len > MAX_UPLOAD_BYTES {
        return Err(local(format!(
            "{filename}: file too large ({}); the limit is {} — compress it or trim it and try again",
            megabytes(len),
            megabytes(MAX_UPLOAD_BYTES)
        )));
    }
    let file = File::open(&part.path)
        .await
        .map_err(|e| local(format!("{shown}: cannot read: {e}")))?;
    let content_type = if part.content_type.trim().is_empty() {
        default_type.to_owned()
    } else {
        part.content_type.clone()
    };
    Ok(Checked {
        file,
        len,
        filename,
        content_type,
    })
}

/// The part's file name: the request's, else the path's last component;
/// control characters and quotes replaced so the part header stays valid.
fn part_filename(part: &FilePart) -> String {
    let name = if part.filename.trim().is_empty() {
        Path::new(&part.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        part.filename.clone()
    };
    name.chars()
        .map(|c| if c.is_control() || c == '"' { '_' } else { c })
        .collect()
}

fn megabytes(bytes: u64) -> String {
    // Decimal, as every size nemo shows (and the limit itself).
    const MB: u64 = 1_000_000;
    if bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    }
}

/// One file's bytes, as the connection asks for them.
struct FileBody {
    reader: ReaderStream<Take<File>>,
    remaining: u64,
    filename: String,
    counter: Arc<AtomicU64>,
    sent: Arc<watch::Sender<u64>>,
    failure: Arc<Mutex<Option<TransportError>>>,
    ctx: Context,
    done: bool,
}

impl FileBody {
    fn fail(&mut self, what: String) -> Poll<Option<io::Result<Bytes>>> {
        self.done = true;
        let err = self.ctx.error(TransportErrorKind::Local, &what);
        if let Ok(mut slot) = self.failure.lock() {
            slot.get_or_insert(err);
        }
        Poll::Ready(Some(Err(io::Error::other(what))))
    }
}

impl Stream for FileBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.reader).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                self.remaining = self.remaining.saturating_sub(n);
                let done = self.counter.fetch_add(n, Ordering::Relaxed) + n;
                self.sent.send_replace(done);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let what = format!("{}: read failed: {e}", self.filename);
                self.fail(what)
            }
            Poll::Ready(None) if self.remaining > 0 => {
                let what = format!(
                    "{}: the file got shorter while it was being sent",
                    self.filename
                );
                self.fail(what)
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
}
