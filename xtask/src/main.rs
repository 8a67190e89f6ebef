//! Project automation.
//!
//! `cargo xtask regen` regenerates, from `spec/leapcraft.yaml`, the client
//! (`leapcraft-api/src/generated.rs`) and its typed httpmock helpers
//! (`leapcraft-httpmock/src/generated.rs`); `cargo xtask regen --check` regenerates in memory and
//! fails, naming the stale file, when the checked-in code differs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle, TypeImpl};
use sha2::{Digest, Sha256};

const SPEC: &str = "spec/leapcraft.yaml";
const CLIENT: &str = "leapcraft-api/src/generated.rs";
const MOCKS: &str = "leapcraft-httpmock/src/generated.rs";

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
    let Generated { client, mocks } = generate(&spec_text)?;
    let outputs = [(CLIENT, client), (MOCKS, mocks)];
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

/// The sources generated from the spec.
struct Generated {
    /// The client, for `leapcraft-api`.
    client: String,
    /// The typed httpmock helpers, for `leapcraft-httpmock`.
    mocks: String,
}

/// Generates the sources for a spec, client and mocks by one generator with one set of
/// settings: deterministic, formatted, each with a header that names the spec's SHA-256.
fn generate(spec_text: &str) -> Result<Generated> {
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
        // The spec's `Timestamp` schema names every shape the API sends (`2020-12-16 13:51:58`
        // among them): read all of them into our lenient type.
        .with_replacement(
            "Timestamp",
            "crate::Timestamp",
            [TypeImpl::Display, TypeImpl::FromStr].into_iter(),
        );
    let mut generator = Generator::new(&settings);

    let tokens = generator
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
    let client = format!(
        "{}\
         // progenitor puts a 4XX arm before the 401 and 404 arms (same type): they never match.\n\
         #![allow(clippy::all, clippy::pedantic, missing_docs, unused_imports, unreachable_patterns, rustdoc::all)]\n\n{}",
        header(spec_text),
        unparse(tokens)?
    );

    let tokens = generator
        .httpmock(&spec, "leapcraft_api")
        .map_err(|e| anyhow::anyhow!("progenitor (httpmock): {e}"))?;
    let tokens = matching_mocks(tokens, &spec)?;
    let mocks = format!(
        "{}\
         #![allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]\n\n{}",
        header(spec_text),
        unparse(tokens)?
    );
    Ok(Generated { client, mocks })
}

/// Formats generated tokens as a source file.
fn unparse(tokens: TokenStream) -> Result<String> {
    let file: syn::File = syn::parse2(tokens).context("parsing generated tokens")?;
    Ok(prettyplease::unparse(&file))
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

/// Fixes the two matchers of progenitor's httpmock helpers that cannot match what the client
/// sends, by routing them to hand-written ones (`leapcraft-httpmock/src/matchers.rs`):
///
/// - a path parameter goes into the path regex as it is (`format!("^/devices/{}$",
///   value.to_string())`), unescaped and unencoded: `a/b` or `a.b` would match other paths, and
///   an id the client percent-encodes would never match. `crate::matchers::path_segment(value)`
///   makes the regex of every encoding of the value as one segment.
/// - a form body is matched as JSON (`json_body_obj`), which never matches a form.
///   `crate::matchers::form_body` matches the form's fields.
///
/// Each rewrite is counted against the spec, so a change in progenitor's output fails here.
fn matching_mocks(tokens: TokenStream, spec: &openapiv3::OpenAPI) -> Result<TokenStream> {
    let (tokens, rewritten) = in_groups_after(tokens, &["format", "!"], &mut |args| {
        replace_tokens(
            args,
            &quote::quote!(value.to_string()),
            &quote::quote!(crate::matchers::path_segment(value)),
        )
    });
    let parameters = path_parameters(spec);
    if rewritten != parameters {
        bail!(
            "the mocks put {rewritten} path parameters in a path regex, the spec has \
             {parameters}: update `matching_mocks`"
        );
    }

    let forms = form_operations(spec);
    let mut tokens = tokens;
    for operation_id in &forms {
        let when = format!("{}When", pascal_case(operation_id));
        let rewritten;
        (tokens, rewritten) = in_groups_after(tokens, &["impl", &when], &mut |body| {
            replace_tokens(
                body,
                &quote::quote!(self.0.json_body_obj(value)),
                &quote::quote!(crate::matchers::form_body(self.0, value)),
            )
        });
        if rewritten != 1 {
            bail!(
                "the mocks of {operation_id} match its form body {rewritten} times as JSON, \
                 expected once: update `matching_mocks`"
            );
        }
    }
    Ok(tokens)
}

/// Applies `rewrite` to the contents of every group that follows the tokens `prefix` (such as
/// `format !` or `impl Name`), at any depth; returns the total count `rewrite` reports.
fn in_groups_after(
    tokens: TokenStream,
    prefix: &[&str],
    rewrite: &mut dyn FnMut(TokenStream) -> (TokenStream, usize),
) -> (TokenStream, usize) {
    let mut count = 0;
    let mut out: Vec<TokenTree> = Vec::new();
    for token in tokens {
        let token = match token {
            TokenTree::Group(group) => {
                let after_prefix = out.len() >= prefix.len()
                    && out[out.len() - prefix.len()..]
                        .iter()
                        .zip(prefix)
                        .all(|(t, p)| t.to_string() == *p);
                let (inner, n) = if after_prefix {
                    rewrite(group.stream())
                } else {
                    in_groups_after(group.stream(), prefix, rewrite)
                };
                count += n;
                let mut rebuilt = Group::new(group.delimiter(), inner);
                rebuilt.set_span(group.span());
                TokenTree::Group(rebuilt)
            }
            other => other,
        };
        out.push(token);
    }
    (out.into_iter().collect(), count)
}

/// Replaces every run of tokens equal to `from` in `tokens`, at any depth, by `to`; returns
/// the count replaced.
fn replace_tokens(
    tokens: TokenStream,
    from: &TokenStream,
    to: &TokenStream,
) -> (TokenStream, usize) {
    let from: Vec<String> = from.clone().into_iter().map(|t| t.to_string()).collect();
    replace_runs(tokens, &from, to)
}

fn replace_runs(tokens: TokenStream, from: &[String], to: &TokenStream) -> (TokenStream, usize) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut count = 0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let run = tokens.get(i..i + from.len());
        if run.is_some_and(|run| run.iter().map(|t| t.to_string()).eq(from.iter().cloned())) {
            out.extend(to.clone());
            count += 1;
            i += from.len();
            continue;
        }
        match &tokens[i] {
            TokenTree::Group(group) => {
                let (inner, n) = replace_runs(group.stream(), from, to);
                count += n;
                let mut rebuilt = Group::new(group.delimiter(), inner);
                rebuilt.set_span(group.span());
                out.push(TokenTree::Group(rebuilt));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    (out.into_iter().collect(), count)
}

/// The operation ids of the operations with an `application/x-www-form-urlencoded` body.
fn form_operations(spec: &openapiv3::OpenAPI) -> Vec<String> {
    spec.operations()
        .filter(|(_, _, op)| {
            op.request_body.as_ref().is_some_and(|body| {
                body.as_item().is_some_and(|body| {
                    body.content
                        .contains_key("application/x-www-form-urlencoded")
                })
            })
        })
        .filter_map(|(_, _, op)| op.operation_id.clone())
        .collect()
}

/// `get_access_token` as `GetAccessToken`: how progenitor names an operation's types.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
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
