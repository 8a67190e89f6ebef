//! The background poller: it lists the devices every `--devices-every`, reads the latest
//! reading of each every `--interval` (at the pace the client's rate limiter allows) and
//! counts new notifications, writing what it gets into the [`Store`]. Scrapes never wait
//! for it, and never call the API.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use leapcraft_ext::{Client, Error, MAX_NOTIFICATION_PAGE_SIZE, Notification};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::store::{PollOutcome, Store};

/// The most notifications one poll reads: a bound on the first poll of a large account
/// (later polls read only the new ones).
pub const MAX_NOTIFICATIONS_PER_POLL: usize = 100_000;

/// The most devices kept: a bound on what a misbehaving API can make the exporter hold.
pub const MAX_DEVICES: usize = 100_000;

/// How often, and how widely, to poll.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Between the starts of two polls of the readings.
    pub interval: Duration,
    /// Between two listings of the devices.
    pub devices_every: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
}

/// Polls until `cancel` is cancelled: the first poll at once, then one every interval (a
/// poll that takes longer than the interval is followed by the next at once).
pub async fn run(client: Client, store: Store, schedule: Schedule, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(schedule.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut devices_due = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = poll(&client, &store, schedule, &mut devices_due) => {}
        }
    }
}

/// One poll: the device list when it is due (or was never had), every device's latest
/// reading, the new notifications.
pub async fn poll(client: &Client, store: &Store, schedule: Schedule, devices_due: &mut Instant) {
    let started = Instant::now();
    if started >= *devices_due || !store.devices_listed() {
        match client
            .devices()
            .page_size(1000)
            .max_items(MAX_DEVICES)
            .collect()
            .await
        {
            Ok(devices) => {
                store.set_devices(&devices);
                *devices_due = started + schedule.devices_every;
            }
            // The devices listed before stay; the listing is tried again next poll.
            Err(e) => warn("cannot list the devices", &e),
        }
    }
    if !store.devices_listed() {
        store.finish_poll(PollOutcome {
            succeeded: false,
            duration: started.elapsed(),
            failed_devices: 0,
        });
        return;
    }

    let ids = store.device_ids();
    let total = ids.len();
    let mut failed = 0u64;
    let mut first_error = None;
    let mut readings = client.latest_many(ids, schedule.concurrency);
    while let Some((id, result)) = readings.next().await {
        match result {
            Ok(reading) => store.set_reading(&id, &reading),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = &first_error {
        warn(&format!("{failed} of {total} devices could not be read"), e);
    }

    if let Err(e) = count_new_notifications(client, store).await {
        warn("cannot read the notifications", &e);
    }

    store.finish_poll(PollOutcome {
        succeeded: total == 0 || failed < total as u64,
        duration: started.elapsed(),
        failed_devices: failed,
    });
}

/// Counts the notifications newer than those counted before (all of them the first time).
/// Notifications come newest first, so the walk stops at the first one already counted.
/// Nothing is counted unless the walk completes, so a failure counts nothing twice.
async fn count_new_notifications(client: &Client, store: &Store) -> Result<(), Error> {
    let newest = store.newest_notification();
    let new: Vec<Notification> = client
        .notifications()
        .page_size(MAX_NOTIFICATION_PAGE_SIZE)
        .max_items(MAX_NOTIFICATIONS_PER_POLL)
        .items()
        .try_take_while(|n| std::future::ready(Ok(newest.is_none_or(|newest| n.id > newest))))
        .try_collect()
        .await?;
    store.add_notifications(&new);
    Ok(())
}

fn warn(what: &str, e: &Error) {
    tracing::warn!(
        "{what}: {}",
        crate::sanitize::for_terminal(&crate::error::one_line(&e.to_string()))
    );
}
