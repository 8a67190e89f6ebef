//! The background poller: it lists the devices every `--devices-every`, reads the latest
//! reading of each every `--interval` (at the pace the client's rate limiter allows) and
//! counts new notifications, writing what it gets into the [`Store`]. The outputs never wait
//! for it, and never call the API.
//!
//! It logs at info what an operator follows: one line a poll (devices, readings, failures,
//! readings dropped as stale, duration, the request rate the client allows), a warning when
//! the API refuses calls or asks the client to slow down, and a line when polls recover.

use std::time::Duration;

use futures::StreamExt;
use leapcraft_ext::{
    Client, ClientStats, Error, MAX_NOTIFICATION_PAGE_SIZE, MAX_PAGES_PER_POLL, NotificationCursor,
};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::store::{PollOutcome, PollReport, Store};

/// The most notifications the first poll counts: the newest this many (later polls count
/// only the new ones).
pub const FIRST_NOTIFICATIONS: usize = MAX_PAGES_PER_POLL * MAX_NOTIFICATION_PAGE_SIZE as usize;

/// The most devices kept: a bound on what a misbehaving API can make the poller hold.
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
    let mut poller = Poller::new(client, store, schedule);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = poller.poll() => {}
        }
    }
}

/// The poller's own memory between polls.
#[derive(Debug)]
pub struct Poller {
    client: Client,
    store: Store,
    schedule: Schedule,
    /// When the device list is next due.
    devices_due: Instant,
    notifications: NotificationCursor,
    /// Polls in a row that failed or missed devices: a line says when they stop.
    troubled: u32,
    /// The client's counters at the end of the last poll, to tell what this one did.
    stats: ClientStats,
}

impl Poller {
    /// A poller whose first poll lists the devices.
    pub fn new(client: Client, store: Store, schedule: Schedule) -> Self {
        let stats = client.stats();
        Self {
            client,
            store,
            schedule,
            devices_due: Instant::now(),
            notifications: NotificationCursor::new().with_backlog(FIRST_NOTIFICATIONS),
            troubled: 0,
            stats,
        }
    }

    /// One poll: the device list when it is due (or was never had), every device's latest
    /// reading, the new notifications; then one line saying how it went.
    pub async fn poll(&mut self) -> PollReport {
        let started = Instant::now();
        let store = &self.store;
        if started >= self.devices_due || !store.devices_listed() {
            match self
                .client
                .devices()
                .page_size(1000)
                .max_items(MAX_DEVICES)
                .collect()
                .await
            {
                Ok(devices) => {
                    store.set_devices(&devices);
                    self.devices_due = started + self.schedule.devices_every;
                }
                // The devices listed before stay; the listing is tried again next poll.
                Err(e) => warn("cannot list the devices", &e),
            }
        }

        let (mut readings, mut failed) = (0u64, 0u64);
        if store.devices_listed() {
            let ids = store.device_ids();
            let total = ids.len();
            let mut first_error = None;
            let mut results = self.client.latest_many(ids, self.schedule.concurrency);
            while let Some((id, result)) = results.next().await {
                match result {
                    Ok(reading) => {
                        readings += 1;
                        store.set_reading(&id, &reading);
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = &first_error {
                warn(&format!("{failed} of {total} devices could not be read"), e);
            }
            match self.notifications.poll(&self.client).await {
                Ok(new) => store.add_notifications(&new),
                Err(e) => warn("cannot read the notifications", &e),
            }
        }

        let outcome = PollOutcome {
            duration: started.elapsed(),
            readings,
            failed_devices: failed,
        };
        let report = store.finish_poll(outcome, std::time::SystemTime::now());
        self.log(&report);
        report
    }

    /// The poll's line, and the warnings its counters call for.
    fn log(&mut self, report: &PollReport) {
        let stats = self.client.stats();
        let refused = |s: &ClientStats, status: u16| -> u64 {
            s.requests
                .iter()
                .filter(|((_, st), _)| *st == status)
                .map(|(_, n)| n)
                .sum()
        };
        let slowed = refused(&stats, 429).saturating_sub(refused(&self.stats, 429));
        let rate = stats.request_rate;
        self.stats = stats;

        let duration = format!("{:.1}s", report.duration.as_secs_f64());
        let rate_text = rate.map_or_else(|| "unlimited".to_owned(), |r| format!("{r:.1}/s"));
        tracing::info!(
            devices = report.devices,
            readings = report.readings,
            failed = report.failed_devices,
            stale = report.stale_readings,
            duration = %duration,
            request_rate = %rate_text,
            "poll done"
        );
        if slowed > 0 {
            tracing::warn!(
                answers_429 = slowed,
                request_rate = %rate_text,
                "the API asked the client to slow down"
            );
        }
        if let Some(problem) = report.problem {
            tracing::warn!("the poll is not healthy: {problem}");
        }
        if report.problem.is_some() || report.failed_devices > 0 {
            self.troubled += 1;
        } else if self.troubled > 0 {
            tracing::info!(troubled_polls = self.troubled, "polls recovered");
            self.troubled = 0;
        }
    }
}

fn warn(what: &str, e: &Error) {
    let reason =
        crate::sanitize::for_terminal(&crate::error::one_line(&e.to_string())).into_owned();
    tracing::warn!("{what}: {reason}");
}
