//! The whole bulk path through the binary, on the fake set up as a real account: several
//! pages of devices, a request-rate limit (`429` + `Retry-After` beyond it), tokens that last
//! a few uses or a few seconds, and a share of faults of every kind, for `latest --all`,
//! `export` and `serve`. Every device is read exactly once; a run that stops names what it
//! did not read and exits non-zero.
//!
//! Each run of the binary ends on a deadline: a child still running then is killed and the
//! test fails saying it hung (the deadline is a guard, not a timing assertion).

use std::collections::{HashMap, HashSet};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use leapcraft_fake::{FakeServer, FakeServerBuilder, FaultKind, RateLimit};
use serde_json::Value;

use crate::serve::Exporter;
use crate::support::{export_args, leapcraft};

/// Past this, a run hangs.
const DEADLINE: Duration = Duration::from_secs(60);

/// A real account's shape: `devices` over several pages of the SDK's 1,000, `rps` requests a
/// second (beyond: `429`, `Retry-After: 1`), `faults` of every kind, readings current.
pub(crate) fn account(devices: usize, rps: f64, faults: f64) -> FakeServerBuilder {
    FakeServer::builder()
        .devices(devices)
        .rate_limit(RateLimit::per_second(rps))
        .fault_rate(faults)
        .fault_kinds(FaultKind::ALL)
        .fresh_readings(true)
}

/// Runs `cmd` to its end, or kills it at the [`DEADLINE`] and fails naming the hang and what
/// the fake saw by then.
async fn run(fake: &FakeServer, mut cmd: Command, what: &str) -> Output {
    cmd.timeout(DEADLINE);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .unwrap();
    if out.status.code().is_none() && started.elapsed() >= DEADLINE {
        panic!(
            "{what} hangs: killed after {DEADLINE:?}, {} bytes printed; the fake saw {:?}\nstderr: {}",
            out.stdout.len(),
            fake.counters(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Every device of `fake` exactly once in `read`, or a failure naming what is missing or
/// repeated.
fn assert_each_device_once(fake: &FakeServer, read: &[String], what: &str) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for id in read {
        *count.entry(id).or_default() += 1;
    }
    let twice: Vec<&&str> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let all: Vec<String> = (0..fake.dataset().device_count())
        .map(|i| fake.dataset().physical_id(i))
        .collect();
    let missing: Vec<&String> = all
        .iter()
        .filter(|id| !count.contains_key(id.as_str()))
        .collect();
    assert!(
        twice.is_empty() && missing.is_empty(),
        "{what}: {} of {} devices missing (first: {:?}), {} read more than once (first: {:?})",
        missing.len(),
        all.len(),
        missing.first(),
        twice.len(),
        twice.first()
    );
    assert_eq!(read.len(), all.len(), "{what}: nothing else read");
}

/// `latest --all --concurrency N` as JSON: it exits 0 with every device's reading once.
async fn latest_all(fake: &FakeServer, concurrency: usize, extra: &[&str], what: &str) {
    let mut cmd = leapcraft(fake);
    cmd.args(extra).args([
        "--format",
        "json",
        "latest",
        "--all",
        "--concurrency",
        &concurrency.to_string(),
    ]);
    let out = run(fake, cmd, what).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: {} after {:?}; stderr: {stderr}",
        out.status,
        fake.counters()
    );
    let readings: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: not a JSON array ({e}); stderr: {stderr}"));
    let ids: Vec<String> = readings
        .iter()
        .map(|r| r["physical_id"].as_str().expect("a physical_id").to_owned())
        .collect();
    assert_each_device_once(fake, &ids, what);
}

/// Several pages under a server limit, with tokens of 7 uses and 3 % faults of every kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_all_on_a_real_account_with_tokens_of_a_few_uses() {
    let fake = account(1_100, 1_000.0, 0.03)
        .token_max_uses(7)
        .start()
        .await
        .unwrap();
    latest_all(&fake, 32, &[], "latest --all, 7-use tokens").await;
    let c = fake.counters();
    assert!(c.requests.list_devices >= 2, "several pages: {c:?}");
    assert!(c.token_exchanges > 50, "tokens were refreshed: {c:?}");
    for kind in FaultKind::ALL {
        assert!(c.faults.get(kind) > 0, "no {kind} fault: {c:?}");
    }
}

/// Several pages under a server limit, with tokens that expire after a second and 3 % faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_all_on_a_real_account_with_tokens_that_expire() {
    let fake = account(1_100, 1_000.0, 0.03)
        .token_ttl(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    latest_all(&fake, 32, &[], "latest --all, 1 s tokens").await;
    let c = fake.counters();
    assert!(
        c.token_exchanges > 1 && c.unauthorized > 0,
        "tokens expired: {c:?}"
    );
}

/// The run that hung after exactly 1,000 readings: the second page never requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_all_over_two_pages_at_a_server_limit_of_100_a_second_does_not_hang() {
    let fake = account(2_000, 100.0, 0.0).start().await.unwrap();
    latest_all(&fake, 64, &[], "latest --all, 2,000 devices at 100/s").await;
    assert!(fake.counters().requests.list_devices >= 2);
}

/// `export` of a week of daily averages: every device's rows, each row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_on_a_real_account() {
    let fake = account(1_100, 1_000.0, 0.03)
        .token_max_uses(7)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("week.csv");
    let mut cmd = leapcraft(&fake);
    cmd.args(export_args(&file));
    let out = run(&fake, cmd, "export").await;
    assert!(
        out.status.success(),
        "export: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let (header, rows) = crate::support::parse_csv(&text);
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (id, timestamp, metric) = (column("physical_id"), column("timestamp"), column("metric"));
    let mut rows_seen = HashSet::new();
    let mut devices = Vec::new();
    for row in &rows {
        let key = (&row[id], &row[timestamp], &row[metric]);
        assert!(rows_seen.insert(key), "a row twice: {row:?}");
        if devices.last() != Some(&row[id]) {
            devices.push(row[id].clone());
        }
    }
    assert_each_device_once(&fake, &devices, "export (each device's rows together)");
}

/// `serve`: every device on `/metrics` within the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_real_account() {
    let fake = account(1_100, 1_000.0, 0.03)
        .token_max_uses(7)
        .start()
        .await
        .unwrap();
    let exporter = Exporter::start(&fake, &["--interval", "1h"]);
    let all: HashSet<String> = (0..fake.dataset().device_count())
        .map(|i| fake.dataset().physical_id(i))
        .collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = exporter.metrics().await;
        let mut exported = Vec::new();
        for line in body
            .lines()
            .filter(|l| l.starts_with("leapcraft_reading_timestamp_seconds{"))
        {
            let id = line
                .split("physical_id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("a physical_id label");
            exported.push(id.to_owned());
        }
        let unique: HashSet<&String> = exported.iter().collect();
        assert_eq!(unique.len(), exported.len(), "a device twice on /metrics");
        if exported.len() == all.len() {
            assert_each_device_once(&fake, &exported, "serve");
            return;
        }
        let missing = all.iter().filter(|id| !unique.contains(id)).count();
        assert!(
            Instant::now() < deadline,
            "serve: {missing} of {} devices not on /metrics after {DEADLINE:?}; the fake saw {:?}",
            all.len(),
            fake.counters()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The key revoked midway: the readings fetched before are printed, each once; the command
/// says how many devices it did not read and exits 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_all_when_the_key_is_revoked_keeps_what_it_read() {
    let fake = FakeServer::builder()
        .devices(250)
        .token_max_uses(7)
        .revoke_key_after_exchanges(3)
        .start()
        .await
        .unwrap();
    let mut cmd = leapcraft(&fake);
    cmd.args(["--format", "json", "latest", "--all", "--concurrency", "16"]);
    let out = run(&fake, cmd, "latest --all, key revoked").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an authentication failure: {stderr}"
    );
    let readings: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the readings read, as JSON ({e}); stderr: {stderr}"));
    let ids: HashSet<&str> = readings
        .iter()
        .map(|r| r["physical_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), readings.len(), "each reading once");
    assert!(!readings.is_empty(), "the readings fetched before are kept");
    let unread = (250 - readings.len()).to_string();
    assert!(
        stderr.contains(&unread),
        "names the {unread} devices not read: {stderr}"
    );
}
