//! What the transport learns about one call (attempts, final status, headers, body, the
//! token used), handed back to the code that decides on retries and turns the generated
//! client's result into ours.
//!
//! The generated client's error type drops most of this (an HTML 503 becomes a bare JSON
//! error without its status), and progenitor's code stands between the calling method and
//! the transport, so the transport writes it to a task-local record that the calling method
//! set up around the call.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::auth::Token;
use crate::error::{Error, snippet};

tokio::task_local! {
    // Boxed: tokio swaps a task-local's value in and out on every poll.
    static RECORD: RefCell<Box<CallRecord>>;
}

/// A future run with a call record as the current call's.
pub(crate) type Scoped<F> = tokio::task::futures::TaskLocalFuture<RefCell<Box<CallRecord>>, F>;

/// Response headers that carry a request id, in order of preference.
const REQUEST_ID_HEADERS: [&str; 5] = [
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "x-amzn-requestid",
    "x-amz-request-id",
];

/// How far a call has got through its retry budget.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    /// Requests sent, the first included.
    pub attempts: u32,
    /// Retries made (a resend after the first token refresh is not one).
    pub retries: u32,
    /// The token this call last refreshed away from, if it refreshed.
    pub refreshed_from: Option<u64>,
}

/// What one call learned; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct CallRecord {
    pub operation: &'static str,
    pub progress: Progress,
    /// The caller makes the retries (`Client`'s methods do): the transport sends each request
    /// once, as it is, and records what the caller needs to decide.
    pub caller_retries: bool,
    pub status: Option<StatusCode>,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
    /// The token exchange was refused: a 401 means a bad key, not an expired token.
    pub key_rejected: bool,
    /// A successful body is a secret (the token exchange's): never quote it, nor what a
    /// decoder said of it.
    pub secret_body: bool,
    /// A failure the transport already translated (a failed token exchange).
    pub failure: Option<Error>,
    /// When the call must be over: attempts are cut to it, no retry starts past it.
    pub deadline: Option<Instant>,
    /// The token the last attempt was sent with: refreshed away from on a `401`, and
    /// redacted, like the API key, from anything an error quotes.
    pub token: Option<Arc<Token>>,
    api_key: Option<Arc<SecretString>>,
}

impl CallRecord {
    /// A record for `operation`, due by `deadline`; `api_key` is redacted from anything it
    /// quotes.
    pub fn new(
        operation: &'static str,
        deadline: Option<Instant>,
        api_key: &Arc<SecretString>,
    ) -> Self {
        Self {
            operation,
            secret_body: operation == crate::transport::TOKEN_EXCHANGE,
            deadline,
            api_key: Some(api_key.clone()),
            ..Self::default()
        }
    }

    /// Notes that an attempt starts, sent with `token`: what the last one left is forgotten.
    pub fn begin_attempt(&mut self, token: Option<Arc<Token>>) {
        self.progress.attempts += 1;
        self.status = None;
        self.token = token;
    }

    /// Notes the final response of the call. Only an error response's details are kept.
    pub fn set_response(&mut self, status: StatusCode, headers: &HeaderMap, body: &Bytes) {
        self.status = Some(status);
        if status.is_success() {
            return;
        }
        self.request_id = REQUEST_ID_HEADERS
            .iter()
            .find_map(|name| headers.get(*name)?.to_str().ok())
            .map(|id| id.chars().take(128).collect());
        self.retry_after = crate::retry::retry_after(headers);
        self.body = body.clone();
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let token = self.token.as_ref().map(|t| &t.secret);
        for secret in self.api_key.iter().chain(token) {
            let secret = secret.expose_secret();
            if !secret.is_empty() {
                text = text.replace(secret, "[redacted]");
            }
        }
        text
    }

    /// The start of the final error body (only error bodies are kept).
    pub fn body_snippet(&self) -> String {
        snippet(&self.body)
    }

    /// The `message`, `error` or `detail` of a JSON error body.
    pub fn body_message(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        ["message", "error", "detail"]
            .iter()
            .find_map(|key| value.get(*key)?.as_str())
            .map(|m| m.chars().take(512).collect())
    }
}

impl CallRecord {
    /// Runs `fut` with this record as the current call's; returns its output and the record
    /// as the transport left it.
    pub async fn run<F: Future>(self, fut: F) -> (F::Output, CallRecord) {
        let mut scoped = std::pin::pin!(Box::new(self).scope(fut));
        let output = scoped.as_mut().await;
        (output, *CallRecord::take(scoped))
    }

    /// `fut` with this record as the current call's: [`run`](Self::run) in two steps, for a
    /// caller that keeps the future in place (it is large) and then [`take`](Self::take)s the
    /// record back.
    pub fn scope<F: Future>(self: Box<Self>, fut: F) -> Scoped<F> {
        RECORD.scope(RefCell::new(self), fut)
    }

    /// The record of a [`scope`](Self::scope)d future that has completed.
    pub fn take<F: Future>(scoped: std::pin::Pin<&mut Scoped<F>>) -> Box<CallRecord> {
        scoped
            .take_value()
            .map(RefCell::into_inner)
            .unwrap_or_default()
    }

    /// Applies `f` to the current call's record, if the caller set one up.
    pub fn with_current<R>(f: impl FnOnce(&mut CallRecord) -> R) -> Option<R> {
        RECORD.try_with(|r| f(&mut r.borrow_mut())).ok()
    }

    /// The current call's deadline, if the caller set one.
    pub fn current_deadline() -> Option<Instant> {
        RECORD.try_with(|r| r.borrow().deadline).ok().flatten()
    }
}
