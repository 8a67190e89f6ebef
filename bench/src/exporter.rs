//! Figure 6: `leapcraft serve` at scale. The exporter runs as a child process (the
//! `leapcraft` binary beside this one, or `$LEAPCRAFT_BIN`) polling the fake served by this
//! process; its first poll's duration is its own `leapcraft_poll_duration_seconds`, the
//! render time is what a scraper waits for `/metrics`, the memory is the child's peak RSS.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leapcraft_fake::FakeServer;

use crate::{Result, Row, Sizes, mib, secs};

/// The `leapcraft` binary: `$LEAPCRAFT_BIN`, else beside this one (same profile).
fn leapcraft_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LEAPCRAFT_BIN") {
        return Some(path.into());
    }
    let path = std::env::current_exe().ok()?.with_file_name("leapcraft");
    path.is_file().then_some(path)
}

/// The exporter under measurement; killed when dropped.
struct Exporter {
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
    fn start(bin: &PathBuf, fake: &FakeServer, concurrency: usize) -> Result<Self> {
        let mut child = Command::new(bin)
            .env_remove("LEAPCRAFT_API_KEY")
            .env_remove("LEAPCRAFT_BASE_URL")
            .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
            .args(["serve", "--listen", "127.0.0.1:0", "--interval", "1h"])
            .args(["--concurrency", &concurrency.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut first = String::new();
        BufReader::new(child.stderr.take().ok_or("no stderr")?).read_line(&mut first)?;
        let addr = first
            .trim()
            .strip_prefix("leapcraft serve: listening on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .ok_or_else(|| format!("unexpected first line from leapcraft serve: {first}"))?
            .to_owned();
        Ok(Self {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        })
    }

    async fn get(&self, path: &str) -> Result<(u16, String)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Waits for the first successful poll (with an overall deadline).
    async fn wait_healthy(&self, deadline: Duration) -> Result<()> {
        let until = Instant::now() + deadline;
        while self.get("/healthz").await?.0 != 200 {
            if Instant::now() > until {
                return Err(format!("no successful poll within {deadline:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// The value of an unlabelled series in a scrape.
fn value(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn count(scrape: &str, name: &str) -> usize {
    let prefix = format!("{name}{{");
    scrape.lines().filter(|l| l.starts_with(&prefix)).count()
}

pub async fn figure(s: &Sizes) -> Result<Vec<Row>> {
    let n = s.exporter_devices;
    let Some(bin) = leapcraft_bin() else {
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
        .start()
        .await?;
    let with_co2 = (0..n)
        .filter(|&i| !fake.dataset().latest(i, 0).data["co2"].is_null())
        .count();
    let concurrency = leapcraft_ext::DEFAULT_CONCURRENCY;
    let exporter = Exporter::start(&bin, &fake, concurrency)?;
    exporter.wait_healthy(Duration::from_secs(600)).await?;

    let mut times = Vec::new();
    let mut scrape = String::new();
    for _ in 0..s.exporter_scrapes {
        let t = Instant::now();
        let (status, body) = exporter.get("/metrics").await?;
        times.push(t.elapsed());
        if status != 200 {
            return Err(format!("/metrics answered {status}").into());
        }
        scrape = body;
    }
    times.sort();
    let median = times[times.len() / 2];
    let worst = *times.last().ok_or("no scrape")?;
    let peak_kib = exporter.status_kib("VmHWM");
    let rss_kib = exporter.status_kib("VmRSS");
    let requests = fake.counters().requests;
    drop(exporter);
    fake.shutdown().await;

    let poll = value(&scrape, "leapcraft_poll_duration_seconds")
        .map(Duration::from_secs_f64)
        .ok_or("no leapcraft_poll_duration_seconds in the scrape")?;
    let read = count(&scrape, "leapcraft_reading_timestamp_seconds");
    let co2 = count(&scrape, "leapcraft_co2_ppm");
    let failed = value(&scrape, "leapcraft_poll_failed_devices").unwrap_or(f64::NAN);
    let bound = s.exporter_latency * (n as u32).div_ceil(concurrency as u32);
    let render_ms = median.as_secs_f64() * 1000.0;
    Ok(vec![
        Row {
            id: "6",
            what: format!(
                "leapcraft serve, {n} devices: GET /metrics (median of {} scrapes, {:.1} MiB of text)",
                s.exporter_scrapes,
                scrape.len() as f64 / 1024.0 / 1024.0
            ),
            measured: format!(
                "{render_ms:.1} ms median, {:.1} ms worst",
                worst.as_secs_f64() * 1000.0
            ),
            figure: format!("{render_ms:.1} ms"),
            target: "≤ 50 ms".into(),
            met: Some(render_ms <= 50.0),
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
        Row::info(
            "6",
            format!(
                "one poll of {n} devices, {} ms latency, concurrency {concurrency}, no rate limit (the limiter of issue 14 has not landed)",
                s.exporter_latency.as_millis()
            ),
            format!(
                "{} (bound {n} × {} ms / {concurrency} = {}; {:.3}× bound); {read} of {n} devices read, {co2} of {with_co2} CO2 series, {failed} failed; {} get_telemetry requests",
                secs(poll),
                s.exporter_latency.as_millis(),
                secs(bound),
                poll.as_secs_f64() / bound.as_secs_f64(),
                requests.get_telemetry,
            ),
        ),
    ])
}
