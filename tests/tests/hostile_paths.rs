//! Path parameters that are not plain words must reach the server as exactly one
//! percent-encoded path segment, whatever they contain.
//!
//! The assertions are on the raw request target the mock server saw, before any decoding.

use std::sync::{Arc, Mutex};

use httpmock::MockServer;
use leapcraft_api::{Client, Hooks, types};
use leapcraft_httpmock::MockServerExt;
use serde_json::json;

/// Raw request targets (path and query, undecoded) seen by a catch-all mock.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    /// The target of the one request made since the last call. httpmock may run a matcher
    /// more than once per request, so repeated sightings of the same target count once.
    fn take_one(&self) -> String {
        let mut seen = self.0.lock().unwrap();
        let targets: Vec<String> = seen.drain(..).collect();
        assert!(!targets.is_empty(), "the server saw no request");
        assert!(
            targets.iter().all(|t| *t == targets[0]),
            "expected one request, saw {targets:?}"
        );
        targets[0].clone()
    }
}

/// A mock server that answers every request with `{"gateway_id": "g"}` (a valid body for the three
/// operations with a path parameter) and records its raw target.
async fn recording_server() -> (MockServer, Seen) {
    let server = MockServer::start_async().await;
    let seen = Seen::default();
    let record = seen.clone();
    server
        .mock_async(move |when, then| {
            when.is_true(move |req| {
                let uri = req.uri();
                let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
                record.0.lock().unwrap().push(target.to_owned());
                true
            });
            then.status(200).json_body(json!({"gateway_id": "g"}));
        })
        .await;
    (server, seen)
}

fn client(server: &MockServer) -> Client {
    Client::new(&server.base_url(), Hooks::default())
}

/// Percent-decodes `s` (no `+` handling: this is a path).
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Sends `id` as the path parameter of each operation that has one, and returns, per
/// operation, the prefix the segment must follow and the raw path the server saw.
async fn raw_paths(server: &MockServer, seen: &Seen, id: &str) -> Vec<(&'static str, String)> {
    let client = client(server);
    let mut out = Vec::new();

    let result = client.get_device().physical_id(id).send().await;
    result.unwrap_or_else(|e| panic!("get_device({id:?}): {e}"));
    out.push(("/devices/", seen.take_one()));

    let result = client
        .get_telemetry()
        .physical_id(id)
        .type_(types::TelemetryType::Latest)
        .send()
        .await;
    result.unwrap_or_else(|e| panic!("get_telemetry({id:?}): {e}"));
    let target = seen.take_one();
    let path = target
        .strip_suffix("?type=latest")
        .unwrap_or_else(|| panic!("get_telemetry({id:?}): query lost or changed in {target}"));
    out.push(("/telemetry/", path.to_owned()));

    let result = client.get_topology().topology_id(id).send().await;
    result.unwrap_or_else(|e| panic!("get_topology({id:?}): {e}"));
    out.push(("/topologies/", seen.take_one()));

    out
}

/// Checks that `raw` is `prefix` followed by one segment that decodes to `id` and is not a
/// dot segment a server or proxy would resolve.
fn check_one_segment(id: &str, prefix: &str, raw: &str) -> Result<(), String> {
    let segment = raw
        .strip_prefix(prefix)
        .ok_or_else(|| format!("{id:?}: sent as {raw:?}, not under {prefix}"))?;
    if segment.contains(['/', '?', '#']) {
        return Err(format!(
            "{id:?}: sent as {raw:?}, more than one segment or not only a path"
        ));
    }
    if percent_decode(segment) != id.as_bytes() {
        return Err(format!(
            "{id:?}: sent as {raw:?}, which does not decode to the id"
        ));
    }
    let lower = segment.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
    ) {
        return Err(format!("{id:?}: sent as {raw:?}, a dot segment"));
    }
    Ok(())
}

#[tokio::test]
async fn hostile_path_parameters_arrive_as_one_encoded_segment() {
    let (server, seen) = recording_server().await;
    // The id and the exact segment expected on the wire.
    let cases = [
        ("a/b", "a%2Fb"),
        ("?x=1", "%3Fx=1"),
        ("#", "%23"),
        ("#frag?q=1/..", "%23frag%3Fq=1%2F.."),
        (" ", "%20"),
        ("a b  c ", "a%20b%20%20c%20"),
        ("D2:C1:AA:FF:3E:09", "D2:C1:AA:FF:3E:09"),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("%2e%2e", "%252e%252e"),
        ("...", "..."),
        ("../devices", "..%2Fdevices"),
        ("ä€", "%C3%A4%E2%82%AC"),
        ("a\\b", "a%5Cb"),
        ("\\..", "%5C.."),
        ("[x]|^", "%5Bx%5D%7C%5E"),
    ];
    let mut failures = Vec::new();
    for (id, segment) in cases {
        for (prefix, raw) in raw_paths(&server, &seen, id).await {
            let expected = format!("{prefix}{segment}");
            if raw != expected {
                failures.push(format!("{id:?}: sent as {raw:?}, expected {expected:?}"));
            } else if let Err(e) = check_one_segment(id, prefix, &raw) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `.` and `..` are dot segments: `reqwest` (the `url` crate, following the WHATWG URL
/// standard) resolves them before sending, and does the same to `%2e`/`%2E` forms, so no
/// percent-encoding can carry them (`get_device("..")` would request the API's root); an
/// empty id would name another resource (`/devices/`). The generated client refuses all
/// three before sending anything.
#[tokio::test]
async fn path_parameters_no_encoding_can_carry_are_refused_before_sending() {
    let (server, seen) = recording_server().await;
    let client = client(&server);
    for id in ["", ".", ".."] {
        let results = [
            client.get_device().physical_id(id).send().await.map(drop),
            client
                .get_telemetry()
                .physical_id(id)
                .type_(types::TelemetryType::Latest)
                .send()
                .await
                .map(drop),
            client.get_topology().topology_id(id).send().await.map(drop),
        ];
        for result in results {
            match result {
                Err(leapcraft_api::Error::InvalidRequest(message)) => {
                    assert!(message.contains("cannot be sent"), "{id:?}: {message}")
                }
                other => panic!("{id:?}: expected InvalidRequest, got {other:?}"),
            }
        }
    }
    assert!(seen.0.lock().unwrap().is_empty(), "a request was sent");
}

#[tokio::test]
async fn hostile_query_values_stay_one_query_parameter() {
    let server = MockServer::start_async().await;
    let id = "a&b=c #?/..+%";
    let mock = server.list_notifications(|when, then| {
        when.physical_id(id)
            .into_inner()
            .query_param_count(".*", ".*", 1);
        then.ok(&vec![]);
    });
    let result = client(&server)
        .list_notifications()
        .physical_id(id)
        .send()
        .await;
    mock.assert_async().await;
    assert!(result.expect("[] decodes").into_inner().is_empty());
}

#[test]
fn the_segment_check_rejects_what_it_should() {
    check_one_segment("a/b", "/devices/", "/devices/a%2Fb").unwrap();
    for (id, raw) in [
        ("a/b", "/devices/a/b"),
        ("..", "/"),
        ("..", "/devices/%2E%2E"),
        ("?x=1", "/devices/?x=1"),
        ("a b", "/devices/a%20c"),
    ] {
        let result = check_one_segment(id, "/devices/", raw);
        assert!(result.is_err(), "{id:?} sent as {raw:?} passed the check");
    }
}
