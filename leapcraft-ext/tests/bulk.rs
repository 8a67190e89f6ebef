//! The bulk path as a whole, on tokio's paused clock: the device list over several pages
//! feeding calls per device (`device_ids` + `fetch_each`), under the fake's rate limit, the
//! client's pacing and tokens that last a few uses, all at once. Every device is read
//! exactly once, and nothing hangs: each run ends on a (virtual) deadline that fails it.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use leapcraft_ext::{Client, RetryPolicy};
use leapcraft_fake::{FakeServer, RateLimit as ServerLimit};
use leapcraft_test_kit::paused_clock_client;

/// A virtual hour: far more than any run here needs, so reaching it means a hang.
const DEADLINE: Duration = Duration::from_secs(3600);

/// Reads the latest reading of every device through the list, `concurrency` at a time; the
/// devices read, checked to be each device of the fake exactly once.
async fn read_every_device(client: &Client, fake: &FakeServer, concurrency: usize) {
    let each = client.fetch_each(client.device_ids(), concurrency, |client, id| async move {
        client.latest(id).await
    });
    let results: Vec<_> = tokio::time::timeout(DEADLINE, each.collect::<Vec<_>>())
        .await
        .expect("the bulk path hangs: no reading for a virtual hour");
    let mut read = HashSet::new();
    for item in results {
        let (id, reading) = item.expect("the device list is read");
        if let Err(e) = reading {
            panic!("{id}: {e}");
        }
        assert!(read.insert(id.to_string()), "{id} read twice");
    }
    let all: HashSet<String> = (0..fake.dataset().device_count())
        .map(|i| fake.dataset().physical_id(i))
        .collect();
    assert_eq!(read, all, "every device, exactly once");
}

fn fake(devices: usize) -> leapcraft_fake::FakeServerBuilder {
    FakeServer::builder()
        .devices(devices)
        .latency(Duration::from_millis(20))
}

#[tokio::test(start_paused = true)]
async fn several_pages_under_the_servers_limit_and_the_adaptive_pace() {
    let fake = fake(2_000)
        .rate_limit(ServerLimit::per_second(100.0))
        .start()
        .await
        .unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    read_every_device(&client, &fake, 64).await;
    assert!(fake.counters().requests.list_devices >= 2, "several pages");
}

#[tokio::test(start_paused = true)]
async fn several_pages_under_a_fixed_pace() {
    let fake = fake(2_000).start().await.unwrap();
    let client = paused_clock_client(&fake)
        .max_requests_per_second(90.0)
        .build()
        .unwrap();
    read_every_device(&client, &fake, 64).await;
    assert_eq!(fake.counters().too_many_requests, 0);
}

#[tokio::test(start_paused = true)]
async fn tokens_of_a_few_uses_under_concurrency_are_refreshed_not_failed() {
    let fake = fake(250).token_max_uses(7).start().await.unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    read_every_device(&client, &fake, 16).await;
    let stats = client.stats();
    assert!(stats.token_exchanges > 30, "{stats:?}");
    assert_eq!(stats.retries, 0, "a refresh is not a retry: {stats:?}");
}

#[tokio::test(start_paused = true)]
async fn no_retries_still_means_refreshes() {
    let fake = fake(100).token_max_uses(20).start().await.unwrap();
    let client = paused_clock_client(&fake)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    read_every_device(&client, &fake, 1).await;
    assert!(client.stats().token_exchanges >= 5);
}

#[tokio::test(start_paused = true)]
async fn everything_at_once() {
    let fake = fake(2_500)
        .rate_limit(ServerLimit::per_second(150.0))
        .token_max_uses(7)
        .start()
        .await
        .unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    read_every_device(&client, &fake, 32).await;
}
