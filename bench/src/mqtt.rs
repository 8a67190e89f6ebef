//! Figure 9: `leapcraft mqtt` at 1,000 devices, beside a Python bridge written the way users
//! write one (`bench/python/paho_bridge.py`: requests, paho-mqtt, a thread pool).
//!
//! Each bridge runs as a child process polling the fake served by this process (fresh
//! readings that change every second, so that every poll has a new state for every device)
//! and publishing to a Mosquitto of its own, started here on a free port. A client of this
//! process, subscribed to every topic before the bridge starts, tells when the broker holds
//! every sensor's discovery config and every device's state. Measured, for each bridge:
//!
//! - the time from the first poll's readings (its `poll done` log line) to the moment the
//!   last message the subscriber needed arrived;
//! - the CPU time per poll (user and system, `/proc/PID/stat`) over the polls after the
//!   second, each publishing only states: from one `poll done` line to the one `polls`
//!   later;
//! - the peak RSS (`VmHWM`) at the end.
//!
//! It needs `mosquitto` (Debian's package) and `python3`; the Python packages are installed
//! with pip under the target directory on the first run (`target/bench-python`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leapcraft_fake::FakeServer;
use leapcraft_test_kit::Mosquitto;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;

use crate::{Result, Row, Sizes, leapcraft_cli, mib, no_cli, process_cpu_time};

/// How long a step (the broker starting, a poll, the broker filling) may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// How often the readings change on the fake: more often than the bridges poll.
const READINGS_EVERY: Duration = Duration::from_secs(1);

/// The bridges' concurrency: `leapcraft mqtt`'s default, and the Python pool's workers.
const CONCURRENCY: usize = leapcraft_ext::DEFAULT_CONCURRENCY;

/// A client subscribed to every topic: the last payload of each, and when the last one came.
struct Subscriber {
    messages: mpsc::UnboundedReceiver<(Instant, String, String)>,
    topics: BTreeMap<String, String>,
    last_at: Option<Instant>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn connect(port: u16) -> Result<Self> {
        let mut options = MqttOptions::new("leapcraft-bench-subscriber", "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, messages) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = client.subscribe("#", QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        let _ = tx.send((Instant::now(), p.topic, payload));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(DEADLINE, subscribed)
            .await
            .map_err(|_| "the subscriber could not subscribe")??;
        Ok(Self {
            messages,
            topics: BTreeMap::new(),
            last_at: None,
            task,
        })
    }

    /// Waits until the broker holds every device's state and the discovery config of every
    /// sensor that state names; returns when the last message needed arrived, and the
    /// number of sensors.
    async fn wait_complete(
        &mut self,
        devices: usize,
        prefixes: (&str, &str),
    ) -> Result<(Instant, usize)> {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            // Take what has come, then check: a check per message would cost more than the
            // bridges it measures.
            let first = tokio::time::timeout_at(until, self.messages.recv())
                .await
                .map_err(|_| {
                    format!("the broker did not hold every state and config within {DEADLINE:?}")
                })?
                .ok_or("the subscriber stopped")?;
            self.take(first);
            tokio::time::sleep(Duration::from_millis(20)).await;
            while let Ok(message) = self.messages.try_recv() {
                self.take(message);
            }
            if let Some(sensors) = complete(&self.topics, devices, prefixes)
                && let Some(at) = self.last_at
            {
                return Ok((at, sensors));
            }
        }
    }

    /// The state messages that came since the last call (`prefix`: the topic prefix).
    fn states_since(&mut self, prefix: &str) -> usize {
        let mut states = 0;
        while let Ok((_, topic, _)) = self.messages.try_recv() {
            let node = topic
                .strip_prefix(prefix)
                .and_then(|t| t.strip_prefix('/'))
                .and_then(|t| t.strip_suffix("/state"));
            states += usize::from(node.is_some());
        }
        states
    }

    fn take(&mut self, (at, topic, payload): (Instant, String, String)) {
        self.last_at = Some(at);
        self.topics.insert(topic, payload);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The number of sensors, if `topics` holds `devices` states and the config of each sensor
/// they name (`(discovery prefix, topic prefix)`).
fn complete(
    topics: &BTreeMap<String, String>,
    devices: usize,
    (discovery, prefix): (&str, &str),
) -> Option<usize> {
    let mut states = 0;
    let mut sensors = 0;
    for (topic, payload) in topics {
        let Some(node) = topic
            .strip_prefix(prefix)
            .and_then(|t| t.strip_prefix('/'))
            .and_then(|t| t.strip_suffix("/state"))
        else {
            continue;
        };
        let state: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(payload).ok()?;
        let mut objects = BTreeSet::new();
        for (key, value) in &state {
            match (key.as_str(), value) {
                ("recorded_at", _) => {}
                ("other", serde_json::Value::Object(other)) => {
                    objects.extend(other.keys().map(|k| format!("other_{k}")));
                }
                _ => {
                    objects.insert(key.clone());
                }
            }
        }
        for object in &objects {
            let config = format!("{discovery}/sensor/leapcraft_{node}/{object}/config");
            if topics.get(&config).is_none_or(|c| c.is_empty()) {
                return None;
            }
        }
        states += 1;
        sensors += objects.len();
    }
    (states == devices).then_some(sensors)
}

/// A bridge under measurement; killed when dropped.
struct Bridge {
    child: Child,
    /// When each `poll done` line was read.
    polls: mpsc::UnboundedReceiver<Instant>,
}

impl Bridge {
    fn start(mut command: Command) -> Result<Self> {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, polls) = mpsc::unbounded_channel();
        // Read to the end, so that the bridge never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::io::Result::ok)
            {
                if line.contains("poll done") {
                    let _ = tx.send(Instant::now());
                } else if line.contains("ERROR") || line.contains("Traceback") {
                    eprintln!("  bridge: {line}");
                }
            }
        });
        Ok(Self { child, polls })
    }

    /// Waits for the next `poll done` line.
    async fn poll_done(&mut self) -> Result<Instant> {
        tokio::time::timeout(DEADLINE, self.polls.recv())
            .await
            .map_err(|_| format!("no poll done within {DEADLINE:?}"))?
            .ok_or_else(|| "the bridge ended".into())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one bridge measured.
struct Measured {
    /// From the first poll's readings to the broker holding them all.
    to_broker: Duration,
    /// From the bridge's start to the broker holding them all.
    from_start: Duration,
    sensors: usize,
    cpu_per_poll: Duration,
    /// State messages a poll, as the subscriber received them over the measured polls.
    states_per_poll: f64,
    peak_kib: u64,
}

/// Runs one bridge, made by `command` for a broker on the port it is given, and measures it.
async fn measure(
    s: &Sizes,
    fake: &FakeServer,
    command: impl FnOnce(u16) -> Command,
) -> Result<Measured> {
    let broker = Mosquitto::start("allow_anonymous true")?;
    let mut subscriber = Subscriber::connect(broker.port()).await?;
    let started = Instant::now();
    let mut bridge = Bridge::start(command(broker.port()))?;
    let readings = bridge.poll_done().await?;
    let (held, sensors) = subscriber
        .wait_complete(
            fake.dataset().device_count(),
            ("homeassistant", "leapcraft"),
        )
        .await?;
    // The first poll published the discovery: the CPU is counted from the end of the second.
    bridge.poll_done().await?;
    let cpu_before = process_cpu_time(bridge.child.id());
    subscriber.states_since("leapcraft");
    for _ in 0..s.mqtt_polls {
        bridge.poll_done().await?;
    }
    let cpu = process_cpu_time(bridge.child.id()) - cpu_before;
    // What they published meanwhile (give or take the poll whose line came first).
    let states = subscriber.states_since("leapcraft");
    drop(subscriber);
    let peak_kib = crate::process_status_kib(bridge.child.id(), "VmHWM");
    drop(bridge);
    drop(broker);
    Ok(Measured {
        to_broker: held.saturating_duration_since(readings),
        from_start: held - started,
        sensors,
        cpu_per_poll: cpu / s.mqtt_polls as u32,
        states_per_poll: states as f64 / s.mqtt_polls as f64,
        peak_kib,
    })
}

/// The Python packages of the Python bridge, installed under the target directory if they
/// are not there yet; the directory to put on `PYTHONPATH`.
fn python_packages(exe: &Path) -> Result<PathBuf> {
    let target = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?
        .join("bench-python");
    if !target.join("paho").is_dir() || !target.join("requests").is_dir() {
        eprintln!(
            "  installing paho-mqtt and requests into {} ...",
            target.display()
        );
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&target)
            .arg("-r")
            .arg(python_dir().join("requirements.txt"))
            .status()?;
        if !status.success() {
            return Err(format!("pip install failed: {status}").into());
        }
    }
    Ok(target)
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) async fn figure(s: &Sizes, exe: &Path) -> Result<Vec<Row>> {
    let cli = leapcraft_cli(s, exe)?.ok_or_else(|| no_cli("9"))?;
    let packages = python_packages(exe)?;
    let n = s.mqtt_devices;
    let fake = FakeServer::builder()
        .devices(n)
        .fresh_readings(true)
        .live(READINGS_EVERY)
        .start()
        .await?;
    let interval = s.mqtt_interval.as_secs();

    eprintln!("  leapcraft mqtt ...");
    let rust = measure(s, &fake, |port| {
        let mut command = Command::new(&cli);
        command
            .env_remove("LEAPCRAFT_API_KEY")
            .env_remove("LEAPCRAFT_BASE_URL")
            .env_remove("RUST_LOG")
            .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
            .args(["mqtt", "--broker", &format!("mqtt://127.0.0.1:{port}")])
            .args(["--interval", &format!("{interval}s")])
            .args(["--concurrency", &CONCURRENCY.to_string()]);
        command
    })
    .await?;

    eprintln!("  bench/python/paho_bridge.py ...");
    let python = measure(s, &fake, |port| {
        let mut command = Command::new("python3");
        command
            .env("PYTHONPATH", &packages)
            .arg(python_dir().join("paho_bridge.py"))
            .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
            .args(["--broker", &format!("127.0.0.1:{port}")])
            .args(["--interval", &interval.to_string()])
            .args(["--workers", &CONCURRENCY.to_string()]);
        command
    })
    .await?;
    fake.shutdown().await;

    if rust.sensors != python.sensors {
        return Err(format!(
            "the bridges announced different sensors: {} and {}",
            rust.sensors, python.sensors
        )
        .into());
    }
    let cpu_ratio = python.cpu_per_poll.as_secs_f64() / rust.cpu_per_poll.as_secs_f64().max(1e-6);
    let rss_target_kib = 32 * 1024;
    let polls = s.mqtt_polls;
    Ok(vec![
        Row {
            id: "9",
            what: format!(
                "leapcraft mqtt, {n} devices ({} sensors), a real Mosquitto: from the first poll's readings (its `poll done` line) to a subscriber holding every discovery config and every state",
                rust.sensors
            ),
            measured: format!(
                "{} ({} from the start of the process)",
                ms(rust.to_broker),
                ms(rust.from_start)
            ),
            figure: ms(rust.to_broker),
            target: "≤ 10 s".into(),
            met: Some(rust.to_broker <= Duration::from_secs(10)),
        },
        Row {
            id: "9",
            what: format!(
                "leapcraft mqtt's peak RSS (VmHWM) after {} polls",
                polls + 2
            ),
            measured: mib(rust.peak_kib),
            figure: mib(rust.peak_kib),
            target: "≤ 32 MiB".into(),
            met: Some(rust.peak_kib <= rss_target_kib),
        },
        Row {
            id: "9",
            what: format!(
                "CPU per poll (user + system) over {polls} polls at --interval {interval}s, each reading {n} devices and publishing their new states: leapcraft mqtt vs the Python bridge (requests + paho-mqtt + a pool of {CONCURRENCY} threads)"
            ),
            measured: format!(
                "{} vs {} ({:.0} and {:.0} states a poll reached the subscriber)",
                ms(rust.cpu_per_poll),
                ms(python.cpu_per_poll),
                rust.states_per_poll,
                python.states_per_poll
            ),
            figure: format!("Python uses {cpu_ratio:.1}×"),
            target: "side by side".into(),
            met: None,
        },
        Row::info(
            "9",
            "the Python bridge: to the broker from its `poll done`; peak RSS",
            format!(
                "{} ({} from its start); {}",
                ms(python.to_broker),
                ms(python.from_start),
                mib(python.peak_kib)
            ),
        ),
    ])
}
