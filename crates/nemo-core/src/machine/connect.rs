//! Getting a token and a session, and what to do when either fails.

use std::time::Duration;

use super::*;
use crate::api;
use crate::error::{ErrorDetail, ErrorKind, NemoError};
use crate::recovery::{self, Attempts, Failure, Recovery};
use crate::time::Instant;
use crate::wire::{Endpoint, Response};

impl Session {
    pub(super) fn on_token(&mut self, now: Instant, response: &Response) {
        match api::parse::<api::AnonymousToken>(response) {
            Ok(t) if crate::ids::check_token(t.token.expose()).is_err() => {
                // Never kept, never sent: a token that cannot travel in a
                // header would fail every later request.
                let why = crate::ids::check_token(t.token.expose()).unwrap_err();
                // Asking again would be refused (one free token per client
                // id per week): say so and stop.
                self.auth_attempts = Attempts::default();
                self.fail_task(
                    NemoError::new(
                        ErrorKind::AuthFailed,
                        format!(
                            "The service issued a free token that cannot be used ({why}); it was not kept."
                        ),
                    )
                    .with_detail(ErrorDetail::FreeTokenRefused),
                );
            }
            Ok(t) => {
                // The auth budget is kept until a session exists: a server
                // that rejects every fresh token must not loop forever.
                self.token = Some(t.token.clone());
                self.anonymous = true;
                if t.user_id.is_some() {
                    self.user_id = t.user_id.clone();
                }
                self.events.push_back(Event::TokenIssued {
                    token: t.token,
                    user_id: t.user_id,
                    expires_at: t.expires_at,
                });
            }
            Err(err) => {
                let (failure, message) = failure_of(&err);
                self.on_auth_failure(now, Endpoint::AnonymousToken, failure, &message);
            }
        }
    }

    pub(super) fn on_session(&mut self, now: Instant, response: &Response) {
        let checked = api::parse::<api::SessionCreated>(response).map(|s| {
            let bad = crate::ids::check_id("session id", &s.session_id)
                .err()
                .or_else(|| {
                    s.task_id
                        .as_deref()
                        .and_then(|t| crate::ids::check_id("task id", t).err())
                });
            (s, bad)
        });
        match checked {
            Ok((_, Some(why))) => {
                self.on_auth_failure(now, Endpoint::CreateSession, Failure::Decode, &why);
            }
            Ok((s, None)) => {
                self.auth_attempts = Attempts::default();
                if s.user_id.is_some() && self.user_id.is_none() {
                    self.user_id = s.user_id.clone();
                }
                self.session = Some(SessionRef {
                    session_id: s.session_id.clone(),
                    task_id: s.task_id.clone(),
                });
                self.draft = DraftKnowledge::Known(None);
                self.events.push_back(Event::Connected {
                    session_id: s.session_id,
                    task_id: s.task_id,
                    created: true,
                });
            }
            Err(err) => {
                let (failure, message) = failure_of(&err);
                self.on_auth_failure(now, Endpoint::CreateSession, failure, &message);
            }
        }
    }

    pub(super) fn on_auth_failure(
        &mut self,
        now: Instant,
        endpoint: Endpoint,
        failure: Failure,
        message: &str,
    ) {
        let jitter = self.rng.next_f64();
        let anonymous = self.anonymous;
        let mut recovery = recovery::decide(
            &self.config.retry,
            endpoint,
            &failure,
            &self.auth_attempts,
            anonymous,
            jitter,
        );
        // The session call's own 1001 (or code-less 401): the token is bad;
        // a new one may fix it.
        if recovery == Recovery::Fail
            && endpoint == Endpoint::CreateSession
            && matches!(failure, Failure::Api { status, code, .. } if recovery::token_refused(status, code))
            && anonymous
            && self.auth_attempts.token_refreshes == 0
        {
            recovery = Recovery::RefreshToken;
        }
        let recovery = self.within_deadline(now, endpoint, recovery);
        self.auth_attempts.record(recovery);
        match recovery {
            Recovery::Retry { after } => {
                self.retry_pending = true;
                recovery::record_retry(&mut self.auth_attempts, &failure);
                self.note_wait(&failure, after);
                self.wait_until = Some(now + after);
            }
            Recovery::RefreshToken => {
                self.events.push_back(Event::Status(
                    "The token expired; getting a new one…".into(),
                ));
                self.token = None;
            }
            Recovery::NewClientId => {
                self.config.client_id = self.rng.uuid_v4();
                self.events
                    .push_back(Event::ClientIdGenerated(self.config.client_id.clone()));
            }
            _ => {
                let err = self.error_for(endpoint, &failure, message);
                // Only what no later command can fix sticks: a rejected
                // user token, no anonymous token for days.
                let sticky = err.kind == ErrorKind::AuthFailed
                    || (endpoint == Endpoint::AnonymousToken && err.kind == ErrorKind::RateLimited);
                self.auth_attempts = Attempts::default();
                if sticky {
                    self.fatal = Some(err.clone());
                }
                self.fail_task(err);
            }
        }
    }

    pub(super) fn note_wait(&mut self, failure: &Failure, after: Duration) {
        if matches!(
            failure,
            Failure::Api { status: 429, .. }
                | Failure::Api {
                    code: Some(429),
                    ..
                }
        ) {
            self.events.push_back(Event::Note(format!(
                "The service asked us to slow down; trying again in {}.",
                crate::time::human_duration(after.max(Duration::from_secs(1)))
            )));
        }
    }
}
