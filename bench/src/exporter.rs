//! Figure 6: `leapcraft serve` at scale. The exporter runs as a child process (the
//! `leapcraft` binary beside this one, or `$LEAPCRAFT_BIN`) polling the fake served by this
//! process, the fake limited to a rate (100 requests a second in the full run); its first
//! poll's duration is its own `leapcraft_poll_duration_seconds`; a
//! scrape's cost is the exporter's CPU time per scrape (what a scraper waits for on an idle
//! core; the wall times, which a busy machine stretches, are shown beside it); the memory
//! is the child's peak RSS.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leapcraft_fake::{FakeServer, RateLimit};

use crate::{Result, Row, Sizes, leapcraft_cli, mib, secs};

/// The exporter under measurement; killed when dropped.
pub(crate) struct Exporter {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    /// Starts `leapcraft serve` on `fake`, polling once an hour: its first poll is the one
    /// measured.
    pub(crate) fn start(bin: &Path, fake: &FakeServer, concurrency: usize) -> Result<Self> {
        let mut child = Command::new(bin)
            .env_remove("LEAPCRAFT_API_KEY")
            .env_remove("LEAPCRAFT_BASE_URL")
            .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
            .args(["serve", "--listen", "127.0.0.1:0", "--interval", "1h"])
            .args(["--concurrency", &concurrency.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // Its log says where it listens; the rest of the log is drained, so that the
        // exporter never blocks on a full pipe.
        let mut log = BufReader::new(child.stderr.take().ok_or("no stderr")?);
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if log.read_line(&mut line)? == 0 {
                return Err("leapcraft serve ended before saying where it listens".into());
            }
            if let Some((_, rest)) = line.trim().split_once("listening on http://") {
                break rest.trim_end_matches("/metrics").to_owned();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        Ok(Self {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<(u16, String)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Waits for the first successful poll (with an overall deadline).
    pub(crate) async fn wait_healthy(&self, deadline: Duration) -> Result<()> {
        let until = Instant::now() + deadline;
        while self.get("/healthz").await?.0 != 200 {
            if Instant::now() > until {
                return Err(format!("no successful poll within {deadline:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The CPU time the exporter has used so far (user and system, from `/proc`).
    fn cpu_time(&self) -> Duration {
        crate::process_cpu_time(self.child.id())
    }

    fn status_kib(&self, field: &str) -> u64 {
        crate::process_status_kib(self.child.id(), field)
    }
}

/// The value of an unlabelled series in a scrape.
pub(crate) fn value(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The number of labelled series of metric `name` in a scrape.
pub(crate) fn count(scrape: &str, name: &str) -> usize {
    let prefix = format!("{name}{{");
    scrape.lines().filter(|l| l.starts_with(&prefix)).count()
}

pub async fn figure(s: &Sizes, exe: &Path) -> Result<Vec<Row>> {
    let n = s.exporter_devices;
    let Some(bin) = leapcraft_cli(s, exe)? else {
        return Ok(vec![Row::info(
            "6",
            "leapcraft serve: not measured",
            "no `leapcraft` binary beside this one: `cargo build --release -p leapcraft-cli` first, or set LEAPCRAFT_BIN",
        )]);
    };
    let fake = FakeServer::builder()
        .devices(n)
        .fresh_readings(true)
        .latency(s.exporter_latency)
        .precise_latency(true)
        .rate_limit(RateLimit::per_second(s.exporter_rate))
        .start()
        .await?;
    let with_co2 = (0..n)
        .filter(|&i| !fake.dataset().latest(i, 0).data["co2"].is_null())
        .count();
    let concurrency = leapcraft_ext::DEFAULT_CONCURRENCY;
    let exporter = Exporter::start(&bin, &fake, concurrency)?;
    exporter.wait_healthy(Duration::from_secs(600)).await?;

    // The body is rendered whole before the response starts: the time to the response's
    // headers is the render (plus a loopback round trip); the rest is the transfer.
    let cpu_before = exporter.cpu_time();
    let mut rendered = Vec::new();
    let mut whole = Vec::new();
    let mut scrape = String::new();
    for _ in 0..s.exporter_scrapes {
        let t = Instant::now();
        let response = exporter
            .http
            .get(format!("{}/metrics", exporter.base))
            .send()
            .await?;
        rendered.push(t.elapsed());
        if response.status() != 200 {
            return Err(format!("/metrics answered {}", response.status()).into());
        }
        scrape = response.text().await?;
        whole.push(t.elapsed());
    }
    // The exporter does nothing else meanwhile (its next poll is an hour away): its CPU time
    // is the scrapes', whatever else the machine is doing.
    let cpu_per_scrape = (exporter.cpu_time() - cpu_before) / s.exporter_scrapes as u32;
    rendered.sort();
    whole.sort();
    let median = rendered[rendered.len() / 2];
    let worst = *rendered.last().ok_or("no scrape")?;
    let whole_median = whole[whole.len() / 2];
    let peak_kib = exporter.status_kib("VmHWM");
    let rss_kib = exporter.status_kib("VmRSS");
    let counters = fake.counters();
    let requests = counters.requests;
    drop(exporter);
    fake.shutdown().await;

    let poll = value(&scrape, "leapcraft_poll_duration_seconds")
        .map(Duration::from_secs_f64)
        .ok_or("no leapcraft_poll_duration_seconds in the scrape")?;
    let read = count(&scrape, "leapcraft_reading_timestamp_seconds");
    let co2 = count(&scrape, "leapcraft_co2_ppm");
    let failed = value(&scrape, "leapcraft_poll_failed_devices").unwrap_or(f64::NAN);
    // At the fake's limit, every request of the poll takes 1 / rate: the devices' latest
    // readings, and the few list pages and the token exchange on top (counted in the ratio).
    let ideal = Duration::from_secs_f64(n as f64 / s.exporter_rate);
    let poll_ratio = poll.as_secs_f64() / ideal.as_secs_f64();
    let allowed = value(&scrape, "leapcraft_api_allowed_request_rate").unwrap_or(f64::NAN);
    let render_ms = median.as_secs_f64() * 1000.0;
    let cpu_ms = cpu_per_scrape.as_secs_f64() * 1000.0;
    Ok(vec![
        Row {
            id: "6",
            what: format!(
                "leapcraft serve, {n} devices: GET /metrics, {} scrapes of {:.1} MiB of text: the exporter's CPU time per scrape",
                s.exporter_scrapes,
                scrape.len() as f64 / 1024.0 / 1024.0
            ),
            measured: format!(
                "{cpu_ms:.1} ms CPU per scrape; wall: rendered (to the response's headers) in {render_ms:.1} ms median, {:.1} ms worst, whole scrape {:.1} ms median",
                worst.as_secs_f64() * 1000.0,
                whole_median.as_secs_f64() * 1000.0
            ),
            figure: format!("{cpu_ms:.1} ms"),
            target: "≤ 50 ms".into(),
            met: Some(cpu_ms <= 50.0),
        },
        Row {
            id: "6",
            what: format!(
                "the exporter's peak RSS (VmHWM) after its first poll and the scrapes, {n} devices"
            ),
            measured: format!("{} peak, {} now", mib(peak_kib), mib(rss_kib)),
            figure: mib(peak_kib),
            target: "≤ 64 MiB".into(),
            met: Some(peak_kib <= 64 * 1024),
        },
        Row {
            id: "6",
            what: format!(
                "one poll of {n} devices, the fake limited to {} requests a second ({} ms latency), default concurrency {concurrency} and the adaptive rate limiter",
                s.exporter_rate,
                s.exporter_latency.as_millis()
            ),
            measured: format!(
                "{} (ideal {n} / {} = {}); {read} of {n} devices read, {co2} of {with_co2} CO2 series, {failed} failed; {} requests in all ({} get_telemetry), {} answered 429; the client allowed {allowed:.1} requests a second at the end",
                secs(poll),
                s.exporter_rate,
                secs(ideal),
                requests.total(),
                requests.get_telemetry,
                counters.too_many_requests,
            ),
            figure: format!("{poll_ratio:.3}× ideal"),
            target: "≤ 1.1× ideal, no device missing".into(),
            met: Some(poll_ratio <= 1.1 && read == n && co2 == with_co2),
        },
    ])
}
