//! Figure 3: the wrapper's overhead. CPU time per device-detail call through
//! `leapcraft-ext`'s `Client::device`, through the generated `leapcraft-api` client alone,
//! through a hand-written reqwest + serde_json loop, and through ours with both timeouts off,
//! taking turns in rounds in child processes (this binary's hidden `__overhead` subcommand)
//! against a zero-latency fake in the parent; the figure is the median of the per-round
//! ratios ours / hand-written.

use std::time::{Duration, Instant};

use leapcraft_ext::Client;
use leapcraft_fake::FakeServer;
use serde::{Deserialize, Serialize};

use crate::{BoxError, Result, Row, Sizes, child, median};

#[derive(Debug, Serialize, Deserialize)]
struct OverheadReport {
    calls: usize,
    ours_cpu_us: u64,
    generated_cpu_us: u64,
    raw_cpu_us: u64,
    ours_wall_us: u64,
    raw_wall_us: u64,
    untimed_cpu_us: u64,
    /// Per-round ratios ours/raw, generated/raw, and ours with timeouts off/raw.
    ours_ratios: Vec<f64>,
    generated_ratios: Vec<f64>,
    untimed_ratios: Vec<f64>,
}

impl OverheadReport {
    /// The rounds of two children, pooled.
    fn merge(mut self, other: OverheadReport) -> Self {
        self.calls += other.calls;
        self.ours_cpu_us += other.ours_cpu_us;
        self.generated_cpu_us += other.generated_cpu_us;
        self.raw_cpu_us += other.raw_cpu_us;
        self.ours_wall_us += other.ours_wall_us;
        self.raw_wall_us += other.raw_wall_us;
        self.untimed_cpu_us += other.untimed_cpu_us;
        self.ours_ratios.extend(other.ours_ratios);
        self.generated_ratios.extend(other.generated_ratios);
        self.untimed_ratios.extend(other.untimed_ratios);
        self
    }
}

pub(crate) async fn figure(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
    let fake = FakeServer::builder().devices(1_000).start().await?;
    let mut report: Option<OverheadReport> = None;
    for _ in 0..s.overhead_children {
        let child: OverheadReport = child(
            exe,
            "__overhead",
            &[
                fake.base_url().to_owned(),
                fake.api_key().to_owned(),
                s.overhead_calls.to_string(),
                s.overhead_rounds.to_string(),
                s.overhead_warmup.to_string(),
            ],
        )
        .await?;
        report = Some(match report {
            Some(report) => report.merge(child),
            None => child,
        });
    }
    let report = report.ok_or("no overhead child ran")?;
    let counters = fake.counters();
    fake.shutdown().await;
    let per = |us: u64| us as f64 / report.calls as f64;
    let r = median(&report.ours_ratios);
    let g = median(&report.generated_ratios);
    let u = median(&report.untimed_ratios);
    let spread = |v: &[f64]| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
    };
    let (lo, hi) = spread(&report.ours_ratios);
    Ok(vec![
        Row::info(
            "3",
            format!(
                "device details, {} calls per client in all, zero latency, fake in the parent process: hand-written reqwest + serde_json",
                report.calls
            ),
            format!(
                "{:.1} µs CPU per call ({:.1} µs wall)",
                per(report.raw_cpu_us),
                per(report.raw_wall_us)
            ),
        ),
        Row::info(
            "3",
            "the generated leapcraft-api client alone (no leapcraft-ext transport; token as a default header)",
            format!(
                "{:.1} µs CPU per call; median of rounds {g:.3}× hand-written",
                per(report.generated_cpu_us)
            ),
        ),
        Row {
            id: "3",
            what: format!(
                "leapcraft-ext Client::device (median of {} rounds from {} child processes; rounds {lo:.2}–{hi:.2}×; fake saw {} get_device)",
                report.ours_ratios.len(),
                s.overhead_children,
                counters.requests.get_device
            ),
            measured: format!(
                "{:.1} µs CPU per call ({:.1} µs wall); totals {:.3}×",
                per(report.ours_cpu_us),
                per(report.ours_wall_us),
                report.ours_cpu_us as f64 / report.raw_cpu_us.max(1) as f64
            ),
            figure: format!("{r:.3}× hand-written"),
            target: "≤ 1.15×".into(),
            met: Some(r <= 1.15),
        },
        Row::info(
            "3",
            "the same with both timeouts off (no timer per call: the timeouts' share)",
            format!(
                "{:.1} µs CPU per call; median of rounds {u:.3}× hand-written",
                per(report.untimed_cpu_us)
            ),
        ),
    ])
}

/// user + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass, which is zero-initialised plain data.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The device details, as a hand-written client would decode them.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct RawDevice {
    physical_id: Option<String>,
    name: Option<String>,
    serial: Option<String>,
    topology_id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    meta: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct RawToken {
    token: String,
}

async fn raw_device(
    http: &reqwest::Client,
    base: &reqwest::Url,
    token: &str,
    id: &str,
) -> Result<RawDevice> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| "base URL cannot be a base")?
        .push("devices")
        .push(id);
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The clients the overhead child compares: ours, the generated client alone, the hand-written
/// loop, and ours with both timeouts off.
const MODES: usize = 4;

/// `__overhead URL KEY CALLS ROUNDS WARMUP`: the same device-detail calls through our client,
/// through the generated client alone and through a hand-written loop, taking turns in
/// rounds, on one single-threaded runtime; prints the CPU time of each (this process only:
/// the fake runs in the parent) as JSON.
pub(crate) fn child_overhead(args: &[String]) -> Result<()> {
    let [url, key, calls, rounds, warmup] = args else {
        return Err("usage: __overhead URL KEY CALLS ROUNDS WARMUP".into());
    };
    let (calls, rounds, warmup): (usize, usize, usize) =
        (calls.parse()?, rounds.parse()?, warmup.parse()?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let client = Client::builder().api_key(key).base_url(url).build()?;
        let ids: Vec<String> = client
            .devices()
            .page_size(-1)
            .collect()
            .await?
            .into_iter()
            .map(|d| d.physical_id.to_string())
            .collect();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let base = reqwest::Url::parse(&format!("{url}/"))?;
        let token: RawToken = http
            .post(base.join("auth/client/token")?)
            .json(&serde_json::json!({ "api_key": key }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let base = reqwest::Url::parse(url)?;
        // The generated client alone: no transport, the token as a default header.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", token.token).parse()?,
        );
        // Ours again, without the attempt and overall timeouts: what the timer costs.
        let untimed = Client::builder()
            .api_key(key)
            .base_url(url)
            .attempt_timeout(None)
            .overall_timeout(None)
            .build()?;
        let generated = leapcraft_api::Client::new_with_client(
            url,
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .default_headers(headers)
                .build()?,
            leapcraft_api::Hooks::default(),
        );
        let id = |i: usize| ids[i % ids.len()].as_str();
        let call = |mode: usize, i: usize| {
            let (client, untimed, generated, http, base, token) =
                (&client, &untimed, &generated, &http, &base, &token.token);
            async move {
                match mode {
                    0 => {
                        std::hint::black_box(client.device(id(i)).await?);
                    }
                    3 => {
                        std::hint::black_box(untimed.device(id(i)).await?);
                    }
                    1 => {
                        std::hint::black_box(
                            generated
                                .get_device()
                                .physical_id(id(i))
                                .send()
                                .await?
                                .into_inner(),
                        );
                    }
                    _ => {
                        std::hint::black_box(raw_device(http, base, token, id(i)).await?);
                    }
                }
                Ok::<_, BoxError>(())
            }
        };
        for i in 0..warmup {
            for mode in 0..MODES {
                call(mode, i).await?;
            }
        }
        let only = std::env::var("LEAPCRAFT_BENCH_ONLY").ok();
        let rounds = rounds.max(1);
        let per_round = calls / rounds;
        let mut report = OverheadReport {
            calls: per_round * rounds,
            ours_cpu_us: 0,
            generated_cpu_us: 0,
            raw_cpu_us: 0,
            ours_wall_us: 0,
            raw_wall_us: 0,
            ours_ratios: Vec::new(),
            generated_ratios: Vec::new(),
            untimed_ratios: Vec::new(),
            untimed_cpu_us: 0,
        };
        const NAMES: [&str; MODES] = ["ours", "generated", "raw", "untimed"];
        for round in 0..rounds {
            let mut spent = [(Duration::ZERO, Duration::ZERO); MODES];
            // Rotate which goes first, so drift (caches, frequency, load) hits all alike.
            for k in 0..MODES {
                let mode = (round + k) % MODES;
                // For profiling one client alone: LEAPCRAFT_BENCH_ONLY=ours|generated|raw.
                if only.as_deref().is_some_and(|o| o != NAMES[mode]) {
                    continue;
                }
                let (c0, t0) = (cpu_time(), Instant::now());
                for i in 0..per_round {
                    call(mode, round * per_round + i).await?;
                }
                spent[mode] = (cpu_time() - c0, t0.elapsed());
            }
            report.ours_cpu_us += spent[0].0.as_micros() as u64;
            report.ours_wall_us += spent[0].1.as_micros() as u64;
            report.generated_cpu_us += spent[1].0.as_micros() as u64;
            report.raw_cpu_us += spent[2].0.as_micros() as u64;
            report.raw_wall_us += spent[2].1.as_micros() as u64;
            report.untimed_cpu_us += spent[3].0.as_micros() as u64;
            let raw = spent[2].0.as_secs_f64().max(1e-9);
            report.ours_ratios.push(spent[0].0.as_secs_f64() / raw);
            report.generated_ratios.push(spent[1].0.as_secs_f64() / raw);
            report.untimed_ratios.push(spent[3].0.as_secs_f64() / raw);
        }
        Ok::<_, BoxError>(report)
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
