//! Project automation.
//!
//! `cargo xtask regen` regenerates `leapcraft-api/src/generated.rs` from `spec/leapcraft.yaml`;
//! `cargo xtask regen --check` regenerates in memory and fails, naming the stale file, when the
//! checked-in code differs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
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
    let outputs = [(GENERATED, generate(&spec_text)?)];
    for (file, code) in outputs {
        let target = root.join(file);
        if check {
            let current = std::fs::read_to_string(&target).unwrap_or_default();
            if current != code {
                bail!("{file} is stale: it does not match {SPEC}; run `cargo xtask regen`");
            }
            println!("{file} is up to date");
        } else {
            std::fs::write(&target, code).with_context(|| format!("writing {file}"))?;
            println!("wrote {file}");
        }
    }
    Ok(())
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
    let (tokens, rewritten) = checked_path_segments(tokens);
    let parameters = path_parameters(&spec);
    if rewritten != parameters {
        bail!(
            "progenitor encoded {rewritten} path parameters with `encode_path`, the spec has \
             {parameters}: update `checked_path_segments`"
        );
    }
    let file: syn::File = syn::parse2(tokens).context("parsing generated tokens")?;
    let body = prettyplease::unparse(&file);
    Ok(format!(
        "{}\
         // progenitor puts a 4XX arm before the 401 and 404 arms (same type): they never match.\n\
         #![allow(clippy::all, clippy::pedantic, missing_docs, unused_imports, unreachable_patterns, rustdoc::all)]\n\n{body}",
        header(spec_text)
    ))
}

/// Routes every path parameter of the generated code through `leapcraft-api`'s own segment
/// check (`leapcraft-api/src/path.rs`), which refuses what no encoding can carry (empty, `.` and
/// `..`: URL parsers resolve dot segments, even escaped) and encodes more than progenitor's
/// `encode_path` (which leaves `\`, read as `/` by URL parsers, alone). The rewrite is made on
/// the token stream, where the calls sit inside `format!` arguments: `encode_path(ARGS)`
/// becomes `crate::path::segment(ARGS).map_err(Error::InvalidRequest)?`. Returns the count of
/// calls rewritten, which the caller checks against the spec.
fn checked_path_segments(tokens: TokenStream) -> (TokenStream, usize) {
    let mut count = 0;
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(token) = iter.next() {
        match token {
            TokenTree::Ident(ident) if ident == "encode_path" => {
                let Some(TokenTree::Group(args)) = iter.next_if(
                    |t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis),
                ) else {
                    out.push(TokenTree::Ident(ident));
                    continue;
                };
                let (inner, nested) = checked_path_segments(args.stream());
                count += 1 + nested;
                let args = Group::new(Delimiter::Parenthesis, inner);
                out.extend(quote::quote! {
                    crate::path::segment #args .map_err(Error::InvalidRequest)?
                });
            }
            TokenTree::Group(group) => {
                let (inner, nested) = checked_path_segments(group.stream());
                count += nested;
                let mut rebuilt = Group::new(group.delimiter(), inner);
                rebuilt.set_span(group.span());
                out.push(TokenTree::Group(rebuilt));
            }
            other => out.push(other),
        }
    }
    (out.into_iter().collect(), count)
}

/// How many path parameters the spec's operations have, all operations together.
fn path_parameters(spec: &openapiv3::OpenAPI) -> usize {
    spec.paths
        .paths
        .iter()
        .map(|(path, item)| {
            let operations = item.as_item().map_or(0, |item| item.iter().count());
            path.matches('{').count() * operations
        })
        .sum()
}

/// The first lines of every generated file: what made it, and from which spec.
fn header(spec_text: &str) -> String {
    let digest = Sha256::digest(spec_text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "// @generated by `cargo xtask regen`: do not edit by hand.\n\
         // Source: {SPEC} (sha256 {hex}).\n"
    )
}
