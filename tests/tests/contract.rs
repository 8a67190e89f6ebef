//! Contract tests: the spec's examples and the docs' samples against the spec's schemas and the
//! generated types.
//!
//! Every `example` in the spec, and every sample of the API reference page it was reconstructed
//! from (`spec/leapcraft-api-docs.txt`, verbatim), validates against the schema that types it,
//! read as JSON Schema. The spec is walked at test time: adding an example to it adds a case.
//!
//! Every response example also decodes into the generated type of its response, re-encodes, and
//! decodes again to the same value; the re-encoded JSON must still carry every non-null value of
//! the example (so a key the generated type silently drops fails the test). An operation, or a
//! response of an operation, that this file does not know fails the test: teach [`decoder`]
//! about it.

use std::fmt::Debug;

use leapcraft_api::{Timestamp, types};
use leapcraft_tests::{Operation, media_examples, operations, resolve, spec, spec_path};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

type Check = fn(&Value) -> Result<(), String>;

/// The operations this file knows, and so the ones the spec must have, in the order of the
/// reference page.
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

/// An OpenAPI 3.0 schema as JSON Schema draft 4 (the dialect OpenAPI 3.0 extends): the same,
/// but `nullable: true` becomes "or null", in the schema and in every subschema.
fn json_schema(schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "nullable" => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, property)| (name.clone(), json_schema(property)))
                    .collect(),
            ),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(json_schema)
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => json_schema(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if map.get("nullable") == Some(&Value::Bool(true)) {
        json!({"anyOf": [{"type": "null"}, out]})
    } else {
        Value::Object(out)
    }
}

/// A validator of `schema` (a schema of the spec, or a `$ref` into its components).
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let components: Map<String, Value> = spec["components"]["schemas"]
        .as_object()
        .expect("the spec has component schemas")
        .iter()
        .map(|(name, schema)| (name.clone(), json_schema(schema)))
        .collect();
    // The spec's references (`#/components/schemas/X`) resolve inside this document.
    let document = json!({
        "$ref": "#/definitions/checked",
        "definitions": {"checked": json_schema(schema)},
        "components": {"schemas": components},
    });
    jsonschema::draft4::new(&document)
        .unwrap_or_else(|e| panic!("{schema} is not a valid schema: {e}"))
}

/// Validates `value` against `schema`: every violation, one per line.
fn validate(spec: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let validator = validator(spec, schema);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Every example of the spec and the schema that types it, named by where it is: the
/// `example`s (and `examples`) of media types and parameters, checked against the `schema`
/// beside them, and the `example`s of schemas, checked against the schema they sit in.
fn spec_examples(spec: &Value) -> Vec<(String, &Value, Value)> {
    fn walk<'a>(
        spec: &'a Value,
        node: &'a Value,
        at: &str,
        out: &mut Vec<(String, &'a Value, Value)>,
    ) {
        match node {
            Value::Object(map) => {
                if map.contains_key("example") || map.contains_key("examples") {
                    let schema = map.get("schema").unwrap_or(node);
                    for (name, example) in media_examples(spec, node) {
                        out.push((format!("{at}/{name}"), schema, example));
                    }
                }
                for (key, value) in map {
                    if key != "example" && key != "examples" {
                        walk(spec, value, &format!("{at}/{key}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(spec, item, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, spec, "#", &mut out);
    out
}

#[test]
fn every_example_in_the_spec_validates_against_its_schema() {
    let spec = spec();
    let examples = spec_examples(&spec);
    let failures: Vec<String> = examples
        .iter()
        .filter_map(|(at, schema, example)| {
            validate(&spec, schema, example)
                .err()
                .map(|e| format!("{at}: {example} is invalid: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The walk finds the examples of every kind of place: a response, a request body, a
    // parameter, a schema.
    for place in [
        "#/paths/~1topologies~1{topology_id}/get/responses/200/content/application/json/example",
        "#/paths/~1auth~1client~1token/post/requestBody/content/application/x-www-form-urlencoded/example",
        "#/components/parameters/PhysicalId/example",
        "#/components/schemas/Timestamp/example",
    ] {
        let place = place.replace("~1", "/");
        assert!(
            examples.iter().any(|(at, _, _)| *at == place),
            "no example at {place}; found: {:#?}",
            examples.iter().map(|(at, _, _)| at).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_timestamp_schema_takes_every_shape_the_docs_show_and_the_type_reads_them() {
    let spec = spec();
    let schema = json!({"$ref": "#/components/schemas/Timestamp"});
    for shape in [
        "2020-12-16 13:51:58",
        "2021-05-26T00:00:00.000",
        "2026-03-29T15:24:07Z",
        "2022-01-29T05:59:57.000Z",
        "2021-05-27T13:42:58.721+02:00",
    ] {
        validate(&spec, &schema, &json!(shape)).unwrap_or_else(|e| panic!("{shape}: {e}"));
        shape
            .parse::<Timestamp>()
            .unwrap_or_else(|e| panic!("{shape}: {e}"));
    }
    for not_one in [
        "2021-05-26",
        "yesterday",
        "2021-05-26T00:00",
        "1608126718",
        "",
    ] {
        assert!(
            validate(&spec, &schema, &json!(not_one)).is_err(),
            "{not_one:?} is a timestamp to the spec"
        );
    }
}

#[test]
fn the_schema_check_notices_invalid_values() {
    // The checker itself must be able to fail: a wrong type, a missing required key, a null
    // where none is allowed, and the converted `nullable` accepting null.
    let spec = spec();
    let device = json!({"$ref": "#/components/schemas/Device"});
    validate(&spec, &device, &json!({"physical_id": "x", "name": null})).unwrap();
    assert!(validate(&spec, &device, &json!({"name": "no id"})).is_err());
    assert!(validate(&spec, &device, &json!({"physical_id": 5})).is_err());
    assert!(validate(&spec, &device, &json!({"physical_id": null})).is_err());
    let topology = json!({"$ref": "#/components/schemas/TopologyDetails"});
    let bad_time = json!({"gateway_id": "g", "created_at": "16/12/2020"});
    assert!(validate(&spec, &topology, &bad_time).is_err());
}

/// The reference page of the API, as text: the source the spec was reconstructed from.
fn docs_page() -> String {
    let path = spec_path().with_file_name("leapcraft-api-docs.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The JSON samples of the reference page, in page order. The page's text marks each member
/// and item with a `- ` (`{- "type": "bearer",`), which is dropped outside strings (in JSON a
/// `-` there could only start a number, never be followed by a space).
fn docs_json_samples(page: &str) -> Vec<Value> {
    let mut samples = Vec::new();
    let mut rest = page;
    while let Some(start) = ["{- ", "[- "]
        .iter()
        .filter_map(|opening| rest.find(opening))
        .min()
    {
        let mut json = String::new();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut chars = rest[start..].char_indices().peekable();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            if in_string {
                in_string = c != '"' || escaped;
                escaped = c == '\\' && !escaped;
            } else if c == '-' && chars.peek().map(|&(_, next)| next) == Some(' ') {
                continue;
            } else if c == '"' {
                in_string = true;
            } else if c == '{' || c == '[' {
                depth += 1;
            } else if c == '}' || c == ']' {
                depth -= 1;
            }
            json.push(c);
            if depth == 0 {
                end = start + i + c.len_utf8();
                break;
            }
        }
        samples.push(
            serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("a sample of the docs is not JSON ({e}): {json}")),
        );
        rest = &rest[end..];
    }
    samples
}

/// A request of the reference page's `curl` samples.
struct DocsRequest {
    method: String,
    /// Path below the base URL, such as `/devices/testsim00004`.
    path: String,
    query: Vec<(String, String)>,
    /// The `-d` form body, as pairs.
    form: Vec<(String, String)>,
}

/// The `curl` samples of the reference page, in page order.
fn docs_requests(page: &str) -> Vec<DocsRequest> {
    fn pairs(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }
    page.lines()
        .filter_map(|line| line.split_once("curl -X ").map(|(_, command)| command))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let url = words[1].trim_matches('"');
            let below = url
                .strip_prefix("https://api.leapcraft.com/v1")
                .unwrap_or_else(|| panic!("{url} is not below the base URL"));
            let (path, query) = below.split_once('?').unwrap_or((below, ""));
            let form = line
                .split_once(" -d ")
                .map_or_else(Vec::new, |(_, data)| pairs(data.trim().trim_matches('"')));
            DocsRequest {
                method: words[0].to_lowercase(),
                path: path.to_owned(),
                query: pairs(query),
                form,
            }
        })
        .collect()
}

/// The values of the path parameters of `path` if it is an instance of `template`.
fn path_match(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    if template.len() != path.len() {
        return None;
    }
    let mut values = Vec::new();
    for (t, p) in template.iter().zip(path) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) => values.push((name.to_owned(), p.to_owned())),
            None if t == &p => {}
            None => return None,
        }
    }
    Some(values)
}

/// The parameter `name` of operation `op` (path-level and operation-level, `$ref`s resolved).
fn parameter<'a>(spec: &'a Value, op: &Operation<'a>, name: &str) -> Option<&'a Value> {
    let item = &spec["paths"][&op.path];
    [&item["parameters"], &op.value["parameters"]]
        .into_iter()
        .flat_map(|list| list.as_array().into_iter().flatten())
        .map(|p| resolve(spec, p))
        .find(|p| p["name"] == name)
}

/// A value from a URL or a form as the JSON value its schema types: a number where the schema
/// says integer, the string otherwise.
fn typed(spec: &Value, schema: &Value, text: &str) -> Value {
    match resolve(spec, schema)["type"].as_str() {
        Some("integer") => text
            .parse::<i64>()
            .map_or_else(|_| json!(text), |n| json!(n)),
        _ => json!(text),
    }
}

#[test]
fn every_sample_of_the_docs_validates_and_is_the_specs_example() {
    let spec = spec();
    let ops = operations(&spec);
    let page = docs_page();
    let mut failures = Vec::new();

    // The page shows one sample response per operation, in the order of KNOWN_OPERATIONS.
    let samples = docs_json_samples(&page);
    assert_eq!(
        samples.len(),
        KNOWN_OPERATIONS.len(),
        "one sample per operation: {samples:#?}"
    );
    for (id, sample) in KNOWN_OPERATIONS.iter().zip(&samples) {
        let op = ops
            .iter()
            .find(|op| op.id == *id)
            .unwrap_or_else(|| panic!("no operation {id} in the spec"));
        let media = &resolve(&spec, &op.value["responses"]["200"])["content"]["application/json"];
        if let Err(e) = validate(&spec, &media["schema"], sample) {
            failures.push(format!("{} sample response: {e}", op.id));
        }
        if media["example"] != *sample {
            failures.push(format!(
                "{} sample response differs from the spec's example: {sample} vs {}",
                op.id, media["example"]
            ));
        }
    }

    // Every parameter and form field of the page's requests validates against its schema.
    let requests = docs_requests(&page);
    assert_eq!(requests.len(), 7, "the curl samples of the page");
    for request in &requests {
        let Some((op, path_values)) = ops.iter().find_map(|op| {
            (op.method == request.method)
                .then(|| path_match(&op.path, &request.path))
                .flatten()
                .map(|values| (op, values))
        }) else {
            failures.push(format!(
                "{} {}: no such operation",
                request.method, request.path
            ));
            continue;
        };
        for (name, text) in path_values.iter().chain(&request.query) {
            let Some(parameter) = parameter(&spec, op, name) else {
                failures.push(format!("{}: no parameter {name}", op.id));
                continue;
            };
            let value = typed(&spec, &parameter["schema"], text);
            if let Err(e) = validate(&spec, &parameter["schema"], &value) {
                failures.push(format!("{} parameter {name}={text}: {e}", op.id));
            }
        }
        if !request.form.is_empty() {
            let content = &resolve(&spec, &op.value["requestBody"])["content"];
            let schema = &content["application/x-www-form-urlencoded"]["schema"];
            let body: Map<String, Value> = request
                .form
                .iter()
                .map(|(name, text)| {
                    let property = &resolve(&spec, schema)["properties"][name];
                    (name.clone(), typed(&spec, property, text))
                })
                .collect();
            if let Err(e) = validate(&spec, schema, &Value::Object(body)) {
                failures.push(format!("{} form body: {e}", op.id));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_docs_samples_parse_as_the_page_shows_them() {
    // The extraction itself must be right: spot checks on the page's text.
    let page = docs_page();
    let samples = docs_json_samples(&page);
    assert_eq!(
        samples[0],
        json!({"type": "bearer", "token": "9e65a545de443ccbe72c0bbfbe638f2fFJwyr..."})
    );
    assert_eq!(samples[5]["created_at"], "2020-12-16 13:51:58");
    assert_eq!(samples[7][0]["parameters"][6]["payload"], "p6");
    let requests = docs_requests(&page);
    let telemetry = requests
        .iter()
        .find(|r| r.path.starts_with("/telemetry/"))
        .expect("a telemetry sample");
    assert_eq!(telemetry.path, "/telemetry/testsim00004");
    assert!(
        telemetry
            .query
            .contains(&("from".to_owned(), "2021-05-26T00:00:00.000".to_owned()))
    );
    assert_eq!(
        requests[0].form,
        [("api_key".to_owned(), "YOUR_API_KEY".to_owned())]
    );
    assert_eq!(
        path_match("/devices/{id}", "/devices/a"),
        Some(vec![("id".to_owned(), "a".to_owned())])
    );
    assert_eq!(path_match("/devices/{id}", "/things/a"), None);
    assert_eq!(
        docs_json_samples("x {- \"a\": \"- b\", - \"c\": -1}"),
        [json!({"a": "- b", "c": -1})]
    );
}
