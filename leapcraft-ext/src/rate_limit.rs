//! How fast requests leave the client: [`RateLimit`] (the setting) and the limiter the
//! pipeline puts every attempt through, shared by all clones of a client.
//!
//! **Adaptive** (the default): no limit until the API answers `429`. Then the limiter paces
//! requests at [`BETA`] × the rate it was sending at, and probes upward again along a cubic
//! curve, as TCP CUBIC and the AWS SDKs' adaptive retry mode do: back at the rate that was
//! refused after [`RECOVERY`], flat around it, then faster and faster beyond it until the next
//! `429`. Only a `429` to a request sent since the last slow-down counts, so one overload is
//! one slow-down however many requests it refused; a further `429` at the new pace slows down
//! again. So the pace follows a limit that changes while the client runs. The token exchange
//! is paced, and its `429`s count, like any request.
//!
//! **Fixed**: a token bucket of `per_second` tokens a second holding at most `burst`; whatever
//! the API answers. **Off**: no pacing at all.
//!
//! Waiting: the callers that must wait queue first come, first served (a fair lock); the one
//! at the head sleeps until a token is there, takes it and lets the next one in. It sleeps
//! through the client's [`Sleep`], like the retry waits, so that a [`Sleep`] that records or
//! skips waits does so for these too; time is tokio's, so a paused tokio clock applies. After
//! one sleep the head takes the token even if the clock did not move (a [`Sleep`] that does
//! not wait), unless the pace was cut meanwhile: then it waits again at the new pace.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::sleep::Sleep;

/// How a client paces its requests, set with
/// [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit). Every attempt counts,
/// retries and token exchanges included; the pace is shared by all clones of a client.
///
/// ```
/// use leapcraft_ext::{Client, RateLimit};
///
/// // At most 20 requests a second, up to 5 at once after a quiet spell.
/// let client = Client::builder()
///     .api_key("YOUR_API_KEY")
///     .rate_limit(RateLimit::Fixed { per_second: 20.0, burst: 5 })
///     .build()?;
/// assert_eq!(client.stats().request_rate, Some(20.0));
/// # Ok::<(), leapcraft_ext::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum RateLimit {
    /// Learn the API's pace from its `429` responses (the default): no limit until the first
    /// `429`; then slow down at once to 0.7 × the rate of the last second, and probe upward
    /// again while no `429` comes (back at the refused rate after 1 s, then faster), so the
    /// pace follows a limit that changes. [`Client::stats`](crate::Client::stats) shows the
    /// rate in force; a `tracing` event at INFO tells each slow-down, at DEBUG each rise of a
    /// tenth.
    #[default]
    Adaptive,
    /// At most `per_second` requests a second on average, and at most `burst` at once after a
    /// quiet spell (a token bucket), whatever the API answers. `per_second` must be positive
    /// and finite; a `burst` of 0 counts as 1.
    Fixed {
        /// Requests a second.
        per_second: f64,
        /// Requests that may leave at once when the client has been quiet.
        burst: u32,
    },
    /// No pacing: requests leave as soon as they are made.
    Off,
}

/// The slow-down on a `429`: the new rate is this × the rate that was refused.
pub(crate) const BETA: f64 = 0.7;
/// After a slow-down, the time to climb back to the rate that was refused (the cubic curve's
/// flat point), in seconds.
pub(crate) const RECOVERY: f64 = 1.0;
/// The adaptive rate never falls below this (requests a second): some progress is always made.
pub(crate) const MIN_RATE: f64 = 0.5;
/// The window over which the rate actually sent is measured.
const WINDOW: Duration = Duration::from_secs(1);

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    mode: Mode,
    state: Mutex<State>,
    /// Held by the caller at the head of the queue while it waits for a token.
    queue: tokio::sync::Mutex<()>,
    /// Attempts that had to wait.
    delayed: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Off,
    Fixed { rate: f64, burst: f64 },
    Adaptive,
}

/// What an attempt was sent under: whether a `429` to it says anything about the pace now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Permit {
    epoch: u64,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
    /// What was learned from the last `429` (adaptive mode; `None` before the first).
    learned: Option<Learned>,
    /// Slow-downs so far: a `429` counts only for a request sent in the current epoch.
    epoch: u64,
    sent: SentRate,
    /// The rate last told in a `tracing` event.
    reported: f64,
}

/// The adaptive rate after a slow-down: a cubic curve through `BETA × refused` at `since` and
/// `refused` at `since + RECOVERY`, growing ever faster after.
#[derive(Clone, Copy, Debug)]
struct Learned {
    refused: f64,
    since: Instant,
}

impl Learned {
    /// The rate at `now`, given the rate sent over the last second: it rises above the
    /// refused rate only as far as twice what is actually sent, so that a client that sends
    /// little does not build up a pace it never tried.
    fn rate(&self, now: Instant, sent: f64) -> f64 {
        let t = now.saturating_duration_since(self.since).as_secs_f64();
        let scale = (1.0 - BETA) / RECOVERY.powi(3);
        let cubic = self.refused * (1.0 + scale * (t - RECOVERY).powi(3));
        cubic.min(self.refused.max(2.0 * sent)).max(MIN_RATE)
    }
}

/// Requests sent over the last [`WINDOW`], estimated from two windows' counts (the current
/// one, and the previous one weighed by how much of it is still within the last window).
#[derive(Debug)]
struct SentRate {
    start: Instant,
    current: u64,
    previous: u64,
}

impl SentRate {
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= 2 * WINDOW {
            (self.previous, self.current, self.start) = (0, 0, now);
        } else if elapsed >= WINDOW {
            (self.previous, self.current) = (self.current, 0);
            self.start += WINDOW;
        }
    }

    fn count(&mut self, now: Instant) {
        self.roll(now);
        self.current += 1;
    }

    /// Requests a second.
    fn rate(&mut self, now: Instant) -> f64 {
        self.roll(now);
        let into = now.saturating_duration_since(self.start).as_secs_f64() / WINDOW.as_secs_f64();
        (self.current as f64 + self.previous as f64 * (1.0 - into)) / WINDOW.as_secs_f64()
    }
}

impl RateLimiter {
    /// A limiter for `limit`, or why the setting is unusable.
    pub fn new(limit: &RateLimit) -> Result<Self, String> {
        let mode = match *limit {
            RateLimit::Off => Mode::Off,
            RateLimit::Adaptive => Mode::Adaptive,
            RateLimit::Fixed { per_second, burst } => {
                if !(per_second.is_finite() && per_second > 0.0) {
                    return Err(format!(
                        "the rate limit must be a positive, finite number of requests a second, not {per_second}"
                    ));
                }
                Mode::Fixed {
                    rate: per_second,
                    burst: f64::from(burst.max(1)),
                }
            }
        };
        let now = Instant::now();
        let tokens = match mode {
            Mode::Fixed { burst, .. } => burst,
            _ => 1.0,
        };
        Ok(Self {
            mode,
            state: Mutex::new(State {
                tokens,
                updated: now,
                learned: None,
                epoch: 0,
                sent: SentRate {
                    start: now,
                    current: 0,
                    previous: 0,
                },
                reported: 0.0,
            }),
            queue: tokio::sync::Mutex::new(()),
            delayed: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rate in force now, in requests a second; `None` when nothing is paced.
    pub fn rate(&self) -> Option<f64> {
        let now = Instant::now();
        self.state().rate(self.mode, now)
    }

    /// Attempts that had to wait for their turn so far.
    pub fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::Relaxed)
    }

    /// Waits until a request may be sent (see the module docs), and counts it as sent.
    pub async fn acquire(&self, sleep: &dyn Sleep) -> Permit {
        if let Mode::Off = self.mode {
            return Permit { epoch: 0 };
        }
        let (_head, mut waited) = match self.queue.try_lock() {
            Ok(head) => (head, false),
            Err(_) => (self.queue.lock().await, true),
        };
        let mut slept_in = None;
        loop {
            let wait = {
                let mut state = self.state();
                let now = Instant::now();
                let slept = slept_in == Some(state.epoch);
                if let Some(permit) = state.take(self.mode, now, slept) {
                    if waited {
                        self.delayed.fetch_add(1, Ordering::Relaxed);
                    }
                    return permit;
                }
                slept_in = Some(state.epoch);
                state.wait(self.mode, now)
            };
            waited = true;
            sleep.sleep(wait).await;
        }
    }

    /// Notes a `429` to a request sent under `permit`: in adaptive mode, slows down unless the
    /// request was sent before the last slow-down.
    pub fn throttled(&self, permit: Permit) {
        if !matches!(self.mode, Mode::Adaptive) {
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        if permit.epoch != state.epoch {
            return;
        }
        let sent = state.sent.rate(now);
        let refused = match state.rate(self.mode, now) {
            Some(rate) => rate.min(sent),
            None => sent,
        }
        .max(MIN_RATE);
        state.learned = Some(Learned {
            refused,
            since: now,
        });
        state.epoch += 1;
        // The API's bucket is empty: so is ours.
        state.tokens = 0.0;
        state.updated = now;
        let rate = BETA * refused;
        tracing::info!(
            rate = round(rate),
            refused = round(refused),
            "429 from the API: slowing down to {:.1} requests a second",
            rate
        );
        state.reported = rate;
    }
}

impl State {
    fn rate(&mut self, mode: Mode, now: Instant) -> Option<f64> {
        match mode {
            Mode::Off => None,
            Mode::Fixed { rate, .. } => Some(rate),
            Mode::Adaptive => {
                let learned = self.learned?;
                Some(learned.rate(now, self.sent.rate(now)))
            }
        }
    }

    fn burst(mode: Mode) -> f64 {
        match mode {
            Mode::Fixed { burst, .. } => burst,
            _ => 1.0,
        }
    }

    /// Takes a token if there is one (or unconditionally if `force`), counting the request as
    /// sent; `None` if the caller must wait.
    fn take(&mut self, mode: Mode, now: Instant, force: bool) -> Option<Permit> {
        if let Some(rate) = self.rate(mode, now) {
            let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(Self::burst(mode));
            self.updated = now;
            if self.tokens < 1.0 && !force {
                return None;
            }
            self.tokens -= 1.0;
            if matches!(mode, Mode::Adaptive) && rate > self.reported * 1.1 {
                tracing::debug!(rate = round(rate), "probing a faster pace");
                self.reported = rate;
            }
        }
        self.sent.count(now);
        Some(Permit { epoch: self.epoch })
    }

    /// How long until the next token, at the rate in force.
    fn wait(&mut self, mode: Mode, now: Instant) -> Duration {
        let Some(rate) = self.rate(mode, now) else {
            return Duration::ZERO;
        };
        Duration::try_from_secs_f64((1.0 - self.tokens) / rate).unwrap_or(Duration::MAX)
    }
}

/// A rate to one decimal, for events.
fn round(rate: f64) -> f64 {
    (rate * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn the_cubic_curve_passes_its_three_points() {
        let since = Instant::now();
        let learned = Learned {
            refused: 100.0,
            since,
        };
        let plenty = 1_000.0;
        let rate = |ms| learned.rate(at(since, ms), plenty);
        assert!((rate(0) - 70.0).abs() < 1e-9, "{}", rate(0));
        assert!((rate(1_000) - 100.0).abs() < 1e-9, "{}", rate(1_000));
        assert!((rate(2_000) - 130.0).abs() < 1e-9, "{}", rate(2_000));
        assert!(
            rate(500) > 90.0 && rate(500) < 100.0,
            "flat near the refused rate"
        );
        assert!((rate(3_000) - 340.0).abs() < 1e-9, "faster and faster");
    }

    #[test]
    fn the_curve_rises_past_the_refused_rate_only_as_far_as_twice_what_is_sent() {
        let since = Instant::now();
        let learned = Learned {
            refused: 100.0,
            since,
        };
        assert_eq!(learned.rate(at(since, 60_000), 0.0), 100.0);
        assert_eq!(learned.rate(at(since, 60_000), 80.0), 160.0);
        let tiny = Learned {
            refused: MIN_RATE,
            since,
        };
        assert_eq!(tiny.rate(since, 0.0), MIN_RATE, "never below the floor");
    }

    #[test]
    fn the_sent_rate_counts_the_last_second() {
        let start = Instant::now();
        let mut sent = SentRate {
            start,
            current: 0,
            previous: 0,
        };
        for ms in 0..50 {
            sent.count(at(start, ms * 20));
        }
        assert_eq!(sent.rate(at(start, 999)), 50.0);
        // Half a second later, half of the previous window still counts.
        assert_eq!(sent.rate(at(start, 1_500)), 25.0);
        assert_eq!(sent.rate(at(start, 5_000)), 0.0, "a quiet spell forgets");
    }

    #[test]
    fn a_fixed_limit_allows_its_burst_then_one_per_interval() {
        let limiter = RateLimiter::new(&RateLimit::Fixed {
            per_second: 10.0,
            burst: 3,
        })
        .unwrap();
        let mut state = limiter.state();
        let now = state.updated;
        let mode = limiter.mode;
        for _ in 0..3 {
            assert!(state.take(mode, now, false).is_some());
        }
        assert!(state.take(mode, now, false).is_none());
        assert_eq!(state.wait(mode, now), Duration::from_millis(100));
        assert!(state.take(mode, at(now, 99), false).is_none());
        assert!(state.take(mode, at(now, 150), false).is_some());
        assert!(state.take(mode, at(now, 150), true).is_some(), "forced");
        // A long quiet spell refills the burst, no more.
        for _ in 0..3 {
            assert!(state.take(mode, at(now, 60_000), false).is_some());
        }
        assert!(state.take(mode, at(now, 60_000), false).is_none());
    }

    /// Everything tracing writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_429_slows_down_once_per_pace_and_says_so() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let limiter = RateLimiter::new(&RateLimit::Adaptive).unwrap();
        let mode = limiter.mode;
        let (first, second) = {
            let mut state = limiter.state();
            let now = state.updated;
            assert_eq!(state.rate(mode, now), None, "no limit before a 429");
            let sent: Vec<_> = (0..50)
                .filter_map(|_| state.take(mode, now, false))
                .collect();
            assert_eq!(sent.len(), 50, "nothing waits before a 429");
            (sent[0], sent[1])
        };
        limiter.throttled(first);
        let rate = limiter.rate().expect("a limit after a 429");
        assert!((rate - BETA * 50.0).abs() < 1.0, "{rate}");
        limiter.throttled(second);
        assert_eq!(
            limiter.state().epoch,
            1,
            "sent before the slow-down: no second one"
        );

        let mut state = limiter.state();
        let later = state.updated + Duration::from_secs(3);
        assert!(state.take(mode, later, false).is_some());
        drop(state);
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        assert_eq!(
            text.matches("429 from the API: slowing down").count(),
            1,
            "{text}"
        );
        assert!(text.contains(" INFO "), "{text}");
        assert!(text.contains("probing a faster pace"), "{text}");
    }

    #[test]
    fn unusable_settings_are_refused() {
        for per_second in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limit = RateLimit::Fixed {
                per_second,
                burst: 1,
            };
            assert!(RateLimiter::new(&limit).is_err(), "{per_second}");
        }
        let tiny = RateLimiter::new(&RateLimit::Fixed {
            per_second: f64::MIN_POSITIVE,
            burst: 0,
        })
        .unwrap();
        let mut state = tiny.state();
        let now = state.updated;
        assert!(
            state.take(tiny.mode, now, false).is_some(),
            "a burst of 0 is 1"
        );
        assert_eq!(state.wait(tiny.mode, now), Duration::MAX, "saturates");
    }
}
