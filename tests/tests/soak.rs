//! Fault soak: the client against the fake with 20 % of requests failing (every fault kind)
//! and tokens expiring every 25 requests. Every item arrives exactly once, and the fake's
//! counters show the retries and refreshes that made it so, within the retry budget.
//!
//! Bounded to 30 s by construction: each soak runs under `tokio::time::timeout`, with no
//! backoff (a `Sleep` that never waits) and a short per-attempt timeout, so a hang fails the
//! test instead of stalling it. The timeout is a guard, not a timing assertion.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use leapcraft_ext::{Client, DEFAULT_CONCURRENCY, RetryPolicy};
use leapcraft_fake::{CountersSnapshot, FakeServer, FaultKind};
use leapcraft_test_kit::{RecordingSleep, fake_client};

const FAULT_RATE: f64 = 0.2;
const TOKEN_USES: u64 = 25;
/// Attempts per call: a call fails only after 12 faults in a row (0.2^12 ≈ 4e-9 per call).
const MAX_ATTEMPTS: u32 = 12;
const GUARD: Duration = Duration::from_secs(30);

async fn flaky_fake(devices: usize) -> FakeServer {
    FakeServer::builder()
        .devices(devices)
        .fault_rate(FAULT_RATE)
        .fault_kinds(FaultKind::ALL)
        .token_max_uses(TOKEN_USES)
        .record_requests(100_000)
        .start()
        .await
        .expect("the fake starts")
}

fn soak_client(fake: &FakeServer) -> Client {
    fake_client(fake)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::ZERO)
                .with_max_backoff(Duration::ZERO)
                .with_max_retry_after(Duration::ZERO),
        )
        .sleep(RecordingSleep::default())
        // A dropped connection or a truncated body fails at once; this only bounds the
        // unexpected.
        .attempt_timeout(Duration::from_secs(2))
        .overall_timeout(Duration::from_secs(10))
        .build()
        .expect("the client builds")
}

/// What every soak asserts on the counters: faults of every kind were injected, tokens were
/// refreshed, and every extra request had a cause (a fault or a 401), within the budget.
fn assert_budget(c: &CountersSnapshot, requests: u64, calls: u64) {
    for kind in FaultKind::ALL {
        assert!(c.faults.get(kind) > 0, "no {kind} fault injected: {c:#?}");
    }
    assert!(c.token_exchanges > 1, "tokens were refreshed: {c:#?}");
    assert!(c.unauthorized > 0, "expired tokens were refused: {c:#?}");
    assert!(requests > calls, "retries happened: {c:#?}");
    // Each call: at most MAX_ATTEMPTS attempts, plus one resend after a 401.
    let budget = calls * (u64::from(MAX_ATTEMPTS) + 1);
    assert!(requests <= budget, "{requests} requests > budget {budget}");
    // Every fault costs one retry (none exhausted the attempts); every other extra request
    // answers a 401. A truncated 401 is both, so this is an upper bound, the faults alone a
    // lower one.
    let faults = c.faults.total();
    assert!(
        requests >= calls + faults,
        "{requests} < {calls} calls + {faults} faults: {c:#?}"
    );
    assert!(
        requests <= calls + faults + c.unauthorized,
        "{requests} > {calls} calls + {faults} faults + {} 401s: a retry without a cause",
        c.unauthorized
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_exactly_once_through_faults_and_expiring_tokens() {
    const DEVICES: usize = 10_000;
    const PAGE: i64 = 100;
    let fake = flaky_fake(DEVICES).await;
    let client = soak_client(&fake);

    let devices = tokio::time::timeout(GUARD, client.devices().page_size(PAGE).collect())
        .await
        .expect("the soak finishes within 30 s")
        .expect("every page arrives despite the faults");

    let expected: Vec<String> = (0..DEVICES)
        .map(|i| fake.dataset().physical_id(i))
        .collect();
    let got: Vec<String> = devices.iter().map(|d| d.physical_id.to_string()).collect();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no device twice");
    assert_eq!(got.len(), DEVICES, "no device lost");
    assert_eq!(got, expected, "every device, in the dataset's order");
    for (i, d) in devices.iter().enumerate().step_by(97) {
        let want = fake.dataset().device(i);
        assert_eq!(d.name, want.name, "{i}");
        assert_eq!(d.serial, want.serial, "{i}");
        assert_eq!(d.topology_id, want.topology_id, "{i}");
    }

    let c = fake.counters();
    // One call per page asked for (pages overlap, so their number follows the pager's plan):
    // the distinct requests the fake saw.
    let calls = fake
        .recorded_requests()
        .into_iter()
        .filter(|r| r.operation == leapcraft_fake::Operation::ListDevices)
        .map(|r| r.query)
        .collect::<HashSet<_>>()
        .len() as u64;
    assert!(calls > DEVICES as u64 / (2 * PAGE as u64), "{calls} pages");
    assert_eq!(c.requests.get_device + c.requests.get_telemetry, 0);
    assert_budget(&c, c.requests.list_devices, calls);
    eprintln!("devices soak: {c:?}");
    fake.shutdown().await;
}

// With 16 calls sharing a token that lasts 25 requests, the token a call refreshed to can
// expire again before that call's next attempt (after a fault): the transport must refresh
// again (within the retry budget) rather than fail with "still unauthorised".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_latest_reading_exactly_once_through_faults_and_expiring_tokens() {
    const DEVICES: usize = 1_000;
    let fake = flaky_fake(DEVICES).await;
    let client = soak_client(&fake);
    let ids: Vec<String> = (0..DEVICES)
        .map(|i| fake.dataset().physical_id(i))
        .collect();

    let results: Vec<_> = tokio::time::timeout(
        GUARD,
        client
            .latest_many(ids.iter().cloned(), DEFAULT_CONCURRENCY)
            .collect(),
    )
    .await
    .expect("the soak finishes within 30 s");

    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    for (id, result) in &results {
        assert!(seen.insert(id.to_string()), "{id} twice");
        match result {
            Ok(reading) => {
                let i = fake.dataset().find_device(id.as_str()).expect("a known id");
                let want = fake.dataset().latest(i, 0);
                assert_eq!(
                    reading.physical_id.as_ref().map(|p| p.to_string()),
                    Some(want.physical_id.clone())
                );
                assert_eq!(
                    reading
                        .timestamp
                        .map(|t| t.to_string().replace(".000Z", "Z")),
                    Some(want.timestamp.clone()),
                    "{id}"
                );
            }
            Err(e) => failures.push(format!("{id}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(seen.len(), DEVICES, "every device once");
    assert_eq!(
        seen,
        ids.iter().cloned().collect::<HashSet<_>>(),
        "exactly the requested devices"
    );

    let c = fake.counters();
    assert_eq!(c.requests.list_devices, 0);
    assert_budget(&c, c.requests.get_telemetry, DEVICES as u64);
    eprintln!("latest soak: {c:?}");
    fake.shutdown().await;
}

// The combination of a real account, on tokio's paused clock: the device list over two pages
// feeding 64 calls at a time, under a server limit of 100 requests a second (`429` beyond),
// with tokens of 7 uses and 3 % faults of every kind. Every device's reading arrives once;
// a virtual hour without the end is a hang.
#[tokio::test(start_paused = true)]
async fn every_device_of_a_real_account_once_over_pages_a_rate_limit_and_short_tokens() {
    const DEVICES: usize = 2_000;
    let fake = FakeServer::builder()
        .devices(DEVICES)
        .latency(Duration::from_millis(20))
        .rate_limit(leapcraft_fake::RateLimit::per_second(100.0))
        .token_max_uses(7)
        .fault_rate(0.03)
        .fault_kinds(FaultKind::ALL)
        .start()
        .await
        .expect("the fake starts");
    // A call may meet the server's limit (`429`) and injected faults several times in a
    // row: with 8 attempts, one failing on all of them by chance is negligible.
    let client = leapcraft_test_kit::paused_clock_client(&fake)
        .retry_policy(RetryPolicy::default().with_max_attempts(8))
        .build()
        .expect("the client builds");
    let each = client.fetch_each(client.device_ids(), 64, |client, id| async move {
        client.latest(id).await
    });
    let results: Vec<_> = tokio::time::timeout(Duration::from_secs(3600), each.collect())
        .await
        .expect("the bulk path hangs: no end within a virtual hour");
    let mut seen = HashSet::new();
    for item in results {
        let (id, reading) = item.expect("the device list is read");
        if let Err(e) = reading {
            panic!("{id}: {e}");
        }
        assert!(seen.insert(id.to_string()), "{id} twice");
    }
    let all: HashSet<String> = (0..DEVICES)
        .map(|i| fake.dataset().physical_id(i))
        .collect();
    assert_eq!(seen, all, "every device, exactly once");
    let c = fake.counters();
    assert!(c.requests.list_devices >= 2, "several pages: {c:?}");
    assert!(c.too_many_requests > 0 && c.token_exchanges > 100, "{c:?}");
    eprintln!("real-account soak: {c:?}");
    fake.shutdown().await;
}
