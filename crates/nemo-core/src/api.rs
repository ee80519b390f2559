//! The NemoVideo API: request builders for every endpoint and tolerant
//! response parsing.
//!
//! Builders return owned [`Request`]s with the headers every call needs
//! (bearer token and the attribution triple; `X-Client-Id` on the
//! anonymous-token call). Parsers accept every documented variant: the
//! `{code,message,data}` and `{success,data|error}` envelopes, the three
//! render-status shapes, FastAPI `{"detail":…}` bodies and bodies that are not
//! JSON at all. Unknown fields are ignored.

use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::draft::Draft;
use crate::error::{ErrorKind, NemoError};
use crate::field::{self, Fields};
use crate::ids;
use crate::secret::Secret;
use crate::wire::{
    Body, Endpoint, FilePart, Header, HeaderValue, Method, Request, Response, Target,
};

/// The API's default base URL.
pub const DEFAULT_API_URL: &str = "https://mega-api-prod.nemovideo.ai";
/// The web app's default base URL (claim links, registration).
pub const DEFAULT_WEB_URL: &str = "https://nemovideo.com";
/// The ADK application name used in paths and bodies.
pub(crate) const APP_NAME: &str = "nemo_agent";
/// Largest accepted upload, in bytes: the seeds' "500MB", read in the
/// decimal megabytes every size is shown in (500,000,000 bytes), so a file
/// shown as "510.0 MB" is never let through a "500 MB" limit.
pub const MAX_UPLOAD_BYTES: u64 = 500_000_000;

/// File extensions the service accepts, by kind.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "avi", "webm", "mkv"];
/// Image extensions the service accepts.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp"];
/// Audio extensions the service accepts.
pub const AUDIO_EXTENSIONS: &[&str] = &["mp3", "wav", "m4a", "aac"];

/// The accepted formats as users read them.
pub const ACCEPTED_FORMATS: &str =
    "video: mp4 mov avi webm mkv · image: jpg png gif webp · audio: mp3 wav m4a aac";

/// The content type for a file name, or `None` when the service does not
/// accept that format.
pub fn content_type_for(filename: &str) -> Option<&'static str> {
    let ext = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        _ => return None,
    })
}

/// Checks a local file against the service's rules (format, size) before
/// any byte is sent, and describes it as a multipart part. `len` is the
/// file's length as the frontend read it.
pub fn file_part(path: impl Into<std::path::PathBuf>, len: u64) -> Result<FilePart, NemoError> {
    let path = path.into();
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(content_type) = content_type_for(&filename) else {
        return Err(unsupported_file(&filename));
    };
    if len > MAX_UPLOAD_BYTES {
        return Err(file_too_large(&filename, Some(len)));
    }
    Ok(FilePart {
        path,
        filename,
        content_type: content_type.to_owned(),
        len,
    })
}

/// The error for a format the service does not accept (code 4001).
pub fn unsupported_file(filename: &str) -> NemoError {
    let what = if filename.is_empty() {
        "This file type".to_owned()
    } else {
        format!("`{filename}`")
    };
    NemoError::new(
        ErrorKind::UnsupportedFile,
        format!("{what} is not a supported format. Accepted formats: {ACCEPTED_FORMATS}."),
    )
    .with_code(Some(4001))
    .with_detail(crate::error::ErrorDetail::UnsupportedFile {
        accepted: VIDEO_EXTENSIONS
            .iter()
            .chain(IMAGE_EXTENSIONS)
            .chain(AUDIO_EXTENSIONS)
            .map(|e| (*e).to_owned())
            .collect(),
    })
}

/// The error for a file over the size limit (code 4002).
pub(crate) fn file_too_large(filename: &str, len: Option<u64>) -> NemoError {
    let size = len.map_or(String::new(), |l| {
        format!(" ({:.1} MB)", l as f64 / 1_000_000.0)
    });
    let what = if filename.is_empty() {
        "The file".to_owned()
    } else {
        format!("`{filename}`")
    };
    NemoError::new(
        ErrorKind::FileTooLarge,
        format!(
            "{what}{size} is larger than the 500 MB limit. Compress it or trim it to a shorter clip, then upload again."
        ),
    )
    .with_code(Some(4002))
}

/// Who is calling: the attribution triple sent on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// `X-Skill-Source`: one of the four flavours, e.g. `video-openapi`.
    pub source: String,
    /// `X-Skill-Version`.
    pub version: String,
    /// `X-Skill-Platform`: `clawhub`, `cursor` or `unknown`.
    pub platform: String,
}

impl Default for Attribution {
    fn default() -> Self {
        Self {
            source: "video-openapi".into(),
            version: "1.0.5".into(),
            platform: "unknown".into(),
        }
    }
}

/// Builds requests for every endpoint.
#[derive(Debug, Clone)]
pub struct Api {
    /// The attribution triple.
    pub attribution: Attribution,
    /// Ask `/run_sse` for the agent's text piece by piece (`"streaming":
    /// true`): ADK sends `partial` pieces only then. Off by default (ADK's
    /// default too); a session turns it on with `Config::text_deltas`.
    pub streaming: bool,
}

fn plain(name: &'static str, value: impl Into<String>) -> Header {
    Header {
        name,
        value: HeaderValue::Plain(value.into()),
    }
}

impl Api {
    /// A builder with the given attribution.
    pub fn new(attribution: Attribution) -> Self {
        Self {
            attribution,
            streaming: false,
        }
    }

    /// The same builder, asking `/run_sse` for text pieces or not.
    pub fn streaming(self, streaming: bool) -> Self {
        Self { streaming, ..self }
    }

    fn headers(&self, token: Option<&Secret>) -> Vec<Header> {
        let mut headers = Vec::with_capacity(5);
        if let Some(token) = token {
            headers.push(Header {
                name: "authorization",
                value: HeaderValue::Sensitive(Secret::new(format!("Bearer {}", token.expose()))),
            });
        }
        headers.push(plain("x-skill-source", &self.attribution.source));
        headers.push(plain("x-skill-version", &self.attribution.version));
        headers.push(plain("x-skill-platform", &self.attribution.platform));
        headers
    }

    fn request(
        &self,
        endpoint: Endpoint,
        method: Method,
        path: String,
        token: Option<&Secret>,
        body: Body,
    ) -> Request {
        Request {
            endpoint,
            method,
            target: Target::Api(path),
            headers: self.headers(token),
            body,
        }
    }

    /// `POST /api/auth/anonymous-token` with `X-Client-Id`.
    pub fn anonymous_token(&self, client_id: &str) -> Request {
        let mut req = self.request(
            Endpoint::AnonymousToken,
            Method::Post,
            "/api/auth/anonymous-token".into(),
            None,
            Body::Empty,
        );
        req.headers.push(Header {
            name: "x-client-id",
            value: HeaderValue::Sensitive(Secret::new(client_id)),
        });
        req
    }

    /// `POST /api/tasks/me/with-session/nemo_agent`.
    pub fn create_session(&self, token: &Secret, language: &str) -> Request {
        let body = serde_json::json!({"task_name": "project", "language": language});
        self.request(
            Endpoint::CreateSession,
            Method::Post,
            format!("/api/tasks/me/with-session/{APP_NAME}"),
            Some(token),
            Body::Json(body.to_string()),
        )
    }

    /// `POST /run_sse`: one user message to the agent.
    pub fn run_sse(&self, token: &Secret, session_id: &str, text: &str) -> Request {
        let mut body = serde_json::json!({
            "app_name": APP_NAME,
            "user_id": "me",
            "session_id": session_id,
            "new_message": {"role": "user", "parts": [{"text": text}]},
        });
        if self.streaming {
            body["streaming"] = Value::Bool(true);
        }
        let mut req = self.request(
            Endpoint::RunSse,
            Method::Post,
            "/run_sse".into(),
            Some(token),
            Body::Json(body.to_string()),
        );
        req.headers.push(plain("accept", "text/event-stream"));
        req
    }

    /// `POST /api/upload-video/nemo_agent/me/<sid>` with one `files` part per file.
    pub fn upload_files(&self, token: &Secret, session_id: &str, files: Vec<FilePart>) -> Request {
        self.request(
            Endpoint::Upload,
            Method::Post,
            format!(
                "/api/upload-video/{APP_NAME}/me/{}",
                ids::segment(session_id)
            ),
            Some(token),
            Body::Multipart(files),
        )
    }

    /// `POST /api/upload-video/nemo_agent/me/<sid>` with URLs as JSON.
    pub fn upload_urls(&self, token: &Secret, session_id: &str, urls: &[String]) -> Request {
        let body = serde_json::json!({"urls": urls, "source_type": "url"});
        self.request(
            Endpoint::Upload,
            Method::Post,
            format!(
                "/api/upload-video/{APP_NAME}/me/{}",
                ids::segment(session_id)
            ),
            Some(token),
            Body::Json(body.to_string()),
        )
    }

    /// `GET /api/credits/balance/simple`.
    pub fn credits(&self, token: &Secret) -> Request {
        self.request(
            Endpoint::Credits,
            Method::Get,
            "/api/credits/balance/simple".into(),
            Some(token),
            Body::Empty,
        )
    }

    /// `GET /api/state/nemo_agent/me/<sid>/latest`.
    pub fn state(&self, token: &Secret, session_id: &str) -> Request {
        self.request(
            Endpoint::State,
            Method::Get,
            format!(
                "/api/state/{APP_NAME}/me/{}/latest",
                ids::segment(session_id)
            ),
            Some(token),
            Body::Empty,
        )
    }

    /// `POST /api/render/proxy/lambda`. The draft goes back byte for byte as
    /// it was read from the state endpoint.
    pub fn render_submit(
        &self,
        token: &Secret,
        render_id: &str,
        session_id: &str,
        draft: &Draft,
    ) -> Request {
        #[derive(Serialize)]
        struct RenderBody<'a> {
            id: &'a str,
            #[serde(rename = "sessionId")]
            session_id: &'a str,
            draft: &'a serde_json::value::RawValue,
            output: Output,
        }
        #[derive(Serialize)]
        struct Output {
            format: &'static str,
            quality: &'static str,
        }
        let body = RenderBody {
            id: render_id,
            session_id,
            draft: draft.raw(),
            output: Output {
                format: "mp4",
                quality: "high",
            },
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| unreachable_json());
        self.request(
            Endpoint::RenderSubmit,
            Method::Post,
            "/api/render/proxy/lambda".into(),
            Some(token),
            Body::Json(json),
        )
    }

    /// `GET /api/render/proxy/lambda/<id>`.
    pub fn render_status(&self, token: &Secret, render_id: &str) -> Request {
        self.request(
            Endpoint::RenderStatus,
            Method::Get,
            format!("/api/render/proxy/lambda/{}", ids::segment(render_id)),
            Some(token),
            Body::Empty,
        )
    }

    /// `POST /api/render/proxy/lambda/<id>/cancel`.
    pub fn render_cancel(&self, token: &Secret, render_id: &str) -> Request {
        self.request(
            Endpoint::RenderCancel,
            Method::Post,
            format!(
                "/api/render/proxy/lambda/{}/cancel",
                ids::segment(render_id)
            ),
            Some(token),
            Body::Empty,
        )
    }

    /// `GET /api/render/proxy/<id>/download`: the fallback when the output URL
    /// cannot be fetched. Carries the bearer token.
    pub fn download_fallback(&self, token: &Secret, render_id: &str) -> Request {
        self.request(
            Endpoint::Download,
            Method::Get,
            format!("/api/render/proxy/{}/download", ids::segment(render_id)),
            Some(token),
            Body::Empty,
        )
    }

    /// `GET <output url>`: the render's file. No credentials go to the CDN.
    pub fn download_url(&self, url: &str) -> Request {
        Request {
            endpoint: Endpoint::Download,
            method: Method::Get,
            target: Target::Absolute(url.to_owned()),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// `POST /api/auth/claim-token`.
    pub fn claim_token(&self, token: &Secret, task_id: &str, session_id: &str) -> Request {
        let body = serde_json::json!({"task_id": task_id, "session_id": session_id});
        self.request(
            Endpoint::ClaimToken,
            Method::Post,
            "/api/auth/claim-token".into(),
            Some(token),
            Body::Json(body.to_string()),
        )
    }
}

// Serialising plain structs of strings and a RawValue cannot fail; this keeps
// the builder infallible without an `unwrap`.
fn unreachable_json() -> String {
    String::from("{}")
}

/// An error the API reported (a non-zero `code`, `success:false`, or a
/// non-2xx status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The API's `code`, when there was one.
    pub code: Option<i64>,
    /// The API's message, the FastAPI `detail`, or the body text.
    pub message: String,
    /// `Retry-After`, when the server sent one.
    pub retry_after: Option<Duration>,
    /// The answer (a 2xx) says the server's own processing failed — JSend's
    /// `error`, or a 5xx repeated in the body — rather than that the
    /// request was refused: it may have taken effect.
    pub server_error: bool,
}

impl ApiError {
    fn describe(&self) -> String {
        match self.code {
            Some(code) => format!("HTTP {} (code {code}): {}", self.status, self.message),
            None => format!("HTTP {}: {}", self.status, self.message),
        }
    }
}

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResponseError {
    /// The API said no.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The body was not what the endpoint answers. The body is kept (cut to
    /// a few kilobytes) for diagnostics.
    #[error("unexpected response from the server: {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What did not match.
        message: String,
        /// The start of the body.
        body: String,
    },
}

const KEPT_BODY: usize = 4096;

fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(KEPT_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_owned()
}

/// Reads `Retry-After` (seconds, possibly fractional) or `retry-after-ms`.
/// HTTP dates are not read: the core has no wall clock; callers fall back to
/// the default wait.
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    if let Some(ms) = crate::wire::find_header(headers, "retry-after-ms") {
        if let Ok(ms) = ms.trim().parse::<f64>() {
            if (0.0..1e12).contains(&ms) {
                return Some(Duration::from_secs_f64(ms / 1000.0));
            }
        }
    }
    let value = crate::wire::find_header(headers, "retry-after")?;
    let secs = value.trim().parse::<f64>().ok()?;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

fn message_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(map) => map.get("msg").and_then(message_of),
                    other => message_of(other),
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Value::Object(map) => field::MESSAGE
            .iter()
            .find_map(|k| map.get(*k).and_then(message_of)),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The code of an error body: a `code` (`errorCode`, `error_code`) on the
/// body, or inside a FastAPI `detail` object or an `error` object.
fn error_code(body: &Value) -> Option<i64> {
    Fields::flat(body).code(field::CODE).or_else(|| {
        ["detail", "error"]
            .iter()
            .filter_map(|k| body.get(*k).filter(|v| v.is_object()))
            .find_map(|inner| Fields::flat(inner).code(field::CODE))
    })
}

/// True when a body is the API's own envelope saying no: it carries an
/// API code (`code`, `errorCode` or `error_code`, ≥ 1000), or `success`
/// false (`false`, `"false"`, `0`). A gateway's bare page,
/// `{"message":"Not Found"}`, or `{"code":404,…}` (a code that only repeats
/// an HTTP status) is not.
pub(crate) fn is_api_refusal(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let f = Fields::flat(&value);
    f.code(field::CODE).is_some_and(|c| c >= 1000) || f.boolean(field::SUCCESS) == Some(false)
}

/// The keys of the REST envelope (`{code,message,data}`), dropped from an
/// answer that carries its payload beside them.
const CODE_ENVELOPE: &[&str] = &[
    "code",
    "errorCode",
    "error_code",
    "message",
    "msg",
    "success",
    "data",
];

/// Splits a response into its payload or the API error it carries.
///
/// On 2xx: `{code:0,data}` → `data`; `{success:true,data}` → `data`;
/// `{code:0,…}` without `data` (or with `data:null`) → the object without
/// the envelope's keys (`code`, `message`, `msg`, `success`);
/// `{success:true,…}` without `data` → the object without `success` (render
/// status shape b as the seeds write it); a code ≠ 0 (`code`, `errorCode` or
/// `error_code`; a number or a numeric string, codes ≥ 1000 included) or
/// `success` false (`false`, `"false"`, `0`) → an [`ApiError`] even with
/// HTTP 200; a JSend envelope (no `code`/`success`, a top-level `status`
/// of `success`/`ok`/`fail`/`error` beside a `data` object) → `data`, or
/// for `fail`/`error` an [`ApiError`] with its `message` (else
/// `data.message`); a JSON list → the list (an upload's files); any other JSON
/// object → the object itself (render status shapes b and c without an
/// envelope). On other statuses: the code and message from whatever the
/// body holds (`{code,message}`, `{detail}`, `{error}`, an HTML page from a
/// proxy, or plain text).
pub fn payload(response: &Response) -> Result<Value, ResponseError> {
    let status = response.status;
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let retry = retry_after(&response.headers);
    let api_error = |code: Option<i64>, message: String| {
        ResponseError::Api(ApiError {
            status,
            code,
            message,
            retry_after: retry,
            server_error: false,
        })
    };
    if !(200..300).contains(&status) {
        let (code, message) = match &parsed {
            Some(body @ Value::Object(_)) => (
                error_code(body).filter(|c| *c != 0),
                message_of(body).unwrap_or_else(|| body_text(&response.body)),
            ),
            _ => (None, body_text(&response.body)),
        };
        let message = if message.is_empty() {
            default_status_text(status).to_owned()
        } else {
            message
        };
        // ADK's api_server says 1002 its own way: `404 {"detail":"Session
        // not found"}`.
        let code = code.or_else(|| {
            let lower = message.to_ascii_lowercase();
            (status == 404 && lower.starts_with("session not found")).then_some(1002)
        });
        return Err(api_error(code, message));
    }
    let body = match parsed {
        Some(Value::Object(map)) => Value::Object(map),
        // A bare list (of uploaded files) is an answer too.
        Some(list @ Value::Array(_)) => return Ok(list),
        _ => {
            return Err(ResponseError::Decode {
                status,
                message: "the body is not a JSON object".into(),
                body: body_text(&response.body),
            })
        }
    };
    let top = Fields::flat(&body);
    // A code that is a word and no success spelling (`"E_UPLOAD"`) is an
    // error code all the same; it has no number, so it goes into the message.
    let word_code = top
        .value(field::CODE)
        .filter(|v| field::code(v).is_none())
        .and_then(field::text)
        .filter(|w| !is_success_word(w));
    let code = top.code(field::CODE).filter(|c| !is_success_code(*c));
    let success = top.boolean(field::SUCCESS);
    let has_code = top.value(field::CODE).is_some();
    let refused = code.is_some_and(|c| c != 0) || word_code.is_some() || success == Some(false);
    if refused {
        let code = code
            .filter(|c| *c != 0)
            .or_else(|| error_code(&body).filter(|c| *c != 0));
        // The render endpoints say why in `error`, the REST ones in
        // `message`: each envelope's own word first.
        let words = if code.is_some() || word_code.is_some() {
            top.value(field::MESSAGE)
        } else {
            top.value(field::ERROR)
                .or_else(|| top.value(field::MESSAGE))
        };
        let message = words.and_then(message_of);
        let message = match (message, code, word_code) {
            (Some(m), _, Some(w)) => format!("{m} (code {w})"),
            (Some(m), _, None) => m,
            (None, Some(code), _) => format!("error code {code}"),
            (None, None, Some(w)) => format!("error code {w}"),
            (None, None, None) => "the request failed".into(),
        };
        return Err(api_error(code, message));
    }
    let Value::Object(mut map) = body else {
        return Ok(body);
    };
    if !has_code && success.is_none() {
        // A JSend envelope: `status` says how the call went (a JSend word,
        // or the HTTP status repeated: `200`, `"503"`), `data` holds the
        // answer (a render's own status among it).
        let said = match map.get("status") {
            Some(Value::Number(n)) => n.as_u64().map(|n| n.to_string()),
            Some(Value::String(s)) => Some(s.trim().to_ascii_lowercase()),
            _ => None,
        };
        // How the call went: `Ok`, or how it failed — `true` when the
        // server's own processing failed (JSend's `error`, as the JSend spec
        // means it, or a 5xx the body repeats: `{"status":504}`), so the
        // request may have taken effect (a submission is followed, not made
        // again); `false` when it was refused (JSend's `fail`, a 4xx). The
        // HTTP status stays the one that came.
        let went: Option<Result<(), bool>> = said.as_deref().and_then(|s| match s {
            "success" | "ok" => Some(Ok(())),
            "fail" => Some(Err(false)),
            "error" => Some(Err(true)),
            s if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) => match s.as_bytes()[0] {
                b'2' => Some(Ok(())),
                b'4' => Some(Err(false)),
                b'5' => Some(Err(true)),
                _ => None,
            },
            _ => None,
        });
        // Whose `status` it is: the envelope's when the object holds
        // nothing but the envelope's keys, or when `data` holds a status of
        // its own (a word or a number) and the only other keys are an
        // envelope's metadata (a request id, a time). A render whose own
        // status is `success` may carry `data` of its own beside its other
        // fields: not an envelope.
        let data_has_status = map.get("data").and_then(Value::as_object).is_some_and(|d| {
            field::STATUS
                .iter()
                .filter_map(|k| d.get(*k))
                .any(|v| v.is_string() || v.is_number())
        });
        let envelope_key = |k: &str| ["status", "data", "message"].contains(&k);
        let metadata = |k: &str| {
            let k: String = k
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            [
                "requestid",
                "reqid",
                "traceid",
                "spanid",
                "timestamp",
                "time",
                "ts",
                "servertime",
                "version",
                "apiversion",
            ]
            .contains(&k.as_str())
        };
        let envelope = map.keys().all(|k| envelope_key(k))
            || (data_has_status && map.keys().all(|k| envelope_key(k) || metadata(k)));
        let went = went.filter(|_| envelope);
        return match (went, map.remove("data")) {
            (Some(Err(server_error)), data) => {
                let message = Fields::flat(&Value::Object(map))
                    .value(field::MESSAGE)
                    .and_then(message_of)
                    .or_else(|| {
                        data.as_ref()
                            .and_then(|d| Fields::flat(d).value(field::MESSAGE))
                            .and_then(message_of)
                    })
                    .unwrap_or_else(|| "the request failed".into());
                Err(ResponseError::Api(ApiError {
                    status,
                    code: None,
                    message,
                    retry_after: retry,
                    server_error,
                }))
            }
            (Some(Ok(())), Some(data @ (Value::Object(_) | Value::Array(_)))) => Ok(data),
            (_, data) => {
                if let Some(data) = data {
                    map.insert("data".into(), data);
                }
                Ok(Value::Object(map))
            }
        };
    }
    if let Some(data) = map.remove("data").filter(|d| !d.is_null()) {
        return Ok(data);
    }
    // The payload sits beside the envelope's keys.
    let envelope: &[&str] = if has_code {
        CODE_ENVELOPE
    } else {
        field::SUCCESS
    };
    for key in envelope {
        map.remove(*key);
    }
    Ok(Value::Object(map))
}

/// A code that says yes: `0`, or `200` (the HTTP status repeated, as
/// many REST envelopes write it).
fn is_success_code(code: i64) -> bool {
    code == 0 || code == 200
}

/// A code given as a word that says yes: `ok`, `success`, `succeeded`,
/// `true` (any case).
fn is_success_word(word: &str) -> bool {
    ["ok", "success", "succeeded", "successful", "true"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

fn default_status_text(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized",
        402 => "payment required",
        403 => "forbidden",
        404 => "not found",
        429 => "too many requests",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        _ => "request failed",
    }
}

/// Parses a response's payload into `T`.
pub fn parse<T: DeserializeOwned>(response: &Response) -> Result<T, ResponseError> {
    let value = payload(response)?;
    serde_json::from_value(value).map_err(|e| ResponseError::Decode {
        status: response.status,
        message: e.to_string(),
        body: body_text(&response.body),
    })
}

/// Reads a value once as JSON, then through the field lookup (`field.rs`).
fn fields_of<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(d)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(D::Error::custom(format!("expected an object, got {value}")))
    }
}

/// `data` of the anonymous-token call: `token` (or `access_token`),
/// `user_id` (string or number), `expires_at`, `credits` (number or string).
#[derive(Debug, Clone, PartialEq)]
pub struct AnonymousToken {
    /// The bearer token (`nmv_usr_…`).
    pub token: Secret,
    /// The anonymous user's id (`anon_…`), used in registration links.
    pub user_id: Option<String>,
    /// When the token expires (RFC 3339).
    pub expires_at: Option<String>,
    /// Free credits that came with it.
    pub credits: Option<f64>,
}

impl<'de> Deserialize<'de> for AnonymousToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = fields_of(d)?;
        let f = Fields::new(&v);
        let token = f
            .text(field::TOKEN)
            .ok_or_else(|| D::Error::missing_field("token"))?;
        Ok(Self {
            token: Secret::new(token),
            user_id: f.id(field::USER_ID),
            expires_at: f.text(field::EXPIRES_AT),
            credits: f.num(field::CREDITS),
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// `data` of the session call: `session_id` (or `sessionId`; a 19-digit
/// string or a number), `task_id`, `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCreated {
    /// The task id (`task_…`), needed for claim links.
    pub task_id: Option<String>,
    /// The session id (a 19-digit string; accepted as a number too).
    pub session_id: String,
    /// The user id, when present.
    pub user_id: Option<String>,
}

impl<'de> Deserialize<'de> for SessionCreated {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = fields_of(d)?;
        let f = Fields::new(&v);
        let session_id = f
            .id(field::SESSION_ID)
            .ok_or_else(|| D::Error::missing_field("session_id"))?;
        Ok(Self {
            task_id: f.id(field::TASK_ID),
            session_id,
            user_id: f.id(field::USER_ID),
        })
    }
}

/// One uploaded file as the server describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadedFile {
    /// The file's name.
    pub filename: String,
    /// `video`, `image` or `audio`.
    pub file_type: String,
    /// Where the server keeps it.
    pub cdn_url: String,
    /// Duration in seconds (video and audio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Width in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
    /// Height in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<f64>,
}

impl UploadedFile {
    fn read(v: &Value) -> Self {
        let f = Fields::new(v);
        Self {
            filename: f.text(field::FILENAME).unwrap_or_default(),
            file_type: f.text(field::FILE_TYPE).unwrap_or_default(),
            cdn_url: f.text(field::CDN_URL).unwrap_or_default(),
            duration: f.num(field::SECONDS),
            width: f.num(field::WIDTH),
            height: f.num(field::HEIGHT),
        }
    }
}

impl<'de> Deserialize<'de> for UploadedFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::read(&fields_of(d)?))
    }
}

/// `data` of the upload call: `files` (also under `data`, or a bare list),
/// and `session_state_applied` (a boolean, `"true"` or `1`). An answer
/// naming no file is an error: files were sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The files, in the order sent.
    pub files: Vec<UploadedFile>,
    /// True when the server already put them into the session's draft.
    pub session_state_applied: Option<bool>,
}

impl<'de> Deserialize<'de> for Uploaded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        // A bare list of files is an answer too.
        let (files, session_state_applied) = match &v {
            Value::Array(items) => (Some(items), None),
            _ => {
                let f = Fields::new(&v);
                (f.array(field::FILES), f.boolean(field::APPLIED))
            }
        };
        let files: Vec<UploadedFile> = files
            .into_iter()
            .flatten()
            .map(UploadedFile::read)
            .collect();
        // Files were sent (the upload is never called without one): an
        // answer naming none (`{"code":0,"message":"upload failed"}`) is
        // no success.
        if files.is_empty() {
            return Err(D::Error::custom("the server accepted none of the files"));
        }
        Ok(Self {
            files,
            session_state_applied,
        })
    }
}

/// `data` of the credits call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Credits {
    /// Credits that can be spent now.
    pub available: f64,
    /// Credits held by running work.
    pub frozen: f64,
    /// `available + frozen`.
    pub total: f64,
}

impl<'de> Deserialize<'de> for Credits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = fields_of(d)?;
        let f = Fields::new(&v);
        let available = f
            .num(field::AVAILABLE)
            .ok_or_else(|| D::Error::missing_field("available"))?;
        let frozen = f.num(field::FROZEN).unwrap_or(0.0);
        Ok(Credits {
            available,
            frozen,
            total: f.num(field::TOTAL).unwrap_or(available + frozen),
        })
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} available, {} frozen, {} total",
            number(self.available),
            number(self.frozen),
            number(self.total)
        )
    }
}

/// Formats a number without a trailing `.0`.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:.2}")
    }
}

/// `data.state` of the state call.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionStateBody {
    /// The draft, when the session has one.
    #[serde(default, deserialize_with = "opt_draft")]
    pub draft: Option<Draft>,
    /// Media information, kept as JSON.
    #[serde(default)]
    pub video_infos: Value,
    /// Canvas settings, kept as JSON.
    #[serde(default)]
    pub canvas_config: Value,
    /// Analyses, kept as JSON.
    #[serde(default)]
    pub video_analyses: Value,
    /// Generated media, kept as JSON.
    #[serde(default)]
    pub generated_media: Value,
}

fn opt_draft<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Draft>, D::Error> {
    let raw: Option<Box<serde_json::value::RawValue>> = Option::deserialize(d)?;
    match raw {
        None => Ok(None),
        Some(raw) if raw.get().trim() == "null" => Ok(None),
        Some(raw) => Draft::from_raw(raw).map(Some).map_err(D::Error::custom),
    }
}

/// `data` of the state call.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    /// The session (`session_id`, `sessionId` or `sid`; a string or a number).
    pub session_id: Option<String>,
    /// The task (`task_id` or `taskId`; a string or a number).
    pub task_id: Option<String>,
    /// The task's name (`task_name` or `taskName`).
    pub task_name: Option<String>,
    /// What the session holds.
    pub state: SessionStateBody,
}

/// Parses the state call: the ids through the field lookup, in `data` or
/// beside the envelope; the draft from the raw body, so that it round-trips
/// byte for byte.
pub fn parse_state(response: &Response) -> Result<SessionState, ResponseError> {
    // `payload` re-serialises `data` through `Value`: it checks the envelope
    // and gives the ids; the draft must stay byte-exact, so the body is read
    // again into a type that borrows the draft as raw JSON.
    let value = payload(response)?;
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        state: Option<SessionStateBody>,
    }
    #[derive(Deserialize)]
    struct Enveloped {
        #[serde(default)]
        data: Option<Inner>,
        #[serde(default)]
        state: Option<SessionStateBody>,
    }
    let decode = |e: serde_json::Error| ResponseError::Decode {
        status: response.status,
        message: e.to_string(),
        body: body_text(&response.body),
    };
    let env: Enveloped = serde_json::from_slice(&response.body).map_err(decode)?;
    let f = Fields::new(&value);
    Ok(SessionState {
        session_id: f.id(field::SESSION_ID),
        task_id: f.id(field::TASK_ID),
        task_name: f.text(field::TASK_NAME),
        state: env
            .data
            .and_then(|d| d.state)
            .or(env.state)
            .unwrap_or_default(),
    })
}

/// `data` of the render submission.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderAccepted {
    /// The render id (echoes the one sent).
    pub id: Option<String>,
    /// Usually `pending`.
    pub status: Option<String>,
    /// Usually 5.
    pub progress: Option<f64>,
}

impl<'de> Deserialize<'de> for RenderAccepted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let f = Fields::new(&v);
        Ok(Self {
            id: f.id(field::RENDER_ID),
            status: f.text(field::STATUS),
            progress: f.num(field::PROGRESS),
        })
    }
}

/// Where a render is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RenderPhase {
    /// Queued on the server, not rendering yet.
    Pending,
    /// Rendering on the server.
    Processing,
    /// Done: the output URL is ready.
    Completed,
    /// Failed on the server.
    Failed,
    /// Cancelled on the server.
    Cancelled,
}

/// What a status word says on its own, before anything else in the answer
/// is looked at: the one reading of the service's status words, for renders
/// and for tool results alike ([`classify_status_word`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusWord {
    /// Waiting to start: `pending`, `queued`, `submitted`, `not started`,
    /// and a negated done word (`not_completed`, `incomplete`,
    /// `unfinished`, `unsuccessful`, `unprocessed`): not done, but no
    /// failure either.
    Waiting,
    /// Working: `processing`, `rendering`, `in progress`, `planned`, any
    /// word ending in `-ing` (`uploading`, `encoding`, `saving`), …
    Working,
    /// Done: `completed`, `succeeded`, `finished`, `ready`, `rendered`,
    /// `processed`, `render_complete`, `RENDER_SUCCESS`, `render-done`, …
    Done,
    /// A done word with errors (`completed_with_errors`): done when the
    /// answer carries a video, failed without one.
    DoneWithErrors,
    /// Failed: only from a failure stem (`failed`, `error`, `timed out`,
    /// `expired`, `aborted`, `rejected`, `stopped`, `killed`,
    /// `terminated`, `invalid`, `denied`, …).
    Failed,
    /// Cancelled: any word about cancelling.
    Cancelled,
    /// A word none of the above covers (`unknown`, `none`, `notified`,
    /// `unassigned` included).
    Unknown,
}

/// Stems that say a word is about failing. A failure is only ever read
/// from one of these, never from a word that is merely unknown.
const FAILURE_STEMS: &[&str] = &[
    "fail",
    "error",
    "timeout",
    "timedout",
    "expire",
    "abort",
    "reject",
    "stop",
    "kill",
    "terminat",
    "invalid",
    "denied",
    "deny",
    "refus",
    "declin",
    "crash",
    "halt",
    "interrupt",
    "broken",
    "missing",
];

/// Whether one part of a status word says done: it holds `complet`,
/// `succe`, `finish`, `rendered` or `processed`, or begins or ends with
/// `done` or `ready` (not `abandoned`); a part ending in `-ing`
/// (`completing`) or `-ion` (`completion`) is not.
fn says_done(p: &str) -> bool {
    !p.ends_with("ing")
        && !p.ends_with("ion")
        && (["complet", "succe", "finish", "rendered", "processed"]
            .iter()
            .any(|s| p.contains(s))
            || ["done", "ready"]
                .iter()
                .any(|s| p.starts_with(s) || p.ends_with(s)))
}

/// Reads a status word whatever its case and separators (`in progress`,
/// `in-progress`, `IN_PROGRESS`, `InProgress`), part by part. In order:
/// the exact waiting and done words; "no errors" said of a finish
/// (`completed_without_errors`) is not about failing; cancelling; `not
/// yet…`/`not ready` (working); a negated finish (`not`, `non` or `un`
/// before a done word, `incomplete`: waiting; before `success`: failed); a
/// done word with `error` as the only failure stem
/// ([`StatusWord::DoneWithErrors`]); failure stems; waiting stems
/// (`awaiting_completion` waits); `progress`/`running`/`working`
/// (`completion_in_progress` works); done — the last part a done word and
/// the others about the render itself (`render_complete`, `RENDER_SUCCESS`,
/// `completed_successfully`; not `preprocessing_complete`,
/// `upload_complete`, `ready_for_render`); the working stems (`render`,
/// `process`, `start`, `plan`, `init`, `-ing`); else
/// [`StatusWord::Unknown`] (`notified`, `none`, `unassigned`, `uploaded`).
pub(crate) fn classify_status_word(word: &str) -> StatusWord {
    let mut parts = field::words(word);
    let w: String = parts.concat();
    match w.as_str() {
        "pending" | "queued" | "queue" | "inqueue" | "waiting" | "submitted" | "created"
        | "new" | "scheduled" | "notstarted" | "unstarted" => return StatusWord::Waiting,
        "completed" | "complete" | "done" | "succeeded" | "success" | "successful" | "finished"
        | "succeed" | "ready" => return StatusWord::Done,
        "unknown" | "" => return StatusWord::Unknown,
        _ => {}
    }
    // "without errors", "no errors", "error free": no failure said.
    let errorish = |p: &str| p == "error" || p == "errors";
    let mut i = 0;
    while i < parts.len() {
        if errorish(&parts[i])
            && i > 0
            && ["no", "without", "zero"].contains(&parts[i - 1].as_str())
        {
            parts.drain(i - 1..=i);
            i -= 1;
        } else if errorish(&parts[i]) && parts.get(i + 1).is_some_and(|n| n == "free") {
            parts.drain(i..=i + 1);
        } else {
            i += 1;
        }
    }
    let w: String = parts.concat();
    let has = |stems: &[&str]| stems.iter().any(|s| w.contains(s));
    let first = parts.first().map(String::as_str).unwrap_or_default();
    let negated = if ["not", "non", "un"].contains(&first) {
        parts.get(1).map(String::as_str)
    } else if first == "incomplete" || first == "incompleted" {
        Some("complete")
    } else {
        ["not", "non", "un"]
            .iter()
            .find_map(|p| first.strip_prefix(p))
            .filter(|rest| says_done(rest) || rest.starts_with("start"))
    };
    let failure_stems: Vec<&&str> = FAILURE_STEMS.iter().filter(|s| w.contains(**s)).collect();
    let done_part = parts.iter().any(|p| says_done(p));
    // The render itself (or how well it went), not one of its steps.
    let about_the_render = |p: &str| {
        says_done(p)
            || [
                "render", "job", "task", "export", "video", "output", "file", "all", "fully",
                "status", "is", "has", "been", "was",
            ]
            .contains(&p)
    };
    if has(&["cancel"]) {
        StatusWord::Cancelled
    } else if w.starts_with("notyet") || w == "notready" {
        StatusWord::Working
    } else if let Some(target) = negated.filter(|t| says_done(t) || t.starts_with("start")) {
        if target.contains("succe") {
            StatusWord::Failed
        } else {
            StatusWord::Waiting
        }
    } else if done_part && failure_stems == [&"error"] {
        StatusWord::DoneWithErrors
    } else if !failure_stems.is_empty() {
        StatusWord::Failed
    } else if has(&["queue", "pend", "wait"]) {
        StatusWord::Waiting
    } else if has(&["progress", "running", "working"]) {
        StatusWord::Working
    } else if parts.last().is_some_and(|p| says_done(p))
        && parts.iter().all(|p| about_the_render(p))
    {
        StatusWord::Done
    } else if has(&["process", "render", "start", "plan", "init"]) || w.ends_with("ing") {
        StatusWord::Working
    } else {
        StatusWord::Unknown
    }
}

impl RenderPhase {
    /// Reads a render's status word ([`classify_status_word`]). Never
    /// fails: an unknown word is [`Completed`](Self::Completed) only when
    /// the progress is absent or at 100 and the answer carries an absolute
    /// http(s) output URL, else [`Processing`](Self::Processing) — polling
    /// goes on until a word says more, within the polling limit.
    pub(crate) fn read(word: &str, progress: Option<f64>, output_url: Option<&str>) -> Self {
        match classify_status_word(word) {
            StatusWord::Waiting => RenderPhase::Pending,
            StatusWord::Working => RenderPhase::Processing,
            StatusWord::Done => RenderPhase::Completed,
            StatusWord::DoneWithErrors if output_url.is_some_and(field::is_web_url) => {
                RenderPhase::Completed
            }
            StatusWord::DoneWithErrors | StatusWord::Failed => RenderPhase::Failed,
            StatusWord::Cancelled => RenderPhase::Cancelled,
            StatusWord::Unknown
                if progress.is_none_or(|p| p >= 100.0)
                    && output_url.is_some_and(field::is_web_url) =>
            {
                RenderPhase::Completed
            }
            StatusWord::Unknown => RenderPhase::Processing,
        }
    }

    /// The phase's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RenderPhase::Pending => "pending",
            RenderPhase::Processing => "processing",
            RenderPhase::Completed => "completed",
            RenderPhase::Failed => "failed",
            RenderPhase::Cancelled => "cancelled",
        }
    }

    /// True once the render will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RenderPhase::Completed | RenderPhase::Failed | RenderPhase::Cancelled
        )
    }
}

/// A render's status, from any of the three shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderStatus {
    /// Where it is.
    pub phase: RenderPhase,
    /// 0–100, when reported.
    pub progress: Option<f64>,
    /// The output's URL once completed.
    pub output_url: Option<String>,
    /// The output's duration in seconds, when reported.
    pub duration: Option<f64>,
    /// The output's size in bytes, when reported.
    pub size: Option<u64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Parses a render status in any documented shape:
/// (a) `data.status`, `data.progress`, `data.outputUrl`;
/// (b) top-level `status`, URL at `output.url`, with or without
/// `"success":true` (or `"code":0`) beside them;
/// (c) `taskId`, top-level `status`, `progress`, `output:{url,duration,size}`.
/// Numbers may be numeric strings; the URL may go by any name of
/// `field::OUTPUT_URL`, the most specific first (`field::output_url`); the
/// status word is read by [`RenderPhase::read`], the progress as a percentage (`"45%"`, `45`, or
/// a fraction `0.45`).
pub fn parse_render_status(response: &Response) -> Result<RenderStatus, ResponseError> {
    let value = payload(response)?;
    let decode = |message: String| ResponseError::Decode {
        status: response.status,
        message,
        body: body_text(&response.body),
    };
    let f = Fields::new(&value);
    if !f.is_object() {
        return Err(decode("the render status is not an object".into()));
    }
    let status_text = f
        .text(field::STATUS)
        .ok_or_else(|| decode("the render status has no `status`".into()))?;
    let output = f.nested(field::OUTPUT);
    let output_url = field::output_url(&f);
    let progress = f.percent(field::PROGRESS).map(|p| p.clamp(0.0, 100.0));
    let phase = RenderPhase::read(&status_text, progress, output_url.as_deref());
    let error = f.text(field::ERROR).or_else(|| {
        f.text(&["message", "msg"])
            .filter(|_| phase == RenderPhase::Failed)
    });
    Ok(RenderStatus {
        phase,
        progress,
        output_url,
        duration: output.and_then(|o| o.num(field::SECONDS)),
        // A size that cannot be a file's length (zero, negative, a
        // fraction, beyond 2^53) is no size at all: a download is never
        // held against it.
        size: output
            .and_then(|o| o.num(field::SIZE))
            .filter(|s| *s >= 1.0 && s.fract() == 0.0 && *s <= 9_007_199_254_740_992.0)
            .map(|s| s as u64),
        error,
    })
}

/// `data` of the claim-token call.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimToken {
    /// The claim token (`clm_…`). Goes into the browser link, so it is the
    /// one credential that may appear in a URL.
    pub claim_token: Secret,
    /// Seconds until it expires.
    pub expires_in: Option<f64>,
}

impl<'de> Deserialize<'de> for ClaimToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = fields_of(d)?;
        let f = Fields::new(&v);
        let token = f
            .text(field::CLAIM_TOKEN)
            .ok_or_else(|| D::Error::missing_field("claim_token"))?;
        Ok(Self {
            claim_token: Secret::new(token),
            expires_in: f.num(field::EXPIRES_IN),
        })
    }
}

/// The browser link for a claim token: `<web>/workspace/claim?ct=<token>`.
pub fn claim_link(web_url: &str, claim: &ClaimToken) -> String {
    format!(
        "{}/workspace/claim?ct={}",
        web_url.trim_end_matches('/'),
        ids::query_value(claim.claim_token.expose())
    )
}

/// The registration link for an anonymous user: `<web>/register?bind=<user_id>`.
pub(crate) fn register_link(web_url: &str, user_id: &str) -> String {
    format!(
        "{}/register?bind={}",
        web_url.trim_end_matches('/'),
        ids::query_value(user_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn code_envelope() {
        let r = resp(
            200,
            r#"{"code":0,"message":"ok","data":{"available":90,"frozen":10,"total":100,"extra":1}}"#,
        );
        let c: Credits = parse(&r).unwrap();
        assert_eq!((c.available, c.frozen, c.total), (90.0, 10.0, 100.0));
        let r = resp(
            200,
            r#"{"code":1001,"message":"token expired","data":null}"#,
        );
        match parse::<Credits>(&r) {
            Err(ResponseError::Api(e)) => {
                assert_eq!(e.code, Some(1001));
                assert_eq!(e.status, 200);
                assert_eq!(e.message, "token expired");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credits_total_defaults_to_sum() {
        let r = resp(200, r#"{"code":0,"data":{"available":"7.5","frozen":2}}"#);
        let c: Credits = parse(&r).unwrap();
        assert_eq!(c.total, 9.5);
        assert_eq!(c.to_string(), "7.50 available, 2 frozen, 9.50 total");
    }

    #[test]
    fn success_envelope() {
        let r = resp(
            200,
            r#"{"success":true,"data":{"id":"render_1","status":"pending","progress":5}}"#,
        );
        let a: RenderAccepted = parse(&r).unwrap();
        assert_eq!(a.id.as_deref(), Some("render_1"));
        let r = resp(200, r#"{"success":false,"error":"duplicate id"}"#);
        let Err(ResponseError::Api(e)) = parse::<RenderAccepted>(&r) else {
            panic!()
        };
        assert_eq!(e.message, "duplicate id");
        assert_eq!(e.code, None);
    }

    #[test]
    fn error_bodies_of_every_kind() {
        let cases = [
            (
                resp(400, r#"{"detail":"X-Client-Id header is required"}"#),
                None,
                "X-Client-Id header is required",
            ),
            (
                resp(
                    422,
                    r#"{"detail":[{"loc":["body","x"],"msg":"field required"},{"msg":"bad"}]}"#,
                ),
                None,
                "field required; bad",
            ),
            (
                resp(402, r#"{"code":402,"message":"free plan export blocked"}"#),
                Some(402),
                "free plan export blocked",
            ),
            (
                resp(502, "<html>Bad Gateway</html>"),
                None,
                "<html>Bad Gateway</html>",
            ),
            (resp(503, ""), None, "service unavailable"),
            (resp(500, r#"{"error":"boom"}"#), None, "boom"),
        ];
        for (r, code, message) in cases {
            let Err(ResponseError::Api(e)) = payload(&r) else {
                panic!("{r:?}")
            };
            assert_eq!(e.code, code, "{r:?}");
            assert_eq!(e.message, message, "{r:?}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(
            retry_after(&h("Retry-After", "30")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&h("retry-after-ms", "1500")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&h("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(retry_after(&h("retry-after", "-3")), None);
        assert_eq!(
            retry_after(&h("retry-after-ms", "1e30")),
            None,
            "no overflow"
        );
        assert_eq!(retry_after(&h("retry-after", "1e300")), None);
    }

    #[test]
    fn non_json_success_is_a_decode_error_with_body() {
        let r = resp(200, "not json");
        let Err(ResponseError::Decode { body, .. }) = payload(&r) else {
            panic!()
        };
        assert_eq!(body, "not json");
    }

    #[test]
    fn render_status_shapes() {
        let a = resp(
            200,
            r#"{"success":true,"data":{"status":"completed","progress":100,"outputUrl":"https://cdn/x.mp4"}}"#,
        );
        let b = resp(
            200,
            r#"{"status":"completed","output":{"url":"https://cdn/x.mp4"}}"#,
        );
        let c = resp(
            200,
            r#"{"status":"completed","progress":100,"output":{"url":"https://cdn/x.mp4","duration":10.5,"size":12345}}"#,
        );
        for r in [&a, &b, &c] {
            let s = parse_render_status(r).unwrap();
            assert_eq!(s.phase, RenderPhase::Completed);
            assert_eq!(s.output_url.as_deref(), Some("https://cdn/x.mp4"));
        }
        let s = parse_render_status(&c).unwrap();
        assert_eq!((s.duration, s.size), (Some(10.5), Some(12345)));
        for nonsense in ["0", "-5", "43.8", "1e300", "\"x\""] {
            let body = format!(
                r#"{{"status":"completed","output":{{"url":"https://cdn/x.mp4","size":{nonsense}}}}}"#
            );
            let s = parse_render_status(&resp(200, &body)).unwrap();
            assert_eq!(s.size, None, "{nonsense}");
        }
        let p = resp(
            200,
            r#"{"code":0,"data":{"status":"processing","progress":"42"}}"#,
        );
        let s = parse_render_status(&p).unwrap();
        assert_eq!((s.phase, s.progress), (RenderPhase::Processing, Some(42.0)));
        let f = resp(200, r#"{"status":"failed","error":"codec error"}"#);
        assert_eq!(
            parse_render_status(&f).unwrap().error.as_deref(),
            Some("codec error")
        );
        // An unknown word keeps the export polling instead of failing it.
        let u = resp(200, r#"{"status":"exploded"}"#);
        assert_eq!(
            parse_render_status(&u).unwrap().phase,
            RenderPhase::Processing
        );
        let none = resp(200, r#"{"progress":5}"#);
        assert!(matches!(
            parse_render_status(&none),
            Err(ResponseError::Decode { .. })
        ));
    }

    #[test]
    fn state_keeps_the_draft_byte_for_byte() {
        let body = r#"{"code":0,"data":{"session_id":5529798706024415232,"state":{"draft":{"t":[{"tt":0,"sg":[{"zz":1.50,"a":"é"}]}],  "unknown":{"x":[1,2]}},"video_infos":[]}}}"#;
        let s = parse_state(&resp(200, body)).unwrap();
        assert_eq!(s.session_id.as_deref(), Some("5529798706024415232"));
        let draft = s.state.draft.unwrap();
        assert_eq!(
            draft.raw().get(),
            r#"{"t":[{"tt":0,"sg":[{"zz":1.50,"a":"é"}]}],  "unknown":{"x":[1,2]}}"#
        );
        let s = parse_state(&resp(200, r#"{"code":0,"data":{"state":{"draft":null}}}"#)).unwrap();
        assert!(s.state.draft.is_none());
    }

    #[test]
    fn render_body_embeds_the_draft_verbatim() {
        let draft = Draft::parse(r#"{"t":[],"weird":1.000}"#).unwrap();
        let api = Api::new(Attribution::default());
        let req = api.render_submit(&Secret::new("tok"), "render_1", "123", &draft);
        let body = req.json_body().unwrap();
        assert!(body.contains(r#""draft":{"t":[],"weird":1.000}"#), "{body}");
        assert!(body.contains(r#""sessionId":"123""#), "{body}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["output"], json!({"format":"mp4","quality":"high"}));
    }

    #[test]
    fn status_words_alone() {
        use StatusWord::*;
        for (word, want) in [
            ("Queued", Waiting),
            ("not started", Waiting),
            ("IN_PROGRESS", Working),
            ("uploading", Working),
            ("not yet ready", Working),
            ("not_ready", Working),
            ("Succeeded", Done),
            ("ready", Done),
            ("not completed", Waiting),
            ("unsuccessful", Failed),
            ("not_successful", Failed),
            ("unfinished", Waiting),
            ("incomplete", Waiting),
            ("NotCompleted", Waiting),
            ("unprocessed", Waiting),
            ("ingest_complete", Unknown),
            ("ingestion_complete", Unknown),
            ("indexing_done", Unknown),
            ("ready_for_render", Working),
            ("ready_to_process", Working),
            ("preprocessing_complete", Working),
            ("upload_complete", Unknown),
            ("nearing_completion", Unknown),
            ("missing", Failed),
            ("completed_without_errors", Done),
            ("completed_no_errors", Done),
            ("error_free", Unknown),
            ("completed_successfully", Done),
            ("RENDER_SUCCESS", Done),
            ("render-done", Done),
            ("rendered", Done),
            ("InProgress", Working),
            ("COMPLETE", Done),
            ("SUBMITTED", Waiting),
            ("PROGRESSING", Working),
            ("ERROR", Failed),
            ("CANCELED", Cancelled),
            ("errored", Failed),
            ("transcoding", Working),
            ("fetching", Working),
            ("preprocessing", Working),
            ("saving", Working),
            ("available", Unknown),
            ("published", Unknown),
            ("none", Unknown),
            ("notified", Unknown),
            ("unassigned", Unknown),
            ("completed_with_errors", DoneWithErrors),
            ("render_complete", Done),
            ("processed", Done),
            ("processing", Working),
            ("completing", Working),
            ("awaiting_completion", Waiting),
            ("completion_in_progress", Working),
            ("abandoned", Unknown),
            ("Terminated", Failed),
            ("user-cancelled", Cancelled),
            ("unknown", Unknown),
            ("", Unknown),
            ("uploaded", Unknown),
            ("ok", Unknown),
        ] {
            assert_eq!(classify_status_word(word), want, "{word}");
        }
    }

    #[test]
    fn api_refusals_and_gateway_pages() {
        for (body, api) in [
            (r#"{"code":1002,"message":"render not found"}"#, true),
            (r#"{"errorCode":"1002","message":"render not found"}"#, true),
            (r#"{"success":false,"error":"render not found"}"#, true),
            (r#"{"success":"false","error":"render not found"}"#, true),
            (r#"{"success":0,"error":"render not found"}"#, true),
            (r#"{"message":"Not Found"}"#, false),
            // A gateway repeating the HTTP status as a code is no API answer.
            (r#"{"code":404,"message":"Not Found"}"#, false),
            (r#"{"code":"404","message":"Not Found"}"#, false),
            (r#"{"errorCode":404}"#, false),
            (r#"{"code":0}"#, false),
            (r#"{"code":404,"success":false}"#, true),
            (r#"{"code":"1002.0"}"#, true),
            (r#"{"success":true}"#, false),
            ("<html>404</html>", false),
            ("[1]", false),
        ] {
            assert_eq!(is_api_refusal(body.as_bytes()), api, "{body}");
        }
    }

    #[test]
    fn run_sse_asks_for_pieces_only_when_streaming() {
        let tok = Secret::new("t");
        let body = |api: &Api| -> Value {
            serde_json::from_str(api.run_sse(&tok, "1", "hi").json_body().unwrap()).unwrap()
        };
        let plain = Api::new(Attribution::default());
        assert_eq!(body(&plain).get("streaming"), None);
        let streaming = plain.streaming(true);
        assert_eq!(body(&streaming)["streaming"], json!(true));
        assert_eq!(body(&streaming)["new_message"]["parts"][0]["text"], "hi");
        assert!(!streaming.streaming(false).streaming);
    }

    #[test]
    fn every_request_carries_attribution_and_token() {
        let api = Api::new(Attribution::default());
        let tok = Secret::new("nmv_usr_x");
        let reqs = [
            api.create_session(&tok, "en"),
            api.run_sse(&tok, "1", "hi"),
            api.upload_urls(&tok, "1", &["https://a/b.mp4".into()]),
            api.credits(&tok),
            api.state(&tok, "1"),
            api.render_status(&tok, "r"),
            api.render_cancel(&tok, "r"),
            api.download_fallback(&tok, "r"),
            api.claim_token(&tok, "t", "1"),
        ];
        for r in &reqs {
            assert_eq!(r.header("authorization"), Some("Bearer nmv_usr_x"), "{r:?}");
            assert_eq!(r.header("x-skill-source"), Some("video-openapi"));
            assert!(r.header("x-skill-version").is_some());
            assert!(r.header("x-skill-platform").is_some());
        }
        let anon = api.anonymous_token("cid");
        assert_eq!(anon.header("x-client-id"), Some("cid"));
        assert_eq!(anon.header("authorization"), None);
        assert!(api.download_url("https://cdn/x.mp4").headers.is_empty());
    }

    #[test]
    fn local_file_checks() {
        let p = file_part("/tmp/clips/a.MOV", 10).unwrap();
        assert_eq!(
            (p.filename.as_str(), p.content_type.as_str()),
            ("a.MOV", "video/quicktime")
        );
        let e = file_part("/tmp/a.pdf", 10).unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::UnsupportedFile, Some(4001)));
        assert!(e.message.contains("mp4 mov avi webm mkv"), "{e}");
        let e = file_part("/tmp/a.mp4", MAX_UPLOAD_BYTES + 1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FileTooLarge);
        assert!(e.message.contains("Compress"), "{e}");
        // The limit is in the unit sizes are shown in: 510,000,000 bytes
        // ("510.0 MB") is over "500 MB".
        let e = file_part("/tmp/a.mp4", 510_000_000).unwrap_err();
        assert!(e.message.contains("(510.0 MB)"), "{e}");
        assert!(file_part("/tmp/a.mp4", 500_000_000).is_ok());
    }

    #[test]
    fn formats() {
        assert_eq!(content_type_for("a.MP4"), Some("video/mp4"));
        assert_eq!(content_type_for("song.m4a"), Some("audio/mp4"));
        assert_eq!(content_type_for("doc.pdf"), None);
        assert_eq!(content_type_for("noext"), None);
    }
}
