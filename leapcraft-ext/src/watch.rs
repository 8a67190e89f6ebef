//! Polling streams: new readings of a set of devices, new notifications. Both poll at an
//! interval on tokio's timer and stop when dropped.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::bulk::DEFAULT_CONCURRENCY;
use crate::cursor::NotificationCursor;
use crate::{Client, Error, Notification, PhysicalId, Reading};

fn interval(every: Duration) -> Interval {
    let mut interval = tokio::time::interval(every.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// Whether `reading` is newer than the last one yielded for its device.
fn is_new(last: Option<&Reading>, reading: &Reading) -> bool {
    match (last, reading.timestamp) {
        (None, _) => true,
        (Some(last), Some(at)) => last.timestamp.is_none_or(|seen| at > seen),
        // No timestamp to compare: new if anything changed.
        (Some(last), None) => last != reading,
    }
}

impl Client {
    /// Polls the latest reading of each device every `every`, yielding a reading only when
    /// it is new (a later timestamp than the last one yielded for that device); the first
    /// poll yields the current readings. Failures are yielded too, and polling goes on.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// # async fn run(client: leapcraft_ext::Client) {
    /// let mut updates = client.watch_latest(["D2:C1:AA:FF:3E:09"], Duration::from_secs(60));
    /// while let Some((id, reading)) = updates.next().await {
    ///     println!("{id}: {:?}", reading.map(|r| r.co2));
    /// }
    /// # }
    /// ```
    pub fn watch_latest<I>(
        &self,
        ids: I,
        every: Duration,
    ) -> BoxStream<'static, (PhysicalId, Result<Reading, Error>)>
    where
        I: IntoIterator,
        I::Item: Into<PhysicalId>,
    {
        struct State {
            client: Client,
            ids: Vec<PhysicalId>,
            interval: Interval,
            last: HashMap<PhysicalId, Reading>,
            ready: VecDeque<(PhysicalId, Result<Reading, Error>)>,
        }
        let state = State {
            client: self.clone(),
            ids: ids.into_iter().map(Into::into).collect(),
            interval: interval(every),
            last: HashMap::new(),
            ready: VecDeque::new(),
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.ready.pop_front() {
                    return Some((item, state));
                }
                if state.ids.is_empty() {
                    return None;
                }
                state.interval.tick().await;
                let mut polled: Vec<_> = state
                    .client
                    .latest_many(state.ids.clone(), DEFAULT_CONCURRENCY)
                    .collect()
                    .await;
                polled.sort_by(|a, b| a.0.cmp(&b.0));
                for (id, result) in polled {
                    match result {
                        Ok(reading) if !is_new(state.last.get(&id), &reading) => {}
                        Ok(reading) => {
                            state.last.insert(id.clone(), reading.clone());
                            state.ready.push_back((id, Ok(reading)));
                        }
                        Err(e) => state.ready.push_back((id, Err(e))),
                    }
                }
            }
        })
        .boxed()
    }

    /// Polls the notifications (of one device, or all) every `every` and yields each new one
    /// once, oldest first. Those that exist when the stream starts are not yielded.
    ///
    /// Each poll is a [`NotificationCursor::poll`]: new notifications are told by identity,
    /// not position, so notifications that arrive while a poll pages, or that are deleted,
    /// neither repeat nor hide others; memory stays bounded however long the stream runs. A
    /// poll reads at most 10,000 notifications: of a larger burst between two polls, the
    /// newest 10,000 are yielded.
    ///
    /// A failed poll is yielded as an error once per streak of failures (again only if a
    /// different kind of failure follows), and polling goes on, waiting twice as long after
    /// each failure in a row (up to five minutes, or `every` if longer) until a poll
    /// succeeds.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// # async fn run(client: leapcraft_ext::Client) {
    /// let mut alerts = client.follow_notifications(None, Duration::from_secs(30));
    /// while let Some(alert) = alerts.next().await {
    ///     println!("{:?}", alert.map(|a| a.message));
    /// }
    /// # }
    /// ```
    pub fn follow_notifications(
        &self,
        device: Option<PhysicalId>,
        every: Duration,
    ) -> BoxStream<'static, Result<Notification, Error>> {
        let cursor = match device {
            Some(device) => NotificationCursor::for_device(device),
            None => NotificationCursor::new(),
        };
        self.follow_notifications_from(cursor, every)
    }

    /// As [`follow_notifications`](Self::follow_notifications), from `cursor`: with
    /// [`NotificationCursor::with_backlog`], the newest few come first.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use leapcraft_ext::NotificationCursor;
    /// # async fn run(client: leapcraft_ext::Client) {
    /// let cursor = NotificationCursor::new().with_backlog(3);
    /// let mut alerts = client.follow_notifications_from(cursor, Duration::from_secs(30));
    /// while let Some(alert) = alerts.next().await {
    ///     println!("{:?}", alert.map(|a| a.message));
    /// }
    /// # }
    /// ```
    pub fn follow_notifications_from(
        &self,
        cursor: NotificationCursor,
        every: Duration,
    ) -> BoxStream<'static, Result<Notification, Error>> {
        struct State {
            client: Client,
            every: Duration,
            next_poll: Option<Instant>,
            cursor: NotificationCursor,
            failures: u32,
            last_failure: Option<ErrorClass>,
            ready: VecDeque<Result<Notification, Error>>,
        }
        let state = State {
            client: self.clone(),
            every,
            next_poll: None,
            cursor,
            failures: 0,
            last_failure: None,
            ready: VecDeque::new(),
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.ready.pop_front() {
                    return Some((item, state));
                }
                if let Some(at) = state.next_poll {
                    tokio::time::sleep_until(at).await;
                }
                let started = Instant::now();
                match state.cursor.poll(&state.client).await {
                    Ok(new) => {
                        state.ready.extend(new.into_iter().map(Ok));
                        state.failures = 0;
                        state.last_failure = None;
                        state.next_poll = Some(started + state.every);
                    }
                    Err(e) => {
                        state.failures = state.failures.saturating_add(1);
                        let kind = ErrorClass::of(&e);
                        if state.last_failure != Some(kind) {
                            state.ready.push_back(Err(e));
                        }
                        state.last_failure = Some(kind);
                        state.next_poll = Some(started + backoff(state.every, state.failures));
                    }
                }
            }
        })
        .boxed()
    }
}

/// The longest wait between two polls after failures, unless the interval is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before the next poll after `failures` failed polls in a row: the interval,
/// doubled for each failure, at most [`MAX_BACKOFF`] (or the interval, if longer).
fn backoff(every: Duration, failures: u32) -> Duration {
    let cap = MAX_BACKOFF.max(every);
    every
        .checked_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX))
        .map_or(cap, |wait| wait.min(cap))
}

/// What kind of failure a poll had, to tell a new streak from the same one going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ErrorClass(std::mem::Discriminant<Error>, Option<u16>);

impl ErrorClass {
    fn of(e: &Error) -> Self {
        Self(std::mem::discriminant(e), e.status().map(|s| s.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_polls_back_off() {
        let every = Duration::from_secs(10);
        assert_eq!(backoff(every, 1), Duration::from_secs(20));
        assert_eq!(backoff(every, 3), Duration::from_secs(80));
        assert_eq!(backoff(every, 20), MAX_BACKOFF);
        assert_eq!(backoff(every, u32::MAX), MAX_BACKOFF);
        let hourly = Duration::from_secs(3600);
        assert_eq!(
            backoff(hourly, 4),
            hourly,
            "never shorter than the interval"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_streak_of_failed_polls_is_reported_once() {
        let fake = leapcraft_fake::FakeServer::builder()
            .devices(3)
            .start()
            .await
            .unwrap();
        let client = Client::builder()
            .api_key(fake.api_key())
            .base_url(fake.base_url())
            .attempt_timeout(None)
            .overall_timeout(None)
            .retry_policy(crate::RetryPolicy::none())
            .build()
            .unwrap();
        let mut follow = client.follow_notifications(None, Duration::from_secs(10));
        let quiet = tokio::time::timeout(Duration::from_secs(5), follow.next()).await;
        assert!(quiet.is_err(), "the first poll learns what exists");
        let polls_before = fake.counters().requests.list_notifications;
        fake.inject_faults(leapcraft_fake::FaultKind::ServiceUnavailable, 3);

        let failed = follow.next().await.unwrap();
        let first_failure = tokio::time::Instant::now();
        assert_eq!(failed.unwrap_err().status().map(|s| s.as_u16()), Some(503));
        let raised = fake.push_generated_notification();
        let next = follow.next().await.unwrap().unwrap();
        assert_eq!(
            next.id, raised.id,
            "the other failures of the streak are not yielded"
        );
        let polls = fake.counters().requests.list_notifications - polls_before;
        assert_eq!(polls, 4, "three failed polls, then one that succeeded");
        // On the paused clock: 20 s, 40 s and 80 s between the polls, not 10 s each.
        assert!(first_failure.elapsed() >= Duration::from_secs(140));
    }
}
