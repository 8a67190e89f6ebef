//! `leapcraft`: the command-line tool for the Leapcraft Client API.
//!
//! ```text
//! leapcraft [--profile NAME] [--base-url URL] [--api-key KEY] [--format table|json|csv]
//!           [--demo] <COMMAND>
//! ```
//!
//! Exit codes: 0 success, 2 usage error, 3 authentication failure (or no key), 4 not found,
//! 130 interrupted, 1 anything else. Errors are one line on stderr and never hold the key or
//! a token.

#![deny(missing_docs)]
// Only `output` and the final report (`error::report`) write to the terminal.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

mod args;
mod chart;
mod commands;
mod config;
mod error;
mod logging;
mod mqtt;
mod output;
mod poll;
mod progress;
mod sanitize;
mod secrets;
mod serve;
mod shutdown;
mod values;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use leapcraft_ext::{Client, RetryPolicy};
use secrecy::ExposeSecret;

use crate::args::{ApiCommand, Cli, Command, ConnectionArgs};
use crate::commands::{
    completions, devices, export, latest, man, notifications, telemetry, things, topologies,
};
use crate::config::Key;
use crate::error::{Failure, report};
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(failure) = logging::init(&cli.logs, cli.command.runs_until_stopped()) {
        report(&failure.message());
        return failure.exit_code();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_broken_pipe() => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure.message());
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let out = Output::new(cli.format, !cli.raw_csv);
    let command = match cli.command {
        Command::Completions(args) => return completions::print(args, Cli::command()),
        Command::Man => return man::print(Cli::command()),
        Command::Api(command) => command,
    };
    if let Some(refused) = command.refuses_format(cli.format) {
        return Err(Failure::Usage(refused));
    }
    let api = Api::connect(cli.connection).await?;
    let result = dispatch(&api.client, command, &out).await;
    let base_url = api.client.base_url().to_owned();
    api.close().await;
    result.map_err(|failure| failure.at_base_url(&base_url))
}

/// Runs a command that calls the API.
async fn dispatch(client: &Client, command: ApiCommand, out: &Output) -> Result<(), Failure> {
    match command {
        ApiCommand::Devices(args) => devices::list(client, args, out).await,
        ApiCommand::Device(args) => devices::show(client, args, out).await,
        ApiCommand::Telemetry(args) => telemetry::run(client, args, out).await,
        ApiCommand::Latest(args) => latest::run(client, args, out).await,
        ApiCommand::Topologies => topologies::list(client, out).await,
        ApiCommand::Topology(args) => topologies::show(client, args, out).await,
        ApiCommand::Notifications(args) => notifications::run(client, args, out).await,
        ApiCommand::Things(args) => things::list(client, args, out).await,
        ApiCommand::Export(args) => export::run(client, args, out).await,
        ApiCommand::Serve(args) => serve::run(client, *args).await,
        ApiCommand::Mqtt(args) => mqtt::run(client, *args).await,
    }
}

/// The API a command calls: the one configured, or with `--demo` a fake server started here
/// for as long as the command runs.
struct Api {
    client: Client,
    #[cfg(feature = "demo")]
    demo: Option<leapcraft_fake::FakeServer>,
}

impl Api {
    async fn connect(given: ConnectionArgs) -> Result<Self, Failure> {
        let profile = config::choose(given.profile.as_deref())?;
        let settings = config::resolve(&given, profile.as_ref());
        let api_key = match settings.key {
            Some(Key::File { path, named_by }) => Some(secrets::read_key_file(&path, &named_by)?),
            Some(Key::Given(key)) => Some(key),
            None => None,
        };
        #[cfg(feature = "demo")]
        let (demo, base_url, api_key) = if given.demo {
            // Readings as of now, a new one a minute: current enough for `serve` to show them.
            let fake = leapcraft_fake::FakeServer::builder()
                .fresh_readings(true)
                .live(std::time::Duration::from_secs(60))
                .start()
                .await
                .map_err(|e| Failure::Other(format!("cannot start the demo server: {e}")))?;
            let (url, key) = (fake.base_url().to_owned(), fake.api_key().to_owned());
            (
                Some(fake),
                Some(url),
                Some(secrecy::SecretString::from(key)),
            )
        } else {
            (None, settings.base_url, api_key)
        };
        #[cfg(not(feature = "demo"))]
        let (base_url, api_key) = (settings.base_url, api_key);

        let api_key = api_key
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or(Failure::NoKey)?;
        let mut builder = Client::builder()
            .api_key(api_key.expose_secret())
            .app_name(concat!("leapcraft-cli/", env!("CARGO_PKG_VERSION")))
            .allow_insecure_http(settings.allow_insecure_http)
            .retry_policy(
                RetryPolicy::default()
                    .with_max_attempts(settings.max_attempts)
                    .with_max_retry_after(settings.max_retry_wait),
            );
        if let Some(rate) = settings.max_rps {
            builder = builder.max_requests_per_second(rate);
        }
        if let Some(url) = base_url.filter(|u| !u.trim().is_empty()) {
            builder = builder.base_url(url.trim());
        }
        let client = match builder.clone().build() {
            Err(_)
                if !settings.allow_insecure_http
                    && builder.allow_insecure_http(true).build().is_ok() =>
            {
                return Err(Failure::Usage(
                    "the base URL is plain http to a host that is not loopback (the key would \
                     cross the network in clear text): use https, or pass --allow-insecure-http"
                        .to_owned(),
                ));
            }
            built => built?,
        };
        Ok(Self {
            client,
            #[cfg(feature = "demo")]
            demo,
        })
    }

    async fn close(self) {
        #[cfg(feature = "demo")]
        if let Some(fake) = self.demo {
            fake.shutdown().await;
        }
    }
}
