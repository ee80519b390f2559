//! [`replay`]: a recording, played back through the core's driver in virtual
//! time, as the transcript a user saw, optionally checked request by request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nemo_core::api::{Attribution, DEFAULT_WEB_URL};
use nemo_core::driver::Driver;
use nemo_core::machine::{Config, Credential, Event, LinkKind, RenderOutcome, Session, SessionRef};
use nemo_core::secret::Secret;
use serde_json::Value;

use crate::check::{compare, Difference};
use crate::command::{PageCommand, RecordedFile};
use crate::har::{Entry, Har};
use crate::redact::MASK;
use crate::transport::{route_key, ReplayTransport};
use crate::HarError;
use nemo_clock::TokioClock;
use nemo_core::time::parse_rfc3339;

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Compare the client's requests with the recorded ones (`--check`).
    pub check: bool,
    /// The web app's base URL for claim and registration links (default:
    /// the service's).
    pub web_url: Option<String>,
    /// Where downloads go (default: a temporary directory, removed after).
    pub dir: Option<PathBuf>,
}

/// What a replay produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// What the user saw, one line per event (`you › …`, `nemo › …`, …).
    pub transcript: Vec<String>,
    /// With [`ReplayOptions::check`]: each difference between the client's
    /// requests and the recorded ones (empty when they agree).
    pub differences: Vec<Difference>,
    /// How many requests the client sent.
    pub requests: usize,
}

impl Replay {
    /// The transcript as text, one line each.
    pub fn transcript_text(&self) -> String {
        let mut s = self.transcript.join("\n");
        s.push('\n');
        s
    }

    /// True when the check found no difference.
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }

    /// The differences as a readable report.
    pub fn report(&self) -> String {
        self.differences
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One user turn to issue again: a title and a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// What the user typed (or the command line).
    pub title: String,
    /// The command.
    pub command: PageCommand,
}

fn json_body(entry: &Entry) -> Option<Value> {
    let text = entry.request.post_data.as_ref()?.text.as_ref()?;
    serde_json::from_str(text).ok()
}

fn path_of(entry: &Entry) -> String {
    route_key(&entry.request.method, &entry.request.url).1
}

fn is_download(entry: &Entry) -> bool {
    let path = path_of(entry);
    entry.request.method.eq_ignore_ascii_case("GET")
        && (!path.starts_with("/api/") || path.ends_with("/download"))
}

/// The turns a recording holds: each page's `_command`; for pages without
/// one (or a log without pages), commands inferred from the requests:
/// `/run_sse` → its text sent to the agent, an upload → upload, a render →
/// export (with download when the file was fetched), credits → credits, a
/// cancel → cancel.
pub fn turns(har: &Har) -> Vec<Turn> {
    let pages = &har.log.pages;
    if !pages.iter().any(|p| p.command.is_some()) {
        return infer(har.log.entries.iter());
    }
    let mut out = Vec::new();
    for page in pages {
        match &page.command {
            Some(command) => out.push(Turn {
                title: if page.title.is_empty() {
                    command.title()
                } else {
                    page.title.clone()
                },
                command: command.clone(),
            }),
            None => out.extend(infer(
                har.log
                    .entries
                    .iter()
                    .filter(|e| e.pageref.as_deref() == Some(page.id.as_str())),
            )),
        }
    }
    out
}

fn infer<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<Turn> {
    let mut out: Vec<PageCommand> = Vec::new();
    let mut last_sse_failed = false;
    let mut any = false;
    for e in entries {
        any = true;
        let method = e.request.method.to_ascii_uppercase();
        let path = path_of(e);
        let ok = (200..300).contains(&e.response.status);
        if method == "POST" && path.ends_with("/run_sse") {
            let text = json_body(e)
                .and_then(|b| {
                    let parts = b.get("new_message")?.get("parts")?.as_array()?.clone();
                    Some(
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join(""),
                    )
                })
                .unwrap_or_default();
            let again = last_sse_failed
                && matches!(out.last(), Some(PageCommand::Instruct { text: t }) if *t == text);
            if !again {
                out.push(PageCommand::Instruct { text });
            }
            last_sse_failed = !ok;
        } else if method == "POST" && path.starts_with("/api/upload-video/") {
            let post = e.request.post_data.as_ref();
            let files: Vec<RecordedFile> = post
                .map(|p| {
                    p.params
                        .iter()
                        .filter_map(|p| {
                            Some(RecordedFile {
                                name: p.file_name.clone()?,
                                content_type: p.content_type.clone().unwrap_or_default(),
                                size: 0,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let urls: Vec<String> = json_body(e)
                .and_then(|b| b.get("urls").and_then(Value::as_array).cloned())
                .map(|u| {
                    u.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let command = PageCommand::Upload { files, urls };
            if out.last() != Some(&command) || ok {
                out.push(command);
            }
        } else if method == "GET" && path == "/api/credits/balance/simple" {
            if out.last() != Some(&PageCommand::Credits) {
                out.push(PageCommand::Credits);
            }
        } else if method == "POST" && path == "/api/render/proxy/lambda" {
            if !matches!(out.last(), Some(PageCommand::Export { .. })) {
                out.push(PageCommand::Export {
                    download: false,
                    out: None,
                });
            }
        } else if method == "POST" && path.ends_with("/cancel") {
            let id = path
                .trim_end_matches("/cancel")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned();
            out.push(PageCommand::Cancel { id });
        } else if is_download(e) {
            if let Some(PageCommand::Export { download, .. }) = out.last_mut() {
                *download = true;
            }
        }
    }
    if out.is_empty() && any {
        out.push(PageCommand::Connect);
    }
    out.into_iter()
        .map(|command| Turn {
            title: command.title(),
            command,
        })
        .collect()
}

/// The client configuration the recording implies: attribution from the
/// headers, the language of the session it created, a user token when no
/// anonymous token was fetched first, the session it continued when it
/// created none.
fn config_for(har: &Har, options: &ReplayOptions) -> Config {
    let entries = &har.log.entries;
    let header = |e: &Entry, name: &str| {
        e.request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.clone())
    };
    let mut config = Config {
        client_id: MASK.into(),
        web_url: options
            .web_url
            .clone()
            .unwrap_or_else(|| DEFAULT_WEB_URL.into()),
        // A frontend that asked for no claim link after its exports (the
        // offline demo) recorded none; replay it the same way.
        claim_after_export: entries
            .iter()
            .any(|e| e.request.url.contains("/api/auth/claim-token")),
        ..Config::default()
    };
    if let Some(e) = entries
        .iter()
        .find(|e| header(e, "x-skill-source").is_some())
    {
        config.attribution = Attribution {
            source: header(e, "x-skill-source").unwrap_or_default(),
            version: header(e, "x-skill-version").unwrap_or_default(),
            platform: header(e, "x-skill-platform").unwrap_or_default(),
        };
    }
    let is = |e: &Entry, suffix: &str| path_of(e).ends_with(suffix);
    if let Some(lang) = entries
        .iter()
        .filter(|e| is(e, "/api/tasks/me/with-session/nemo_agent"))
        .find_map(|e| json_body(e)?.get("language")?.as_str().map(str::to_owned))
    {
        config.language = lang;
    }
    let first_auth = entries
        .iter()
        .position(|e| header(e, "authorization").is_some());
    let first_anon = entries
        .iter()
        .position(|e| is(e, "/api/auth/anonymous-token"));
    let token = first_auth
        .and_then(|i| header(&entries[i], "authorization"))
        .map(|v| v.split_once(' ').map_or(v.clone(), |(_, t)| t.to_owned()))
        .unwrap_or_else(|| MASK.into());
    config.credential = match (first_anon, first_auth) {
        (None, Some(_)) => Credential::User(Secret::new(token)),
        (Some(a), Some(t)) if t < a => Credential::Anonymous {
            token: Secret::new(token),
            user_id: None,
        },
        _ => Credential::None,
    };
    let first_create = entries
        .iter()
        .position(|e| is(e, "/api/tasks/me/with-session/nemo_agent"));
    let named = entries.iter().enumerate().find_map(|(i, e)| {
        let path = path_of(e);
        let from_path = [
            "/api/upload-video/nemo_agent/me/",
            "/api/state/nemo_agent/me/",
        ]
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .and_then(|rest| rest.split('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
        let from_body = json_body(e).and_then(|b| {
            let v = b.get("session_id").or_else(|| b.get("sessionId"))?;
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        });
        from_path.or(from_body).map(|s| (i, s))
    });
    if let Some((i, session_id)) = named {
        if first_create.is_none_or(|c| c > i) {
            let task_id = entries
                .iter()
                .filter(|e| is(e, "/api/auth/claim-token"))
                .find_map(|e| json_body(e)?.get("task_id")?.as_str().map(str::to_owned));
            config.session = Some(SessionRef {
                session_id,
                task_id,
            });
        }
    }
    config
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An event as the line a user would read; `None` for bookkeeping events.
pub fn event_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Status(s) => format!("· {s}"),
        Event::TokenIssued { .. } | Event::ClientIdGenerated(_) => return None,
        Event::Connected {
            session_id,
            created,
            ..
        } => {
            if *created {
                format!("· session {session_id} created")
            } else {
                format!("· session {session_id} continued")
            }
        }
        Event::Note(n) => format!("note: {n}"),
        Event::Generation { message, .. } => format!("generation: {message}"),
        Event::Suggestions {
            message,
            suggestions,
        } => format!("suggestions: {message} {}", suggestions.join(" · ")),
        Event::AgentText { text, actions } => {
            let mut s = format!("nemo › {text}");
            for a in actions {
                s.push_str(&format!("\n  → {}", a.hint()));
            }
            s
        }
        Event::StillWorking { elapsed } => format!(
            "· still working ({})",
            nemo_core::time::human_duration(*elapsed)
        ),
        Event::Change { summary } => format!("change: {summary}"),
        Event::Uploaded { files } => {
            let names: Vec<String> = files
                .iter()
                .map(|f| format!("{} ({})", f.filename, f.file_type))
                .collect();
            format!("uploaded: {}", names.join(", "))
        }
        Event::Credits(c) => format!("credits: {c}"),
        Event::Timeline {
            summary,
            ready_for_export,
        } => {
            if *ready_for_export {
                format!("timeline: {summary}")
            } else {
                format!("timeline: {summary} (not ready for export)")
            }
        }
        Event::RenderStarting { id, .. } => format!("render {id}: starting"),
        Event::RenderProgress {
            id,
            phase,
            progress,
        } => match progress {
            Some(p) => format!("render {id}: {phase:?} {}%", nemo_core::api::number(*p)),
            None => format!("render {id}: {phase:?}"),
        },
        Event::RenderCompleted { id, url } => format!("render {id}: completed {url}"),
        Event::Downloaded { path, bytes, .. } => {
            format!("downloaded: {} ({bytes} bytes)", file_name(path))
        }
        Event::RenderEnded { id, outcome } => {
            let how = match outcome {
                RenderOutcome::Downloaded(p) => format!("downloaded to {}", file_name(p)),
                RenderOutcome::Completed(_) => "completed".into(),
                RenderOutcome::Failed => "failed".into(),
                RenderOutcome::Rejected => "rejected".into(),
                RenderOutcome::Cancelled => "cancelled".into(),
                // An outcome newer than this replayer: the render ended, how is not known here.
                _ => "no longer tracked".into(),
            };
            format!("render {id}: ended, {how}")
        }
        Event::Link { kind, url } => match kind {
            LinkKind::Claim => format!("link: {url}"),
            LinkKind::Register => format!("register: {url}"),
            // A kind newer than this replayer: still a link worth reading.
            _ => format!("link: {url}"),
        },
        Event::Finished { result, .. } => match result {
            Ok(()) => return None,
            Err(e) => {
                let code = e.code.map(|c| format!(", code {c}")).unwrap_or_default();
                format!("error: {e} [{:?}{code}]", e.kind)
            }
        },
        // An event newer than this replayer: not part of the transcript, so
        // transcripts recorded before it stay comparable.
        _ => return None,
    })
}

/// Replays `har` through the core's driver over a [`ReplayTransport`],
/// issuing each page's user turn again; returns the transcript and, with
/// `options.check`, the differences between the client's requests and the
/// recorded ones.
///
/// Run it on a current-thread tokio runtime with paused time (as
/// [`replay_blocking`] does) so that recorded waits take no real time.
pub async fn replay(har: &Har, options: &ReplayOptions) -> Result<Replay, HarError> {
    let turns = turns(har);
    if turns.is_empty() {
        return Err(HarError::Empty);
    }
    let tmp;
    let dir = match &options.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(|e| HarError::io(Path::new("temporary dir"), e))?;
            tmp.path().to_owned()
        }
    };
    let unix = har
        .log
        .entries
        .first()
        .map(|e| e.started_date_time.as_str())
        .or_else(|| har.log.pages.first().map(|p| p.started_date_time.as_str()))
        .and_then(parse_rfc3339)
        .unwrap_or(0);
    let transport = Arc::new(ReplayTransport::new(har).with_download_dir(&dir));
    let session = Session::new(config_for(har, options));
    let mut driver = Driver::new(
        session,
        transport.clone(),
        TokioClock::new().starting_at(unix),
    );
    let mut transcript = Vec::new();
    // Lines name files by their names, not by the replay's directory.
    let prefix = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
    for turn in &turns {
        transcript.push(format!("you › {}", turn.title));
        let command = turn.command.to_command(&dir);
        let lines = &mut transcript;
        let _ = driver
            .run(command, &mut |e: &Event| {
                if let Some(l) = event_line(e) {
                    lines.push(l.replace(&prefix, ""));
                }
            })
            .await;
    }
    let sent = transport.sent();
    let differences = if options.check {
        compare(&har.log.entries, &sent)
    } else {
        Vec::new()
    };
    Ok(Replay {
        transcript,
        differences,
        requests: sent.len(),
    })
}

/// [`replay`] on its own current-thread runtime with paused time, on a
/// thread of its own (so it may be called from inside another runtime).
pub fn replay_blocking(har: &Har, options: &ReplayOptions) -> Result<Replay, HarError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .map_err(|e| HarError::Runtime(e.to_string()))?;
            rt.block_on(replay(har, options))
        })
        .join()
        .unwrap_or_else(|_| Err(HarError::Runtime("the replay thread panicked".into())))
    })
}

impl fmt::Display for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.title)
    }
}
