//! A tiny HTTP/1.1 client over `TcpStream` and helpers shared by the tests.

use std::net::SocketAddr;
use std::time::Duration;

use nemo_core::wire::Response;
use nemo_mock::{MockConfig, MockServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ATTRIBUTION: [(&str, &str); 3] = [
    ("X-Skill-Source", "video-openapi"),
    ("X-Skill-Version", "1.0.5"),
    ("X-Skill-Platform", "unknown"),
];

/// A response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
    /// False when the connection ended before the body was complete.
    pub complete: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// As a `nemo_core` response, for its parsers.
    pub fn core(&self) -> Response {
        Response {
            status: self.status,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: self.body.clone(),
        }
    }
}

/// Sends one request with `Connection: close` and reads the answer to the end.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let mut broke = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                broke = true;
                break;
            }
            Err(_) => panic!("no answer within 20 s for {method} {path}"),
        }
    }
    parse(&buf, broke)
}

fn parse(buf: &[u8], broke: bool) -> Raw {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw_body = &buf[end + 4..];
    let find = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
    let (body, complete) = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(raw_body)
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        (
            raw_body[..raw_body.len().min(len)].to_vec(),
            raw_body.len() >= len,
        )
    } else {
        (raw_body.to_vec(), !broke)
    };
    Raw {
        status,
        headers,
        body,
        complete: complete && !broke,
    }
}

fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
        else {
            return (out, false);
        };
        data = &data[line_end + 2..];
        if size == 0 {
            return (out, true);
        }
        if data.len() < size + 2 {
            out.extend_from_slice(&data[..data.len().min(size)]);
            return (out, false);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A client of one server: a token and a session.
pub struct Client {
    pub addr: SocketAddr,
    pub token: String,
    pub session: String,
    pub task: String,
    pub user: String,
}

impl Client {
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub async fn get(&self, path: &str) -> Raw {
        let auth = self.auth();
        let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
        h.push(("Authorization", &auth));
        request(self.addr, "GET", path, &h, b"").await
    }

    pub async fn get_with(&self, path: &str, extra: &[(&str, &str)]) -> Raw {
        let auth = self.auth();
        let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
        h.push(("Authorization", &auth));
        h.extend_from_slice(extra);
        request(self.addr, "GET", path, &h, b"").await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Raw {
        let auth = self.auth();
        let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
        h.push(("Authorization", &auth));
        h.push(("Content-Type", "application/json"));
        request(self.addr, "POST", path, &h, body.to_string().as_bytes()).await
    }

    pub async fn chat(&self, text: &str) -> Raw {
        self.chat_asking(text, false).await
    }

    /// A message; `streaming` asks for the text piece by piece
    /// (`"streaming": true`, ADK's `RunAgentRequest`).
    pub async fn chat_asking(&self, text: &str, streaming: bool) -> Raw {
        let auth = self.auth();
        let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
        h.push(("Authorization", &auth));
        h.push(("Content-Type", "application/json"));
        h.push(("Accept", "text/event-stream"));
        let mut body = serde_json::json!({"app_name":"nemo_agent","user_id":"me","session_id":self.session,"new_message":{"role":"user","parts":[{"text":text}]}});
        if streaming {
            body["streaming"] = serde_json::json!(true);
        }
        request(
            self.addr,
            "POST",
            "/run_sse",
            &h,
            body.to_string().as_bytes(),
        )
        .await
    }

    pub async fn upload(&self, files: &[(&str, &[u8])]) -> Raw {
        let auth = self.auth();
        let boundary = "----nemoTestBoundary7MA4YWxk";
        let mut body = Vec::new();
        for (name, data) in files {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
        h.push(("Authorization", &auth));
        h.push(("Content-Type", &ct));
        let path = format!("/api/upload-video/nemo_agent/me/{}", self.session);
        request(self.addr, "POST", &path, &h, &body).await
    }

    pub async fn state(&self) -> Raw {
        self.get(&format!("/api/state/nemo_agent/me/{}/latest", self.session))
            .await
    }

    /// The draft's raw JSON text as the state endpoint sent it.
    pub async fn draft_text(&self) -> Option<String> {
        let state = nemo_core::api::parse_state(&self.state().await.core()).unwrap();
        state.state.draft.map(|d| d.raw().get().to_owned())
    }
}

/// Token and session for a new client id.
pub async fn connect(addr: SocketAddr, client_id: &str) -> Client {
    let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
    h.push(("X-Client-Id", client_id));
    let r = request(addr, "POST", "/api/auth/anonymous-token", &h, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    let token = v["data"]["token"].as_str().unwrap().to_owned();
    let user = v["data"]["user_id"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let mut h: Vec<(&str, &str)> = ATTRIBUTION.to_vec();
    h.push(("Authorization", &auth));
    h.push(("Content-Type", "application/json"));
    let r = request(
        addr,
        "POST",
        "/api/tasks/me/with-session/nemo_agent",
        &h,
        br#"{"task_name":"project","language":"en"}"#,
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    Client {
        addr,
        token,
        session: v["data"]["session_id"].as_str().unwrap().to_owned(),
        task: v["data"]["task_id"].as_str().unwrap().to_owned(),
        user,
    }
}

/// A fast server: time runs 1000× faster, the agent is calm.
pub fn fast() -> MockConfig {
    MockConfig {
        time_scale: 0.001,
        start_unix_ms: Some(1_795_262_134_000),
        ..MockConfig::fast()
    }
}

pub async fn server(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("start")
}

/// Splits an SSE body into its frames (without the blank-line terminators).
pub fn frames(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8(body.to_vec()).expect("UTF-8 stream");
    text.split_terminator("\n\n").map(str::to_owned).collect()
}

/// The JSON events (`data: {…}` frames that are not heartbeats).
pub fn events(body: &[u8]) -> Vec<Value> {
    frames(body)
        .iter()
        .filter_map(|f| f.strip_prefix("data: "))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter(|v| v.get("type").is_none())
        .collect()
}

/// Polls a render until it is final (bounded).
pub async fn wait_render(c: &Client, id: &str) -> nemo_core::api::RenderStatus {
    for _ in 0..400 {
        let r = c.get(&format!("/api/render/proxy/lambda/{id}")).await;
        let s = nemo_core::api::parse_render_status(&r.core())
            .unwrap_or_else(|e| panic!("{e}: {}", r.text()));
        if s.phase.is_final() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("render {id} never finished");
}

pub fn render_body(id: &str, session: &str, draft_text: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","sessionId":"{session}","draft":{draft_text},"output":{{"format":"mp4","quality":"high"}}}}"#)
        .into_bytes()
}

/// Submits a render with the draft text exactly as read.
pub async fn submit(c: &Client, id: &str, draft_text: &str, with_attribution: bool) -> Raw {
    let auth = c.auth();
    let mut h: Vec<(&str, &str)> = if with_attribution {
        ATTRIBUTION.to_vec()
    } else {
        Vec::new()
    };
    h.push(("Authorization", &auth));
    h.push(("Content-Type", "application/json"));
    request(
        c.addr,
        "POST",
        "/api/render/proxy/lambda",
        &h,
        &render_body(id, &c.session, draft_text),
    )
    .await
}
