//! `leapcraft serve` end to end: the binary polling a fake server started in-process, scraped
//! over HTTP, by `promtool` and by a real Prometheus server (Debian's `prometheus` package;
//! its test says that it skipped where the binary is missing).
//!
//! Waits are for a condition, polled with an overall deadline: never a fixed sleep.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use leapcraft_fake::{FakeServer, FaultKind};
use serde_json::Value;

use crate::support::{Daemon, daemon_command};

/// How long any one condition may take to hold.
const DEADLINE: Duration = Duration::from_secs(45);

/// A fake of `devices` devices whose readings are current (so none is stale): what the
/// long-running commands' tests (`serve`, `mqtt`) poll.
pub(crate) async fn fake(devices: usize) -> FakeServer {
    FakeServer::builder()
        .devices(devices)
        .fresh_readings(true)
        .start()
        .await
        .unwrap()
}

/// A running `leapcraft serve`, and where it listens.
pub(crate) struct Exporter {
    daemon: Daemon,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Exporter {
    /// Starts `leapcraft serve` on a free loopback port, polling `fake`, with `args`.
    pub(crate) fn start(fake: &FakeServer, args: &[&str]) -> Self {
        let args = [&["serve", "--listen", "127.0.0.1:0"], args].concat();
        Self::watch(daemon_command(fake.base_url(), fake.api_key(), &args))
    }

    /// Starts `leapcraft --demo serve` on a free loopback port, with `args`.
    #[cfg(feature = "demo")]
    fn demo(args: &[&str]) -> Self {
        let mut cmd = crate::support::isolated(assert_cmd::cargo::cargo_bin!("leapcraft"));
        cmd.args(["--demo", "serve", "--listen", "127.0.0.1:0"])
            .args(args);
        Self::watch(cmd)
    }

    /// Starts the exporter and follows its log until it says where it listens.
    fn watch(cmd: Command) -> Self {
        let (daemon, line) = Daemon::start("serve", cmd, "listening on http://");
        let addr = line
            .split_once("listening on http://")
            .and_then(|(_, rest)| rest.split_once("/metrics"))
            .map(|(addr, _)| addr)
            .unwrap_or_else(|| panic!("unexpected line: {line}"))
            .parse()
            .unwrap();
        Self {
            daemon,
            addr,
            http: reqwest::Client::new(),
        }
    }

    /// Reads the exporter's log until a line holds `text`, and returns that line.
    async fn wait_log(&self, text: &str) -> String {
        self.daemon.wait_log(text).await
    }

    /// `GET path`: the status and the body.
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub(crate) async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// Scrapes until `holds` says yes, and returns that scrape.
    async fn wait_for(&self, what: &str, holds: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let body = self.metrics().await;
            if holds(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {DEADLINE:?}:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_healthy(&self, healthy: bool) {
        let want = if healthy { 200 } else { 503 };
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (status, body) = self.get("/healthz").await;
            if status == want {
                return;
            }
            assert!(Instant::now() < deadline, "/healthz still {status}: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// SIGTERM, as systemd sends, and how the process exited.
    pub(crate) fn stop(self) -> ExitStatus {
        self.daemon.stop()
    }
}

/// The value of `series` (name and labels, as rendered) in a scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// What the fake serves now: the CO2 of each device that measures it, by physical id.
fn expected_co2(fake: &FakeServer) -> BTreeMap<String, f64> {
    let data = fake.dataset();
    (0..data.device_count())
        .filter_map(|i| {
            let reading = data.latest(i, fake.readings_tick());
            Some((reading.physical_id, reading.data["co2"].as_f64()?))
        })
        .collect()
}

/// A program on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_every_device_from_memory_and_stops_on_sigterm() {
    let fake = fake(25).await;
    // One poll, then none for an hour: every scrape after it must be served from memory.
    let exporter = Exporter::start(&fake, &["--interval", "1h"]);
    exporter.wait_healthy(true).await;
    let poll = exporter.wait_log("poll done").await;
    for field in [
        "INFO",
        "devices=25",
        "readings=25",
        "failed=0",
        "stale=0",
        "duration=",
    ] {
        assert!(poll.contains(field), "{field} in {poll}");
    }
    let before = fake.counters().requests;
    let mut scrape = String::new();
    for _ in 0..5 {
        scrape = exporter.metrics().await;
    }
    assert_eq!(
        fake.counters().requests,
        before,
        "scrapes never call the API"
    );

    let data = fake.dataset();
    for i in 0..data.device_count() {
        let device = data.device(i);
        let info = format!(
            r#"leapcraft_device_info{{physical_id="{}",name="{}",type="{}",serial="{}",topology_id="{}"}}"#,
            device.physical_id,
            device.name.clone().unwrap_or_default(),
            device.kind.unwrap_or_default(),
            device.serial.clone().unwrap_or_default(),
            device
                .topology_id
                .map(|t| t.to_string())
                .unwrap_or_default(),
        );
        assert_eq!(value(&scrape, &info), Some(1.0), "{info} in\n{scrape}");
    }
    let co2 = expected_co2(&fake);
    assert!(co2.len() > 10, "most devices measure CO2");
    for (id, ppm) in &co2 {
        let series = format!(r#"leapcraft_co2_ppm{{physical_id="{id}"}}"#);
        assert_eq!(value(&scrape, &series), Some(*ppm), "{series}");
    }
    assert_eq!(value(&scrape, "leapcraft_up"), Some(1.0));
    assert_eq!(value(&scrape, "leapcraft_poll_failed_devices"), Some(0.0));
    assert_eq!(value(&scrape, "leapcraft_poll_stale_readings"), Some(0.0));
    assert!(value(&scrape, "leapcraft_last_successful_poll_timestamp_seconds").is_some());

    let openmetrics = exporter
        .http
        .get(format!("http://{}/metrics", exporter.addr))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        openmetrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(openmetrics.text().await.unwrap().ends_with("# EOF\n"));

    match on_path("promtool") {
        Some(promtool) => {
            let mut check = Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            check
                .stdin
                .take()
                .unwrap()
                .write_all(scrape.as_bytes())
                .unwrap();
            let out = check.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => eprintln!("SKIPPED promtool check metrics: promtool is not on PATH"),
    }

    let status = exporter.stop();
    assert!(status.success(), "SIGTERM ends it cleanly: {status:?}");
}

#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_current_readings_with_no_account() {
    let exporter = Exporter::demo(&["--interval", "1s"]);
    let scrape = exporter
        .wait_for("the demo's CO2 readings", |m| {
            value(m, "leapcraft_up") == Some(1.0) && m.contains("\nleapcraft_co2_ppm{")
        })
        .await;
    // Readings are stamped as of the demo's start: none is stale.
    let devices = scrape
        .lines()
        .filter(|l| l.starts_with("leapcraft_device_info{"))
        .count();
    let read = scrape
        .lines()
        .filter(|l| l.starts_with("leapcraft_reading_timestamp_seconds{"))
        .count();
    assert!(devices > 0);
    assert_eq!(read, devices, "{scrape}");
    let status = exporter.stop();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_and_expired_tokens_leave_it_up_truthful_and_catching_up() {
    let fake = fake(12).await;
    // Two attempts per call: a refused token is refreshed and the request resent within them;
    // an outage costs each poll one retry per device.
    let mut exporter = Exporter::start(&fake, &["--interval", "1s", "--max-attempts", "2"]);
    exporter.wait_healthy(true).await;
    let first = exporter.metrics().await;
    let (id, ppm) = expected_co2(&fake).into_iter().next().unwrap();
    let co2 = format!(r#"leapcraft_co2_ppm{{physical_id="{id}"}}"#);
    assert_eq!(value(&first, &co2), Some(ppm));

    // The API answers 503 to everything, for a while.
    fake.set_fault_kinds([FaultKind::ServiceUnavailable]);
    fake.set_fault_rate(1.0);
    let down = exporter
        .wait_for("leapcraft_up 0 after three failed intervals", |m| {
            value(m, "leapcraft_up") == Some(0.0)
        })
        .await;
    exporter.wait_healthy(false).await;
    let warning = exporter.wait_log("devices could not be read").await;
    assert!(warning.contains("WARN"), "{warning}");
    // The last poll to finish failed devices: all of them, or (when polls outlast the
    // interval on a loaded machine) the one that straddled the outage's start.
    let failed = value(&down, "leapcraft_poll_failed_devices").unwrap();
    assert!(failed > 0.0 && failed <= 12.0, "{failed}");
    let unavailable = r#"leapcraft_api_requests_total{operation="get_telemetry",status="503"}"#;
    assert!(value(&down, unavailable).unwrap_or(0.0) >= 12.0, "{down}");
    let exchanged = value(&down, "leapcraft_token_exchanges_total").unwrap();
    assert_eq!(exchanged, 1.0, "one token so far");
    // What was read is still served while it is not stale, by its own timestamp.
    assert_eq!(value(&down, &co2), Some(ppm));
    assert!(exporter.is_running());

    // The API comes back with new readings, and refuses the tokens it issued before.
    fake.advance_readings();
    fake.expire_tokens();
    let exchanges = fake.counters().token_exchanges;
    fake.set_fault_rate(0.0);
    let (_, new_ppm) = expected_co2(&fake)
        .into_iter()
        .find(|(i, _)| *i == id)
        .unwrap();
    // A poll that straddled the outage's end succeeds in part; wait for one that read all.
    let back = exporter
        .wait_for(
            "fresh readings, leapcraft_up 1, a poll without failures",
            |m| {
                value(m, "leapcraft_up") == Some(1.0)
                    && value(m, &co2) == Some(new_ppm)
                    && value(m, "leapcraft_poll_failed_devices") == Some(0.0)
            },
        )
        .await;
    exporter.wait_healthy(true).await;
    exporter.wait_log("polls recovered").await;
    assert!(fake.counters().token_exchanges > exchanges, "a new token");
    assert!(value(&back, "leapcraft_token_exchanges_total").unwrap() > exchanged);
    let ok = r#"leapcraft_api_requests_total{operation="get_telemetry",status="200"}"#;
    assert!(value(&back, ok).unwrap() >= 24.0, "{back}");
    assert!(
        fake.counters().unauthorized > 0,
        "the old token was refused"
    );
    assert_eq!(value(&back, "leapcraft_poll_failed_devices"), Some(0.0));

    let status = exporter.stop();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_whose_readings_are_all_stale_is_unhealthy_and_says_why() {
    // The fake's readings are stamped 2026-03-29: months old.
    let fake = FakeServer::builder().devices(6).start().await.unwrap();
    let exporter = Exporter::start(&fake, &["--interval", "1h", "--stale-after", "1h"]);
    let poll = exporter.wait_log("poll done").await;
    assert!(poll.contains("stale=6"), "{poll}");
    let warning = exporter.wait_log("not healthy").await;
    assert!(warning.contains("--stale-after"), "{warning}");
    let (status, body) = exporter.get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no reading is fresh"), "{body}");
    let scrape = exporter.metrics().await;
    assert_eq!(value(&scrape, "leapcraft_up"), Some(0.0), "{scrape}");
    assert_eq!(value(&scrape, "leapcraft_poll_stale_readings"), Some(6.0));
    assert!(!scrape.contains("leapcraft_co2_ppm"));
    drop(exporter);

    // Told that readings stay fresh for most of a year, the same account is healthy.
    let exporter = Exporter::start(&fake, &["--interval", "1h", "--stale-after", "360d"]);
    exporter.wait_healthy(true).await;
    let scrape = exporter.metrics().await;
    assert_eq!(value(&scrape, "leapcraft_poll_stale_readings"), Some(0.0));
    assert!(scrape.contains("leapcraft_co2_ppm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_slows_it_down_is_logged_with_the_rate_learned() {
    let fake = FakeServer::builder()
        .devices(40)
        .fresh_readings(true)
        .rate_limit(leapcraft_fake::RateLimit::per_second(20.0).with_burst(2))
        .start()
        .await
        .unwrap();
    let exporter = Exporter::start(&fake, &["--interval", "1h", "--concurrency", "16"]);
    let poll = exporter.wait_log("poll done").await;
    assert!(
        poll.contains("readings=40") && poll.contains("/s"),
        "{poll}"
    );
    let warning = exporter.wait_log("slow down").await;
    assert!(
        warning.contains("WARN") && warning.contains("answers_429="),
        "{warning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_gets_every_device() {
    let Some(prometheus) = on_path("prometheus") else {
        assert!(
            std::env::var_os("LEAPCRAFT_TEST_REQUIRE_REAL").is_none(),
            "the `prometheus` binary is not on PATH (Debian: apt-get install prometheus)"
        );
        eprintln!(
            "SKIPPED a_real_prometheus_gets_every_device: the `prometheus` binary is not on \
             PATH (Debian: apt-get install prometheus)"
        );
        return;
    };
    let fake = fake(25).await;
    let exporter = Exporter::start(&fake, &["--interval", "1h"]);
    exporter.wait_healthy(true).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: leapcraft\n    static_configs:\n      \
             - targets: ['{}']\n",
            exporter.addr
        ),
    )
    .unwrap();
    // Prometheus cannot report a port it picked: take a free one and hand it over.
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct KillOnDrop<'a>(&'a mut Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = KillOnDrop(&mut server);

    let expected = expected_co2(&fake);
    let query = format!("http://{web}/api/v1/query?query=leapcraft_co2_ppm");
    let deadline = Instant::now() + DEADLINE;
    let series = loop {
        // Refused until Prometheus listens; empty until its first scrape.
        if let Ok(response) = exporter.http.get(&query).send().await
            && let Ok(answer) = response.json::<Value>().await
            && let Some(result) = answer["data"]["result"].as_array()
            && result.len() == expected.len()
        {
            break result.clone();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has not got every device's CO2 within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut seen = BTreeMap::new();
    for s in &series {
        let labels = &s["metric"];
        assert_eq!(labels["__name__"], "leapcraft_co2_ppm");
        assert_eq!(labels["job"], "leapcraft");
        assert_eq!(labels["instance"], exporter.addr.to_string());
        let id = labels["physical_id"].as_str().unwrap().to_owned();
        let ppm: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        seen.insert(id, ppm);
    }
    assert_eq!(seen, expected);
    let status = exporter.stop();
    assert!(status.success(), "{status:?}");
}

/// Idle clients cannot use up the exporter's connections: past its cap new ones are closed,
/// and those that send nothing are closed after a timeout, so a scrape gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_a_scrape_gets_through() {
    use tokio::io::AsyncReadExt;

    let fake = fake(3).await;
    let exporter = Exporter::start(&fake, &["--interval", "1h"]);
    exporter.wait_healthy(true).await;
    // More idle connections than the exporter keeps open.
    let mut idle = Vec::new();
    for _ in 0..600 {
        idle.push(tokio::net::TcpStream::connect(exporter.addr).await.unwrap());
    }
    let deadline = Instant::now() + DEADLINE;
    let scraped = loop {
        let fresh = reqwest::Client::new();
        let attempt = fresh
            .get(format!("http://{}/metrics", exporter.addr))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(response) = attempt
            && response.status().is_success()
        {
            break response.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no scrape got through the idle connections"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(scraped.contains("leapcraft_up"));
    // Every idle connection was closed by the exporter (end of stream, or reset).
    for mut connection in idle {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(DEADLINE, connection.read(&mut byte))
            .await
            .expect("the exporter closes idle connections");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}
