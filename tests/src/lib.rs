//! Helpers shared by the cross-crate tests: the OpenAPI spec, read at test time, and its
//! examples.
//!
//! The spec is read from `spec/leapcraft.yaml` every time, so a test that serves or checks an
//! example follows the spec as it changes.

use std::path::PathBuf;

use serde_json::Value;

/// The HTTP methods an OpenAPI path item may hold operations under.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The path of the spec in the workspace.
pub fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("spec")
        .join("leapcraft.yaml")
}

/// The spec, parsed from YAML and converted to JSON values.
pub fn spec() -> Value {
    let path = spec_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    serde_json::to_value(yaml).expect("the spec converts to JSON values")
}

/// Follows a local `$ref` (`#/components/...`) if `value` is one; otherwise returns `value`.
pub fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references are supported: {reference}"));
            let target = spec
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {reference}"));
            resolve(spec, target)
        }
        None => value,
    }
}

/// One operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation<'a> {
    /// Its `operationId`.
    pub id: String,
    /// Its HTTP method, lower case.
    pub method: String,
    /// Its path template, such as `/devices/{physical_id}`.
    pub path: String,
    /// The operation object.
    pub value: &'a Value,
}

/// Every operation of the spec, by path, then in the order of [`METHODS`].
pub fn operations(spec: &Value) -> Vec<Operation<'_>> {
    let paths = spec["paths"].as_object().expect("the spec has paths");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = resolve(spec, item);
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                    .to_owned();
                ops.push(Operation {
                    id,
                    method: method.to_owned(),
                    path: path.clone(),
                    value: op,
                });
            }
        }
    }
    ops
}

/// The examples of a media type object: its `example`, and the `value` of each of its
/// `examples` (named after the example).
pub fn media_examples(spec: &Value, media: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    if let Some(example) = media.get("example") {
        found.push(("example".to_owned(), example.clone()));
    }
    if let Some(examples) = media.get("examples").and_then(Value::as_object) {
        for (name, example) in examples {
            let example = resolve(spec, example);
            let value = example
                .get("value")
                .unwrap_or_else(|| panic!("example {name} has no inline value"));
            found.push((format!("examples/{name}"), value.clone()));
        }
    }
    found
}

/// The one `application/json` example of the response `status` of operation `operation_id`.
///
/// Panics unless there is exactly one, so that a test serving "the docs' sample" notices when
/// the spec grows a second one.
pub fn response_example(operation_id: &str, status: &str) -> Value {
    let spec = spec();
    let op = operations(&spec)
        .into_iter()
        .find(|op| op.id == operation_id)
        .unwrap_or_else(|| panic!("no operation {operation_id} in the spec"));
    let response = resolve(&spec, &op.value["responses"][status]);
    let media = &response["content"]["application/json"];
    let mut examples = media_examples(&spec, media);
    assert_eq!(
        examples.len(),
        1,
        "{operation_id} {status}: expected exactly one example"
    );
    examples.remove(0).1
}
