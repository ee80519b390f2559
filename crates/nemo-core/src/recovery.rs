//! The recovery policy: a pure function from a failed attempt to what to do
//! next.
//!
//! | failure | recovery |
//! |---|---|
//! | code 1001, or HTTP 401 without a code, on a request that carried our token, with a JSON body | new anonymous token with the same client id, retry (once per command; a user-supplied token cannot be renewed: final) |
//! | HTTP 401 from the output URL (no token sent), or as a page (no JSON) | final, never a new token; a download moves to the API's fallback endpoint |
//! | code 1002 | new session, retry (once per command) |
//! | HTTP 429 | wait `Retry-After` (or 30 s, at most 2 min), retry once |
//! | HTTP 400 on the anonymous-token call | new client id, retry once |
//! | 5xx, connection errors, undecodable bodies | bounded back-off with jitter, only for requests safe to repeat (a refused connection never reached the server, so it is safe for all) |
//! | `success:false` on a render submission | new render id, retry once |
//! | `/run_sse` broken after it may have reached the server | never re-sent: recover by polling the state |
//! | an API code inside the `/run_sse` stream | final at once (the stream is dropped); as the same code in an envelope while only keep-alives came before it; after anything else, 1001 / 1002 / 429 never re-send: recover by polling the state |
//! | 2001, 4001, 4002, 402, other 4xx | final, with a helpful message |
//!
//! Every recovery has its own budget in [`Attempts`], so any sequence of
//! failures ends after a bounded number of attempts ([`MAX_ATTEMPTS`]).
//! Token renewals and new sessions are counted for the whole command (one
//! of each), the others for each request ([`Attempts::answered`]). The
//! session machine also bounds each API call in time, its retries included
//! (`Config::request_deadline`): no retry starts that would begin after it,
//! and a call sent again after a new token or session keeps its first
//! deadline.

use std::time::Duration;

use crate::transport::TransportErrorKind;
use crate::wire::Endpoint;

/// An attempt that did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum Failure {
    /// No response: the transport failed.
    Transport(TransportErrorKind),
    /// The API answered with an error.
    Api {
        /// HTTP status.
        status: u16,
        /// The API's code, if any.
        code: Option<i64>,
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
        /// A 2xx saying the server's own processing failed (see
        /// [`ApiError::server_error`](crate::api::ApiError::server_error)):
        /// the request may have taken effect.
        server_error: bool,
    },
    /// A 2xx answer that could not be read.
    Decode,
    /// A 401 that says nothing about our token: from a host the token was
    /// not sent to (the output URL's CDN), or not the API's own answer (a
    /// page, no JSON: a gateway or a login portal). Never renews the token.
    Refused {
        /// HTTP status.
        status: u16,
    },
    /// The `/run_sse` stream broke after it started.
    StreamDropped,
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Recovery {
    /// Send the same request again after the wait.
    Retry {
        /// How long to wait first.
        after: Duration,
    },
    /// Get a new anonymous token (same client id), then retry.
    RefreshToken,
    /// Create a new session, then retry.
    NewSession,
    /// Generate a new client id, then retry the anonymous-token call.
    NewClientId,
    /// Submit the render again under a new id.
    NewRenderId,
    /// The message may have reached the agent: poll the state instead of
    /// sending it again.
    RecoverStream,
    /// Give up.
    Fail,
}

/// How often each recovery was already used for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[doc(hidden)]
pub struct Attempts {
    /// Attempts made so far (the first one included).
    pub total: u32,
    /// New tokens fetched.
    pub token_refreshes: u32,
    /// New sessions created.
    pub new_sessions: u32,
    /// Waits after 429.
    pub rate_limited: u32,
    /// New client ids generated.
    pub client_ids: u32,
    /// New render ids.
    pub render_ids: u32,
    /// Back-off retries after 5xx or connection errors.
    pub backoffs: u32,
}

impl Attempts {
    /// Records that `recovery` is being carried out.
    /// (The attempt itself is counted in `total` when it is sent.)
    pub fn record(&mut self, recovery: Recovery) {
        match recovery {
            Recovery::Retry { .. } => {}
            Recovery::RefreshToken => self.token_refreshes += 1,
            Recovery::NewSession => self.new_sessions += 1,
            Recovery::NewClientId => self.client_ids += 1,
            Recovery::NewRenderId => self.render_ids += 1,
            Recovery::RecoverStream | Recovery::Fail => {}
        }
    }

    /// A request got its answer: the next request starts its own count,
    /// but token renewals and new sessions stay counted for the whole
    /// command (until it ends), so a server that refuses the token between
    /// good answers cannot make the client fetch tokens, or start
    /// sessions, without end.
    pub fn answered(&mut self) {
        *self = Self {
            token_refreshes: self.token_refreshes,
            new_sessions: self.new_sessions,
            ..Self::default()
        };
    }
}

/// The most attempts any request can take: the first, one of each single
/// recovery, and the back-off retries.
#[doc(hidden)]
pub const MAX_ATTEMPTS: u32 = 6 + RetryPolicy::DEFAULT_MAX_BACKOFFS;

/// Tunables of the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Back-off retries allowed after 5xx / connection errors.
    pub max_backoffs: u32,
    /// The first back-off; each later one doubles it (plus jitter).
    pub base: Duration,
    /// The longest back-off, however many came before.
    pub cap: Duration,
    /// Wait after a 429 without `Retry-After`.
    pub rate_limit_wait: Duration,
    /// Longest `Retry-After` honoured; beyond it, the failure is final.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Default number of back-off retries.
    pub const DEFAULT_MAX_BACKOFFS: u32 = 3;
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_backoffs: Self::DEFAULT_MAX_BACKOFFS,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            rate_limit_wait: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Decides what to do after a failed attempt.
///
/// `anonymous` says whether the token came from the anonymous-token call
/// (and so can be renewed); `jitter` is a number in `[0, 1)` from the
/// caller's seeded source, spreading back-offs by up to 25 %.
#[doc(hidden)]
pub fn decide(
    policy: &RetryPolicy,
    endpoint: Endpoint,
    failure: &Failure,
    attempts: &Attempts,
    anonymous: bool,
    jitter: f64,
) -> Recovery {
    if attempts.total >= MAX_ATTEMPTS.min(6 + policy.max_backoffs) {
        return Recovery::Fail;
    }
    let backoff = || {
        if attempts.backoffs >= policy.max_backoffs {
            return Recovery::Fail;
        }
        let exp = policy.base.as_secs_f64() * 2f64.powi(attempts.backoffs as i32);
        let secs = exp.min(policy.cap.as_secs_f64()) * (1.0 + 0.25 * jitter.clamp(0.0, 1.0));
        Recovery::Retry {
            after: Duration::from_secs_f64(secs),
        }
    };
    match *failure {
        Failure::StreamDropped => {
            if endpoint == Endpoint::RunSse {
                Recovery::RecoverStream
            } else if endpoint.is_idempotent() {
                backoff()
            } else {
                Recovery::Fail
            }
        }
        Failure::Transport(kind) => {
            // A refused connection never reached the server: safe to repeat
            // anything. Other failures may have delivered the request.
            if kind == TransportErrorKind::Connect {
                return backoff();
            }
            if !kind.is_transient() {
                return Recovery::Fail;
            }
            match endpoint {
                Endpoint::RunSse => Recovery::RecoverStream,
                e if e.is_idempotent() || e == Endpoint::RenderSubmit => backoff(),
                _ => Recovery::Fail,
            }
        }
        Failure::Refused { .. } => Recovery::Fail,
        Failure::Decode => {
            if endpoint.is_idempotent() {
                backoff()
            } else if endpoint == Endpoint::RunSse {
                Recovery::RecoverStream
            } else {
                Recovery::Fail
            }
        }
        Failure::Api {
            status,
            code,
            retry_after,
            server_error,
        } => {
            if token_refused(status, code) {
                return if anonymous
                    && attempts.token_refreshes == 0
                    && endpoint != Endpoint::AnonymousToken
                {
                    Recovery::RefreshToken
                } else {
                    Recovery::Fail
                };
            }
            match code {
                // A download host (the output URL's CDN) knows no session:
                // its words are never the session's loss.
                Some(1002) if endpoint == Endpoint::Download => {}
                Some(1002) => {
                    return if attempts.new_sessions == 0
                        && !matches!(endpoint, Endpoint::CreateSession | Endpoint::AnonymousToken)
                    {
                        Recovery::NewSession
                    } else {
                        Recovery::Fail
                    };
                }
                Some(2001 | 4001 | 4002 | 402) => return Recovery::Fail,
                _ => {}
            }
            if status == 429 || code == Some(429) {
                let wait = retry_after.unwrap_or(policy.rate_limit_wait);
                return if attempts.rate_limited == 0 && wait <= policy.max_retry_after {
                    Recovery::Retry { after: wait }
                } else {
                    Recovery::Fail
                };
            }
            if status == 400 && endpoint == Endpoint::AnonymousToken {
                return if attempts.client_ids == 0 {
                    Recovery::NewClientId
                } else {
                    Recovery::Fail
                };
            }
            if endpoint == Endpoint::RenderSubmit && (200..300).contains(&status) && server_error {
                // It may have arrived: sent again under the same id (a
                // duplicate refused then is followed), never a second render.
                return backoff();
            }
            if endpoint == Endpoint::RenderSubmit && (200..300).contains(&status) {
                // `success:false`: a failed or duplicate submission.
                return if attempts.render_ids == 0 {
                    Recovery::NewRenderId
                } else {
                    Recovery::Fail
                };
            }
            if endpoint == Endpoint::RenderStatus && (200..300).contains(&status) && code.is_none()
            {
                // An envelope that says the poll failed (`{"status":"error",
                // "message":"upstream request timeout"}`), not the render:
                // asked again, as after a 5xx; the render is never taken
                // for failed on it.
                return backoff();
            }
            // A 2xx saying the server's own processing failed is a 5xx
            // in all but name: the stream is checked, a read asked again.
            if (500..600).contains(&status) || server_error {
                return match endpoint {
                    Endpoint::RunSse => Recovery::RecoverStream,
                    e if e.is_idempotent() || e == Endpoint::RenderSubmit => backoff(),
                    _ => Recovery::Fail,
                };
            }
            Recovery::Fail
        }
    }
}

/// An expired or refused token: the API's code 1001, or an HTTP 401 that
/// carries no code of its own (`{"detail":"Invalid token"}`).
pub(crate) fn token_refused(status: u16, code: Option<i64>) -> bool {
    code == Some(1001) || (status == 401 && matches!(code, None | Some(401)))
}

/// Which counter a `Retry` decision spends: back-off or rate limit.
#[doc(hidden)]
pub fn record_retry(attempts: &mut Attempts, failure: &Failure) {
    match failure {
        Failure::Api { status: 429, .. }
        | Failure::Api {
            code: Some(429), ..
        } => attempts.rate_limited += 1,
        _ => attempts.backoffs += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<i64>) -> Failure {
        Failure::Api {
            status,
            code,
            retry_after: None,
            server_error: false,
        }
    }

    fn d(endpoint: Endpoint, f: Failure, a: Attempts, anonymous: bool) -> Recovery {
        decide(&RetryPolicy::default(), endpoint, &f, &a, anonymous, 0.0)
    }

    #[test]
    fn renewals_and_new_sessions_count_for_the_whole_command() {
        let mut a = Attempts::default();
        for r in [Recovery::RefreshToken, Recovery::NewSession] {
            a.record(r);
        }
        a.total = 3;
        a.backoffs = 2;
        a.answered();
        assert_eq!((a.total, a.backoffs), (0, 0));
        assert_eq!(
            d(Endpoint::RenderStatus, api(401, None), a, true),
            Recovery::Fail
        );
        assert_eq!(
            d(Endpoint::State, api(200, Some(1002)), a, true),
            Recovery::Fail
        );
    }

    #[test]
    fn table() {
        let a = Attempts::default();
        // A refusal that says nothing about our token (the CDN, a page)
        // never renews it.
        for endpoint in [Endpoint::Download, Endpoint::Credits, Endpoint::State] {
            assert_eq!(
                d(endpoint, Failure::Refused { status: 401 }, a, true),
                Recovery::Fail
            );
        }
        assert_eq!(
            d(Endpoint::Credits, api(200, Some(1001)), a, true),
            Recovery::RefreshToken
        );
        assert_eq!(
            d(Endpoint::Credits, api(200, Some(1001)), a, false),
            Recovery::Fail
        );
        assert_eq!(
            d(Endpoint::State, api(200, Some(1002)), a, true),
            Recovery::NewSession
        );
        assert_eq!(
            d(Endpoint::Download, api(404, Some(1002)), a, true),
            Recovery::Fail
        );
        assert_eq!(
            d(Endpoint::RunSse, api(429, None), a, true),
            Recovery::Retry {
                after: Duration::from_secs(30)
            }
        );
        assert_eq!(
            d(Endpoint::AnonymousToken, api(400, None), a, true),
            Recovery::NewClientId
        );
        for code in [2001, 4001, 4002, 402] {
            assert_eq!(
                d(Endpoint::Upload, api(200, Some(code)), a, true),
                Recovery::Fail
            );
        }
        assert_eq!(
            d(Endpoint::RenderSubmit, api(402, None), a, true),
            Recovery::Fail
        );
        assert_eq!(
            d(Endpoint::RenderSubmit, api(200, None), a, true),
            Recovery::NewRenderId
        );
        assert_eq!(
            d(Endpoint::State, api(503, None), a, true),
            Recovery::Retry {
                after: Duration::from_millis(500)
            }
        );
        assert_eq!(
            d(Endpoint::RunSse, api(502, None), a, true),
            Recovery::RecoverStream
        );
        assert_eq!(d(Endpoint::Upload, api(502, None), a, true), Recovery::Fail);
        assert_eq!(
            d(Endpoint::RenderStatus, api(200, None), a, true),
            Recovery::Retry {
                after: Duration::from_millis(500)
            }
        );
        assert_eq!(
            d(Endpoint::Credits, api(200, None), a, true),
            Recovery::Fail
        );
        let server_error = |status| Failure::Api {
            status,
            code: None,
            retry_after: None,
            server_error: true,
        };
        assert_eq!(
            d(Endpoint::RunSse, server_error(200), a, true),
            Recovery::RecoverStream
        );
        assert!(matches!(
            d(Endpoint::Credits, server_error(200), a, true),
            Recovery::Retry { .. }
        ));
        assert_eq!(
            d(
                Endpoint::RunSse,
                Failure::Transport(TransportErrorKind::Interrupted),
                a,
                true
            ),
            Recovery::RecoverStream
        );
        assert!(matches!(
            d(
                Endpoint::RunSse,
                Failure::Transport(TransportErrorKind::Connect),
                a,
                true
            ),
            Recovery::Retry { .. }
        ));
        assert_eq!(
            d(Endpoint::RunSse, Failure::StreamDropped, a, true),
            Recovery::RecoverStream
        );
    }

    #[test]
    fn a_401_without_a_code_renews_a_free_token_once_and_ends_a_users() {
        // `{"detail":"Invalid token"}`: no API code, only the status.
        let a = Attempts::default();
        assert_eq!(
            d(Endpoint::Credits, api(401, None), a, true),
            Recovery::RefreshToken
        );
        assert_eq!(
            d(Endpoint::Credits, api(401, Some(401)), a, true),
            Recovery::RefreshToken
        );
        assert_eq!(
            d(Endpoint::Credits, api(401, None), a, false),
            Recovery::Fail
        );
        let renewed = Attempts {
            token_refreshes: 1,
            ..Attempts::default()
        };
        assert_eq!(
            d(Endpoint::Credits, api(401, None), renewed, true),
            Recovery::Fail
        );
        // The token call itself cannot be fixed by another token call.
        assert_eq!(
            d(Endpoint::AnonymousToken, api(401, None), a, true),
            Recovery::Fail
        );
    }

    #[test]
    fn retry_after_is_honoured_and_bounded() {
        let f = Failure::Api {
            status: 429,
            code: None,
            retry_after: Some(Duration::from_secs(5)),
            server_error: false,
        };
        let a = Attempts::default();
        assert_eq!(
            d(Endpoint::Credits, f.clone(), a, true),
            Recovery::Retry {
                after: Duration::from_secs(5)
            }
        );
        let long = Failure::Api {
            status: 429,
            code: None,
            retry_after: Some(Duration::from_secs(7 * 24 * 3600)),
            server_error: false,
        };
        assert_eq!(d(Endpoint::AnonymousToken, long, a, true), Recovery::Fail);
        let mut once = Attempts::default();
        record_retry(&mut once, &f);
        assert_eq!(d(Endpoint::Credits, f, once, true), Recovery::Fail);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops() {
        let p = RetryPolicy::default();
        let f = api(500, None);
        let mut a = Attempts::default();
        let mut waits = Vec::new();
        loop {
            match decide(&p, Endpoint::State, &f, &a, true, 0.5) {
                Recovery::Retry { after } => {
                    waits.push(after.as_millis());
                    a.record(Recovery::Retry { after });
                    record_retry(&mut a, &f);
                }
                Recovery::Fail => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(waits, vec![562, 1125, 2250]);
    }
}
