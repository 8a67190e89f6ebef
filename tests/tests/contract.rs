//! Contract test: every example in the spec decodes into the generated type of its response.
//!
//! The spec is walked at test time: adding an example to it adds a case here. Each example is
//! decoded into the generated type, re-encoded, and decoded again to the same value; the
//! re-encoded JSON must still carry every non-null value of the example (so a key the
//! generated type silently drops fails the test).
//!
//! An operation, or a response of an operation, that this file does not know fails the test:
//! teach [`decoder`] about it.

use std::fmt::Debug;

use leapcraft_api::{Timestamp, types};
use leapcraft_tests::{media_examples, operations, resolve, spec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

type Check = fn(&Value) -> Result<(), String>;

/// The operations this file knows, and so the ones the spec must have.
const KNOWN_OPERATIONS: [&str; 8] = [
    "get_access_token",
    "list_devices",
    "get_device",
    "get_telemetry",
    "list_topologies",
    "get_topology",
    "list_notifications",
    "list_things",
];

/// `4XX`, `5XX` and any numeric 4xx or 5xx status.
fn is_error_status(status: &str) -> bool {
    matches!(status.as_bytes().first(), Some(b'4' | b'5')) && status.len() == 3
}

/// How to check the JSON body of response `status` of `operation`: `None` when unknown.
fn decoder(operation: &str, status: &str) -> Option<Check> {
    if !KNOWN_OPERATIONS.contains(&operation) {
        return None;
    }
    if is_error_status(status) {
        return Some(round_trip::<types::Error>);
    }
    let check: Check = match (operation, status) {
        ("get_access_token", "200") => round_trip::<types::TokenResponse>,
        ("list_devices", "200") => round_trip::<Vec<types::Device>>,
        ("get_device", "200") => round_trip::<types::DeviceDetails>,
        ("get_telemetry", "200") => round_trip::<types::TelemetryResponse>,
        ("list_topologies", "200") => round_trip::<Vec<types::Topology>>,
        ("get_topology", "200") => round_trip::<types::TopologyDetails>,
        ("list_notifications", "200") => round_trip::<Vec<types::Notification>>,
        ("list_things", "200") => round_trip::<Vec<types::Thing>>,
        _ => return None,
    };
    Some(check)
}

/// How to check the request body of `operation`: `None` when unknown.
fn request_decoder(operation: &str) -> Option<Check> {
    match operation {
        "get_access_token" => Some(round_trip::<types::TokenRequest>),
        _ => None,
    }
}

/// Decodes, re-encodes, decodes again; both decodings must be equal and the re-encoding must
/// keep every non-null value of the example.
fn round_trip<T>(example: &Value) -> Result<(), String>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let first: T = serde_json::from_value(example.clone())
        .map_err(|e| format!("does not decode into {}: {e}", std::any::type_name::<T>()))?;
    let encoded = serde_json::to_string(&first).map_err(|e| format!("does not encode: {e}"))?;
    let second: T = serde_json::from_str(&encoded)
        .map_err(|e| format!("re-encoding {encoded} does not decode: {e}"))?;
    if first != second {
        return Err(format!(
            "decodes to {first:?}, but its re-encoding {encoded} decodes to {second:?}"
        ));
    }
    let reencoded: Value = serde_json::from_str(&encoded).expect("serde_json output is JSON");
    covers(example, &reencoded, "$")
        .map_err(|e| format!("re-encoding {encoded} lost part of the example: {e}"))
}

/// Whether `after` (a re-encoding) still carries every non-null value of `before`. Numbers
/// compare as numbers (`550` and `550.0` agree); strings that are both timestamps compare as
/// instants (`...05Z` and `...05.000Z` agree).
fn covers(before: &Value, after: &Value, at: &str) -> Result<(), String> {
    match (before, after) {
        (Value::Null, _) => Ok(()),
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                let here = format!("{at}.{key}");
                match a.get(key) {
                    Some(found) => covers(value, found, &here)?,
                    None if value.is_null() => {}
                    None => return Err(format!("{here} is missing")),
                }
            }
            Ok(())
        }
        (Value::Array(b), Value::Array(a)) => {
            if b.len() != a.len() {
                return Err(format!("{at} has {} items, not {}", a.len(), b.len()));
            }
            for (i, (b, a)) in b.iter().zip(a).enumerate() {
                covers(b, a, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(b), Value::Number(a)) if b.as_f64() == a.as_f64() => Ok(()),
        (Value::String(b), Value::String(a)) if b == a => Ok(()),
        (Value::String(b), Value::String(a))
            if b.parse::<Timestamp>().is_ok() && b.parse::<Timestamp>() == a.parse() =>
        {
            Ok(())
        }
        (Value::Bool(b), Value::Bool(a)) if b == a => Ok(()),
        _ => Err(format!("{at} was {before}, is {after}")),
    }
}

#[test]
fn every_example_in_the_spec_round_trips_through_its_generated_type() {
    let spec = spec();
    let ops = operations(&spec);
    let mut failures = Vec::new();
    let mut cases = Vec::new();

    for known in KNOWN_OPERATIONS {
        if !ops.iter().any(|op| op.id == known) {
            failures.push(format!("{known}: known here, but not in the spec"));
        }
    }

    for op in &ops {
        let id = op.id.as_str();
        if !KNOWN_OPERATIONS.contains(&id) {
            failures.push(format!(
                "{id} ({} {}): not known to this test; add it to KNOWN_OPERATIONS and decoder()",
                op.method.to_uppercase(),
                op.path
            ));
            continue;
        }

        if let Some(body) = op.value.get("requestBody") {
            let body = resolve(&spec, body);
            for (media_type, media) in body["content"].as_object().into_iter().flatten() {
                for (name, example) in media_examples(&spec, media) {
                    let case = format!("{id} request {media_type} {name}");
                    match request_decoder(id) {
                        Some(check) => {
                            if let Err(e) = check(&example) {
                                failures.push(format!("{case}: {e}"));
                            }
                        }
                        None => failures.push(format!("{case}: no request decoder")),
                    }
                    cases.push(case);
                }
            }
        }

        let responses = op.value["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{id} has no responses"));
        for (status, response) in responses {
            let Some(check) = decoder(id, status) else {
                failures.push(format!(
                    "{id} {status}: a response this test does not know; add it to decoder()"
                ));
                continue;
            };
            let response = resolve(&spec, response);
            for (media_type, media) in response["content"].as_object().into_iter().flatten() {
                let examples = media_examples(&spec, media);
                if !examples.is_empty() && media_type != "application/json" {
                    failures.push(format!(
                        "{id} {status}: examples for {media_type}, which this test cannot decode"
                    ));
                    continue;
                }
                for (name, example) in examples {
                    let case = format!("{id} {status} {name}");
                    if let Err(e) = check(&example) {
                        failures.push(format!("{case}: {e}"));
                    }
                    cases.push(case);
                }
            }
        }
    }

    // Every operation of the docs has a sample response: one case each at least.
    for known in KNOWN_OPERATIONS {
        assert!(
            cases
                .iter()
                .any(|c| c.starts_with(&format!("{known} 200 "))),
            "{known} has no 200 example in the spec; cases: {cases:#?}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}\n(cases checked: {cases:#?})",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn error_bodies_decode_into_the_error_type() {
    let bodies = [
        serde_json::json!({"message": "Unauthorized"}),
        serde_json::json!({"error": "not_found", "detail": "no such device", "code": 404}),
        serde_json::json!({}),
    ];
    for body in &bodies {
        round_trip::<types::Error>(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
    let error: types::Error = serde_json::from_value(bodies[1].clone()).unwrap();
    assert_eq!(error.error.as_deref(), Some("not_found"));
    assert_eq!(error.extra["code"], 404);
}

#[test]
fn the_round_trip_check_notices_lost_and_changed_values() {
    // The checker itself must be able to fail.
    let dropped = serde_json::json!({"token": "t", "unknown": 1});
    assert!(round_trip::<types::TokenResponse>(&dropped).is_err());
    let wrong_type = serde_json::json!({"token": 5});
    assert!(round_trip::<types::TokenResponse>(&wrong_type).is_err());
    let fine = serde_json::json!({"token": "t", "type": null});
    round_trip::<types::TokenResponse>(&fine).unwrap();
    assert!(
        covers(
            &serde_json::json!({"at": "2020-12-16 13:51:58"}),
            &serde_json::json!({"at": "2020-12-16T13:51:58.000Z"}),
            "$"
        )
        .is_ok()
    );
    assert!(
        covers(
            &serde_json::json!({"at": "2020-12-16 13:51:58"}),
            &serde_json::json!({"at": "2020-12-16T13:51:59.000Z"}),
            "$"
        )
        .is_err()
    );
    assert!(decoder("delete_everything", "200").is_none());
    assert!(decoder("get_device", "201").is_none());
    assert!(decoder("get_device", "404").is_some());
}
