//! What Home Assistant reads: the discovery config of each sensor, and the state message of
//! each device, built from the poller's store entries. Pure: no I/O.
//!
//! Each Leapcraft device is one Home Assistant device; each metric of its readings is one
//! sensor, with the device class and unit Home Assistant's sensor platform accepts for it
//! (`DEVICE_CLASS_UNITS` in `homeassistant/components/sensor/const.py`); a metric this
//! version does not know is a plain numeric sensor. Keys are written in full, never
//! abbreviated. Every value from the API reaches a payload as a JSON string (never as a
//! template or a topic); ids are [`segment`]s.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::topics::{Topics, segment};
use crate::poll::store::{DeviceEntry, ReadingEntry};

/// The manufacturer every device is announced with.
const MANUFACTURER: &str = "Leapcraft";

/// Micrograms per cubic metre exactly as Home Assistant spells it: with the Greek small
/// letter mu (U+03BC), the form its `CONCENTRATION_MICROGRAMS_PER_CUBIC_METER` uses and its
/// linter enforces. The micro sign (U+00B5) is another character.
pub const MICROGRAMS_PER_CUBIC_METRE: &str = "\u{03bc}g/m\u{00b3}";

/// One metric of a device's readings: one Home Assistant sensor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Temperature, °C.
    Temperature,
    /// Relative humidity, %.
    Humidity,
    /// CO2, ppm.
    Co2,
    /// PM2.5, µg/m³.
    Pm2_5,
    /// A numeric metric this version does not know, by its key (label-safe, from the store).
    Other(String),
}

impl Metric {
    /// The metrics a reading has a value for, known ones first.
    pub fn of(reading: &ReadingEntry) -> Vec<Metric> {
        let known = [
            (reading.temperature, Self::Temperature),
            (reading.humidity, Self::Humidity),
            (reading.co2, Self::Co2),
            (reading.pm2_5, Self::Pm2_5),
        ];
        known
            .into_iter()
            .filter_map(|(value, metric)| value.map(|_| metric))
            .chain(
                reading
                    .other
                    .iter()
                    .map(|(key, _)| Self::Other(key.clone())),
            )
            .collect()
    }

    /// The metric's value in a reading (`None`: the API sent none, or null).
    fn value(&self, reading: &ReadingEntry) -> Option<f64> {
        match self {
            Self::Temperature => reading.temperature,
            Self::Humidity => reading.humidity,
            Self::Co2 => reading.co2,
            Self::Pm2_5 => reading.pm2_5,
            Self::Other(key) => reading
                .other
                .iter()
                .find_map(|(k, v)| (k == key).then_some(*v)),
        }
    }

    /// Its key in the state message, and its `object_id`: a [`segment`], under `other` for
    /// unknown metrics (`other_<segment>` as an object id), so that no key from the API can
    /// take the place of a known one or of `recorded_at`.
    fn key(&self) -> String {
        match self {
            Self::Temperature => "temperature".to_owned(),
            Self::Humidity => "humidity".to_owned(),
            Self::Co2 => "co2".to_owned(),
            Self::Pm2_5 => "pm2_5".to_owned(),
            Self::Other(key) => segment(key),
        }
    }

    /// The sensor's object id within its device.
    pub fn object_id(&self) -> String {
        match self {
            Self::Other(_) => format!("other_{}", self.key()),
            _ => self.key(),
        }
    }

    /// The sensor's name in Home Assistant (the device's name goes in front of it).
    fn name(&self) -> &str {
        match self {
            Self::Temperature => "Temperature",
            Self::Humidity => "Humidity",
            Self::Co2 => "CO2",
            Self::Pm2_5 => "PM2.5",
            Self::Other(key) => key,
        }
    }

    /// Home Assistant's device class and the unit it accepts for it.
    fn class_and_unit(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Temperature => Some(("temperature", "°C")),
            Self::Humidity => Some(("humidity", "%")),
            Self::Co2 => Some(("carbon_dioxide", "ppm")),
            Self::Pm2_5 => Some(("pm25", MICROGRAMS_PER_CUBIC_METRE)),
            Self::Other(_) => None,
        }
    }

    /// The template that takes the sensor's value from the state message. Keys are segments
    /// (`[A-Za-z0-9_-]`), so nothing from the API is ever read as template code.
    fn value_template(&self) -> String {
        match self {
            Self::Other(_) => format!("{{{{ value_json['other']['{}'] }}}}", self.key()),
            _ => format!("{{{{ value_json.{} }}}}", self.key()),
        }
    }
}

/// A device as Home Assistant's discovery knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The device's id as a [`segment`]: its topics' level and the base of its ids.
    pub id: String,
    /// The `device` object of every sensor of the device, as JSON.
    info: Value,
}

impl Node {
    /// The node of a device whose physical id is `physical_id` (raw, from the API).
    pub fn new(physical_id: &str, device: &DeviceEntry) -> Self {
        let id = segment(physical_id);
        let name = if device.name.is_empty() {
            &device.physical_id
        } else {
            &device.name
        };
        let mut info = Map::new();
        info.insert("identifiers".into(), json!([format!("leapcraft_{id}")]));
        info.insert("name".into(), json!(name));
        info.insert("manufacturer".into(), json!(MANUFACTURER));
        for (key, value) in [("model", &device.kind), ("serial_number", &device.serial)] {
            if !value.is_empty() {
                info.insert(key.into(), json!(value));
            }
        }
        Self {
            id,
            info: Value::Object(info),
        }
    }

    /// The discovery topic of one of the device's sensors.
    pub fn config_topic(&self, topics: &Topics, metric: &Metric) -> String {
        topics.sensor_config(&format!("leapcraft_{}", self.id), &metric.object_id())
    }

    /// The discovery config of one of the device's sensors. `expire_after`: how long Home
    /// Assistant keeps a value without a new state (the poller's `--stale-after`).
    pub fn config(&self, topics: &Topics, metric: &Metric, expire_after: Duration) -> String {
        let mut config = Map::new();
        config.insert("name".into(), json!(metric.name()));
        config.insert(
            "unique_id".into(),
            json!(format!("leapcraft_{}_{}", self.id, metric.object_id())),
        );
        config.insert("state_topic".into(), json!(topics.state(&self.id)));
        config.insert("value_template".into(), json!(metric.value_template()));
        if let Some((class, unit)) = metric.class_and_unit() {
            config.insert("device_class".into(), json!(class));
            config.insert("unit_of_measurement".into(), json!(unit));
        }
        config.insert("state_class".into(), json!("measurement"));
        config.insert("expire_after".into(), json!(expire_after.as_secs().max(1)));
        config.insert("availability_topic".into(), json!(topics.availability()));
        config.insert("device".into(), self.info.clone());
        config.insert(
            "origin".into(),
            json!({
                "name": "leapcraft",
                "sw_version": env!("CARGO_PKG_VERSION"),
                "support_url": env!("CARGO_PKG_REPOSITORY"),
            }),
        );
        Value::Object(config).to_string()
    }
}

/// The state message of a device: `recorded_at` (RFC 3339, UTC) and the value of each of
/// `metrics` in `reading`, `null` where the reading has none; unknown metrics under `other`.
pub fn state(reading: &ReadingEntry, metrics: &BTreeSet<Metric>) -> String {
    let recorded_at = chrono::DateTime::<chrono::Utc>::from(reading.recorded_at);
    let mut state = Map::new();
    state.insert(
        "recorded_at".into(),
        json!(recorded_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    );
    let mut other = Map::new();
    for metric in metrics {
        let value = json!(metric.value(reading));
        match metric {
            Metric::Other(_) => other.insert(metric.key(), value),
            _ => state.insert(metric.key(), value),
        };
    }
    if !other.is_empty() {
        state.insert("other".into(), Value::Object(other));
    }
    Value::Object(state).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn at(rfc3339: &str) -> SystemTime {
        SystemTime::from(chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap())
    }

    fn topics() -> Topics {
        Topics {
            discovery_prefix: "homeassistant".into(),
            topic_prefix: "leapcraft".into(),
        }
    }

    fn device(name: &str) -> DeviceEntry {
        DeviceEntry {
            physical_id: "D2:C1:AA:FF:3E:09".into(),
            name: name.into(),
            kind: "airbird".into(),
            serial: "AB-1".into(),
            topology_id: "7".into(),
            reading: None,
        }
    }

    fn reading() -> ReadingEntry {
        ReadingEntry {
            recorded_at: at("2026-03-01T10:00:00Z"),
            temperature: Some(21.5),
            humidity: None,
            co2: Some(612.0),
            pm2_5: Some(3.25),
            other: vec![("voc".into(), 12.0), ("a'b}}".into(), 1.0)],
        }
    }

    #[test]
    fn a_reading_has_a_sensor_per_metric_with_a_value() {
        assert_eq!(
            Metric::of(&reading()),
            vec![
                Metric::Temperature,
                Metric::Co2,
                Metric::Pm2_5,
                Metric::Other("voc".into()),
                Metric::Other("a'b}}".into()),
            ]
        );
    }

    #[test]
    fn configs_carry_what_home_assistant_needs() {
        let node = Node::new("D2:C1:AA:FF:3E:09", &device("Room 1"));
        assert_eq!(node.id, "D2-3aC1-3aAA-3aFF-3a3E-3a09");
        assert_eq!(
            node.config_topic(&topics(), &Metric::Pm2_5),
            "homeassistant/sensor/leapcraft_D2-3aC1-3aAA-3aFF-3a3E-3a09/pm2_5/config"
        );
        let config: Value = serde_json::from_str(&node.config(
            &topics(),
            &Metric::Pm2_5,
            Duration::from_secs(3600),
        ))
        .unwrap();
        assert_eq!(config["device_class"], "pm25");
        assert_eq!(config["unit_of_measurement"], "\u{3bc}g/m\u{b3}");
        assert_eq!(config["state_class"], "measurement");
        assert_eq!(config["expire_after"], 3600);
        assert_eq!(
            config["unique_id"],
            "leapcraft_D2-3aC1-3aAA-3aFF-3a3E-3a09_pm2_5"
        );
        assert_eq!(
            config["state_topic"],
            "leapcraft/D2-3aC1-3aAA-3aFF-3a3E-3a09/state"
        );
        assert_eq!(
            config["availability_topic"],
            "leapcraft/bridge/availability"
        );
        assert_eq!(config["device"]["name"], "Room 1");
        assert_eq!(config["device"]["model"], "airbird");
        assert_eq!(config["device"]["serial_number"], "AB-1");

        let other = Metric::Other("a'b}}".into());
        let config: Value =
            serde_json::from_str(&node.config(&topics(), &other, Duration::from_secs(60))).unwrap();
        assert_eq!(
            config["value_template"],
            "{{ value_json['other']['a-27b-7d-7d'] }}"
        );
        assert_eq!(config["name"], "a'b}}");
        assert!(config.get("device_class").is_none());
        assert!(config.get("unit_of_measurement").is_none());
    }

    #[test]
    fn a_device_without_a_name_is_named_by_its_id() {
        let node = Node::new("D2:C1:AA:FF:3E:09", &device(""));
        let config: Value =
            serde_json::from_str(&node.config(&topics(), &Metric::Co2, Duration::from_secs(1)))
                .unwrap();
        assert_eq!(config["device"]["name"], "D2:C1:AA:FF:3E:09");
    }

    #[test]
    fn state_holds_every_sensor_of_the_device_null_when_absent() {
        let mut metrics: BTreeSet<Metric> = Metric::of(&reading()).into_iter().collect();
        metrics.insert(Metric::Humidity);
        let state: Value = serde_json::from_str(&state(&reading(), &metrics)).unwrap();
        assert_eq!(
            state,
            json!({
                "recorded_at": "2026-03-01T10:00:00Z",
                "temperature": 21.5,
                "humidity": null,
                "co2": 612.0,
                "pm2_5": 3.25,
                "other": {"voc": 12.0, "a-27b-7d-7d": 1.0},
            })
        );
    }
}
