//! Failed op requests: the recovery policy applied, and the error users
//! read when it gives up.

use super::*;
use crate::api::{self, ResponseError};
use crate::error::{ErrorDetail, ErrorKind, NemoError};
use crate::recovery::{self, Failure, Recovery};
use crate::render::RenderTracker;
use crate::secret::Secret;
use crate::time::Instant;
use crate::transport::TransportErrorKind;
use crate::wire::Endpoint;

impl Session {
    /// Applies the recovery policy to a failed op request.
    pub(super) fn on_failure(
        &mut self,
        now: Instant,
        endpoint: Endpoint,
        failure: Failure,
        message: &str,
    ) {
        let ambiguous = match failure {
            Failure::Transport(kind) => kind != TransportErrorKind::Connect,
            Failure::Api {
                status,
                server_error,
                ..
            } => status >= 500 || server_error,
            Failure::Decode | Failure::StreamDropped => true,
            Failure::Refused { .. } => false,
        };
        let poll_policy = self.config.poll;
        if let Some(Op::Export(e)) = current_op!(self) {
            match e.phase {
                ExportPhase::Submit(_) if ambiguous => e.maybe_accepted = true,
                ExportPhase::Submit(_)
                    if e.maybe_accepted
                        && matches!(
                            failure,
                            Failure::Api {
                                status: 200..=299,
                                ..
                            }
                        ) =>
                {
                    // The retry of a submission that may have arrived was
                    // refused (a duplicate id): follow the first one.
                    e.phase = ExportPhase::Poll { next_at: now };
                    e.tracker = Some(RenderTracker::new(poll_policy, now));
                    self.attempts.answered();
                    return;
                }
                // The claim link after a download is a bonus: its failure is
                // not the export's.
                ExportPhase::Claim => {
                    if let Some(task) = self.tasks.front_mut() {
                        task.ops.pop_front();
                    }
                    self.attempts.answered();
                    return;
                }
                _ => {}
            }
        }
        let jitter = self.rng.next_f64();
        let recovery = match failure {
            // The transport already resumed a broken download within its own
            // bounds (attempts and bytes); starting over from zero here would
            // multiply them. What is left is one try on the fallback endpoint.
            Failure::Transport(kind)
                if endpoint == Endpoint::Download && kind != TransportErrorKind::Connect =>
            {
                Recovery::Fail
            }
            _ => recovery::decide(
                &self.config.retry,
                endpoint,
                &failure,
                &self.attempts,
                self.anonymous,
                jitter,
            ),
        };
        let recovery = self.within_deadline(now, endpoint, recovery);
        self.attempts.record(recovery);
        match recovery {
            Recovery::Retry { after } => {
                self.retry_pending = true;
                recovery::record_retry(&mut self.attempts, &failure);
                self.note_wait(&failure, after);
                self.wait_until = Some(now + after);
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    if matches!(i.phase, InstructPhase::Streaming) {
                        // A refused connection, or a 429 inside a stream
                        // that carried nothing but keep-alives before it
                        // (`on_code_in_stream`): the agent never took the
                        // message, so it may go now.
                        i.phase = InstructPhase::Send;
                    }
                }
            }
            Recovery::RefreshToken => {
                self.pause_call(endpoint);
                self.events.push_back(Event::Status(
                    "The token expired; getting a new one…".into(),
                ));
                self.token = None;
                self.rearm_instruct();
            }
            Recovery::NewSession if self.config.session_required => {
                // A session the user named (whatever the command, an export
                // too): another, empty session in its place would answer a
                // question nobody asked. It stays named: every later command
                // fails the same way instead of drifting into a new one.
                let id = self
                    .session
                    .as_ref()
                    .map(|s| s.session_id.clone())
                    .unwrap_or_default();
                self.draft = DraftKnowledge::Known(None);
                self.fail_task(
                    NemoError::new(
                        ErrorKind::SessionLost,
                        format!(
                            "The session {} is not on the server (the id is wrong, or it expired); nothing was changed.",
                            crate::ids::printable_line(&id)
                        ),
                    )
                    .with_code(Some(1002)),
                );
            }
            Recovery::NewSession if matches!(current_op!(self), Some(Op::Export(e)) if matches!(e.phase, ExportPhase::Draft | ExportPhase::Submit(_))) =>
            {
                // The draft lived in the lost session: a new, empty session
                // has nothing to render. Say so instead of rendering nothing.
                self.session = None;
                self.draft = DraftKnowledge::Known(None);
                self.fail_task(NemoError::new(
                    ErrorKind::SessionLost,
                    "The session expired on the server and its timeline went with it. Upload and edit again in a new session (the next command starts one), then export.",
                ).with_code(Some(1002)));
            }
            Recovery::NewSession => {
                self.pause_call(endpoint);
                self.events.push_back(Event::Note(
                    "The session was not found on the server; starting a new one.".into(),
                ));
                self.session = None;
                self.draft = DraftKnowledge::Known(None);
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    if matches!(i.phase, InstructPhase::Streaming) {
                        // A new session has a new (empty) draft: measure
                        // the edit against it, not the lost one.
                        i.phase = InstructPhase::Baseline;
                    }
                }
            }
            Recovery::NewClientId => {
                self.config.client_id = self.rng.uuid_v4();
                self.events
                    .push_back(Event::ClientIdGenerated(self.config.client_id.clone()));
            }
            Recovery::NewRenderId => {
                if let Some(Op::Export(e)) = current_op!(self) {
                    let old = std::mem::take(&mut e.id);
                    e.id = format!("{}_{}", e.base_id, 2);
                    self.events.push_back(Event::RenderEnded {
                        id: old,
                        outcome: RenderOutcome::Rejected,
                    });
                }
            }
            Recovery::RecoverStream => {
                self.recover_stream(now, "The connection to the agent dropped.")
            }
            Recovery::Fail => {
                // A download that failed on the output URL gets one try on
                // the API's fallback endpoint.
                if let Some(Op::Export(e)) = current_op!(self) {
                    if let ExportPhase::Download { fallback, .. } = &mut e.phase {
                        if !*fallback {
                            *fallback = true;
                            self.attempts.answered();
                            return;
                        }
                    }
                }
                let mut err = self.error_for(endpoint, &failure, message);
                if err.kind == ErrorKind::AuthFailed && !self.anonymous {
                    self.fatal = Some(err.clone());
                }
                if endpoint == Endpoint::RenderStatus
                    && matches!(failure, Failure::Api { status: 404, .. })
                {
                    // The server does not know the job (expired, or never
                    // accepted): nothing will ever finish it.
                    if let Some(Op::Export(e)) = current_op!(self) {
                        let id = e.id.clone();
                        err = NemoError::new(
                            ErrorKind::RenderFailed,
                            format!("The server does not know the render {id} (it may have expired). Export again."),
                        );
                        self.events.push_back(Event::RenderEnded {
                            id,
                            outcome: RenderOutcome::Failed,
                        });
                    }
                }
                self.fail_task(err);
            }
        }
    }

    /// Sets the call of `endpoint` aside while a new token or session is
    /// fetched: sent again, it keeps its first deadline
    /// (`Config::request_deadline` bounds the call, renewals included).
    fn pause_call(&mut self, endpoint: Endpoint) {
        self.paused_call = self
            .trying
            .filter(|t| t.endpoint == endpoint && t.purpose == Purpose::Op);
    }

    /// Notes that the call of `endpoint` failed at `now`, and turns a retry
    /// that would begin at or after the call's deadline into giving up.
    pub(super) fn within_deadline(
        &mut self,
        now: Instant,
        endpoint: Endpoint,
        recovery: Recovery,
    ) -> Recovery {
        let Some(t) = self.trying.as_mut().filter(|t| t.endpoint == endpoint) else {
            return recovery;
        };
        t.failed_at = now;
        match recovery {
            Recovery::Retry { after } if t.cut || t.deadline.is_some_and(|d| now + after >= d) => {
                Recovery::Fail
            }
            other => other,
        }
    }

    /// Turns a final failure into the error users read.
    pub(super) fn error_for(
        &self,
        endpoint: Endpoint,
        failure: &Failure,
        message: &str,
    ) -> NemoError {
        let mut error = self.error_words(endpoint, failure, message);
        if endpoint == Endpoint::Download && error.detail.is_none() {
            // A finished render whose file did not arrive: it can be saved later.
            if let Some(Op::Export(e)) = self.tasks.front().and_then(|t| t.ops.front()) {
                error.detail = Some(ErrorDetail::RenderNotSaved { id: e.id.clone() });
            }
        }
        error
    }

    /// The error for a final failure, in words.
    fn error_words(&self, endpoint: Endpoint, failure: &Failure, message: &str) -> NemoError {
        // Server text is shown to the user: it must not echo a credential.
        let client_id = Secret::new(self.config.client_id.clone());
        let mut secrets = vec![&client_id];
        if let Some(token) = &self.token {
            secrets.push(token);
        }
        let message = &crate::secret::redact(message, &secrets);
        let web = &self.config.web_url;
        let register = self
            .user_id
            .as_deref()
            .filter(|_| self.anonymous)
            .map(|uid| api::register_link(web, uid));
        match failure {
            Failure::Api {
                status,
                code,
                server_error,
                ..
            } => {
                let code_v = *code;
                let server_error = *server_error;
                match (code_v, *status) {
                    (Some(2001), _) => {
                        let (needed, available) = credits_in(message);
                        let amounts = match (needed, available) {
                            (Some(n), Some(a)) => format!(" (this needs {}, {} available)", api::number(n), api::number(a)),
                            (Some(n), None) => format!(" (this needs {})", api::number(n)),
                            (None, Some(a)) => format!(" ({} available)", api::number(a)),
                            (None, None) => String::new(),
                        };
                        // The link travels in `link` alone, never in the words.
                        let mut e = NemoError::new(
                            ErrorKind::OutOfCredits,
                            match &register {
                                Some(_) => format!("You are out of credits{amounts}. Register to get more."),
                                None if self.anonymous => format!("You are out of credits{amounts}. Register at {web} to get more."),
                                None => format!("You are out of credits{amounts}. Top up the account at {web}."),
                            },
                        )
                        .with_code(code_v)
                        .with_detail(ErrorDetail::OutOfCredits { needed, available });
                        if let Some(link) = register {
                            e = e.with_link(link);
                        }
                        e
                    }
                    (Some(4001), _) => api::unsupported_file(""),
                    (Some(4002), _) => api::file_too_large("", None),
                    (Some(402), _) | (_, 402) => {
                        let mut e = NemoError::new(
                            ErrorKind::PlanBlocked,
                            format!(
                                "Export is blocked on the free plan (a subscription limit, not credits). {}",
                                match &register {
                                    Some(_) => "Register or upgrade.".to_owned(),
                                    None => format!("Upgrade at {web}."),
                                }
                            ),
                        )
                        .with_code(Some(402));
                        if let Some(link) = register {
                            e = e.with_link(link);
                        }
                        e
                    }
                    (c, s) if recovery::token_refused(s, c) && self.anonymous => NemoError::new(
                        ErrorKind::AuthFailed,
                        "The free token expired and a new one could not be had.",
                    )
                    .with_code(code_v)
                    .with_detail(ErrorDetail::FreeTokenRefused),
                    (c, s) if recovery::token_refused(s, c) => NemoError::new(
                        ErrorKind::AuthFailed,
                        "The token given was rejected (expired or invalid).",
                    )
                    .with_code(code_v)
                    .with_detail(ErrorDetail::UserTokenRejected),
                    (Some(1002), _) => NemoError::new(
                        ErrorKind::SessionLost,
                        "The session was lost on the server and a new one could not be started.",
                    )
                    .with_code(code_v),
                    (_, 429) | (Some(429), _) if endpoint == Endpoint::AnonymousToken => NemoError::new(
                        ErrorKind::RateLimited,
                        "A free token was already issued to this machine in the last 7 days and the service will not issue another yet.",
                    )
                    .with_code(Some(429))
                    .with_detail(ErrorDetail::FreeTokenRefused),
                    (_, 429) | (Some(429), _) => NemoError::new(
                        ErrorKind::RateLimited,
                        "The service is rate limiting requests. Wait a minute and try again.",
                    )
                    .with_code(Some(429)),
                    (_, s) if s >= 500 || server_error => NemoError::new(
                        ErrorKind::Server,
                        format!("The server failed (HTTP {s}: {}). Try again in a moment.", short(message)),
                    ),
                    (c, s) => NemoError::new(
                        ErrorKind::Api,
                        format!("The server refused the {} request (HTTP {s}): {}", endpoint.name(), short(message)),
                    )
                    .with_code(c),
                }
            }
            Failure::Transport(kind) => {
                let (k, hint) = match kind {
                    TransportErrorKind::Local => (ErrorKind::BadInput, ""),
                    _ if endpoint == Endpoint::Download => (
                        ErrorKind::Network,
                        " The render is finished on the server and stays recorded; the file was not saved.",
                    ),
                    _ => (ErrorKind::Network, ""),
                };
                let what = match kind {
                    TransportErrorKind::Timeout => "The service did not answer in time",
                    TransportErrorKind::Connect => "Could not reach the service",
                    TransportErrorKind::Tls => "The secure connection failed",
                    TransportErrorKind::Interrupted => "The connection broke",
                    TransportErrorKind::Local => "A local file could not be used",
                    _ => "The request failed",
                };
                let said = short(message);
                let said = said.trim_end_matches('.');
                // A call tried more than once, or abandoned at its deadline:
                // the words say how many attempts and how long in all, not
                // only what the last attempt said.
                let tried = self
                    .trying
                    .filter(|t| t.endpoint == endpoint && (t.attempts > 1 || t.cut));
                let text = match tried {
                    None => format!("{what}: {said}."),
                    Some(t) => {
                        let waited = crate::time::human_duration(t.failed_at - t.started);
                        let over = match t.attempts {
                            1 => waited,
                            n => format!("{n} attempts over {waited}"),
                        };
                        match kind {
                            _ if t.cut => format!(
                                "{what}: no complete answer to the {} request after {over}.",
                                endpoint.name()
                            ),
                            TransportErrorKind::Timeout => format!(
                                "{what}: no complete answer to the {} request after {over} (the last one: {said}).",
                                endpoint.name()
                            ),
                            _ => format!("{what}: {said}; {over}."),
                        }
                    }
                };
                NemoError::new(k, format!("{text}{hint}"))
            }
            Failure::Refused { status } => NemoError::new(
                ErrorKind::Api,
                format!(
                    "The {} request was refused (HTTP {status}), not by the service's API: {}",
                    endpoint.name(),
                    match endpoint {
                        Endpoint::Download => {
                            "the file's link may have expired, or something on the network is in the way.".to_owned()
                        }
                        _ => format!(
                            "a network gateway or a login page may be in the way ({}).",
                            short(message).trim_end_matches('.')
                        ),
                    }
                ),
            ),
            Failure::Decode => NemoError::new(
                ErrorKind::Protocol,
                format!(
                    "The server's answer to {} could not be read: {}",
                    endpoint.name(),
                    short(message)
                ),
            ),
            Failure::StreamDropped => {
                NemoError::new(ErrorKind::Network, "The connection to the agent dropped.")
            }
        }
    }
}

/// Server text as it goes into an error: one line (line breaks, line and
/// paragraph separators and control characters become spaces, runs of
/// spaces one), whatever else a terminal must not act on made visible
/// ([`printable_line`](crate::ids::printable_line)), at most 300 characters.
pub(super) fn short(message: &str) -> String {
    let spaced: String = message
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let line = crate::ids::printable_line(&spaced);
    let m = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if m.chars().count() > 300 {
        let cut: String = m.chars().take(300).collect();
        format!("{cut}…")
    } else {
        m
    }
}

pub(super) fn failure_of(err: &ResponseError) -> (Failure, String) {
    match err {
        ResponseError::Api(e) => (
            Failure::Api {
                status: e.status,
                code: e.code,
                retry_after: e.retry_after,
                server_error: e.server_error,
            },
            e.message.clone(),
        ),
        ResponseError::Decode { message, .. } => (Failure::Decode, message.clone()),
    }
}

/// The credits a 2001 message names: what was needed and what is available
/// ("this needs 5, 2 available", "required: 5, available: 2"), when it says.
pub(super) fn credits_in(message: &str) -> (Option<f64>, Option<f64>) {
    let lower = message.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    let num = |w: &str| w.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    let after = |i: usize| words.get(i + 1).and_then(|w| num(w));
    let mut needed = None;
    let mut available = None;
    for (i, w) in words.iter().enumerate() {
        match *w {
            "need" | "needs" | "needed" | "require" | "requires" | "required" | "cost"
            | "costs" => {
                needed = needed.or_else(|| after(i));
            }
            "available" | "balance" | "remaining" | "left" => {
                available = available
                    .or_else(|| after(i))
                    .or_else(|| i.checked_sub(1).and_then(|j| num(words[j])));
            }
            "have" | "has" => available = available.or_else(|| after(i)),
            _ => {}
        }
    }
    (needed, available)
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn server_text_in_an_error_is_one_bounded_line() {
        let m = short("bad\r\nthing\nhere\u{2028}and\u{2029}there\u{85}end\u{1b}[2J\u{7}\rforged");
        assert!(
            !m.chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
            "{m:?}"
        );
        assert!(m.starts_with("bad thing here and there end"), "{m:?}");
        assert!(m.ends_with("forged"), "{m:?}");
        assert!(!m.contains("  "), "{m:?}");
        let long = short(&"x\n".repeat(1000));
        assert!(long.chars().count() <= 301, "{}", long.chars().count());
        assert!(!long.contains('\n'));
        assert_eq!(short("  plain words. "), "plain words.");
    }
}
