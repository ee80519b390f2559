//! Turning reqwest's errors into the core's [`TransportError`], without ever
//! letting a credential through.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use nemo_core::transport::{TransportError, TransportErrorKind};
use nemo_core::wire::{HeaderValue, Request};

/// What a request is, for error messages and log lines: endpoint, method and
/// URL (without user info or query), plus the header values that must never
/// appear in a message.
#[derive(Clone)]
pub(crate) struct Context {
    label: String,
    /// `host:port`, for messages about connecting.
    host: String,
    secrets: Vec<String>,
    /// Real seconds per second of the client's clock, for durations in
    /// messages.
    scale: f64,
}

impl Context {
    pub(crate) fn new(request: &Request, url: &str, scale: f64) -> Self {
        let mut secrets = Vec::new();
        for header in &request.headers {
            if let HeaderValue::Sensitive(secret) = &header.value {
                let value = secret.expose();
                secrets.push(value.to_owned());
                // `Bearer <token>`: the token alone must not appear either.
                if let Some((_, rest)) = value.split_once(' ') {
                    secrets.push(rest.trim().to_owned());
                }
            }
        }
        secrets.retain(|s| s.len() >= 4);
        // Longest first, so a token inside a longer value is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            label: format!(
                "{} {} {}",
                request.endpoint.name(),
                request.method.as_str(),
                display_url(url)
            ),
            host: host_of(url),
            secrets,
            scale,
        }
    }

    /// A real duration as people read it, on the client's clock: `0.5 s`,
    /// `2.0 s`, `120 s`.
    pub(crate) fn seconds(&self, real: Duration) -> String {
        let s = real.as_secs_f64() / self.scale;
        if s >= 10.0 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    }

    /// `endpoint METHOD url`, for log lines.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// An error of `kind` whose message starts with the request's label.
    pub(crate) fn error(&self, kind: TransportErrorKind, what: impl AsRef<str>) -> TransportError {
        TransportError::new(
            kind,
            self.redact(&format!("{}: {}", self.label, what.as_ref())),
        )
    }

    /// Masks every sensitive header value in `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), nemo_core::secret::MASK);
            }
        }
        out
    }

    /// Maps a reqwest error (sending, or reading the body) to a transport error.
    pub(crate) fn reqwest(&self, err: reqwest::Error) -> TransportError {
        let kind = classify(&err);
        let err = err.without_url();
        if kind == TransportErrorKind::Connect {
            // Said plainly: where, and why in a few words (the chain of
            // hyper's wrappers says nothing more to a person).
            let why = connect_cause(&err);
            return self.error(kind, format!("cannot connect to {}: {why}", self.host));
        }
        let what = match kind {
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Tls => "TLS failure",
            TransportErrorKind::Interrupted => "the connection broke",
            _ => "request failed",
        };
        self.error(kind, format!("{what}: {}", chain(&err)))
    }
}

/// `host:port` of a URL (the port only when it is not the scheme's own).
fn host_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            }
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// Why connecting failed, in a few words: the innermost I/O error's kind,
/// or a name that does not resolve.
fn connect_cause(err: &(dyn StdError + 'static)) -> String {
    let mut next = Some(err);
    let mut innermost = err.to_string();
    while let Some(e) = next {
        let text = e.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return "the host name does not resolve (check the address and your network)"
                .to_owned();
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            let said = match io.kind() {
                io::ErrorKind::ConnectionRefused => {
                    Some("connection refused (nothing listens there)")
                }
                io::ErrorKind::TimedOut => Some("no answer in time"),
                io::ErrorKind::HostUnreachable => Some("the host is unreachable"),
                io::ErrorKind::NetworkUnreachable => Some("the network is unreachable"),
                io::ErrorKind::ConnectionReset => Some("the connection was reset"),
                io::ErrorKind::PermissionDenied => Some("not permitted (a firewall?)"),
                _ => None,
            };
            if let Some(said) = said {
                return said.to_owned();
            }
        }
        innermost = text;
        next = e.source();
    }
    innermost
}

/// A URL as it may be shown: scheme, host, port and path; never user info,
/// query or fragment.
pub(crate) fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
                None => format!("{}://{host}{}", url.scheme(), url.path()),
            }
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// An error and its sources, `a: b: c`, without repeats.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn classify(err: &reqwest::Error) -> TransportErrorKind {
    if err.is_connect() {
        if looks_like_tls(err) {
            TransportErrorKind::Tls
        } else if err.is_timeout() {
            TransportErrorKind::Timeout
        } else {
            TransportErrorKind::Connect
        }
    } else if err.is_timeout() {
        TransportErrorKind::Timeout
    } else if err.is_builder() || err.is_redirect() {
        TransportErrorKind::Other
    } else if err.is_body() || err.is_decode() || err.is_request() {
        // Sent (at least partly) and then the connection went away: reset,
        // closed before the response was complete, stream reset by h2.
        TransportErrorKind::Interrupted
    } else {
        TransportErrorKind::Other
    }
}

/// rustls' errors arrive wrapped in `io::Error`s inside hyper's connect
/// error; there is no public type to match, so the messages are read.
fn looks_like_tls(err: &(dyn StdError + 'static)) -> bool {
    const MARKS: &[&str] = &[
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "peer is incompatible",
        "peer misbehaved",
        "alert",
    ];
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::InvalidData {
                return true;
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        if MARKS.iter().any(|m| text.contains(m)) {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_causes_in_a_few_words() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "os error 111");
        assert_eq!(
            connect_cause(&refused),
            "connection refused (nothing listens there)"
        );
        let dns = io::Error::other("dns error: failed to lookup address information");
        assert!(connect_cause(&dns).contains("does not resolve"));
        assert_eq!(host_of("https://api.example.com/a"), "api.example.com");
        assert_eq!(host_of("http://127.0.0.1:9/a?x=1"), "127.0.0.1:9");
    }

    #[test]
    fn urls_lose_user_info_and_query() {
        assert_eq!(
            display_url("https://user:pw@cdn.example/out/x.mp4?sig=abc#f"),
            "https://cdn.example/out/x.mp4"
        );
        assert_eq!(
            display_url("http://127.0.0.1:8080/a"),
            "http://127.0.0.1:8080/a"
        );
        assert_eq!(display_url("not a url nmv_usr_x"), "(invalid URL)");
    }
}
