//! Pacing and the retry budget against the fake server, on tokio's paused clock: the fake's
//! rate limit and latency, the client's pacing and its waits all run on the one virtual
//! clock, which moves only when every task waits for it. Nothing here asserts how long
//! anything took, and only the test of a deadline waits for real (for that deadline).

use futures::StreamExt;
use leapcraft_ext::{Client, Error, RateLimit};
use leapcraft_fake::{FakeServer, FaultKind, RateLimit as ServerLimit};
use leapcraft_test_kit::{fake_client, paused_clock_client};
use std::time::Duration;

/// A fake of `devices` devices answering each request after 20 ms, limited to `limit`.
async fn limited_fake(devices: usize, limit: ServerLimit) -> FakeServer {
    FakeServer::builder()
        .devices(devices)
        .latency(Duration::from_millis(20))
        .rate_limit(limit)
        .start()
        .await
        .unwrap()
}

fn ids(fake: &FakeServer, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| fake.dataset().physical_id(i)).collect()
}

/// Reads the latest reading of each id, `concurrency` at a time; how many failed.
async fn read_all(client: &Client, ids: Vec<String>, concurrency: usize) -> usize {
    client
        .latest_many(ids, concurrency)
        .filter(|(_, reading)| std::future::ready(reading.is_err()))
        .count()
        .await
}

#[tokio::test]
async fn the_overall_deadline_ends_a_wait_for_a_turn() {
    let fake = FakeServer::builder().start().await.unwrap();
    // The exchange takes the one turn there is; the call's own turn is a minute later.
    let client = fake_client(&fake)
        .rate_limit(RateLimit::Fixed {
            per_second: 1.0 / 60.0,
            burst: 1,
        })
        .overall_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let call = client.device(fake.dataset().physical_id(0));
    let err = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the deadline, not the turn, ends the call")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                operation: "get_device",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        fake.counters().requests.get_device,
        0,
        "it never got its turn"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fixed_limit_keeps_the_client_within_the_servers() {
    // One token of slack at the server: the two buckets count the same instants, but not in
    // the same floating-point steps.
    let server = ServerLimit::per_second(10.0).with_burst(2);
    let fake = limited_fake(40, server).await;
    let client = paused_clock_client(&fake)
        .max_requests_per_second(10.0)
        .build()
        .unwrap();
    assert_eq!(client.stats().request_rate, Some(10.0));

    assert_eq!(read_all(&client, ids(&fake, 0..40), 8).await, 0);
    let seen = fake.counters();
    assert_eq!(seen.too_many_requests, 0, "{seen:?}");
    assert_eq!(
        seen.requests.total(),
        41,
        "the exchange and one request each"
    );
    let stats = client.stats();
    assert!(
        stats.rate_limited >= 30,
        "the calls waited their turn: {stats:?}"
    );
    assert_eq!(stats.retries, 0);

    // The same unpaced: the server refuses.
    let fake = limited_fake(40, server).await;
    let unpaced = paused_clock_client(&fake)
        .rate_limit(RateLimit::Off)
        .build()
        .unwrap();
    read_all(&unpaced, ids(&fake, 0..40), 8).await;
    assert!(fake.counters().too_many_requests > 0);
    assert_eq!(unpaced.stats().rate_limited, 0);
    assert_eq!(unpaced.stats().request_rate, None);
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_limit_follows_the_servers_down_and_up() {
    let fake = limited_fake(400, ServerLimit::per_second(20.0)).await;
    let client = paused_clock_client(&fake).build().unwrap();
    assert_eq!(client.stats().request_rate, None, "no limit before a 429");
    let mut readings = client.latest_many(ids(&fake, 0..400), 16);
    let mut take = async |n: usize| {
        for _ in 0..n {
            let (id, reading) = readings.next().await.expect("a reading per id");
            assert!(reading.is_ok(), "{id}: {reading:?}");
        }
    };

    // 16 at once are more than the server allows: it answers 429 and the client learns.
    take(100).await;
    let learned = client.stats().request_rate.expect("a rate was learned");
    assert!((10.0..30.0).contains(&learned), "{learned}");

    fake.set_rate_limit(Some(ServerLimit::per_second(10.0)))
        .unwrap();
    take(100).await;
    let down = client.stats().request_rate.unwrap();
    assert!(down < 15.0, "slowed down to the new limit: {down}");

    fake.set_rate_limit(Some(ServerLimit::per_second(40.0)))
        .unwrap();
    take(200).await;
    let up = client.stats().request_rate.unwrap();
    assert!(up > 20.0, "sped up to the new limit: {up}");

    let seen = fake.counters();
    let refused = seen.too_many_requests as f64 / seen.requests.total() as f64;
    assert!(refused < 0.1, "{seen:?}");
    assert!(client.stats().rate_limited > 0);
}

#[tokio::test(start_paused = true)]
async fn a_429_to_the_token_exchange_counts_too() {
    let fake = FakeServer::builder()
        .fault_token_exchange(true)
        .start()
        .await
        .unwrap();
    fake.inject_faults(FaultKind::TooManyRequests, 1);
    let client = paused_clock_client(&fake).build().unwrap();
    client.device(fake.dataset().physical_id(0)).await.unwrap();
    assert_eq!(fake.counters().requests.get_access_token, 2);
    assert!(
        client.stats().request_rate.is_some(),
        "the exchange's 429 slowed it down"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_retry_budget_returns_failures_at_once_until_successes_refill_it() {
    let fake = FakeServer::builder()
        .fault_rate(1.0)
        .fault_kinds([FaultKind::ServiceUnavailable])
        .start()
        .await
        .unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    let clone = client.clone();
    let id = fake.dataset().physical_id(0);
    // Attempts sent; 0 for a call the circuit breaker failed unsent.
    let attempts = |e: Error| match e {
        Error::Api(api) if api.status.as_u16() == 503 => api.attempts,
        Error::Refusing { .. } => 0,
        other => panic!("{other:?}"),
    };

    // Every call fails; each retry spends 5 of the 500 permits, shared by the clones.
    let mut made = Vec::new();
    for _ in 0..60 {
        made.push(attempts(clone.device(id.as_str()).await.unwrap_err()));
    }
    assert_eq!(made[0], 4, "retried while the budget lasted");
    // Once the budget is spent and every answer is still a refusal, the breaker opens:
    // calls fail at once, unsent.
    let open = made
        .iter()
        .position(|&n| n == 0)
        .expect("the breaker opened");
    assert!(open < 40, "{made:?}");
    assert!(made[open..].iter().all(|&n| n == 0), "{made:?}");
    let requests = fake.counters().requests.get_device;
    assert_eq!(requests, made.iter().map(|&n| u64::from(n)).sum::<u64>());
    let err = client.device(id.as_str()).await.unwrap_err();
    assert!(err.is_retryable(), "a retryable failure");
    assert_eq!(
        attempts(err),
        0,
        "the clones share the budget and the breaker"
    );

    // After the cool-down a probe goes; it succeeds, the breaker closes, and ten successes
    // give back ten permits: two retries' worth.
    tokio::time::advance(Duration::from_secs(61)).await;
    fake.set_fault_rate(0.0);
    for _ in 0..10 {
        client.device(id.as_str()).await.unwrap();
    }
    fake.set_fault_rate(1.0);
    assert_eq!(attempts(client.device(id.as_str()).await.unwrap_err()), 3);
}

#[tokio::test(start_paused = true)]
async fn an_api_that_refuses_everything_is_given_up_on_quickly() {
    let fake = FakeServer::builder()
        .devices(500)
        .fault_rate(1.0)
        .fault_kinds([FaultKind::TooManyRequests])
        .start()
        .await
        .unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    let failures: Vec<Error> = client
        .latest_many(ids(&fake, 0..500), 16)
        .filter_map(|(_, reading)| std::future::ready(reading.err()))
        .collect()
        .await;
    assert_eq!(failures.len(), 500, "nothing can succeed");
    let refusing = failures
        .iter()
        .filter(|e| matches!(e, Error::Refusing { .. }))
        .count();
    assert!(refusing > 300, "most fail at once, unsent: {refusing}");
    let sent = fake.counters().requests.total();
    assert!(sent < 400, "fewer requests than devices: {sent}");
    let text = failures
        .iter()
        .find(|e| matches!(e, Error::Refusing { .. }))
        .unwrap()
        .to_string();
    assert!(text.contains("the API has refused every request"), "{text}");
    assert!(text.contains("429"), "{text}");
}
