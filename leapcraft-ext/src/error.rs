//! The one error type of the crate, and how server text is made safe to quote in it: cut to
//! [`MAX_SNIPPET`] bytes, secrets redacted.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use crate::response::{self, is_retryable_status};

/// Server text quoted in errors (messages, body snippets, decoder reasons) is cut to this many
/// bytes: a hostile server cannot flood a log or a terminal through an error.
pub const MAX_SNIPPET: usize = 1024;

/// Everything that can go wrong in a call.
///
/// Display texts name the operation where one is known, quote at most [`MAX_SNIPPET`] bytes
/// of server text, and never contain the API key or a token. Cheap to clone.
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
#[derive(Debug, Clone, thiserror::Error)]
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
    /// A successful response's body was larger than the client accepts: more than what was
    /// asked could need (8 KiB an item asked for, and 64 KiB besides), or than
    /// [`ClientBuilder::max_response_bytes`](crate::ClientBuilder::max_response_bytes); the
    /// rest of it was not read.
    #[error(
        "{operation}: the response body is larger than {limit} bytes, more than what was asked could need (the limit follows the request, within ClientBuilder::max_response_bytes)"
    )]
    ResponseTooLarge {
        /// The operation id, such as `list_devices`.
        operation: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The arguments were rejected before any request was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Not sent: the API has refused every request for a while (`429`, `5xx` or no answer)
    /// and the retry budget is spent, so calls fail at once until a probe gets an answer.
    #[error(
        "{operation}: not sent: the API has refused every request for {} s{}; waiting for it to recover",
        refusing_for.as_secs(),
        last_status.map(|s| format!(" (last: {s})")).unwrap_or_default()
    )]
    Refusing {
        /// The operation id, such as `get_telemetry`.
        operation: &'static str,
        /// How long the API has refused everything.
        refusing_for: std::time::Duration,
        /// The status it last refused with, if it answered at all.
        last_status: Option<StatusCode>,
    },
    /// A list could not be read whole: it shifted by more than the pager could repair while
    /// it was read, or the server ignores the paging parameters (full pages of nothing new).
    /// Nothing was delivered twice; what was delivered is not the whole list.
    #[error(
        "{operation}: reading stopped after page {page}: the list changed faster than it could be read, or the server ignores the paging parameters"
    )]
    Pagination {
        /// The operation id, such as `list_devices`.
        operation: &'static str,
        /// The pages read before it stopped.
        page: u64,
    },
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The token exchange rejected the API key.
    KeyRejected,
    /// The API refused a fresh token before any other request had used it, or kept refusing
    /// tokens until the call's attempts ran out.
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
                format!("the API refused the token{status}")
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
    /// The start of the body, at most [`MAX_SNIPPET`] bytes, secrets redacted (only the first
    /// 32 KiB of an error body are ever read).
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
#[derive(Debug, Clone, thiserror::Error)]
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
    pub source: Option<Arc<reqwest::Error>>,
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
            Error::Timeout { .. } | Error::Transport(_) | Error::Refusing { .. } => true,
            Error::Api(e) => is_retryable_status(e.status),
            Error::ResponseTooLarge { .. }
            | Error::Auth(_)
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
            Error::Refusing { last_status, .. } => *last_status,
            _ => None,
        }
    }

    pub(crate) fn invalid(message: impl fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// The error for a final response with an error status. `redact` removes secrets from
    /// the server's text; `refused_token` tells a `401` to a request sent with a token.
    pub(crate) fn from_response(
        operation: &'static str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        attempts: u32,
        redact: &Redact<'_>,
    ) -> Self {
        let message = body_message(body)
            .or_else(|| redirect_message(status, headers))
            .map(|m| redact.text(&cut(&m)));
        if status == StatusCode::UNAUTHORIZED {
            return Error::Auth(Box::new(AuthError {
                kind: AuthErrorKind::Unauthorized,
                operation,
                status: Some(status),
                message,
            }));
        }
        Error::Api(Box::new(ApiError {
            operation,
            status,
            message,
            body: redact.text(&snippet(body)),
            request_id: response::request_id(headers),
            retry_after: response::retry_after(headers, std::time::SystemTime::now()),
            attempts: attempts.max(1),
        }))
    }

    /// The error for a body that did not decode as the operation's type: where and why, with
    /// the start of the body (`body` is `None` for a secret body, such as the token
    /// exchange's, whose decoder messages may quote it too).
    pub(crate) fn decode(
        operation: &'static str,
        path: String,
        reason: &str,
        body: Option<&[u8]>,
        redact: &Redact<'_>,
    ) -> Self {
        Error::Decode(Box::new(DecodeError {
            operation,
            path: cut(&path),
            reason: redact.text(&cut(reason)),
            body: body.map(|b| redact.text(&snippet(b))).unwrap_or_default(),
        }))
    }

    pub(crate) fn from_reqwest(operation: &'static str, attempts: u32, e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return Error::Timeout {
                operation,
                attempts,
            };
        }
        // reqwest's Display names the URL, which holds ids but never a secret.
        let message = cut(&error_chain(&e));
        Error::Transport(Box::new(TransportError {
            operation,
            message,
            attempts,
            source: Some(Arc::new(e)),
        }))
    }
}

/// The secrets a call holds, to be removed from any server text an error quotes (a server may
/// echo them back).
pub(crate) struct Redact<'a> {
    pub secrets: [Option<&'a SecretString>; 2],
}

impl Redact<'_> {
    /// `text` with every secret replaced by `[redacted]`.
    pub fn text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.iter().flatten() {
            let secret = secret.expose_secret();
            if !secret.is_empty() {
                text = text.replace(secret, "[redacted]");
            }
        }
        text
    }
}

/// The `message`, `error` or `detail` of a JSON error body.
fn body_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["message", "error", "detail"]
        .iter()
        .find_map(|key| value.get(*key)?.as_str())
        .map(str::to_owned)
}

/// What a redirect that was not followed says.
fn redirect_message(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    if !status.is_redirection() {
        return None;
    }
    let location = headers
        .get(reqwest::header::LOCATION)
        .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
        .unwrap_or_default();
    Some(format!(
        "redirect to {location:?} not followed: the client follows redirects only within its \
         base URL's origin, so that credentials never leave it"
    ))
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
    cut(&String::from_utf8_lossy(
        &bytes[..bytes.len().min(MAX_SNIPPET)],
    ))
}

/// `text`, cut to at most [`MAX_SNIPPET`] bytes on a character boundary.
pub(crate) fn cut(text: &str) -> String {
    if text.len() <= MAX_SNIPPET {
        return text.to_owned();
    }
    let mut end = MAX_SNIPPET;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
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
