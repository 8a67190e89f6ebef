//! The transport every request of the generated client goes through: it adds the user agent
//! and the bearer token, and records what it saw for error reporting.
//!
//! A call of [`Client`](crate::Client) makes its own retries (`Client::call`, with
//! `retry::next`) and times its attempts: for these, the transport sends each request once,
//! as it is, and reads only error bodies. With a token at hand that takes the fast path of
//! [`Transport::prepare`] and [`Transport::finish`], without a boxed future. Requests made
//! through [`Client::api`](crate::Client::api) and the token exchange have nobody around them
//! to retry: for these, the transport itself applies the attempt timeout, refreshes the token
//! on `401` (see `auth`), and retries what is safe to retry, reading every body so that one
//! cut short is retried too.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use leapcraft_api::{ClientInfo, Finish, OperationInfo, Transport};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, ResponseBuilderExt, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::{Token, TokenCache};
use crate::call::CallRecord;
use crate::error::Error;
use crate::retry::{Next, Outcome, RetryPolicy, Sleep, is_retryable_error};

/// The operation id of the token exchange: sent without a token, and retried although it is a
/// `POST` (it has no side effect worth avoiding).
pub(crate) const TOKEN_EXCHANGE: &str = "get_access_token";

/// The earlier of two optional limits (deadlines, or durations from now); none if neither.
pub(crate) fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Timeouts of a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub attempt: Option<Duration>,
    pub overall: Option<Duration>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct LeapcraftTransport {
    pub tokens: Arc<TokenCache>,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    pub sleep: Arc<dyn Sleep>,
    pub user_agent: HeaderValue,
}

/// A response read to its end, so a truncated body counts as a failed attempt.
struct Buffered {
    /// The URL that answered (kept: rebuilding a response without it costs a URL parse).
    url: Option<reqwest::Url>,
    status: StatusCode,
    version: reqwest::Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Buffered {
    async fn read(mut response: reqwest::Response) -> reqwest::Result<Self> {
        let url = Some(response.url().clone());
        let status = response.status();
        let version = response.version();
        let headers = std::mem::take(response.headers_mut());
        let body = response.bytes().await?;
        Ok(Self {
            url,
            status,
            version,
            headers,
            body,
        })
    }

    fn into_response(self) -> reqwest::Response {
        let mut builder = http::Response::builder()
            .status(self.status)
            .version(self.version);
        if let Some(url) = self.url {
            builder = builder.url(url);
        }
        if let Some(headers) = builder.headers_mut() {
            *headers = self.headers;
        }
        let response = builder
            .body(self.body)
            .expect("status and version came from a valid response");
        reqwest::Response::from(response)
    }
}

/// A stand-in response for a call that failed before it was sent (the token exchange
/// failed): the calling method reports the recorded error; a caller of the generated client
/// sees this status and message.
fn stand_in(error: &Error) -> Buffered {
    let status = match error {
        Error::Auth(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({ "message": format!("token exchange failed: {error}") });
    Buffered {
        url: None,
        status,
        version: reqwest::Version::HTTP_11,
        headers: HeaderMap::from_iter([(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )]),
        body: Bytes::from(body.to_string()),
    }
}

impl Transport for LeapcraftTransport {
    fn prepare(&self, request: &mut reqwest::Request, _info: &OperationInfo) -> bool {
        // The fast path: a call of `Client` (which retries and times attempts itself) with a
        // token at hand. The token exchange never is one: it runs in a record of its own.
        CallRecord::with_current(|r| {
            if !r.caller_retries {
                return false;
            }
            let Some(token) = self.tokens.cached() else {
                return false;
            };
            self.authorize(request, &token);
            r.begin_attempt(Some(token));
            true
        })
        .unwrap_or(false)
    }

    fn finish<'a>(
        &'a self,
        outcome: reqwest::Result<reqwest::Response>,
        _info: &'a OperationInfo,
    ) -> Finish<'a> {
        let response = match outcome {
            Ok(response) => response,
            Err(e) => return Finish::Now(Err(e)),
        };
        let status = response.status();
        CallRecord::with_current(|r| {
            r.status = Some(status);
            if let Some(token) = &r.token
                && status != StatusCode::UNAUTHORIZED
            {
                token.proven.store(true, Ordering::Relaxed);
            }
        });
        if status.is_success() {
            // Handed over unread: the caller retries a body that cannot be read.
            return Finish::Now(Ok(response));
        }
        // An error response: read it for the record (status, message, request id,
        // Retry-After), then hand over a copy.
        Finish::Later(Box::pin(async move {
            let response = Buffered::read(response).await?;
            CallRecord::with_current(|r| {
                r.set_response(response.status, &response.headers, &response.body)
            });
            Ok(response.into_response())
        }))
    }

    fn execute<'a>(
        &'a self,
        client: &'a leapcraft_api::Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> leapcraft_api::TransportFuture<'a> {
        let operation = info.operation_id;
        if CallRecord::with_current(|r| r.caller_retries) == Some(true) {
            // A call of `Client` without a token at hand (its span is the caller's).
            return Box::pin(self.once(client, request, info));
        }
        let span = tracing::debug_span!(
            "leapcraft.call",
            operation,
            method = %request.method(),
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        Box::pin(self.run(client, request, operation).instrument(span))
    }
}

impl LeapcraftTransport {
    /// Readies an attempt of the transport's own loop: the user agent, and the attempt's
    /// timeout (cut to the time left before `deadline`).
    fn prepare_attempt(&self, request: &mut reqwest::Request, deadline: Option<Instant>) {
        self.add_user_agent(request);
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        *request.timeout_mut() = earliest(self.timeouts.attempt, remaining);
    }

    fn add_user_agent(&self, request: &mut reqwest::Request) {
        request
            .headers_mut()
            .insert(USER_AGENT, self.user_agent.clone());
    }

    /// The user agent and the bearer token.
    fn authorize(&self, request: &mut reqwest::Request, token: &Token) {
        self.add_user_agent(request);
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.header.clone());
    }

    /// A token for the next attempt, or the stand-in response to return when none can be had
    /// (the failure is recorded for the calling method).
    async fn token_or_stand_in(
        &self,
        client: &leapcraft_api::Client,
    ) -> Result<Arc<Token>, Buffered> {
        self.tokens.token(client).await.map_err(|error| {
            let response = stand_in(&error);
            CallRecord::with_current(|r| {
                r.key_rejected = matches!(error, Error::Auth(_));
                r.failure = Some(error);
            });
            response
        })
    }

    /// One attempt of a call of `Client` that had no token at hand: gets one (exchanging the
    /// key, or waiting for the exchange in progress), then goes on as the fast path does.
    async fn once<'a>(
        &'a self,
        client: &'a leapcraft_api::Client,
        mut request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let token = match self.token_or_stand_in(client).await {
            Ok(token) => token,
            Err(stand_in) => return Ok(stand_in.into_response()),
        };
        self.authorize(&mut request, &token);
        CallRecord::with_current(|r| r.begin_attempt(Some(token)));
        let outcome = client.client().execute(request).await;
        self.finish(outcome, info).outcome().await
    }

    /// Every attempt of a call, for callers of the generated client that do not retry
    /// themselves (`Client::api`, the token exchange): each attempt sends a clone of the
    /// request, and bodies are read here so that one cut short is retried too.
    async fn run(
        &self,
        client: &leapcraft_api::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> reqwest::Result<reqwest::Response> {
        let span = tracing::Span::current();
        let start = Instant::now();
        let mut progress = CallRecord::with_current(|r| r.progress).unwrap_or_default();
        let deadline = CallRecord::current_deadline().or(self.timeouts.overall.map(|d| start + d));
        let is_exchange = operation == TOKEN_EXCHANGE;
        let idempotent = is_exchange || matches!(*request.method(), Method::GET | Method::HEAD);

        let result = loop {
            progress.attempts += 1;
            span.record("attempt", progress.attempts);
            CallRecord::with_current(|r| r.progress = progress);

            let Some(mut attempt) = request.try_clone() else {
                // A streaming body cannot be sent twice; the API's requests have none.
                return client.client().execute(request).await;
            };
            self.prepare_attempt(&mut attempt, deadline);
            let token = if is_exchange {
                None
            } else {
                match self.token_or_stand_in(client).await {
                    Ok(token) => Some(token),
                    Err(stand_in) => break Ok(stand_in),
                }
            };
            if let Some(token) = &token {
                attempt
                    .headers_mut()
                    .insert(AUTHORIZATION, token.header.clone());
            }

            let outcome = match client.client().execute(attempt).await {
                Ok(response) => Box::pin(Buffered::read(response)).await,
                Err(e) => Err(e),
            };
            let seen = match &outcome {
                Ok(response) => {
                    span.record("status", response.status.as_u16());
                    if let Some(token) = &token
                        && response.status != StatusCode::UNAUTHORIZED
                    {
                        token.proven.store(true, Ordering::Relaxed);
                    }
                    Outcome::Status {
                        status: response.status,
                        retry_after: crate::retry::retry_after(&response.headers),
                        token: token.as_deref(),
                    }
                }
                Err(e) => Outcome::Failed {
                    retryable: is_retryable_error(e),
                    error: e,
                },
            };
            match crate::retry::next(
                &self.retry,
                &self.tokens,
                &mut progress,
                deadline,
                idempotent,
                seen,
            ) {
                Next::Stop => {
                    CallRecord::with_current(|r| r.token = token);
                    break outcome;
                }
                Next::Resend => {}
                Next::Wait(wait) => self.sleep.sleep(wait).await,
            }
        };

        CallRecord::with_current(|r| r.progress = progress);
        span.record("elapsed_ms", start.elapsed().as_millis() as u64);
        match result {
            Ok(response) => {
                CallRecord::with_current(|r| {
                    r.set_response(response.status, &response.headers, &response.body)
                });
                Ok(response.into_response())
            }
            Err(e) => Err(e),
        }
    }
}
