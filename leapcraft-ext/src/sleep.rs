//! [`Sleep`]: how the client waits, between attempts and for its turn under a rate limit
//! (replaceable, so tests and simulations need not wait for real).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Waits for a duration: how the client sleeps between attempts, and while its rate limiter
/// holds a request back (see [`RateLimit`](crate::RateLimit)).
///
/// The default sleeps on tokio's timer. Supply another with
/// [`ClientBuilder::sleep`](crate::ClientBuilder::sleep) to record or skip waits in tests and
/// simulations. One that does not wait also lets paced requests go at once (each waits once
/// for its turn, then goes).
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
