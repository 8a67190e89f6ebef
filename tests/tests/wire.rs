//! One test per operation: the generated client against an httpmock server on 127.0.0.1,
//! mocked with the typed helpers of `leapcraft-httpmock`.
//!
//! Each test pins the request on the wire (method, path, every query parameter and no other,
//! the bearer header or its absence, the form body; as literal text where the text is the
//! point) and serves the docs' sample from the spec verbatim, then checks the decoded values.

use std::num::NonZeroU64;

use httpmock::MockServer;
use leapcraft_api::{Client, Error, Hooks, Timestamp, types};
use leapcraft_httpmock::MockServerExt;
use leapcraft_tests::response_example;
use serde_json::json;

const BEARER: &str = "Bearer t0k3n-9e65a545de443ccb";

/// A client whose `reqwest::Client` sends `Authorization: Bearer <token>` on every request:
/// the generated client does not add it itself.
fn authed(server: &MockServer) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_static(BEARER),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a reqwest client");
    Client::new_with_client(&server.base_url(), http, Hooks::default())
}

/// A client that sends no credentials.
fn anonymous(server: &MockServer) -> Client {
    Client::new(&server.base_url(), Hooks::default())
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

#[tokio::test]
async fn get_access_token_posts_the_api_key_as_a_form_without_authorization() {
    let server = MockServer::start_async().await;
    // Characters that must be escaped in a form body.
    let api_key = "k3y+/=&é z";
    let mock = server.get_access_token(|when, then| {
        when.body(&types::TokenRequest {
            api_key: api_key.to_owned(),
        })
        .into_inner()
        .query_param_count(".*", ".*", 0)
        .header_missing("authorization")
        .body("api_key=k3y%2B%2F%3D%26%C3%A9+z");
        then.into_inner()
            .status(200)
            .json_body(response_example("get_access_token", "200"));
    });

    let result = anonymous(&server)
        .get_access_token()
        .body(types::TokenRequest {
            api_key: api_key.to_owned(),
        })
        .send()
        .await;
    mock.assert_async().await;

    let token = result.expect("the docs' sample decodes").into_inner();
    assert_eq!(token.token, "9e65a545de443ccbe72c0bbfbe638f2fFJwyr...");
    assert_eq!(token.type_.as_deref(), Some("bearer"));
}

#[tokio::test]
async fn list_devices_sends_limit_and_page_and_omits_unset_ones() {
    let server = MockServer::start_async().await;
    let example = response_example("list_devices", "200");
    let all = server.list_devices(|when, then| {
        when.limit(-1)
            .page(NonZeroU64::new(2))
            .into_inner()
            .query_param_count(".*", ".*", 2)
            .header("authorization", BEARER);
        then.into_inner().status(200).json_body(example.clone());
    });
    let bare = server.list_devices(|when, then| {
        when.limit(None)
            .page(None)
            .into_inner()
            .query_param_count(".*", ".*", 0)
            .header("authorization", BEARER);
        then.ok(&vec![]);
    });

    let client = authed(&server);
    let result = client
        .list_devices()
        .limit(-1)
        .page(NonZeroU64::new(2).unwrap())
        .send()
        .await;
    all.assert_async().await;
    let devices = result.expect("the docs' sample decodes").into_inner();
    assert_eq!(devices.len(), 1);
    let device = &devices[0];
    assert_eq!(device.name.as_deref(), Some("Conference Room B"));
    assert_eq!(device.physical_id, "D2:C1:AA:FF:3E:09");
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));
    assert_eq!(device.topology_id, Some(149));
    assert_eq!(device.type_.as_deref(), Some("ultralink_modbus"));
    assert!(device.meta.as_ref().expect("meta is present").is_empty());

    // Spec defaults are not sent: an unset parameter is omitted.
    let result = client.list_devices().send().await;
    bare.assert_async().await;
    assert!(result.expect("[] decodes").into_inner().is_empty());
}

#[tokio::test]
async fn get_device_puts_the_mac_in_the_path() {
    let server = MockServer::start_async().await;
    let mock = server.get_device(|when, then| {
        when.physical_id("D2:C1:AA:FF:3E:09")
            .into_inner()
            .query_param_count(".*", ".*", 0)
            .header("authorization", BEARER)
            .header("accept", "application/json")
            .header("api-version", "1.0.0");
        then.into_inner()
            .status(200)
            .header("x-request-id", "req-42")
            .json_body(response_example("get_device", "200"));
    });

    let result = authed(&server)
        .get_device()
        .physical_id("D2:C1:AA:FF:3E:09")
        .send()
        .await;
    mock.assert_async().await;

    let response = result.expect("the docs' sample decodes");
    // The response's status and headers come with the decoded body.
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let device = response.into_inner();
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));
    assert!(device.meta.as_ref().expect("meta is present").is_empty());
    assert_eq!(device.physical_id, None);
    assert_eq!(device.name, None);
    assert_eq!(device.topology_id, None);
    assert_eq!(device.type_, None);
}

#[tokio::test]
async fn get_telemetry_sends_type_resolution_and_a_utc_millisecond_range() {
    let server = MockServer::start_async().await;
    let mock = server.get_telemetry(|when, then| {
        when.physical_id("D2:C1:AA:FF:3E:09")
            .type_(types::TelemetryType::Averages)
            .resolution(types::Resolution::Daily)
            .into_inner()
            // Literal: the shape of the timestamps on the wire is what this test pins.
            .query_param("from", "2021-05-26T00:00:00.000Z")
            .query_param("to", "2021-05-27T11:42:58.721Z")
            .query_param_count(".*", ".*", 4)
            .header("authorization", BEARER);
        then.into_inner()
            .status(200)
            .json_body(response_example("get_telemetry", "200"));
    });

    let result = authed(&server)
        .get_telemetry()
        .physical_id("D2:C1:AA:FF:3E:09")
        .type_(types::TelemetryType::Averages)
        .resolution(types::Resolution::Daily)
        // Given with an offset and without a fraction: sent in UTC, with milliseconds and Z.
        .from(ts("2021-05-26T02:00:00+02:00"))
        // Given without a zone (as in the docs' request sample): taken as UTC.
        .to(ts("2021-05-27T11:42:58.721"))
        .send()
        .await;
    mock.assert_async().await;

    let response = result.expect("the docs' sample decodes").into_inner();
    let types::TelemetryResponse::Telemetry(reading) = response else {
        panic!("the docs' sample is one object, decoded as {response:?}");
    };
    assert_eq!(reading.physical_id.as_deref(), Some("D2:C1:AA:FF:3E:09"));
    assert_eq!(reading.timestamp, Some(ts("2026-03-29T15:24:05Z")));
    assert_eq!(reading.created_at, Some(ts("2026-03-29T15:24:07Z")));
    let data = reading.data.expect("data is present");
    assert_eq!(data.temperature, Some(23.1));
    assert_eq!(data.humidity, Some(44.5));
    assert_eq!(data.co2, Some(550.0));
    assert_eq!(data.pm2_5, Some(4.8));
    assert!(data.meta.as_ref().expect("meta is present").is_empty());
    assert!(data.extra.is_empty(), "no unknown keys: {:?}", data.extra);
}

#[tokio::test]
async fn get_telemetry_latest_sends_only_the_type() {
    let server = MockServer::start_async().await;
    let mock = server.get_telemetry(|when, then| {
        when.physical_id("testsim00004")
            .type_(types::TelemetryType::Latest)
            .into_inner()
            .query_param_count(".*", ".*", 1)
            .header("authorization", BEARER);
        then.into_inner()
            .status(200)
            .json_body(response_example("get_telemetry", "200"));
    });

    let result = authed(&server)
        .get_telemetry()
        .physical_id("testsim00004")
        .type_(types::TelemetryType::Latest)
        .send()
        .await;
    mock.assert_async().await;
    assert!(matches!(
        result.expect("decodes").into_inner(),
        types::TelemetryResponse::Telemetry(_)
    ));
}

/// Serves `body` for any telemetry request and returns what the client decoded.
async fn telemetry_decoding(body: serde_json::Value) -> types::TelemetryResponse {
    let server = MockServer::start_async().await;
    let mock = server.get_telemetry(|when, then| {
        when.physical_id("x");
        then.into_inner().status(200).json_body(body);
    });
    let result = authed(&server)
        .get_telemetry()
        .physical_id("x")
        .type_(types::TelemetryType::Averages)
        .send()
        .await;
    mock.assert_async().await;
    result.expect("the body decodes").into_inner()
}

#[tokio::test]
async fn telemetry_decodes_an_array_of_readings() {
    let first = response_example("get_telemetry", "200");
    let mut second = first.clone();
    second["timestamp"] = json!("2026-03-30T00:00:00.000Z");
    second["data"]["co2"] = json!(612.5);

    let response = telemetry_decoding(json!([first, second])).await;
    let types::TelemetryResponse::Array(readings) = response else {
        panic!("an array decoded as {response:?}");
    };
    assert_eq!(readings.len(), 2);
    assert_eq!(readings[0].timestamp, Some(ts("2026-03-29T15:24:05Z")));
    assert_eq!(readings[1].timestamp, Some(ts("2026-03-30T00:00:00Z")));
    assert_eq!(readings[1].data.as_ref().unwrap().co2, Some(612.5));
    assert_eq!(readings[1].data.as_ref().unwrap().temperature, Some(23.1));
}

#[tokio::test]
async fn telemetry_decodes_an_empty_array() {
    let response = telemetry_decoding(json!([])).await;
    assert_eq!(response, types::TelemetryResponse::Array(vec![]));
}

#[tokio::test]
async fn telemetry_keeps_unknown_sensor_keys_in_extra() {
    let mut body = response_example("get_telemetry", "200");
    body["data"]["voc"] = json!(120);
    body["data"]["noise_db"] = json!(41.5);
    body["data"]["door"] = json!("open");

    let response = telemetry_decoding(body).await;
    let types::TelemetryResponse::Telemetry(reading) = response else {
        panic!("one object decoded as {response:?}");
    };
    let data = reading.data.expect("data is present");
    assert_eq!(data.temperature, Some(23.1));
    assert_eq!(data.extra.len(), 3, "{:?}", data.extra);
    assert_eq!(data.extra["voc"], json!(120));
    assert_eq!(data.extra["noise_db"], json!(41.5));
    assert_eq!(data.extra["door"], json!("open"));
    assert!(!data.extra.contains_key("temperature"));
}

#[tokio::test]
async fn list_topologies_decodes_the_docs_sample() {
    let server = MockServer::start_async().await;
    let mock = server.list_topologies(|when, then| {
        when.into_inner()
            .query_param_count(".*", ".*", 0)
            .header("authorization", BEARER);
        then.into_inner()
            .status(200)
            .json_body(response_example("list_topologies", "200"));
    });

    let result = authed(&server).list_topologies().send().await;
    mock.assert_async().await;

    let topologies = result.expect("the docs' sample decodes").into_inner();
    assert_eq!(topologies.len(), 1);
    let topology = &topologies[0];
    assert_eq!(topology.gateway_id, "01231AC7BFB729F0EE");
    assert_eq!(topology.name, None);
    assert_eq!(topology.network_id, Some(15));
    assert_eq!(topology.created_at, Some(ts("2022-01-29T05:59:57Z")));
    assert_eq!(topology.devices.len(), 1);
    let device = &topology.devices[0];
    assert_eq!(device.physical_id, "01231AC7BFB729F0EE");
    assert_eq!(device.name.as_deref(), Some("Ambinode Test 10"));
    assert_eq!(device.type_.as_deref(), Some("ambinode"));
    assert!(device.metadata.as_ref().expect("metadata").is_empty());
}

#[tokio::test]
async fn get_topology_decodes_a_zoneless_created_at() {
    let server = MockServer::start_async().await;
    let example = response_example("get_topology", "200");
    assert_eq!(example["created_at"], json!("2020-12-16 13:51:58"));
    let mock = server.get_topology(|when, then| {
        when.topology_id("0123245cf74c60d7ee")
            .into_inner()
            .query_param_count(".*", ".*", 0)
            .header("authorization", BEARER);
        then.into_inner().status(200).json_body(example);
    });

    let result = authed(&server)
        .get_topology()
        .topology_id("0123245cf74c60d7ee")
        .send()
        .await;
    mock.assert_async().await;

    let topology = result.expect("the docs' sample decodes").into_inner();
    assert_eq!(topology.gateway_id, "0123245cf74c60d7ee");
    assert_eq!(topology.name, None);
    // No zone means UTC.
    assert_eq!(topology.created_at, Some(ts("2020-12-16T13:51:58Z")));
    assert_eq!(topology.devices.len(), 1);
    let device = &topology.devices[0];
    assert_eq!(device.physical_id, "0123555235565de1ee");
    assert_eq!(device.topology_id, Some(9));
    assert_eq!(device.name.as_deref(), Some("Airbird Test Office - COZIR"));
}

#[tokio::test]
async fn list_notifications_sends_physical_id_limit_and_offset() {
    let server = MockServer::start_async().await;
    let mock = server.list_notifications(|when, then| {
        when.physical_id("0123555235565de1ee")
            .limit(50)
            .offset(100)
            .into_inner()
            .query_param_count(".*", ".*", 3)
            .header("authorization", BEARER);
        then.into_inner()
            .status(200)
            .json_body(response_example("list_notifications", "200"));
    });

    let result = authed(&server)
        .list_notifications()
        .physical_id("0123555235565de1ee")
        .limit(50)
        .offset(100)
        .send()
        .await;
    mock.assert_async().await;

    let notifications = result.expect("the docs' sample decodes").into_inner();
    assert_eq!(notifications.len(), 1);
    let n = &notifications[0];
    assert_eq!(n.id, 4521);
    assert_eq!(n.physical_id.as_deref(), Some("0123555235565de1ee"));
    assert_eq!(n.category.as_deref(), Some("technicalAlert"));
    assert_eq!(n.message.as_deref(), Some("High CO2 levels detected"));
    assert_eq!(n.created_at, Some(ts("2021-05-28T17:15:06Z")));
}

#[tokio::test]
async fn list_things_sends_limit_minus_one() {
    let server = MockServer::start_async().await;
    let mock = server.list_things(|when, then| {
        when.limit(-1)
            .into_inner()
            .query_param_count(".*", ".*", 1)
            .header("authorization", BEARER);
        then.into_inner()
            .status(200)
            .json_body(response_example("list_things", "200"));
    });

    let result = authed(&server).list_things().limit(-1).send().await;
    mock.assert_async().await;

    let things = result.expect("the docs' sample decodes").into_inner();
    assert_eq!(things.len(), 1);
    let thing = &things[0];
    assert_eq!(thing.name.as_deref(), Some("bacnet"));
    assert_eq!(thing.description, None);
    let parameters: Vec<(&str, &str)> = thing
        .parameters
        .iter()
        .map(|p| (p.name.as_deref().unwrap(), p.payload.as_deref().unwrap()))
        .collect();
    assert_eq!(
        parameters,
        [
            ("Temperature", "p0"),
            ("Outdoor Temp", "p1"),
            ("Intake Temperature", "p2"),
            ("Supply Temperature", "p3"),
            ("Exhaust Temperature", "p4"),
            ("Extract Temperature", "p5"),
            ("Supply Pressure", "p6"),
        ]
    );
}

#[tokio::test]
async fn error_statuses_decode_into_the_error_type() {
    for status in [400u16, 401, 404, 429, 500, 503] {
        let server = MockServer::start_async().await;
        let body = types::Error {
            message: Some("nope".to_owned()),
            error: None,
            detail: None,
            extra: [("code".to_owned(), json!(status))].into_iter().collect(),
        };
        // The statuses the spec documents for the operation, each with its typed body.
        let mock = server.get_device(|when, then| {
            when.physical_id("gone");
            match status {
                401 => then.unauthorized(&body),
                404 => then.not_found(&body),
                400..=499 => then.client_error(status, &body),
                _ => then.server_error(status, &body),
            };
        });
        let result = authed(&server)
            .get_device()
            .physical_id("gone")
            .send()
            .await;
        mock.assert_async().await;
        match result {
            Err(Error::ErrorResponse(response)) => {
                assert_eq!(response.status().as_u16(), status);
                assert_eq!(response.message.as_deref(), Some("nope"));
                assert_eq!(response.extra["code"], json!(status));
            }
            other => panic!("{status}: expected a typed error response, got {other:?}"),
        }
    }
}
