//! The streaming recording: a HAR document written to disk entry by entry,
//! event-stream bodies chunk by chunk, into a temporary file renamed into
//! place when the recording finishes.
//!
//! The document is the one [`Har::save`](crate::Har::save) writes, with its
//! members in another order (a JSON reader does not care): `log.entries`
//! comes before `log.pages` (pages are kept in memory until the end: one per
//! user turn), and each entry is written compactly on its own line when it
//! completes.
//!
//! An event stream is spooled while it lasts — its `_events` and its text to
//! two anonymous temporary files beside the target — and copied into the
//! document when it ends, so memory holds at most one line of the stream
//! (see [`StreamRedaction`]), one event and fixed-size buffers, whatever the
//! stream's size, and streams that overlap each other or other requests are
//! written whole, one after the other.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::har::{Creator, Entry, Page, StreamEvent};
use crate::redact::{EventAssembler, Redactor, StreamRedaction};

/// The buffer of each file written.
const BUFFER: usize = 64 * 1024;

/// An event stream being recorded.
struct LiveStream {
    /// The entry so far (request, response head), not yet redacted.
    entry: Entry,
    redaction: StreamRedaction,
    assembler: EventAssembler,
    /// `{"t":…,"text":…}` objects, comma-separated.
    events: BufWriter<File>,
    /// The body's text, JSON-escaped, without quotes.
    text: BufWriter<File>,
    events_written: usize,
    /// Body bytes received.
    size: i64,
    /// The last chunk's arrival (ms since the request started).
    last_t: f64,
}

/// A HAR document being written.
pub(crate) struct FileLog {
    target: PathBuf,
    dir: PathBuf,
    out: Option<BufWriter<NamedTempFile>>,
    entries: usize,
    pub(crate) pages: Vec<Page>,
    streams: HashMap<u64, LiveStream>,
    next_stream: u64,
    /// The first write error (sticky: returned by every later `finish`).
    failed: Option<(io::ErrorKind, String)>,
    finished: bool,
    /// A marker no recorded text contains, to splice bodies in.
    marker: String,
    peak_buffered: usize,
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn random_marker() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut parts = [0u64; 2];
    for (i, p) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        *p = h.finish();
    }
    format!("\u{0}nemo-har:{:016x}{:016x}\u{0}", parts[0], parts[1])
}

impl FileLog {
    /// Creates the temporary file beside `path`, after checking that `path`
    /// can be one: its folder exists and is writable, and nothing has that
    /// name yet. A recording never replaces anything (a video of the same
    /// name, an input): an existing file is refused with
    /// [`io::ErrorKind::AlreadyExists`], a folder, a device or a link with
    /// [`io::ErrorKind::InvalidInput`].
    pub(crate) fn create(path: &Path) -> io::Result<FileLog> {
        if path.file_name().is_none() {
            return Err(with_path(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
            ));
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) => {
                let (kind, what) = if m.is_dir() {
                    (io::ErrorKind::InvalidInput, "is a folder")
                } else if m.file_type().is_symlink() {
                    (io::ErrorKind::InvalidInput, "is a symbolic link")
                } else if m.file_type().is_file() {
                    (
                        io::ErrorKind::AlreadyExists,
                        "already exists (a recording never replaces a file)",
                    )
                } else {
                    (io::ErrorKind::InvalidInput, "is not a regular file")
                };
                return Err(with_path(path, io::Error::new(kind, what)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(path, e)),
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let refuse = |kind: io::ErrorKind, why: String| {
            Err(io::Error::new(kind, format!("{}: {why}", path.display())))
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return refuse(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a folder", dir.display()),
                )
            }
            Err(e) => return refuse(e.kind(), format!("folder {}: {e}", dir.display())),
        }
        let tmp = match tempfile::Builder::new()
            .prefix(".nemo-har")
            .suffix(".tmp")
            .tempfile_in(&dir)
        {
            Ok(tmp) => tmp,
            // tempfile's message names the temporary file: name the folder.
            Err(e) => {
                return refuse(
                    e.kind(),
                    format!("cannot create a file in {}: {}", dir.display(), e.kind()),
                )
            }
        };
        let mut out = BufWriter::with_capacity(BUFFER, tmp);
        let creator = serde_json::to_string(&Creator::default()).map_err(io::Error::other)?;
        write!(
            out,
            "{{\"log\":{{\"version\":\"1.2\",\"creator\":{creator},\"entries\":["
        )
        .map_err(|e| with_path(path, e))?;
        Ok(FileLog {
            target: path.to_path_buf(),
            dir,
            out: Some(out),
            entries: 0,
            pages: Vec::new(),
            streams: HashMap::new(),
            next_stream: 0,
            failed: None,
            finished: false,
            marker: random_marker(),
            peak_buffered: 0,
        })
    }

    /// The file the recording ends up in.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    fn fail(&mut self, e: io::Error) {
        if self.failed.is_none() {
            self.failed = Some((e.kind(), with_path(&self.target, e).to_string()));
        }
        // Nothing more is written: the temporary file goes when dropped.
        self.out = None;
        self.streams.clear();
    }

    /// Writes a complete entry (redacting it first).
    pub(crate) fn write_entry(&mut self, mut entry: Entry, redactor: &mut Redactor) {
        redactor.learn_entry(&entry);
        redactor.entry_mut(&mut entry);
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let sep = if self.entries == 0 { "\n" } else { ",\n" };
        let result = out
            .write_all(sep.as_bytes())
            .and_then(|()| serde_json::to_writer(&mut *out, &entry).map_err(io::Error::other));
        match result {
            Ok(()) => self.entries += 1,
            Err(e) => self.fail(e),
        }
    }

    /// Starts recording an event stream whose head is in `entry`; returns
    /// its id.
    pub(crate) fn open_stream(&mut self, entry: Entry) -> Option<u64> {
        self.out.as_ref()?;
        let spool = || -> io::Result<BufWriter<File>> {
            Ok(BufWriter::with_capacity(
                BUFFER,
                tempfile::tempfile_in(&self.dir)?,
            ))
        };
        match spool().and_then(|e| Ok((e, spool()?))) {
            Ok((events, text)) => {
                let id = self.next_stream;
                self.next_stream += 1;
                self.streams.insert(
                    id,
                    LiveStream {
                        entry,
                        redaction: StreamRedaction::default(),
                        assembler: EventAssembler::default(),
                        events,
                        text,
                        events_written: 0,
                        size: 0,
                        last_t: 0.0,
                    },
                );
                Some(id)
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// A chunk of stream `id` arrived at `t` ms.
    pub(crate) fn stream_chunk(&mut self, id: u64, redactor: &mut Redactor, t: f64, chunk: &[u8]) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.size += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
        s.last_t = t;
        let text = redactor.stream(&mut s.redaction, chunk);
        let result = match s.assembler.chunk(t, text) {
            Some(event) => spool_event(s, &event),
            None => Ok(()),
        };
        if let Err(e) = result {
            self.fail(e);
        }
        let buffered = self.buffered();
        self.peak_buffered = self.peak_buffered.max(buffered);
    }

    /// Stream `id` ended (with the error recorded, if any): its entry is
    /// written whole. `t` is the end's time, or `None` to use the last
    /// chunk's (the reader stopped early).
    pub(crate) fn stream_end(
        &mut self,
        id: u64,
        redactor: &mut Redactor,
        t: Option<f64>,
        error: Option<crate::har::RecordedError>,
    ) {
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        let tail = redactor.stream_end(&mut s.redaction);
        let mut result = Ok(());
        for event in s.assembler.end(tail) {
            result = result.and_then(|()| spool_event(&mut s, &event));
        }
        let t = t.unwrap_or(s.last_t);
        let e = &mut s.entry;
        e.time = t;
        e.timings.receive = (t - e.timings.wait).max(0.0);
        e.response.content.size = s.size;
        e.response.body_size = s.size;
        if error.is_some() {
            e.error = error;
        }
        if let Err(err) = result.and_then(|()| self.write_stream(s, redactor)) {
            self.fail(err);
        }
    }

    fn write_stream(&mut self, s: LiveStream, redactor: &mut Redactor) -> io::Result<()> {
        let LiveStream {
            mut entry,
            events,
            text,
            ..
        } = s;
        redactor.learn_entry(&entry);
        entry.response.content.text = Some(self.marker.clone());
        entry.response.content.events = None;
        redactor.entry_mut(&mut entry);
        entry.response.content.text = Some(self.marker.clone());
        let json = serde_json::to_string(&entry).map_err(io::Error::other)?;
        let quoted = serde_json::to_string(&self.marker).map_err(io::Error::other)?;
        let (before, after) = json
            .split_once(&quoted)
            .ok_or_else(|| io::Error::other("the body's place was not found"))?;
        let mut events = events.into_inner().map_err(|e| e.into_error())?;
        let mut text = text.into_inner().map_err(|e| e.into_error())?;
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.write_all(if self.entries == 0 { b"\n" } else { b",\n" })?;
        out.write_all(before.as_bytes())?;
        out.write_all(b"\"")?;
        text.rewind()?;
        io::copy(&mut text, out)?;
        out.write_all(b"\",\"_events\":[")?;
        events.rewind()?;
        io::copy(&mut events, out)?;
        out.write_all(b"]")?;
        out.write_all(after.as_bytes())?;
        self.entries += 1;
        Ok(())
    }

    /// Bytes held in memory for the recording, beyond fixed-size buffers:
    /// the streams' held lines and events.
    pub(crate) fn buffered(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.redaction.buffered() + s.assembler.buffered())
            .sum()
    }

    /// The most [`buffered`](Self::buffered) ever was.
    pub(crate) fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }

    /// Ends the document (streams still open are written as interrupted),
    /// syncs it and renames it into place. Idempotent: later calls return
    /// the first call's result.
    pub(crate) fn finish(&mut self, redactor: &mut Redactor) -> io::Result<()> {
        if !self.finished {
            self.finished = true;
            let open: Vec<u64> = {
                let mut ids: Vec<u64> = self.streams.keys().copied().collect();
                ids.sort_unstable();
                ids
            };
            for id in open {
                self.stream_end(
                    id,
                    redactor,
                    None,
                    Some(crate::har::RecordedError {
                        kind: "interrupted".into(),
                        message: "the recording ended before the stream".into(),
                    }),
                );
            }
            if let Some(out) = self.out.take() {
                let mut pages = std::mem::take(&mut self.pages);
                for p in &mut pages {
                    p.title = redactor.text(&p.title);
                }
                if let Err(e) = close(out, &pages, &self.target) {
                    self.fail(e);
                }
            }
        }
        match &self.failed {
            Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }
}

fn spool_event(s: &mut LiveStream, event: &StreamEvent) -> io::Result<()> {
    let quoted = serde_json::to_string(&event.text).map_err(io::Error::other)?;
    let t = serde_json::to_string(&event.t).map_err(io::Error::other)?;
    if s.events_written > 0 {
        s.events.write_all(b",")?;
    }
    write!(s.events, "{{\"t\":{t},\"text\":{quoted}}}")?;
    s.text.write_all(&quoted.as_bytes()[1..quoted.len() - 1])?;
    s.events_written += 1;
    Ok(())
}

/// `dir/name-n.ext` for `dir/name.ext`.
fn numbered(target: &Path, n: u32) -> std::path::PathBuf {
    let stem = target.file_stem().unwrap_or_default().to_string_lossy();
    let name = match target.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    target.with_file_name(name)
}

fn close(mut out: BufWriter<NamedTempFile>, pages: &[Page], target: &Path) -> io::Result<()> {
    out.write_all(b"\n],\"pages\":")?;
    serde_json::to_writer(&mut out, pages).map_err(io::Error::other)?;
    out.write_all(b"}}\n")?;
    let tmp = out.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    // Never over a file that appeared under the name since `create`; then
    // the recording is kept beside it under a name of its own
    // (`session-1.har`), which the error names.
    let Err(e) = tmp.persist_noclobber(target) else {
        return Ok(());
    };
    let why = e.error;
    let mut tmp = e.file;
    for n in 1..=99 {
        let other = numbered(target, n);
        match tmp.persist_noclobber(&other) {
            Ok(_) => {
                return Err(io::Error::new(
                    why.kind(),
                    format!("{why}; the recording was kept as {}", other.display()),
                ))
            }
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => {
                tmp = e.file;
                break;
            }
        }
    }
    // No name of its own either: kept under its temporary name.
    Err(match tmp.keep() {
        Ok((_, kept)) => io::Error::new(
            why.kind(),
            format!("{why}; the recording was kept as {}", kept.display()),
        ),
        Err(_) => why,
    })
}
