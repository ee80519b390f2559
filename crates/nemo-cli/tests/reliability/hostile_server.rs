//! A hostile server for the tests: a small HTTP/1.1 proxy on 127.0.0.1 in
//! front of the simulator that hands each answer to a `tamper` function
//! before the client sees it. The simulator does the real work (tokens,
//! sessions, the agent, renders, media); the proxy lies where a test says
//! so — a render id that is a path, an HTML page as the video, a download
//! shorter than announced, a 404 page, escape sequences in the agent's
//! text, a token that cannot travel in a header.
//!
//! Plain `std::net`, one thread per connection, one request per connection
//! (`Connection: close` both ways), every socket read bounded by a timeout:
//! nothing here can spin or hang a test for long.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest any socket read or write waits.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request or response the proxy handles (the simulator's
/// sample media is a few hundred KB).
const MAX_BODY: usize = 64 << 20;

/// A request as the client sent it (body de-chunked).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    /// `GET`, `POST`, …
    pub(crate) method: String,
    /// The path with its query, as sent.
    pub(crate) path: String,
    /// Headers, names lower case.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Req {
    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The endpoint's fault-plan name (`token`, `session`, `run_sse`,
    /// `upload`, `credits`, `state`, `render`, `status`, `download`,
    /// `claim`, `cancel`), or `other`.
    pub(crate) fn kind(&self) -> &'static str {
        kind(&self.method, &self.path)
    }
}

/// The fault-plan name of a request by its method and path.
pub(crate) fn kind(method: &str, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or_default();
    let post = method == "POST";
    if path == "/api/auth/anonymous-token" {
        "token"
    } else if path.starts_with("/api/tasks/me/with-session") {
        "session"
    } else if path == "/run_sse" {
        "run_sse"
    } else if path.starts_with("/api/upload-video/") {
        "upload"
    } else if path.starts_with("/api/credits/") {
        "credits"
    } else if path.starts_with("/api/state/") {
        "state"
    } else if path == "/api/auth/claim-token" {
        "claim"
    } else if path == "/api/render/proxy/lambda" && post {
        "render"
    } else if path.starts_with("/api/render/proxy/lambda/") && path.ends_with("/cancel") {
        "cancel"
    } else if path.starts_with("/api/render/proxy/lambda/") && !post {
        "status"
    } else if path.starts_with("/media/")
        || (path.starts_with("/api/render/proxy/") && path.ends_with("/download"))
    {
        "download"
    } else {
        "other"
    }
}

/// An answer, before the client sees it.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    /// HTTP status.
    pub(crate) status: u16,
    /// Headers, names lower case (without framing headers: the proxy sets
    /// `Content-Length` and `Connection` itself).
    pub(crate) headers: Vec<(String, String)>,
    /// The whole body.
    pub(crate) body: Vec<u8>,
    /// Send only this many bytes of the body (announcing all of it in
    /// `Content-Length`), then close the connection: a broken download.
    pub(crate) cut: Option<usize>,
}

impl Resp {
    /// A response with this status, content type and body.
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            cut: None,
        }
    }

    /// The body parsed as JSON.
    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Replaces the body with this JSON.
    pub(crate) fn set_json(&mut self, v: &serde_json::Value) {
        self.body = v.to_string().into_bytes();
    }

    /// Sets (or replaces) a header.
    pub(crate) fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
    }
}

/// What the proxy saw and answered.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The method.
    pub(crate) method: String,
    /// The path with its query.
    pub(crate) path: String,
    /// The endpoint (see [`Req::kind`]).
    pub(crate) kind: &'static str,
    /// The status the client got.
    pub(crate) status: u16,
    /// True when `tamper` changed the answer.
    pub(crate) tampered: bool,
    /// Bytes of body sent.
    pub(crate) sent: usize,
}

/// Changes an answer (or not). Called once per request, in arrival order
/// per connection; keep counters in atomics.
pub(crate) type Tamper = dyn Fn(&Req, Resp) -> Resp + Send + Sync;

/// The running proxy; stops when dropped.
pub(crate) struct Hostile {
    url: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    /// A proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub(crate) fn start(
        upstream: &str,
        tamper: impl Fn(&Req, Resp) -> Resp + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let tamper: Arc<Tamper> = Arc::new(tamper);
        let accept = {
            let (stop, seen, url) = (stop.clone(), seen.clone(), url.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (seen, tamper, upstream, url) =
                        (seen.clone(), tamper.clone(), upstream.clone(), url.clone());
                    std::thread::spawn(move || serve(conn, &upstream, &url, &*tamper, &seen));
                }
            })
        };
        Hostile {
            url,
            stop,
            seen,
            accept: Some(accept),
        }
    }

    /// The proxy's base URL (what `NEMO_API_URL` is set to).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Every exchange so far, in the order they ended.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// One request: read it, forward it, tamper with the answer, note it in
/// `seen` (before the client can see the answer), send it back.
fn serve(
    conn: TcpStream,
    upstream: &str,
    own_url: &str,
    tamper: &Tamper,
    seen: &Mutex<Vec<Seen>>,
) -> Option<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let (line, headers) = read_head(&mut reader)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let body = read_body(&mut reader, &headers)?;
    let req = Req {
        method,
        path,
        headers,
        body,
    };
    let mut resp = forward(upstream, &req)?;
    // A finished render's URL names the simulator: send the client back
    // through here for the download. (Only there: the drafts in other
    // answers must reach the render submit as the simulator wrote them.)
    if req.kind() == "status" {
        resp.body = replace(&resp.body, upstream.as_bytes(), own_url.as_bytes());
    }
    let before = (resp.status, resp.body.clone());
    let resp = tamper(&req, resp);
    let tampered = before != (resp.status, resp.body.clone()) || resp.cut.is_some();
    let body = match resp.cut {
        Some(n) => &resp.body[..n.min(resp.body.len())],
        None => &resp.body[..],
    };
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
        kind: kind(&req.method, &req.path),
        method: req.method.clone(),
        path: req.path.clone(),
        status: resp.status,
        tampered,
        sent: body.len(),
    });
    let mut conn = conn;
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (n, v) in &resp.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        resp.body.len()
    ));
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(body))
        .and_then(|()| conn.flush());
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Some(())
}

/// Sends `req` to the simulator and reads its whole answer.
fn forward(upstream: &str, req: &Req) -> Option<Resp> {
    let host = upstream.strip_prefix("http://")?;
    let mut up = TcpStream::connect(host).ok()?;
    up.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    up.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {host}\r\n", req.method, req.path);
    for (n, v) in &req.headers {
        if !matches!(
            n.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive"
        ) {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&req.body).ok()?;
    up.flush().ok()?;
    let mut reader = BufReader::new(up);
    let (line, headers) = read_head(&mut reader)?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let body = if is_chunked(&headers) {
        read_chunked(&mut reader)?
    } else {
        // `Connection: close`: the body ends with the connection (a
        // `Content-Length` is obeyed when there is one).
        match content_length(&headers) {
            Some(n) => read_exact(&mut reader, n)?,
            None => {
                let mut all = Vec::new();
                reader.take(MAX_BODY as u64).read_to_end(&mut all).ok()?;
                all
            }
        }
    };
    let headers = headers
        .into_iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive"
            )
        })
        .collect();
    Some(Resp {
        status,
        headers,
        body,
        cut: None,
    })
}

/// The start line and the headers (names lower case).
fn read_head(reader: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    // Bounded: a head of more than 200 lines is not one we send.
    reader.read_line(&mut first).ok()?;
    if first.trim().is_empty() {
        return None;
    }
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Some((first.trim_end().to_owned(), headers));
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    None
}

fn content_length(headers: &[(String, String)]) -> Option<usize> {
    headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> Option<Vec<u8>> {
    if is_chunked(headers) {
        read_chunked(reader)
    } else {
        read_exact(reader, content_length(headers).unwrap_or(0))
    }
}

fn read_exact(reader: &mut impl Read, n: usize) -> Option<Vec<u8>> {
    if n > MAX_BODY {
        return None;
    }
    let mut buf = vec![0; n];
    reader.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// A `Transfer-Encoding: chunked` body, de-chunked (trailers skipped).
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).ok()? == 0 {
            return None;
        }
        let size = size.trim().split(';').next()?.trim().to_owned();
        let n = usize::from_str_radix(&size, 16).ok()?;
        if n == 0 {
            // Trailers, up to the blank line.
            for _ in 0..100 {
                let mut line = String::new();
                if reader.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
                    return Some(body);
                }
            }
            return Some(body);
        }
        if body.len() + n > MAX_BODY {
            return None;
        }
        body.extend(read_exact(reader, n)?);
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

/// `haystack` with every `from` replaced by `to`.
pub(crate) fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
