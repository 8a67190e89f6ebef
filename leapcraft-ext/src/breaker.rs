//! The circuit breaker: when the API refuses everything (`429`, `5xx`, no answer) and the
//! retry budget is spent, calls fail at once instead of each waiting its turn to be refused
//! again, so that an outage ends a bulk command in a minute or two, not in many.
//!
//! **Closed** (normal): every call goes. After [`OPEN_AFTER`] refused attempts in a row with
//! the retry budget spent, the breaker **opens** for a cool-down ([`FIRST_COOLDOWN`]): calls
//! fail at once with [`Error::Refusing`](crate::Error::Refusing), nothing is sent. Then it is
//! **half-open**: one call goes as a probe while the others still fail at once. An answer
//! closes it; a refusal opens it again for twice as long (up to [`MAX_COOLDOWN`]). Each change
//! is a `tracing` event: a warning when it opens, info when it closes.
//!
//! The decisions ([`State::admit`], [`State::record`]) read no clock: they are handed the
//! time, and are tested as tables.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Refused attempts in a row, with the retry budget spent, that open the breaker.
pub(crate) const OPEN_AFTER: u32 = 10;
/// The first cool-down.
pub(crate) const FIRST_COOLDOWN: Duration = Duration::from_secs(5);
/// The longest cool-down.
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(60);

/// What an attempt got, as the breaker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer that is not a refusal (a success, a `404`...): the API is there.
    Answered,
    /// A `429`, a `5xx`, a timeout or no connection, with the status if there was one;
    /// `budget_spent` when the retry budget cannot pay for a retry.
    Refused {
        status: Option<u16>,
        budget_spent: bool,
    },
}

/// Why a call may not go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Open {
    /// How long the API has refused everything.
    pub refusing_for: Duration,
    /// The last status it refused with.
    pub last_status: Option<u16>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    state: Mutex<State>,
}

impl Breaker {
    /// Whether a call may go now.
    pub fn admit(&self) -> Result<(), Open> {
        self.state().admit(Instant::now())
    }

    /// Notes what an attempt got.
    pub fn record(&self, outcome: Outcome) {
        let change = self.state().record(outcome, Instant::now());
        match change {
            Some(Change::Opened { cooldown, refusals }) => tracing::warn!(
                refusals,
                cooldown_s = cooldown.as_secs(),
                "the API refuses every request ({refusals} in a row, retry budget spent): \
                 failing calls at once for {} s, then probing",
                cooldown.as_secs()
            ),
            Some(Change::Closed) => tracing::info!("the API answers again: calls go as usual"),
            None => {}
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A change worth telling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Opened { cooldown: Duration, refusals: u32 },
    Closed,
}

/// The breaker's state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct State {
    refusals: u32,
    /// When the current run of refusals began.
    refusing_since: Option<Instant>,
    last_status: Option<u16>,
    /// Open until then; `None` when closed.
    open_until: Option<Instant>,
    cooldown: Duration,
    /// Half-open, and the probe has gone.
    probing: bool,
}

impl State {
    /// Whether a call may go at `now`: see the module docs.
    pub fn admit(&mut self, now: Instant) -> Result<(), Open> {
        let Some(until) = self.open_until else {
            return Ok(());
        };
        if now >= until && !self.probing {
            self.probing = true;
            return Ok(());
        }
        Err(Open {
            refusing_for: self
                .refusing_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since)),
            last_status: self.last_status,
        })
    }

    /// Notes `outcome` at `now`; what changed, if anything worth telling.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Option<Change> {
        match outcome {
            Outcome::Answered => {
                let was_open = self.open_until.is_some();
                *self = State::default();
                was_open.then_some(Change::Closed)
            }
            Outcome::Refused {
                status,
                budget_spent,
            } => {
                self.refusals = self.refusals.saturating_add(1);
                self.refusing_since.get_or_insert(now);
                if status.is_some() {
                    self.last_status = status;
                }
                let reopen = self.probing;
                let open = self.open_until.is_none() && budget_spent && self.refusals >= OPEN_AFTER;
                if !(reopen || open) {
                    return None;
                }
                self.cooldown = if reopen {
                    (self.cooldown * 2).min(MAX_COOLDOWN)
                } else {
                    FIRST_COOLDOWN
                };
                self.open_until = Some(now + self.cooldown);
                self.probing = false;
                Some(Change::Opened {
                    cooldown: self.cooldown,
                    refusals: self.refusals,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: Outcome = Outcome::Refused {
        status: Some(429),
        budget_spent: true,
    };

    #[test]
    fn it_opens_only_when_the_budget_is_spent_and_everything_is_refused() {
        let now = Instant::now();
        let mut state = State::default();
        let with_budget = Outcome::Refused {
            status: Some(503),
            budget_spent: false,
        };
        for _ in 0..100 {
            assert_eq!(state.record(with_budget, now), None, "budget left: closed");
        }
        let mut state = State::default();
        for _ in 0..OPEN_AFTER - 1 {
            assert_eq!(state.record(REFUSED, now), None);
        }
        state.record(Outcome::Answered, now);
        for _ in 0..OPEN_AFTER - 1 {
            assert_eq!(
                state.record(REFUSED, now),
                None,
                "an answer starts the count again"
            );
        }
        assert!(
            matches!(state.record(REFUSED, now), Some(Change::Opened { cooldown, .. }) if cooldown == FIRST_COOLDOWN)
        );
        assert!(state.admit(now).is_err());
    }

    #[test]
    fn half_open_lets_one_probe_through() {
        let start = Instant::now();
        let mut state = State::default();
        for _ in 0..OPEN_AFTER {
            state.record(REFUSED, start);
        }
        let later = start + Duration::from_secs(3);
        assert_eq!(
            state.admit(later),
            Err(Open {
                refusing_for: Duration::from_secs(3),
                last_status: Some(429)
            })
        );
        let after_cooldown = start + FIRST_COOLDOWN;
        assert_eq!(state.admit(after_cooldown), Ok(()), "the probe");
        assert!(state.admit(after_cooldown).is_err(), "one probe only");
        // The probe refused: open again, twice as long.
        assert_eq!(
            state.record(REFUSED, after_cooldown),
            Some(Change::Opened {
                cooldown: 2 * FIRST_COOLDOWN,
                refusals: OPEN_AFTER + 1
            })
        );
        let next = after_cooldown + 2 * FIRST_COOLDOWN;
        assert_eq!(state.admit(next), Ok(()));
        assert_eq!(state.record(Outcome::Answered, next), Some(Change::Closed));
        assert_eq!(state.admit(next), Ok(()));
        assert_eq!(state.admit(next), Ok(()), "closed: every call goes");
    }

    #[test]
    fn the_cooldown_is_bounded() {
        let now = Instant::now();
        let mut state = State::default();
        for _ in 0..OPEN_AFTER {
            state.record(REFUSED, now);
        }
        let mut at = now;
        for _ in 0..20 {
            at += MAX_COOLDOWN;
            assert_eq!(state.admit(at), Ok(()));
            state.record(REFUSED, at);
        }
        assert_eq!(state.cooldown, MAX_COOLDOWN);
    }
}
