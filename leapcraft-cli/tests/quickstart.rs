//! The quickstart (`cargo run --example quickstart`) runs in CI: its walkthrough, compiled
//! here from the example's own source, against a fake started by the test.

#[allow(dead_code)] // the example's `main`: its walkthrough is what runs here
#[path = "../../leapcraft-ext/examples/quickstart.rs"]
mod quickstart;

use leapcraft_ext::Client;
use leapcraft_fake::FakeServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_walks_through_every_family() {
    let fake = FakeServer::builder().start().await.unwrap();
    let client = Client::builder()
        .api_key(fake.api_key())
        .base_url(fake.base_url())
        .build()
        .unwrap();
    quickstart::walkthrough(&client)
        .await
        .expect("the quickstart runs");

    let seen = fake.counters().requests;
    assert!(seen.list_devices >= 1, "{seen:?}");
    assert!(
        seen.get_telemetry >= 2,
        "latest and a week of averages: {seen:?}"
    );
    assert_eq!(seen.list_topologies, 1, "{seen:?}");
    assert!(seen.list_notifications >= 1, "{seen:?}");
    assert_eq!(seen.list_things, 1, "{seen:?}");
    assert_eq!(seen.get_device, 1, "the typed 404: {seen:?}");
}
