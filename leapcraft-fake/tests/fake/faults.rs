//! Fault injection actually injects each kind, latency is applied, and peaks are tracked.

use std::time::{Duration, Instant};

use crate::common::*;
use leapcraft_fake::{FakeServer, FaultKind};

async fn faulty(kind: FaultKind) -> (FakeServer, String) {
    let fake = FakeServer::builder()
        .fault_rate(1.0)
        .fault_kinds([kind])
        .start()
        .await
        .unwrap();
    // The token exchange is not subject to faults by default.
    let t = token(&fake).await;
    (fake, t)
}

#[tokio::test]
async fn too_many_requests_has_retry_after() {
    let (fake, t) = faulty(FaultKind::TooManyRequests).await;
    for _ in 0..3 {
        let resp = get(&fake, &t, "/devices").await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["message"].is_string());
    }
    let c = fake.counters();
    assert_eq!(c.faults.too_many_requests, 3);
    assert_eq!(c.faults.total(), 3);
    assert_eq!(c.requests.list_devices, 3);
}

#[tokio::test]
async fn service_unavailable() {
    let (fake, t) = faulty(FaultKind::ServiceUnavailable).await;
    assert_eq!(get(&fake, &t, "/things").await.status(), 503);
    assert_eq!(fake.counters().faults.service_unavailable, 1);
}

#[tokio::test]
async fn internal_error_is_html() {
    let (fake, t) = faulty(FaultKind::InternalErrorHtml).await;
    let resp = get(&fake, &t, "/topologies").await;
    assert_eq!(resp.status(), 500);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("<html>"));
    assert_eq!(fake.counters().faults.internal_error_html, 1);
}

#[tokio::test]
async fn dropped_connection_is_a_connection_error() {
    let (fake, t) = faulty(FaultKind::DroppedConnection).await;
    for _ in 0..2 {
        let err = client()
            .get(format!("{}/devices", fake.base_url()))
            .bearer_auth(&t)
            .send()
            .await
            .expect_err("the connection is dropped");
        assert!(err.is_request() || err.is_connect(), "{err:?}");
        assert!(err.status().is_none());
    }
    let c = fake.counters();
    assert_eq!(c.faults.dropped_connection, 2);
    // The dropped requests are no longer in flight.
    fake.set_fault_rate(0.0);
    get_json(&fake, &t, "/devices").await;
    assert_eq!(fake.counters().peak_in_flight.list_devices, 1);
}

#[tokio::test]
async fn truncated_body_is_a_body_error() {
    let (fake, t) = faulty(FaultKind::TruncatedBody).await;
    let resp = get(&fake, &t, "/devices").await;
    assert_eq!(resp.status(), 200);
    let announced: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(announced > 100);
    let err = resp.bytes().await.expect_err("the body is cut short");
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err:?}"
    );
    assert_eq!(fake.counters().faults.truncated_body, 1);
}

#[tokio::test]
async fn faults_reach_the_token_exchange_only_when_enabled() {
    let fake = FakeServer::builder()
        .fault_rate(1.0)
        .fault_kinds([FaultKind::ServiceUnavailable])
        .fault_token_exchange(true)
        .start()
        .await
        .unwrap();
    assert_eq!(exchange(&fake, fake.api_key()).await.status(), 503);
    fake.set_fault_token_exchange(false);
    assert_eq!(exchange(&fake, fake.api_key()).await.status(), 200);
    let c = fake.counters();
    assert_eq!(
        (
            c.requests.get_access_token,
            c.token_exchanges,
            c.faults.service_unavailable
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn queued_faults_come_first_then_the_rate_applies() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    fake.inject_faults(FaultKind::TooManyRequests, 2);
    fake.inject_faults(FaultKind::InternalErrorHtml, 1);
    assert_eq!(get(&fake, &t, "/things").await.status(), 429);
    assert_eq!(get(&fake, &t, "/things").await.status(), 429);
    assert_eq!(get(&fake, &t, "/things").await.status(), 500);
    assert_eq!(get(&fake, &t, "/things").await.status(), 200);
    // Faulted requests do not use up the token (faults come before authentication).
    let c = fake.counters();
    assert_eq!((c.faults.total(), c.unauthorized), (3, 0));
}

#[tokio::test]
async fn a_fault_rate_gives_a_deterministic_mix_for_a_seed() {
    let run = || async {
        let fake = FakeServer::builder()
            .seed(9)
            .fault_rate(0.5)
            .fault_kinds([FaultKind::TooManyRequests, FaultKind::ServiceUnavailable])
            .start()
            .await
            .unwrap();
        let t = token(&fake).await;
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(get(&fake, &t, "/things").await.status().as_u16());
        }
        (statuses, fake.counters())
    };
    let (a, ca) = run().await;
    let (b, _) = run().await;
    assert_eq!(a, b);
    assert!(
        a.contains(&200) && a.contains(&429) && a.contains(&503),
        "{a:?}"
    );
    assert_eq!(
        ca.faults.total() as usize,
        a.iter().filter(|s| **s != 200).count()
    );
}

#[tokio::test]
async fn latency_is_added_and_concurrency_peaks_are_tracked() {
    for precise in [false, true] {
        let fake = FakeServer::builder()
            .latency(Duration::from_millis(100))
            .precise_latency(precise)
            .start()
            .await
            .unwrap();
        let t = token(&fake).await;
        let start = Instant::now();
        let calls = (0..8).map(|_| get(&fake, &t, "/things"));
        let responses = futures::future::join_all(calls).await;
        assert!(responses.iter().all(|r| r.status() == 200));
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(100),
            "{precise}: {elapsed:?}"
        );
        let c = fake.counters();
        assert_eq!(c.requests.list_things, 8);
        // Eight requests sleeping 100 ms at once: they overlapped.
        assert!(
            c.peak_in_flight.list_things > 1 && c.peak_in_flight.list_things <= 8,
            "{precise}: {c:?}"
        );
        assert_eq!(c.peak_in_flight.get_access_token, 1);
        fake.reset_counters();
        assert_eq!(fake.counters(), Default::default());
    }
}
