//! The simulator as a [`Transport`]: the same backend, no sockets.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, FilePart, Header, HeaderValue, Request, Response, Target};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::backend::{Backend, Incoming, IncomingBody, MultipartSource, PartSink, UploadFail};
use crate::body::{BodyReader, Broken};
use crate::config::MockConfig;
use crate::journal::Journal;

/// How often a broken download is resumed with `Range` before giving up.
const MAX_RESUMES: u32 = 3;

/// The simulator in-process: a [`Transport`] that calls the backend directly.
///
/// Simulated waits (agent turns, keep-alives, renders, fault delays) use
/// `tokio::time`, so under `#[tokio::test(start_paused = true)]` a whole
/// session runs in virtual time. Output URLs point at
/// [`InProcess::BASE_URL`], which this transport serves; any other absolute
/// URL fails to connect.
#[derive(Debug, Clone)]
pub struct InProcess {
    backend: Arc<Backend>,
}

impl InProcess {
    /// The base URL the in-process backend answers for.
    pub const BASE_URL: &'static str = "http://nemo-mock.invalid";

    /// A new, empty simulated backend.
    pub fn new(config: MockConfig) -> io::Result<InProcess> {
        Ok(InProcess {
            backend: Arc::new(Backend::new(config, Self::BASE_URL.to_owned())?),
        })
    }

    /// The base URL to give the client ([`InProcess::BASE_URL`]).
    pub fn url(&self) -> &str {
        &self.backend.base_url
    }

    /// The request journal.
    pub fn journal(&self) -> &Journal {
        &self.backend.journal
    }

    /// The session's current draft (after edits that have landed), if any.
    pub fn draft(&self, session_id: &str) -> Option<serde_json::Value> {
        self.backend.draft(session_id)
    }

    /// `(available, frozen)` credits of the user behind a token.
    pub fn credits(&self, token: &str) -> Option<(u64, u64)> {
        self.backend.credits_of(token)
    }

    fn path_of(&self, target: &Target) -> Result<String, TransportError> {
        let full = match target {
            Target::Api(path) => path.clone(),
            Target::Absolute(url) => match url.strip_prefix(self.backend.base_url.as_str()) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
                _ => {
                    let host = url
                        .split("://")
                        .nth(1)
                        .and_then(|r| r.split('/').next())
                        .unwrap_or(url);
                    return Err(TransportError::new(
                        TransportErrorKind::Connect,
                        format!(
                            "cannot connect to {host}: the in-process backend serves {} only",
                            self.backend.base_url
                        ),
                    ));
                }
            },
        };
        let path = full.split(['?', '#']).next().unwrap_or("/");
        Ok(if path.is_empty() {
            "/".into()
        } else {
            path.to_owned()
        })
    }

    async fn call<'a>(
        &self,
        request: &'a Request,
        extra: Option<Header>,
        progress: Option<ProgressFn<'a>>,
    ) -> Result<(u16, Vec<(String, String)>, BodyReader), TransportError> {
        let path = self.path_of(&request.target)?;
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .chain(extra.as_ref())
            .map(|h| (h.name.to_ascii_lowercase(), h.value.expose().to_owned()))
            .collect();
        let body = match &request.body {
            Body::Empty => IncomingBody::Empty,
            Body::Json(text) => {
                headers.push(("content-type".into(), "application/json".into()));
                IncomingBody::Bytes(Bytes::from(text.clone()))
            }
            Body::Multipart(parts) => {
                for p in parts {
                    tokio::fs::metadata(&p.path).await.map_err(|e| {
                        TransportError::new(
                            TransportErrorKind::Local,
                            format!("cannot read {}: {e}", p.path.display()),
                        )
                    })?;
                }
                headers.push((
                    "content-type".into(),
                    "multipart/form-data; boundary=nemo-mock-in-process".into(),
                ));
                let total = parts.iter().map(|p| p.len).sum();
                IncomingBody::Multipart(Box::new(FileParts {
                    parts,
                    next: 0,
                    done: 0,
                    total,
                    progress,
                }))
            }
        };
        let reply = self
            .backend
            .handle(Incoming {
                method: request.method.as_str().to_owned(),
                path,
                headers,
                body,
            })
            .await;
        let length = reply.content_length();
        let (status, mut headers, reader) = reply.into_parts(self.backend.clock);
        if let Some(n) = length {
            headers.push(("content-length".into(), n.to_string()));
        }
        Ok((status, headers, reader))
    }
}

fn interrupted() -> TransportError {
    TransportError::new(
        TransportErrorKind::Interrupted,
        "connection reset by peer (simulated)",
    )
}

fn local(path: &Path, e: io::Error) -> TransportError {
    TransportError::new(
        TransportErrorKind::Local,
        format!("{}: {e}", path.display()),
    )
}

async fn read_all(reader: &mut BodyReader) -> Result<Vec<u8>, TransportError> {
    let mut body = Vec::new();
    while let Some(chunk) = reader.next().await {
        body.extend_from_slice(&chunk.map_err(|Broken| interrupted())?);
    }
    Ok(body)
}

struct FileParts<'a> {
    parts: &'a [FilePart],
    next: usize,
    done: u64,
    total: u64,
    progress: Option<ProgressFn<'a>>,
}

#[async_trait]
impl MultipartSource for FileParts<'_> {
    async fn next_part(&mut self, sink: &mut (dyn PartSink + Send)) -> Result<bool, UploadFail> {
        let Some(part) = self.parts.get(self.next) else {
            return Ok(false);
        };
        self.next += 1;
        let mut file = tokio::fs::File::open(&part.path)
            .await
            .map_err(|e| UploadFail::Broken(format!("cannot read {}: {e}", part.path.display())))?;
        sink.begin("files", Some(&part.filename)).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| {
                UploadFail::Broken(format!("cannot read {}: {e}", part.path.display()))
            })?;
            if n == 0 {
                break;
            }
            sink.write(&buf[..n]).await?;
            self.done += n as u64;
            if let Some(p) = self.progress {
                p(Progress {
                    done: self.done,
                    total: Some(self.total),
                });
            }
        }
        sink.end().await?;
        Ok(true)
    }

    fn summary(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("files={} ({} bytes)", p.filename, p.len))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct ReaderStream(BodyReader);

#[async_trait]
impl ByteStream for ReaderStream {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        self.0
            .next()
            .await
            .map(|r| r.map_err(|Broken| interrupted()))
    }
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    dest.with_file_name(format!(".{name}.{:08x}.part", fastrand::u32(..)))
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(headers: &[(String, String)]) -> Option<(u64, Option<u64>)> {
    let v = nemo_core::wire::find_header(headers, "content-range")?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

#[async_trait]
impl Transport for InProcess {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        let (status, headers, mut reader) = self.call(request, None, progress).await?;
        let body = read_all(&mut reader).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let (status, headers, reader) = self.call(request, None, None).await?;
        Ok(StreamResponse {
            status,
            headers,
            body: Box::new(ReaderStream(reader)),
        })
    }

    async fn download(
        &self,
        request: &Request,
        dest: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        if !options.overwrite && tokio::fs::try_exists(dest).await.unwrap_or(false) {
            return Err(TransportError::new(
                TransportErrorKind::Exists,
                format!("{} already exists", dest.display()),
            ));
        }
        let tmp = temp_path(dest);
        let result = self.download_into(request, &tmp, progress).await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        if let DownloadOutcome::Complete { .. } = outcome {
            if !options.overwrite && tokio::fs::try_exists(dest).await.unwrap_or(false) {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(TransportError::new(
                    TransportErrorKind::Exists,
                    format!("{} already exists", dest.display()),
                ));
            }
            if let Err(e) = tokio::fs::rename(&tmp, dest).await {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(local(dest, e));
            }
        } else {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        Ok(outcome)
    }
}

impl InProcess {
    async fn download_into(
        &self,
        request: &Request,
        tmp: &Path,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<DownloadOutcome, TransportError> {
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(|e| local(tmp, e))?;
        let mut done = 0u64;
        let mut total: Option<u64> = None;
        let mut resumes = 0;
        loop {
            let range = (done > 0).then(|| Header {
                name: "range",
                value: HeaderValue::Plain(format!("bytes={done}-")),
            });
            let (status, headers, mut reader) = self.call(request, range, None).await?;
            if !(200..300).contains(&status) {
                let body = read_all(&mut reader).await?;
                if done > 0 {
                    return Err(TransportError::new(
                        TransportErrorKind::Interrupted,
                        format!("the download broke and could not be resumed (HTTP {status})"),
                    ));
                }
                return Ok(DownloadOutcome::Refused(Response {
                    status,
                    headers,
                    body,
                }));
            }
            let length = nemo_core::wire::find_header(&headers, "content-length")
                .and_then(|v| v.parse::<u64>().ok());
            if status == 206 {
                match content_range(&headers) {
                    Some((start, t)) if start == done => total = t.or(total),
                    _ => {
                        done = 0;
                        file.set_len(0).await.map_err(|e| local(tmp, e))?;
                        file.seek(io::SeekFrom::Start(0))
                            .await
                            .map_err(|e| local(tmp, e))?;
                    }
                }
            } else {
                if done > 0 {
                    done = 0;
                    file.set_len(0).await.map_err(|e| local(tmp, e))?;
                    file.seek(io::SeekFrom::Start(0))
                        .await
                        .map_err(|e| local(tmp, e))?;
                }
                total = length;
            }
            let mut broke = false;
            while let Some(chunk) = reader.next().await {
                match chunk {
                    Ok(c) => {
                        file.write_all(&c).await.map_err(|e| local(tmp, e))?;
                        done += c.len() as u64;
                        if let Some(p) = progress {
                            p(Progress { done, total });
                        }
                    }
                    Err(Broken) => {
                        broke = true;
                        break;
                    }
                }
            }
            if !broke {
                break;
            }
            resumes += 1;
            if resumes > MAX_RESUMES {
                return Err(interrupted());
            }
        }
        if let Some(t) = total {
            if t != done {
                return Err(TransportError::new(
                    TransportErrorKind::Interrupted,
                    format!("the download ended after {done} of {t} bytes"),
                ));
            }
        }
        file.flush().await.map_err(|e| local(tmp, e))?;
        file.sync_all().await.map_err(|e| local(tmp, e))?;
        Ok(DownloadOutcome::Complete { bytes: done })
    }
}
