//! The one loop every request goes through: pacing, attempts, waits, the retry budget and
//! timeouts, for the methods of [`Client`](crate::Client) and for calls through
//! [`Client::api`](crate::Client::api) alike.
//!
//! [`Pipeline::invoke`] runs a call; `try_op` makes attempts until [`decide`] says stop;
//! `try_attempt` makes one attempt: authenticated through
//! [`TokenCache::authenticated`](crate::auth::TokenCache::authenticated), which owns the
//! token and its refreshes (a refresh is not a retry: it spends no attempt), and `send` sends
//! one request in its turn from the rate limiter (see [`RateLimiter::acquire`]), tells the
//! limiter of a `429`, and reads the body within the attempt's timeout and the body limits
//! (see [`Buffered::read`]). The call's overall deadline ends every wait it makes (for a
//! token, for its turn, for an attempt), and [`decide`] starts no backoff that would end
//! after it. Everything an attempt held (connection, body, token) is dropped before a
//! backoff wait starts. The loop spends from the retry budget for each retry and gives back
//! when a call succeeds; [`decide`] is told what is left.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use secrecy::SecretString;
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::{Token, TokenCache, Verdict};
use crate::breaker::{self, Breaker};
use crate::error::{Error, Redact, error_chain};
use crate::options::{CallOptions, ResponseMetadata};
use crate::rate_limit::RateLimiter;
use crate::response::{Buffered, ReadError, is_retryable_status, retry_after};
use crate::retry::{
    Action, Facts, Observed, RETRY_COST, RetryPolicy, SUCCESS_REWARD, Unanswered, decide,
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
    /// Fails calls at once while the API refuses everything, for every clone.
    pub breaker: Breaker,
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
    /// A lower body limit than the client's, for a request whose answer cannot need more.
    pub max_body: Option<usize>,
    /// The call's own timeouts, attempts and where its final response is told.
    pub options: &'a CallOptions,
}

/// How a call failed: the error, and the final response when there was one.
#[derive(Debug)]
pub(crate) struct CallFailure {
    pub error: Error,
    pub response: Option<Box<Buffered>>,
}

impl From<Error> for CallFailure {
    fn from(error: Error) -> Self {
        Self {
            error,
            response: None,
        }
    }
}

/// An attempt that got no usable answer.
struct AttemptFailure {
    kind: Unanswered,
    /// reqwest's error, when reqwest failed (not for our own timeout or body limit).
    error: Option<reqwest::Error>,
}

impl AttemptFailure {
    fn of(error: reqwest::Error) -> Self {
        Self {
            kind: Unanswered::of(&error),
            error: Some(error),
        }
    }

    fn ours(kind: Unanswered) -> Self {
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
    /// outcome as a [`CallFailure`].
    pub async fn invoke(&self, call: Call<'_>) -> Result<Buffered, CallFailure> {
        let operation = call.operation;
        let url = call.request.url();
        let span = tracing::debug_span!(
            "leapcraft.call",
            operation,
            "http.request.method" = call.request.method().as_str(),
            "url.path" = url.path(),
            "server.address" = url.host_str(),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            "http.response.status_code" = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        // A deadline too far to represent is no deadline.
        let overall = call.options.overall_timeout.or(self.timeouts.overall);
        let deadline = overall.and_then(|t| started.checked_add(t));
        let mut progress = Progress::default();
        let result = self
            .try_op(&call, deadline, &mut progress)
            .instrument(span.clone())
            .await;
        span.record("attempts", progress.attempts);
        if let Some(status) = progress.status {
            span.record("status", status.as_u16());
            span.record("http.response.status_code", status.as_u16());
        }
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        if let Some(last) = &call.options.last_response {
            let response = match &result {
                Ok(response) => Some(response),
                Err(failure) => failure.response.as_deref(),
            };
            last.set(response.map(|response| ResponseMetadata {
                operation,
                status: response.status,
                headers: response.headers.clone(),
                request_id: crate::response::request_id(&response.headers),
                attempts: progress.attempts,
                elapsed: started.elapsed(),
            }));
        }
        result
    }

    async fn try_op(
        &self,
        call: &Call<'_>,
        deadline: Option<Instant>,
        progress: &mut Progress,
    ) -> Result<Buffered, CallFailure> {
        if call.request.try_clone().is_none() {
            return Err(Error::invalid(format!(
                "{}: a request with a streaming body cannot be sent by this client",
                call.operation
            ))
            .into());
        }
        loop {
            if let Err(open) = self.breaker.admit() {
                return Err(Error::Refusing {
                    operation: call.operation,
                    refusing_for: open.refusing_for,
                    last_status: open.last_status.and_then(|s| StatusCode::from_u16(s).ok()),
                }
                .into());
            }
            progress.attempts += 1;
            let (outcome, token) = self.try_attempt(call, deadline, progress.attempts).await?;
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
            self.breaker.record(match observed {
                Observed::Status { status, .. } if !is_retryable_status(status) => {
                    breaker::Outcome::Answered
                }
                Observed::Failure(kind) if !kind.is_retryable() => breaker::Outcome::Answered,
                _ => breaker::Outcome::Refused {
                    status: status.map(|s| s.as_u16()),
                    budget_spent: self.budget.left() < RETRY_COST,
                },
            });
            let facts = Facts {
                observed,
                attempts: progress.attempts,
                time_left: deadline.map(|d| d.saturating_duration_since(Instant::now())),
                idempotent: call.idempotent,
                jitter: rand::random(),
                budget: self.budget.left(),
            };
            let policy = match call.options.max_attempts {
                Some(attempts) => Cow::Owned(self.policy.clone().with_max_attempts(attempts)),
                None => Cow::Borrowed(&self.policy),
            };
            match decide(&policy, &facts) {
                Action::Stop => {
                    if status.is_some_and(|s| s.is_success()) {
                        self.budget
                            .refill(progress.retry_cost.unwrap_or(SUCCESS_REWARD));
                    }
                    return self.finish(call, outcome, token, progress);
                }
                Action::OutOfBudget => {
                    tracing::warn!(
                        operation = call.operation,
                        attempt = progress.attempts,
                        status = status.map(|s| s.as_u16()),
                        "not retrying: the client's retry budget is spent (too many failures lately)"
                    );
                    return self.finish(call, outcome, token, progress);
                }
                Action::Retry { wait, cost } => {
                    self.budget.spend(cost);
                    progress.retry_cost = Some(cost);
                    tracing::info!(
                        operation = call.operation,
                        attempt = progress.attempts,
                        wait_ms = wait.as_millis() as u64,
                        status = status.map(|s| s.as_u16()),
                        error = outcome.as_ref().err().map(describe),
                        "retrying {} after {} ms",
                        call.operation,
                        wait.as_millis()
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

    /// One attempt, with the call's token if it needs one: its outcome and the token it was
    /// sent with. An error when no token could be had, or not before the deadline.
    async fn try_attempt(
        &self,
        call: &Call<'_>,
        deadline: Option<Instant>,
        attempt: u32,
    ) -> Result<(Result<Buffered, AttemptFailure>, Option<Arc<Token>>), CallFailure> {
        let Some(tokens) = call.tokens else {
            return Ok((self.send(call, None, deadline, attempt).await, None));
        };
        let authenticated = tokens.authenticated(|token: Arc<Token>| async move {
            let outcome = self
                .send(call, Some(&token.header), deadline, attempt)
                .await;
            let verdict = match &outcome {
                Ok(response) if response.status == StatusCode::UNAUTHORIZED => Verdict::Refused,
                Ok(_) => Verdict::Accepted,
                Err(_) => Verdict::Unknown,
            };
            (outcome, verdict)
        });
        match within(deadline, authenticated).await {
            Some(Ok((outcome, token))) => Ok((outcome, Some(token))),
            Some(Err(error)) => Err(error.into()),
            None => Err(timeout(call.operation, attempt).into()),
        }
    }

    /// Sends the call's request once, in its turn, with `authorization` if given, and reads
    /// the body, within the attempt's timeout and `deadline`.
    async fn send(
        &self,
        call: &Call<'_>,
        authorization: Option<&HeaderValue>,
        deadline: Option<Instant>,
        attempt: u32,
    ) -> Result<Buffered, AttemptFailure> {
        // The token first, then the turn, right before sending: turns taken while a token
        // exchange ran would all be spent at once when it ended, a burst. (A token that
        // expires during the wait is refreshed on the `401`, as any.)
        let Some(turn) = within(deadline, self.limiter.acquire(&*self.sleep)).await else {
            return Err(AttemptFailure::ours(Unanswered::Timeout));
        };
        let Some(mut request) = call.request.try_clone() else {
            return Err(AttemptFailure::ours(Unanswered::Request));
        };
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, self.user_agent.clone());
        if let Some(authorization) = authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        let attempt_deadline = earliest(
            call.options
                .attempt_timeout
                .or(self.timeouts.attempt)
                .and_then(|t| Instant::now().checked_add(t)),
            deadline,
        );
        let span = tracing::debug_span!(
            "leapcraft.attempt",
            operation = call.operation,
            attempt,
            "http.request.method" = request.method().as_str(),
            "url.path" = request.url().path(),
            "server.address" = request.url().host_str(),
            "http.response.status_code" = tracing::field::Empty,
        );
        let started = Instant::now();
        let outcome = self
            .read_response(request, self.max_body_of(call), attempt_deadline)
            .instrument(span.clone())
            .await;
        let outcome = outcome.map(|response| repair_text(call.operation, response));
        let status = outcome.as_ref().ok().map(|r| r.status);
        if let Some(status) = status {
            span.record("http.response.status_code", status.as_u16());
        }
        span.in_scope(|| {
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                error = outcome.as_ref().err().map(describe),
                "{} {}{} in {} ms",
                call.operation,
                status.map_or_else(|| "no answer".to_owned(), |s| s.as_u16().to_string()),
                if attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                },
                started.elapsed().as_millis()
            )
        });
        self.counters
            .request(call.operation, status.map_or(0, |s| s.as_u16()));
        if status == Some(StatusCode::TOO_MANY_REQUESTS) {
            self.limiter.throttled(turn);
        }
        outcome
    }

    /// The body limit of `call`.
    fn max_body_of(&self, call: &Call<'_>) -> usize {
        call.max_body
            .map_or(self.max_body, |m| m.min(self.max_body))
    }

    /// Sends `request` and reads its body, up to `max_body` bytes, cut at `deadline`.
    async fn read_response(
        &self,
        request: reqwest::Request,
        max_body: usize,
        deadline: Option<Instant>,
    ) -> Result<Buffered, AttemptFailure> {
        let attempt = async {
            let response = self
                .http
                .execute(request)
                .await
                .map_err(AttemptFailure::of)?;
            Buffered::read(response, max_body)
                .await
                .map_err(|e| match e {
                    ReadError::TooLarge => AttemptFailure::ours(Unanswered::TooLarge),
                    ReadError::Failed(e) => AttemptFailure::of(e),
                })
        };
        within(deadline, attempt)
            .await
            .unwrap_or_else(|| Err(AttemptFailure::ours(Unanswered::Timeout)))
    }

    /// The call's outcome, from its last attempt.
    fn finish(
        &self,
        call: &Call<'_>,
        outcome: Result<Buffered, AttemptFailure>,
        token: Option<Arc<Token>>,
        progress: &Progress,
    ) -> Result<Buffered, CallFailure> {
        let (operation, attempts) = (call.operation, progress.attempts);
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
                Err(CallFailure {
                    error,
                    response: Some(Box::new(response)),
                })
            }
            Err(failure) => Err(CallFailure::from(match (failure.kind, failure.error) {
                (Unanswered::TooLarge, _) => Error::ResponseTooLarge {
                    operation,
                    limit: self.max_body_of(call) as u64,
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

/// A successful response whose text is repaired where it is not valid (see
/// [`crate::lenient::repair_text`]), with a warning when anything was.
fn repair_text(operation: &'static str, mut response: Buffered) -> Buffered {
    if !response.status.is_success() {
        return response;
    }
    let (text, repairs) = crate::lenient::repair_text(&response.body);
    if repairs > 0 {
        let text = bytes::Bytes::from(text.into_owned());
        tracing::warn!(
            operation,
            repairs,
            "{operation}: {repairs} invalid character(s) in the response replaced by U+FFFD"
        );
        response.body = text;
    }
    response
}
