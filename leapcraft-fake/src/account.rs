//! What a live account does that a fixed dataset does not: its lists change while a client
//! pages through them ([`Churn`]), one record among many is malformed ([`Corruption`]), and a
//! page can be far larger than asked for (see [`crate::FakeServerBuilder::oversized_device_page`]).
//!
//! The device list is the dataset's devices `removed..count`, after the devices added since
//! the start (newest first, as the API lists them). Added devices are the dataset's devices
//! past its count (`count`, `count + 1`, ...): they have ids, readings and details like any
//! other, and a deleted device is unknown (`404`) from then on.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde_json::json;

use crate::dataset::Dataset;

/// How the device and notification lists change while they are read (default: they do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Churn {
    /// Nothing changes.
    #[default]
    None,
    /// After each `GET /devices` is answered, the first device of the list is deleted; after
    /// each `GET /notifications`, the newest notification: the lists shift left under a
    /// client's page boundaries.
    RemoveFirstEachPage,
    /// Before each `GET /devices` is answered, a new device appears at the front of the list;
    /// before each `GET /notifications`, a new notification: the lists shift right, as on an
    /// account in use.
    AddEachRequest,
}

impl fmt::Display for Churn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Churn::None => "none",
            Churn::RemoveFirstEachPage => "remove-first",
            Churn::AddEachRequest => "add",
        })
    }
}

impl FromStr for Churn {
    type Err = String;

    /// `none`, `remove-first` or `add`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" => Ok(Churn::None),
            "remove-first" => Ok(Churn::RemoveFirstEachPage),
            "add" => Ok(Churn::AddEachRequest),
            other => Err(format!(
                "unknown churn `{other}` (expected none, remove-first or add)"
            )),
        }
    }
}

/// How one device record is malformed, in `GET /devices` and `GET /devices/{physical_id}`.
/// Its id, readings and everything else stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Corruption {
    /// The name holds a raw `0xFF` byte: the body is not valid UTF-8.
    InvalidUtf8,
    /// The name holds the escape `\ud800`, a lone surrogate: valid JSON text that no Unicode
    /// string can hold.
    LoneSurrogate,
    /// Every field has the wrong type (`"physical_id": 4711`, `"name": [...]`, ...): the
    /// record cannot be read as a device at all.
    Unreadable,
}

impl Corruption {
    /// The record of `device` (a device of `dataset`), malformed this way.
    pub(crate) fn record(self, dataset: &Dataset, device: usize) -> Vec<u8> {
        let mut d = dataset.device(device);
        let marker = "\u{1}corrupt\u{1}";
        let (name, bad): (&str, &[u8]) = match self {
            Corruption::InvalidUtf8 => (marker, b"Lab \xFF B"),
            Corruption::LoneSurrogate => (marker, br"Lab \ud800 B"),
            Corruption::Unreadable => {
                let record = json!({
                    "physical_id": 4711,
                    "name": [d.name],
                    "serial": {"value": d.serial},
                    "topology_id": "one",
                    "meta": 1,
                    "type": false,
                });
                return record.to_string().into_bytes();
            }
        };
        d.name = Some(name.to_string());
        let text = serde_json::to_string(&d).unwrap_or_default();
        let escaped = serde_json::to_string(marker).unwrap_or_default();
        let at = text.find(&escaped).unwrap_or(0);
        let mut out = Vec::with_capacity(text.len());
        out.extend_from_slice(&text.as_bytes()[..at]);
        out.push(b'"');
        out.extend_from_slice(bad);
        out.push(b'"');
        out.extend_from_slice(&text.as_bytes()[at + escaped.len()..]);
        out
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Corruption::InvalidUtf8 => "utf8",
            Corruption::LoneSurrogate => "surrogate",
            Corruption::Unreadable => "unreadable",
        })
    }
}

impl FromStr for Corruption {
    type Err = String;

    /// `utf8`, `surrogate` or `unreadable`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "utf8" => Ok(Corruption::InvalidUtf8),
            "surrogate" => Ok(Corruption::LoneSurrogate),
            "unreadable" => Ok(Corruption::Unreadable),
            other => Err(format!(
                "unknown corruption `{other}` (expected utf8, surrogate or unreadable)"
            )),
        }
    }
}

/// The devices an account holds now: see the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeviceList {
    /// The dataset's devices `0..removed` were deleted.
    removed: usize,
    /// Devices added since the start, oldest first (the list shows them newest first).
    added: Vec<usize>,
    /// How many devices were ever added.
    ever_added: usize,
    /// Malformed records, by device.
    pub(crate) corrupt: HashMap<usize, Corruption>,
}

impl DeviceList {
    /// Number of devices listed.
    pub(crate) fn len(&self, dataset: &Dataset) -> usize {
        self.added.len() + dataset.device_count().saturating_sub(self.removed)
    }

    /// The device at position `k` of the list (`k < len`).
    pub(crate) fn at(&self, dataset: &Dataset, k: usize) -> usize {
        match self.added.len().checked_sub(k + 1) {
            Some(newest_first) => self.added[newest_first],
            None => self.removed + (k - self.added.len()).min(dataset.device_count()),
        }
    }

    /// Whether device `i` is on the account.
    pub(crate) fn holds(&self, dataset: &Dataset, i: usize) -> bool {
        if i < dataset.device_count() {
            i >= self.removed
        } else {
            self.added.contains(&i)
        }
    }

    /// The device with this id, if it is on the account.
    pub(crate) fn find(&self, dataset: &Dataset, id: &str) -> Option<usize> {
        dataset
            .find_below(id, dataset.device_count() + self.ever_added)
            .filter(|&i| self.holds(dataset, i))
    }

    /// Adds a device at the front.
    pub(crate) fn add(&mut self, dataset: &Dataset) {
        self.added.push(dataset.device_count() + self.ever_added);
        self.ever_added += 1;
    }

    /// Deletes the first device of the list, if there is one.
    pub(crate) fn remove_first(&mut self, dataset: &Dataset) {
        if self.added.pop().is_none() && self.removed < dataset.device_count() {
            self.removed += 1;
        }
    }

    /// Positions `range` of the list, as devices.
    pub(crate) fn slice(&self, dataset: &Dataset, range: std::ops::Range<usize>) -> Vec<usize> {
        range.map(|k| self.at(dataset, k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetConfig;

    #[test]
    fn added_devices_come_first_and_removed_ones_are_gone() {
        let d = Dataset::new(DatasetConfig {
            devices: 3,
            ..DatasetConfig::default()
        });
        let mut list = DeviceList::default();
        assert_eq!(list.slice(&d, 0..list.len(&d)), [0, 1, 2]);
        list.add(&d);
        list.add(&d);
        assert_eq!(list.slice(&d, 0..list.len(&d)), [4, 3, 0, 1, 2]);
        let four = d.physical_id(4);
        assert_eq!(list.find(&d, &four), Some(4));
        list.remove_first(&d);
        assert_eq!(list.find(&d, &four), None);
        list.remove_first(&d);
        list.remove_first(&d);
        assert_eq!(list.slice(&d, 0..list.len(&d)), [1, 2]);
        assert_eq!(list.find(&d, &d.physical_id(0)), None);
        for c in [
            Corruption::InvalidUtf8,
            Corruption::LoneSurrogate,
            Corruption::Unreadable,
        ] {
            assert_eq!(c.to_string().parse::<Corruption>(), Ok(c));
        }
        for c in [
            Churn::None,
            Churn::RemoveFirstEachPage,
            Churn::AddEachRequest,
        ] {
            assert_eq!(c.to_string().parse::<Churn>(), Ok(c));
        }
    }

    #[test]
    fn corrupt_records_are_malformed_only_where_asked() {
        let d = Dataset::new(DatasetConfig::default());
        let utf8 = Corruption::InvalidUtf8.record(&d, 3);
        assert!(std::str::from_utf8(&utf8).is_err());
        assert!(utf8.windows(2).any(|w| w == b"\"L"));
        let lone = Corruption::LoneSurrogate.record(&d, 3);
        let text = std::str::from_utf8(&lone).unwrap();
        assert!(text.contains(r#""name":"Lab \ud800 B""#), "{text}");
        assert!(text.contains(&d.physical_id(3)));
        assert!(serde_json::from_str::<serde_json::Value>(text).is_err());
        let unreadable = Corruption::Unreadable.record(&d, 3);
        let v: serde_json::Value = serde_json::from_slice(&unreadable).unwrap();
        assert_eq!(v["physical_id"], 4711);
    }
}
