//! `leapcraft mqtt` end to end: the binary polling a fake account and publishing to a real
//! Mosquitto (Debian's `mosquitto` package) started here on a free port, watched by an MQTT
//! client subscribed to every topic. What arrives is checked against Home Assistant's rules
//! for sensors (units per device class, full keys, templates rendered by a Jinja engine).
//!
//! Without `mosquitto` on the machine the tests say so and skip, unless
//! `LEAPCRAFT_TEST_REQUIRE_REAL` is set (CI sets it): then they fail.
//!
//! Waits are for messages, with an overall deadline: never a fixed sleep.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use leapcraft_fake::{Churn, FakeServer};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

use leapcraft_test_kit::Mosquitto;

use crate::serve::fake;
use crate::support::{Daemon, daemon_command};

/// How long any one condition may take to hold.
const DEADLINE: Duration = Duration::from_secs(45);

/// The password of the tests' broker user.
const PASSWORD: &str = "broker-secret-7d1f";

/// Home Assistant's units per device class (`DEVICE_CLASS_UNITS` in
/// `homeassistant/components/sensor/const.py`), for the classes the bridge uses. PM2.5 is in
/// micrograms with the Greek mu, as its constant is spelled.
const DEVICE_CLASS_UNITS: &[(&str, &[&str])] = &[
    ("temperature", &["°C", "°F", "K"]),
    ("humidity", &["%"]),
    ("carbon_dioxide", &["ppm"]),
    ("pm25", &["\u{3bc}g/m\u{b3}"]),
];

/// The keys of a sensor's discovery config the bridge may use, in full (no abbreviation).
const SENSOR_KEYS: &[&str] = &[
    "name",
    "unique_id",
    "state_topic",
    "value_template",
    "device_class",
    "unit_of_measurement",
    "state_class",
    "expire_after",
    "availability_topic",
    "device",
    "origin",
];

/// The keys of a discovery config's `device`.
const DEVICE_KEYS: &[&str] = &[
    "identifiers",
    "name",
    "manufacturer",
    "model",
    "serial_number",
];

/// Whether the tests can run: `mosquitto` is installed; else they skip, unless they must run.
fn broker_available(test: &str) -> bool {
    if Mosquitto::binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("LEAPCRAFT_TEST_REQUIRE_REAL").is_none(),
        "{test}: `mosquitto` is not installed (Debian: apt-get install mosquitto)"
    );
    eprintln!("SKIPPED {test}: `mosquitto` is not installed (Debian: apt-get install mosquitto)");
    false
}

/// A broker that asks for `user` / [`PASSWORD`].
fn broker_with_password() -> Mosquitto {
    Mosquitto::start_with(
        "allow_anonymous false\npassword_file {dir}/passwords",
        |dir| {
            let made = Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(dir.join("passwords"))
                .args(["user", PASSWORD])
                .status();
            assert!(
                made.is_ok_and(|s| s.success()),
                "mosquitto_passwd makes the file"
            );
        },
    )
    .unwrap()
}

/// What a client subscribed to every topic sees: the last payload of each topic (a topic
/// whose retained message was cleared is gone), kept up to date as messages come.
struct Watcher {
    topics: BTreeMap<String, String>,
    events: mpsc::UnboundedReceiver<Seen>,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

enum Seen {
    /// (Re)connected: what the broker holds arrives again.
    Connected,
    Message(String, String),
}

impl Watcher {
    async fn connect(port: u16, credentials: Option<(&str, &str)>) -> Self {
        let mut options = MqttOptions::new(format!("watcher-{}", rand_suffix()), "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, events) = mpsc::unbounded_channel();
        let subscriber = client.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = tx.send(Seen::Connected);
                        let _ = subscriber.subscribe("#", QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        let _ = tx.send(Seen::Message(p.topic, payload));
                    }
                    Ok(_) => {}
                    // A broker being restarted: the event loop connects again when polled.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Self {
            topics: BTreeMap::new(),
            events,
            client,
            task,
        }
    }

    /// Takes messages until `holds` says yes of what the broker holds.
    async fn until(&mut self, what: &str, holds: impl Fn(&BTreeMap<String, String>) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !holds(&self.topics) {
            let seen = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{what}: not within {DEADLINE:?}; the broker holds {:#?}",
                        self.topics.keys().collect::<Vec<_>>()
                    )
                })
                .expect("the watcher runs");
            match seen {
                Seen::Connected => self.topics.clear(),
                Seen::Message(topic, payload) if payload.is_empty() => {
                    self.topics.remove(&topic);
                }
                Seen::Message(topic, payload) => {
                    self.topics.insert(topic, payload);
                }
            }
        }
    }

    /// Publishes `payload` on `topic`, retained or not.
    async fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_owned())
            .await
            .unwrap();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rand_suffix() -> u32 {
    std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos())
}

/// A topic level as the bridge writes ids: ASCII letters, digits and `_` kept, every other
/// byte as `-` and two hex digits.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("-{b:02x}")
            }
        })
        .collect()
}

/// The object id of a metric: the known ones by name, others under `other_`.
fn object_id(metric: &str) -> String {
    match metric {
        "temperature" | "humidity" | "co2" | "pm2_5" => metric.to_owned(),
        other => format!("other_{}", segment(other)),
    }
}

/// What the fake serves now, device by device: its id and each numeric metric's value.
fn expected(fake: &FakeServer) -> BTreeMap<String, BTreeMap<String, f64>> {
    let data = fake.dataset();
    (0..data.device_count())
        .map(|i| {
            let reading = data.latest(i, fake.readings_tick());
            let metrics = reading
                .data
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect();
            (reading.physical_id, metrics)
        })
        .collect()
}

/// The config topic of a device's sensor.
fn config_topic(id: &str, metric: &str) -> String {
    format!(
        "homeassistant/sensor/leapcraft_{}/{}/config",
        segment(id),
        object_id(metric)
    )
}

/// Whether the broker holds the discovery and state of every device of `expected`.
fn holds_everything(
    topics: &BTreeMap<String, String>,
    expected: &BTreeMap<String, BTreeMap<String, f64>>,
) -> bool {
    expected.iter().all(|(id, metrics)| {
        topics.contains_key(&format!("leapcraft/{}/state", segment(id)))
            && metrics
                .keys()
                .all(|m| topics.contains_key(&config_topic(id, m)))
    })
}

/// Starts `leapcraft mqtt` polling `fake`, publishing to `broker_url`, with `args`.
fn bridge(fake: &FakeServer, broker_url: &str, args: &[&str], envs: &[(&str, &str)]) -> Daemon {
    let mut cmd = daemon_command(
        fake.base_url(),
        fake.api_key(),
        &[&["mqtt", "--broker", broker_url], args].concat(),
    );
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Daemon::start("mqtt", cmd, "connecting to the broker").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_gets_every_sensor_with_its_unit_and_value() {
    if !broker_available("home_assistant_gets_every_sensor_with_its_unit_and_value") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let fake = fake(16).await;
    let expected = expected(&fake);
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let daemon = bridge(
        &fake,
        &broker.url(),
        &["--interval", "1h", "--stale-after", "2h"],
        &[],
    );
    watcher
        .until("every device's discovery and state", |t| {
            holds_everything(t, &expected)
        })
        .await;
    let topics = watcher.topics.clone();
    assert_eq!(
        topics
            .get("leapcraft/bridge/availability")
            .map(String::as_str),
        Some("online")
    );

    let mut unique_ids = BTreeSet::new();
    let mut configs = 0;
    for (topic, payload) in &topics {
        if !topic.starts_with("homeassistant/") {
            continue;
        }
        configs += 1;
        let config: Value = serde_json::from_str(payload).unwrap();
        let object = config.as_object().unwrap();
        for key in object.keys() {
            assert!(SENSOR_KEYS.contains(&key.as_str()), "{topic}: key {key}");
        }
        for key in config["device"].as_object().unwrap().keys() {
            assert!(
                DEVICE_KEYS.contains(&key.as_str()),
                "{topic}: device key {key}"
            );
        }
        assert!(unique_ids.insert(config["unique_id"].as_str().unwrap().to_owned()));
        assert_eq!(config["state_class"], "measurement", "{topic}");
        assert_eq!(config["expire_after"], 7200, "{topic}");
        assert_eq!(
            config["availability_topic"],
            "leapcraft/bridge/availability"
        );
        assert_eq!(config["device"]["manufacturer"], "Leapcraft");
        assert!(
            !config["device"]["identifiers"][0]
                .as_str()
                .unwrap()
                .is_empty()
        );
        match config.get("device_class").and_then(Value::as_str) {
            Some(class) => {
                let units = DEVICE_CLASS_UNITS
                    .iter()
                    .find(|(c, _)| *c == class)
                    .unwrap_or_else(|| panic!("{topic}: device class {class}"))
                    .1;
                let unit = config["unit_of_measurement"].as_str().unwrap();
                assert!(units.contains(&unit), "{topic}: {unit} for {class}");
            }
            None => assert!(config.get("unit_of_measurement").is_none(), "{topic}"),
        }
    }
    let sensors: usize = expected.values().map(BTreeMap::len).sum();
    assert_eq!(
        configs, sensors,
        "one sensor per metric with a value, no more"
    );

    // Every template, rendered over its device's state, gives the fake's value.
    let jinja = minijinja::Environment::new();
    for (id, metrics) in &expected {
        let state: Value =
            serde_json::from_str(&topics[&format!("leapcraft/{}/state", segment(id))]).unwrap();
        assert!(state["recorded_at"].as_str().unwrap().ends_with('Z'));
        for (metric, value) in metrics {
            let config: Value = serde_json::from_str(&topics[&config_topic(id, metric)]).unwrap();
            let template = config["value_template"].as_str().unwrap();
            let rendered = jinja
                .render_str(template, minijinja::context! { value_json => state })
                .unwrap();
            assert_eq!(
                rendered.parse::<f64>().ok(),
                Some(*value),
                "{id} {metric}: {template}"
            );
        }
    }

    // SIGTERM: offline, then a clean exit.
    let status = daemon.stop();
    assert!(status.success(), "{status:?}");
    watcher
        .until("offline on SIGTERM", |t| {
            t.get("leapcraft/bridge/availability").map(String::as_str) == Some("offline")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_announcing_itself_gets_everything_again() {
    if !broker_available("home_assistant_announcing_itself_gets_everything_again") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let fake = fake(4).await;
    let expected = expected(&fake);
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let daemon = bridge(&fake, &broker.url(), &["--interval", "1h"], &[]);
    watcher
        .until("everything", |t| holds_everything(t, &expected))
        .await;

    // Someone cleared a config and a state; Home Assistant restarts and says so.
    let (id, metrics) = expected.iter().next().unwrap();
    let config = config_topic(id, metrics.keys().next().unwrap());
    let state = format!("leapcraft/{}/state", segment(id));
    watcher.publish(&config, "", true).await;
    watcher.publish(&state, "", true).await;
    watcher
        .until("the config and state cleared", |t| {
            !t.contains_key(&config) && !t.contains_key(&state)
        })
        .await;
    watcher
        .publish("homeassistant/status", "online", false)
        .await;
    daemon.wait_log("Home Assistant is online").await;
    watcher
        .until("everything again", |t| holds_everything(t, &expected))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_will_says_offline_when_the_bridge_is_killed() {
    if !broker_available("the_will_says_offline_when_the_bridge_is_killed") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let fake = fake(2).await;
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let daemon = bridge(&fake, &broker.url(), &["--interval", "1h"], &[]);
    let availability = "leapcraft/bridge/availability";
    watcher
        .until("online", |t| {
            t.get(availability).map(String::as_str) == Some("online")
        })
        .await;
    daemon.kill();
    watcher
        .until("the will: offline", |t| {
            t.get(availability).map(String::as_str) == Some("offline")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_late_or_restarted_gets_everything() {
    if !broker_available("a_broker_late_or_restarted_gets_everything") {
        return;
    }
    let mut broker = Mosquitto::start("allow_anonymous true").unwrap();
    broker.stop();
    let fake = fake(6).await;
    let expected = expected(&fake);
    // The broker is not up yet: the bridge retries, saying so each time.
    let daemon = bridge(&fake, &broker.url(), &["--interval", "1h"], &[]);
    daemon.wait_log("cannot connect to the broker").await;
    daemon.wait_log("cannot connect to the broker").await;
    broker.run().unwrap();
    daemon.wait_log("connected to the broker").await;
    let mut watcher = Watcher::connect(broker.port(), None).await;
    watcher
        .until("everything once the broker is up", |t| {
            holds_everything(t, &expected)
        })
        .await;

    // Restarted without persistence: the broker has lost every retained message.
    broker.restart().unwrap();
    daemon.wait_log("lost the connection to the broker").await;
    daemon.wait_log("connected to the broker").await;
    watcher
        .until("everything again after the restart", |t| {
            holds_everything(t, &expected)
                && t.get("leapcraft/bridge/availability").map(String::as_str) == Some("online")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_gone_from_the_account_is_removed_from_home_assistant() {
    if !broker_available("a_device_gone_from_the_account_is_removed_from_home_assistant") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let fake = fake(5).await;
    let expected = expected(&fake);
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let _daemon = bridge(
        &fake,
        &broker.url(),
        &["--interval", "1s", "--devices-every", "1s"],
        &[],
    );
    watcher
        .until("everything", |t| holds_everything(t, &expected))
        .await;
    // The first device of the list is deleted after the next listing is answered.
    fake.set_churn(Churn::RemoveFirstEachPage);
    let first = fake.device_ids();
    watcher
        .until("a device's sensors and state cleared", |t| {
            expected
                .keys()
                .any(|id| !t.contains_key(&format!("leapcraft/{}/state", segment(id))))
        })
        .await;
    fake.set_churn(Churn::None);
    let account: BTreeSet<String> = fake.device_ids().into_iter().collect();
    for (id, metrics) in &expected {
        let state = format!("leapcraft/{}/state", segment(id));
        if watcher.topics.contains_key(&state) {
            continue;
        }
        assert!(!account.contains(id), "{id} is still in the account");
        assert!(first.contains(id));
        for metric in metrics.keys() {
            assert!(
                !watcher.topics.contains_key(&config_topic(id, metric)),
                "{id} {metric} still announced"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_gone_while_the_bridge_was_down_are_removed_when_it_starts() {
    if !broker_available("devices_gone_while_the_bridge_was_down_are_removed_when_it_starts") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let before = fake(6).await;
    let held = expected(&before);
    let daemon = bridge(&before, &broker.url(), &["--interval", "1h"], &[]);
    watcher
        .until("the first account's devices", |t| {
            holds_everything(t, &held)
        })
        .await;
    assert!(daemon.stop().success());
    // What other publishers keep on the broker: another bridge's discovery (its own
    // availability), another integration's.
    let others = [
        (
            "homeassistant/sensor/leapcraft_other/co2/config",
            r#"{"name":"CO2","availability_topic":"elsewhere/bridge/availability"}"#,
        ),
        (
            "homeassistant/sensor/zigbee_x/temperature/config",
            r#"{"name":"T"}"#,
        ),
        ("elsewhere/other/state", "{}"),
    ];
    for (topic, payload) in others {
        watcher.publish(topic, payload, true).await;
    }

    // The account has other devices when the bridge starts again.
    let after = fake(3).await;
    let now = expected(&after);
    let gone: Vec<&String> = held.keys().filter(|id| !now.contains_key(*id)).collect();
    assert!(!gone.is_empty());
    let daemon = bridge(&after, &broker.url(), &["--interval", "1h"], &[]);
    daemon
        .wait_log("read what the broker holds of the bridge")
        .await;
    watcher
        .until("the devices gone cleared, the account's there", |t| {
            holds_everything(t, &now)
                && gone.iter().all(|id| {
                    !t.contains_key(&format!("leapcraft/{}/state", segment(id)))
                        && !held[*id]
                            .keys()
                            .any(|m| t.contains_key(&config_topic(id, m)))
                })
        })
        .await;
    for (topic, payload) in others {
        assert_eq!(watcher.topics.get(topic).map(String::as_str), Some(payload));
    }
    // And the log says how many were removed.
    let removed = daemon
        .wait_log(&format!("removed_devices={}", gone.len()))
        .await;
    assert!(
        removed.contains("published discovery and state"),
        "{removed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_does_not_wait_for_a_broker_that_stopped_answering() {
    if !broker_available("a_stop_does_not_wait_for_a_broker_that_stopped_answering") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let fake = fake(300).await;
    let daemon = bridge(&fake, &broker.url(), &["--interval", "1h"], &[]);
    daemon
        .wait_log("read what the broker holds of the bridge")
        .await;
    // Frozen before the first poll's 1,800 messages: the client's window and queue fill,
    // and the bridge waits on the broker when SIGTERM comes.
    broker.freeze();
    daemon.wait_log("published discovery and state").await;
    let status = daemon.stop();
    broker.thaw();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_broker_refuses_end_the_bridge_and_are_never_shown() {
    if !broker_available("credentials_the_broker_refuses_end_the_bridge_and_are_never_shown") {
        return;
    }
    let broker = broker_with_password();
    let fake = fake(3).await;
    let expected = expected(&fake);

    let wrong = "not-the-password-91c2";
    let out = crate::support::leapcraft(&fake)
        .args(["mqtt", "--broker", &broker.url(), "--interval", "1h"])
        .env("LEAPCRAFT_MQTT_USERNAME", "user")
        .env("LEAPCRAFT_MQTT_PASSWORD", wrong)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains(wrong), "the password is never shown");

    // The right one, from a file only its owner reads; every level of logs on.
    let file = broker.dir().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let mut watcher = Watcher::connect(broker.port(), Some(("user", PASSWORD))).await;
    let mut loose = bridge_command(&fake, &broker, &file);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = loose.output().unwrap();
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a password file others can read"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (daemon, _) = Daemon::start(
        "mqtt",
        bridge_command(&fake, &broker, &file),
        "connecting to the broker",
    );
    watcher
        .until("everything, with the password", |t| {
            holds_everything(t, &expected)
        })
        .await;
    assert!(
        watcher.topics.values().all(|p| !p.contains(PASSWORD)),
        "the password is never published"
    );
    daemon.wait_log("poll done").await;
    let logged = daemon.unread_logs().await.join("\n");
    assert!(!logged.contains(PASSWORD), "the password is never logged");
    assert!(daemon.stop().success());
}

/// `leapcraft mqtt` to `broker` as `user`, its password in `file`, logging everything.
fn bridge_command(fake: &FakeServer, broker: &Mosquitto, file: &Path) -> Command {
    let mut cmd = daemon_command(
        fake.base_url(),
        fake.api_key(),
        &[
            "mqtt",
            "--broker",
            &broker.url(),
            "--interval",
            "1h",
            "--username",
            "user",
        ],
    );
    cmd.arg("--password-file")
        .arg(file)
        .env("RUST_LOG", "trace");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_broker_with_a_private_ca() {
    if !broker_available("tls_to_a_broker_with_a_private_ca") {
        return;
    }
    // A CA of the test's own, and the broker's certificate for 127.0.0.1 and localhost.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "leapcraft test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();

    let broker = Mosquitto::start_with(
        "allow_anonymous true\ncafile {dir}/ca.pem\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key",
        |dir| {
            std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
            std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
            std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        },
    )
    .unwrap();
    let url = format!("mqtts://localhost:{}", broker.port());
    let fake = fake(2).await;

    // Without the CA, the certificate does not verify: an error, never a downgrade.
    let out = crate::support::leapcraft(&fake)
        .args(["mqtt", "--broker", &url, "--interval", "1h"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("certificate does not verify"), "{stderr}");

    // With it, the bridge publishes; a client checking the same CA sees it all.
    let ca_file = broker.dir().join("ca.pem");
    let ca_arg = ca_file.display().to_string();
    let daemon = bridge(
        &fake,
        &url,
        &["--interval", "1h", "--ca-file", &ca_arg],
        &[],
    );
    daemon.wait_log("connected to the broker").await;
    daemon.wait_log("published discovery and state").await;
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_mqtt_feeds_prometheus_and_the_broker_from_one_poll() {
    if !broker_available("serve_with_mqtt_feeds_prometheus_and_the_broker_from_one_poll") {
        return;
    }
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let fake = fake(5).await;
    let expected = expected(&fake);
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let url = broker.url();
    let exporter = crate::serve::Exporter::start(&fake, &["--interval", "1h", "--mqtt", &url]);
    watcher
        .until("every device on the broker", |t| {
            holds_everything(t, &expected)
        })
        .await;
    let metrics = exporter.metrics().await;
    for id in expected.keys() {
        assert!(
            metrics.contains(&format!("leapcraft_co2_ppm{{physical_id=\"{id}\"}}"))
                || !expected[id].contains_key("co2"),
            "{id} on /metrics"
        );
    }
    assert_eq!(
        fake.counters().requests.get_telemetry,
        expected.len() as u64,
        "one poll for both outputs"
    );
    assert!(exporter.stop().success());
    watcher
        .until("offline on SIGTERM", |t| {
            t.get("leapcraft/bridge/availability").map(String::as_str) == Some("offline")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_keys_from_a_hostile_api_make_safe_distinct_topics() {
    if !broker_available("ids_and_keys_from_a_hostile_api_make_safe_distinct_topics") {
        return;
    }
    use crate::support::{Scripted, device_page, reply};
    let ids: Vec<String> = ["a/b", "a+b", "#", "$SYS/x", "x\ny", "x\ry", "é", "a-2fb"]
        .map(str::to_owned)
        .to_vec();
    let recorded = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let listed = ids.clone();
    let server = Scripted::start(move |req| {
        let (listed, recorded) = (listed.clone(), recorded.clone());
        async move {
            if req.path == "/v1/devices" {
                return device_page(&listed, &req);
            }
            if req.path.starts_with("/v1/telemetry/") {
                return reply(
                    200,
                    serde_json::json!({"timestamp": recorded, "data": {
                        "co2": 600, "a/b": 1, "x}}{{ 7 }}": 2, "+": 3, "'": 4
                    }}),
                );
            }
            reply(200, serde_json::json!([]))
        }
    })
    .await;
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let cmd = daemon_command(
        server.base_url(),
        crate::support::KEY,
        &["mqtt", "--broker", &broker.url(), "--interval", "1h"],
    );
    let (_daemon, _) = Daemon::start("mqtt", cmd, "connecting to the broker");
    let states = |t: &BTreeMap<String, String>| {
        t.keys()
            .filter(|k| k.starts_with("leapcraft/") && k.ends_with("/state"))
            .count()
    };
    let sensors = 5 * ids.len();
    watcher
        .until("every device's state and sensors", |t| {
            states(t) == ids.len()
                && t.keys().filter(|k| k.starts_with("homeassistant/")).count() == sensors
        })
        .await;
    let jinja = minijinja::Environment::new();
    for (topic, payload) in &watcher.topics {
        let levels: Vec<&str> = topic.split('/').collect();
        assert!(
            levels.iter().all(|l| !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')),
            "{topic:?}"
        );
        if levels[0] != "homeassistant" {
            continue;
        }
        let config: Value = serde_json::from_str(payload).unwrap();
        assert!(
            !config["device"]["name"]
                .as_str()
                .unwrap()
                .chars()
                .any(char::is_control)
        );
        let state: Value =
            serde_json::from_str(&watcher.topics[config["state_topic"].as_str().unwrap()]).unwrap();
        let rendered = jinja
            .render_str(
                config["value_template"].as_str().unwrap(),
                minijinja::context! { value_json => state },
            )
            .unwrap();
        let value: Option<f64> = rendered.parse().ok();
        assert!(
            [600.0, 1.0, 2.0, 3.0, 4.0]
                .iter()
                .any(|v| Some(*v) == value),
            "{topic}: {rendered:?}"
        );
    }
}

/// The bridge on a real account: several pages of devices, a rate limit, tokens of seven uses
/// and faults of every kind: every device's state and sensors reach the broker, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_on_a_real_account() {
    if !broker_available("mqtt_on_a_real_account") {
        return;
    }
    let fake = crate::real_account::account(1_100, 1_000.0, 0.03)
        .token_max_uses(7)
        .start()
        .await
        .unwrap();
    let expected = expected(&fake);
    let broker = Mosquitto::start("allow_anonymous true").unwrap();
    let mut watcher = Watcher::connect(broker.port(), None).await;
    let _daemon = bridge(
        &fake,
        &broker.url(),
        &["--interval", "1h", "--max-attempts", "8"],
        &[],
    );
    watcher
        .until("every device's discovery and state", |t| {
            holds_everything(t, &expected)
        })
        .await;
    let states: BTreeSet<&str> = watcher
        .topics
        .keys()
        .filter_map(|t| t.strip_prefix("leapcraft/")?.strip_suffix("/state"))
        .collect();
    let ids: BTreeSet<String> = expected.keys().map(|id| segment(id)).collect();
    assert_eq!(
        states,
        ids.iter().map(String::as_str).collect(),
        "one state per device, no other"
    );
    let sensors: usize = expected.values().map(BTreeMap::len).sum();
    let configs = watcher
        .topics
        .keys()
        .filter(|t| t.starts_with("homeassistant/"))
        .count();
    assert_eq!(configs, sensors, "one sensor per metric, none twice");
}
