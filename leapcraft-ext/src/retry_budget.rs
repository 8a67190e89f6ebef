//! The retry budget's permits, shared by all clones of a client: what [`decide`] is told is
//! left, spent by the pipeline when it retries and given back when a call succeeds (the
//! costs and the rules are [`crate::retry`]'s).
//!
//! [`decide`]: crate::retry::decide

use std::sync::atomic::{AtomicU32, Ordering};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    capacity: u32,
    permits: AtomicU32,
}

impl RetryBudget {
    /// A full budget of `capacity` permits.
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            permits: AtomicU32::new(capacity),
        }
    }

    /// Permits left.
    pub fn left(&self) -> u32 {
        self.permits.load(Ordering::Relaxed)
    }

    /// Takes `cost` permits (down to none: two calls that both saw enough may both retry).
    pub fn spend(&self, cost: u32) {
        let _ = self
            .permits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(cost))
            });
    }

    /// Gives `amount` permits back, up to the capacity.
    pub fn refill(&self, amount: u32) {
        let capacity = self.capacity;
        let _ = self
            .permits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(amount).min(capacity))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_down_to_nothing_and_refills_up_to_the_capacity() {
        let budget = RetryBudget::new(12);
        budget.spend(5);
        budget.spend(5);
        assert_eq!(budget.left(), 2);
        budget.spend(5);
        assert_eq!(budget.left(), 0);
        budget.refill(5);
        assert_eq!(budget.left(), 5);
        budget.refill(u32::MAX);
        assert_eq!(budget.left(), 12);
    }
}
