//! Failed op requests: the recovery policy applied, and the error users
//! read when it gives up.

use super::*;
use crate::api::{self, ResponseError};
use crate::error::{ErrorKind, NemoError};
use crate::recovery::{self, Attempts, Failure, Recovery};
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
            Failure::Api { status, .. } => status >= 500,
            Failure::Decode | Failure::StreamDropped => true,
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
                    self.attempts = Attempts::default();
                    return;
                }
                // The claim link after a download is a bonus: its failure is
                // not the export's.
                ExportPhase::Claim => {
                    if let Some(task) = self.tasks.front_mut() {
                        task.ops.pop_front();
                    }
                    self.attempts = Attempts::default();
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
        self.attempts.record(recovery);
        match recovery {
            Recovery::Retry { after } => {
                recovery::record_retry(&mut self.attempts, &failure);
                self.note_wait(&failure, after);
                self.wait_until = Some(now + after);
                if let Some(Op::Instruct(i)) = current_op!(self) {
                    if matches!(i.phase, InstructPhase::Streaming) {
                        // Only a refused connection gets here: the message
                        // never left, so it may go now.
                        i.phase = InstructPhase::Send;
                    }
                }
            }
            Recovery::RefreshToken => {
                self.events.push_back(Event::Status(
                    "The token expired; getting a new one…".into(),
                ));
                self.token = None;
                self.rearm_instruct();
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
                            self.attempts = Attempts::default();
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

    /// Turns a final failure into the error users read.
    pub(super) fn error_for(
        &self,
        endpoint: Endpoint,
        failure: &Failure,
        message: &str,
    ) -> NemoError {
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
            Failure::Api { status, code, .. } => {
                let code_v = *code;
                match (code_v, *status) {
                    (Some(2001), _) => {
                        let mut e = NemoError::new(
                            ErrorKind::OutOfCredits,
                            match &register {
                                Some(link) => format!("You are out of credits. Register to get more: {link}"),
                                None if self.anonymous => format!("You are out of credits. Register at {web} to get more."),
                                None => format!("You are out of credits. Top up your account at {web}."),
                            },
                        )
                        .with_code(code_v);
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
                                    Some(link) => format!("Register or upgrade: {link}"),
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
                    (Some(1001), _) => NemoError::new(
                        ErrorKind::AuthFailed,
                        if self.anonymous {
                            "The free token expired and a new one could not be had. Set NEMO_TOKEN to a token of your account, or try again later.".to_owned()
                        } else {
                            "NEMO_TOKEN was rejected (expired or invalid). Set a valid token, or unset NEMO_TOKEN to use a free anonymous one.".to_owned()
                        },
                    )
                    .with_code(code_v),
                    (Some(1002), _) => NemoError::new(
                        ErrorKind::SessionLost,
                        "The session was lost on the server and a new one could not be started. Start again with --new-session.",
                    )
                    .with_code(code_v),
                    (_, 429) | (Some(429), _) => NemoError::new(
                        ErrorKind::RateLimited,
                        if endpoint == Endpoint::AnonymousToken {
                            "A free token was already issued to this machine in the last 7 days and the service will not issue another yet. Set NEMO_TOKEN to your account's token, or try again later.".to_owned()
                        } else {
                            "The service is rate limiting requests. Wait a minute and try again.".to_owned()
                        },
                    )
                    .with_code(Some(429)),
                    (_, s) if s >= 500 => NemoError::new(
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
                        " The render is finished on the server; download it later with `nemo jobs --resume`.",
                    ),
                    _ => (ErrorKind::Network, " Check your connection (or NEMO_API_URL) and try again."),
                };
                let what = match kind {
                    TransportErrorKind::Timeout => "The service did not answer in time",
                    TransportErrorKind::Connect => "Could not reach the service",
                    TransportErrorKind::Tls => "The secure connection failed",
                    TransportErrorKind::Interrupted => "The connection broke",
                    TransportErrorKind::Local => "A local file could not be used",
                    _ => "The request failed",
                };
                NemoError::new(
                    k,
                    format!("{what}: {}.{hint}", short(message).trim_end_matches('.')),
                )
            }
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

pub(super) fn short(message: &str) -> String {
    let m = message.trim();
    if m.chars().count() > 300 {
        let cut: String = m.chars().take(300).collect();
        format!("{cut}…")
    } else {
        m.to_owned()
    }
}

pub(super) fn failure_of(err: &ResponseError) -> (Failure, String) {
    match err {
        ResponseError::Api(e) => (
            Failure::Api {
                status: e.status,
                code: e.code,
                retry_after: e.retry_after,
            },
            e.message.clone(),
        ),
        ResponseError::Decode { message, .. } => (Failure::Decode, message.clone()),
    }
}
