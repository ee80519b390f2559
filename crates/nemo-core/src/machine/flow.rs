//! The command queue and the loop that runs it: commands become ops, ops
//! become requests, answers are routed to the op they belong to.

use std::collections::VecDeque;

use super::*;
use crate::draft::Draft;
use crate::error::{ErrorDetail, ErrorKind, NemoError};
use crate::recovery::{Attempts, Failure};
use crate::render::RenderTracker;
use crate::route::{self, RouteContext, Step};
use crate::time::Instant;
use crate::transport::{TransportError, TransportErrorKind};
use crate::wire::{Request, Response};

impl Session {
    // ----- commands -----

    /// Queues a command; its [`Event::Finished`] carries the returned id.
    pub fn command(&mut self, now: Instant, command: Command) -> CommandId {
        self.next_command += 1;
        let id = CommandId(self.next_command);
        let ops = self.plan(command);
        self.tasks.push_back(Task { id, ops });
        self.advance(now);
        id
    }

    /// Stops everything: the request in flight is abandoned (its answer will
    /// be ignored), queued commands end as cancelled. A render being waited
    /// for keeps running on the server and stays in the frontend's journal.
    pub fn abort(&mut self, now: Instant) {
        let _ = now;
        self.in_flight = None;
        self.transmit = None;
        self.wait_until = None;
        self.attempts = Attempts::default();
        self.auth_attempts = Attempts::default();
        self.trying = None;
        self.retry_pending = false;
        self.paused_call = None;
        while let Some(task) = self.tasks.pop_front() {
            let render = task.ops.iter().find_map(|op| match op {
                Op::Export(e)
                    if !matches!(e.phase, ExportPhase::Draft | ExportPhase::Submit(_)) =>
                {
                    Some(e.id.clone())
                }
                _ => None,
            });
            let delivered = task.ops.front().is_some_and(|op| {
                matches!(op, Op::Instruct(i) if !matches!(i.phase, InstructPhase::Baseline | InstructPhase::Send))
            });
            let error = match render {
                Some(id) => NemoError::new(
                    ErrorKind::Cancelled,
                    format!("Stopped waiting. The render {id} keeps going on the server."),
                )
                .with_detail(ErrorDetail::RenderRunning { id }),
                None if delivered => NemoError::new(
                    ErrorKind::Cancelled,
                    "Stopped. Your message had already reached the agent: check the timeline before sending it again.",
                ),
                None => NemoError::new(ErrorKind::Cancelled, "Stopped."),
            };
            self.events.push_back(Event::Finished {
                command: task.id,
                result: Err(error),
            });
        }
    }

    pub(super) fn plan(&mut self, command: Command) -> VecDeque<Op> {
        let mut ops = VecDeque::new();
        match command {
            Command::Connect => ops.push_back(Op::Connect),
            Command::Message(input) => {
                let ctx = RouteContext {
                    has_draft: match &self.draft {
                        DraftKnowledge::Unknown => true,
                        DraftKnowledge::Known(d) => {
                            d.as_ref().is_some_and(Draft::is_ready_for_export)
                        }
                    },
                };
                let plan = route::route(&input, ctx);
                for note in plan.notes {
                    self.events.push_back(Event::Note(note));
                }
                if let Some(refusal) = plan.refusal {
                    let kind = match refusal {
                        route::Refusal::NothingToExport => ErrorKind::NothingToExport,
                        route::Refusal::NothingToUpload | route::Refusal::Empty => {
                            ErrorKind::BadInput
                        }
                    };
                    let mut error = NemoError::new(kind, refusal.message());
                    if refusal == route::Refusal::NothingToUpload {
                        error = error.with_detail(ErrorDetail::NothingToUpload);
                    }
                    ops.push_back(Op::Refuse(error));
                }
                let steps: Vec<Step> = plan.steps;
                let download = steps.contains(&Step::Download);
                for step in steps {
                    match step {
                        Step::Upload { files, urls } => ops.push_back(Op::Upload { files, urls }),
                        Step::Instruct(text) => ops.push_back(self.instruct(text)),
                        Step::Credits => ops.push_back(Op::Credits),
                        Step::ShowTimeline => ops.push_back(Op::Timeline),
                        Step::Export => ops.push_back(self.export(ExportOptions {
                            download,
                            ..ExportOptions::default()
                        })),
                        Step::Download => {}
                    }
                }
            }
            Command::Instruct(text) => ops.push_back(self.instruct(text)),
            Command::Upload { files, urls } => ops.push_back(Op::Upload { files, urls }),
            Command::Credits => ops.push_back(Op::Credits),
            Command::Timeline => ops.push_back(Op::Timeline),
            Command::Export(options) => ops.push_back(self.export(options)),
            Command::ResumeRender { id, .. } | Command::CancelRender { id }
                if crate::ids::check_id("render id", &id).is_err() =>
            {
                let why = crate::ids::check_id("render id", &id).unwrap_err();
                ops.push_back(Op::Refuse(NemoError::new(
                    ErrorKind::BadInput,
                    format!("{why}."),
                )));
            }
            Command::ResumeRender { id, options } => {
                let mut export = self.export(ExportOptions {
                    render_id: Some(id),
                    ..options
                });
                if let Op::Export(e) = &mut export {
                    e.phase = ExportPhase::Poll {
                        next_at: Instant::ZERO,
                    };
                }
                ops.push_back(export);
            }
            Command::CancelRender { id } => ops.push_back(Op::Cancel { id }),
            Command::ClaimLink => ops.push_back(Op::Claim),
        }
        ops
    }

    // ----- inputs -----

    /// Time has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.wait_until.is_some_and(|t| t <= now) {
            self.wait_until = None;
        }
        if self.in_flight_deadline().is_some_and(|d| d <= now) {
            // The call's overall deadline: its answer, should it still come,
            // is ignored; no retry starts.
            if let Some(flight) = self.in_flight.take() {
                if let Some(t) = &mut self.trying {
                    t.cut = true;
                }
                let failure = Failure::Transport(TransportErrorKind::Timeout);
                match flight.purpose {
                    Purpose::Token | Purpose::Session => {
                        self.on_auth_failure(now, flight.endpoint, failure, "")
                    }
                    Purpose::Op => self.on_failure(now, flight.endpoint, failure, ""),
                }
            }
        }
        let keepalive_timeout = self.config.keepalive_timeout;
        let stream_cap = self.config.stream_cap;
        let still_every = self.config.still_working_every;
        let mut timed_out = None;
        if let Some(Op::Instruct(i)) = current_op!(self) {
            if let InstructPhase::Streaming = i.phase {
                if now >= i.next_still_working
                    && now < i.last_activity + keepalive_timeout
                    && now < i.started + stream_cap
                {
                    let elapsed = now - i.started;
                    while i.next_still_working <= now {
                        i.next_still_working += still_every;
                    }
                    self.events.push_back(Event::StillWorking { elapsed });
                }
                if now >= i.last_activity + keepalive_timeout {
                    timed_out = Some(format!(
                        "The agent sent only keep-alives for {}; stopped listening.",
                        crate::time::human_duration(keepalive_timeout)
                    ));
                } else if now >= i.started + stream_cap {
                    timed_out = Some(format!(
                        "The agent's answer took longer than {}; stopped listening.",
                        crate::time::human_duration(stream_cap)
                    ));
                }
                if timed_out.is_some() {
                    i.phase = InstructPhase::Recover {
                        next_at: now,
                        checks: 0,
                    };
                }
            }
        }
        if let Some(note) = timed_out {
            self.in_flight = None;
            self.events.push_back(Event::Note(format!(
                "{note} Your message is not sent again; checking whether the edit was applied…"
            )));
        }
        self.advance(now);
    }

    /// A complete response to request `id`.
    pub fn handle_response(&mut self, now: Instant, id: RequestId, response: Response) {
        let Some(flight) = self.take_in_flight(id) else {
            return;
        };
        match flight.purpose {
            Purpose::Token => self.on_token(now, &response),
            Purpose::Session => self.on_session(now, &response),
            Purpose::Op => self.on_op_response(now, flight.endpoint, &response),
        }
        self.advance(now);
    }

    /// Request `id` got no response.
    pub fn handle_transport_error(&mut self, now: Instant, id: RequestId, error: TransportError) {
        let Some(flight) = self.take_in_flight(id) else {
            return;
        };
        let failure = Failure::Transport(error.kind);
        match flight.purpose {
            Purpose::Token | Purpose::Session => {
                self.on_auth_failure(now, flight.endpoint, failure, &error.message)
            }
            Purpose::Op => self.on_failure(now, flight.endpoint, failure, &error.message),
        }
        self.advance(now);
    }

    // ----- internals -----

    pub(super) fn take_in_flight(&mut self, id: RequestId) -> Option<InFlight> {
        if self.in_flight.as_ref().is_some_and(|f| f.id == id) {
            self.in_flight.take()
        } else {
            None
        }
    }

    pub(super) fn send(&mut self, now: Instant, purpose: Purpose, request: Request, mode: Mode) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.attempts_for(purpose).total += 1;
        let endpoint = request.endpoint;
        let retry = std::mem::take(&mut self.retry_pending);
        // A call sent again after a new token or session keeps its deadline.
        let resumed = match purpose {
            Purpose::Op => self
                .paused_call
                .take()
                .filter(|t| t.endpoint == endpoint && t.purpose == purpose),
            Purpose::Token | Purpose::Session => None,
        };
        match &mut self.trying {
            Some(t) if retry && t.endpoint == endpoint && t.purpose == purpose => {
                t.attempts += 1;
                t.cut = false;
            }
            _ if resumed.is_some() => {
                self.trying = resumed.map(|t| Trying {
                    attempts: t.attempts + 1,
                    cut: false,
                    ..t
                });
            }
            _ => {
                self.trying = Some(Trying {
                    endpoint,
                    purpose,
                    started: now,
                    attempts: 1,
                    deadline: has_deadline(endpoint).then(|| now + self.config.request_deadline),
                    failed_at: now,
                    cut: false,
                })
            }
        }
        self.in_flight = Some(InFlight {
            id,
            endpoint,
            purpose,
            deadline: self.trying.and_then(|t| t.deadline),
        });
        self.transmit = Some(Transmit { id, request, mode });
    }

    pub(super) fn attempts_for(&mut self, purpose: Purpose) -> &mut Attempts {
        match purpose {
            Purpose::Op => &mut self.attempts,
            Purpose::Token | Purpose::Session => &mut self.auth_attempts,
        }
    }

    pub(super) fn finish_task(&mut self, result: Result<(), NemoError>) {
        if let Some(task) = self.tasks.pop_front() {
            self.events.push_back(Event::Finished {
                command: task.id,
                result,
            });
        }
        self.attempts = Attempts::default();
        self.wait_until = None;
        self.retry_pending = false;
        self.paused_call = None;
    }

    pub(super) fn fail_task(&mut self, error: NemoError) {
        if let Some(Op::Export(e)) = current_op!(self) {
            // A job the server may have accepted stays in the journal.
            if matches!(e.phase, ExportPhase::Submit(_)) && !e.maybe_accepted {
                let id = e.id.clone();
                self.events.push_back(Event::RenderEnded {
                    id,
                    outcome: RenderOutcome::Rejected,
                });
            }
        }
        // A registration link travels in the error alone (`NemoError::link`):
        // no `Event::Link` repeats it.
        self.finish_task(Err(error));
    }

    pub(super) fn advance(&mut self, now: Instant) {
        loop {
            if self.in_flight.is_some() || self.transmit.is_some() {
                return;
            }
            if self.wait_until.is_some_and(|t| t > now) {
                return;
            }
            self.wait_until = None;
            let Some(task) = self.tasks.front_mut() else {
                return;
            };
            if let Some(err) = &self.fatal {
                let err = err.clone();
                self.finish_task(Err(err));
                continue;
            }
            let Some(op) = task.ops.front() else {
                self.finish_task(Ok(()));
                continue;
            };
            if let Op::Refuse(err) = op {
                let err = err.clone();
                self.fail_task(err);
                continue;
            }
            let needs_session = !matches!(op, Op::Credits);
            if self.token.is_none() {
                self.events.push_back(Event::Status("Connecting…".into()));
                let req = self.api.anonymous_token(&self.config.client_id);
                self.send(now, Purpose::Token, req, Mode::Send);
                return;
            }
            if needs_session && self.session.is_none() {
                if self.auth_attempts.new_sessions == 0
                    && self.auth_attempts.backoffs == 0
                    && self.auth_attempts.rate_limited == 0
                    && !matches!(op, Op::Connect)
                {
                    self.events
                        .push_back(Event::Status("Starting a session…".into()));
                }
                let token = self.token.clone().unwrap_or_default();
                let req = self.api.create_session(&token, &self.config.language);
                self.send(now, Purpose::Session, req, Mode::Send);
                return;
            }
            match self.next_step(now) {
                Next::Send(request, mode) => {
                    self.send(now, Purpose::Op, request, mode);
                    return;
                }
                Next::Wait => return,
                Next::Done => {
                    self.attempts.answered();
                    if let Some(task) = self.tasks.front_mut() {
                        task.ops.pop_front();
                    }
                }
                Next::Fail(err) => self.fail_task(err),
            }
        }
    }

    pub(super) fn next_step(&mut self, now: Instant) -> Next {
        let token = self.token.clone().unwrap_or_default();
        let sid = self.session_id().unwrap_or_default().to_owned();
        let draft_known = matches!(self.draft, DraftKnowledge::Known(_));
        let current_draft = self.draft().cloned();
        let Some(task) = self.tasks.front_mut() else {
            return Next::Wait;
        };
        let Some(op) = task.ops.front_mut() else {
            return Next::Done;
        };
        match op {
            Op::Connect => Next::Done,
            Op::Refuse(err) => Next::Fail(err.clone()),
            Op::Credits => Next::Send(self.api.credits(&token), Mode::Send),
            Op::Timeline => Next::Send(self.api.state(&token, &sid), Mode::Send),
            Op::Claim => match self.session.as_ref().and_then(|s| s.task_id.clone()) {
                Some(task_id) => {
                    Next::Send(self.api.claim_token(&token, &task_id, &sid), Mode::Send)
                }
                None => Next::Fail(NemoError::new(
                    ErrorKind::BadInput,
                    "This session has no task id, so no browser link can be made for it.",
                )),
            },
            Op::Cancel { id } => Next::Send(self.api.render_cancel(&token, id), Mode::Send),
            Op::Upload { files, urls } => {
                if !files.is_empty() {
                    let n = files.len();
                    self.events.push_back(Event::Status(format!(
                        "Uploading {n} file{}…",
                        if n == 1 { "" } else { "s" }
                    )));
                    Next::Send(
                        self.api.upload_files(&token, &sid, files.clone()),
                        Mode::Send,
                    )
                } else if !urls.is_empty() {
                    for url in urls.iter() {
                        if let Err(e) = check_url(url) {
                            return Next::Fail(e);
                        }
                    }
                    self.events
                        .push_back(Event::Status("Fetching the linked media…".into()));
                    Next::Send(self.api.upload_urls(&token, &sid, urls), Mode::Send)
                } else {
                    Next::Done
                }
            }
            Op::Instruct(i) => match i.phase {
                InstructPhase::Baseline => {
                    if draft_known {
                        i.baseline = current_draft;
                        i.phase = InstructPhase::Send;
                        self.next_step(now)
                    } else {
                        Next::Send(self.api.state(&token, &sid), Mode::Send)
                    }
                }
                InstructPhase::Send => {
                    // Marked before it leaves: from here on the message is
                    // never sent again.
                    i.phase = InstructPhase::Streaming;
                    i.started = now;
                    i.last_activity = now;
                    i.next_still_working = now + self.config.still_working_every;
                    self.events
                        .push_back(Event::Status("The agent is working…".into()));
                    Next::Send(self.api.run_sse(&token, &sid, &i.text), Mode::Stream)
                }
                InstructPhase::Streaming => Next::Wait,
                InstructPhase::AfterStream => Next::Send(self.api.state(&token, &sid), Mode::Send),
                InstructPhase::Recover { next_at, .. } => {
                    if next_at <= now {
                        Next::Send(self.api.state(&token, &sid), Mode::Send)
                    } else {
                        Next::Wait
                    }
                }
            },
            Op::Export(e) => match &e.phase {
                ExportPhase::Draft => Next::Send(self.api.state(&token, &sid), Mode::Send),
                ExportPhase::Submit(draft) => {
                    let req = self.api.render_submit(&token, &e.id, &sid, draft);
                    let task_id = self.session.as_ref().and_then(|s| s.task_id.clone());
                    self.events.push_back(Event::RenderStarting {
                        id: e.id.clone(),
                        session_id: sid.clone(),
                        task_id,
                        out: e.options.download.then(|| download_path(e)),
                    });
                    self.events.push_back(Event::Status("Rendering…".into()));
                    Next::Send(req, Mode::Send)
                }
                ExportPhase::Poll { next_at } => {
                    if let Some(t) = &e.tracker {
                        if t.expired(now) {
                            return Next::Fail(NemoError::new(
                                ErrorKind::Unconfirmed,
                                format!(
                                    "The render {} is still not finished after {}. It keeps going on the server.",
                                    e.id,
                                    crate::time::human_duration(now - t.submitted())
                                ),
                            )
                            .with_detail(ErrorDetail::RenderRunning { id: e.id.clone() }));
                        }
                    }
                    if *next_at <= now {
                        if e.tracker.is_none() {
                            // A resumed render: start tracking now.
                            e.tracker = Some(RenderTracker::new(self.config.poll, now));
                        }
                        Next::Send(self.api.render_status(&token, &e.id), Mode::Send)
                    } else {
                        Next::Wait
                    }
                }
                ExportPhase::Download {
                    url,
                    fallback,
                    size,
                } => {
                    let dest = download_path(e);
                    let request = match (url, fallback) {
                        (Some(url), false) => self.api.download_url(url),
                        _ => self.api.download_fallback(&token, &e.id),
                    };
                    self.events
                        .push_back(Event::Status(format!("Downloading to {}…", dest.display())));
                    Next::Send(
                        request,
                        Mode::Download {
                            dest,
                            overwrite: e.options.overwrite,
                            expected_size: *size,
                        },
                    )
                }
                ExportPhase::Claim => {
                    let task_id = self.session.as_ref().and_then(|s| s.task_id.clone());
                    match task_id {
                        Some(task_id) if self.config.claim_after_export => {
                            Next::Send(self.api.claim_token(&token, &task_id, &sid), Mode::Send)
                        }
                        _ => Next::Done,
                    }
                }
            },
        }
    }
}
