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
//! **Fixed**: a bucket of turns refilled at `per_second` turns a second, holding at most
//! `burst`; whatever the API answers. **Off**: no pacing at all.
//!
//! Waiting: a caller that finds no turn free reserves the next one (the bucket goes into
//! debt, so reservations are served first come, first served) and sleeps until it is due.
//! Nothing is held while it sleeps: a waiter that is never polled again, or is dropped, holds
//! up no one (a dropped reservation is given back), so a future left unpolled in a buffer
//! cannot stall the requests behind it. It sleeps through the client's [`Sleep`], like the
//! retry waits, so that a [`Sleep`] that records or skips waits does so for these too; time
//! is tokio's, so a paused tokio clock applies. After its sleep the turn is the caller's even
//! if the clock did not move (a [`Sleep`] that does not wait), unless the pace was cut
//! meanwhile: a `429` empties the bucket and cancels every reservation, and the caller
//! reserves again at the new pace.

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
    /// Attempts that had to wait.
    delayed: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Off,
    Fixed { rate: f64, burst: f64 },
    Adaptive,
}

/// The turn an attempt was sent in: whether a `429` to it says anything about the pace now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Turn {
    epoch: u64,
}

#[derive(Debug)]
struct State {
    /// Turns free now; below zero, the turns reserved by callers that wait.
    turns: f64,
    /// When `turns` was last brought up to date.
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
        let turns = match mode {
            Mode::Fixed { burst, .. } => burst,
            _ => 1.0,
        };
        Ok(Self {
            mode,
            state: Mutex::new(State {
                turns,
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
    pub async fn acquire(&self, sleep: &dyn Sleep) -> Turn {
        if let Mode::Off = self.mode {
            return Turn { epoch: 0 };
        }
        let mut waited = false;
        loop {
            let (reservation, wait) = {
                let mut state = self.state();
                let now = Instant::now();
                match state.reserve(self.mode, now) {
                    Reserved::Now(turn) => {
                        if waited {
                            self.delayed.fetch_add(1, Ordering::Relaxed);
                        }
                        return turn;
                    }
                    Reserved::After(wait) => (
                        Reservation {
                            limiter: self,
                            epoch: Some(state.epoch),
                        },
                        wait,
                    ),
                }
            };
            waited = true;
            sleep.sleep(wait).await;
            if let Some(turn) = reservation.redeem() {
                self.delayed.fetch_add(1, Ordering::Relaxed);
                return turn;
            }
        }
    }

    /// Notes a `429` to a request sent in `turn`: in adaptive mode, slows down unless the
    /// request was sent before the last slow-down.
    pub fn throttled(&self, turn: Turn) {
        if !matches!(self.mode, Mode::Adaptive) {
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        if turn.epoch != state.epoch {
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
        // The API's bucket is empty: so is ours, and the reservations made at the old pace
        // are void (their callers reserve again).
        state.turns = 0.0;
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

    /// Takes a turn if one is free; otherwise reserves the next one and says how long until
    /// it is due, at the rate in force.
    fn reserve(&mut self, mode: Mode, now: Instant) -> Reserved {
        let Some(rate) = self.rate(mode, now) else {
            return Reserved::Now(self.sent(now));
        };
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.turns = (self.turns + elapsed * rate).min(Self::burst(mode));
        self.updated = now;
        self.turns -= 1.0;
        if matches!(mode, Mode::Adaptive) && rate > self.reported * 1.1 {
            tracing::debug!(rate = round(rate), "probing a faster pace");
            self.reported = rate;
        }
        if self.turns >= 0.0 {
            return Reserved::Now(self.sent(now));
        }
        Reserved::After(Duration::try_from_secs_f64(-self.turns / rate).unwrap_or(Duration::MAX))
    }

    /// Counts a request as sent now, in the current epoch.
    fn sent(&mut self, now: Instant) -> Turn {
        self.sent.count(now);
        Turn { epoch: self.epoch }
    }
}

/// What [`State::reserve`] gave.
#[derive(Debug)]
enum Reserved {
    /// A turn, now.
    Now(Turn),
    /// A turn reserved, due after this wait.
    After(Duration),
}

/// A turn reserved by a caller that sleeps until it is due. Dropped before it is redeemed
/// (the caller gave up, or was dropped), it gives the turn back, so that reservations nobody
/// will use do not delay those behind them.
struct Reservation<'a> {
    limiter: &'a RateLimiter,
    /// The epoch it was made in; `None` once redeemed.
    epoch: Option<u64>,
}

impl Reservation<'_> {
    /// The reserved turn, now due; `None` if the pace was cut since it was made (the
    /// reservation is void: reserve again).
    fn redeem(mut self) -> Option<Turn> {
        let epoch = self.epoch.take()?;
        let mut state = self.limiter.state();
        (state.epoch == epoch).then(|| state.sent(Instant::now()))
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let Some(epoch) = self.epoch else { return };
        let mut state = self.limiter.state();
        if state.epoch == epoch {
            let burst = State::burst(self.limiter.mode);
            state.turns = (state.turns + 1.0).min(burst);
        }
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
        let after = |reserved: Reserved| match reserved {
            Reserved::Now(_) => Duration::ZERO,
            Reserved::After(wait) => wait,
        };
        for _ in 0..3 {
            assert_eq!(after(state.reserve(mode, now)), Duration::ZERO);
        }
        assert_eq!(after(state.reserve(mode, now)), Duration::from_millis(100));
        assert_eq!(
            after(state.reserve(mode, now)),
            Duration::from_millis(200),
            "reservations queue: the next is due after the one before"
        );
        // A long quiet spell pays the reservations and refills the burst, no more.
        for _ in 0..3 {
            assert_eq!(after(state.reserve(mode, at(now, 60_000))), Duration::ZERO);
        }
        assert_eq!(
            after(state.reserve(mode, at(now, 60_000))),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_is_never_polled_again_holds_up_no_one() {
        let limiter = RateLimiter::new(&RateLimit::Fixed {
            per_second: 10.0,
            burst: 1,
        })
        .unwrap();
        let sleep = crate::sleep::TokioSleep;
        limiter.acquire(&sleep).await;
        // A waiter polled once (it reserves a turn and sleeps), then left alone for ever, as
        // a prefetched page in a buffer nobody polls.
        let mut stalled = Box::pin(limiter.acquire(&sleep));
        assert!(futures::poll!(stalled.as_mut()).is_pending());
        let started = Instant::now();
        for _ in 0..5 {
            tokio::time::timeout(Duration::from_secs(10), limiter.acquire(&sleep))
                .await
                .expect("the others get their turns");
        }
        // Each one 100 ms after the one before, the stalled one's turn included.
        assert_eq!(started.elapsed(), Duration::from_millis(600));
        drop(stalled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_reservation_gives_its_turn_back() {
        let limiter = RateLimiter::new(&RateLimit::Fixed {
            per_second: 1.0,
            burst: 1,
        })
        .unwrap();
        let sleep = crate::sleep::TokioSleep;
        limiter.acquire(&sleep).await;
        // 100 callers give up waiting (a deadline): their turns come back.
        for _ in 0..100 {
            let mut gave_up = Box::pin(limiter.acquire(&sleep));
            assert!(futures::poll!(gave_up.as_mut()).is_pending());
        }
        let started = Instant::now();
        limiter.acquire(&sleep).await;
        assert_eq!(started.elapsed(), Duration::from_secs(1), "not 101 s");
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
                .filter_map(|_| match state.reserve(mode, now) {
                    Reserved::Now(turn) => Some(turn),
                    Reserved::After(_) => None,
                })
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
        assert!(matches!(state.reserve(mode, later), Reserved::Now(_)));
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
            matches!(state.reserve(tiny.mode, now), Reserved::Now(_)),
            "a burst of 0 is 1"
        );
        assert!(
            matches!(
                state.reserve(tiny.mode, now),
                Reserved::After(Duration::MAX)
            ),
            "saturates"
        );
    }
}
