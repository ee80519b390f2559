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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nemo_core::api::file_part;
    use nemo_core::driver::Driver;
    use nemo_core::machine::{Config, Session};
    use nemo_core::transport::{DownloadOptions, Transport, TransportErrorKind};
    use nemo_core::wire::{Body, Endpoint, Method, Request, Target};

    use super::InProcess;
    use crate::{AgentBehaviour, FaultPlan, MockConfig};

    /// A finished render's output, exported once through the driver: the
    /// simulator, its folder, and a request for the file.
    async fn rendered(faults: &str) -> (Arc<InProcess>, tempfile::TempDir, Request) {
        let mock = Arc::new(
            InProcess::new(MockConfig {
                faults: FaultPlan::parse(faults).unwrap(),
                agent: AgentBehaviour::calm(),
                ..MockConfig::default()
            })
            .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let session = Session::new(Config {
            client_id: "8d3e54a0-1111-4222-8333-444455556666".into(),
            ..Config::default()
        });
        let mut driver = Driver::new(session, mock.clone(), crate::TokioClock::new());
        let sample = dir.path().join("city.mp4");
        std::fs::write(&sample, crate::media::SAMPLE_MP4).unwrap();
        let part = file_part(sample, crate::media::SAMPLE_MP4.len() as u64).unwrap();
        driver
            .upload(vec![part], vec![], &mut |_| {})
            .await
            .unwrap();
        let first = dir.path().join("first.mp4");
        driver
            .export(Some(first), true, false, &mut |_| {})
            .await
            .unwrap();
        let path = mock
            .journal()
            .for_endpoint(Endpoint::Download)
            .last()
            .unwrap()
            .path
            .clone();
        let request = Request {
            endpoint: Endpoint::Download,
            method: Method::Get,
            target: Target::Absolute(format!("{}{path}", InProcess::BASE_URL)),
            headers: Vec::new(),
            body: Body::Empty,
        };
        (mock, dir, request)
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The simulator places files as every transport does (`nemo-files`):
    /// a size other than the render status's, a body that keeps breaking, an
    /// existing file or a link at the target — nothing saved, nothing left.
    #[tokio::test(start_paused = true)]
    async fn downloads_are_checked_and_placed_as_by_every_transport() {
        let (mock, dir, request) = rendered("download:reset=1000@3-").await;
        let len = std::fs::metadata(dir.path().join("first.mp4"))
            .unwrap()
            .len();
        let before = names(dir.path());

        // The second download is whole, but not the size the status said.
        let dest = dir.path().join("out.mp4");
        let wrong = DownloadOptions {
            expected_size: Some(len + 1),
            ..DownloadOptions::default()
        };
        let err = mock
            .download(&request, &dest, wrong, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Other, "{err}");
        assert!(err.message.contains("render status said"), "{err}");
        assert_eq!(names(dir.path()), before);

        // From the third on, every answer breaks after 1000 bytes.
        let err = mock
            .download(&request, &dest, DownloadOptions::default(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Interrupted, "{err}");
        assert!(err.message.contains("gave up after"), "{err}");
        assert_eq!(names(dir.path()), before);

        // An existing file, or a dangling link, at the target: nothing is
        // asked for, nothing followed.
        let sent = mock.journal().len();
        let existing = dir.path().join("first.mp4");
        let err = mock
            .download(&request, &existing, DownloadOptions::default(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Exists, "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.mp4");
            std::os::unix::fs::symlink(dir.path().join("nowhere.mp4"), &link).unwrap();
            let err = mock
                .download(&request, &link, DownloadOptions::default(), None)
                .await
                .unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Exists, "{err}");
            assert!(!dir.path().join("nowhere.mp4").exists());
        }
        assert_eq!(mock.journal().len(), sent);
    }
}
