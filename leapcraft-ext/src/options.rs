//! Per-call options: [`CallOptions`], given to [`Client::customize`](crate::Client::customize)
//! for a client whose calls take other timeouts, attempts or idempotence while sharing
//! everything else (the token, the rate limiter, the retry budget, the connection pool), and
//! [`LastResponse`], where such calls leave what their final response said.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Options for the calls of a customized client: see
/// [`Client::customize`](crate::Client::customize). Anything not set is the client's.
///
/// ```
/// use std::time::Duration;
/// use leapcraft_ext::{CallOptions, LastResponse};
///
/// let last = LastResponse::default();
/// let options = CallOptions::new()
///     .timeout(Duration::from_secs(5))
///     .max_attempts(2)
///     .last_response(&last);
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    pub(crate) overall_timeout: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) idempotent: Option<bool>,
    pub(crate) last_response: Option<LastResponse>,
}

impl CallOptions {
    /// No option set: calls as the client makes them.
    pub fn new() -> Self {
        Self::default()
    }

    /// The whole call, retries and waits included (`Duration::MAX`: no limit).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.overall_timeout = Some(timeout);
        self
    }

    /// One attempt, the body included (`Duration::MAX`: no limit).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Attempts per call, the first included (at least 1). A token refresh is not an
    /// attempt.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Whether requests may be sent again without harm, whatever their method says (every
    /// `GET` is, by default).
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// Where each call leaves what its final response said (see [`LastResponse`]).
    pub fn last_response(mut self, last: &LastResponse) -> Self {
        self.last_response = Some(last.clone());
        self
    }
}

/// What the final response of the last call said, kept for calls made with
/// [`CallOptions::last_response`]: status, headers, request id, attempts and time taken.
/// Clones share what they hold.
///
/// ```no_run
/// use leapcraft_ext::{CallOptions, LastResponse};
/// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
/// let last = LastResponse::default();
/// let device = client
///     .customize(CallOptions::new().last_response(&last))
///     .device("D2:C1:AA:FF:3E:09")
///     .await?;
/// let response = last.get().expect("a call was made");
/// println!("{:?} {} {:?}", device.serial, response.status, response.request_id);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct LastResponse(Arc<Mutex<Option<ResponseMetadata>>>);

impl LastResponse {
    /// What the last call's final response said; `None` before any call, or when the last
    /// call got no response (a timeout, no connection).
    pub fn get(&self) -> Option<ResponseMetadata> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, metadata: Option<ResponseMetadata>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = metadata;
    }
}

/// What a final response said, besides its body.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ResponseMetadata {
    /// The operation, such as `get_device`.
    pub operation: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The request id the server gave, if any (`x-request-id` and the like).
    pub request_id: Option<String>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Time taken by the whole call, waits and retries included.
    pub elapsed: Duration,
}
