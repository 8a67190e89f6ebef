//! What the poller knows: the devices, their latest readings, the notifications per category
//! and how the polls went. The poller writes it; the outputs read it, never the API, and
//! [`Store::subscribe`] tells them when a poll has finished.
//!
//! Everything from the API is bounded here, on the way in: label values are cut to
//! [`MAX_LABEL_CHARS`] with control characters replaced, a reading keeps at most
//! [`MAX_OTHER_METRICS`] unknown metrics, and at most [`MAX_CATEGORIES`] notification
//! categories are told apart.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime};

use leapcraft_ext::{Device, Notification, PhysicalId, Reading};
use serde_json::Value;
use tokio::sync::watch;

/// The longest label value kept, in characters (names, serials, metric keys...).
pub const MAX_LABEL_CHARS: usize = 128;

/// The most unknown numeric metrics kept per reading.
pub const MAX_OTHER_METRICS: usize = 32;

/// The most notification categories told apart; later ones are counted as
/// [`OTHER_CATEGORY`].
pub const MAX_CATEGORIES: usize = 64;

/// The category label of notifications past [`MAX_CATEGORIES`].
pub const OTHER_CATEGORY: &str = "_other";

/// A label value from the API, safe to expose: at most [`MAX_LABEL_CHARS`] characters, control
/// characters replaced by U+FFFD. The exposition format escapes the rest.
pub fn label_value(text: &str) -> String {
    text.chars()
        .take(MAX_LABEL_CHARS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// The longest physical id a device may have to be exported, in characters: an id is never
/// cut (two devices would become one series), so a longer one is refused and reported.
pub const MAX_ID_CHARS: usize = 512;

/// A physical id as a label value: distinct ids stay distinct (a backslash is doubled, a
/// control character written as `\u{..}`, nothing cut); `None` past [`MAX_ID_CHARS`].
pub fn id_label(id: &str) -> Option<String> {
    if id.chars().count() > MAX_ID_CHARS {
        return None;
    }
    let mut label = String::with_capacity(id.len());
    for c in id.chars() {
        match c {
            '\\' => label.push_str("\\\\"),
            c if c.is_control() => label.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => label.push(c),
        }
    }
    Some(label)
}

/// A device as the metrics show it: its labels, ready to encode, and its latest reading.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEntry {
    /// `physical_id`.
    pub physical_id: String,
    /// `name` (empty when the device has none).
    pub name: String,
    /// `type`.
    pub kind: String,
    /// `serial`.
    pub serial: String,
    /// `topology_id`.
    pub topology_id: String,
    /// The latest reading, once one was read.
    pub reading: Option<ReadingEntry>,
}

impl DeviceEntry {
    /// `None` for a device whose id cannot be a label (see [`id_label`]).
    fn new(device: &Device) -> Option<Self> {
        let opt = |v: Option<&str>| v.map(label_value).unwrap_or_default();
        Some(Self {
            physical_id: id_label(device.physical_id.as_str())?,
            name: opt(device.name.as_deref()),
            kind: opt(device.kind.as_ref().map(|k| k.as_str())),
            serial: opt(device.serial.as_deref()),
            topology_id: device
                .topology_id
                .map(|t| t.to_string())
                .unwrap_or_default(),
            reading: None,
        })
    }
}

/// A reading as the metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingEntry {
    /// When the sensor recorded it. A reading without a time is not kept: its age, and so
    /// whether it is stale, cannot be known.
    pub recorded_at: SystemTime,
    /// Temperature, °C.
    pub temperature: Option<f64>,
    /// Relative humidity, %.
    pub humidity: Option<f64>,
    /// CO2, ppm.
    pub co2: Option<f64>,
    /// PM2.5, µg/m³.
    pub pm2_5: Option<f64>,
    /// The numeric metrics the SDK does not know, by key (label-safe), at most
    /// [`MAX_OTHER_METRICS`].
    pub other: Vec<(String, f64)>,
}

impl ReadingEntry {
    /// The entry for a reading, or `None` when it has no timestamp.
    pub fn new(reading: &Reading) -> Option<Self> {
        let recorded_at = SystemTime::from(reading.timestamp?.as_datetime());
        let other = reading
            .other
            .iter()
            .filter_map(|(key, value)| match value {
                Value::Number(n) => n.as_f64().map(|v| (label_value(key), v)),
                _ => None,
            })
            .take(MAX_OTHER_METRICS)
            .collect();
        Some(Self {
            recorded_at,
            temperature: reading.temperature,
            humidity: reading.humidity,
            co2: reading.co2,
            pm2_5: reading.pm2_5,
            other,
        })
    }
}

impl ReadingEntry {
    /// Whether the reading is fresh at `now`: recorded no more than `stale_after` before, by
    /// its own time. Only fresh readings are passed on.
    pub fn is_fresh(&self, now: SystemTime, stale_after: Duration) -> bool {
        now.checked_sub(stale_after)
            .is_none_or(|oldest| self.recorded_at >= oldest)
    }
}

/// How the polls went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// When the last successful poll ended: wall-clock time, for the metric.
    pub last_success_at: Option<SystemTime>,
    /// The same moment on the monotonic clock, for the health decision.
    pub last_success: Option<Instant>,
    /// How the last poll went, successful or not.
    pub last_poll: Option<PollReport>,
}

/// What one poll did, as the poller counted it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollOutcome {
    /// How long it took.
    pub duration: Duration,
    /// Readings read.
    pub readings: u64,
    /// Devices whose reading failed.
    pub failed_devices: u64,
}

/// How one poll ended: what the poller counted, and what the store made of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollReport {
    /// How long it took.
    pub duration: Duration,
    /// Devices listed.
    pub devices: usize,
    /// Readings read.
    pub readings: u64,
    /// Devices whose reading failed.
    pub failed_devices: u64,
    /// Devices whose latest reading is older than the store's `stale_after`: not passed on.
    pub stale_readings: u64,
    /// Devices whose latest reading is fresh: what the outputs pass on.
    pub fresh_readings: u64,
    /// Why the poll is not a success, if it is not.
    pub problem: Option<Problem>,
}

/// Why a poll is not a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No device listing ever succeeded.
    NotListed,
    /// Not one device could be read.
    NoneRead,
    /// Devices are listed but no reading is fresh: there is nothing to pass on.
    NothingFresh,
}

impl Problem {
    /// Whether the outputs have nothing to show: then the exporter is down at once, not
    /// after the grace of three intervals that a failed poll gets.
    pub fn exports_nothing(self) -> bool {
        matches!(self, Self::NothingFresh)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotListed => "the devices could not be listed",
            Self::NoneRead => "no device could be read",
            Self::NothingFresh => "no reading is fresh enough to export (see --stale-after)",
        })
    }
}

/// Everything the store holds.
#[derive(Debug, Default)]
pub struct State {
    /// The devices of the last successful listing, by physical id.
    pub devices: BTreeMap<PhysicalId, DeviceEntry>,
    /// Whether a device listing ever succeeded.
    pub devices_listed: bool,
    /// Notifications per category (label-safe).
    pub notifications: BTreeMap<String, u64>,
    /// How the polls went.
    pub health: Health,
}

impl State {
    /// The devices whose latest reading is fresh at `now`: recorded no more than
    /// `stale_after` before, by the reading's own time. A sensor gone quiet, or an API out of
    /// reach, leaves nothing that looks current.
    pub fn fresh(
        &self,
        now: SystemTime,
        stale_after: Duration,
    ) -> impl Iterator<Item = (&DeviceEntry, &ReadingEntry)> + Clone {
        self.devices.values().filter_map(move |device| {
            let reading = device.reading.as_ref()?;
            reading
                .is_fresh(now, stale_after)
                .then_some((device, reading))
        })
    }
}

/// The state, shared between the poller and the outputs: a cheap handle to clone.
#[derive(Debug, Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// A std lock, not tokio's: it is never held across an `.await`, and what holds it
    /// (a write of one reading, a rendering) is short.
    state: RwLock<State>,
    interval: Duration,
    stale_after: Duration,
    /// The number of polls finished: the change feed.
    polls: watch::Sender<u64>,
}

impl Store {
    /// An empty store for polls every `interval`, whose readings are stale `stale_after`
    /// after they were recorded (the health decision needs both).
    pub fn new(interval: Duration, stale_after: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: RwLock::new(State::default()),
                interval,
                stale_after,
                polls: watch::Sender::new(0),
            }),
        }
    }

    /// The change feed: the number of polls finished, which changes when a poll ends (its
    /// devices and readings are then in the store). A slow output misses no state: it reads
    /// the store as it is when it looks.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.polls.subscribe()
    }

    /// How long readings stay fresh.
    pub fn stale_after(&self) -> Duration {
        self.shared.stale_after
    }

    /// The state, for reading (a scrape holds it while it renders).
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the device list, keeping the readings of devices still listed.
    pub fn set_devices(&self, devices: &[Device]) {
        let mut state = self.write();
        let mut old = std::mem::take(&mut state.devices);
        state.devices = devices
            .iter()
            .filter_map(|d| {
                let Some(mut entry) = DeviceEntry::new(d) else {
                    tracing::warn!(
                        "a device id of {} characters is longer than a label may be ({MAX_ID_CHARS}): the device is not exported",
                        d.physical_id.as_str().chars().count()
                    );
                    return None;
                };
                entry.reading = old.remove(&d.physical_id).and_then(|e| e.reading);
                Some((d.physical_id.clone(), entry))
            })
            .collect();
        state.devices_listed = true;
    }

    /// The physical ids of the listed devices.
    pub fn device_ids(&self) -> Vec<PhysicalId> {
        self.read().devices.keys().cloned().collect()
    }

    /// Whether a device listing ever succeeded.
    pub fn devices_listed(&self) -> bool {
        self.read().devices_listed
    }

    /// Stores the latest reading of a listed device, unless it is older than the one stored
    /// or has no timestamp.
    pub fn set_reading(&self, id: &PhysicalId, reading: &Reading) {
        let Some(entry) = ReadingEntry::new(reading) else {
            return;
        };
        let mut state = self.write();
        if let Some(device) = state.devices.get_mut(id)
            && device
                .reading
                .as_ref()
                .is_none_or(|old| old.recorded_at <= entry.recorded_at)
        {
            device.reading = Some(entry);
        }
    }

    /// Counts notifications newer than those counted so far (the caller passes only those).
    pub fn add_notifications(&self, new: &[Notification]) {
        let mut state = self.write();
        for n in new {
            let category = n
                .category
                .as_ref()
                .map(|c| label_value(c.as_str()))
                .unwrap_or_default();
            let known = state.notifications.contains_key(&category);
            let key = if known || state.notifications.len() < MAX_CATEGORIES {
                category
            } else {
                OTHER_CATEGORY.to_owned()
            };
            *state.notifications.entry(key).or_default() += 1;
        }
    }

    /// Records how a poll ended, judges it and tells the subscribers. A poll succeeds when
    /// the devices are listed and, unless there are none, some were read and some reading is
    /// fresh at `now`.
    pub fn finish_poll(&self, outcome: PollOutcome, now: SystemTime) -> PollReport {
        let report = {
            let mut state = self.write();
            let devices = state.devices.len();
            let with_reading = state
                .devices
                .values()
                .filter(|d| d.reading.is_some())
                .count();
            let fresh = state.fresh(now, self.shared.stale_after).count();
            let problem = if !state.devices_listed {
                Some(Problem::NotListed)
            } else if devices == 0 {
                None
            } else if outcome.failed_devices >= devices as u64 {
                Some(Problem::NoneRead)
            } else if fresh == 0 {
                Some(Problem::NothingFresh)
            } else {
                None
            };
            let report = PollReport {
                duration: outcome.duration,
                devices,
                readings: outcome.readings,
                failed_devices: outcome.failed_devices,
                stale_readings: (with_reading - fresh) as u64,
                fresh_readings: fresh as u64,
                problem,
            };
            let health = &mut state.health;
            health.last_poll = Some(report);
            if problem.is_none() {
                health.last_success = Some(Instant::now());
                health.last_success_at = Some(now);
            }
            report
        };
        self.shared.polls.send_modify(|polls| *polls += 1);
        report
    }

    /// Whether the poller is healthy at `now`: the last successful poll ended less than
    /// three intervals ago, and the last poll left something to export. `/healthz` and
    /// `leapcraft_up` both say this.
    pub fn is_healthy(&self, health: &Health, now: Instant) -> bool {
        let recent = health
            .last_success
            .is_some_and(|at| now.saturating_duration_since(at) < 3 * self.shared.interval);
        let exports = health
            .last_poll
            .and_then(|p| p.problem)
            .is_none_or(|p| !p.exports_nothing());
        recent && exports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, name: &str) -> Device {
        serde_json::from_value(serde_json::json!({
            "physical_id": id, "name": name, "type": "ambinode", "topology_id": 7
        }))
        .unwrap()
    }

    fn reading(ts: &str, co2: f64) -> Reading {
        serde_json::from_value(serde_json::json!({
            "timestamp": ts, "co2": co2,
            "other": {"voc": 12, "status": "ok", "noise": 41.5}
        }))
        .unwrap()
    }

    #[test]
    fn distinct_ids_are_distinct_labels() {
        let base = "D".repeat(130);
        let ids = [
            "a\nb".to_owned(),
            "a\rb".to_owned(),
            "a\u{fffd}b".to_owned(),
            "a\\u{a}b".to_owned(),
            "a\\b".to_owned(),
            format!("{base}1"),
            format!("{base}2"),
            base.clone(),
        ];
        let labels: std::collections::HashSet<_> =
            ids.iter().map(|id| id_label(id).unwrap()).collect();
        assert_eq!(labels.len(), ids.len(), "{labels:?}");
        assert!(labels.iter().all(|l| !l.chars().any(char::is_control)));
        assert_eq!(id_label(&"x".repeat(MAX_ID_CHARS + 1)), None);
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(3600));
        let devices: Vec<Device> = ids.iter().map(|id| device(id, "d")).collect();
        store.set_devices(&devices);
        let state = store.read();
        let exported: std::collections::HashSet<_> = state
            .devices
            .values()
            .map(|d| d.physical_id.clone())
            .collect();
        assert_eq!(exported.len(), ids.len());
    }

    #[test]
    fn label_values_are_bounded_and_printable() {
        assert_eq!(label_value("Room \"A\"\n2"), "Room \"A\"\u{FFFD}2");
        assert_eq!(
            label_value(&"x".repeat(1000)).chars().count(),
            MAX_LABEL_CHARS
        );
        assert_eq!(label_value("Bürø ✨"), "Bürø ✨");
    }

    #[test]
    fn readings_keep_numbers_and_only_move_forward() {
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(3600));
        store.set_devices(&[device("A", "one")]);
        let id = PhysicalId::from("A");
        store.set_reading(&id, &reading("2026-12-01T10:00:00Z", 600.0));
        store.set_reading(&id, &reading("2026-12-01T09:00:00Z", 400.0));
        store.set_reading(
            &PhysicalId::from("unlisted"),
            &reading("2026-12-01T11:00:00Z", 1.0),
        );
        let no_time: Reading = serde_json::from_str(r#"{"co2": 999}"#).unwrap();
        store.set_reading(&id, &no_time);
        let state = store.read();
        assert_eq!(state.devices.len(), 1);
        let entry = state.devices[&id].reading.as_ref().unwrap();
        assert_eq!(entry.co2, Some(600.0));
        assert_eq!(
            entry.other,
            vec![("noise".to_owned(), 41.5), ("voc".to_owned(), 12.0)]
        );
    }

    #[test]
    fn a_new_device_list_keeps_readings_of_devices_still_listed() {
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(3600));
        store.set_devices(&[device("A", "one"), device("B", "two")]);
        store.set_reading(&"A".into(), &reading("2026-12-01T10:00:00Z", 600.0));
        store.set_reading(&"B".into(), &reading("2026-12-01T10:00:00Z", 700.0));
        store.set_devices(&[device("A", "renamed")]);
        let state = store.read();
        assert_eq!(
            state.devices.keys().collect::<Vec<_>>(),
            [&PhysicalId::from("A")]
        );
        assert_eq!(state.devices[&PhysicalId::from("A")].name, "renamed");
        assert!(state.devices[&PhysicalId::from("A")].reading.is_some());
    }

    #[test]
    fn categories_are_bounded() {
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(3600));
        let notes: Vec<Notification> = (0..(MAX_CATEGORIES as i64 + 10))
            .map(|i| {
                serde_json::from_value(serde_json::json!({"id": i, "category": format!("c{i}")}))
                    .unwrap()
            })
            .collect();
        store.add_notifications(&notes);
        store.add_notifications(&notes[..1]);
        let state = store.read();
        assert_eq!(state.notifications.len(), MAX_CATEGORIES + 1);
        assert_eq!(state.notifications["c0"], 2);
        assert_eq!(state.notifications[OTHER_CATEGORY], 10);
    }

    fn at(ts: &str) -> SystemTime {
        SystemTime::from(
            ts.parse::<leapcraft_ext::Timestamp>()
                .unwrap()
                .as_datetime(),
        )
    }

    fn outcome(readings: u64, failed_devices: u64) -> PollOutcome {
        PollOutcome {
            duration: Duration::from_secs(2),
            readings,
            failed_devices,
        }
    }

    #[tokio::test]
    async fn every_finished_poll_is_announced_to_every_subscriber() {
        let store = Store::new(Duration::from_secs(10), Duration::from_secs(3600));
        let (mut one, mut two) = (store.subscribe(), store.clone().subscribe());
        assert!(!one.has_changed().unwrap());
        store.finish_poll(outcome(0, 0), SystemTime::now());
        one.changed().await.unwrap();
        two.changed().await.unwrap();
        assert_eq!((*one.borrow_and_update(), *two.borrow_and_update()), (1, 1));
        assert!(!one.has_changed().unwrap());
    }

    #[test]
    fn healthy_while_the_last_success_is_within_three_intervals() {
        let store = Store::new(Duration::from_secs(10), Duration::from_secs(3600));
        let now = at("2026-12-01T10:30:00Z");
        assert!(!store.is_healthy(&store.read().health, Instant::now()));
        let report = store.finish_poll(outcome(0, 0), now);
        assert_eq!(report.problem, Some(Problem::NotListed));
        assert!(!store.is_healthy(&store.read().health, Instant::now()));

        store.set_devices(&[device("A", "one"), device("B", "two")]);
        store.set_reading(&"A".into(), &reading("2026-12-01T10:00:00Z", 600.0));
        let report = store.finish_poll(outcome(1, 1), now);
        assert_eq!(report.problem, None);
        assert_eq!((report.fresh_readings, report.stale_readings), (1, 0));
        let health = store.read().health.clone();
        let at_success = health.last_success.unwrap();
        assert!(store.is_healthy(&health, at_success + Duration::from_secs(29)));
        assert!(!store.is_healthy(&health, at_success + Duration::from_secs(30)));
        assert_eq!(health.last_poll, Some(report));

        // A poll that reads nothing keeps the grace of three intervals.
        let report = store.finish_poll(outcome(0, 2), now);
        assert_eq!(report.problem, Some(Problem::NoneRead));
        let health = store.read().health.clone();
        assert!(store.is_healthy(&health, at_success + Duration::from_secs(29)));
    }

    #[test]
    fn a_poll_whose_readings_are_all_stale_is_down_at_once_and_says_why() {
        let store = Store::new(Duration::from_secs(10), Duration::from_secs(3600));
        store.set_devices(&[device("A", "one"), device("B", "two"), device("C", "three")]);
        store.set_reading(&"A".into(), &reading("2026-12-01T10:00:00Z", 600.0));
        store.set_reading(&"B".into(), &reading("2026-12-01T10:00:00Z", 700.0));
        let fine = store.finish_poll(outcome(2, 0), at("2026-12-01T10:30:00Z"));
        assert_eq!(fine.problem, None);
        assert!(store.is_healthy(&store.read().health, Instant::now()));

        let stale = store.finish_poll(outcome(2, 0), at("2026-12-01T11:00:01Z"));
        assert_eq!(stale.problem, Some(Problem::NothingFresh));
        assert_eq!((stale.fresh_readings, stale.stale_readings), (0, 2));
        assert!(stale.problem.unwrap().to_string().contains("--stale-after"));
        assert!(!store.is_healthy(&store.read().health, Instant::now()));
    }
}
