//! [`replay`]: a recording, played back through the core's driver in virtual
//! time, as the transcript a user saw, optionally checked request by request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nemo_core::api::{Attribution, DEFAULT_WEB_URL};
use nemo_core::driver::Driver;
use nemo_core::ids::printable_line;
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
    /// What the user saw, one entry per event (`you › …`, `nemo › …`, …):
    /// [`Replay::entry`] of the event's [`spoken`](Replay::spoken) pieces.
    /// The server's words never start a line at column 0 (where a line
    /// of nemo's, "Saved …", "error: …", starts): every line of them after
    /// the first is indented under its speaker, and names are one line.
    pub transcript: Vec<String>,
    /// The same entries, each as its pieces: `(speaker, words)`, the words
    /// as received, several lines possibly, not indented (`("nemo › ",
    /// reply)`, then `("  → ", hint)` for each action the reply offers).
    /// For a frontend that prints them through its own output, under the
    /// speaker.
    pub spoken: Vec<Vec<(String, String)>>,
    /// With [`ReplayOptions::check`]: each difference between the client's
    /// requests and the recorded ones (empty when they agree).
    pub differences: Vec<Difference>,
    /// How many requests the client sent.
    pub requests: usize,
}

impl Replay {
    /// An entry's pieces as text: each piece's speaker, then its words,
    /// every line of them after the first indented under the speaker (an
    /// empty line stays empty); the pieces one below the other.
    pub fn entry(pieces: &[(String, String)]) -> String {
        let mut out = String::new();
        for (i, (speaker, words)) in pieces.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let pad = " ".repeat(speaker.chars().count());
            out.push_str(speaker);
            for (j, line) in words.split('\n').enumerate() {
                if j > 0 {
                    out.push('\n');
                    if !line.is_empty() {
                        out.push_str(&pad);
                    }
                }
                out.push_str(line);
            }
        }
        out
    }

    /// The transcript as text, one entry each.
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
        .map(|n| printable_line(&n.to_string_lossy()).into_owned())
        .unwrap_or_default()
}

/// A name or an address the server gave, on one line (a newline in it
/// would start a line of its own).
fn one_line(s: &str) -> String {
    printable_line(s).into_owned()
}

/// One piece of a transcript entry: who speaks (`nemo › `, `note: `, `· `,
/// `  → `, …) and what, as received (lines not indented).
type Piece = (String, String);

fn piece(speaker: impl Into<String>, words: impl Into<String>) -> Piece {
    (speaker.into(), words.into())
}

/// An event as the pieces a user would read; `None` for bookkeeping events.
fn event_pieces(event: &Event) -> Option<Vec<Piece>> {
    let said = match event {
        Event::Status(s) => piece("· ", s),
        Event::TokenIssued { .. } | Event::ClientIdGenerated(_) => return None,
        Event::Connected {
            session_id,
            created,
            ..
        } => {
            let how = if *created { "created" } else { "continued" };
            piece("· ", format!("session {} {how}", one_line(session_id)))
        }
        Event::Note(n) => piece("note: ", n),
        Event::Generation { message, .. } => piece("generation: ", message),
        Event::Suggestions {
            message,
            suggestions,
        } => {
            let said: Vec<String> = suggestions.iter().map(|s| one_line(s)).collect();
            piece("suggestions: ", format!("{message} {}", said.join(" · ")))
        }
        Event::AgentText { text, actions } => {
            let mut pieces = vec![piece("nemo › ", text)];
            pieces.extend(actions.iter().map(|a| piece("  → ", a.hint())));
            return Some(pieces);
        }
        Event::StillWorking { elapsed } => piece(
            "· ",
            format!(
                "still working ({})",
                nemo_core::time::human_duration(*elapsed)
            ),
        ),
        Event::Change { summary } => piece("change: ", summary),
        Event::Uploaded { files } => {
            let names: Vec<String> = files
                .iter()
                .map(|f| format!("{} ({})", one_line(&f.filename), one_line(&f.file_type)))
                .collect();
            piece("uploaded: ", names.join(", "))
        }
        Event::Credits(c) => piece("credits: ", c.to_string()),
        Event::Timeline {
            summary,
            ready_for_export,
        } => {
            if *ready_for_export {
                piece("timeline: ", summary)
            } else {
                piece("timeline: ", format!("{summary} (not ready for export)"))
            }
        }
        Event::RenderStarting { id, .. } => piece(render(id), "starting"),
        Event::RenderProgress {
            id,
            phase,
            progress,
        } => match progress {
            Some(p) => piece(
                render(id),
                format!("{phase:?} {}%", nemo_core::api::number(*p)),
            ),
            None => piece(render(id), format!("{phase:?}")),
        },
        Event::RenderCompleted { id, url } => {
            piece(render(id), format!("completed {}", one_line(url)))
        }
        Event::Downloaded { path, bytes, .. } => piece(
            "downloaded: ",
            format!("{} ({bytes} bytes)", file_name(path)),
        ),
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
            piece(render(id), format!("ended, {how}"))
        }
        Event::Link { kind, url } => match kind {
            LinkKind::Claim => piece("link: ", one_line(url)),
            LinkKind::Register => piece("register: ", one_line(url)),
            // A kind newer than this replayer: still a link worth reading.
            _ => piece("link: ", one_line(url)),
        },
        Event::Finished { result, .. } => match result {
            Ok(()) => return None,
            Err(e) => {
                let code = e.code.map(|c| format!(", code {c}")).unwrap_or_default();
                piece("error: ", format!("{e} [{:?}{code}]", e.kind))
            }
        },
        // An event newer than this replayer: not part of the transcript, so
        // transcripts recorded before it stay comparable.
        _ => return None,
    };
    Some(vec![said])
}

/// The speaker of a render's lines: `render ID: `.
fn render(id: &str) -> String {
    format!("render {}: ", one_line(id))
}

/// An event as the entry a user would read (see [`Replay::entry`]); `None`
/// for bookkeeping events.
pub fn event_line(event: &Event) -> Option<String> {
    event_pieces(event).map(|pieces| Replay::entry(&pieces))
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
    let mut spoken = Vec::new();
    // Lines name files by their names, not by the replay's directory.
    let prefix = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
    for turn in &turns {
        spoken.push(vec![piece("you › ", &turn.title)]);
        let command = turn.command.to_command(&dir);
        let entries = &mut spoken;
        let _ = driver
            .run(command, &mut |e: &Event| {
                if let Some(pieces) = event_pieces(e) {
                    entries.push(
                        pieces
                            .into_iter()
                            .map(|(speaker, words)| (speaker, words.replace(&prefix, "")))
                            .collect(),
                    );
                }
            })
            .await;
    }
    let transcript = spoken.iter().map(|e| Replay::entry(e)).collect();
    let sent = transport.sent();
    let differences = if options.check {
        compare(&har.log.entries, &sent)
    } else {
        Vec::new()
    };
    Ok(Replay {
        transcript,
        spoken,
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

#[cfg(test)]
mod tests {
    use super::{event_line, Replay};
    use nemo_core::api::UploadedFile;
    use nemo_core::gui::GuiAction;
    use nemo_core::machine::Event;

    /// No line of an entry after the first starts at column 0.
    fn indented(entry: &str) -> bool {
        entry
            .lines()
            .skip(1)
            .all(|l| l.is_empty() || l.starts_with(' '))
    }

    #[test]
    fn the_agents_lines_stay_under_its_speaker() {
        let line = event_line(&Event::AgentText {
            text: "ok, done.\nSaved /home/u/final.mp4 (12.0 MB)\n\nerror: your token leaked".into(),
            actions: vec![GuiAction::Export],
        })
        .expect("a line");
        assert_eq!(
            line,
            "nemo › ok, done.\n       Saved /home/u/final.mp4 (12.0 MB)\n\n       error: your token leaked\n  → ready to export: say \"export\""
        );
        assert!(indented(&line), "{line}");
    }

    #[test]
    fn a_servers_names_are_one_line() {
        let line = event_line(&Event::Uploaded {
            files: vec![UploadedFile {
                filename: "city.mp4\nSaved /home/u/x.mp4".into(),
                file_type: "video\nerror: no".into(),
                cdn_url: String::new(),
                duration: None,
                width: None,
                height: None,
            }],
        })
        .expect("a line");
        assert_eq!(
            line,
            "uploaded: city.mp4 Saved /home/u/x.mp4 (video error: no)"
        );
        let line = event_line(&Event::Connected {
            session_id: "s1\nSaved x".into(),
            created: true,
            task_id: None,
        });
        assert_eq!(line.as_deref(), Some("· session s1 Saved x created"));
    }

    #[test]
    fn an_entry_is_its_pieces_under_their_speakers() {
        let pieces = [
            ("note: ".to_owned(), "a\nb".to_owned()),
            ("  → ".to_owned(), "c".to_owned()),
        ];
        assert_eq!(Replay::entry(&pieces), "note: a\n      b\n  → c");
        assert_eq!(Replay::entry(&[]), "");
    }
}
