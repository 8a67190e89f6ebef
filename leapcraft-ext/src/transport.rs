//! The transport every request of the generated client goes through: it adds the user agent
//! and the bearer token, applies timeouts, refreshes the token on `401` (see `auth`), retries
//! what is safe to retry, and records what it saw for error reporting.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use leapcraft_api::{ClientInfo, OperationInfo, Transport};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, ResponseBuilderExt, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::TokenCache;
use crate::call::{CallRecord, Progress};
use crate::error::Error;
use crate::retry::{RetryPolicy, Sleep, is_retryable_error, is_retryable_status};

/// The operation id of the token exchange: sent without a token, and retried although it is a
/// `POST` (it has no side effect worth avoiding).
pub(crate) const TOKEN_EXCHANGE: &str = "get_access_token";

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
    fn execute<'a>(
        &'a self,
        client: &'a leapcraft_api::Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> leapcraft_api::TransportFuture<'a> {
        let span = tracing::debug_span!(
            "leapcraft.call",
            operation = info.operation_id,
            method = %request.method(),
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        Box::pin(
            self.run(client, request, info.operation_id)
                .instrument(span),
        )
    }
}

impl LeapcraftTransport {
    async fn run(
        &self,
        client: &leapcraft_api::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> reqwest::Result<reqwest::Response> {
        let span = tracing::Span::current();
        let start = Instant::now();
        // A call that is retried again (its body was cut short) continues where it was.
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
            attempt
                .headers_mut()
                .insert(USER_AGENT, self.user_agent.clone());
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            *attempt.timeout_mut() = match (self.timeouts.attempt, remaining) {
                (Some(a), Some(r)) => Some(a.min(r)),
                (a, r) => a.or(r),
            };

            let token = if is_exchange {
                None
            } else {
                match self.tokens.token(client).await {
                    Ok(token) => Some(token),
                    Err(error) => {
                        let response = stand_in(&error);
                        CallRecord::with_current(|r| {
                            r.key_rejected = matches!(error, Error::Auth(_));
                            r.failure = Some(error);
                        });
                        break Ok(response);
                    }
                }
            };
            if let Some(token) = &token {
                attempt
                    .headers_mut()
                    .insert(AUTHORIZATION, token.header.clone());
                CallRecord::with_current(|r| r.set_token(&token.secret));
            }

            let outcome = match client.client().execute(attempt).await {
                Ok(response) => {
                    let status = response.status();
                    span.record("status", status.as_u16());
                    if let Some(token) = &token
                        && status != StatusCode::UNAUTHORIZED
                    {
                        token.proven.store(true, Ordering::Relaxed);
                    }
                    if status.is_success()
                        && CallRecord::with_current(|r| r.retries_bodies) == Some(true)
                    {
                        // The caller retries a body cut short itself: hand the response
                        // over unread (reading and rebuilding it here costs every call).
                        CallRecord::with_current(|r| {
                            r.progress = progress;
                            r.status = Some(status);
                        });
                        span.record("elapsed_ms", start.elapsed().as_millis() as u64);
                        return Ok(response);
                    }
                    Buffered::read(response).await
                }
                Err(e) => Err(e),
            };
            let retry_after = match &outcome {
                Ok(response) => {
                    if response.status == StatusCode::UNAUTHORIZED
                        && let Some(token) = &token
                    {
                        let first = progress.refreshed_from.is_none();
                        // A token that worked (for any call) and is refused now has expired:
                        // worth another refresh, within the retry budget. A fresh token
                        // refused at once is final.
                        let expired_again = !first
                            && progress.refreshed_from != Some(token.id)
                            && token.proven.load(Ordering::Relaxed);
                        if first || expired_again {
                            progress.refreshed_from = Some(token.id);
                            tracing::debug!("401: refreshing the token and resending");
                            self.tokens.invalidate(token);
                            if first {
                                continue;
                            }
                            if progress.retries + 1 < self.retry.max_attempts() {
                                progress.retries += 1;
                                continue;
                            }
                            break outcome;
                        }
                    }
                    if !(idempotent && is_retryable_status(response.status)) {
                        break outcome;
                    }
                    crate::retry::retry_after(&response.headers)
                }
                Err(e) => {
                    if !(idempotent && is_retryable_error(e)) {
                        break outcome;
                    }
                    None
                }
            };
            let Some(wait) = self.next_retry(&mut progress, deadline, retry_after) else {
                break outcome;
            };
            match &outcome {
                Ok(response) => tracing::info!(
                    retry = progress.retries,
                    wait_ms = wait.as_millis() as u64,
                    status = response.status.as_u16(),
                    "retrying"
                ),
                Err(e) => tracing::info!(
                    retry = progress.retries,
                    wait_ms = wait.as_millis() as u64,
                    error = %e,
                    "retrying"
                ),
            }
            self.sleep.sleep(wait).await;
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

    fn next_retry(
        &self,
        progress: &mut Progress,
        deadline: Option<Instant>,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        crate::retry::next_retry(&self.retry, &mut progress.retries, deadline, retry_after)
    }
}
