//! `leapcraft-bench`: figures for leapcraft-ext against leapcraft-fake, written to
//! `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p leapcraft-bench               # full run, rewrites BENCHMARKS.md
//! cargo run --release -p leapcraft-bench -- --quick    # tiny sizes, prints only
//! cargo run --release -p leapcraft-bench -- --only 5   # figure 5 alone, rewrites its part
//! ```
//!
//! Options: `--quick` (tiny sizes; does not write unless `--out` is given), `--out PATH`
//! (where to write), `--no-write` (print only), `--only 5` or `--only 1,4` (those figures
//! alone). The results go to BENCHMARKS.md in two generated parts: the table of figures 1–4,
//! 6 and 7, rewritten by a run of them all (a partial table only where `--out` says), and
//! figure 5's, rewritten whenever it ran.
//!
//! Every figure is a ratio or a count measured in the same run, so it holds on a noisy
//! machine. The fake runs in this process for the timing and count figures (1, 2 timing, 4,
//! 5, 7); memory and CPU figures (2 RSS, 3) are measured in child processes (this binary
//! re-executed with a hidden subcommand) that talk to the fake served by this process, so
//! neither the fake nor the other mode pollutes them. Figure 7 runs the `leapcraft` binary
//! built beside this one: `cargo build --release -p leapcraft-cli` first.

mod exporter;

mod rate_limits;

mod real_account;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use leapcraft_ext::{Client, DEFAULT_CONCURRENCY};
use leapcraft_fake::FakeServer;
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The markers of the generated parts of BENCHMARKS.md: figures 1–4, 6 and 7; figure 5.
const MAIN: (&str, &str) = (
    "<!-- leapcraft-bench:begin (generated: edit outside these markers) -->",
    "<!-- leapcraft-bench:end -->",
);
const FIGURE_5: (&str, &str) = (
    "<!-- leapcraft-bench:figure-5:begin (generated: edit outside these markers) -->",
    "<!-- leapcraft-bench:figure-5:end -->",
);

/// The sizes of one run.
#[derive(Debug, Clone)]
struct Sizes {
    quick: bool,
    bulk_devices: usize,
    bulk_latency: Duration,
    stream_devices: usize,
    stream_page: i64,
    stream_latency: Duration,
    prefetch: usize,
    /// Child processes measuring figure 3, one after the other: each has its own memory
    /// layout and timing luck, which moves a single child's figure by a few hundredths.
    overhead_children: usize,
    /// Calls per client in each child.
    overhead_calls: usize,
    overhead_rounds: usize,
    overhead_warmup: usize,
    storm_calls: usize,
    storm_latency: Duration,
    rates: rate_limits::RateSizes,
    exporter_devices: usize,
    exporter_latency: Duration,
    /// The fake's rate limit for figure 6, requests a second.
    exporter_rate: f64,
    exporter_scrapes: usize,
    cli_devices: usize,
    cli_latency: Duration,
    /// Runs of the binary; the figure is the median.
    cli_runs: usize,
}

impl Sizes {
    fn full() -> Self {
        Sizes {
            quick: false,
            bulk_devices: 2_000,
            bulk_latency: Duration::from_millis(20),
            stream_devices: 100_000,
            stream_page: 1_000,
            stream_latency: Duration::from_millis(10),
            prefetch: 2,
            overhead_children: 5,
            overhead_calls: 12_000,
            overhead_rounds: 12,
            overhead_warmup: 2_000,
            storm_calls: 1_000,
            storm_latency: Duration::from_millis(50),
            rates: rate_limits::RateSizes::full(),
            exporter_devices: 10_000,
            exporter_latency: Duration::from_millis(20),
            exporter_rate: 100.0,
            exporter_scrapes: 21,
            cli_devices: 1_000,
            cli_latency: Duration::from_millis(20),
            cli_runs: 5,
        }
    }

    fn quick() -> Self {
        Sizes {
            quick: true,
            bulk_devices: 64,
            bulk_latency: Duration::from_millis(5),
            stream_devices: 2_000,
            stream_page: 200,
            stream_latency: Duration::from_millis(2),
            prefetch: 2,
            overhead_children: 2,
            overhead_calls: 200,
            overhead_rounds: 3,
            overhead_warmup: 20,
            storm_calls: 100,
            storm_latency: Duration::from_millis(20),
            rates: rate_limits::RateSizes::quick(),
            exporter_devices: 200,
            exporter_latency: Duration::from_millis(1),
            exporter_rate: 400.0,
            exporter_scrapes: 3,
            cli_devices: 64,
            cli_latency: Duration::from_millis(5),
            cli_runs: 2,
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    id: &'static str,
    what: String,
    measured: String,
    figure: String,
    target: String,
    /// `None` where there is no target (context rows).
    met: Option<bool>,
}

impl Row {
    fn info(id: &'static str, what: impl Into<String>, measured: impl Into<String>) -> Self {
        Row {
            id,
            what: what.into(),
            measured: measured.into(),
            figure: String::new(),
            target: String::new(),
            met: None,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("__rss") => child_rss(&args[1..]),
        Some("__overhead") => child_overhead(&args[1..]),
        _ => run(&args),
    };
    if let Err(e) = outcome {
        eprintln!("leapcraft-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let no_write = args.iter().any(|a| a == "--no-write");
    // `--only 5` or `--only 1,4`: those figures alone.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(|f| f.trim().to_owned()).collect());
    let wanted = |figure: &str| only.as_ref().is_none_or(|f| f.iter().any(|x| x == figure));
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let exe = std::env::current_exe()?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let command = format!(
        "cargo run --release -p leapcraft-bench{}",
        if args.is_empty() {
            String::new()
        } else {
            format!(" -- {}", args.join(" "))
        }
    );
    // A partial table is written only where `--out` says: it would hide the figures that
    // did not run.
    let main_table = only.is_none() || out.is_some();
    let target = match (out, quick || no_write) {
        (Some(path), _) => Some(std::path::PathBuf::from(path)),
        (None, false) => Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("BENCHMARKS.md"),
        ),
        (None, true) => None,
    };

    let started = Instant::now();
    let mut rows = Vec::new();
    let mut figure_5 = None;
    rt.block_on(async {
        if wanted("1") {
            eprintln!("[1/7] latest readings, sequential vs latest_many ...");
            rows.extend(bulk(&sizes).await?);
        }
        if wanted("2") {
            eprintln!("[2/7] streaming, prefetch and peak RSS ...");
            rows.extend(streaming(&sizes, &exe).await?);
        }
        if wanted("3") {
            eprintln!("[3/7] wrapper overhead (CPU per call, in a child process) ...");
            rows.extend(overhead(&sizes, &exe).await?);
        }
        if wanted("4") {
            eprintln!("[4/7] refresh storm ...");
            rows.extend(storm(&sizes).await?);
        }
        if wanted("5") {
            eprintln!("[5/7] rate limits: latest_many against a rate-limited fake ...");
            let started = Instant::now();
            let (rows, timeline) = rate_limits::figure(&sizes).await?;
            figure_5 = Some(format!(
                "{}\nRate over time in the last run, interval by interval:\n\n{timeline}",
                report(&sizes, &rows, &command, started.elapsed())
            ));
        }
        if wanted("6") {
            eprintln!("[6/7] leapcraft serve at scale (a child process) ...");
            rows.extend(exporter::figure(&sizes).await?);
        }
        if wanted("7") {
            eprintln!("[7/7] leapcraft latest --all, end to end through the binary ...");
            rows.extend(cli_latest_all(&sizes, &exe).await?);
        }
        if wanted("8") {
            eprintln!("[8/8] leapcraft latest --all on a real account (pages, limit, short tokens, faults) ...");
            rows.extend(real_account::figure(&sizes, &exe).await?);
        }
        Ok::<_, BoxError>(())
    })?;

    if !rows.is_empty() {
        let report = report(&sizes, &rows, &command, started.elapsed());
        println!("{report}");
        if let Some(path) = target.as_ref().filter(|_| main_table) {
            write_report(path, MAIN, &report)?;
            eprintln!("written to {}", path.display());
        }
    }
    if let Some(report) = figure_5 {
        println!("{report}");
        if let Some(path) = &target {
            write_report(path, FIGURE_5, &report)?;
            eprintln!("figure 5 written to {}", path.display());
        }
    }
    Ok(())
}

/// A fake of `n` devices that answers each request after `latency`, kept precise.
async fn fake_with_latency(n: usize, latency: Duration) -> Result<FakeServer> {
    Ok(FakeServer::builder()
        .devices(n)
        .latency(latency)
        .precise_latency(true)
        .start()
        .await?)
}

fn client_for(fake: &FakeServer) -> Result<Client> {
    Ok(Client::builder()
        .api_key(fake.api_key())
        .base_url(fake.base_url())
        .build()?)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------------
// 1. latest readings: sequential vs latest_many vs the bound
// ---------------------------------------------------------------------------------------

async fn bulk(s: &Sizes) -> Result<Vec<Row>> {
    let n = s.bulk_devices;
    let latency = s.bulk_latency;
    let fake = fake_with_latency(n, latency).await?;
    let client = client_for(&fake)?;
    let ids: Vec<String> = (0..n).map(|i| fake.dataset().physical_id(i)).collect();
    // Token exchange and a first connection, outside both measurements.
    client.latest(ids[0].as_str()).await?;

    let t = Instant::now();
    for id in &ids {
        client.latest(id.as_str()).await?;
    }
    let sequential = t.elapsed();

    fake.reset_counters();
    let t = Instant::now();
    let results: Vec<_> = client
        .latest_many(ids.iter().cloned(), DEFAULT_CONCURRENCY)
        .collect()
        .await;
    let concurrent = t.elapsed();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if failed > 0 || results.len() != n {
        return Err(format!("latest_many: {failed} of {} failed", results.len()).into());
    }
    let counters = fake.counters();
    let bound = latency * n as u32 / DEFAULT_CONCURRENCY as u32;
    let r = ratio(concurrent, bound);
    fake.shutdown().await;
    Ok(vec![
        Row::info(
            "1",
            format!(
                "latest, {n} devices, {} ms latency: sequential",
                latency.as_millis()
            ),
            secs(sequential),
        ),
        Row {
            id: "1",
            what: format!(
                "latest_many at DEFAULT_CONCURRENCY = {DEFAULT_CONCURRENCY} (peak in flight at the fake: {})",
                counters.peak_in_flight.get_telemetry
            ),
            measured: format!(
                "{} (bound {n} × {} ms / {DEFAULT_CONCURRENCY} = {}; {:.1}× faster than sequential)",
                secs(concurrent),
                latency.as_millis(),
                secs(bound),
                ratio(sequential, concurrent)
            ),
            figure: format!("{r:.3}× bound"),
            target: "≤ 1.25× bound".into(),
            met: Some(r <= 1.25),
        },
    ])
}

// ---------------------------------------------------------------------------------------
// 2. streaming: prefetch vs server-bound, and peak RSS streaming vs collecting
// ---------------------------------------------------------------------------------------

async fn streaming(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
    let n = s.stream_devices;
    let page = s.stream_page;
    let latency = s.stream_latency;
    let fake = fake_with_latency(n, latency).await?;
    let client = client_for(&fake)?;
    client.devices().max_items(1).collect().await?;

    let pages = (n as u64).div_ceil(page as u64) as u32;
    let server_bound = latency * pages;
    let time = |prefetch: usize| {
        let client = client.clone();
        async move {
            let t = Instant::now();
            let count = client
                .devices()
                .page_size(page)
                .prefetch(prefetch)
                .items()
                .try_fold(0usize, |count, device| async move {
                    std::hint::black_box(device);
                    Ok(count + 1)
                })
                .await?;
            if count != n {
                return Err(format!("streamed {count} devices, expected {n}").into());
            }
            Ok::<_, BoxError>(t.elapsed())
        }
    };
    let plain = time(0).await?;
    let prefetched = time(s.prefetch).await?;

    let common = [
        fake.base_url().to_owned(),
        fake.api_key().to_owned(),
        n.to_string(),
        page.to_string(),
        s.prefetch.to_string(),
    ];
    let stream_rss: RssReport = child(
        exe,
        "__rss",
        &[&["stream".to_owned()], &common[..]].concat(),
    )
    .await?;
    let collect_rss: RssReport = child(
        exe,
        "__rss",
        &[&["collect".to_owned()], &common[..]].concat(),
    )
    .await?;
    fake.shutdown().await;

    let r_plain = ratio(plain, server_bound);
    let r_pre = ratio(prefetched, server_bound);
    let rss_target_kib = 64 * 1024;
    Ok(vec![
        Row {
            id: "2",
            what: format!(
                "stream {n} devices, pages of {page}, {} ms per page: no prefetch",
                latency.as_millis()
            ),
            measured: format!(
                "{} (server-bound {pages} pages × {} ms = {})",
                secs(plain),
                latency.as_millis(),
                secs(server_bound)
            ),
            figure: format!("{r_plain:.3}× server-bound"),
            target: String::new(),
            met: None,
        },
        Row {
            id: "2",
            what: format!("the same with prefetch({})", s.prefetch),
            measured: secs(prefetched),
            figure: format!("{r_pre:.3}× server-bound"),
            target: "≤ 1.2× server-bound".into(),
            met: Some(r_pre <= 1.2),
        },
        Row {
            id: "2",
            what: format!(
                "peak RSS (VmHWM) streaming items(), pages of {page}, prefetch({}), child process",
                s.prefetch
            ),
            measured: format!(
                "{} peak ({} before the stream, {} growth)",
                mib(stream_rss.peak_kib),
                mib(stream_rss.baseline_kib),
                mib(stream_rss.peak_kib.saturating_sub(stream_rss.baseline_kib))
            ),
            figure: mib(stream_rss.peak_kib),
            target: "≤ 64 MiB".into(),
            met: Some(stream_rss.peak_kib <= rss_target_kib),
        },
        Row::info(
            "2",
            "peak RSS (VmHWM) collect() with page_size(-1) (limit=-1), child process",
            format!(
                "{} peak ({} before, {} growth; {:.1}× the streaming growth)",
                mib(collect_rss.peak_kib),
                mib(collect_rss.baseline_kib),
                mib(collect_rss
                    .peak_kib
                    .saturating_sub(collect_rss.baseline_kib)),
                collect_rss
                    .peak_kib
                    .saturating_sub(collect_rss.baseline_kib) as f64
                    / (stream_rss.peak_kib.saturating_sub(stream_rss.baseline_kib)).max(1) as f64
            ),
        ),
    ])
}

#[derive(Debug, Serialize, Deserialize)]
struct RssReport {
    baseline_kib: u64,
    peak_kib: u64,
    items: usize,
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `__rss stream|collect URL KEY DEVICES PAGE PREFETCH`: reads the devices one way and prints
/// the RSS before and the peak during, as JSON.
fn child_rss(args: &[String]) -> Result<()> {
    let [mode, url, key, n, page, prefetch] = args else {
        return Err("usage: __rss stream|collect URL KEY DEVICES PAGE PREFETCH".into());
    };
    let (n, page, prefetch): (usize, i64, usize) = (n.parse()?, page.parse()?, prefetch.parse()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let client = Client::builder().api_key(key).base_url(url).build()?;
        // Token, connection, first decode: the fixed costs, before the baseline.
        client.devices().max_items(1).collect().await?;
        // Restart the high-water mark from the current RSS (Linux >= 4.0); harmless if refused.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let baseline_kib = status_kib("VmRSS");
        let items = match mode.as_str() {
            "stream" => {
                client
                    .devices()
                    .page_size(page)
                    .prefetch(prefetch)
                    .items()
                    .try_fold(0usize, |count, device| async move {
                        std::hint::black_box(device);
                        Ok(count + 1)
                    })
                    .await?
            }
            "collect" => {
                let all = client.devices().page_size(-1).collect().await?;
                std::hint::black_box(&all);
                all.len()
            }
            other => return Err(format!("unknown mode {other}").into()),
        };
        let peak_kib = status_kib("VmHWM");
        if items != n {
            return Err(format!("{mode}: {items} devices, expected {n}").into());
        }
        Ok::<_, BoxError>(RssReport {
            baseline_kib,
            peak_kib,
            items,
        })
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs this binary with a hidden subcommand and decodes the JSON line it prints.
async fn child<T: serde::de::DeserializeOwned>(
    exe: &std::path::Path,
    sub: &str,
    args: &[String],
) -> Result<T> {
    let mut command = Command::new(exe);
    command.arg(sub).args(args);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    if !output.status.success() {
        return Err(format!(
            "child {sub} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout.lines().last().ok_or("child printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

// ---------------------------------------------------------------------------------------
// 3. wrapper overhead: CPU per device-detail call, ours vs hand-written reqwest + serde_json
// ---------------------------------------------------------------------------------------

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

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

async fn overhead(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
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
fn child_overhead(args: &[String]) -> Result<()> {
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

// ---------------------------------------------------------------------------------------
// 4. refresh storm
// ---------------------------------------------------------------------------------------

async fn storm(s: &Sizes) -> Result<Vec<Row>> {
    // Some latency, so that every call is in flight with the old token before the first
    // 401 comes back: a storm, not a queue.
    let fake = FakeServer::builder()
        .devices(100)
        .latency(s.storm_latency)
        .start()
        .await?;
    let client = client_for(&fake)?;
    let ids: Vec<String> = (0..100).map(|i| fake.dataset().physical_id(i)).collect();
    client.device(ids[0].as_str()).await?;
    fake.reset_counters();
    fake.expire_tokens();
    let t = Instant::now();
    let tasks: Vec<_> = (0..s.storm_calls)
        .map(|i| {
            let client = client.clone();
            let id = ids[i % ids.len()].clone();
            tokio::spawn(async move { client.device(id).await })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        if !matches!(task.await, Ok(Ok(_))) {
            failed += 1;
        }
    }
    let elapsed = t.elapsed();
    let c = fake.counters();
    fake.shutdown().await;
    if failed > 0 {
        return Err(format!("refresh storm: {failed} of {} calls failed", s.storm_calls).into());
    }
    Ok(vec![Row {
        id: "4",
        what: format!(
            "refresh storm: {} concurrent calls on an expired token ({} ms latency)",
            s.storm_calls,
            s.storm_latency.as_millis()
        ),
        measured: format!(
            "{} token exchanges; {} get_device requests, {} answered 401, peak {} in flight; {}",
            c.token_exchanges,
            c.requests.get_device,
            c.unauthorized,
            c.peak_in_flight.get_device,
            secs(elapsed)
        ),
        figure: format!("{} exchange(s)", c.token_exchanges),
        target: "1".into(),
        met: Some(c.token_exchanges == 1),
    }])
}

// ---------------------------------------------------------------------------------------
// 5. `leapcraft latest --all` through the binary
// ---------------------------------------------------------------------------------------

/// The CLI's concurrency in figure 7.
const CLI_CONCURRENCY: u32 = 32;

/// The `leapcraft` binary beside this one (the same profile), if it is there.
fn leapcraft_binary(exe: &std::path::Path) -> Option<std::path::PathBuf> {
    let path = exe.parent()?.join("leapcraft");
    path.is_file().then_some(path)
}

/// Builds the `leapcraft` binary with this one's profile, when cargo runs this program: the
/// figure is then of the current code. (Not in quick mode, which runs inside `cargo test`,
/// whose build a nested one would wait for.)
fn build_leapcraft() -> Result<()> {
    let Ok(cargo) = std::env::var("CARGO") else {
        return Ok(());
    };
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", "leapcraft-cli"])
        .stdout(std::process::Stdio::null());
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command.status()?;
    if !status.success() {
        return Err(format!("building leapcraft failed: {status}").into());
    }
    Ok(())
}

async fn cli_latest_all(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
    let what = |n: usize| {
        format!(
            "leapcraft latest --all, {n} devices, {} ms latency, --concurrency {CLI_CONCURRENCY}: the binary, start to exit (median of {} runs)",
            s.cli_latency.as_millis(),
            s.cli_runs
        )
    };
    if !s.quick {
        build_leapcraft()?;
    }
    let Some(cli) = leapcraft_binary(exe) else {
        if s.quick {
            return Ok(vec![Row::info(
                "5",
                what(s.cli_devices),
                "skipped: the leapcraft binary is not built beside this one",
            )]);
        }
        return Err(
            "figure 7 runs the leapcraft binary, which is not beside this one: \
                    build it with `cargo build --release -p leapcraft-cli`"
                .into(),
        );
    };
    let n = s.cli_devices;
    let latency = s.cli_latency;
    let fake = fake_with_latency(n, latency).await?;
    // Token exchange, the first page of the list, then every reading at the concurrency.
    let bound = latency * 2 + latency * n as u32 / CLI_CONCURRENCY;
    let mut ratios = Vec::new();
    let mut requests = 0;
    for _ in 0..s.cli_runs {
        fake.reset_counters();
        let mut command = Command::new(&cli);
        command
            .env_remove("LEAPCRAFT_API_KEY")
            .env_remove("LEAPCRAFT_BASE_URL")
            .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
            .args(["--format", "json", "latest", "--all"])
            .args(["--concurrency", &CLI_CONCURRENCY.to_string()]);
        let t = Instant::now();
        let output = tokio::task::spawn_blocking(move || command.output()).await??;
        let elapsed = t.elapsed();
        if !output.status.success() {
            return Err(format!(
                "leapcraft latest --all failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let readings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
        if readings.len() != n {
            return Err(format!("leapcraft latest --all printed {} of {n}", readings.len()).into());
        }
        ratios.push(ratio(elapsed, bound));
        requests = fake.counters().requests.total();
    }
    // The same work in this process, through the SDK alone: what the binary adds (process
    // start, output) is the difference.
    let mut sdk_ratios = Vec::new();
    for _ in 0..s.cli_runs {
        let client = client_for(&fake)?;
        let t = Instant::now();
        let results: Vec<_> = client
            .fetch_each(
                client.device_ids(),
                CLI_CONCURRENCY as usize,
                |client, id| async move { client.latest(id).await },
            )
            .try_collect()
            .await?;
        sdk_ratios.push(ratio(t.elapsed(), bound));
        if results.len() != n || results.iter().any(|(_, r)| r.is_err()) {
            return Err("fetch_each: not every reading".into());
        }
    }
    fake.shutdown().await;
    let r = median(&ratios);
    let sdk = median(&sdk_ratios);
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    Ok(vec![
        Row::info(
            "7",
            format!(
                "the same work in-process: Client::fetch_each over Client::device_ids at {CLI_CONCURRENCY}, a new client each run (token exchange included)"
            ),
            format!(
                "{}; median of {} runs {sdk:.3}× bound",
                secs(bound.mul_f64(sdk)),
                s.cli_runs
            ),
        ),
        Row {
            id: "7",
            what: what(n),
            measured: format!(
                "{} (bound: token + first page + {n} × {} ms / {CLI_CONCURRENCY} = {}; runs {lo:.3}–{hi:.3}×; {requests} requests a run)",
                secs(bound.mul_f64(r)),
                latency.as_millis(),
                secs(bound),
            ),
            figure: format!("{r:.3}× bound"),
            target: "≤ 1.10× bound".into(),
            met: Some(r <= 1.10),
        },
    ])
}

// ---------------------------------------------------------------------------------------
// the report
// ---------------------------------------------------------------------------------------

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{cpus} CPUs (nproc), {:.1} GiB memory, {model}",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

fn report(s: &Sizes, rows: &[Row], command: &str, elapsed: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "- Command: `{command}`");
    let _ = writeln!(
        out,
        "- Date: {} (the run took {:.0} s)",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "- Machine: {}", machine());
    let profile = if cfg!(debug_assertions) {
        "debug (figures not representative)"
    } else {
        "release"
    };
    let _ = writeln!(
        out,
        "- Build: {profile}; sizes: {}",
        if s.quick { "quick" } else { "full" }
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| # | benchmark | measured | figure | target | met |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.id, r.what, r.measured, r.figure, r.target, met
        );
    }
    out
}

/// Writes the report between the markers, keeping whatever the file holds outside them.
fn write_report(path: &std::path::Path, (begin, end): (&str, &str), report: &str) -> Result<()> {
    let block = format!("{begin}\n{report}{end}");
    let text = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(begin), old.find(end)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{block}{}", &old[..b], &old[e + end.len()..])
            }
            _ => format!("{old}\n{block}\n"),
        },
        Err(_) => format!("# Benchmarks\n\n{block}\n"),
    };
    std::fs::write(path, text)?;
    Ok(())
}
