//! How the transport is set up.

use std::fmt;
use std::time::Duration;

use nemo_core::api::DEFAULT_API_URL;

use crate::error::display_url;

/// The shortest a time limit becomes under a [`time_scale`](HttpConfig::time_scale).
const MIN_SCALED: Duration = Duration::from_millis(250);

/// Settings for [`HttpTransport`](crate::HttpTransport).
///
/// Every field has a sensible default ([`HttpConfig::default`]); most callers
/// only change `base_url` (from `NEMO_API_URL`).
#[derive(Clone, PartialEq)]
pub struct HttpConfig {
    /// The API base URL that [`Target::Api`](nemo_core::wire::Target::Api)
    /// paths are relative to. Default: the production host.
    pub base_url: String,
    /// How long establishing a connection (TCP and TLS) may take. Default 10 s.
    pub connect_timeout: Duration,
    /// How long the transport waits without any progress: between two chunks
    /// of a response body, and for a response head after the last byte of the
    /// request body went out. Default 60 s. Every request also has an
    /// overall deadline (`request_timeout`, `upload_min_rate`,
    /// `download_timeout`, `stream_cap`), so a server that keeps sending a
    /// byte now and then cannot hold a call open for ever.
    pub read_timeout: Duration,
    /// The longest an API call ([`send`](nemo_core::transport::Transport::send)
    /// without files) may take, from sending the request to the last byte of
    /// the answer. Default 2 min.
    pub request_timeout: Duration,
    /// The slowest upload rate, in bytes per second, that is waited for: a
    /// call that sends files may take `request_timeout` plus their size at
    /// this rate (500 MB at the default 128 KiB/s: about 67 minutes).
    pub upload_min_rate: u64,
    /// The longest one [`download`](nemo_core::transport::Transport::download)
    /// call may take, every resumed attempt included. Default 2 h.
    pub download_timeout: Duration,
    /// How long an event stream (`/run_sse`) may stay silent (not even a
    /// keep-alive) before it is reported as timed out. Default 5 min.
    pub stream_idle_timeout: Duration,
    /// The longest an event stream may last, head to end. Default 15 min,
    /// the service's own limit.
    pub stream_cap: Duration,
    /// The `User-Agent` header. Default `nemo/<version>`.
    pub user_agent: String,
    /// How many times one [`download`](nemo_core::transport::Transport::download)
    /// call asks again after the connection broke (with `Range`, for the
    /// rest). Whatever this says, a call restarts from zero at most once (a
    /// server that ignores `Range`) and never receives more than twice the
    /// file's size plus 1 MiB in all. Default 3.
    pub download_resume_attempts: u32,
    /// The largest response body [`send`](nemo_core::transport::Transport::send)
    /// reads into memory; a longer one is an error. Default 16 MiB (API
    /// answers are a few kilobytes; files go through `download`).
    pub max_response_bytes: usize,
    /// Real seconds per second of the client's clock, as
    /// `nemo_clock::TokioClock::scaled` takes it (`NEMO_TIME_SCALE`): every
    /// time limit above lasts this many times its value (the slowest upload
    /// rate is divided by it), and messages give durations on the client's
    /// clock. A number in `(0, 1]`; anything else means real time. No limit
    /// is scaled below 250 ms. Default 1.
    pub time_scale: f64,
}

impl HttpConfig {
    /// The default settings with another base URL.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }

    /// The same settings on a client clock where one second lasts `scale`
    /// real seconds (see [`time_scale`](Self::time_scale)).
    pub fn with_time_scale(self, scale: f64) -> Self {
        Self {
            time_scale: scale,
            ..self
        }
    }

    /// The scale in effect: the client clock's rule
    /// ([`nemo_clock::client_scale`]: `time_scale` when in `(0, 1]`, else 1).
    pub(crate) fn scale(&self) -> f64 {
        nemo_clock::client_scale(self.time_scale)
    }

    /// How long a limit of `d` on the client's clock lasts in real time:
    /// `d` scaled, yet never below [`MIN_SCALED`] (a loopback connection or
    /// a busy test machine needs that much whatever the scale).
    pub(crate) fn real(&self, d: Duration) -> Duration {
        let scaled =
            Duration::try_from_secs_f64(d.as_secs_f64() * self.scale()).unwrap_or(Duration::MAX);
        scaled.max(d.min(MIN_SCALED))
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_API_URL.to_owned(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(2 * 60),
            upload_min_rate: 128 * 1024,
            download_timeout: Duration::from_secs(2 * 60 * 60),
            stream_idle_timeout: Duration::from_secs(5 * 60),
            stream_cap: Duration::from_secs(15 * 60),
            user_agent: concat!("nemo/", env!("CARGO_PKG_VERSION")).to_owned(),
            download_resume_attempts: 3,
            max_response_bytes: 16 * 1024 * 1024,
            time_scale: 1.0,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The base URL is shown without user info or query, in case someone
        // put credentials there.
        f.debug_struct("HttpConfig")
            .field("base_url", &display_url(&self.base_url))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("upload_min_rate", &self.upload_min_rate)
            .field("download_timeout", &self.download_timeout)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("stream_cap", &self.stream_cap)
            .field("user_agent", &self.user_agent)
            .field("download_resume_attempts", &self.download_resume_attempts)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("time_scale", &self.time_scale)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_scale_within_bounds() {
        let c = HttpConfig::default().with_time_scale(0.01);
        assert_eq!(
            c.real(Duration::from_secs(120)),
            Duration::from_millis(1200)
        );
        // Never below 250 ms, nor above the limit itself.
        assert_eq!(c.real(Duration::from_secs(10)), Duration::from_millis(250));
        assert_eq!(
            c.real(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        // A scale above 1 (or none that makes sense) is real time.
        for s in [50.0, 0.0, -1.0, f64::NAN, f64::INFINITY] {
            let c = HttpConfig::default().with_time_scale(s);
            assert_eq!(
                c.real(Duration::from_secs(120)),
                Duration::from_secs(120),
                "{s}"
            );
        }
    }
}
