//! The seeded, deterministic dataset the fake serves: devices, topologies, notifications,
//! things and telemetry.
//!
//! Nothing big is stored: every device, topology and reading is computed on demand from
//! `(seed, index)` hashes, so a dataset of 100,000 devices costs nothing until it is listed,
//! and a page of 1,000 devices costs only those 1,000. Physical ids embed a seeded bijection of
//! the device index, so looking a device up by id is arithmetic, not a map.
//!
//! The shapes follow the spec and the docs' samples, quirks included: some names are `null`,
//! `meta` is free-form, ids are MAC addresses (`D2:C1:AA:FF:3E:09`), hex gateway-style ids
//! (`0123555235565de1ee`, upper or lower case) or `testsim00004`; some topology details carry
//! `created_at` as `2020-12-16 13:51:58`; some device kinds send extra telemetry keys
//! (`voc`, `noise`, `p0`...) and `null` for metrics they do not measure.
//!
//! Whatever the seed, the first devices carry the ids the docs use ([`DOCUMENTED_IDS`]), so
//! that every example of the README, the rustdoc and the API docs works against the fake (and
//! against `leapcraft --demo`).

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::rng::{Permutation, SplitMix, hash};
use crate::timefmt::{from_unix, millis_z, seconds_z, space_separated};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x1EAF_C0DE;

/// The time of the latest readings at tick 0: `2026-03-29T15:24:05Z`, as in the docs' sample.
pub const LATEST_EPOCH_SECS: i64 = 1_774_797_845;

/// Seconds between two latest readings of a device (one tick).
pub const READING_INTERVAL_SECS: i64 = 60;

/// The most periods one `type=averages` request may span; more is a 400.
pub const MAX_AVERAGE_PERIODS: usize = 5_000;

/// The ids the docs use, and the devices that carry them: device 0 is the gateway
/// `0123245cf74c60d7ee` (topology 1), device 1 is `D2:C1:AA:FF:3E:09`, and so on. With the
/// default 8 devices per gateway, device 8 is the gateway `01231AC7BFB729F0EE` of topology 2.
/// A dataset with fewer devices has the first ones only.
pub const DOCUMENTED_IDS: [(usize, &str); 5] = [
    (0, "0123245cf74c60d7ee"),
    (1, "D2:C1:AA:FF:3E:09"),
    (2, "0123555235565de1ee"),
    (4, "testsim00004"),
    (8, "01231AC7BFB729F0EE"),
];

fn documented_id(i: usize) -> Option<&'static str> {
    DOCUMENTED_IDS
        .iter()
        .find(|(index, _)| *index == i)
        .map(|(_, id)| *id)
}

const TAG_ID: u64 = 1;
const TAG_DEVICE: u64 = 2;
const TAG_TOPOLOGY: u64 = 3;
const TAG_LATEST: u64 = 4;
const TAG_BASELINE: u64 = 5;
const TAG_AVERAGE: u64 = 6;
const TAG_NOTIFICATION: u64 = 7;
const TAG_THING: u64 = 8;

/// What a dataset is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetConfig {
    /// The seed: the same seed gives the same dataset.
    pub seed: u64,
    /// Number of devices.
    pub devices: usize,
    /// Devices per topology (the first of each block is the gateway). At least 1.
    pub devices_per_gateway: usize,
    /// Number of things.
    pub things: usize,
    /// Number of notifications present at start.
    pub notifications: usize,
    /// When the latest readings were taken at tick 0, in Unix seconds (each device's up to
    /// four minutes earlier). Default [`LATEST_EPOCH_SECS`], as in the docs' sample.
    pub latest_epoch: i64,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            seed: DEFAULT_SEED,
            devices: 25,
            devices_per_gateway: 8,
            things: 14,
            notifications: 75,
            latest_epoch: LATEST_EPOCH_SECS,
        }
    }
}

/// A device, as listed by `GET /devices` and returned by `GET /devices/{physical_id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Display name; `None` for some devices, as in the real API.
    pub name: Option<String>,
    /// Physical id: a MAC address, a hex gateway-style id or a `testsim` id.
    pub physical_id: String,
    /// Serial number (`LC-2026-X88`); `None` for a few devices.
    pub serial: Option<String>,
    /// Numeric id of the device's topology.
    pub topology_id: Option<i64>,
    /// Free-form metadata.
    pub meta: Value,
    /// Device kind (`airbird`, `ambinode`, `ultralink_modbus`, `bacnet`, ...); `None` for a few.
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
}

/// A device of a topology, as listed by `GET /topologies`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopologyDevice {
    /// Physical id.
    pub physical_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Device kind.
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
    /// Free-form metadata (the same as the device's `meta`).
    pub metadata: Value,
}

/// A topology, as listed by `GET /topologies`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    /// Gateway id (the physical id of the gateway device).
    pub gateway_id: String,
    /// Display name; often `None`.
    pub name: Option<String>,
    /// Network id.
    pub network_id: Option<i64>,
    /// Creation time, `2022-01-29T05:59:57.000Z`.
    pub created_at: String,
    /// The devices reporting through the gateway, the gateway first.
    pub devices: Vec<TopologyDevice>,
}

/// A device of a topology, as returned by `GET /topologies/{topology_id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopologyDetailsDevice {
    /// Physical id.
    pub physical_id: String,
    /// Numeric topology id.
    pub topology_id: Option<i64>,
    /// Display name.
    pub name: Option<String>,
}

/// One topology, as returned by `GET /topologies/{topology_id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopologyDetails {
    /// Gateway id.
    pub gateway_id: String,
    /// Creation time: `2020-12-16 13:51:58` for some topologies, `...000Z` for others.
    pub created_at: String,
    /// Display name; often `None`.
    pub name: Option<String>,
    /// The devices.
    pub devices: Vec<TopologyDetailsDevice>,
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// Id; ids grow with time.
    pub id: i64,
    /// The device it is about.
    pub physical_id: Option<String>,
    /// Category (`technicalAlert`, `thresholdAlert`, `maintenance`).
    pub category: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// When it was raised, `2021-05-28T17:15:06Z`.
    pub created_at: String,
}

/// One parameter of a thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThingParameter {
    /// Name (`Supply Pressure`).
    pub name: Option<String>,
    /// Payload key (`p0`, `p1`, ...).
    pub payload: Option<String>,
}

/// A thing and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thing {
    /// Name (`bacnet`).
    pub name: Option<String>,
    /// Description; `None` for some.
    pub description: Option<String>,
    /// Parameters.
    pub parameters: Vec<ThingParameter>,
}

/// One telemetry reading, raw (`type=latest`) or averaged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// The device.
    pub physical_id: String,
    /// When the reading was taken (start of the period for averages), `2026-03-29T15:24:05Z`.
    pub timestamp: String,
    /// The metrics: `temperature`, `humidity`, `co2`, `pm2_5`, `meta` and kind-specific keys.
    pub data: Map<String, Value>,
    /// When the reading was stored.
    pub created_at: String,
}

/// Resolution of telemetry averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// One reading per UTC day.
    Daily,
    /// One reading per ISO week (Monday to Sunday, UTC).
    Weekly,
    /// One reading per calendar month (UTC).
    Monthly,
}

impl Resolution {
    /// Parses `daily`, `weekly` or `monthly`.
    pub fn parse(s: &str) -> Option<Resolution> {
        match s {
            "daily" => Some(Resolution::Daily),
            "weekly" => Some(Resolution::Weekly),
            "monthly" => Some(Resolution::Monthly),
            _ => None,
        }
    }

    /// The start of the period containing `t`.
    pub fn period_start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let d = t.date_naive();
        let start = match self {
            Resolution::Daily => d,
            Resolution::Weekly => {
                d - ChronoDuration::days(i64::from(d.weekday().num_days_from_monday()))
            }
            Resolution::Monthly => NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d),
        };
        start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }

    /// The start of the period after the one starting at `start`.
    pub fn next_start(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Resolution::Daily => start + ChronoDuration::days(1),
            Resolution::Weekly => start + ChronoDuration::days(7),
            Resolution::Monthly => start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(start),
        }
    }

    fn code(self) -> u64 {
        match self {
            Resolution::Daily => 1,
            Resolution::Weekly => 2,
            Resolution::Monthly => 3,
        }
    }
}

const KINDS: &[(Option<&str>, u64)] = &[
    (Some("airbird"), 30),
    (Some("ambinode"), 28),
    (Some("ultralink_modbus"), 15),
    (Some("bacnet"), 15),
    (Some("ultralink_wmbus"), 9),
    (None, 3),
];
const ROOMS: &[&str] = &[
    "Conference Room",
    "Meeting Room",
    "Open Office",
    "Kitchen",
    "Lobby",
    "Lab",
    "Server Room",
    "Classroom",
    "Auditorium",
    "Canteen",
    "Reception",
    "Library",
];
const PLACES: &[&str] = &[
    "Test Office",
    "HQ",
    "Warehouse",
    "Floor 2",
    "East Wing",
    "Basement",
];
const PROBES: &[&str] = &["COZIR", "SCD30", "NDIR", "SPS30"];
const BUILDINGS: &[&str] = &[
    "Copenhagen HQ",
    "Aarhus Office",
    "Odense Plant",
    "Malmo Hub",
    "Berlin Site",
];
const NOTES: &[(&str, &str)] = &[
    ("technicalAlert", "High CO2 levels detected"),
    ("technicalAlert", "Sensor offline for more than 1 hour"),
    ("technicalAlert", "Battery level below 15%"),
    ("technicalAlert", "Gateway connection lost"),
    ("thresholdAlert", "Temperature above 26 °C"),
    ("thresholdAlert", "Humidity above 70 %"),
    ("maintenance", "Filter replacement due"),
];
const THINGS: &[(&str, Option<&str>, &[&str])] = &[
    (
        "bacnet",
        None,
        &[
            "Temperature",
            "Outdoor Temp",
            "Intake Temperature",
            "Supply Temperature",
            "Exhaust Temperature",
            "Extract Temperature",
            "Supply Pressure",
        ],
    ),
    (
        "ultralink_modbus",
        Some("Modbus energy meter"),
        &[
            "Flow",
            "Return Temperature",
            "Supply Temperature",
            "Power",
            "Energy",
        ],
    ),
    (
        "airbird",
        Some("Airbird indoor climate sensor"),
        &["CO2", "Temperature", "Humidity", "Light"],
    ),
    (
        "ambinode",
        None,
        &["Temperature", "Humidity", "CO2", "PM2.5", "VOC", "Noise"],
    ),
    (
        "ultralink_wmbus",
        Some("Wireless M-Bus heat meter"),
        &["Energy", "Volume", "Flow Temperature", "Return Temperature"],
    ),
    (
        "ahu",
        Some("Air handling unit"),
        &[
            "Supply Fan Speed",
            "Extract Fan Speed",
            "Heat Recovery",
            "Filter Pressure",
        ],
    ),
    (
        "chiller",
        None,
        &[
            "Leaving Water Temp",
            "Entering Water Temp",
            "Compressor Load",
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdStyle {
    Mac,
    Hex,
    Testsim,
}

/// The dataset: a configuration plus the pure functions that derive every record from it.
#[derive(Debug, Clone)]
pub struct Dataset {
    cfg: DatasetConfig,
    perm: Permutation,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Dataset {
    /// A dataset for this configuration. `devices_per_gateway` of 0 is taken as 1.
    pub fn new(mut cfg: DatasetConfig) -> Dataset {
        cfg.devices_per_gateway = cfg.devices_per_gateway.max(1);
        cfg.devices = cfg.devices.min(u32::MAX as usize);
        Dataset {
            perm: Permutation::new(cfg.seed),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DatasetConfig {
        &self.cfg
    }

    /// Number of devices.
    pub fn device_count(&self) -> usize {
        self.cfg.devices
    }

    /// Number of topologies.
    pub fn topology_count(&self) -> usize {
        self.cfg.devices.div_ceil(self.cfg.devices_per_gateway)
    }

    fn id_style(&self, i: usize) -> IdStyle {
        if i.is_multiple_of(self.cfg.devices_per_gateway) {
            return IdStyle::Hex;
        }
        match hash(self.cfg.seed, TAG_ID, i as u64, 1) % 10 {
            0..=5 => IdStyle::Mac,
            6..=8 => IdStyle::Hex,
            _ => IdStyle::Testsim,
        }
    }

    /// The physical id of device `i` (`i < device_count()`).
    pub fn physical_id(&self, i: usize) -> String {
        if let Some(id) = documented_id(i) {
            return id.to_string();
        }
        let p = self.perm.apply(i as u32);
        let h = hash(self.cfg.seed, TAG_ID, i as u64, 2);
        match self.id_style(i) {
            IdStyle::Mac => {
                let first = [0xD2u8, 0xC4, 0x3A, 0x70][(h % 4) as usize];
                let b = p.to_be_bytes();
                format!(
                    "{first:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                    (h >> 8) as u8,
                    b[0],
                    b[1],
                    b[2],
                    b[3]
                )
            }
            IdStyle::Hex => {
                if (h >> 40) & 1 == 0 {
                    format!("0123{:06x}{p:08x}", (h >> 8) & 0xFF_FFFF)
                } else {
                    format!("0123{:06X}{p:08X}", (h >> 8) & 0xFF_FFFF)
                }
            }
            IdStyle::Testsim => format!("testsim{i:05}"),
        }
    }

    /// The index of the device with this physical id (ASCII case-insensitive), if any.
    pub fn find_device(&self, id: &str) -> Option<usize> {
        self.find_below(id, self.cfg.devices)
    }

    /// The index below `bound` of the device with this physical id: devices past the
    /// dataset's count are the ones a live account adds ([`crate::server::Churn`]).
    pub(crate) fn find_below(&self, id: &str, bound: usize) -> Option<usize> {
        if let Some((i, _)) = DOCUMENTED_IDS
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(id))
        {
            return (*i < bound).then_some(*i);
        }
        let candidate = if let Some(num) = id.strip_prefix("testsim") {
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            num.parse::<usize>().ok()?
        } else if id.len() == 17 && id.as_bytes().iter().skip(2).step_by(3).all(|&b| b == b':') {
            let mut bytes = [0u8; 6];
            for (k, part) in id.split(':').enumerate() {
                bytes[k] = u8::from_str_radix(part, 16).ok()?;
            }
            self.perm
                .invert(u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]))
                as usize
        } else if id.len() == 18 && id.is_ascii() && id.starts_with("0123") {
            self.perm.invert(u32::from_str_radix(&id[10..], 16).ok()?) as usize
        } else {
            return None;
        };
        (candidate < bound && self.physical_id(candidate).eq_ignore_ascii_case(id))
            .then_some(candidate)
    }

    fn kind(&self, i: usize) -> Option<&'static str> {
        let mut r = SplitMix::for_entity(self.cfg.seed, TAG_DEVICE, i as u64, 0);
        if i.is_multiple_of(self.cfg.devices_per_gateway) {
            return Some(*r.pick(&["ambinode", "airbird"]));
        }
        let total: u64 = KINDS.iter().map(|k| k.1).sum();
        let mut x = r.below(total);
        for (kind, w) in KINDS {
            if x < *w {
                return *kind;
            }
            x -= w;
        }
        None
    }

    /// Device `i` (`i < device_count()`).
    pub fn device(&self, i: usize) -> Device {
        let kind = self.kind(i);
        let mut r = SplitMix::for_entity(self.cfg.seed, TAG_DEVICE, i as u64, 1);
        let label = match kind {
            Some("airbird") => "Airbird",
            Some("ambinode") => "Ambinode",
            Some("ultralink_modbus") => "Modbus Meter",
            Some("bacnet") => "BACnet AHU",
            Some("ultralink_wmbus") => "Heat Meter",
            _ => "Sensor",
        };
        let name = match r.below(20) {
            0..=2 => None,
            3..=10 => Some(format!(
                "{} {}",
                r.pick(ROOMS),
                (b'A' + r.below(8) as u8) as char
            )),
            11..=16 => Some(format!("{label} Test {}", 1 + r.below(40))),
            _ => Some(format!("{label} {} - {}", r.pick(PLACES), r.pick(PROBES))),
        };
        let serial = (r.below(20) != 0).then(|| {
            format!(
                "LC-{}-{}{:02}",
                2019 + r.below(8),
                (b'A' + r.below(26) as u8) as char,
                10 + r.below(90)
            )
        });
        let meta = match r.below(6) {
            0..=2 => Value::Object(Map::new()),
            3 => {
                json!({"floor": r.below(12), "room": format!("{}{}", (b'A' + r.below(4) as u8) as char, 10 + r.below(40))})
            }
            4 => {
                json!({"firmware": format!("2.{}.{}", r.below(6), r.below(10)), "battery": 40 + r.below(61)})
            }
            _ => json!({
                "installed": format!("2021-{:02}-{:02}", 1 + r.below(12), 1 + r.below(28)),
                "tags": ["east-wing", "hvac"],
                "location": {"building": r.pick(BUILDINGS), "floor": r.below(6)},
            }),
        };
        Device {
            name,
            physical_id: self.physical_id(i),
            serial,
            topology_id: Some((i / self.cfg.devices_per_gateway) as i64 + 1),
            meta,
            kind,
        }
    }

    /// Devices `range` (clamped to the dataset), generated lazily.
    pub fn devices(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = Device> + '_ {
        let end = range.end.min(self.cfg.devices);
        (range.start.min(end)..end).map(|i| self.device(i))
    }

    fn topology_range(&self, k: usize) -> std::ops::Range<usize> {
        let start = k * self.cfg.devices_per_gateway;
        start..(start + self.cfg.devices_per_gateway).min(self.cfg.devices)
    }

    fn topology_meta(&self, k: usize) -> (Option<String>, i64, DateTime<Utc>, bool) {
        let mut r = SplitMix::for_entity(self.cfg.seed, TAG_TOPOLOGY, k as u64, 0);
        let name = (r.below(2) == 0).then(|| format!("{} gateway {}", r.pick(BUILDINGS), k + 1));
        let network_id = (k / 4) as i64 + 1;
        // 2020-06-01T00:00:00Z plus up to ~2 years.
        let created = from_unix(1_590_969_600 + r.below(2 * 365 * 86_400) as i64);
        let quirky = r.below(2) == 0;
        (name, network_id, created, quirky)
    }

    /// Topology `k` as listed by `GET /topologies` (`k < topology_count()`).
    pub fn topology(&self, k: usize) -> Topology {
        let (name, network_id, created, _) = self.topology_meta(k);
        let devices: Vec<TopologyDevice> = self
            .devices(self.topology_range(k))
            .map(|d| TopologyDevice {
                physical_id: d.physical_id,
                name: d.name,
                kind: d.kind,
                metadata: d.meta,
            })
            .collect();
        Topology {
            gateway_id: devices
                .first()
                .map(|d| d.physical_id.clone())
                .unwrap_or_default(),
            name,
            network_id: Some(network_id),
            created_at: millis_z(created),
            devices,
        }
    }

    /// Topology `k` as returned by `GET /topologies/{topology_id}`.
    pub fn topology_details(&self, k: usize) -> TopologyDetails {
        let (name, _, created, quirky) = self.topology_meta(k);
        let devices: Vec<TopologyDetailsDevice> = self
            .devices(self.topology_range(k))
            .map(|d| TopologyDetailsDevice {
                physical_id: d.physical_id,
                topology_id: d.topology_id,
                name: d.name,
            })
            .collect();
        TopologyDetails {
            gateway_id: devices
                .first()
                .map(|d| d.physical_id.clone())
                .unwrap_or_default(),
            created_at: if quirky {
                space_separated(created)
            } else {
                millis_z(created)
            },
            name,
            devices,
        }
    }

    /// The topology with this gateway id (case-insensitive) or numeric topology id.
    pub fn find_topology(&self, id: &str) -> Option<usize> {
        if let Some(i) = self.find_device(id)
            && i.is_multiple_of(self.cfg.devices_per_gateway)
        {
            return Some(i / self.cfg.devices_per_gateway);
        }
        match id.parse::<usize>() {
            Ok(n) if n >= 1 && n <= self.topology_count() && !id.starts_with('0') => Some(n - 1),
            _ => None,
        }
    }

    /// The first `n` things (all of them for `None`).
    pub fn things(&self, n: Option<usize>) -> Vec<Thing> {
        let count = n.map_or(self.cfg.things, |n| n.min(self.cfg.things));
        (0..count)
            .map(|i| {
                let (name, description, params) = THINGS[i % THINGS.len()];
                let round = i / THINGS.len();
                let mut r = SplitMix::for_entity(self.cfg.seed, TAG_THING, i as u64, 0);
                Thing {
                    name: Some(if round == 0 {
                        name.to_string()
                    } else {
                        format!("{name}_{}", round + 1)
                    }),
                    description: description.filter(|_| r.below(4) != 0).map(str::to_string),
                    parameters: params
                        .iter()
                        .enumerate()
                        .map(|(k, p)| ThingParameter {
                            name: Some(p.to_string()),
                            payload: Some(format!("p{k}")),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The notifications present at start, oldest first (ids ascending from 4001), a third of
    /// them about device 1 (`D2:C1:AA:FF:3E:09`).
    pub fn initial_notifications(&self) -> Vec<Notification> {
        let n = if self.cfg.devices == 0 {
            0
        } else {
            self.cfg.notifications
        };
        let start = 1_609_459_200i64; // 2021-01-01T00:00:00Z
        let span = (self.cfg.latest_epoch - 3_600 - start).max(0);
        let step = span / (n.max(1) as i64);
        (0..n)
            .map(|j| {
                let mut r = SplitMix::for_entity(self.cfg.seed, TAG_NOTIFICATION, j as u64, 0);
                let mut device = r.below(self.cfg.devices as u64) as usize;
                // A third are about the docs' `D2:C1:AA:FF:3E:09`, so that the README's
                // `notifications --device D2:C1:AA:FF:3E:09 --offset 20` shows some.
                if j % 3 == 0 && self.cfg.devices > 1 {
                    device = 1;
                }
                let (category, message) = *r.pick(NOTES);
                let t = start + j as i64 * step + r.below(step.max(1) as u64) as i64;
                Notification {
                    id: 4001 + j as i64,
                    physical_id: Some(self.physical_id(device)),
                    category: Some(category.to_string()),
                    message: Some(message.to_string()),
                    created_at: seconds_z(from_unix(t)),
                }
            })
            .collect()
    }

    /// A plausible new notification for `push`-style tests: deterministic in `(seed, n)`.
    pub fn generated_notification(&self, n: u64) -> (String, &'static str, &'static str) {
        let mut r = SplitMix::for_entity(self.cfg.seed, TAG_NOTIFICATION, n, 1);
        let device = r.below(self.cfg.devices.max(1) as u64) as usize;
        let (category, message) = *r.pick(NOTES);
        (self.physical_id(device), category, message)
    }

    fn baseline(&self, i: usize) -> [f64; 4] {
        let mut r = SplitMix::for_entity(self.cfg.seed, TAG_BASELINE, i as u64, 0);
        [
            r.range(20.0, 23.5),
            r.range(35.0, 55.0),
            r.range(450.0, 800.0),
            r.range(3.0, 12.0),
        ]
    }

    fn data(
        &self,
        i: usize,
        kind: Option<&str>,
        vals: [f64; 4],
        r: &mut SplitMix,
    ) -> Map<String, Value> {
        let [t, h, c, p] = vals;
        let mut m = Map::new();
        m.insert("temperature".into(), json!(round1(t)));
        m.insert("humidity".into(), json!(round1(h)));
        m.insert("co2".into(), json!(c.round() as i64));
        m.insert("pm2_5".into(), json!(round1(p)));
        m.insert("meta".into(), Value::Object(Map::new()));
        match kind {
            Some("airbird") => {
                m.insert(
                    "meta".into(),
                    json!({"battery": 60 + (i % 40), "rssi": -50 - (r.below(40) as i64)}),
                );
            }
            Some("ambinode") => {
                m.insert("voc".into(), json!(50 + r.below(350)));
                m.insert("noise".into(), json!(round1(r.range(30.0, 60.0))));
                m.insert("light".into(), json!(r.below(800)));
            }
            Some("bacnet") => {
                m.insert("pm2_5".into(), Value::Null);
                for k in 0..7 {
                    m.insert(format!("p{k}"), json!(round1(r.range(15.0, 30.0))));
                }
            }
            Some("ultralink_modbus") => {
                m.insert("co2".into(), Value::Null);
                m.insert("pm2_5".into(), Value::Null);
                for k in 0..5 {
                    m.insert(format!("p{k}"), json!(round1(r.range(0.0, 100.0))));
                }
            }
            Some("ultralink_wmbus") => {
                m.insert("humidity".into(), Value::Null);
                m.insert("co2".into(), Value::Null);
                m.insert("pm2_5".into(), Value::Null);
                m.insert("energy_kwh".into(), json!(round1(r.range(1000.0, 90000.0))));
                m.insert("flow".into(), json!(round1(r.range(0.1, 3.0))));
            }
            _ => {}
        }
        m
    }

    /// The latest reading of device `i` at reading tick `tick` (each tick is one
    /// [`READING_INTERVAL_SECS`] later, with new values).
    pub fn latest(&self, i: usize, tick: u64) -> Reading {
        let jitter = (hash(self.cfg.seed, TAG_LATEST, i as u64, u64::MAX) % 240) as i64;
        let ts = self.cfg.latest_epoch + tick as i64 * READING_INTERVAL_SECS - jitter;
        let mut r = SplitMix::for_entity(self.cfg.seed, TAG_LATEST, i as u64, tick);
        let [t, h, c, p] = self.baseline(i);
        let vals = [
            t + r.range(-1.0, 1.0),
            h + r.range(-5.0, 5.0),
            c + r.range(-80.0, 250.0),
            (p + r.range(-2.0, 4.0)).max(0.5),
        ];
        Reading {
            physical_id: self.physical_id(i),
            timestamp: seconds_z(from_unix(ts)),
            data: self.data(i, self.kind(i), vals, &mut r),
            created_at: seconds_z(from_unix(ts + 2)),
        }
    }

    /// Averages of device `i` over `[from, to)`: one reading per period overlapping the range,
    /// stamped with the period's start. `Err` if the range spans more than
    /// [`MAX_AVERAGE_PERIODS`] periods or `from >= to`.
    pub fn averages(
        &self,
        i: usize,
        res: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Reading>, String> {
        if from >= to {
            return Err("`from` must be before `to`".into());
        }
        let kind = self.kind(i);
        let id = self.physical_id(i);
        let [bt, bh, bc, bp] = self.baseline(i);
        let noise = match res {
            Resolution::Daily => 1.0,
            Resolution::Weekly => 0.5,
            Resolution::Monthly => 0.25,
        };
        let mut out = Vec::new();
        let mut start = res.period_start(from);
        while start < to {
            if out.len() >= MAX_AVERAGE_PERIODS {
                return Err(format!(
                    "the range spans more than {MAX_AVERAGE_PERIODS} periods"
                ));
            }
            let next = res.next_start(start);
            let mut r = SplitMix::for_entity(
                self.cfg.seed,
                TAG_AVERAGE ^ (res.code() << 8),
                i as u64,
                start.timestamp() as u64,
            );
            let season = (f64::from(start.ordinal()) / 365.0 * std::f64::consts::TAU).cos();
            let weekend = res == Resolution::Daily && start.weekday().num_days_from_monday() >= 5;
            let vals = [
                bt - 0.8 * season + noise * r.range(-0.8, 0.8),
                bh + 6.0 * season + noise * r.range(-4.0, 4.0),
                if weekend { bc * 0.8 } else { bc + 120.0 } + noise * r.range(-60.0, 60.0),
                (bp + 2.0 * season + noise * r.range(-2.0, 2.0)).max(0.5),
            ];
            out.push(Reading {
                physical_id: id.clone(),
                timestamp: seconds_z(start),
                data: self.data(i, kind, vals, &mut r),
                created_at: seconds_z(next + ChronoDuration::minutes(5)),
            });
            start = next;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::parse_timestamp;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let d = Dataset::new(DatasetConfig {
            devices: 2_000,
            ..DatasetConfig::default()
        });
        let mut seen = std::collections::HashSet::new();
        for i in 0..2_000 {
            let id = d.physical_id(i);
            assert_eq!(d.find_device(&id), Some(i), "{id}");
            assert_eq!(d.find_device(&id.to_ascii_lowercase()), Some(i), "{id}");
            assert!(seen.insert(id));
        }
        assert_eq!(d.find_device("D2:C1:AA:FF:3E:09"), Some(1));
        assert_eq!(d.find_device("d2:c1:aa:ff:3e:09"), Some(1));
        assert_eq!(
            d.find_device("testsim00001"),
            None,
            "device 1 is documented"
        );
        assert_eq!(d.find_device("testsim99999"), None);
        let small = Dataset::new(DatasetConfig {
            devices: 2,
            ..DatasetConfig::default()
        });
        assert_eq!(small.find_device("testsim00004"), None, "past the count");
        assert_eq!(d.find_device(""), None);
    }

    #[test]
    fn topologies_resolve_by_gateway_and_number() {
        let d = Dataset::new(DatasetConfig::default());
        for k in 0..d.topology_count() {
            let t = d.topology(k);
            assert_eq!(d.find_topology(&t.gateway_id), Some(k));
            assert_eq!(d.find_topology(&(k + 1).to_string()), Some(k));
            assert_eq!(t.devices[0].physical_id, t.gateway_id);
        }
    }

    #[test]
    fn averages_cover_each_period() {
        let d = Dataset::new(DatasetConfig::default());
        let from = parse_timestamp("2021-05-26T00:00:00.000").unwrap();
        let to = parse_timestamp("2021-05-27T11:42:58.721").unwrap();
        let r = d.averages(0, Resolution::Daily, from, to).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].timestamp, "2021-05-26T00:00:00Z");
        let to = parse_timestamp("2021-08-01").unwrap();
        assert_eq!(
            d.averages(0, Resolution::Monthly, from, to).unwrap().len(),
            3
        );
        assert_eq!(
            d.averages(0, Resolution::Weekly, from, to).unwrap()[0].timestamp,
            "2021-05-24T00:00:00Z"
        );
        assert!(d.averages(0, Resolution::Daily, to, from).is_err());
    }
}
