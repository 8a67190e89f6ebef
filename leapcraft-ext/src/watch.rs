//! Polling streams: new readings of a set of devices, new notifications. Both poll at an
//! interval on tokio's timer and stop when dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::{Interval, MissedTickBehavior};

use crate::bulk::DEFAULT_CONCURRENCY;
use crate::notifications::MAX_NOTIFICATION_PAGE_SIZE;
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
    /// once, oldest id first. Those that exist when the stream starts are not yielded. Each
    /// poll reads the whole list (the API does not say how it is ordered). A failed poll is
    /// yielded as an error, and polling goes on.
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
        struct State {
            client: Client,
            device: Option<PhysicalId>,
            interval: Interval,
            seen: Option<HashSet<i64>>,
            ready: VecDeque<Result<Notification, Error>>,
        }
        let state = State {
            client: self.clone(),
            device,
            interval: interval(every),
            seen: None,
            ready: VecDeque::new(),
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.ready.pop_front() {
                    return Some((item, state));
                }
                state.interval.tick().await;
                let all = state
                    .client
                    .notifications_of(state.device.clone())
                    .page_size(MAX_NOTIFICATION_PAGE_SIZE)
                    .collect()
                    .await;
                let mut all = match all {
                    Ok(all) => all,
                    Err(e) => {
                        state.ready.push_back(Err(e));
                        continue;
                    }
                };
                all.sort_by_key(|n| n.id);
                match &mut state.seen {
                    // The first poll only learns what already exists.
                    None => state.seen = Some(all.iter().map(|n| n.id).collect()),
                    Some(seen) => state
                        .ready
                        .extend(all.into_iter().filter(|n| seen.insert(n.id)).map(Ok)),
                }
            }
        })
        .boxed()
    }
}
