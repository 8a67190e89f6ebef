//! Polling streams: new readings of a set of devices, new notifications. Both poll at an
//! interval on tokio's timer and stop when dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::{Instant, Interval, MissedTickBehavior};

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
    /// once, oldest first. Those that exist when the stream starts are not yielded.
    ///
    /// The API lists notifications newest first. Each poll reads from the top, 50 at a time,
    /// until it meets one it has already seen: new ones are those above it. Notifications
    /// that arrive while a poll pages (and push the list down) are merged by id, never
    /// reported twice, and shown by the next poll. Only the ids at the top of the list, where
    /// the next poll can meet them, are remembered, so memory stays bounded however long the
    /// stream runs. A poll reads at most 10,000 notifications: of a larger burst between two
    /// polls, the newest 10,000 are yielded.
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
        struct State {
            client: Client,
            device: Option<PhysicalId>,
            every: Duration,
            next_poll: Option<Instant>,
            top: Option<HashSet<i64>>,
            failures: u32,
            last_failure: Option<ErrorClass>,
            ready: VecDeque<Result<Notification, Error>>,
        }
        let state = State {
            client: self.clone(),
            device,
            every,
            next_poll: None,
            top: None,
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
                let (client, device) = (&state.client, &state.device);
                let page = |offset: u64| {
                    client
                        .notifications_of(device.clone())
                        .page_size(MAX_NOTIFICATION_PAGE_SIZE)
                        .skip(offset)
                        .max_items(MAX_NOTIFICATION_PAGE_SIZE as usize)
                        .collect()
                };
                match poll_notifications(page, state.top.as_ref()).await {
                    Ok((new, top)) => {
                        state.top = Some(top);
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

/// The most pages one poll of the notifications reads.
const MAX_PAGES_PER_POLL: usize = 200;

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

/// One poll: reads the list from the top, a page of 50 at a time from `page(offset)`, until
/// it meets an id of `top` (the ids at the top of the list at the last poll; `None` on the
/// first poll, which reads one page only). Returns the new notifications, oldest first, and
/// the ids now at the top.
async fn poll_notifications<F, Fut>(
    mut page: F,
    top: Option<&HashSet<i64>>,
) -> Result<(Vec<Notification>, HashSet<i64>), Error>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Vec<Notification>, Error>>,
{
    let size = MAX_NOTIFICATION_PAGE_SIZE as usize;
    let mut window = Window::default();
    for k in 0..MAX_PAGES_PER_POLL {
        let found = page((k * size) as u64).await?;
        let full = found.len() >= size;
        let met_known = window.add_page(found, top);
        if met_known || !full || top.is_none() {
            break;
        }
    }
    Ok(window.finish(top))
}

/// The notifications one poll has read, in list order (newest first), each id once.
#[derive(Debug, Default)]
struct Window {
    items: Vec<Notification>,
    ids: HashSet<i64>,
}

impl Window {
    /// Adds a page; an item already read this poll (pushed down onto this page by a newer
    /// one) is skipped. Returns whether the page holds an id of `top`.
    fn add_page(&mut self, page: Vec<Notification>, top: Option<&HashSet<i64>>) -> bool {
        let mut met_known = false;
        for n in page {
            met_known |= top.is_some_and(|top| top.contains(&n.id));
            if self.ids.insert(n.id) {
                self.items.push(n);
            }
        }
        met_known
    }

    /// The new notifications (those above the first one of `top`), oldest first, and the
    /// ids read, which are the top of the list for the next poll.
    fn finish(self, top: Option<&HashSet<i64>>) -> (Vec<Notification>, HashSet<i64>) {
        let Some(top) = top else {
            return (Vec::new(), self.ids);
        };
        let mut items = self.items;
        let boundary = items
            .iter()
            .position(|n| top.contains(&n.id))
            .unwrap_or(items.len());
        items.truncate(boundary);
        items.reverse();
        (items, self.ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification list, newest first, as the API pages it.
    #[derive(Default)]
    struct List {
        newest_first: VecDeque<i64>,
        next_id: i64,
    }

    impl List {
        fn raise(&mut self, n: usize) -> Vec<i64> {
            (0..n)
                .map(|_| {
                    self.next_id += 1;
                    self.newest_first.push_front(self.next_id);
                    self.next_id
                })
                .collect()
        }

        fn page(&self, offset: u64) -> Vec<Notification> {
            self.newest_first
                .iter()
                .skip(offset as usize)
                .take(MAX_NOTIFICATION_PAGE_SIZE as usize)
                .map(|&id| notification(id))
                .collect()
        }
    }

    fn notification(id: i64) -> Notification {
        serde_json::from_value(serde_json::json!({ "id": id })).unwrap()
    }

    /// One poll of `list`; `raise_per_page` notifications arrive before each page request.
    fn poll(
        list: &mut List,
        top: Option<&HashSet<i64>>,
        raise_per_page: usize,
    ) -> (Vec<i64>, HashSet<i64>) {
        let list = std::cell::RefCell::new(list);
        let page = |offset| {
            let mut list = list.borrow_mut();
            list.raise(raise_per_page);
            std::future::ready(Ok(list.page(offset)))
        };
        let (new, top) = futures::executor::block_on(poll_notifications(page, top)).unwrap();
        (new.iter().map(|n| n.id).collect(), top)
    }

    #[test]
    fn each_new_notification_once_while_the_list_shifts_under_the_pages() {
        let mut list = List::default();
        list.raise(120);
        let (first, mut top) = poll(&mut list, None, 0);
        assert!(first.is_empty(), "the first poll only learns what exists");

        let mut yielded = Vec::new();
        let mut raised = Vec::new();
        // Bursts larger than a page, and one notification arriving before every page request.
        for burst in [0, 3, 49, 50, 51, 170, 1] {
            raised.extend(list.raise(burst));
            let (new, next_top) = poll(&mut list, Some(&top), 1);
            yielded.extend(new);
            top = next_top;
        }
        // What arrived during the last poll is shown by the next one.
        let (new, _) = poll(&mut list, Some(&top), 0);
        yielded.extend(new);
        let all_new: Vec<i64> = (121..=list.next_id).collect();
        assert_eq!(yielded, all_new, "each once, oldest first, none lost");
        assert!(raised.iter().all(|id| yielded.contains(id)));
    }

    #[test]
    fn memory_stays_bounded_over_many_polls() {
        let mut list = List::default();
        list.raise(10);
        let (_, mut top) = poll(&mut list, None, 0);
        let mut count = 0;
        for _ in 0..2_000 {
            list.raise(7);
            let (new, next_top) = poll(&mut list, Some(&top), 0);
            count += new.len();
            top = next_top;
            assert!(
                top.len() <= 2 * MAX_NOTIFICATION_PAGE_SIZE as usize,
                "{}",
                top.len()
            );
        }
        assert_eq!(count, 14_000);
    }

    #[test]
    fn a_poll_reads_a_bounded_number_of_pages() {
        let mut list = List::default();
        let (_, top) = poll(&mut list, None, 0);
        list.raise(MAX_PAGES_PER_POLL * 50 + 500);
        let (new, top) = poll(&mut list, Some(&top), 0);
        assert_eq!(new.len(), MAX_PAGES_PER_POLL * 50, "the newest ones");
        assert_eq!(new.last(), Some(&list.next_id));
        assert_eq!(top.len(), new.len());
    }

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
