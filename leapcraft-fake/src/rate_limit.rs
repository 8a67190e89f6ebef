//! A request-rate limit, enforced as a gateway in front of an API does: one token bucket over
//! every operation (the token exchange included) refilled at [`RateLimit::per_second`] and
//! holding at most [`RateLimit::burst`] tokens. A request that finds the bucket empty is
//! answered `429` at once, with the configured [`RetryAfter`], before faults and
//! authentication; it takes no token. The limit can be changed while serving
//! ([`crate::FakeServer::set_rate_limit`]).
//!
//! The bucket runs on tokio's clock, so a test on a paused clock controls it.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// A request-rate limit: see the module docs.
///
/// ```
/// use leapcraft_fake::{RateLimit, RetryAfter};
///
/// let limit = RateLimit::per_second(100.0).with_burst(20).with_retry_after(RetryAfter::Absent);
/// assert_eq!(limit.burst, 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests a second, on average (positive).
    pub per_second: f64,
    /// Requests that may arrive at once after a quiet spell (at least 1).
    pub burst: u32,
    /// What a `429` says about when to come back.
    pub retry_after: RetryAfter,
}

impl RateLimit {
    /// `rate` requests a second, a burst of one second's worth, and `Retry-After: 1`.
    pub fn per_second(rate: f64) -> Self {
        RateLimit {
            per_second: rate,
            burst: rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            retry_after: RetryAfter::Seconds(1),
        }
    }

    /// The most requests that may arrive at once (at least 1).
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The `Retry-After` of a `429`.
    pub fn with_retry_after(mut self, retry_after: RetryAfter) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(format!(
                "the rate limit must be a positive number of requests a second, got {}",
                self.per_second
            ));
        }
        if self.burst == 0 {
            return Err("the rate limit's burst must be at least 1".into());
        }
        Ok(())
    }
}

/// The `Retry-After` header of a `429` from the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: N` (delay-seconds).
    Seconds(u64),
    /// `Retry-After: <HTTP date>`, this many seconds from now (rounded up to a whole second,
    /// so a client reading it waits at least that long).
    Date(u64),
    /// No `Retry-After` header.
    Absent,
}

impl RetryAfter {
    /// The header's value at `now`, if there is one.
    pub(crate) fn value(self, now: SystemTime) -> Option<String> {
        match self {
            RetryAfter::Seconds(n) => Some(n.to_string()),
            RetryAfter::Date(n) => {
                let at = now + Duration::from_secs(n);
                let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).ok()?;
                let whole = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
                let at = chrono::DateTime::from_timestamp(i64::try_from(whole).ok()?, 0)?;
                Some(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            }
            RetryAfter::Absent => None,
        }
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryAfter::Seconds(n) => write!(f, "{n}"),
            RetryAfter::Date(n) => write!(f, "date+{n}"),
            RetryAfter::Absent => f.write_str("none"),
        }
    }
}

impl FromStr for RetryAfter {
    type Err = String;

    /// `N` (seconds), `date+N` (an HTTP date N seconds ahead) or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let seconds = |n: &str| {
            n.parse::<u64>().map_err(|_| {
                format!(
                    "`{s}`: expected N (seconds), date+N (an HTTP date N seconds ahead) or none"
                )
            })
        };
        match s.strip_prefix("date+") {
            Some(n) => Ok(RetryAfter::Date(seconds(n)?)),
            None if s == "none" => Ok(RetryAfter::Absent),
            None => Ok(RetryAfter::Seconds(seconds(s)?)),
        }
    }
}

/// The bucket behind a [`RateLimit`], if one is set.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    bucket: Mutex<Option<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        self.updated = now;
    }
}

impl Limiter {
    /// Sets, changes or (`None`) removes the limit. A change keeps the tokens there are (up
    /// to the new burst): the new rate applies from now on.
    pub(crate) fn set(&self, limit: Option<RateLimit>) {
        let now = Instant::now();
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        *bucket = limit.map(|limit| {
            let tokens = match bucket.as_mut() {
                Some(old) => {
                    old.refill(now);
                    old.tokens.min(f64::from(limit.burst))
                }
                None => f64::from(limit.burst),
            };
            Bucket {
                limit,
                tokens,
                updated: now,
            }
        });
    }

    /// The limit in force.
    pub(crate) fn limit(&self) -> Option<RateLimit> {
        let bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        bucket.as_ref().map(|b| b.limit)
    }

    /// Takes a token for a request; `Err` with what a `429` should say if there is none.
    pub(crate) fn admit(&self) -> Result<(), RetryAfter> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = bucket.as_mut() else {
            return Ok(());
        };
        bucket.refill(Instant::now());
        if bucket.tokens < 1.0 {
            return Err(bucket.limit.retry_after);
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_and_prints() {
        for (text, value) in [
            ("1", RetryAfter::Seconds(1)),
            ("date+3", RetryAfter::Date(3)),
            ("none", RetryAfter::Absent),
        ] {
            assert_eq!(text.parse::<RetryAfter>(), Ok(value));
            assert_eq!(value.to_string(), text);
        }
        assert!("soon".parse::<RetryAfter>().is_err());
        assert!("date+x".parse::<RetryAfter>().is_err());
    }

    #[test]
    fn an_http_date_is_rounded_up_to_the_next_second() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_300);
        assert_eq!(
            RetryAfter::Date(2).value(now).as_deref(),
            Some("Tue, 14 Nov 2023 22:13:23 GMT")
        );
        assert_eq!(RetryAfter::Seconds(2).value(now).as_deref(), Some("2"));
        assert_eq!(RetryAfter::Absent.value(now), None);
    }

    #[test]
    fn unusable_limits_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(RateLimit::per_second(rate).check().is_err(), "{rate}");
        }
        assert!(RateLimit::per_second(5.0).with_burst(0).check().is_err());
        assert_eq!(RateLimit::per_second(0.2).burst, 1);
        assert_eq!(RateLimit::per_second(99.5).burst, 100);
    }
}
