//! Fault injection: the failures a real deployment produces, injected by probability or on
//! demand.
//!
//! Each request (the token exchange only if enabled) draws from a seeded generator: with
//! probability `rate` it fails with one of the enabled [`FaultKind`]s, chosen uniformly. Faults
//! queued with [`crate::FakeServer::inject_faults`] are served first, to the next requests, in
//! order, regardless of the rate. Faults are decided before authentication (as a proxy or
//! load balancer in front of the API would), so a faulted request does not use up a token,
//! except [`FaultKind::TruncatedBody`], which truncates the real response.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::rng::SplitMix;

/// One kind of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `429 Too Many Requests` with `Retry-After: 1` and a JSON body.
    TooManyRequests,
    /// `503 Service Unavailable` with a JSON body.
    ServiceUnavailable,
    /// `500 Internal Server Error` with an HTML body (`text/html`), as a crashed proxy sends.
    InternalErrorHtml,
    /// The connection is closed after the request is read, without any response.
    DroppedConnection,
    /// The real response, with its full `Content-Length`, but only half of the body is sent
    /// before the connection is closed.
    TruncatedBody,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::TooManyRequests,
        FaultKind::ServiceUnavailable,
        FaultKind::InternalErrorHtml,
        FaultKind::DroppedConnection,
        FaultKind::TruncatedBody,
    ];

    /// The short name used on the command line: `429`, `503`, `500`, `drop`, `truncate`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::TooManyRequests => "429",
            FaultKind::ServiceUnavailable => "503",
            FaultKind::InternalErrorHtml => "500",
            FaultKind::DroppedConnection => "drop",
            FaultKind::TruncatedBody => "truncate",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "429" | "too-many-requests" => Ok(FaultKind::TooManyRequests),
            "503" | "unavailable" => Ok(FaultKind::ServiceUnavailable),
            "500" | "html" => Ok(FaultKind::InternalErrorHtml),
            "drop" | "dropped" => Ok(FaultKind::DroppedConnection),
            "truncate" | "truncated" => Ok(FaultKind::TruncatedBody),
            other => Err(format!(
                "unknown fault kind `{other}` (expected 429, 503, 500, drop or truncate)"
            )),
        }
    }
}

/// Decides which requests fail, and how.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    rate_bits: AtomicU64,
    kinds: Mutex<Vec<FaultKind>>,
    on_token_exchange: AtomicBool,
    rng: Mutex<SplitMix>,
    queued: Mutex<VecDeque<FaultKind>>,
}

impl FaultInjector {
    pub(crate) fn new(
        seed: u64,
        rate: f64,
        kinds: Vec<FaultKind>,
        on_token_exchange: bool,
    ) -> Self {
        FaultInjector {
            rate_bits: AtomicU64::new(rate.to_bits()),
            kinds: Mutex::new(kinds),
            on_token_exchange: AtomicBool::new(on_token_exchange),
            rng: Mutex::new(SplitMix::new(seed ^ 0xFA_017)),
            queued: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn set_rate(&self, rate: f64) {
        self.rate_bits
            .store(rate.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn set_kinds(&self, kinds: Vec<FaultKind>) {
        *self.kinds.lock().unwrap_or_else(|e| e.into_inner()) = kinds;
    }

    pub(crate) fn set_on_token_exchange(&self, on: bool) {
        self.on_token_exchange.store(on, Ordering::Relaxed);
    }

    pub(crate) fn queue(&self, kind: FaultKind, count: usize) {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        q.extend(std::iter::repeat_n(kind, count));
    }

    /// The fault for the next request, if any.
    pub(crate) fn decide(&self, token_exchange: bool) -> Option<FaultKind> {
        if token_exchange && !self.on_token_exchange.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(kind) = self
            .queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
        {
            return Some(kind);
        }
        let rate = f64::from_bits(self.rate_bits.load(Ordering::Relaxed));
        if rate <= 0.0 {
            return None;
        }
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        if kinds.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.unit() >= rate {
            return None;
        }
        Some(*rng.pick(&kinds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_roughly_respected_and_deterministic() {
        let run = || {
            let f = FaultInjector::new(1, 0.2, FaultKind::ALL.to_vec(), false);
            (0..10_000).map(|_| f.decide(false)).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().filter(|f| f.is_some()).count();
        assert!((1_700..2_300).contains(&n), "{n}");
        for k in FaultKind::ALL {
            assert!(a.contains(&Some(k)));
            assert_eq!(k.name().parse::<FaultKind>(), Ok(k));
        }
        let f = FaultInjector::new(1, 1.0, FaultKind::ALL.to_vec(), false);
        assert_eq!(f.decide(true), None);
        f.queue(FaultKind::DroppedConnection, 1);
        assert_eq!(f.decide(false), Some(FaultKind::DroppedConnection));
    }
}
