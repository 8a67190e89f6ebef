//! What the broker holds of the store, and the messages that bring it up to date. Pure: it
//! plans the messages; the session sends them.
//!
//! After a poll: discovery for each sensor not yet announced (or whose device's name, model
//! or serial changed), a state message for each device whose fresh reading changed, and, once
//! the devices were listed, an empty retained message on every topic of a device gone from
//! the account, so that Home Assistant removes it. A stale reading is not passed on: Home
//! Assistant's `expire_after` marks its sensors unavailable.
//!
//! After a (re)connect, or when Home Assistant announces itself, [`Mirror::forget`] makes the
//! next plan publish everything again: a broker restarted without persistence, or a Home
//! Assistant started after the bridge, has none of it.
//!
//! What the broker held when the bridge connected ([`Mirror::found`]) is cleared too, once
//! the devices were listed, for every device no longer in the account: one removed while the
//! bridge was down.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use leapcraft_ext::PhysicalId;

use super::discovery::{self, Metric, Node};
use super::retained::{self, Retained};
use super::topics::Topics;
use crate::poll::store::{MAX_OTHER_METRICS, State};

/// The most sensors a device gets: the known metrics and [`MAX_OTHER_METRICS`] others.
const MAX_SENSORS: usize = 4 + MAX_OTHER_METRICS;

/// One message to publish. All of the bridge's messages are retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload: JSON, or empty to clear a retained message.
    pub payload: String,
}

/// What the broker holds for one device.
#[derive(Debug)]
struct Published {
    node: Node,
    /// Its sensors: every metric its fresh readings had while it was listed.
    metrics: BTreeSet<Metric>,
    /// Whether the broker has the discovery of every sensor, as `node` describes them.
    announced: bool,
    /// The state message the broker has.
    state: Option<String>,
}

/// What the broker holds of the store, as far as the bridge knows.
#[derive(Debug)]
pub struct Mirror {
    topics: Topics,
    /// Home Assistant's `expire_after` for every sensor.
    expire_after: Duration,
    devices: BTreeMap<PhysicalId, Published>,
    /// The retained topics the broker held, by device segment, until the devices are listed.
    found: BTreeMap<String, BTreeSet<String>>,
    /// How many topics `found` holds.
    found_topics: usize,
}

/// What a plan does, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Discovery configs published.
    pub configs: usize,
    /// State messages published.
    pub states: usize,
    /// Devices cleared, gone from the account.
    pub removed: usize,
}

impl Mirror {
    /// A mirror of an empty broker.
    pub fn new(topics: Topics, expire_after: Duration) -> Self {
        Self {
            topics,
            expire_after,
            devices: BTreeMap::new(),
            found: BTreeMap::new(),
            found_topics: 0,
        }
    }

    /// Takes note of a retained message the broker held, to clear it once the devices are
    /// listed if its device is not among them. `false` when the mirror holds as many as it
    /// keeps: the message is not kept.
    pub fn found(&mut self, retained: Retained) -> bool {
        if self.found_topics >= retained::MAX_TOPICS {
            return false;
        }
        if self
            .found
            .entry(retained.device)
            .or_default()
            .insert(retained.topic)
        {
            self.found_topics += 1;
        }
        true
    }

    /// Takes it that the broker holds nothing: the next plan publishes every sensor and
    /// state again. The devices are kept, so that one gone meanwhile is still cleared.
    pub fn forget(&mut self) {
        for published in self.devices.values_mut() {
            published.announced = false;
            published.state = None;
        }
    }

    /// The messages that make the broker hold `state` at `now`, in order (a sensor's
    /// discovery before its device's state), taken as published.
    pub fn plan(
        &mut self,
        state: &State,
        now: SystemTime,
        stale_after: Duration,
    ) -> (Vec<Message>, Counts) {
        let (mut messages, mut counts) = (Vec::new(), Counts::default());
        for (id, device) in &state.devices {
            let node = Node::new(id.as_str(), device);
            let fresh = device
                .reading
                .as_ref()
                .filter(|r| r.is_fresh(now, stale_after));
            let published = self.devices.entry(id.clone()).or_insert_with(|| Published {
                node: node.clone(),
                metrics: BTreeSet::new(),
                announced: false,
                state: None,
            });
            if published.node != node {
                published.node = node;
                published.announced = false;
            }
            let mut new = Vec::new();
            if let Some(reading) = fresh {
                for metric in Metric::of(reading) {
                    if published.metrics.len() < MAX_SENSORS
                        && published.metrics.insert(metric.clone())
                    {
                        new.push(metric);
                    }
                }
            }
            let to_announce: Vec<&Metric> = if published.announced {
                new.iter().collect()
            } else {
                published.metrics.iter().collect()
            };
            for metric in to_announce {
                messages.push(Message {
                    topic: published.node.config_topic(&self.topics, metric),
                    payload: published
                        .node
                        .config(&self.topics, metric, self.expire_after),
                });
                counts.configs += 1;
            }
            published.announced = true;
            if let Some(reading) = fresh {
                let payload = discovery::state(reading, &published.metrics);
                if published.state.as_ref() != Some(&payload) {
                    messages.push(Message {
                        topic: self.topics.state(&published.node.id),
                        payload: payload.clone(),
                    });
                    published.state = Some(payload);
                    counts.states += 1;
                }
            }
        }
        if state.devices_listed {
            // What the devices gone since the last plan cleared: their topics, their segments.
            let (mut cleared, mut removed) = (BTreeSet::new(), BTreeSet::new());
            let gone: Vec<PhysicalId> = self
                .devices
                .keys()
                .filter(|id| !state.devices.contains_key(*id))
                .cloned()
                .collect();
            for id in gone {
                let Some(published) = self.devices.remove(&id) else {
                    continue;
                };
                let configs = published
                    .metrics
                    .iter()
                    .map(|metric| published.node.config_topic(&self.topics, metric));
                for topic in configs.chain([self.topics.state(&published.node.id)]) {
                    cleared.insert(topic.clone());
                    messages.push(Message {
                        topic,
                        payload: String::new(),
                    });
                }
                removed.insert(published.node.id);
                counts.removed += 1;
            }
            let listed: BTreeSet<String> =
                self.devices.values().map(|p| p.node.id.clone()).collect();
            for (device, topics) in std::mem::take(&mut self.found) {
                if listed.contains(&device) {
                    continue;
                }
                let before = messages.len();
                messages.extend(
                    topics
                        .into_iter()
                        .filter(|t| !cleared.contains(t))
                        .map(|topic| Message {
                            topic,
                            payload: String::new(),
                        }),
                );
                if messages.len() > before && removed.insert(device) {
                    counts.removed += 1;
                }
            }
            self.found_topics = 0;
        }
        (messages, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::store::Store;
    use leapcraft_ext::{Device, Reading};

    const HOUR: Duration = Duration::from_secs(3600);

    fn topics() -> Topics {
        Topics {
            discovery_prefix: "ha".into(),
            topic_prefix: "lc".into(),
        }
    }

    fn device(id: &str, name: &str) -> Device {
        serde_json::from_value(serde_json::json!({"physical_id": id, "name": name})).unwrap()
    }

    fn reading(ts: &str, co2: Option<f64>, voc: Option<f64>) -> Reading {
        let mut json = serde_json::json!({"timestamp": ts, "temperature": 20.0});
        if let Some(co2) = co2 {
            json["co2"] = co2.into();
        }
        if let Some(voc) = voc {
            json["other"] = serde_json::json!({ "voc": voc });
        }
        serde_json::from_value(json).unwrap()
    }

    fn now() -> SystemTime {
        SystemTime::from(chrono::DateTime::parse_from_rfc3339("2026-03-01T10:30:00Z").unwrap())
    }

    fn id(text: &str) -> PhysicalId {
        device(text, "").physical_id
    }

    /// The topics of a plan, each with whether it clears (`-`) or sets (`+`).
    fn topics_of(messages: &[Message]) -> Vec<String> {
        messages
            .iter()
            .map(|m| {
                let sign = if m.payload.is_empty() { '-' } else { '+' };
                format!("{sign}{}", m.topic)
            })
            .collect()
    }

    #[test]
    fn plans_follow_the_store_poll_by_poll() {
        let store = Store::new(Duration::from_secs(60), HOUR);
        let mut mirror = Mirror::new(topics(), HOUR);
        let plan = |mirror: &mut Mirror| {
            let (messages, counts) = mirror.plan(&store.read(), now(), HOUR);
            (topics_of(&messages), counts)
        };

        // Listed, not read yet: nothing to announce.
        store.set_devices(&[device("a", "A"), device("b:1", "B")]);
        assert_eq!(plan(&mut mirror).0, Vec::<String>::new());

        // First readings: every sensor, then the state, device by device.
        store.set_reading(
            &id("a"),
            &reading("2026-03-01T10:00:00Z", Some(600.0), None),
        );
        store.set_reading(
            &id("b:1"),
            &reading("2026-03-01T10:00:00Z", None, Some(3.0)),
        );
        let (topics, counts) = plan(&mut mirror);
        assert_eq!(
            topics,
            [
                "+ha/sensor/leapcraft_a/temperature/config",
                "+ha/sensor/leapcraft_a/co2/config",
                "+lc/a/state",
                "+ha/sensor/leapcraft_b-3a1/temperature/config",
                "+ha/sensor/leapcraft_b-3a1/other_voc/config",
                "+lc/b-3a1/state",
            ]
        );
        assert_eq!(
            counts,
            Counts {
                configs: 4,
                states: 2,
                removed: 0
            }
        );

        // Nothing changed: nothing published.
        assert_eq!(plan(&mut mirror).0, Vec::<String>::new());

        // A new reading of `a` without CO2: its state again, CO2 null; `b` unchanged.
        store.set_reading(&id("a"), &reading("2026-03-01T10:05:00Z", None, None));
        let (messages, _) = mirror.plan(&store.read(), now(), HOUR);
        assert_eq!(topics_of(&messages), ["+lc/a/state"]);
        let state: serde_json::Value = serde_json::from_str(&messages[0].payload).unwrap();
        assert_eq!(state["co2"], serde_json::Value::Null);
        assert_eq!(state["recorded_at"], "2026-03-01T10:05:00Z");

        // A new metric on `b`: its sensor only, then the state.
        store.set_reading(
            &id("b:1"),
            &reading("2026-03-01T10:06:00Z", Some(500.0), Some(3.0)),
        );
        assert_eq!(
            plan(&mut mirror).0,
            ["+ha/sensor/leapcraft_b-3a1/co2/config", "+lc/b-3a1/state"]
        );

        // `a` renamed: its sensors announced again under the new name, its state unchanged.
        store.set_devices(&[device("a", "A2"), device("b:1", "B")]);
        assert_eq!(
            plan(&mut mirror).0,
            [
                "+ha/sensor/leapcraft_a/temperature/config",
                "+ha/sensor/leapcraft_a/co2/config",
            ]
        );

        // `b` gone from the account: every topic of it cleared.
        store.set_devices(&[device("a", "A2")]);
        let (topics, counts) = plan(&mut mirror);
        assert_eq!(
            topics,
            [
                "-ha/sensor/leapcraft_b-3a1/temperature/config",
                "-ha/sensor/leapcraft_b-3a1/co2/config",
                "-ha/sensor/leapcraft_b-3a1/other_voc/config",
                "-lc/b-3a1/state",
            ]
        );
        assert_eq!(counts.removed, 1);

        // A reconnect: everything again.
        mirror.forget();
        assert_eq!(
            plan(&mut mirror).0,
            [
                "+ha/sensor/leapcraft_a/temperature/config",
                "+ha/sensor/leapcraft_a/co2/config",
                "+lc/a/state",
            ]
        );
    }

    #[test]
    fn a_stale_reading_is_not_passed_on() {
        let store = Store::new(Duration::from_secs(60), HOUR);
        let mut mirror = Mirror::new(topics(), HOUR);
        store.set_devices(&[device("a", "A")]);
        store.set_reading(&id("a"), &reading("2026-03-01T09:00:00Z", Some(1.0), None));
        let (messages, _) = mirror.plan(&store.read(), now(), Duration::from_secs(600));
        assert_eq!(messages, []);
    }

    #[test]
    fn a_device_gets_a_bounded_number_of_sensors() {
        let store = Store::new(Duration::from_secs(60), HOUR);
        let mut mirror = Mirror::new(topics(), HOUR);
        store.set_devices(&[device("a", "A")]);
        let mut configs = 0;
        for round in 0..4 {
            let mut json = serde_json::json!({
                "timestamp": format!("2026-03-01T10:0{round}:00Z"), "co2": 1.0, "other": {}
            });
            for i in 0..MAX_OTHER_METRICS {
                json["other"][format!("m{round}_{i}")] = 1.0.into();
            }
            let reading: Reading = serde_json::from_value(json).unwrap();
            store.set_reading(&id("a"), &reading);
            configs += mirror.plan(&store.read(), now(), HOUR).1.configs;
        }
        assert_eq!(configs, MAX_SENSORS);
    }

    #[test]
    fn what_the_broker_held_of_devices_gone_is_cleared_once_listed() {
        let store = Store::new(Duration::from_secs(60), HOUR);
        let mut mirror = Mirror::new(topics(), HOUR);
        let found = |mirror: &mut Mirror, device: &str, topic: &str| {
            assert!(mirror.found(Retained {
                device: device.into(),
                topic: topic.into(),
            }));
        };
        for (device, topic) in [
            ("a", "ha/sensor/leapcraft_a/co2/config"),
            ("a", "lc/a/state"),
            ("z-3a1", "ha/sensor/leapcraft_z-3a1/co2/config"),
            ("z-3a1", "ha/sensor/leapcraft_z-3a1/co2/config"),
            ("z-3a1", "lc/z-3a1/state"),
        ] {
            found(&mut mirror, device, topic);
        }
        // Not listed yet: nothing is known to be gone.
        assert_eq!(mirror.plan(&store.read(), now(), HOUR).0, []);

        store.set_devices(&[device("a", "A"), device("b", "B")]);
        store.set_reading(&id("b"), &reading("2026-03-01T10:00:00Z", None, None));
        let (messages, counts) = mirror.plan(&store.read(), now(), HOUR);
        assert_eq!(
            topics_of(&messages),
            [
                "+ha/sensor/leapcraft_b/temperature/config",
                "+lc/b/state",
                "-ha/sensor/leapcraft_z-3a1/co2/config",
                "-lc/z-3a1/state",
            ]
        );
        assert_eq!(counts.removed, 1);
        assert_eq!(
            mirror.plan(&store.read(), now(), HOUR).0,
            [],
            "cleared once"
        );

        // Read again on a reconnect while `b` leaves: each of its topics cleared once.
        found(&mut mirror, "b", "lc/b/state");
        found(&mut mirror, "b", "ha/sensor/leapcraft_b/other_voc/config");
        store.set_devices(&[device("a", "A")]);
        let (messages, counts) = mirror.plan(&store.read(), now(), HOUR);
        assert_eq!(
            topics_of(&messages),
            [
                "-ha/sensor/leapcraft_b/temperature/config",
                "-lc/b/state",
                "-ha/sensor/leapcraft_b/other_voc/config",
            ]
        );
        assert_eq!(counts.removed, 1);
    }

    #[test]
    fn what_the_broker_held_is_kept_up_to_a_bound() {
        let mut mirror = Mirror::new(topics(), HOUR);
        for i in 0..retained::MAX_TOPICS {
            assert!(mirror.found(Retained {
                device: "z".into(),
                topic: format!("lc/z{i}/state"),
            }));
        }
        assert!(!mirror.found(Retained {
            device: "z".into(),
            topic: "lc/one-more/state".into(),
        }));
    }

    #[test]
    fn a_failed_listing_clears_nothing() {
        let store = Store::new(Duration::from_secs(60), HOUR);
        let mut mirror = Mirror::new(topics(), HOUR);
        let state = store.read();
        assert!(!state.devices_listed);
        assert_eq!(mirror.plan(&state, now(), HOUR).1, Counts::default());
    }
}
