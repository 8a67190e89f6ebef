//! What the broker held of this bridge when it connected: the retained discovery configs and
//! states of its devices. The bridge reads them once per connection, so that a device
//! removed from the account while the bridge was down is cleared too; Home Assistant would
//! otherwise keep its sensors for ever.
//!
//! The session subscribes to the bridge's topics, then publishes a [`marker`] to itself: a
//! broker sends one connection's messages in order, so the marker comes after the retained
//! messages the subscription brought. The session then unsubscribes, and the bridge does not
//! receive its own messages back. Whether a message is the bridge's ([`of_bridge`]) is pure.

use super::topics::Topics;

/// The most retained messages of the bridge read on one connection, and kept until the
/// devices are listed: a broker that holds more cannot make the bridge's memory grow.
pub const MAX_TOPICS: usize = 1 << 17;

/// A retained message of one of the bridge's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// The device, as a topic [`segment`](super::topics::segment).
    pub device: String,
    /// The message's topic.
    pub topic: String,
}

/// The filters that bring the bridge's retained messages: every sensor config under the
/// discovery prefix, every device state under the bridge's prefix.
pub fn filters(topics: &Topics) -> [String; 2] {
    [topics.sensor_config("+", "+"), topics.state("+")]
}

/// The topic the bridge publishes its marker on, and listens to while it reads.
pub fn marker_topic(topics: &Topics) -> String {
    format!("{}/bridge/retained-read", topics.topic_prefix)
}

/// The marker of connection `connects` of this process: what the bridge publishes after
/// subscribing, and what it waits for (another bridge's marker is not it).
pub fn marker(connects: u64) -> String {
    format!("{}:{connects}", std::process::id())
}

/// The device of a retained message, if the message is this bridge's: a device's state on
/// `<topic-prefix>/<device>/state`, or a sensor's config on
/// `<discovery-prefix>/sensor/leapcraft_<device>/<sensor>/config` whose availability is this
/// bridge's (another bridge sharing the discovery prefix keeps its own). An empty payload
/// holds nothing to clear.
pub fn of_bridge(topics: &Topics, topic: &str, payload: &[u8]) -> Option<Retained> {
    if payload.is_empty() {
        return None;
    }
    let device = if let Some(rest) = strip(topic, &topics.topic_prefix) {
        rest.strip_suffix("/state").filter(|d| is_segment(d))?
    } else {
        let rest = strip(topic, &topics.discovery_prefix)?.strip_prefix("sensor/leapcraft_")?;
        let (device, sensor) = rest.strip_suffix("/config")?.split_once('/')?;
        if !is_segment(device) || !is_segment(sensor) {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Config {
            availability_topic: String,
        }
        let config: Config = serde_json::from_slice(payload).ok()?;
        if config.availability_topic != topics.availability() {
            return None;
        }
        device
    };
    Some(Retained {
        device: device.to_owned(),
        topic: topic.to_owned(),
    })
}

/// `topic` after `prefix` and a `/`.
fn strip<'a>(topic: &'a str, prefix: &str) -> Option<&'a str> {
    topic.strip_prefix(prefix)?.strip_prefix('/')
}

/// Whether `level` is one topic level as [`segment`](super::topics::segment) writes them.
fn is_segment(level: &str) -> bool {
    !level.is_empty()
        && level
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics {
            discovery_prefix: "ha".into(),
            topic_prefix: "home/lc".into(),
        }
    }

    fn config(availability: &str) -> String {
        serde_json::json!({ "name": "CO2", "availability_topic": availability }).to_string()
    }

    #[test]
    fn only_the_bridges_own_messages_are_its() {
        let ours = config("home/lc/bridge/availability");
        let theirs = config("other/bridge/availability");
        let device = |d: &str| Some(d.to_owned());
        for (topic, payload, expected) in [
            ("home/lc/a-3a1/state", "{}", device("a-3a1")),
            (
                "ha/sensor/leapcraft_a-3a1/co2/config",
                &ours,
                device("a-3a1"),
            ),
            ("ha/sensor/leapcraft_b/other_voc/config", &ours, device("b")),
            // Another bridge's config, or not a config of ours at all.
            ("ha/sensor/leapcraft_a/co2/config", &theirs, None),
            ("ha/sensor/leapcraft_a/co2/config", "not json", None),
            ("ha/sensor/zigbee_a/co2/config", &ours, None),
            ("ha/binary_sensor/leapcraft_a/co2/config", &ours, None),
            ("ha/sensor/leapcraft_/co2/config", &ours, None),
            ("ha/sensor/leapcraft_a/co2/x/config", &ours, None),
            // Already cleared.
            ("home/lc/a/state", "", None),
            ("ha/sensor/leapcraft_a/co2/config", "", None),
            // The bridge's own topics, and others under its prefix.
            ("home/lc/bridge/availability", "online", None),
            ("home/lc/bridge/retained-read", "1:1", None),
            ("home/lc/a/b/state", "{}", None),
            ("home/lcx/a/state", "{}", None),
            ("home/lc/a+/state", "{}", None),
        ] {
            let got = of_bridge(&topics(), topic, payload.as_bytes());
            assert_eq!(got.as_ref().map(|r| r.device.clone()), expected, "{topic}");
            if let Some(r) = got {
                assert_eq!(r.topic, topic);
            }
        }
    }

    #[test]
    fn the_filters_match_what_the_bridge_publishes() {
        assert_eq!(
            filters(&topics()),
            ["ha/sensor/+/+/config", "home/lc/+/state"]
        );
        assert_ne!(marker(1), marker(2));
    }
}
