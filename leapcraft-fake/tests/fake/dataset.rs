//! The dataset over HTTP: determinism, shapes, telemetry, topologies, 404s, live updates.

use crate::common::*;
use leapcraft_fake::FakeServer;
use serde_json::{Value, json};

#[tokio::test]
async fn same_seed_same_dataset_other_seed_other_dataset() {
    let fetch = |seed: u64| async move {
        let fake = FakeServer::builder()
            .seed(seed)
            .devices(50)
            .start()
            .await
            .unwrap();
        let t = token(&fake).await;
        let devices = get_json(&fake, &t, "/devices?limit=-1").await;
        let topologies = get_json(&fake, &t, "/topologies").await;
        let notes = get_json(&fake, &t, "/notifications?limit=50").await;
        let first = devices[0]["physical_id"].as_str().unwrap().to_string();
        let latest = get_json(&fake, &t, &format!("/telemetry/{first}?type=latest")).await;
        (devices, topologies, notes, latest)
    };
    let a = fetch(1).await;
    assert_eq!(a, fetch(1).await);
    let b = fetch(2).await;
    assert_ne!(a.0, b.0);
    assert_ne!(a.3, b.3);
}

#[tokio::test]
async fn devices_have_the_documented_shapes_and_quirks() {
    let fake = FakeServer::builder().devices(400).start().await.unwrap();
    let t = token(&fake).await;
    let devices = get_json(&fake, &t, "/devices?limit=-1").await;
    let devices = devices.as_array().unwrap();
    let kinds: std::collections::HashSet<_> =
        devices.iter().filter_map(|d| d["type"].as_str()).collect();
    for k in ["airbird", "ambinode", "ultralink_modbus", "bacnet"] {
        assert!(kinds.contains(k), "{kinds:?}");
    }
    assert!(devices.iter().any(|d| d["name"].is_null()));
    assert!(
        devices
            .iter()
            .any(|d| d["meta"].as_object().is_some_and(|m| !m.is_empty()))
    );
    let is_mac = |s: &str| s.len() == 17 && s.split(':').count() == 6;
    assert!(
        devices
            .iter()
            .any(|d| is_mac(d["physical_id"].as_str().unwrap()))
    );
    assert!(
        devices
            .iter()
            .any(|d| d["physical_id"].as_str().unwrap().starts_with("0123"))
    );
    for d in devices {
        assert!(d["topology_id"].is_i64() && d["meta"].is_object() && d.get("serial").is_some());
    }
    // Details of a MAC-addressed device, by its id as-is.
    let mac = devices
        .iter()
        .find(|d| is_mac(d["physical_id"].as_str().unwrap()))
        .unwrap();
    let id = mac["physical_id"].as_str().unwrap();
    let details = get_json(&fake, &t, &format!("/devices/{id}")).await;
    assert_eq!(&details, mac);
    let msg = get_error(&fake, &t, "/devices/00:00:00:00:00:00", 404).await;
    assert!(msg.contains("not found"));
}

#[tokio::test]
async fn topologies_list_and_details() {
    let fake = FakeServer::builder()
        .devices(100)
        .devices_per_gateway(10)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let list = get_json(&fake, &t, "/topologies").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 10);
    let mut quirky = 0;
    for topo in list {
        let gw = topo["gateway_id"].as_str().unwrap();
        assert_eq!(topo["devices"][0]["physical_id"], gw);
        assert!(topo["created_at"].as_str().unwrap().ends_with(".000Z"));
        assert!(topo["devices"][0]["metadata"].is_object());
        let details = get_json(&fake, &t, &format!("/topologies/{gw}")).await;
        assert_eq!(details["gateway_id"], gw);
        assert_eq!(details["devices"].as_array().unwrap().len(), 10);
        let d0 = &details["devices"][0];
        assert!(d0["topology_id"].is_i64() && d0.get("name").is_some() && d0.get("type").is_none());
        let created = details["created_at"].as_str().unwrap();
        if !created.contains('T') {
            quirky += 1;
            assert_eq!(created.len(), "2020-12-16 13:51:58".len());
        }
        // Case-insensitive gateway ids.
        get_json(
            &fake,
            &t,
            &format!("/topologies/{}", gw.to_ascii_lowercase()),
        )
        .await;
    }
    assert!(quirky > 0 && quirky < 10, "{quirky}");
    assert!(list.iter().any(|t| t["name"].is_null()));
    get_error(&fake, &t, "/topologies/0123245cf74c60d7ef", 404).await;
}

#[tokio::test]
async fn telemetry_latest_and_averages() {
    let fake = FakeServer::builder().devices(200).start().await.unwrap();
    let t = token(&fake).await;
    let id = fake.dataset().physical_id(3);
    let latest = get_json(&fake, &t, &format!("/telemetry/{id}?type=latest")).await;
    assert_eq!(latest["physical_id"], id.as_str());
    for k in ["temperature", "humidity", "co2", "pm2_5", "meta"] {
        assert!(latest["data"].get(k).is_some(), "{k}: {latest}");
    }
    // Some kinds send extra keys.
    let devices = get_json(&fake, &t, "/devices?limit=-1").await;
    let ambinode = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "ambinode")
        .unwrap();
    let amb = get_json(
        &fake,
        &t,
        &format!(
            "/telemetry/{}?type=latest",
            ambinode["physical_id"].as_str().unwrap()
        ),
    )
    .await;
    assert!(amb["data"]["voc"].is_number() && amb["data"]["noise"].is_number());

    // Every documented shape of from/to.
    let shapes = [
        ("2021-05-26T00:00:00.000Z", "2021-06-02T00:00:00.000Z"),
        ("2021-05-26T00:00:00.000", "2021-06-02T00:00:00.000"),
        ("2021-05-26 00:00:00", "2021-06-02 00:00:00"),
    ];
    let mut answers = Vec::new();
    for (from, to) in shapes {
        let q = format!("/telemetry/{id}?type=averages&resolution=daily&from={from}&to={to}")
            .replace(' ', "%20");
        let v = get_json(&fake, &t, &q).await;
        let days = v.as_array().unwrap();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0]["timestamp"], "2021-05-26T00:00:00Z");
        assert_eq!(days[6]["timestamp"], "2021-06-01T00:00:00Z");
        for d in days {
            let temp = d["data"]["temperature"].as_f64().unwrap();
            assert!((10.0..35.0).contains(&temp), "{temp}");
        }
        answers.push(v);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    // The docs' sample range: part of a second day.
    let sample = format!(
        "/telemetry/{id}?type=averages&resolution=daily&from=2021-05-26T00:00:00.000&to=2021-05-27T11:42:58.721"
    );
    assert_eq!(
        get_json(&fake, &t, &sample).await.as_array().unwrap().len(),
        2
    );
    let weekly =
        format!("/telemetry/{id}?type=averages&resolution=weekly&from=2021-05-26&to=2021-07-01");
    assert_eq!(
        get_json(&fake, &t, &weekly).await.as_array().unwrap().len(),
        6
    );
    let monthly =
        format!("/telemetry/{id}?type=averages&resolution=monthly&from=2021-01-01&to=2022-01-01");
    assert_eq!(
        get_json(&fake, &t, &monthly)
            .await
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

#[tokio::test]
async fn telemetry_errors() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    let id = fake.dataset().physical_id(1);
    for q in [
        "",
        "?type=raw",
        "?type=averages",
        "?type=averages&resolution=daily&from=2021-05-26",
        "?type=averages&resolution=hourly&from=2021-05-26&to=2021-05-27",
        "?type=averages&resolution=daily&from=2021-05-27&to=2021-05-26",
        "?type=averages&resolution=daily&from=2021-05-26&to=2021-05-26",
        "?type=averages&resolution=daily&from=yesterday&to=2021-05-26",
    ] {
        get_error(&fake, &t, &format!("/telemetry/{id}{q}"), 400).await;
    }
    get_error(&fake, &t, "/telemetry/testsim99999?type=latest", 404).await;
}

#[tokio::test]
async fn new_readings_and_notifications_appear_on_demand() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    let id = fake.dataset().physical_id(2);
    let path = format!("/telemetry/{id}?type=latest");
    let before = get_json(&fake, &t, &path).await;
    assert_eq!(before, get_json(&fake, &t, &path).await);
    assert_eq!(fake.advance_readings(), 1);
    let after = get_json(&fake, &t, &path).await;
    assert!(after["timestamp"].as_str().unwrap() > before["timestamp"].as_str().unwrap());

    let newest = get_json(&fake, &t, "/notifications?limit=1").await[0].clone();
    let pushed = fake.push_notification(&id, "technicalAlert", "High CO2 levels detected");
    assert_eq!(pushed.id, newest["id"].as_i64().unwrap() + 1);
    let now = get_json(&fake, &t, "/notifications?limit=2").await;
    assert_eq!(now[0]["id"], pushed.id);
    assert_eq!(now[0]["physical_id"], id.as_str());
    assert_eq!(now[0]["message"], "High CO2 levels detected");
    assert!(now[0]["created_at"].as_str().unwrap() > newest["created_at"].as_str().unwrap());
    assert_eq!(now[1], newest);
    let generated = fake.push_generated_notification();
    assert_eq!(generated.id, pushed.id + 1);
}

#[tokio::test]
async fn fresh_readings_are_stamped_from_the_start() {
    let started = chrono::Utc::now().timestamp();
    let fake = FakeServer::builder()
        .fresh_readings(true)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let id = fake.dataset().physical_id(3);
    let reading = get_json(&fake, &t, &format!("/telemetry/{id}?type=latest")).await;
    let stamped = chrono::DateTime::parse_from_rfc3339(reading["timestamp"].as_str().unwrap())
        .unwrap()
        .timestamp();
    // Each device's reading is up to four minutes older than the start.
    assert!(
        (started - 240..=started + 60).contains(&stamped),
        "{stamped} vs start {started}"
    );
    let pushed = fake.push_generated_notification();
    assert!(pushed.created_at.as_str() >= reading["timestamp"].as_str().unwrap());
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    let resp = get(&fake, &t, "/nope").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"message": "Not found"})
    );
}

#[tokio::test]
async fn counters_count_every_operation() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    let id = fake.dataset().physical_id(0);
    get_json(&fake, &t, "/devices").await;
    get_json(&fake, &t, &format!("/devices/{id}")).await;
    get_json(&fake, &t, &format!("/telemetry/{id}?type=latest")).await;
    get_json(&fake, &t, "/topologies").await;
    get_json(&fake, &t, &format!("/topologies/{id}")).await;
    get_json(&fake, &t, "/notifications").await;
    get_json(&fake, &t, "/things").await;
    get_error(&fake, &t, "/devices/nope", 404).await;
    let c = fake.counters();
    for op in leapcraft_fake::Operation::ALL {
        let expected = if op == leapcraft_fake::Operation::GetDevice {
            2
        } else {
            1
        };
        assert_eq!(c.requests.get(op), expected, "{op}");
    }
    assert_eq!(
        (
            c.token_exchanges,
            c.not_found,
            c.unauthorized,
            c.faults.total()
        ),
        (1, 1, 0, 0)
    );
}

#[tokio::test]
async fn recorded_requests_show_what_the_fake_decoded() {
    let fake = FakeServer::builder()
        .record_requests(10)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let odd = "a b/c%d:é";
    let encoded: String = percent_encode(odd);
    get_error(&fake, &t, &format!("/telemetry/{encoded}?type=averages&resolution=daily&from=2021-05-26T00:00:00.000Z&to=2021-05-27T00:00:00.000Z"), 404).await;
    let log = fake.recorded_requests();
    assert_eq!(log.len(), 2);
    let r = &log[1];
    assert_eq!(r.operation, leapcraft_fake::Operation::GetTelemetry);
    assert_eq!(r.path_param.as_deref(), Some(odd));
    assert_eq!(r.status, Some(404));
    assert_eq!(r.query[0], ("type".to_string(), "averages".to_string()));
    assert_eq!(r.query[2].1, "2021-05-26T00:00:00.000Z");
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn live_mode_ticks_readings_and_raises_notifications() {
    let fake = FakeServer::builder()
        .live(std::time::Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let before = fake.notifications().len();
    for _ in 0..3 {
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.readings_tick(), 3);
    assert_eq!(fake.notifications().len(), before + 3);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    let url = format!("{}/things", fake.base_url());
    fake.shutdown().await;
    let err = client()
        .get(url)
        .bearer_auth(t)
        .send()
        .await
        .expect_err("server is gone");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
}
