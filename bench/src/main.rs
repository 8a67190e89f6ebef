//! `leapcraft-bench`: figures for leapcraft-ext against leapcraft-fake, written to
//! `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p leapcraft-bench               # full run, rewrites BENCHMARKS.md
//! cargo run --release -p leapcraft-bench -- --quick    # tiny sizes, prints only
//! cargo run --release -p leapcraft-bench -- --only 5   # figure 5 alone, rewrites its part
//! ```
//!
//! Options (`--help` lists them and the figures): `--quick` (tiny sizes; does not write
//! unless `--out` is given), `--out PATH` (where to write), `--no-write` (print only),
//! `--only 5` or `--only 1,4` (those figures alone). The results go to BENCHMARKS.md in
//! three generated parts: the table of figures 1–4 and 6–8, rewritten by a run of them all (a
//! partial table only where `--out` says), and figure 5's and figure 9's, each rewritten
//! whenever it ran.
//!
//! Every figure is a ratio or a count measured in the same run, so it holds on a noisy
//! machine. The fake runs in this process for the timing and count figures (1, 2 timing, 4,
//! 5, 7); memory and CPU figures (2 RSS, 3) are measured in child processes (this binary
//! re-executed with a hidden subcommand) that talk to the fake served by this process, so
//! neither the fake nor the other mode pollutes them. Figures 6–9 run the `leapcraft` binary
//! built beside this one (a full run builds it); figure 9 also runs Mosquitto and a Python
//! bridge (`bench/python/`).

mod bulk;

mod cli_latest_all;

mod exporter;

mod mqtt;

mod overhead;

mod rate_limits;

mod real_account;

mod storm;

mod streaming;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use leapcraft_ext::Client;
use leapcraft_fake::FakeServer;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The markers of the generated parts of BENCHMARKS.md: figures 1–4 and 6–8; figure 5.
const MAIN: (&str, &str) = (
    "<!-- leapcraft-bench:begin (generated: edit outside these markers) -->",
    "<!-- leapcraft-bench:end -->",
);
const FIGURE_5: (&str, &str) = (
    "<!-- leapcraft-bench:figure-5:begin (generated: edit outside these markers) -->",
    "<!-- leapcraft-bench:figure-5:end -->",
);
/// The markers of figure 9's part.
const FIGURE_9: (&str, &str) = (
    "<!-- leapcraft-bench:figure-9:begin (generated: edit outside these markers) -->",
    "<!-- leapcraft-bench:figure-9:end -->",
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
    mqtt_devices: usize,
    /// Polls over which figure 9's CPU time is measured.
    mqtt_polls: usize,
    /// The bridges' `--interval` in figure 9.
    mqtt_interval: Duration,
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
            mqtt_devices: 1_000,
            mqtt_polls: 5,
            mqtt_interval: Duration::from_secs(2),
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
            mqtt_devices: 50,
            mqtt_polls: 2,
            mqtt_interval: Duration::from_secs(1),
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
        Some("__rss") => streaming::child_rss(&args[1..]),
        Some("__overhead") => overhead::child_overhead(&args[1..]),
        _ if args.iter().any(|a| a == "--help" || a == "-h") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => check_args(&args).and_then(|()| run(&args)),
    };
    if let Err(e) = outcome {
        eprintln!("leapcraft-bench: {e}");
        std::process::exit(1);
    }
}

/// What `--help` prints.
const USAGE: &str = "\
leapcraft-bench: the figures of BENCHMARKS.md, measured against leapcraft-fake

Usage: cargo run --release -p leapcraft-bench [-- OPTIONS]

Options:
  --quick         tiny sizes; prints only, unless --out is given
  --only LIST     those figures alone, e.g. --only 5 or --only 1,4
  --out PATH      where to write the report (default: BENCHMARKS.md at the workspace root)
  --no-write      print only
  -h, --help      this text

Figures:
  1  latest readings: sequential vs latest_many
  2  streaming: prefetch and peak RSS
  3  wrapper overhead: CPU per call vs hand-written reqwest
  4  refresh storm: token exchanges
  5  rate limits: latest_many against a rate-limited fake
  6  leapcraft serve at scale
  7  leapcraft latest --all through the binary
  8  leapcraft latest --all on a real account (pages, limit, short tokens, faults)
  9  leapcraft mqtt vs a Python bridge (paho-mqtt): to the broker, RSS, CPU per poll;
     needs mosquitto and python3 (pip installs paho-mqtt under target/); not in --quick
     unless named
";

/// Refuses an argument `run` does not know, rather than starting a full run that rewrites
/// BENCHMARKS.md.
fn check_args(args: &[String]) -> Result<()> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" | "--no-write" => {}
            "--out" | "--only" => {
                args.next()
                    .ok_or_else(|| format!("{arg} needs a value (see --help)"))?;
            }
            other => return Err(format!("unknown argument {other:?} (see --help)").into()),
        }
    }
    Ok(())
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
    let named = |figure: &str| only.as_ref().is_some_and(|f| f.iter().any(|x| x == figure));
    let wanted = |figure: &str| only.is_none() || named(figure);
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
    let mut figure_9 = None;
    rt.block_on(async {
        if wanted("1") {
            eprintln!("[1/9] latest readings, sequential vs latest_many ...");
            rows.extend(bulk::figure(&sizes).await?);
        }
        if wanted("2") {
            eprintln!("[2/9] streaming, prefetch and peak RSS ...");
            rows.extend(streaming::figure(&sizes, &exe).await?);
        }
        if wanted("3") {
            eprintln!("[3/9] wrapper overhead (CPU per call, in a child process) ...");
            rows.extend(overhead::figure(&sizes, &exe).await?);
        }
        if wanted("4") {
            eprintln!("[4/9] refresh storm ...");
            rows.extend(storm::figure(&sizes).await?);
        }
        if wanted("5") {
            eprintln!("[5/9] rate limits: latest_many against a rate-limited fake ...");
            let started = Instant::now();
            let (rows, timeline) = rate_limits::figure(&sizes).await?;
            figure_5 = Some(format!(
                "{}\nRate over time in the last run, interval by interval:\n\n{timeline}",
                report(&sizes, &rows, &command, started.elapsed())
            ));
        }
        if wanted("6") {
            eprintln!("[6/9] leapcraft serve at scale (a child process) ...");
            rows.extend(exporter::figure(&sizes, &exe).await?);
        }
        if wanted("7") {
            eprintln!("[7/9] leapcraft latest --all, end to end through the binary ...");
            rows.extend(cli_latest_all::figure(&sizes, &exe).await?);
        }
        if wanted("8") {
            eprintln!("[8/9] leapcraft latest --all on a real account (pages, limit, short tokens, faults) ...");
            rows.extend(real_account::figure(&sizes, &exe).await?);
        }
        // Figure 9 needs Mosquitto, python3 and PyPI: the quick mode (`cargo test`) runs it
        // only when named.
        if (wanted("9") && !quick) || named("9") {
            eprintln!("[9/9] leapcraft mqtt vs a Python bridge, 1,000 devices on a real Mosquitto ...");
            let started = Instant::now();
            let rows = mqtt::figure(&sizes, &exe).await?;
            figure_9 = Some(report(&sizes, &rows, &command, started.elapsed()));
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
    for (figure, markers, report) in [("5", FIGURE_5, figure_5), ("9", FIGURE_9, figure_9)] {
        let Some(report) = report else { continue };
        println!("{report}");
        if let Some(path) = &target {
            write_report(path, markers, &report)?;
            eprintln!("figure {figure} written to {}", path.display());
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

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`); `pid` may be `"self"`. 0 if
/// unreadable.
fn process_status_kib(pid: impl std::fmt::Display, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The CPU time process `pid` has used so far (user and system, from `/proc/PID/stat`, in
/// clock ticks of usually 10 ms). Zero if unreadable.
fn process_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name, in parentheses: utime and stime are the 12th and 13th fields.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
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

/// The median of `values` (NaN for none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `leapcraft` binary the figures run: `$LEAPCRAFT_BIN`, else the one beside this
/// program (the same profile), built first from the current code; `None` when there is none.
fn leapcraft_cli(s: &Sizes, exe: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
    if let Some(path) = std::env::var_os("LEAPCRAFT_BIN") {
        return Ok(Some(path.into()));
    }
    if !s.quick {
        build_leapcraft()?;
    }
    let path = exe.with_file_name("leapcraft");
    Ok(path.is_file().then_some(path))
}

/// One run of `leapcraft latest --all --concurrency N` (after the options `extra`) against
/// `fake`: its time, after checking that it printed every device once and exited 0.
pub(crate) async fn latest_all(
    cli: &std::path::Path,
    fake: &FakeServer,
    concurrency: u32,
    extra: &[&str],
) -> Result<Duration> {
    let n = fake.dataset().device_count();
    let mut command = Command::new(cli);
    command
        .env_remove("LEAPCRAFT_API_KEY")
        .env_remove("LEAPCRAFT_BASE_URL")
        .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
        .args(extra)
        .args(["--format", "json", "latest", "--all"])
        .args(["--concurrency", &concurrency.to_string()]);
    let t = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let elapsed = t.elapsed();
    if !output.status.success() {
        return Err(format!(
            "leapcraft latest --all failed ({}) after {}: {}",
            output.status,
            secs(elapsed),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let readings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
    let ids: std::collections::HashSet<&str> = readings
        .iter()
        .filter_map(|r| r["physical_id"].as_str())
        .collect();
    if readings.len() != n || ids.len() != n {
        return Err(format!(
            "leapcraft latest --all printed {} readings of {} distinct devices, of {n}",
            readings.len(),
            ids.len()
        )
        .into());
    }
    Ok(elapsed)
}

/// The error of a figure that cannot run without the `leapcraft` binary.
fn no_cli(figure: &str) -> BoxError {
    format!(
        "figure {figure} runs the leapcraft binary, which is not beside this one: \
         build it with `cargo build --release -p leapcraft-cli`, or set LEAPCRAFT_BIN"
    )
    .into()
}

/// Builds the `leapcraft` binary with this one's profile, when cargo runs this program: the
/// figures are then of the current code. (Not in quick mode, which runs inside `cargo test`,
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
