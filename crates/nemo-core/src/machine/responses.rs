//! Answers to op requests: credits, uploads, renders, claim links, and
//! the state (timeline, the edit an agent turn made, the draft to export).

use super::*;
use crate::adk::Addition;
use crate::api::{self, ResponseError};
use crate::draft::{self, Draft, TrackKind};
use crate::error::{ErrorKind, NemoError};
use crate::recovery::{self, Failure};
use crate::time::Instant;
use crate::wire::{Endpoint, Response};

impl Session {
    pub(super) fn on_op_response(&mut self, now: Instant, endpoint: Endpoint, response: &Response) {
        let result =
            match endpoint {
                Endpoint::Credits => api::parse::<Credits>(response).map(|c| {
                    self.events.push_back(Event::Credits(c));
                    Next::Done
                }),
                Endpoint::State => {
                    api::parse_state(response).map(|s| self.on_state(now, s.state.draft))
                }
                Endpoint::Upload => api::parse::<api::Uploaded>(response).map(|u| {
                    self.draft = DraftKnowledge::Unknown;
                    self.events.push_back(Event::Uploaded { files: u.files });
                    self.after_upload_part()
                }),
                Endpoint::RunSse => return self.on_sse_answer(now, response),
                Endpoint::RenderSubmit => api::parse::<api::RenderAccepted>(response)
                    .map(|a| self.on_render_accepted(now, a)),
                Endpoint::RenderStatus if response.status == 404 => {
                    match self.on_render_not_found(now, response) {
                        Some(next) => Ok(next),
                        None => api::parse_render_status(response)
                            .map(|s| self.on_render_status(now, s)),
                    }
                }
                Endpoint::RenderStatus => {
                    if let Some(Op::Export(e)) = current_op!(self) {
                        e.not_found = 0;
                        e.not_found_since = None;
                    }
                    api::parse_render_status(response).map(|s| self.on_render_status(now, s))
                }
                Endpoint::RenderCancel => api::payload(response).map(|_| {
                    if let Some(Op::Cancel { id }) = current_op!(self) {
                        let id = id.clone();
                        self.events
                            .push_back(Event::Note(format!("Render {id} cancelled.")));
                        self.events.push_back(Event::RenderEnded {
                            id,
                            outcome: RenderOutcome::Cancelled,
                        });
                    }
                    Next::Done
                }),
                Endpoint::ClaimToken => match api::parse::<api::ClaimToken>(response) {
                    Ok(c) => {
                        self.events.push_back(Event::Link {
                            kind: LinkKind::Claim,
                            url: api::claim_link(&self.config.web_url, &c),
                        });
                        Ok(Next::Done)
                    }
                    // After an export the link is a bonus: its failure is not the
                    // export's.
                    Err(_) if matches!(current_op!(self), Some(Op::Export(_))) => Ok(Next::Done),
                    Err(e) => Err(e),
                },
                Endpoint::Download => {
                    Err(api::payload(response)
                        .err()
                        .unwrap_or(ResponseError::Decode {
                            status: response.status,
                            message: "the download was refused".into(),
                            body: String::new(),
                        }))
                }
                Endpoint::AnonymousToken | Endpoint::CreateSession => Ok(Next::Wait),
            };
        match result {
            Ok(Next::Done) => {
                self.attempts.answered();
                if let Some(task) = self.tasks.front_mut() {
                    task.ops.pop_front();
                }
            }
            Ok(Next::Fail(e)) => self.fail_task(e),
            Ok(Next::Wait | Next::Send(..)) => {
                self.attempts.answered();
            }
            Err(err) => {
                let (failure, message) = failure_of(&err);
                let failure = self.about_the_token(endpoint, response, failure);
                self.on_failure(now, endpoint, failure, &message);
            }
        }
    }

    /// A token refusal (1001, a 401 without a code) counts only from a
    /// request that carried our token and as the API's JSON: the output
    /// URL's CDN was sent no token, and a page (a body that is there and is
    /// no JSON object: a gateway, a login portal) is not the API. Those are
    /// [`Failure::Refused`]. An empty or blank body is the API's bare 401: a
    /// token refusal.
    fn about_the_token(
        &mut self,
        endpoint: Endpoint,
        response: &Response,
        failure: Failure,
    ) -> Failure {
        let Failure::Api { status, code, .. } = failure else {
            return failure;
        };
        if !recovery::token_refused(status, code) {
            return failure;
        }
        let tokenless = endpoint == Endpoint::Download
            && matches!(current_op!(self), Some(Op::Export(e)) if matches!(
                e.phase,
                ExportPhase::Download { url: Some(_), fallback: false, .. }
            ));
        // An empty (or blank) body is the API's own bare 401, not a page.
        let blank = response.body.iter().all(u8::is_ascii_whitespace);
        let page = !blank
            && serde_json::from_slice::<serde_json::Value>(&response.body)
                .map_or(true, |v| !v.is_object());
        if tokenless || page {
            Failure::Refused { status }
        } else {
            failure
        }
    }

    pub(super) fn on_state(&mut self, now: Instant, new_draft: Option<Draft>) -> Next {
        self.draft = DraftKnowledge::Known(new_draft.clone());
        let recover_every = self.config.recover_every;
        let recover_checks = self.config.recover_checks;
        let Some(op) = current_op!(self) else {
            return Next::Done;
        };
        match op {
            Op::Timeline => {
                let (summary, ready) = match &new_draft {
                    Some(d) => (d.timeline().to_string(), d.is_ready_for_export()),
                    None => (
                        "Timeline (empty): nothing on the timeline yet".to_owned(),
                        false,
                    ),
                };
                self.events.push_back(Event::Timeline {
                    summary,
                    ready_for_export: ready,
                });
                Next::Done
            }
            Op::Instruct(i) => match i.phase {
                InstructPhase::Baseline => {
                    i.baseline = new_draft;
                    i.phase = InstructPhase::Send;
                    Next::Wait
                }
                InstructPhase::AfterStream => {
                    let change = match &new_draft {
                        Some(d) => draft::diff(i.baseline.as_ref(), d),
                        None => draft::DraftChange::default(),
                    };
                    let said = i.assembler.said_anything();
                    let model_error = i.model_error.take();
                    let stream_error = i.stream_error.take();
                    let mut events = Vec::new();
                    if !said && !change.is_empty() {
                        events.push(Event::Change {
                            summary: change.summary(),
                        });
                    }
                    events.extend(generation_report(i, new_draft.as_ref(), false));
                    let outcome = if let Some(message) = stream_error {
                        Next::Fail(NemoError::new(
                            ErrorKind::Unconfirmed,
                            format!("The agent failed while working: {message}. Your message was not sent again; check the timeline, then try again if needed."),
                        ))
                    } else if let (Some((code, message)), false) = (model_error, said) {
                        Next::Fail(NemoError::new(
                            ErrorKind::Agent,
                            format!(
                                "The agent reported an error ({code}{}). Try rephrasing the request.",
                                message.map(|m| format!(": {m}")).unwrap_or_default()
                            ),
                        ))
                    } else {
                        if !said && change.is_empty() {
                            events.push(Event::Note(
                                "The agent finished without a reply, and the timeline did not change.".into(),
                            ));
                        }
                        Next::Done
                    };
                    self.events.extend(events);
                    outcome
                }
                InstructPhase::Recover { checks, .. } => {
                    let change = match &new_draft {
                        Some(d) => draft::diff(i.baseline.as_ref(), d),
                        None => draft::DraftChange::default(),
                    };
                    if !change.is_empty() {
                        self.events.push_back(Event::Change {
                            summary: change.summary(),
                        });
                        self.events
                            .push_back(Event::Note("The edit was applied.".into()));
                        // A generation whose stream dropped: every track and
                        // the choice, as after a whole stream.
                        self.events
                            .extend(generation_report(i, new_draft.as_ref(), true));
                        return Next::Done;
                    }
                    let checks = checks + 1;
                    if checks >= recover_checks {
                        if i.assembler.said_anything() {
                            return Next::Done;
                        }
                        return Next::Fail(NemoError::new(
                            ErrorKind::Unconfirmed,
                            format!(
                                "The connection to the agent dropped and the timeline has not changed after {checks} checks. Your message was not sent twice (that could spend credits twice); send it again when you are ready."
                            ),
                        ));
                    }
                    i.phase = InstructPhase::Recover {
                        next_at: now + recover_every,
                        checks,
                    };
                    Next::Wait
                }
                _ => Next::Wait,
            },
            Op::Export(e) => {
                match new_draft {
                    Some(d) if d.is_ready_for_export() => {
                        e.phase = ExportPhase::Submit(d);
                        Next::Wait
                    }
                    _ => Next::Fail(NemoError::new(
                        ErrorKind::NothingToExport,
                        "There is nothing to export yet: the timeline is empty. Upload a clip or describe the video you want first.",
                    )),
                }
            }
            _ => Next::Done,
        }
    }
}

/// After a two-stage generation: post-production done, every track, and
/// what to say to keep or strip what post-production added (named from
/// the tools it ran, or else from the tracks it added). After a dropped
/// stream (`found`: the edit was found in the state), post-production is
/// done when anything was added after the raw video.
fn generation_report(i: &Instruct, draft: Option<&Draft>, found: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let Some(d) = draft.filter(|_| i.raw_video_ready || i.post_production_done) else {
        return events;
    };
    let added = if i.added.is_empty() {
        tracks_added(i.baseline.as_ref(), d)
    } else {
        i.added.clone()
    };
    let done = i.post_production_over() || (found && !added.is_empty());
    if done {
        events.push(Event::Generation {
            stage: GenerationStage::PostProductionDone,
            url: None,
            message: "Post-production is done; every track:".into(),
        });
    }
    events.push(Event::Timeline {
        summary: d.timeline().to_string(),
        ready_for_export: d.is_ready_for_export(),
    });
    if done {
        events.extend(super::events::post_production_choice(&added));
    }
    events
}

/// What a draft has that `before` had not, besides video: music, a title,
/// more text (subtitles).
fn tracks_added(before: Option<&Draft>, after: &Draft) -> Vec<Addition> {
    let count = |d: Option<&Draft>, kind: TrackKind| {
        d.map_or(0, |d| {
            d.timeline()
                .tracks
                .iter()
                .filter(|t| t.kind == kind)
                .count()
        })
    };
    let mut added = Vec::new();
    if count(Some(after), TrackKind::Audio) > count(before, TrackKind::Audio) {
        added.push(Addition::Music);
    }
    let (text_before, text_after) = (
        count(before, TrackKind::Text),
        count(Some(after), TrackKind::Text),
    );
    if text_before == 0 && text_after > 0 {
        added.push(Addition::Title);
    }
    if text_after > text_before.max(1) {
        added.push(Addition::Subtitles);
    }
    added
}
