//! [`ClientStats`]: what a client has done so far (requests by operation and status, retries,
//! token exchanges, pacing), for dashboards and exporters.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of what a [`Client`](crate::Client) and its clones have done so far: see
/// [`Client::stats`](crate::Client::stats).
///
/// ```
/// # async fn run(client: leapcraft_ext::Client) {
/// let stats = client.stats();
/// let failed: u64 = stats
///     .requests
///     .iter()
///     .filter(|((_, status), _)| *status == 0 || *status >= 500)
///     .map(|(_, count)| count)
///     .sum();
/// println!("{failed} failed requests, {} retries", stats.retries);
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Requests sent, by operation id and the status that answered (0: no answer, such as a
    /// connection failure or a timeout). Every attempt counts.
    pub requests: BTreeMap<(&'static str, u16), u64>,
    /// Attempts that were retries (a resend after a token refresh included).
    pub retries: u64,
    /// Successful exchanges of the API key for a token.
    pub token_exchanges: u64,
    /// The rate, in requests per second, that the client's rate limiter allows now; `None`
    /// when it sets no limit (limiting off, or adaptive before the API's first `429`). See
    /// [`RateLimit`](crate::RateLimit).
    pub request_rate: Option<f64>,
    /// Attempts the rate limiter held back: they waited for their turn before they were
    /// sent. A count that grows says the client is being paced. (The `429`s the API
    /// answered are in [`requests`](Self::requests), under status 429.)
    pub rate_limited: u64,
}

/// The counters behind [`ClientStats`], shared by a client's clones.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    retries: AtomicU64,
}

impl Counters {
    /// Counts an attempt of `operation`, answered with `status` (0 for none).
    pub fn request(&self, operation: &'static str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((operation, status)).or_default() += 1;
    }

    /// Counts a retry.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ClientStats {
        ClientStats {
            requests: self
                .requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            retries: self.retries.load(Ordering::Relaxed),
            ..ClientStats::default()
        }
    }
}
