//! `leapcraft`: the command-line tool for the Leapcraft Client API.
//!
//! ```text
//! leapcraft [--base-url URL] [--api-key KEY] [--format table|json|csv] [--demo] <COMMAND>
//! ```
//!
//! Exit codes: 0 success, 2 usage error, 3 authentication failure (or no key), 4 not found,
//! 1 anything else. Errors are one line on stderr and never hold the key or a token.

#![deny(missing_docs)]

mod args;
mod chart;
mod commands;
mod error;
mod output;
mod serve;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use leapcraft_ext::{Client, RetryPolicy};

use crate::args::Cli;
use crate::error::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("leapcraft: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_broken_pipe() => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("leapcraft: {}", failure.message());
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // With --demo, a fake server lives as long as the command runs.
    let (demo, base_url, api_key) = if cli.demo {
        // Readings as of now, a new one a minute: current enough for `serve` to show them.
        let fake = leapcraft_fake::FakeServer::builder()
            .fresh_readings(true)
            .live(Duration::from_secs(60))
            .start()
            .await
            .map_err(|e| Failure::Other(format!("cannot start the demo server: {e}")))?;
        let (url, key) = (fake.base_url().to_owned(), fake.api_key().to_owned());
        (Some(fake), Some(url), Some(key))
    } else {
        (None, cli.base_url, cli.api_key)
    };
    let api_key = api_key
        .filter(|k| !k.trim().is_empty())
        .ok_or(Failure::NoKey)?;
    let mut builder = Client::builder()
        .api_key(api_key)
        .app_name(concat!("leapcraft-cli/", env!("CARGO_PKG_VERSION")))
        .allow_insecure_http(cli.allow_insecure_http)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(cli.max_attempts)
                .with_max_retry_after(Duration::from_secs_f64(cli.max_retry_wait)),
        );
    if let Some(url) = base_url.filter(|u| !u.trim().is_empty()) {
        builder = builder.base_url(url.trim());
    }
    let client = builder.build()?;
    let result = commands::run(&client, cli.command, cli.format).await;
    if let Some(fake) = demo {
        fake.shutdown().await;
    }
    result
}
