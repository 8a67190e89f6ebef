//! The bridge's MQTT topics, and topic segments made from server data.
//!
//! A device id or a metric key from the API becomes a topic level, a Home Assistant
//! `node_id` / `object_id` and a `unique_id`: [`segment`] writes it with nothing a broker or
//! Home Assistant would read as structure (`+`, `#`, `/`, `$`, control characters...), and
//! keeps distinct texts distinct.

use std::fmt::Write;

/// The longest prefix accepted, in bytes.
const MAX_PREFIX_BYTES: usize = 256;

/// `text` as a topic level and Home Assistant id: ASCII letters, digits and `_` are kept,
/// every other byte of its UTF-8 is written as `-` and two lowercase hex digits (`:` becomes
/// `-3a`). The result matches `[A-Za-z0-9_-]+`, as Home Assistant asks of ids, and two texts
/// never give the same segment (a `-` always starts an escape). An empty text gives `-`.
pub fn segment(text: &str) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "-{byte:02x}");
        }
    }
    out
}

/// A topic prefix given on the command line (`--topic-prefix`, `--discovery-prefix`), as a
/// value parser: one or more levels separated by `/`, none empty, no wildcard (`+`, `#`), no
/// control character, not starting with `$` (the broker's own topics).
pub fn prefix(text: &str) -> Result<String, String> {
    let fail = |why: &str| Err(format!("{why}: a prefix is levels such as home/leapcraft"));
    if text.is_empty() || text.len() > MAX_PREFIX_BYTES {
        return fail(&format!("empty or longer than {MAX_PREFIX_BYTES} bytes"));
    }
    if text.starts_with('$') {
        return fail("a topic starting with $ is the broker's own");
    }
    if text.split('/').any(str::is_empty) {
        return fail("an empty level (a leading, trailing or double /)");
    }
    if text.chars().any(|c| c == '+' || c == '#' || c.is_control()) {
        return fail("a wildcard (+ or #) or a control character");
    }
    Ok(text.to_owned())
}

/// The topics the bridge publishes to and listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Home Assistant's discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// The prefix of the bridge's own topics (`leapcraft`).
    pub topic_prefix: String,
}

impl Topics {
    /// The bridge's availability: `online` while it is connected, `offline` otherwise.
    pub fn availability(&self) -> String {
        format!("{}/bridge/availability", self.topic_prefix)
    }

    /// Where Home Assistant announces itself (`online` when it starts).
    pub fn home_assistant_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    /// A device's state: one JSON object with its latest reading. `device` is a [`segment`].
    pub fn state(&self, device: &str) -> String {
        format!("{}/{device}/state", self.topic_prefix)
    }

    /// The discovery config of one sensor of a device. `node` and `object` are segments.
    pub fn sensor_config(&self, node: &str, object: &str) -> String {
        format!("{}/sensor/{node}/{object}/config", self.discovery_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_ids_plain_and_escape_the_rest() {
        for (text, expected) in [
            ("0123245cf74c60d7ee", "0123245cf74c60d7ee"),
            ("pm2_5", "pm2_5"),
            ("D2:C1:AA:FF:3E:09", "D2-3aC1-3aAA-3aFF-3a3E-3a09"),
            ("a/b+c#d", "a-2fb-2bc-23d"),
            ("$SYS", "-24SYS"),
            ("line\nbreak", "line-0abreak"),
            ("-", "-2d"),
            ("é", "-c3-a9"),
            ("", "-"),
        ] {
            assert_eq!(segment(text), expected, "{text:?}");
        }
    }

    #[test]
    fn segments_are_distinct_for_distinct_texts() {
        let texts = ["a-2f", "a/", "a-", "a_", "a\r", "a\n", "A", "a"];
        let segments: std::collections::BTreeSet<_> = texts.iter().map(|t| segment(t)).collect();
        assert_eq!(segments.len(), texts.len());
        for s in &segments {
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{s}"
            );
        }
    }

    #[test]
    fn prefixes_are_checked() {
        for good in ["leapcraft", "homeassistant", "home/leapcraft", "a-b_c"] {
            assert_eq!(prefix(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/+",
            "#",
            "$SYS",
            "a\nb",
            &"x".repeat(300),
        ] {
            assert!(prefix(bad).is_err(), "{bad:?}");
        }
    }
}
