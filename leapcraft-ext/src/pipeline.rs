//! The one loop every request goes through: pacing, attempts, waits, token refreshes, the
//! retry budget and timeouts, for the methods of [`Client`](crate::Client) and for calls
//! through [`Client::api`](crate::Client::api) alike.
//!
//! [`Pipeline::invoke`] runs a call; `try_op` makes attempts until [`decide`] says stop, each
//! one after its turn from the rate limiter (see [`RateLimiter::acquire`]), and tells the
//! limiter of every `429`; `try_attempt` sends one request and reads its body, within the
//! attempt's timeout and the body limits (see [`Buffered::read`]). The call's overall
//! deadline ends every wait it makes (for a token, for its turn, for an attempt), and
//! [`decide`] starts no backoff that would end after it. Everything an attempt held
//! (connection, body, token) is dropped before a backoff wait starts. The loop spends from
//! the retry budget for each retry and gives back when a call succeeds; [`decide`] is told
//! what is left.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use secrecy::SecretString;
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::{Token, TokenCache};
use crate::error::{Error, Redact, error_chain};
use crate::rate_limit::RateLimiter;
use crate::response::{Buffered, ReadError, retry_after};
use crate::retry::{
    Action, Facts, FailureKind, Observed, RetryPolicy, SUCCESS_REWARD, TokenUse, decide,
};
use crate::retry_budget::RetryBudget;
use crate::sleep::Sleep;
use crate::stats::Counters;

/// Timeouts of a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// One attempt: sending, and reading the whole body.
    pub attempt: Option<Duration>,
    /// The whole call: attempts, waits, and getting a token.
    pub overall: Option<Duration>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub http: reqwest::Client,
    pub user_agent: HeaderValue,
    pub policy: RetryPolicy,
    pub timeouts: Timeouts,
    /// The most bytes read of a successful response's body.
    pub max_body: usize,
    pub sleep: Arc<dyn Sleep>,
    pub counters: Counters,
    /// Paces every attempt of every clone.
    pub limiter: RateLimiter,
    /// What retries may still spend, for every clone.
    pub budget: RetryBudget,
    /// Redacted from anything an error quotes.
    pub api_key: Arc<SecretString>,
}

/// One call to make.
pub(crate) struct Call<'a> {
    pub operation: &'static str,
    pub request: reqwest::Request,
    /// Where the call's bearer token comes from; `None` sends none (the token exchange).
    pub tokens: Option<&'a TokenCache>,
    /// The request may be sent again without harm.
    pub idempotent: bool,
}

/// How a call failed: the error, and the final response when there was one.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: Error,
    pub response: Option<Box<Buffered>>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            error,
            response: None,
        }
    }
}

/// An attempt that got no usable answer.
struct AttemptFailure {
    kind: FailureKind,
    /// reqwest's error, when reqwest failed (not for our own timeout or body limit).
    error: Option<reqwest::Error>,
}

impl AttemptFailure {
    fn of(error: reqwest::Error) -> Self {
        Self {
            kind: FailureKind::of(&error),
            error: Some(error),
        }
    }

    fn ours(kind: FailureKind) -> Self {
        Self { kind, error: None }
    }
}

/// How far a call has got.
#[derive(Default)]
struct Progress {
    attempts: u32,
    status: Option<StatusCode>,
    /// What the last retry cost, given back if the call succeeds.
    retry_cost: Option<u32>,
}

impl Pipeline {
    /// Makes `call`: see the module docs. A successful response comes back read; any other
    /// outcome as a [`Failure`].
    pub async fn invoke(&self, call: Call<'_>) -> Result<Buffered, Failure> {
        let operation = call.operation;
        let span = tracing::debug_span!(
            "leapcraft.call",
            operation,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        // A deadline too far to represent is no deadline.
        let deadline = self.timeouts.overall.and_then(|t| started.checked_add(t));
        let mut progress = Progress::default();
        let result = self
            .try_op(&call, deadline, &mut progress)
            .instrument(span.clone())
            .await;
        span.record("attempts", progress.attempts);
        if let Some(status) = progress.status {
            span.record("status", status.as_u16());
        }
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        result
    }

    async fn try_op(
        &self,
        call: &Call<'_>,
        deadline: Option<Instant>,
        progress: &mut Progress,
    ) -> Result<Buffered, Failure> {
        loop {
            let out_of_time = || Failure::from(timeout(call.operation, progress.attempts));
            let token = match call.tokens {
                Some(tokens) => Some(
                    within(deadline, tokens.token())
                        .await
                        .ok_or_else(out_of_time)??,
                ),
                None => None,
            };
            // The token first, then the turn, right before sending: turns taken while a token
            // exchange ran would all be spent at once when it ended, a burst. (A token that
            // expires during the wait is refreshed on the `401`, as any.)
            let permit = within(deadline, self.limiter.acquire(&*self.sleep))
                .await
                .ok_or_else(out_of_time)?;
            let Some(mut request) = call.request.try_clone() else {
                return Err(Error::invalid(format!(
                    "{}: a request with a streaming body cannot be sent by this client",
                    call.operation
                ))
                .into());
            };
            let headers = request.headers_mut();
            headers.insert(USER_AGENT, self.user_agent.clone());
            let first_send = match &token {
                Some(token) => {
                    headers.insert(AUTHORIZATION, token.header.clone());
                    token.first_send()
                }
                None => false,
            };
            progress.attempts += 1;
            let attempt_deadline = earliest(
                self.timeouts
                    .attempt
                    .and_then(|t| Instant::now().checked_add(t)),
                deadline,
            );
            let outcome = self.try_attempt(request, attempt_deadline).await;

            let observed = match &outcome {
                Ok(response) => Observed::Status {
                    status: response.status,
                    retry_after: retry_after(&response.headers, SystemTime::now()),
                },
                Err(failure) => Observed::Failure(failure.kind),
            };
            let status = match observed {
                Observed::Status { status, .. } => Some(status),
                Observed::Failure(_) => None,
            };
            progress.status = status;
            self.counters
                .request(call.operation, status.map_or(0, |s| s.as_u16()));
            if status == Some(StatusCode::TOO_MANY_REQUESTS) {
                self.limiter.throttled(permit);
            }
            let token_use = match (&token, status) {
                (None, _) => TokenUse::None,
                (Some(refused), Some(StatusCode::UNAUTHORIZED)) => {
                    // A refused token is dropped whatever the call does next, so that the
                    // next call that needs one exchanges the key again.
                    if let Some(tokens) = call.tokens {
                        tokens.invalidate(refused);
                    }
                    refused.use_when_refused(first_send)
                }
                (Some(token), Some(_)) => {
                    token.prove();
                    TokenUse::Shared
                }
                (Some(_), None) => TokenUse::Shared,
            };
            let facts = Facts {
                observed,
                attempts: progress.attempts,
                time_left: deadline.map(|d| d.saturating_duration_since(Instant::now())),
                idempotent: call.idempotent,
                token: token_use,
                jitter: rand::random(),
                budget: self.budget.left(),
            };
            match decide(&self.policy, &facts) {
                Action::Stop => {
                    if status.is_some_and(|s| s.is_success()) {
                        self.budget
                            .refill(progress.retry_cost.unwrap_or(SUCCESS_REWARD));
                    }
                    return self.finish(call.operation, outcome, token, progress);
                }
                Action::OutOfBudget => {
                    tracing::warn!(
                        attempt = progress.attempts,
                        status = status.map(|s| s.as_u16()),
                        "not retrying: the client's retry budget is spent (too many failures lately)"
                    );
                    return self.finish(call.operation, outcome, token, progress);
                }
                Action::RefreshToken => {
                    tracing::debug!(
                        "401 to a token that had been used: it expired; refreshing the token and resending"
                    );
                    self.counters.retry();
                }
                Action::Retry { wait, cost } => {
                    self.budget.spend(cost);
                    progress.retry_cost = Some(cost);
                    tracing::info!(
                        attempt = progress.attempts,
                        wait_ms = wait.as_millis() as u64,
                        status = status.map(|s| s.as_u16()),
                        error = outcome.as_ref().err().map(describe),
                        "retrying"
                    );
                    // Nothing of the attempt is held while waiting.
                    drop(outcome);
                    drop(token);
                    self.counters.retry();
                    self.sleep.sleep(wait).await;
                }
            }
        }
    }

    /// Sends `request` and reads its body, cut at `deadline`.
    async fn try_attempt(
        &self,
        request: reqwest::Request,
        deadline: Option<Instant>,
    ) -> Result<Buffered, AttemptFailure> {
        let attempt = async {
            let response = self
                .http
                .execute(request)
                .await
                .map_err(AttemptFailure::of)?;
            Buffered::read(response, self.max_body)
                .await
                .map_err(|e| match e {
                    ReadError::TooLarge => AttemptFailure::ours(FailureKind::TooLarge),
                    ReadError::Failed(e) => AttemptFailure::of(e),
                })
        };
        within(deadline, attempt)
            .await
            .unwrap_or_else(|| Err(AttemptFailure::ours(FailureKind::Timeout)))
    }

    /// The call's outcome, from its last attempt.
    fn finish(
        &self,
        operation: &'static str,
        outcome: Result<Buffered, AttemptFailure>,
        token: Option<Arc<Token>>,
        progress: &Progress,
    ) -> Result<Buffered, Failure> {
        let attempts = progress.attempts;
        match outcome {
            Ok(response) if response.status.is_success() => Ok(response),
            Ok(response) => {
                let redact = Redact {
                    secrets: [Some(&self.api_key), token.as_ref().map(|t| &t.secret)],
                };
                let error = Error::from_response(
                    operation,
                    response.status,
                    &response.headers,
                    &response.body,
                    attempts,
                    &redact,
                );
                Err(Failure {
                    error,
                    response: Some(Box::new(response)),
                })
            }
            Err(failure) => Err(Failure::from(match (failure.kind, failure.error) {
                (FailureKind::TooLarge, _) => Error::ResponseTooLarge {
                    operation,
                    limit: self.max_body as u64,
                },
                (_, Some(error)) => Error::from_reqwest(operation, attempts, error),
                (_, None) => timeout(operation, attempts),
            })),
        }
    }
}

fn timeout(operation: &'static str, attempts: u32) -> Error {
    Error::Timeout {
        operation,
        attempts: attempts.max(1),
    }
}

fn describe(failure: &AttemptFailure) -> String {
    match &failure.error {
        Some(error) => error_chain(error),
        None => format!("{:?}", failure.kind),
    }
}

/// The output of `future`, or `None` if `deadline` passes first. A future that is ready at
/// once never starts a timer: a call pays for one timer per attempt, not one per wait.
async fn within<T>(deadline: Option<Instant>, future: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

/// The earlier of two optional deadlines; none if neither.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
