//! When to retry, and how long to wait first: [`RetryPolicy`], `Retry-After`, the decision
//! after each attempt (`next`, shared by `Client`'s calls and the transport's own loop), and
//! the [`Sleep`] used to wait (replaceable, so tests and simulations need not wait for real).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::auth::{Token, TokenCache};
use crate::call::Progress;

/// How failed calls are retried.
///
/// Idempotent calls (every `GET`, and the token exchange) are retried on connection errors,
/// timeouts, truncated or unreadable bodies, and the statuses 408, 429, 500, 502, 503 and 504;
/// never on another 4XX. The wait before retry `n` is drawn uniformly from
/// `0..=min(max_backoff, initial_backoff * 2^(n-1))` ("full jitter"), unless the response
/// carried a `Retry-After` (seconds or an HTTP date), which is honoured up to
/// `max_retry_after`.
///
/// ```
/// use std::time::Duration;
/// use leapcraft_ext::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_initial_backoff(Duration::from_millis(200));
/// assert_eq!(policy.max_attempts(), 5);
/// assert_eq!(RetryPolicy::none().max_attempts(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 100 ms up to 5 s, `Retry-After` honoured up to 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries: every call is attempted once.
    pub fn none() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Attempts per call, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff ceiling before the first retry; it doubles for each retry after.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest backoff ceiling.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub fn with_max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// Attempts per call, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before retry number `retry` (1 for the first), given the server's
    /// `Retry-After` if it sent one.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20))
            .min(self.max_backoff);
        if ceiling.is_zero() {
            return ceiling;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// How an attempt ended, as far as retrying is concerned.
pub(crate) enum Outcome<'a> {
    /// The server answered with `status`, to a request sent with `token`.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        token: Option<&'a Token>,
    },
    /// No (readable) answer: the connection failed, the attempt timed out, or the body could
    /// not be read.
    Failed {
        retryable: bool,
        error: &'a dyn std::error::Error,
    },
}

/// What a call does after an attempt.
pub(crate) enum Next {
    /// Nothing more: the attempt's outcome is the call's.
    Stop,
    /// Send again at once (the token was refreshed).
    Resend,
    /// Send again after this wait.
    Wait(Duration),
}

/// Decides what a call does after an attempt: refresh the token on a `401` (see `auth`),
/// retry what is retryable while the budget lasts, or stop. Counts what it allows in
/// `progress`.
pub(crate) fn next(
    policy: &RetryPolicy,
    tokens: &TokenCache,
    progress: &mut Progress,
    deadline: Option<tokio::time::Instant>,
    idempotent: bool,
    outcome: Outcome<'_>,
) -> Next {
    // Why a retry would be made, for the log: the status, or the failure.
    let (retry_after, status, error) = match outcome {
        Outcome::Status {
            status: StatusCode::UNAUTHORIZED,
            token: Some(token),
            ..
        } => {
            let first = progress.refreshed_from.is_none();
            // A token that worked (for any call) and is refused now has expired: worth
            // another refresh, within the retry budget. A fresh token refused at once is
            // final.
            let expired_again = !first
                && progress.refreshed_from != Some(token.id)
                && token.proven.load(Ordering::Relaxed);
            if !(first || expired_again) {
                return Next::Stop;
            }
            progress.refreshed_from = Some(token.id);
            tracing::debug!("401: refreshing the token and resending");
            tokens.invalidate(token);
            if first {
                return Next::Resend;
            }
            if progress.retries + 1 < policy.max_attempts() {
                progress.retries += 1;
                return Next::Resend;
            }
            return Next::Stop;
        }
        Outcome::Status {
            status,
            retry_after,
            ..
        } => {
            if !(idempotent && is_retryable_status(status)) {
                return Next::Stop;
            }
            (retry_after, Some(status.as_u16()), None)
        }
        Outcome::Failed { retryable, error } => {
            if !(idempotent && retryable) {
                return Next::Stop;
            }
            (None, None, Some(crate::error::error_chain(error)))
        }
    };
    let Some(wait) = next_retry(policy, &mut progress.retries, deadline, retry_after) else {
        return Next::Stop;
    };
    tracing::info!(
        retry = progress.retries,
        wait_ms = wait.as_millis() as u64,
        status,
        error,
        "retrying"
    );
    Next::Wait(wait)
}

/// The wait before the next retry of a call that has made `retries` retries so far, or `None`
/// if the budget (attempts, and the time left before `deadline`) does not allow one. Counts
/// the retry in `retries` when it allows one.
fn next_retry(
    policy: &RetryPolicy,
    retries: &mut u32,
    deadline: Option<tokio::time::Instant>,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if *retries + 1 >= policy.max_attempts() {
        return None;
    }
    let wait = policy.wait(*retries + 1, retry_after);
    if deadline.is_some_and(|d| tokio::time::Instant::now() + wait >= d) {
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "no time left for a retry"
        );
        return None;
    }
    *retries += 1;
    Some(wait)
}

/// Whether a response with this status is worth retrying.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a failed attempt is worth retrying: anything but a request we could not build or
/// a redirect loop.
pub(crate) fn is_retryable_error(e: &reqwest::Error) -> bool {
    !(e.is_builder() || e.is_redirect())
}

/// The `Retry-After` of a response, in either form: delay-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Waits for a duration: how the client sleeps between attempts.
///
/// The default sleeps on tokio's timer. Supply another with
/// [`ClientBuilder::sleep`](crate::ClientBuilder::sleep) to record or skip waits in tests and
/// simulations.
///
/// ```
/// use std::time::Duration;
/// use leapcraft_ext::Sleep;
///
/// /// Never waits.
/// #[derive(Debug)]
/// struct NoWait;
/// impl Sleep for NoWait {
///     fn sleep(&self, _: Duration) -> leapcraft_ext::SleepFuture {
///         Box::pin(async {})
///     }
/// }
/// ```
pub trait Sleep: fmt::Debug + Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// The future a [`Sleep`] returns.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sleeps on tokio's timer (so a paused tokio clock applies).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_doubling_ceiling() {
        let policy = RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(350));
        for _ in 0..200 {
            assert!(policy.wait(1, None) <= Duration::from_millis(100));
            assert!(policy.wait(2, None) <= Duration::from_millis(200));
            assert!(policy.wait(3, None) <= Duration::from_millis(350));
            assert!(policy.wait(40, None) <= Duration::from_millis(350));
        }
        let distinct: std::collections::HashSet<_> =
            (0..50).map(|_| policy.wait(3, None)).collect();
        assert!(distinct.len() > 1, "waits are random");
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let policy = RetryPolicy::default().with_max_retry_after(Duration::from_secs(10));
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(300))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retry_after_parses_both_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(60) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
        for code in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
    }
}
