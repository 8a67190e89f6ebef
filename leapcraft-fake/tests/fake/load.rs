//! Load: many concurrent connections, and the cost of large pages.

use std::time::{Duration, Instant};

use crate::common::*;
use leapcraft_fake::FakeServer;

/// Many clients at once, each on its own connection: every request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let fake = FakeServer::builder()
        .devices(2_000)
        .latency(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let calls = (0..1_000).map(|i| {
        // A fresh client per call: a fresh connection per call.
        let url = format!(
            "{}/telemetry/{}?type=latest",
            fake.base_url(),
            fake.dataset().physical_id(i)
        );
        let t = t.clone();
        async move {
            client()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(200))),
        "{:?}",
        results.iter().find(|r| !matches!(r, Ok(200)))
    );
    let c = fake.counters();
    assert_eq!(c.requests.get_telemetry, 1_000);
    assert!(c.peak_in_flight.get_telemetry > 100, "{c:?}");
}

/// 100,000 devices in pages of 1,000: prints the time per page (run with `--ignored
/// --nocapture`, in release, to see the server's cost per page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn pages_of_a_thousand() {
    let fake = FakeServer::builder()
        .devices(100_000)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let c = client();
    let start = Instant::now();
    let mut n = 0;
    for page in 1..=100 {
        let url = format!("{}/devices?limit=1000&page={page}", fake.base_url());
        let body = c
            .get(url)
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        n += body.len();
    }
    let per_page = start.elapsed() / 100;
    let start = Instant::now();
    let all = c
        .get(format!("{}/devices?limit=-1", fake.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    println!(
        "pages: {per_page:?} per page of 1000 ({n} bytes in all); limit=-1: {:?} for {} bytes",
        start.elapsed(),
        all.len()
    );
}
