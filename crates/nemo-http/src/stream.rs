//! An event-stream body, chunk by chunk as the server writes it.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use nemo_core::transport::{ByteStream, TransportError, TransportErrorKind};

use crate::error::Context;

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The body of a `/run_sse` response.
///
/// Each [`next_chunk`](ByteStream::next_chunk) returns what the connection
/// delivered, nothing is collected. A broken connection is an
/// `Interrupted` error, silence longer than the idle timeout or the end of
/// the 15-minute cap a `Timeout`; after the end or an error the stream is
/// finished and keeps returning `None`.
pub(crate) struct HttpByteStream {
    chunks: Option<Chunks>,
    /// Silence allowed between chunks; `None` when the caller bounds it.
    idle: Option<Duration>,
    ctx: Context,
}

impl HttpByteStream {
    pub(crate) fn new(response: reqwest::Response, idle: Option<Duration>, ctx: Context) -> Self {
        Self {
            chunks: Some(Box::pin(response.bytes_stream())),
            idle,
            ctx,
        }
    }
}

#[async_trait]
impl ByteStream for HttpByteStream {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        loop {
            let chunks = self.chunks.as_mut()?;
            let waiting = tokio::time::Instant::now();
            let next = match self.idle {
                None => Ok(chunks.next().await),
                Some(idle) => tokio::time::timeout(idle, chunks.next()).await,
            };
            let next = match next {
                Ok(next) => next,
                Err(_) => {
                    self.chunks = None;
                    return Some(Err(self.ctx.error(
                        TransportErrorKind::Timeout,
                        format!(
                            "the stream was silent for {}",
                            self.ctx.seconds(waiting.elapsed())
                        ),
                    )));
                }
            };
            match next {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => return Some(Ok(chunk)),
                Some(Err(e)) => {
                    self.chunks = None;
                    let mut err = self.ctx.reqwest(e);
                    if err.kind != TransportErrorKind::Timeout {
                        // Whatever broke mid-body, the machine must treat it
                        // as a dropped stream.
                        err.kind = TransportErrorKind::Interrupted;
                    }
                    return Some(Err(err));
                }
                None => {
                    self.chunks = None;
                    return None;
                }
            }
        }
    }
}
