//! `/metrics`: the metrics, their names and units, rendered from the [`Store`] at scrape time
//! in the Prometheus text format or OpenMetrics, with stale readings left out.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leapcraft_ext::ClientStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::poll::store::{DeviceEntry, PollReport, ReadingEntry, State, Store};

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// The Prometheus text format, version 0.0.4: the default.
    Prometheus,
    /// OpenMetrics 1.0, when the scraper asks for it.
    OpenMetrics,
}

impl ExpositionFormat {
    /// The format a request's `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` (with a non-zero quality), else the Prometheus text.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !parts.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if wants_openmetrics {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A known quantity of readings: its gauge's name and unit, and where its value is.
struct Quantity {
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    value: fn(&ReadingEntry) -> Option<f64>,
}

/// The quantities the SDK knows, one gauge each, named `<name>_<unit>`.
const QUANTITIES: [Quantity; 4] = [
    Quantity {
        name: "leapcraft_temperature",
        unit: "celsius",
        help: "Temperature of the latest reading.",
        value: |r| r.temperature,
    },
    Quantity {
        name: "leapcraft_humidity",
        unit: "percent",
        help: "Relative humidity of the latest reading.",
        value: |r| r.humidity,
    },
    Quantity {
        name: "leapcraft_co2",
        unit: "ppm",
        help: "CO2 concentration of the latest reading.",
        value: |r| r.co2,
    },
    // In base units, as Prometheus's conventions ask: the API's µg/m³ divided by 10⁶.
    Quantity {
        name: "leapcraft_pm2_5",
        unit: "grams_per_cubic_meter",
        help: "Particulate matter up to 2.5 micrometres of the latest reading.",
        value: |r| r.pm2_5.map(|ug| ug / 1e6),
    },
];

/// Renders the metrics of `store` at `now`, with the client's counters, into a string of
/// `capacity` bytes at first (the size of the last rendering saves growing it step by step).
/// Readings recorded more than `stale_after` before `now` are left out.
pub fn render(
    store: &Store,
    stats: ClientStats,
    stale_after: Duration,
    format: ExpositionFormat,
    now: SystemTime,
    capacity: usize,
) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        store: store.clone(),
        stats,
        stale_after,
        now,
    }));
    let mut out = String::with_capacity(capacity);
    // Writing to a String cannot fail.
    let _ = match format {
        ExpositionFormat::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        ExpositionFormat::OpenMetrics => {
            prometheus_client::encoding::text::encode(&mut out, &registry)
        }
    };
    out
}

/// One scrape: encodes the store as it is, under its read lock.
#[derive(Debug)]
struct Scrape {
    store: Store,
    stats: ClientStats,
    stale_after: Duration,
    now: SystemTime,
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl EncodeGaugeValue,
) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

impl Scrape {
    /// The devices whose latest reading is fresh at the scrape.
    fn fresh<'s>(
        &self,
        state: &'s State,
    ) -> impl Iterator<Item = (&'s DeviceEntry, &'s ReadingEntry)> + Clone {
        state.fresh(self.now, self.stale_after)
    }

    fn readings(&self, state: &State, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let fresh = self.fresh(state);
        for q in &QUANTITIES {
            if !fresh.clone().any(|(_, r)| (q.value)(r).is_some()) {
                continue;
            }
            let unit = Unit::Other(q.unit.to_owned());
            let mut metric =
                encoder.encode_descriptor(q.name, q.help, Some(&unit), MetricType::Gauge)?;
            for (device, reading) in fresh.clone() {
                if let Some(v) = (q.value)(reading) {
                    metric
                        .encode_family(&[("physical_id", device.physical_id.as_str())])?
                        .encode_gauge(&v)?;
                }
            }
        }
        if fresh.clone().any(|(_, r)| !r.other.is_empty()) {
            let mut metric = encoder.encode_descriptor(
                "leapcraft_reading",
                "A numeric metric of the latest reading that this version does not know, by key.",
                None,
                MetricType::Gauge,
            )?;
            for (device, reading) in fresh.clone() {
                for (key, v) in &reading.other {
                    metric
                        .encode_family(&[
                            ("physical_id", device.physical_id.as_str()),
                            ("metric", key.as_str()),
                        ])?
                        .encode_gauge(v)?;
                }
            }
        }
        if fresh.clone().next().is_some() {
            let mut metric = encoder.encode_descriptor(
                "leapcraft_reading_timestamp",
                "When the sensor recorded the latest reading.",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            for (device, reading) in fresh {
                metric
                    .encode_family(&[("physical_id", device.physical_id.as_str())])?
                    .encode_gauge(&seconds(reading.recorded_at))?;
            }
        }
        Ok(())
    }

    fn account(&self, state: &State, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        if !state.devices.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "leapcraft_device",
                "The devices of the account.",
                None,
                MetricType::Info,
            )?;
            for d in state.devices.values() {
                metric.encode_info(&[
                    ("physical_id", d.physical_id.as_str()),
                    ("name", d.name.as_str()),
                    ("type", d.kind.as_str()),
                    ("serial", d.serial.as_str()),
                    ("topology_id", d.topology_id.as_str()),
                ])?;
            }
        }
        if !state.notifications.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "leapcraft_notifications",
                "Notifications of the account, by category.",
                None,
                MetricType::Gauge,
            )?;
            for (category, n) in &state.notifications {
                metric
                    .encode_family(&[("category", category.as_str())])?
                    .encode_gauge(n)?;
            }
        }
        Ok(())
    }

    fn health(&self, state: &State, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let health = &state.health;
        let up = self.store.is_healthy(health, Instant::now());
        gauge(
            encoder,
            "leapcraft_up",
            "1 while the last successful poll ended less than three intervals ago, else 0.",
            None,
            i64::from(up),
        )?;
        if let Some(at) = health.last_success_at {
            gauge(
                encoder,
                "leapcraft_last_successful_poll_timestamp",
                "When the last successful poll ended.",
                Some(&Unit::Seconds),
                seconds(at),
            )?;
        }
        if let Some(poll) = health.last_poll {
            gauge(
                encoder,
                "leapcraft_poll_duration",
                "How long the last poll took, successful or not.",
                Some(&Unit::Seconds),
                poll.duration.as_secs_f64(),
            )?;
        }
        let last = |f: fn(&PollReport) -> u64| health.last_poll.as_ref().map_or(0, f);
        gauge(
            encoder,
            "leapcraft_poll_failed_devices",
            "Devices whose latest reading could not be read in the last poll.",
            None,
            last(|p| p.failed_devices),
        )?;
        gauge(
            encoder,
            "leapcraft_poll_stale_readings",
            "Devices whose latest reading was older than --stale-after at the end of the last \
             poll, and so not exported.",
            None,
            last(|p| p.stale_readings),
        )?;
        Ok(())
    }

    fn client(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let stats = &self.stats;
        if !stats.requests.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "leapcraft_api_requests",
                "API requests, by operation and status (0: no response).",
                None,
                MetricType::Counter,
            )?;
            for ((operation, status), n) in &stats.requests {
                metric
                    .encode_family(&[("operation", *operation), ("status", &status.to_string())])?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
        }
        counter(
            encoder,
            "leapcraft_api_retries",
            "API requests that were retries of an earlier attempt.",
            stats.retries,
        )?;
        counter(
            encoder,
            "leapcraft_token_exchanges",
            "Exchanges of the API key for a bearer token.",
            stats.token_exchanges,
        )?;
        if let Some(rate) = stats.request_rate {
            gauge(
                encoder,
                "leapcraft_api_allowed_request_rate",
                "The request rate the client allows now, in requests per second.",
                None,
                rate,
            )?;
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let state = self.store.read();
        self.readings(&state, &mut encoder)?;
        self.account(&state, &mut encoder)?;
        self.health(&state, &mut encoder)?;
        self.client(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::store::PollOutcome;
    use leapcraft_ext::{Device, Notification, Reading};
    use serde_json::json;

    const NOW: &str = "2026-12-01T12:00:00Z";

    fn at(ts: &str) -> SystemTime {
        SystemTime::from(
            ts.parse::<leapcraft_ext::Timestamp>()
                .unwrap()
                .as_datetime(),
        )
    }

    fn store() -> Store {
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(3600));
        let devices: Vec<Device> = serde_json::from_value(json!([
            {"physical_id": "A", "name": "Room \"1\"\nnorth\\", "type": "ambinode", "serial": "S1", "topology_id": 3},
            {"physical_id": "B", "name": null, "type": "airbird"},
            {"physical_id": "C", "name": "gone quiet"}
        ]))
        .unwrap();
        store.set_devices(&devices);
        let reading = |ts: &str, extra: serde_json::Value| -> Reading {
            let mut r = json!({"timestamp": ts, "temperature": 21.5, "humidity": 40.0, "co2": 612, "pm2_5": 8.5});
            r.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(r).unwrap()
        };
        store.set_reading(
            &"A".into(),
            &reading("2026-12-01T11:58:00Z", json!({"other": {"voc": 120}})),
        );
        store.set_reading(
            &"B".into(),
            &reading("2026-12-01T11:00:00Z", json!({"co2": null})),
        );
        store.set_reading(&"C".into(), &reading("2026-12-01T10:59:59Z", json!({})));
        let notes: Vec<Notification> = serde_json::from_value(json!([
            {"id": 1, "category": "technicalAlert"},
            {"id": 2, "category": "technicalAlert"},
            {"id": 3, "category": "maintenance"}
        ]))
        .unwrap();
        store.add_notifications(&notes);
        store.finish_poll(
            PollOutcome {
                duration: Duration::from_millis(1500),
                readings: 2,
                failed_devices: 1,
            },
            at(NOW),
        );
        store
    }

    fn stats() -> ClientStats {
        let mut stats = ClientStats::default();
        stats.requests = [(("get_telemetry", 200), 7), (("get_telemetry", 503), 2)].into();
        stats.retries = 2;
        stats.token_exchanges = 1;
        stats.request_rate = Some(12.5);
        stats
    }

    fn render_at(format: ExpositionFormat) -> String {
        render(
            &store(),
            stats(),
            Duration::from_secs(3600),
            format,
            at(NOW),
            0,
        )
    }

    /// The value of `series` (name and labels, as rendered) in `text`.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn readings_are_gauges_named_with_their_units() {
        let text = render_at(ExpositionFormat::Prometheus);
        for (series, expected) in [
            (r#"leapcraft_co2_ppm{physical_id="A"}"#, 612.0),
            (r#"leapcraft_temperature_celsius{physical_id="B"}"#, 21.5),
            (r#"leapcraft_humidity_percent{physical_id="A"}"#, 40.0),
            (
                r#"leapcraft_pm2_5_grams_per_cubic_meter{physical_id="A"}"#,
                8.5e-6,
            ),
            (r#"leapcraft_reading{physical_id="A",metric="voc"}"#, 120.0),
            (
                r#"leapcraft_reading_timestamp_seconds{physical_id="A"}"#,
                1_796_126_280.0,
            ),
            (
                r#"leapcraft_device_info{physical_id="B",name="",type="airbird",serial="",topology_id=""}"#,
                1.0,
            ),
            (r#"leapcraft_notifications{category="technicalAlert"}"#, 2.0),
            (r#"leapcraft_notifications{category="maintenance"}"#, 1.0),
            ("leapcraft_up", 1.0),
            ("leapcraft_poll_duration_seconds", 1.5),
            ("leapcraft_poll_failed_devices", 1.0),
            ("leapcraft_poll_stale_readings", 1.0),
            (
                r#"leapcraft_api_requests_total{operation="get_telemetry",status="503"}"#,
                2.0,
            ),
            ("leapcraft_api_retries_total", 2.0),
            ("leapcraft_token_exchanges_total", 1.0),
            ("leapcraft_api_allowed_request_rate", 12.5),
        ] {
            assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
        }
        assert!(text.contains("# TYPE leapcraft_co2_ppm gauge"));
        assert!(text.contains("# TYPE leapcraft_api_requests_total counter"));
        assert_eq!(value(&text, r#"leapcraft_co2_ppm{physical_id="B"}"#), None);
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn stale_readings_disappear_and_only_they() {
        let text = render_at(ExpositionFormat::Prometheus);
        let series = |id: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#') && l.contains(&format!(r#"physical_id="{id}""#)))
                .filter(|l| !l.starts_with("leapcraft_device_info"))
                .count()
        };
        assert_eq!(series("A"), 6, "four quantities, voc and the timestamp");
        assert_eq!(series("B"), 4, "no CO2");
        assert_eq!(series("C"), 0, "recorded 1h0m1s before the scrape");
        // A day later, nothing is fresh: no reading families at all, the rest stays.
        let later = render(
            &store(),
            stats(),
            Duration::from_secs(3600),
            ExpositionFormat::Prometheus,
            at("2026-12-02T12:00:00Z"),
            0,
        );
        assert!(!later.contains("leapcraft_co2_ppm"));
        assert!(!later.contains("leapcraft_reading"));
        assert!(later.contains("leapcraft_device_info"));
    }

    #[test]
    fn label_values_from_the_api_are_escaped() {
        let text = render_at(ExpositionFormat::Prometheus);
        assert!(text.contains(r#"name="Room \"1\"�north\\""#), "{text}");
    }

    #[test]
    fn openmetrics_when_asked() {
        let text = render_at(ExpositionFormat::OpenMetrics);
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# UNIT leapcraft_co2_ppm ppm"));
        assert!(text.contains("# TYPE leapcraft_device info"));
        assert!(text.contains("# TYPE leapcraft_api_requests counter"));
        let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            ExpositionFormat::from_accept(Some(prometheus_accept)),
            ExpositionFormat::OpenMetrics
        );
        assert_eq!(
            ExpositionFormat::from_accept(Some("text/plain")),
            ExpositionFormat::Prometheus
        );
        assert_eq!(
            ExpositionFormat::from_accept(Some("application/openmetrics-text; q=0")),
            ExpositionFormat::Prometheus
        );
        assert_eq!(
            ExpositionFormat::from_accept(None),
            ExpositionFormat::Prometheus
        );
    }

    #[test]
    fn an_exporter_that_never_polled_is_down() {
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(60));
        let text = render(
            &store,
            ClientStats::default(),
            Duration::from_secs(60),
            ExpositionFormat::Prometheus,
            at(NOW),
            0,
        );
        assert_eq!(value(&text, "leapcraft_up"), Some(0.0), "{text}");
        assert!(!text.contains("leapcraft_last_successful_poll_timestamp_seconds "));
        assert!(!text.contains("leapcraft_device_info"));
    }
}

/// How long rendering 10,000 devices takes: `cargo test --release -p leapcraft-cli --bin
/// leapcraft render_time -- --ignored --nocapture` (a measurement, not a test: figure 6 of
/// BENCHMARKS.md is the benchmark).
#[cfg(test)]
mod render_time {
    use super::*;
    use leapcraft_ext::{Device, Reading};
    use serde_json::json;

    #[test]
    #[ignore = "a measurement"]
    fn render_time() {
        let store = Store::new(Duration::from_secs(60), Duration::from_secs(3600));
        let devices: Vec<Device> = (0..10_000)
            .map(|i| {
                serde_json::from_value(json!({"physical_id": format!("D2:C1:AA:FF:{:02X}:{:02X}", i / 256, i % 256),
                    "name": format!("Room {i}"), "type": "ambinode", "serial": format!("LC-2026-{i}"), "topology_id": i / 8}))
                .unwrap()
            })
            .collect();
        store.set_devices(&devices);
        let now = SystemTime::now();
        let ts = leapcraft_ext::Timestamp::from(chrono::Utc::now());
        for d in &devices {
            let r: Reading = serde_json::from_value(
                json!({"timestamp": ts, "temperature": 21.4, "humidity": 44.5,
                "co2": 612, "pm2_5": 8.5, "other": {"voc": 120, "noise": 41.5, "light": 300}}),
            )
            .unwrap();
            store.set_reading(&d.physical_id, &r);
        }
        for format in [ExpositionFormat::Prometheus, ExpositionFormat::OpenMetrics] {
            let mut times = Vec::new();
            let mut len = 0;
            for _ in 0..15 {
                let t = Instant::now();
                len = render(
                    &store,
                    ClientStats::default(),
                    Duration::from_secs(3600),
                    format,
                    now,
                    len,
                )
                .len();
                times.push(t.elapsed());
            }
            times.sort();
            eprintln!(
                "{format:?}: {len} bytes, median {:?}, min {:?}",
                times[7], times[0]
            );
        }
    }
}
