//! The typed matchers match what the generated client sends, every parameter set: the form
//! body, timestamps in the query, and path parameters whatever they contain. A matcher that
//! cannot match leaves its mock unhit, and the client gets httpmock's 404.

use std::num::NonZeroU64;

use httpmock::MockServer;
use leapcraft_api::{Client, Timestamp, types};
use leapcraft_httpmock::MockServerExt;

fn client(server: &MockServer) -> Client {
    Client::new(&server.base_url(), Default::default())
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

#[tokio::test]
async fn the_form_body_matcher_matches_the_clients_form_and_only_it() {
    let server = MockServer::start_async().await;
    let api_key = "k3y+/=&é z";
    let mock = server.get_access_token(|when, then| {
        when.body(&types::TokenRequest {
            api_key: api_key.to_owned(),
        });
        then.ok(&types::TokenResponse {
            token: "t".to_owned(),
            type_: None,
        });
    });
    let token = client(&server)
        .get_access_token()
        .body(types::TokenRequest {
            api_key: api_key.to_owned(),
        })
        .send()
        .await
        .expect("the mock matches");
    assert_eq!(token.token, "t");
    mock.assert();

    let other = client(&server)
        .get_access_token()
        .body(types::TokenRequest {
            api_key: "another key".to_owned(),
        })
        .send()
        .await;
    assert_eq!(other.unwrap_err().status().map(|s| s.as_u16()), Some(404));
    mock.assert_calls(1);
}

#[tokio::test]
async fn query_matchers_match_every_parameter_as_the_client_sends_it() {
    let server = MockServer::start_async().await;
    let (from, to) = (
        ts("2021-05-26T02:00:00+02:00"),
        ts("2021-05-27T11:42:58.721"),
    );
    let telemetry = server.get_telemetry(|when, then| {
        when.physical_id("D2:C1:AA:FF:3E:09")
            .type_(types::TelemetryType::Averages)
            .resolution(types::Resolution::Weekly)
            .from(&from)
            .to(&to);
        then.ok(&types::TelemetryResponse::Array(vec![]));
    });
    let devices = server.list_devices(|when, then| {
        when.limit(-1).page(NonZeroU64::new(3));
        then.ok(&vec![]);
    });
    let notifications = server.list_notifications(|when, then| {
        when.physical_id("a&b=c #?/..+%").limit(50).offset(0);
        then.ok(&vec![]);
    });
    let things = server.list_things(|when, then| {
        when.limit(None);
        then.ok(&vec![]);
    });

    let client = client(&server);
    client
        .get_telemetry()
        .physical_id("D2:C1:AA:FF:3E:09")
        .type_(types::TelemetryType::Averages)
        .resolution(types::Resolution::Weekly)
        .from(from)
        .to(to)
        .send()
        .await
        .expect("the telemetry mock matches");
    client
        .list_devices()
        .limit(-1)
        .page(NonZeroU64::new(3).unwrap())
        .send()
        .await
        .expect("the devices mock matches");
    client
        .list_notifications()
        .physical_id("a&b=c #?/..+%")
        .limit(50)
        .offset(0)
        .send()
        .await
        .expect("the notifications mock matches");
    client
        .list_things()
        .send()
        .await
        .expect("the things mock matches");
    let with_limit = client.list_things().limit(5).send().await;
    assert_eq!(
        with_limit.unwrap_err().status().map(|s| s.as_u16()),
        Some(404),
        "`limit(None)` means no limit"
    );
    for mock in [telemetry, devices, notifications, things] {
        mock.assert();
    }
}

#[tokio::test]
async fn path_matchers_match_any_id_as_one_segment() {
    let server = MockServer::start_async().await;
    let client = client(&server);
    for id in [
        "D2:C1:AA:FF:3E:09",
        "a/b",
        "a.b",
        "100%",
        "[x]|^",
        "ä €",
        "?x=1#y",
        "a\\b",
    ] {
        let mut device = server.get_device(|when, then| {
            when.physical_id(id);
            then.ok(&types::DeviceDetails::default());
        });
        let mut topology = server.get_topology(|when, then| {
            when.topology_id(id);
            then.ok(&types::TopologyDetails {
                gateway_id: id.to_owned(),
                name: None,
                created_at: None,
                devices: vec![],
            });
        });
        client
            .get_device()
            .physical_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{id:?}: the device mock does not match: {e}"));
        client
            .get_topology()
            .topology_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{id:?}: the topology mock does not match: {e}"));
        device.assert();
        topology.assert();
        device.delete();
        topology.delete();
    }

    // An id is literal, not a pattern: `a.b` does not match `axb`, nor `a` match `ab`.
    let mock = server.get_device(|when, then| {
        when.physical_id("a.b");
        then.ok(&types::DeviceDetails::default());
    });
    for other in ["axb", "a.bc", "a"] {
        let result = client.get_device().physical_id(other).send().await;
        assert_eq!(
            result.unwrap_err().status().map(|s| s.as_u16()),
            Some(404),
            "{other:?} matched the mock of a.b"
        );
    }
    mock.assert_calls(0);
}
