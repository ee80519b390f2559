//! Test servers and helpers shared by the test modules.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::Router;
use nemo_core::api::{Api, Attribution};
use nemo_core::secret::Secret;
use nemo_http::{HttpConfig, HttpTransport};
use tokio::net::TcpListener;

/// The token every test request carries; it must never show up in an error.
pub const TOKEN: &str = "nmv_usr_supersecret_token_42";

pub fn token() -> Secret {
    Secret::new(TOKEN)
}

pub fn api() -> Api {
    Api::new(Attribution::default())
}

/// Short timeouts so failure cases end quickly.
pub fn config(base_url: &str) -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        stream_idle_timeout: Duration::from_secs(5),
        stream_cap: Duration::from_secs(10),
        ..HttpConfig::new(base_url)
    }
}

pub fn transport(base_url: &str) -> HttpTransport {
    HttpTransport::new(config(base_url)).unwrap()
}

/// Serves `app` on 127.0.0.1 (a fresh port) and returns its base URL.
pub async fn serve(app: Router) -> String {
    serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), app)
}

/// Like [`serve`], with a small receive buffer on accepted connections, so
/// that a client's upload moves only as fast as the server reads it.
pub async fn serve_with_small_buffers(app: Router) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    serve_on(socket.listen(16).unwrap(), app)
}

fn serve_on(listener: TcpListener, app: Router) -> String {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    format!("http://{addr}")
}

/// One request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub peer: SocketAddr,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a test server saw, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Seen>>>);

impl Journal {
    pub fn record(
        &self,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        peer: ConnectInfo<SocketAddr>,
    ) {
        let headers = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        self.0.lock().unwrap().push(Seen {
            method: method.to_string(),
            path: uri.to_string(),
            headers,
            peer: peer.0,
        });
    }

    pub fn entries(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A 127.0.0.1 URL where nothing listens.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Asserts that no secret leaks through an error.
pub fn assert_no_token(text: &str) {
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    assert!(!text.contains("supersecret"), "the token leaked: {text}");
}

/// Deterministic file content: byte `i` of a test file.
pub fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

pub fn content(len: u64) -> Vec<u8> {
    (0..len).map(byte_at).collect()
}
