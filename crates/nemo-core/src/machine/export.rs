//! Render, wait, download: the export op, the render status answers and
//! the download's end.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::api;
use crate::draft::Draft;
use crate::error::{ErrorDetail, ErrorKind, NemoError};
use crate::recovery::Failure;
use crate::render::RenderTracker;
use crate::time::Instant;
use crate::transport::{DownloadOutcome, TransportError, TransportErrorKind};
use crate::wire::{Endpoint, Response};

#[derive(Debug)]
pub(super) enum ExportPhase {
    Draft,
    Submit(Draft),
    Poll {
        next_at: Instant,
    },
    Download {
        url: Option<String>,
        fallback: bool,
        size: Option<u64>,
    },
    Claim,
}

#[derive(Debug)]
pub(super) struct Export {
    pub(super) options: ExportOptions,
    /// A submission attempt ended without a clear answer (a broken
    /// connection, a 5xx): the server may be rendering this id already.
    pub(super) maybe_accepted: bool,
    pub(super) id: String,
    pub(super) base_id: String,
    pub(super) phase: ExportPhase,
    pub(super) tracker: Option<RenderTracker>,
    pub(super) reported: Option<(RenderPhase, Option<i64>)>,
    /// The API's "not found" answers to status polls in a row.
    pub(super) not_found: u32,
    /// When the first of them came.
    pub(super) not_found_since: Option<Instant>,
}

/// How many of the API's "not found" answers in a row make a render unknown
/// (and forgotten)…
pub(super) const NOT_FOUND_CONFIRMATIONS: u32 = 2;

/// …and over how long at least (a render just submitted may not be visible
/// to every server behind the gateway yet).
pub(super) const NOT_FOUND_SPAN: Duration = Duration::from_secs(30);

impl Session {
    pub(super) fn export(&mut self, options: ExportOptions) -> Op {
        let id = options
            .render_id
            .clone()
            .unwrap_or_else(|| match self.unix_ms {
                Some(ms) => format!("render_{ms}_{:04x}", self.rng.next_u64() & 0xffff),
                None => format!("render_{}", self.rng.next_u64() % 10_000_000_000_000),
            });
        Op::Export(Box::new(Export {
            base_id: id.clone(),
            id,
            maybe_accepted: false,
            options,
            phase: ExportPhase::Draft,
            tracker: None,
            reported: None,
            not_found: 0,
            not_found_since: None,
        }))
    }

    /// A download for request `id` ended.
    pub fn handle_download(
        &mut self,
        now: Instant,
        id: RequestId,
        result: Result<DownloadOutcome, TransportError>,
    ) {
        let Some(flight) = self.take_in_flight(id) else {
            return;
        };
        match result {
            Ok(DownloadOutcome::Complete { bytes }) => {
                self.attempts.answered();
                if let Some(Op::Export(e)) = current_op!(self) {
                    let path = download_path(e);
                    let id = e.id.clone();
                    e.phase = ExportPhase::Claim;
                    self.events.push_back(Event::Downloaded {
                        id: id.clone(),
                        path: path.clone(),
                        bytes,
                    });
                    self.events.push_back(Event::RenderEnded {
                        id,
                        outcome: RenderOutcome::Downloaded(path),
                    });
                }
            }
            Ok(DownloadOutcome::Refused(response)) => {
                self.on_op_response(now, flight.endpoint, &response);
            }
            Err(err) if err.kind == TransportErrorKind::Exists => {
                let render = match current_op!(self) {
                    Some(Op::Export(e)) => Some(e.id.clone()),
                    _ => None,
                };
                let mut e = NemoError::new(
                    ErrorKind::OutputExists,
                    format!(
                        "{}. The render is finished on the server and stays recorded: it can be saved to another path, or over the file.",
                        err.message.trim_end().trim_end_matches('.')
                    ),
                );
                if let Some(id) = render {
                    e = e.with_detail(ErrorDetail::RenderNotSaved { id });
                }
                self.fail_task(e);
            }
            Err(err) => self.on_failure(
                now,
                flight.endpoint,
                Failure::Transport(err.kind),
                &err.message,
            ),
        }
        self.advance(now);
    }

    /// The frontend could not write down the render announced by
    /// [`Event::RenderStarting`] (`render_id`). Before its submission left,
    /// the submission is withdrawn and the command fails: a render nobody
    /// recorded could be paid for and lost. After (a server-assigned id),
    /// the render is followed anyway and a note says it is not recorded.
    pub fn handle_journal_failure(&mut self, now: Instant, render_id: &str, why: &str) {
        let Some(Op::Export(e)) = current_op!(self) else {
            return;
        };
        if e.id != render_id {
            return;
        }
        if matches!(e.phase, ExportPhase::Submit(_)) && !e.maybe_accepted {
            let pending = self
                .transmit
                .as_ref()
                .is_some_and(|t| t.request.endpoint == Endpoint::RenderSubmit);
            if pending {
                self.transmit = None;
                self.in_flight = None;
                let id = e.id.clone();
                self.events.push_back(Event::RenderEnded {
                    id,
                    outcome: RenderOutcome::Rejected,
                });
                self.finish_task(Err(NemoError::new(
                    ErrorKind::BadInput,
                    format!(
                        "The render was not started: it could not be recorded first ({why}), and an unrecorded render could be lost."
                    ),
                )));
                self.advance(now);
                return;
            }
        }
        self.events.push_back(Event::Note(format!(
            "The render {render_id} could not be recorded ({why}); it is followed now but could not be resumed later."
        )));
    }

    /// A 404 to a status poll. Only the API itself (its envelope: a `code`,
    /// or `success: false`), saying so again and again over
    /// [`NOT_FOUND_SPAN`], makes a render unknown: an HTML page or a bare
    /// JSON `{"message":"Not Found"}` from a gateway, or a single answer, is
    /// waited out like a poll that said nothing. `None` lets the answer fail
    /// the render as unknown (and forgotten).
    pub(super) fn on_render_not_found(
        &mut self,
        now: Instant,
        response: &Response,
    ) -> Option<Next> {
        let policy = self.config.poll;
        let api = api::is_api_refusal(&response.body);
        let Some(Op::Export(e)) = current_op!(self) else {
            return None;
        };
        if api {
            let since = *e.not_found_since.get_or_insert(now);
            e.not_found += 1;
            if e.not_found >= NOT_FOUND_CONFIRMATIONS && now - since >= NOT_FOUND_SPAN {
                return None;
            }
        }
        let tracker = e
            .tracker
            .get_or_insert_with(|| RenderTracker::new(policy, now));
        if tracker.expired(now) {
            // Out of time, but nothing proved the render gone: it stays
            // recorded.
            return Some(Next::Fail(
                NemoError::new(
                    ErrorKind::Unconfirmed,
                    format!(
                        "The render {} could not be confirmed: the server kept answering \"not found\" without saying so as the API does. It stays recorded.",
                        e.id
                    ),
                )
                .with_detail(ErrorDetail::RenderRunning { id: e.id.clone() }),
            ));
        }
        let next_at = tracker.observe(now, None);
        e.phase = ExportPhase::Poll { next_at };
        let what = if api {
            "says it does not know"
        } else {
            "answered with a page that is not the API's"
        };
        self.events.push_back(Event::Status(format!(
            "The server {what} render {}; asking again…",
            e.id
        )));
        Some(Next::Wait)
    }

    pub(super) fn on_render_accepted(
        &mut self,
        now: Instant,
        accepted: api::RenderAccepted,
    ) -> Next {
        let policy = self.config.poll;
        let Some(Op::Export(e)) = current_op!(self) else {
            return Next::Done;
        };
        if let Some(server_id) = accepted.id.filter(|id| !id.is_empty() && *id != e.id) {
            if let Err(why) = crate::ids::check_id("render id", &server_id) {
                // Never used in a URL or a file name: it cannot be followed.
                return Next::Fail(NemoError::new(
                    ErrorKind::Protocol,
                    format!("The server named the render in a way that cannot be used, so it was not followed: {why}."),
                ));
            }
            // The server named the job itself: follow its name.
            let old = std::mem::replace(&mut e.id, server_id.clone());
            let out = e.options.download.then(|| download_path(e));
            let session_id = self.session_id().unwrap_or_default().to_owned();
            let task_id = self.task_id().map(str::to_owned);
            self.events.push_back(Event::RenderStarting {
                id: server_id,
                session_id,
                task_id,
                out,
            });
            self.events.push_back(Event::RenderEnded {
                id: old,
                outcome: RenderOutcome::Rejected,
            });
        }
        let Some(Op::Export(e)) = current_op!(self) else {
            return Next::Done;
        };
        let mut tracker = RenderTracker::new(policy, now);
        tracker.observe_submission(accepted.progress);
        e.phase = ExportPhase::Poll {
            next_at: tracker.first_poll(),
        };
        e.tracker = Some(tracker);
        e.reported = Some((RenderPhase::Pending, accepted.progress.map(|p| p as i64)));
        let ev = Event::RenderProgress {
            id: e.id.clone(),
            phase: RenderPhase::Pending,
            progress: accepted.progress,
        };
        self.events.push_back(ev);
        Next::Wait
    }

    pub(super) fn on_render_status(&mut self, now: Instant, status: api::RenderStatus) -> Next {
        let policy = self.config.poll;
        let Some(Op::Export(e)) = current_op!(self) else {
            return Next::Done;
        };
        let key = (status.phase.clone(), status.progress.map(|p| p as i64));
        let mut events = Vec::new();
        if e.reported.as_ref() != Some(&key) {
            e.reported = Some(key);
            events.push(Event::RenderProgress {
                id: e.id.clone(),
                phase: status.phase.clone(),
                progress: status.progress,
            });
        }
        let next = match status.phase {
            RenderPhase::Completed => {
                if let Some(url) = &status.output_url {
                    events.push(Event::RenderCompleted {
                        id: e.id.clone(),
                        url: url.clone(),
                    });
                }
                if e.options.download {
                    e.phase = ExportPhase::Download {
                        url: status.output_url.clone(),
                        fallback: status.output_url.is_none(),
                        size: status.size,
                    };
                    Next::Wait
                } else {
                    events.push(Event::RenderEnded {
                        id: e.id.clone(),
                        outcome: RenderOutcome::Completed(
                            status.output_url.clone().unwrap_or_default(),
                        ),
                    });
                    e.phase = ExportPhase::Claim;
                    Next::Wait
                }
            }
            RenderPhase::Failed | RenderPhase::Cancelled => {
                let cancelled = status.phase == RenderPhase::Cancelled;
                events.push(Event::RenderEnded {
                    id: e.id.clone(),
                    outcome: if cancelled {
                        RenderOutcome::Cancelled
                    } else {
                        RenderOutcome::Failed
                    },
                });
                // The server's words, on one line, with nothing a terminal
                // would act on.
                let reason = status
                    .error
                    .as_deref()
                    .map(|r| crate::ids::printable_line(r).into_owned())
                    .unwrap_or_else(|| "no reason given".into());
                Next::Fail(NemoError::new(
                    ErrorKind::RenderFailed,
                    if cancelled {
                        format!("The render {} was cancelled.", e.id)
                    } else {
                        format!(
                            "The render failed on the server ({reason}). Export again; if it keeps failing, simplify the edit."
                        )
                    },
                ))
            }
            RenderPhase::Pending | RenderPhase::Processing => {
                let tracker = e
                    .tracker
                    .get_or_insert_with(|| RenderTracker::new(policy, now));
                let next_at = tracker.observe(now, status.progress);
                e.phase = ExportPhase::Poll { next_at };
                Next::Wait
            }
        };
        self.events.extend(events);
        next
    }
}

/// Where the video goes: the path asked for, else `<render id>.mp4` after
/// the id the client chose (`base_id`) — the name checked before the render
/// was paid for, even when the server renamed the render or a retry took a
/// new id.
pub(super) fn download_path(e: &Export) -> PathBuf {
    e.options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.mp4", e.base_id)))
}
