//! Project automation.
//!
//! `cargo xtask regen` regenerates `leapcraft-api/src/generated.rs` from `spec/leapcraft.yaml`;
//! `cargo xtask regen --check` regenerates in memory and fails, naming the stale file, when the
//! checked-in code differs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle, TypeImpl};
use schemars08::schema::{InstanceType, SchemaObject};
use sha2::{Digest, Sha256};

const SPEC: &str = "spec/leapcraft.yaml";
const GENERATED: &str = "leapcraft-api/src/generated.rs";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["regen"] => regen(false),
        ["regen", "--check"] => regen(true),
        _ => {
            eprintln!("usage: cargo xtask regen [--check]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn regen(check: bool) -> Result<()> {
    let root = workspace_root();
    let spec_text =
        std::fs::read_to_string(root.join(SPEC)).with_context(|| format!("reading {SPEC}"))?;
    let code = generate(&spec_text)?;
    let target = root.join(GENERATED);
    if check {
        let current = std::fs::read_to_string(&target).unwrap_or_default();
        if current != code {
            bail!("{GENERATED} is stale: it does not match {SPEC}; run `cargo xtask regen`");
        }
        println!("{GENERATED} is up to date");
    } else {
        std::fs::write(&target, code).with_context(|| format!("writing {GENERATED}"))?;
        println!("wrote {GENERATED}");
    }
    Ok(())
}

/// Rewrites every call `CALL(ARGS)` in `code` as `wrap(ARGS)`.
fn rewrite_calls(code: &str, call: &str, wrap: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(start) = rest.find(call) {
        let args = &rest[start + call.len()..];
        let mut depth = 1;
        let end = args
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("generated code has balanced parentheses");
        out.push_str(&rest[..start]);
        out.push_str(&wrap(&args[..end]));
        rest = &args[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Routes every path parameter of the generated code through `leapcraft-api`'s own segment
/// encoder (`leapcraft-api/src/path.rs`), which refuses what no encoding can carry (empty,
/// `.` and `..`: URL parsers resolve dot segments, even escaped) and encodes more than
/// progenitor's `encode_path` (which leaves `\`, read as `/` by URL parsers, alone):
/// `encode_path(ARGS)` becomes `crate::path::segment(ARGS).map_err(Error::InvalidRequest)?`.
fn checked_path_segments(code: &str) -> String {
    rewrite_calls(code, "encode_path(", |args| {
        format!("crate::path::segment({args}).map_err(Error::InvalidRequest)?")
    })
}

/// Builds every request URL from the client's base URL parsed once (`crate::path::url`)
/// instead of having reqwest parse the whole URL string each time (the host's IDNA
/// processing makes that most of a request's URL cost): `let url = format!(ARGS)` becomes
/// `let url = crate::path::url(client, &format!(ARGS)).map_err(Error::InvalidRequest)?`.
fn parsed_urls(code: &str) -> String {
    rewrite_calls(code, "let url = format!(", |args| {
        format!(
            "let url = crate::path::url(client, &format!({args})).map_err(Error::InvalidRequest)?"
        )
    })
}

/// Decodes responses with `leapcraft-api`'s own `response::from_response`, which moves the
/// headers into the `ResponseValue` where progenitor's copies them:
/// `ResponseValue::from_response(` becomes `crate::response::from_response(`.
fn headers_moved(code: &str) -> String {
    code.replace(
        "ResponseValue::from_response(",
        "crate::response::from_response(",
    )
}

/// Makes header names and values given as string literals constants, checked when compiling
/// instead of on every request: `HeaderValue::from_static("...")` becomes
/// `const { HeaderValue::from_static("...") }` (the same for `HeaderName`).
fn const_headers(code: &str) -> String {
    let mut code = code.to_owned();
    for call in [
        "::reqwest::header::HeaderValue::from_static(",
        "::reqwest::header::HeaderName::from_static(",
    ] {
        code = rewrite_calls(&code, call, |args| {
            let literal = args.trim();
            if literal.starts_with('"') && literal.ends_with('"') {
                format!("const {{ {call}{literal}) }}")
            } else {
                format!("{call}{args})")
            }
        });
    }
    code
}

/// Generates the client source for a spec: deterministic, formatted, with a header that names
/// the spec's SHA-256.
fn generate(spec_text: &str) -> Result<String> {
    let spec: openapiv3::OpenAPI = serde_yaml::from_str(spec_text).context("parsing the spec")?;

    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq")
        // The hooks live in hand-written glue (`hooks.rs`) so the ext crate can supply auth
        // and retries; `Expected` turns a missing impl into a compile error.
        .with_hooks(HooksMode::Expected)
        .with_inner_type("crate::Hooks".parse().expect("a valid path"))
        .with_map_type("::std::collections::BTreeMap")
        // The API's timestamps come in shapes chrono's `DateTime<Utc>` rejects
        // (`2020-12-16 13:51:58`): use our lenient type for every `date-time`.
        .with_conversion(
            SchemaObject {
                instance_type: Some(InstanceType::String.into()),
                format: Some("date-time".to_string()),
                ..Default::default()
            },
            "crate::Timestamp",
            [TypeImpl::Display, TypeImpl::FromStr].into_iter(),
        );

    let tokens = Generator::new(&settings)
        .generate_tokens(&spec)
        .map_err(|e| anyhow::anyhow!("progenitor: {e}"))?;
    let file: syn::File = syn::parse2(tokens).context("parsing generated tokens")?;
    let code = prettyplease::unparse(&file);
    // The rewrites below match progenitor's output as it is: fail loudly when it changes.
    for expected in [
        "encode_path(",
        "let url = format!(",
        "ResponseValue::from_response(",
        "HeaderValue::from_static(\"",
    ] {
        if !code.contains(expected) {
            bail!("progenitor's output has no `{expected}` any more: update the xtask's rewrites");
        }
    }
    let body = const_headers(&headers_moved(&parsed_urls(&checked_path_segments(&code))));

    let digest = Sha256::digest(spec_text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "// @generated by `cargo xtask regen`: do not edit by hand.\n\
         // Source: {SPEC} (sha256 {hex}).\n\
         // progenitor puts a 4XX arm before the 401 and 404 arms (same type): they never match.\n\
         #![allow(clippy::all, clippy::pedantic, missing_docs, unused_imports, unreachable_patterns, rustdoc::all)]\n\n{body}"
    ))
}
