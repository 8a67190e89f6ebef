//! When to try again: [`RetryPolicy`], and [`decide`], the pure decision made after every
//! attempt from what the attempt produced.
//!
//! `decide` has no side effects and reads no clock and no random source: the caller hands it
//! the facts (time left, a random jitter, what is left of the retry budget) and carries out
//! the action (waiting, spending from the budget). That keeps it a table.
//!
//! The retry budget is smithy-rs's retry quota: a client's retries spend permits from one
//! shared budget ([`RetryPolicy::with_retry_budget`], 500 by default) that successes fill
//! again. A retry costs [`RETRY_COST`], one after a timeout or a connection failure (the signs
//! of an outage) [`TRANSIENT_RETRY_COST`]; a call that succeeds gives back what its last retry
//! cost, or [`SUCCESS_REWARD`] if it needed none. When the bucket cannot pay for a retry, the
//! failure is the call's outcome at once: an outage does not multiply the load on the API.

use std::time::Duration;

use reqwest::StatusCode;

use crate::response::is_retryable_status;

/// How failed calls are retried.
///
/// Idempotent calls (every `GET`, and the token exchange) are retried on connection errors,
/// timeouts, truncated or unreadable bodies, and the statuses 408, 429, 500, 502, 503 and 504;
/// never on another 4XX, nor on a TLS or certificate failure. The wait before retry `n` is
/// drawn uniformly from `0..=min(max_backoff, initial_backoff * 2^(n-1))` ("full jitter"),
/// unless the response carried a `Retry-After` (seconds or an HTTP date): then it is that
/// (at most `max_retry_after`) plus a random fifth of it (at least 100 ms), so that many
/// clients told the same time do not all come back at once. A `401` is not retried: the
/// token it refused is refreshed and the request resent by authentication, which spends no
/// attempt (so `RetryPolicy::none()` still refreshes tokens).
///
/// Retries also spend from a retry budget shared by all clones of a client: 500 permits by
/// default, 5 for a retry, 10 for one after a timeout or a connection failure, paid back
/// when the call succeeds (1 for a call that needed no retry). When the budget cannot pay, a
/// failure that would have been retried is returned at once, so that an outage does not
/// multiply the load on the API.
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
    retry_budget: u32,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 100 ms up to 5 s, `Retry-After` honoured up to 30 s, a retry
    /// budget of 500.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            retry_budget: 500,
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

    /// The size of the retry budget shared by a client's calls, in permits (see above): 500
    /// by default; 0 allows no retry, `u32::MAX` is as good as no budget.
    pub fn with_retry_budget(mut self, permits: u32) -> Self {
        self.retry_budget = permits;
        self
    }

    /// Attempts per call, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The size of the retry budget.
    pub fn retry_budget(&self) -> u32 {
        self.retry_budget
    }

    /// The wait before retry number `retry` (1 for the first), given the server's
    /// `Retry-After` if it sent one, and `jitter`, a random number in `[0, 1)`.
    fn wait(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        if let Some(after) = retry_after {
            let after = after.min(self.max_retry_after);
            let spread = (after / 5).max(Duration::from_millis(100));
            return after.saturating_add(scale(spread, jitter));
        }
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_backoff);
        scale(ceiling, jitter)
    }
}

/// `duration × factor`, for a factor in `[0, 1]` (out-of-range factors are clamped).
fn scale(duration: Duration, factor: f64) -> Duration {
    let factor = if factor.is_nan() {
        0.0
    } else {
        factor.clamp(0.0, 1.0)
    };
    // `as` saturates: a product beyond u64 nanoseconds becomes the largest one.
    Duration::from_nanos((duration.as_nanos() as f64 * factor) as u64)
}

/// Why an attempt got no usable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// No connection could be made, or it broke before a response came.
    Connect,
    /// The attempt ran out of time.
    Timeout,
    /// The body was cut short or could not be read.
    Body,
    /// The TLS handshake failed or the server's certificate was refused: the same again.
    Tls,
    /// The body was larger than the client accepts: the same again.
    TooLarge,
    /// The request could not be made as asked (a bad URL, a redirect loop): the same again.
    Request,
}

impl Unanswered {
    /// Of a reqwest error.
    pub fn of(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Unanswered::Timeout
        } else if is_tls(e) {
            Unanswered::Tls
        } else if e.is_builder() || e.is_redirect() {
            Unanswered::Request
        } else if e.is_body() || e.is_decode() {
            Unanswered::Body
        } else {
            Unanswered::Connect
        }
    }

    pub(crate) fn is_retryable(self) -> bool {
        matches!(
            self,
            Unanswered::Connect | Unanswered::Timeout | Unanswered::Body
        )
    }
}

/// What a retry costs from the budget.
pub(crate) const RETRY_COST: u32 = 5;
/// What a retry after a timeout or a failed connection costs: those are the signs of an
/// outage, where retries help least.
pub(crate) const TRANSIENT_RETRY_COST: u32 = 10;
/// What a call that succeeded without a retry gives to the budget.
pub(crate) const SUCCESS_REWARD: u32 = 1;

/// Whether a connection failed in TLS: TLS stacks report handshake and certificate failures
/// as I/O errors of kind `InvalidData` (rustls), or name them.
fn is_tls(e: &reqwest::Error) -> bool {
    let mut layer: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = layer {
        let text = error.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("handshake") {
            return true;
        }
        layer = match error.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::InvalidData => return true,
            // An I/O error's `source` skips the error it wraps: look at that one.
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => error.source(),
        };
    }
    false
}

/// What an attempt produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// The server answered with this status (and maybe a `Retry-After`).
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// No usable answer.
    Failure(Unanswered),
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts {
    pub observed: Observed,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// Time left before the call's deadline, if it has one.
    pub time_left: Option<Duration>,
    /// The request may be sent again without harm.
    pub idempotent: bool,
    /// A random number in `[0, 1)`, for the wait's jitter.
    pub jitter: f64,
    /// Permits left in the client's retry budget.
    pub budget: u32,
}

/// What the call does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing more: the attempt's outcome is the call's.
    Stop,
    /// Send again after this wait, paying `cost` from the retry budget.
    Retry { wait: Duration, cost: u32 },
    /// Nothing more, though the failure was worth a retry: the budget cannot pay for one.
    OutOfBudget,
}

/// The decision after an attempt: see the module docs.
pub(crate) fn decide(policy: &RetryPolicy, facts: &Facts) -> Action {
    let attempts_left = facts.attempts < policy.max_attempts;
    let (retry_after, cost) = match facts.observed {
        Observed::Status { status, .. } if status.is_success() => return Action::Stop,
        Observed::Status {
            status,
            retry_after,
        } if is_retryable_status(status) => (retry_after, RETRY_COST),
        Observed::Status { .. } => return Action::Stop,
        Observed::Failure(kind) if kind.is_retryable() => (None, TRANSIENT_RETRY_COST),
        Observed::Failure(_) => return Action::Stop,
    };
    if !(facts.idempotent && attempts_left) {
        return Action::Stop;
    }
    let wait = policy.wait(facts.attempts, retry_after, facts.jitter);
    match facts.time_left {
        // No retry that could not start before the deadline.
        Some(left) if wait >= left => Action::Stop,
        _ if cost > facts.budget => Action::OutOfBudget,
        _ => Action::Retry { wait, cost },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
            .with_max_attempts(3)
            .with_initial_backoff(100 * MS)
            .with_max_backoff(350 * MS)
            .with_max_retry_after(Duration::from_secs(10))
    }

    fn status(code: u16) -> Observed {
        Observed::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        }
    }

    fn facts(observed: Observed) -> Facts {
        Facts {
            observed,
            attempts: 1,
            time_left: None,
            idempotent: true,
            jitter: 0.5,
            budget: 500,
        }
    }

    /// A retry after a status.
    fn retry(wait: Duration) -> Action {
        Action::Retry {
            wait,
            cost: RETRY_COST,
        }
    }

    /// A retry after a timeout or a failed connection.
    fn transient(wait: Duration) -> Action {
        Action::Retry {
            wait,
            cost: TRANSIENT_RETRY_COST,
        }
    }

    /// One row of the decision table: a name, the facts, the action.
    fn row(name: &str, facts: Facts, expected: Action) {
        assert_eq!(decide(&policy(), &facts), expected, "{name}: {facts:?}");
    }

    #[test]
    fn every_status_class() {
        use Action::*;
        let backoff = retry(50 * MS); // half of the first ceiling, 100 ms
        for (code, expected) in [
            (200, Stop),
            (204, Stop),
            (302, Stop),
            (304, Stop),
            (400, Stop),
            (403, Stop),
            (404, Stop),
            (409, Stop),
            (422, Stop),
            (408, backoff),
            (429, backoff),
            (500, backoff),
            (501, Stop),
            (502, backoff),
            (503, backoff),
            (504, backoff),
            (505, Stop),
        ] {
            row(&format!("status {code}"), facts(status(code)), expected);
        }
    }

    #[test]
    fn each_failure_kind() {
        use Action::*;
        use Unanswered::*;
        for (kind, expected) in [
            (Connect, transient(50 * MS)),
            (Timeout, transient(50 * MS)),
            (Body, transient(50 * MS)),
            (Tls, Stop),
            (TooLarge, Stop),
            (Request, Stop),
        ] {
            row(
                &format!("{kind:?}"),
                facts(Observed::Failure(kind)),
                expected,
            );
        }
    }

    #[test]
    fn unauthorised_is_not_retried() {
        use Action::*;
        // A refused token is authentication's business (it refreshes and resends without an
        // attempt): to the retry loop a final `401` is final.
        row("401, first attempt", facts(status(401)), Stop);
        row(
            "401, budget empty",
            Facts {
                budget: 0,
                ..facts(status(401))
            },
            Stop,
        );
    }

    #[test]
    fn attempts_idempotence_and_deadline() {
        use Action::*;
        let f = facts(status(503));
        row(
            "second attempt",
            Facts { attempts: 2, ..f },
            retry(100 * MS),
        );
        row("last attempt", Facts { attempts: 3, ..f }, Stop);
        row(
            "not idempotent",
            Facts {
                idempotent: false,
                ..f
            },
            Stop,
        );
        let left = |ms| Facts {
            time_left: Some(ms * MS),
            ..f
        };
        row("time for the wait", left(51), retry(50 * MS));
        row("no time for the wait", left(50), Stop);
        row("no time at all", left(0), Stop);
        let failure = facts(Observed::Failure(Unanswered::Connect));
        row(
            "failure, not idempotent",
            Facts {
                idempotent: false,
                ..failure
            },
            Stop,
        );
    }

    #[test]
    fn the_retry_budget() {
        use Action::*;
        let with = |observed, budget| Facts {
            budget,
            ..facts(observed)
        };
        let timeout = Observed::Failure(Unanswered::Timeout);
        row(
            "a status retry, budget enough",
            with(status(503), 5),
            retry(50 * MS),
        );
        row(
            "a status retry, budget short",
            with(status(503), 4),
            OutOfBudget,
        );
        row("a 429, budget empty", with(status(429), 0), OutOfBudget);
        row(
            "a timeout, budget enough",
            with(timeout, 10),
            transient(50 * MS),
        );
        row("a timeout costs more", with(timeout, 9), OutOfBudget);
        row("success, budget empty", with(status(200), 0), Stop);
        row("not retryable anyway", with(status(404), 0), Stop);
        let last = Facts {
            attempts: 3,
            ..with(status(503), 0)
        };
        row("attempts spent first", last, Stop);
    }

    #[test]
    fn backoff_jitter_and_ceiling() {
        let f = facts(status(500));
        let at = |attempts, jitter| Facts {
            attempts,
            jitter,
            ..f
        };
        row("no jitter", at(1, 0.0), retry(Duration::ZERO));
        row("full jitter, first", at(1, 1.0), retry(100 * MS));
        row("doubled", at(2, 1.0), retry(200 * MS));
        let many = RetryPolicy {
            max_attempts: 40,
            ..policy()
        };
        assert_eq!(decide(&many, &at(39, 1.0)), retry(350 * MS), "capped");
    }

    #[test]
    fn retry_after_in_both_forms_with_jitter_and_cap() {
        use Action::*;
        // Both header forms arrive here as a duration (see `response::retry_after`).
        let told = |secs, jitter| Facts {
            jitter,
            ..facts(Observed::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(Duration::from_secs(secs)),
            })
        };
        row("1 s, no jitter", told(1, 0.0), retry(1000 * MS));
        row("1 s, full jitter", told(1, 1.0), retry(1200 * MS));
        row("0 s still spreads", told(0, 0.5), retry(50 * MS));
        row(
            "capped at 10 s",
            told(300, 0.0),
            retry(Duration::from_secs(10)),
        );
        row(
            "past the deadline",
            Facts {
                time_left: Some(Duration::from_millis(900)),
                ..told(1, 0.0)
            },
            Stop,
        );
    }

    #[test]
    fn extreme_settings_saturate() {
        let huge = RetryPolicy::default()
            .with_max_attempts(u32::MAX)
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX)
            .with_max_retry_after(Duration::MAX);
        let f = facts(status(503));
        for attempts in [1, 30, u32::MAX - 1] {
            for jitter in [0.0, 0.999, 1.0, f64::NAN, -1.0, 7.0] {
                let facts = Facts {
                    attempts,
                    jitter,
                    ..f
                };
                assert!(matches!(decide(&huge, &facts), Action::Retry { .. }));
            }
        }
        let told = Facts {
            observed: Observed::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(Duration::MAX),
            },
            jitter: 1.0,
            ..f
        };
        assert_eq!(decide(&huge, &told), retry(Duration::MAX));
    }
}
