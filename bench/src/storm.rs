//! Figure 4: the refresh storm. Many concurrent calls on one client whose token the fake
//! has just expired, with enough latency that all are in flight on the old token before the
//! first `401` returns; the figure is the count of token exchanges the fake saw (one).

use std::time::Instant;

use leapcraft_fake::FakeServer;

use crate::{Result, Row, Sizes, client_for, secs};

pub(crate) async fn figure(s: &Sizes) -> Result<Vec<Row>> {
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
