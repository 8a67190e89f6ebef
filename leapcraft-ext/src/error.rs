//! The one error type of the crate, and the translation of the generated client's errors into
//! it.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

use crate::call::CallRecord;

/// Bodies quoted in errors are cut to this many bytes.
pub const MAX_SNIPPET: usize = 4096;

/// Everything that can go wrong in a call.
///
/// Display texts are one line, name the operation where one is known, and never contain the
/// API key or a token.
///
/// ```
/// # async fn run(client: leapcraft_ext::Client) {
/// match client.device("D2:C1:AA:FF:3E:09").await {
///     Ok(device) => println!("serial {:?}", device.serial),
///     Err(leapcraft_ext::Error::Api(e)) if e.status.as_u16() == 404 => println!("no such device"),
///     Err(e) if e.is_retryable() => println!("try again later: {e}"),
///     Err(e) => println!("failed: {e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API key was rejected, or a call was still unauthorised after a token refresh.
    #[error(transparent)]
    Auth(Box<AuthError>),
    /// The API answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// A response body did not have the documented shape.
    #[error(transparent)]
    Decode(Box<DecodeError>),
    /// The request could not be sent, or its response not read.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// The call did not finish in time (a per-attempt or the overall timeout).
    #[error("{operation}: timed out after {attempts} attempt(s)")]
    Timeout {
        /// The operation id, such as `list_devices`.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// The arguments were rejected before any request was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A page repeated items of an earlier page: the server ignored the paging parameters,
    /// or the list changed while it was being paged. Nothing was delivered twice.
    #[error(
        "{operation}: page {page} repeats items of an earlier page (paging parameters ignored, or the list changed while paging)"
    )]
    Pagination {
        /// The operation id, such as `list_devices`.
        operation: &'static str,
        /// The page that repeated items, counting from 1.
        page: u64,
    },
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The token exchange rejected the API key.
    KeyRejected,
    /// A call was answered `401` again right after a fresh token was obtained.
    Unauthorized,
}

/// Authentication failed: see [`AuthErrorKind`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: authentication failed: {}{}", self.describe(), self.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
#[non_exhaustive]
pub struct AuthError {
    /// Why.
    pub kind: AuthErrorKind,
    /// The operation that failed.
    pub operation: &'static str,
    /// The HTTP status the server answered with.
    pub status: Option<StatusCode>,
    /// The server's message, if its body carried one (secrets redacted).
    pub message: Option<String>,
}

impl AuthError {
    fn describe(&self) -> String {
        let status = self
            .status
            .map(|s| format!(" ({})", s.as_u16()))
            .unwrap_or_default();
        match self.kind {
            AuthErrorKind::KeyRejected => format!("the API key was rejected{status}"),
            AuthErrorKind::Unauthorized => {
                format!("still unauthorised after a token refresh{status}")
            }
        }
    }
}

/// The API answered with an error status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {status}{}{}", self.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(), self.attempts_suffix())]
#[non_exhaustive]
pub struct ApiError {
    /// The operation that failed.
    pub operation: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The server's message (`message`, `error` or `detail` of a JSON body), if any.
    pub message: Option<String>,
    /// The start of the body, at most [`MAX_SNIPPET`] bytes, secrets redacted.
    pub body: String,
    /// The request id, when a response header carried one (`x-request-id` and the like).
    pub request_id: Option<String>,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// Attempts made, retries included.
    pub attempts: u32,
}

impl ApiError {
    fn attempts_suffix(&self) -> String {
        if self.attempts > 1 {
            format!(" (after {} attempts)", self.attempts)
        } else {
            String::new()
        }
    }
}

/// A response body did not have the documented shape.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: unexpected response body at `{path}`: {reason}")]
#[non_exhaustive]
pub struct DecodeError {
    /// The operation whose response failed to decode.
    pub operation: &'static str,
    /// Where in the body decoding failed, such as `[3].created_at` (`.` for the root).
    pub path: String,
    /// What was wrong there.
    pub reason: String,
    /// The start of the body, at most [`MAX_SNIPPET`] bytes, secrets redacted (empty for the
    /// token exchange, whose body is a secret).
    pub body: String,
}

/// The request could not be sent, or its response not read completely.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}{}", if *attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() })]
#[non_exhaustive]
pub struct TransportError {
    /// The operation that failed.
    pub operation: &'static str,
    /// What happened.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// The underlying error, if any.
    #[source]
    pub source: Option<reqwest::Error>,
}

impl Error {
    /// Whether trying the same call again later may succeed: timeouts, transport failures,
    /// and the statuses 408, 429, 500, 502, 503 and 504.
    ///
    /// ```
    /// let e = leapcraft_ext::Error::InvalidInput("empty id".into());
    /// assert!(!e.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport(_) => true,
            Error::Api(e) => crate::retry::is_retryable_status(e.status),
            Error::Auth(_)
            | Error::Decode(_)
            | Error::InvalidInput(_)
            | Error::Pagination { .. } => false,
        }
    }

    /// The HTTP status the call ended with, if it got that far.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Auth(e) => e.status,
            _ => None,
        }
    }

    pub(crate) fn invalid(message: impl fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// Translates an error of the generated client, with what the transport recorded of the
    /// call, into ours. `decode` re-decodes a body to find the path of a decode failure.
    pub(crate) fn from_generated(
        err: leapcraft_api::Error<leapcraft_api::types::Error>,
        record: &CallRecord,
        decode: impl FnOnce(&[u8]) -> Option<(String, String)>,
    ) -> Self {
        use leapcraft_api::Error as G;
        let operation = record.operation;
        let attempts = record.progress.attempts.max(1);
        match err {
            G::ErrorResponse(rv) => {
                let status = rv.status();
                let body = rv.into_inner();
                let message = body.message.or(body.error).or(body.detail);
                Error::from_status(record, status, message)
            }
            G::UnexpectedResponse(resp) => Error::from_status(record, resp.status(), None),
            G::InvalidResponsePayload(bytes, json_err) => match record.status {
                Some(status) if !status.is_success() => Error::from_status(record, status, None),
                _ => {
                    let (path, reason) =
                        decode(&bytes).unwrap_or_else(|| (".".to_owned(), json_err.to_string()));
                    // A decoder's message may quote the value (the token): say less.
                    let (reason, body) = if record.secret_body {
                        (format!("{:?} error", json_err.classify()), String::new())
                    } else {
                        (reason, record.redact(&snippet(&bytes)))
                    };
                    Error::Decode(Box::new(DecodeError {
                        operation,
                        path,
                        reason: record.redact(&reason),
                        body,
                    }))
                }
            },
            G::CommunicationError(e) | G::ResponseBodyError(e) | G::InvalidUpgrade(e) => {
                Error::from_reqwest(operation, attempts, e)
            }
            G::InvalidRequest(message) => Error::InvalidInput(format!("{operation}: {message}")),
            G::Custom(message) => Error::Transport(Box::new(TransportError {
                operation,
                message: record.redact(&message),
                attempts,
                source: None,
            })),
        }
    }

    pub(crate) fn from_reqwest(operation: &'static str, attempts: u32, e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return Error::Timeout {
                operation,
                attempts,
            };
        }
        // reqwest's Display names the URL, which holds ids but never a secret.
        let message = error_chain(&e);
        Error::Transport(Box::new(TransportError {
            operation,
            message,
            attempts,
            source: Some(e),
        }))
    }

    fn from_status(record: &CallRecord, status: StatusCode, message: Option<String>) -> Self {
        let message = message
            .or_else(|| record.body_message())
            .map(|m| record.redact(&m));
        if status == StatusCode::UNAUTHORIZED {
            let kind = if record.key_rejected {
                AuthErrorKind::KeyRejected
            } else {
                AuthErrorKind::Unauthorized
            };
            return Error::Auth(Box::new(AuthError {
                kind,
                operation: record.operation,
                status: Some(status),
                message,
            }));
        }
        Error::Api(Box::new(ApiError {
            operation: record.operation,
            status,
            message,
            body: record.redact(&record.body_snippet()),
            request_id: record.request_id.clone(),
            retry_after: record.retry_after,
            attempts: record.progress.attempts.max(1),
        }))
    }
}

/// The error and its sources, joined: reqwest's top-level text alone ("error sending
/// request") rarely says what happened.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The first [`MAX_SNIPPET`] bytes of a body as text, cut on a character boundary.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_SNIPPET)]);
    let mut text = text.into_owned();
    while text.len() > MAX_SNIPPET {
        text.pop();
    }
    text
}

/// The path to the first field of `bytes` that does not decode as `T`, and why.
pub(crate) fn decode_path<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Option<(String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(_) => None,
        Err(e) => Some((e.path().to_string(), e.inner().to_string())),
    }
}
