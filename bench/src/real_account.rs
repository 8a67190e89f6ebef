//! Figure 8: `leapcraft latest --all` through the binary on the fake set up as a real account:
//! several pages of devices, a server limit (`429` + `Retry-After: 1` beyond it), tokens
//! that expire after 5 s and 2 % faults of every kind (a few `429`s among them); then
//! `leapcraft serve` on the same account; and, with no server limit, the client's own
//! `--max-rps`. Each `latest` run is timed against the ideal, the devices over the rate
//! (`n / rate` s), and the server limit's refusals are counted as a share of all requests
//! (the injected `429` faults apart); `serve` must have every device after its first poll.

use std::time::Duration;

use leapcraft_fake::{FakeServer, FakeServerBuilder, FaultKind, RateLimit};

use crate::exporter::{Exporter, count, value};
use crate::{Result, Row, Sizes, latest_all, leapcraft_cli, no_cli, secs};

/// Calls at once, as a user would run it.
const CONCURRENCY: u32 = 32;
/// What each request takes on the fake, as on a nearby API.
const LATENCY: Duration = Duration::from_millis(20);

/// The fake as a real account: `devices` over several pages, a server limit of `limit`
/// requests a second, tokens that expire after 5 s and 2 % faults of every kind.
fn account(devices: usize, limit: f64) -> FakeServerBuilder {
    FakeServer::builder()
        .devices(devices)
        .latency(LATENCY)
        .precise_latency(true)
        .rate_limit(RateLimit::per_second(limit))
        .token_ttl(Duration::from_secs(5))
        .fault_rate(0.02)
        .fault_kinds(FaultKind::ALL)
}

pub(crate) async fn figure(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
    let (devices, fixed_devices) = if s.quick { (300, 300) } else { (2_500, 2_000) };
    let (limit, fixed_rate) = (150.0, 90.0);
    let cli = leapcraft_cli(s, exe)?.ok_or_else(|| no_cli("8"))?;
    let mut rows = Vec::new();

    let fake = account(devices, limit).start().await?;
    let elapsed = latest_all(&cli, &fake, CONCURRENCY, &[]).await?;
    let ideal = Duration::from_secs_f64(devices as f64 / limit);
    let c = fake.counters();
    let over_limit = c
        .too_many_requests
        .saturating_sub(c.faults.get(FaultKind::TooManyRequests));
    let share = over_limit as f64 / c.requests.total().max(1) as f64;
    let what = format!(
        "leapcraft latest --all --concurrency {CONCURRENCY}, {devices} devices, a server limit of {limit}/s, tokens of 5 s, 2 % faults of every kind: all readings, exit 0"
    );
    let x = elapsed.as_secs_f64() / ideal.as_secs_f64();
    rows.push(Row {
        id: "8",
        what: format!("{what}: time vs the ideal {}", secs(ideal)),
        measured: format!(
            "{} ({} requests, {} token exchanges, {} faults)",
            secs(elapsed),
            c.requests.total(),
            c.token_exchanges,
            c.faults.total()
        ),
        figure: format!("{x:.2}x"),
        target: "≤ 1.5x".into(),
        met: Some(x <= 1.5),
    });
    rows.push(Row {
        id: "8",
        what: format!("{what}: requests over the server's limit"),
        measured: format!("{over_limit} of {}", c.requests.total()),
        figure: format!("{:.1} %", share * 100.0),
        target: "≤ 15 %".into(),
        met: Some(share <= 0.15),
    });
    fake.shutdown().await;

    // `serve` on the same account, its readings fresh (older ones are dropped as stale).
    let fake = account(devices, limit).fresh_readings(true).start().await?;
    let exporter = Exporter::start(&cli, &fake, CONCURRENCY as usize)?;
    exporter.wait_healthy(Duration::from_secs(600)).await?;
    let (_, scrape) = exporter.get("/metrics").await?;
    drop(exporter);
    let c = fake.counters();
    fake.shutdown().await;
    let read = count(&scrape, "leapcraft_reading_timestamp_seconds");
    let failed = value(&scrape, "leapcraft_poll_failed_devices").unwrap_or(f64::NAN);
    let poll = value(&scrape, "leapcraft_poll_duration_seconds").unwrap_or(f64::NAN);
    rows.push(Row {
        id: "8",
        what: format!(
            "leapcraft serve --concurrency {CONCURRENCY} on the same account: devices on /metrics after its first poll"
        ),
        measured: format!(
            "{read} of {devices} after a poll of {poll:.1} s, {failed} failed ({} requests, {} token exchanges, {} faults)",
            c.requests.total(),
            c.token_exchanges,
            c.faults.total()
        ),
        figure: format!("{read} of {devices}"),
        target: "every device in one poll".into(),
        met: Some(read == devices && failed == 0.0),
    });

    let fake = FakeServer::builder()
        .devices(fixed_devices)
        .latency(LATENCY)
        .precise_latency(true)
        .start()
        .await?;
    let elapsed = latest_all(
        &cli,
        &fake,
        CONCURRENCY,
        &["--max-rps", &fixed_rate.to_string()],
    )
    .await?;
    let ideal = Duration::from_secs_f64(fixed_devices as f64 / fixed_rate);
    let x = elapsed.as_secs_f64() / ideal.as_secs_f64();
    rows.push(Row {
        id: "8",
        what: format!(
            "leapcraft latest --all --concurrency {CONCURRENCY} --max-rps {fixed_rate}, {fixed_devices} devices, no server limit: time vs the ideal {}",
            secs(ideal)
        ),
        measured: format!("{} ({} requests)", secs(elapsed), fake.counters().requests.total()),
        figure: format!("{x:.2}x"),
        target: "≤ 1.15x".into(),
        met: Some(x <= 1.15),
    });
    fake.shutdown().await;
    Ok(rows)
}
