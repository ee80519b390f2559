//! A message to the agent: the baseline draft, the one `/run_sse`, the
//! event stream as it arrives (text, steps, generation stages) and the
//! recovery after a dropped stream.

use super::*;
use crate::adk::{self, AgentEvent, TextAssembler};
use crate::api::{self, ResponseError};
use crate::draft::Draft;
use crate::gui;
use crate::recovery::Failure;
use crate::sse::{self, Frame};
use crate::time::Instant;
use crate::transport::TransportError;
use crate::wire::{Endpoint, Response};

#[derive(Debug)]
pub(super) enum InstructPhase {
    Baseline,
    Send,
    Streaming,
    AfterStream,
    Recover { next_at: Instant, checks: u32 },
}

#[derive(Debug)]
pub(super) struct Instruct {
    pub(super) text: String,
    pub(super) phase: InstructPhase,
    pub(super) baseline: Option<Draft>,
    pub(super) assembler: TextAssembler,
    pub(super) decoder: sse::Decoder,
    pub(super) started: Instant,
    pub(super) last_activity: Instant,
    pub(super) next_still_working: Instant,
    pub(super) model_error: Option<(String, Option<String>)>,
    pub(super) stream_error: Option<String>,
    /// The words of the agent's last step shown as a status line.
    pub(super) last_step: Option<&'static str>,
    /// The agent is generating a video (its steps are shown).
    pub(super) generating: bool,
    /// A two-stage generation: the raw video was announced ready.
    pub(super) raw_video_ready: bool,
    /// A two-stage generation: post-production finished (said by the
    /// stream, or inferred at the end of a turn that changed the draft
    /// after the raw video).
    pub(super) post_production_done: bool,
    /// The draft changed after the raw video was ready (a tool, a state
    /// delta): post-production at work.
    pub(super) changed_after_raw: bool,
    /// What the tools after the raw video added (music, a title, …), from
    /// their successful results.
    pub(super) added: Vec<adk::Addition>,
    /// The tools called, by call id (the newest few): a result that gives
    /// only the id is named from its call.
    pub(super) calls: std::collections::VecDeque<(String, String)>,
    /// Anything but keep-alives arrived on the stream: the agent took the
    /// message, so it is never sent again (an API code after it recovers as
    /// after a dropped stream).
    pub(super) worked: bool,
    /// Whole texts of the typed dialect sent in a row: pieces of one reply,
    /// shown once anything else arrives (or the stream ends).
    pub(super) typed_text: String,
    /// Deltas were emitted for the message being assembled.
    pub(super) streamed: bool,
}

/// True when `next`, a whole typed text after `before`, starts a sentence
/// after one that ended ("…at 35%." then "Want a title too?"): the space a
/// reply has between them, which the pieces lack. Not inside a name or an
/// address cut after its dot: "IMG_0042." then "MOV …", "example." then
/// "Com/x", "Final." then "Mp4", "3." then "5 seconds".
fn sentences_apart(before: &str, next: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "mp4", "mov", "mp3", "wav", "png", "jpg", "jpeg", "gif", "webm", "mkv", "m4a", "avi",
        "aac", "flac", "webp", "heic", "srt", "txt", "json", "html", "pdf", "com", "org", "net",
        "io", "cn",
    ];
    let first = next.split(char::is_whitespace).next().unwrap_or_default();
    let word = first.trim_end_matches(|c: char| !c.is_alphanumeric());
    before.ends_with(['.', '!', '?'])
        && first.chars().next().is_some_and(char::is_uppercase)
        // A path or an address goes on ("Com/help", "Docs/x").
        && !word.contains(['_', '/', '\\', '.', '@'])
        && !word.contains(|c: char| c.is_ascii_digit())
        && !EXTENSIONS.contains(&word.to_ascii_lowercase().as_str())
}

impl Instruct {
    /// A generation stage reached, from a tool result or a state delta:
    /// the raw video is told once, as soon as it is there.
    fn reach(&mut self, stage: adk::GenerationStage, out: &mut Vec<Event>) {
        match stage {
            adk::GenerationStage::RawVideoReady { url } if !self.raw_video_ready => {
                self.raw_video_ready = true;
                out.push(Event::Generation {
                    stage: GenerationStage::RawVideoReady,
                    url,
                    message: "The raw video is ready; post-production (music, titles, effects) follows on its own.".into(),
                });
            }
            adk::GenerationStage::PostProductionDone => self.post_production_done = true,
            _ => {}
        }
    }

    /// The typed dialect's texts sent in a row, as one reply (when any).
    fn flush_typed(&mut self) -> Option<Event> {
        if self.typed_text.is_empty() {
            return None;
        }
        let text = std::mem::take(&mut self.typed_text);
        self.streamed = false;
        let message = self.assembler.push(&text, false)?;
        let t = gui::translate(&message);
        (!t.text.is_empty() || !t.actions.is_empty()).then_some(Event::AgentText {
            text: t.text,
            actions: t.actions,
        })
    }

    /// After the turn: post-production is done when the stream said so, or
    /// when the draft changed after the raw video and the turn ended.
    pub(super) fn post_production_over(&self) -> bool {
        self.post_production_done || (self.raw_video_ready && self.changed_after_raw)
    }
}

impl Session {
    pub(super) fn instruct(&self, text: String) -> Op {
        Op::Instruct(Box::new(Instruct {
            text,
            phase: InstructPhase::Baseline,
            baseline: None,
            assembler: TextAssembler::new(),
            decoder: sse::Decoder::new(),
            started: Instant::ZERO,
            last_activity: Instant::ZERO,
            next_still_working: Instant::ZERO,
            model_error: None,
            stream_error: None,
            last_step: None,
            generating: false,
            raw_video_ready: false,
            post_production_done: false,
            changed_after_raw: false,
            added: Vec::new(),
            calls: std::collections::VecDeque::new(),
            worked: false,
            typed_text: String::new(),
            streamed: false,
        }))
    }

    /// The event stream for request `id` started (status 2xx, event stream).
    pub fn handle_stream_open(&mut self, now: Instant, id: RequestId) {
        if !self.is_in_flight(id) {
            return;
        }
        if let Some(Op::Instruct(i)) = current_op!(self) {
            i.phase = InstructPhase::Streaming;
            i.started = now;
            i.last_activity = now;
            i.next_still_working = now + self.config.still_working_every;
        }
    }

    /// A chunk of the event stream for request `id`.
    pub fn handle_stream_chunk(&mut self, now: Instant, id: RequestId, chunk: &[u8]) {
        if !self.is_in_flight(id) {
            return;
        }
        let mut frames = std::mem::take(&mut self.frames);
        if let Some(Op::Instruct(i)) = current_op!(self) {
            i.decoder.feed(chunk, &mut frames);
        }
        for frame in frames.drain(..) {
            self.on_frame(now, frame);
            if !self.is_in_flight(id) {
                break;
            }
        }
        self.frames = frames;
        self.advance(now);
    }

    /// The event stream for request `id` ended: `Ok` when the server closed
    /// it, `Err` when the connection broke.
    pub fn handle_stream_end(
        &mut self,
        now: Instant,
        id: RequestId,
        result: Result<(), TransportError>,
    ) {
        if self.take_in_flight(id).is_none() {
            return;
        }
        let Some(Op::Instruct(i)) = current_op!(self) else {
            return;
        };
        let truncated = i.decoder.finish();
        if let Some(reply) = i.flush_typed() {
            self.events.push_back(reply);
        }
        if let Some(text) = i.assembler.finish() {
            let t = gui::translate(&text);
            self.events.push_back(Event::AgentText {
                text: t.text,
                actions: t.actions,
            });
        }
        // A stream cut after the agent's complete answer lost nothing the
        // user needs: only a broken connection before it calls for recovery.
        let answered = i.assembler.said_anything();
        match result {
            Err(err) => {
                self.on_failure(now, Endpoint::RunSse, Failure::StreamDropped, &err.message)
            }
            Ok(()) if truncated && !answered => self.on_failure(
                now,
                Endpoint::RunSse,
                Failure::StreamDropped,
                "the stream was cut",
            ),
            Ok(()) => {
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    i.phase = InstructPhase::AfterStream;
                }
            }
        }
        self.advance(now);
    }

    /// After a new token or session, a message refused before its stream
    /// started may be sent again (the server never took it).
    pub(super) fn rearm_instruct(&mut self) {
        if let Some(Op::Instruct(i)) = current_op!(self) {
            if matches!(i.phase, InstructPhase::Streaming) {
                i.phase = InstructPhase::Send;
            }
        }
    }

    pub(super) fn recover_stream(&mut self, now: Instant, why: &str) {
        let first = self.config.recover_first;
        if let Some(Op::Instruct(i)) = current_op!(self) {
            i.phase = InstructPhase::Recover {
                next_at: now + first,
                checks: 0,
            };
            self.events.push_back(Event::Note(format!(
                "{why} Your message is not sent again (that could spend credits twice); checking in {} whether the edit was applied…",
                crate::time::human_duration(first)
            )));
        }
    }

    pub(super) fn on_frame(&mut self, now: Instant, frame: Frame) {
        let text_deltas = self.config.text_deltas;
        let Some(Op::Instruct(i)) = current_op!(self) else {
            return;
        };
        let (events, typed) = match frame {
            Frame::Event(e) => adk::classify_dialect(&e.data),
            Frame::Comment(_) => (vec![AgentEvent::KeepAlive], false),
            Frame::Retry(_) | Frame::LineTooLong | Frame::EventTooLarge => return,
        };
        let mut out = Vec::new();
        let mut terminal = false;
        let mut refused = None;
        // The raw video announced by this event: its own state delta is
        // the raw video's, not post-production's.
        let raw_before = i.raw_video_ready;
        for ev in events {
            i.worked |= !matches!(ev, AgentEvent::KeepAlive | AgentEvent::ServiceError { .. });
            // A typed reply sent as texts in a row ends with anything else,
            // or with a trailing notice (a message of its own).
            let notice = matches!(&ev, AgentEvent::Text { text, .. }
                if text.trim_start().to_lowercase().starts_with(adk::TEMPORARY_ISSUE));
            if notice || !matches!(ev, AgentEvent::KeepAlive | AgentEvent::Text { .. }) {
                out.extend(i.flush_typed());
            }
            match ev {
                AgentEvent::KeepAlive | AgentEvent::TurnComplete => {}
                AgentEvent::Text {
                    text,
                    partial: false,
                } if typed && !notice && !i.assembler.has_pending() => {
                    i.last_activity = now;
                    let text = if sentences_apart(&i.typed_text, &text) {
                        format!(" {text}")
                    } else {
                        text
                    };
                    if text_deltas {
                        out.push(Event::AgentTextDelta { text: text.clone() });
                    }
                    i.typed_text.push_str(&text);
                }
                // Something the client does not know is still the agent
                // at work, not a keep-alive.
                AgentEvent::Unknown => i.last_activity = now,
                AgentEvent::Text { text, partial } => {
                    i.last_activity = now;
                    if partial && text_deltas && !text.is_empty() {
                        i.streamed = true;
                        out.push(Event::AgentTextDelta { text: text.clone() });
                    }
                    let message = i.assembler.push(&text, partial);
                    if !partial {
                        // A whole text with no pieces before it (the typed
                        // and `meta` dialects): one delta, the whole text.
                        if let (Some(message), true, false) = (&message, text_deltas, i.streamed) {
                            out.push(Event::AgentTextDelta {
                                text: message.clone(),
                            });
                        }
                        i.streamed = false;
                    }
                    if let Some(message) = message {
                        let t = gui::translate(&message);
                        if !t.text.is_empty() || !t.actions.is_empty() {
                            out.push(Event::AgentText {
                                text: t.text,
                                actions: t.actions,
                            });
                        }
                    }
                }
                AgentEvent::ToolCall {
                    ref id, ref name, ..
                } => {
                    i.last_activity = now;
                    if let Some(id) = id.as_ref().filter(|_| !name.is_empty()) {
                        if i.calls.len() >= 64 {
                            i.calls.pop_front();
                        }
                        i.calls.push_back((id.clone(), name.clone()));
                    }
                    // During a generation (minutes of work), each step in
                    // words, never the raw call; once per step. Quick edits
                    // keep the one "The agent is working…" line.
                    if let Some(words) = adk::step_words(&ev) {
                        i.generating |= words == adk::GENERATING;
                        if i.generating && i.last_step != Some(words) {
                            i.last_step = Some(words);
                            out.push(Event::Status(capitalised(words)));
                        }
                    }
                }
                AgentEvent::ToolResult {
                    ref id, ref name, ..
                } => {
                    i.last_activity = now;
                    let stage = adk::stage_of(&ev);
                    // A result that says post-production is done may
                    // itself have added something (the last effect).
                    let adds = !matches!(stage, Some(adk::GenerationStage::RawVideoReady { .. }));
                    if raw_before && adds && adk::succeeded(&ev) {
                        i.changed_after_raw = true;
                        // What a tool added comes from its successful
                        // result, never from the call (it may fail).
                        let name = match (name.is_empty(), id) {
                            (true, Some(id)) => i
                                .calls
                                .iter()
                                .rev()
                                .find(|(c, _)| c == id)
                                .map_or("", |(_, n)| n.as_str()),
                            _ => name.as_str(),
                        };
                        if let Some(a) = adk::Addition::of_tool(name) {
                            if !i.added.contains(&a) {
                                i.added.push(a);
                            }
                        }
                    }
                    if let Some(stage) = stage {
                        i.reach(stage, &mut out);
                    }
                }
                AgentEvent::Stage(stage) => {
                    i.last_activity = now;
                    i.reach(stage, &mut out);
                }
                AgentEvent::StateChanged => {
                    i.last_activity = now;
                    i.changed_after_raw |= raw_before;
                }
                AgentEvent::ServiceError { code, message } => {
                    // Final at once: nothing after the code counts, however
                    // long the server keeps the stream open.
                    refused = Some((code, message));
                    terminal = true;
                    break;
                }
                AgentEvent::ModelError { code, message } => {
                    i.last_activity = now;
                    i.model_error = Some((code, message));
                }
                AgentEvent::StreamError { message } => {
                    i.stream_error = Some(message);
                    terminal = true;
                }
            }
        }
        if terminal {
            out.extend(i.flush_typed());
            let worked = i.worked;
            if let Some(text) = i.assembler.finish() {
                let t = gui::translate(&text);
                out.push(Event::AgentText {
                    text: t.text,
                    actions: t.actions,
                });
            }
            i.decoder.finish();
            if refused.is_none() {
                i.phase = InstructPhase::AfterStream;
            }
            self.in_flight = None;
            self.events.extend(out);
            if let Some((code, message)) = refused {
                self.on_code_in_stream(now, code, &message, worked);
            }
            return;
        }
        self.events.extend(out);
    }

    /// An API code inside the stream (`{"type":"error","code":1001}`), the
    /// stream already dropped: the same handling as the code in an error
    /// envelope on HTTP 200 (a new token or session and the message sent
    /// again, a wait, or the error with its link) while only keep-alives
    /// came before it. Once the agent worked (a text, a tool, a change),
    /// the message is never sent again: a code that would send it again
    /// recovers as after a dropped stream (the state tells whether the edit
    /// was applied).
    fn on_code_in_stream(&mut self, now: Instant, code: i64, message: &str, worked: bool) {
        let resends = crate::recovery::token_refused(200, Some(code)) || matches!(code, 1002 | 429);
        if worked && resends {
            self.recover_stream(
                now,
                &format!(
                    "The server stopped the agent's answer (code {code}) after the agent had started working."
                ),
            );
            return;
        }
        let failure = Failure::Api {
            status: 200,
            code: Some(code),
            retry_after: None,
            server_error: false,
        };
        self.on_failure(now, Endpoint::RunSse, failure, message);
    }

    pub(super) fn on_sse_answer(&mut self, now: Instant, response: &Response) {
        // Not an event stream: an error envelope, or a stream served with
        // the wrong content type.
        match api::payload(response) {
            Err(err @ ResponseError::Api(_)) => {
                let (failure, message) = failure_of(&err);
                self.on_failure(now, Endpoint::RunSse, failure, &message);
            }
            _ => {
                let id = RequestId(self.next_request);
                self.in_flight = Some(InFlight {
                    id,
                    endpoint: Endpoint::RunSse,
                    purpose: Purpose::Op,
                    deadline: None,
                });
                self.handle_stream_open(now, id);
                self.handle_stream_chunk(now, id, &response.body);
                self.handle_stream_end(now, id, Ok(()));
            }
        }
    }
}
