//! Figure 1: latest readings of every device, one after the other and through
//! `Client::latest_many` at `DEFAULT_CONCURRENCY`, against the fake in this process with a
//! fixed latency per request; `latest_many`'s time is a ratio of the bound (devices ×
//! latency / concurrency), and the fake's peak of requests in flight is shown beside it.

use std::time::Instant;

use futures::StreamExt;
use leapcraft_ext::DEFAULT_CONCURRENCY;

use crate::{Result, Row, Sizes, client_for, fake_with_latency, ratio, secs};

pub(crate) async fn figure(s: &Sizes) -> Result<Vec<Row>> {
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
