//! The simulator as a [`Transport`]: the same backend, no sockets.

use std::io;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use nemo_core::transport::{
    ByteStream, DownloadOptions, DownloadOutcome, Progress, ProgressFn, StreamResponse, Transport,
    TransportError, TransportErrorKind,
};
use nemo_core::wire::{Body, FilePart, Request, Response, Target};
use tokio::io::AsyncReadExt;

use crate::backend::{Backend, Incoming, IncomingBody, MultipartSource, PartSink, UploadFail};
use crate::body::{BodyReader, Broken};
use crate::config::MockConfig;
use crate::journal::Journal;

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
        progress: Option<ProgressFn<'a>>,
    ) -> Result<(u16, Vec<(String, String)>, BodyReader), TransportError> {
        let path = self.path_of(&request.target)?;
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
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

#[async_trait]
impl Transport for InProcess {
    async fn send(
        &self,
        request: &Request,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Response, TransportError> {
        let (status, headers, mut reader) = self.call(request, progress).await?;
        let body = read_all(&mut reader).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn open_stream(&self, request: &Request) -> Result<StreamResponse, TransportError> {
        let (status, headers, reader) = self.call(request, None).await?;
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
        // The one file-placing engine every transport shares: this one only
        // hands over the bytes of each (resumed) GET.
        nemo_files::download_via_stream(self, request, dest, options, progress).await
    }
}
