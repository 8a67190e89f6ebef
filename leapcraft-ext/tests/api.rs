//! The whole API through `leapcraft-ext`: paging, telemetry, open enums, bulk reads, watching.

use std::num::NonZeroU64;
use std::ops::Range;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use httpmock::prelude::*;
use leapcraft_api::types;
use leapcraft_ext::{
    DeviceKind, Error, NotificationCategory, PhysicalId, Resolution, TelemetryQuery,
};
use leapcraft_httpmock::MockServerExt;
use leapcraft_test_kit::{fake_client, mocked, paused_clock_client};
use serde_json::json;

fn devices(range: Range<usize>) -> serde_json::Value {
    range
        .map(|i| json!({"physical_id": format!("dev-{i}"), "type": "ambinode", "meta": {}}))
        .collect()
}

/// `GET /devices` with the token [`mocked`] hands out, for the page `page` of `limit` devices
/// where given, answered with the devices of `range`: the mock generated from the spec, so
/// the query is the spec's.
fn device_page(
    server: &MockServer,
    limit: Option<i64>,
    page: Option<u64>,
    range: Range<usize>,
) -> httpmock::Mock<'_> {
    let body: Vec<types::Device> = serde_json::from_value(devices(range)).unwrap();
    server.list_devices(|when, then| {
        let when = match limit {
            Some(limit) => when.limit(limit),
            None => when,
        };
        let when = match page {
            Some(page) => when.page(NonZeroU64::new(page)),
            None => when,
        };
        when.into_inner().header("authorization", "Bearer tok");
        then.ok(&body);
    })
}

fn ids(devices: &[leapcraft_ext::Device]) -> Vec<String> {
    devices.iter().map(|d| d.physical_id.to_string()).collect()
}

#[tokio::test]
async fn devices_page_until_a_short_page() {
    let (server, client) = mocked().await;
    // Each request overlaps the one before by an item, in a page size whose multiple falls
    // there (page 2 of 2 starts at item 2), so that a list changing meanwhile loses nothing.
    let pages: Vec<_> = [(3, 1, 0..3), (2, 2, 2..4), (3, 2, 3..6), (5, 2, 5..7)]
        .into_iter()
        .map(|(limit, page, range)| device_page(&server, Some(limit), Some(page), range))
        .collect();
    let all = client.devices().page_size(3).collect().await.unwrap();
    assert_eq!(
        ids(&all),
        (0..7).map(|i| format!("dev-{i}")).collect::<Vec<_>>()
    );
    for page in &pages {
        assert_eq!(page.calls_async().await, 1);
    }
}

#[tokio::test]
async fn an_exact_multiple_ends_on_the_empty_page_after_it() {
    let (server, client) = mocked().await;
    for (limit, page, range) in [(2, 1, 0..2), (3, 1, 0..3), (2, 2, 2..4), (3, 2, 3..4)] {
        device_page(&server, Some(limit), Some(page), range);
    }
    let pages: Vec<_> = client
        .devices()
        .page_size(2)
        .pages()
        .try_collect()
        .await
        .unwrap();
    assert!(
        pages.iter().all(|page| !page.is_empty()),
        "no empty page yielded"
    );
    assert_eq!(
        ids(&pages.concat()),
        (0..4).map(|i| format!("dev-{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_empty_first_page_is_an_empty_list() {
    let (server, client) = mocked().await;
    let list = device_page(&server, None, Some(1), 0..0);
    assert!(client.devices().collect().await.unwrap().is_empty());
    assert_eq!(list.calls_async().await, 1);
}

#[tokio::test]
async fn page_size_minus_one_asks_for_everything_once() {
    let (server, client) = mocked().await;
    let all = device_page(&server, Some(-1), None, 0..250);
    let got = client.devices().page_size(-1).collect().await.unwrap();
    assert_eq!(got.len(), 250);
    assert_eq!(all.calls_async().await, 1);
}

#[tokio::test]
async fn max_items_stops_early_and_asks_no_further() {
    let (server, client) = mocked().await;
    let first = device_page(&server, Some(10), Some(1), 0..10);
    // Page 2 of 9 overlaps page 1 of 10 by one device.
    let second = device_page(&server, Some(9), Some(2), 9..18);
    let got = client
        .devices()
        .page_size(10)
        .max_items(15)
        .prefetch(3)
        .collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 15);
    assert_eq!(
        (first.calls_async().await, second.calls_async().await),
        (1, 1)
    );
    // Fewer than a page: the request asks for just that many.
    let few = device_page(&server, Some(4), Some(1), 0..4);
    assert_eq!(
        client.devices().max_items(4).collect().await.unwrap().len(),
        4
    );
    assert_eq!(few.calls_async().await, 1);
}

#[tokio::test]
async fn a_server_that_ignores_the_page_is_an_error_not_a_loop() {
    let (server, client) = mocked().await;
    let same = device_page(&server, None, None, 0..5);
    let mut items = client.devices().page_size(5).items();
    let mut delivered = Vec::new();
    let err = loop {
        match items.next().await {
            Some(Ok(device)) => delivered.push(device),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without noticing"),
        }
    };
    assert!(
        matches!(
            err,
            Error::Pagination {
                operation: "list_devices",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(delivered.len(), 5, "nothing delivered twice");
    assert!(
        items.next().await.is_none(),
        "the stream ends after the error"
    );
    assert_eq!(
        same.calls_async().await,
        4,
        "a few full pages of nothing new"
    );
}

#[tokio::test]
async fn notification_pages_above_50_are_clamped_and_use_offsets() {
    let (server, client) = mocked().await;
    let page = |offset: usize, n: usize| -> serde_json::Value {
        (offset..offset + n)
            .map(|i| json!({"id": i, "physical_id": "dev-1", "category": "technicalAlert", "message": "m", "created_at": "2021-05-28T17:15:06Z"}))
            .collect()
    };
    let first = server
        .mock_async(|when, then| {
            when.path("/notifications")
                .query_param("limit", "50")
                .query_param("offset", "0")
                .query_param("physical_id", "dev-1");
            then.status(200).json_body(page(0, 50));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.path("/notifications")
                .query_param("limit", "50")
                .query_param("offset", "48");
            then.status(200).json_body(page(48, 9));
        })
        .await;
    let all = client
        .device_notifications("dev-1")
        .page_size(500)
        .collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 57);
    assert_eq!(all[56].id, 56);
    assert_eq!(all[0].category, Some(NotificationCategory::TechnicalAlert));
    assert_eq!(
        (first.calls_async().await, second.calls_async().await),
        (1, 1)
    );

    assert!(matches!(
        client.notifications().page_size(-1).collect().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        client.devices().page_size(0).collect().await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn things_are_one_request() {
    let (server, client) = mocked().await;
    let all = server
        .mock_async(|when, then| {
            when.path("/things").query_param("limit", "-1");
            then.status(200).json_body(json!([
                {"name": "bacnet", "description": null, "parameters": [{"name": "Temperature", "payload": "p0"}]},
                {"name": "modbus", "description": "x", "parameters": []}
            ]));
        })
        .await;
    let things = client.things().page_size(-1).collect().await.unwrap();
    assert_eq!(things.len(), 2);
    assert_eq!(things[0].parameters[0].payload.as_deref(), Some("p0"));
    assert_eq!(all.calls_async().await, 1);
}

#[tokio::test]
async fn prefetch_keeps_order_and_delivers_each_item_once() {
    let fake = leapcraft_fake::FakeServer::builder()
        .devices(1_003)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let client = fake_client(&fake).build().unwrap();
    let sequential = client.devices().page_size(50).collect().await.unwrap();
    let prefetched: Vec<_> = client
        .devices()
        .page_size(50)
        .prefetch(4)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sequential.len(), 1_003);
    assert_eq!(ids(&prefetched), ids(&sequential));
    let expected: Vec<String> = (0..1_003).map(|i| fake.dataset().physical_id(i)).collect();
    assert_eq!(ids(&prefetched), expected);
    assert!(
        fake.counters().peak_in_flight.list_devices > 1,
        "pages were fetched concurrently"
    );
}

#[tokio::test]
async fn telemetry_queries_on_the_wire() {
    let (server, client) = mocked().await;
    let latest = server
        .mock_async(|when, then| {
            when.path("/telemetry/D2:C1:AA:FF:3E:09").query_param("type", "latest").query_param_missing("resolution").query_param_missing("from");
            then.status(200).json_body(json!({
                "physical_id": "D2:C1:AA:FF:3E:09",
                "timestamp": "2026-03-29T15:24:05Z",
                "data": {"temperature": 23.1, "humidity": 44.5, "co2": 550, "pm2_5": 4.8, "meta": {}},
                "created_at": "2026-03-29T15:24:07Z"
            }));
        })
        .await;
    let averages = server
        .mock_async(|when, then| {
            when.path("/telemetry/dev-2")
                .query_param("type", "averages")
                .query_param("resolution", "weekly")
                .query_param("from", "2021-05-26T00:00:00.000Z")
                .query_param("to", "2021-05-27T11:42:58.721Z");
            then.status(200).json_body(json!([
                {"timestamp": "2021-05-26 00:00:00", "data": {"co2": 600.5, "voc": 12, "noise": {"db": 40}}},
                {"timestamp": "2021-05-27T00:00:00.000Z", "data": {"co2": 610}}
            ]));
        })
        .await;

    let reading = client.latest("D2:C1:AA:FF:3E:09").await.unwrap();
    assert_eq!(reading.temperature, Some(23.1));
    assert_eq!(reading.humidity, Some(44.5));
    assert_eq!(reading.co2, Some(550.0));
    assert_eq!(reading.pm2_5, Some(4.8));
    assert_eq!(
        reading.timestamp.unwrap().to_string(),
        "2026-03-29T15:24:05.000Z"
    );
    assert_eq!(
        reading.physical_id,
        Some(PhysicalId::from("D2:C1:AA:FF:3E:09"))
    );

    let from = Utc.with_ymd_and_hms(2021, 5, 26, 0, 0, 0).unwrap();
    let to = "2021-05-27T11:42:58.721"
        .parse::<leapcraft_ext::Timestamp>()
        .unwrap();
    let query = TelemetryQuery::averages(Resolution::Weekly, from, to).unwrap();
    let days = client.telemetry("dev-2", &query).await.unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].co2, Some(600.5));
    assert_eq!(days[0].other["voc"], json!(12));
    assert_eq!(days[0].other["noise"], json!({"db": 40}));
    assert_eq!(
        days[0].timestamp.unwrap().to_string(),
        "2021-05-26T00:00:00.000Z"
    );
    assert_eq!(
        (latest.calls_async().await, averages.calls_async().await),
        (1, 1)
    );

    // Averages sent as one object still come back as a list.
    let single = server
        .mock_async(|when, then| {
            when.path("/telemetry/dev-3")
                .query_param("type", "averages");
            then.status(200).json_body(
                json!({"timestamp": "2021-05-26T00:00:00Z", "data": {"temperature": 20}}),
            );
        })
        .await;
    let one = client.telemetry("dev-3", &query).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].temperature, Some(20.0));
    assert_eq!(single.calls_async().await, 1);

    assert!(matches!(
        TelemetryQuery::averages(Resolution::Daily, to, from),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        TelemetryQuery::averages(Resolution::Daily, from, from),
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn unknown_device_kinds_and_categories_are_kept() {
    let (server, client) = mocked().await;
    server
        .mock_async(|when, then| {
            when.path("/devices");
            then.status(200).json_body(json!([
                {"physical_id": "a", "type": "ultralink_modbus", "name": null},
                {"physical_id": "b", "type": "airbird_pro_2027"},
                {"physical_id": "c"}
            ]));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/notifications");
            then.status(200)
                .json_body(json!([{"id": 1, "category": "firmwareNotice"}]));
        })
        .await;
    let devices = client.devices().collect().await.unwrap();
    assert_eq!(devices[0].kind, Some(DeviceKind::UltralinkModbus));
    assert_eq!(
        devices[1].kind,
        Some(DeviceKind::Other("airbird_pro_2027".into()))
    );
    assert_eq!(devices[2].kind, None);
    assert_eq!(
        serde_json::to_value(&devices[1]).unwrap()["type"],
        "airbird_pro_2027"
    );
    let notes = client.notifications().collect().await.unwrap();
    assert_eq!(
        notes[0].category,
        Some(NotificationCategory::Other("firmwareNotice".into()))
    );
}

#[tokio::test]
async fn device_details_fill_in_the_requested_id() {
    let (server, client) = mocked().await;
    server
        .mock_async(|when, then| {
            when.path("/devices/testsim00004");
            then.status(200)
                .json_body(json!({"serial": "LC-2026-X88", "meta": {}}));
        })
        .await;
    let device = client.device("testsim00004").await.unwrap();
    assert_eq!(device.physical_id.as_str(), "testsim00004");
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));
}

#[tokio::test]
async fn one_failing_device_does_not_stop_the_others() {
    let (server, client) = mocked().await;
    server
        .mock_async(|when, then| {
            when.path_includes("/telemetry/ok-");
            then.status(200)
                .json_body(json!({"timestamp": "2026-03-29T15:24:05Z", "data": {"co2": 500}}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/telemetry/broken");
            then.status(404)
                .json_body(json!({"message": "no such device"}));
        })
        .await;
    let mut ids: Vec<String> = (0..20).map(|i| format!("ok-{i}")).collect();
    ids.insert(7, "broken".into());
    let results: Vec<_> = client.latest_many(ids, 4).collect().await;
    assert_eq!(results.len(), 21);
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0.as_str(), "broken");
    assert_eq!(
        failed[0]
            .1
            .as_ref()
            .unwrap_err()
            .status()
            .map(|s| s.as_u16()),
        Some(404)
    );
}

#[tokio::test]
async fn bulk_concurrency_never_exceeds_the_bound() {
    let fake = leapcraft_fake::FakeServer::builder()
        .devices(60)
        .latency(Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let client = fake_client(&fake).build().unwrap();
    let results: Vec<_> = client
        .latest_for_all_devices(4)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(results.len(), 60);
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    let mut seen: Vec<_> = results.iter().map(|(id, _)| id.to_string()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 60, "every device exactly once");
    let counters = fake.counters();
    assert_eq!(counters.requests.get_telemetry, 60);
    assert!(counters.peak_in_flight.get_telemetry <= 4, "{counters:?}");
    assert!(
        counters.peak_in_flight.get_telemetry >= 2,
        "requests did overlap"
    );
}

#[tokio::test(start_paused = true)]
async fn watch_yields_only_new_readings() {
    let fake = leapcraft_fake::FakeServer::builder()
        .devices(3)
        .start()
        .await
        .unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    let ids: Vec<String> = (0..2).map(|i| fake.dataset().physical_id(i)).collect();
    let mut watch = client.watch_latest(ids.clone(), Duration::from_secs(60));

    let mut first: Vec<_> = vec![watch.next().await.unwrap(), watch.next().await.unwrap()];
    first.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(first.iter().all(|(_, r)| r.is_ok()));
    let requests_after_first = fake.counters().requests.get_telemetry;
    assert_eq!(requests_after_first, 2);

    // Nothing new on the server: polls happen, nothing is yielded.
    let quiet = tokio::time::timeout(Duration::from_secs(150), watch.next()).await;
    assert!(quiet.is_err(), "no new reading, nothing yielded");
    assert!(
        fake.counters().requests.get_telemetry >= 4,
        "it kept polling"
    );

    fake.advance_readings();
    let (id, reading) = watch.next().await.unwrap();
    let reading = reading.unwrap();
    assert!(ids.contains(&id.to_string()));
    let before = first
        .iter()
        .find(|(i, _)| *i == id)
        .unwrap()
        .1
        .as_ref()
        .unwrap();
    assert!(reading.timestamp > before.timestamp);
    drop(watch);
}

#[tokio::test(start_paused = true)]
async fn follow_yields_each_new_notification_once() {
    let fake = leapcraft_fake::FakeServer::builder()
        .devices(3)
        .start()
        .await
        .unwrap();
    let client = paused_clock_client(&fake).build().unwrap();
    let existing = fake.notifications().len();
    let mut follow = client.follow_notifications(None, Duration::from_secs(30));

    // The first poll learns what exists; nothing is yielded for it.
    let quiet = tokio::time::timeout(Duration::from_secs(100), follow.next()).await;
    assert!(quiet.is_err());

    let a = fake.push_generated_notification();
    let b = fake.push_generated_notification();
    let first = follow.next().await.unwrap().unwrap();
    let second = follow.next().await.unwrap().unwrap();
    assert_eq!([first.id, second.id], [a.id, b.id]);
    let quiet = tokio::time::timeout(Duration::from_secs(100), follow.next()).await;
    assert!(quiet.is_err(), "each notification once");
    assert_eq!(fake.notifications().len(), existing + 2);
}

#[tokio::test]
async fn skip_starts_later_in_the_list() {
    let (server, client) = mocked().await;
    let third = device_page(&server, Some(10), Some(3), 20..25);
    let got = client
        .devices()
        .page_size(10)
        .skip(20)
        .collect()
        .await
        .unwrap();
    assert_eq!(ids(&got)[0], "dev-20");
    assert_eq!(third.calls_async().await, 1);
    assert!(matches!(
        client.devices().page_size(10).skip(5).collect().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        client.things().skip(1).collect().await,
        Err(Error::InvalidInput(_))
    ));

    let from_seven = server
        .mock_async(|when, then| {
            when.path("/notifications")
                .query_param("offset", "7")
                .query_param("limit", "2");
            then.status(200).json_body(json!([{"id": 7}, {"id": 8}]));
        })
        .await;
    let from_eight = server
        .mock_async(|when, then| {
            when.path("/notifications")
                .query_param("offset", "8")
                .query_param("limit", "2");
            then.status(200).json_body(json!([{"id": 8}, {"id": 9}]));
        })
        .await;
    let from_nine = server
        .mock_async(|when, then| {
            when.path("/notifications")
                .query_param("offset", "9")
                .query_param("limit", "2");
            then.status(200).json_body(json!([{"id": 9}]));
        })
        .await;
    let notes = client
        .notifications()
        .page_size(2)
        .skip(7)
        .collect()
        .await
        .unwrap();
    assert_eq!(notes.iter().map(|n| n.id).collect::<Vec<_>>(), [7, 8, 9]);
    assert_eq!(
        (
            from_seven.calls_async().await,
            from_eight.calls_async().await,
            from_nine.calls_async().await
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn topologies_come_with_typed_ids_and_kinds() {
    let (server, client) = mocked().await;
    server
        .mock_async(|when, then| {
            when.path("/topologies");
            then.status(200).json_body(json!([{
                "gateway_id": "01231AC7BFB729F0EE", "name": null, "network_id": 15,
                "created_at": "2022-01-29T05:59:57.000Z",
                "devices": [{"physical_id": "01231AC7BFB729F0EE", "name": "Ambinode Test 10",
                             "type": "ambinode", "metadata": {}}]
            }]));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/topologies/0123245cf74c60d7ee");
            then.status(200).json_body(json!({
                "gateway_id": "0123245cf74c60d7ee", "created_at": "2020-12-16 13:51:58", "name": null,
                "devices": [{"physical_id": "0123555235565de1ee", "topology_id": 9,
                             "name": "Airbird Test Office - COZIR"}]
            }));
        })
        .await;
    let all = client.topologies().await.unwrap();
    assert_eq!(
        all[0].gateway_id,
        leapcraft_ext::GatewayId::from("01231AC7BFB729F0EE")
    );
    assert_eq!(all[0].devices[0].kind, Some(DeviceKind::Ambinode));
    assert_eq!(all[0].network_id, Some(15));
    let one = client.topology("0123245cf74c60d7ee").await.unwrap();
    assert_eq!(
        one.created_at.unwrap().to_string(),
        "2020-12-16T13:51:58.000Z"
    );
    assert_eq!(one.devices[0].physical_id.as_str(), "0123555235565de1ee");
    assert_eq!(one.devices[0].topology_id, Some(9));
}
