//! The command line: global options and one subcommand per family of operations.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use leapcraft_ext::{Resolution, Timestamp};

/// `leapcraft`: devices, telemetry, topologies, notifications and things of a Leapcraft
/// account, from the command line.
///
/// The API key comes from `--api-key` or `LEAPCRAFT_API_KEY`; `--demo` needs none and runs
/// against a fake server started in-process.
#[derive(Debug, Parser)]
#[command(
    name = "leapcraft",
    version,
    about = "Devices, telemetry, topologies, notifications and things of a Leapcraft account.",
    long_about = None,
    after_help = "The API key comes from --api-key or LEAPCRAFT_API_KEY; --demo needs none.\n\
                  Exit codes: 0 success, 2 usage error, 3 authentication failure or no key, \
                  4 not found, 1 anything else.\n\n\
                  Examples:\n  \
                  leapcraft --demo devices\n  \
                  leapcraft --demo --format json latest --all\n  \
                  leapcraft telemetry D2:C1:AA:FF:3E:09 --averages daily --from 2026-03-01 --to 2026-03-08 --chart week.svg"
)]
pub struct Cli {
    /// Base URL of the API.
    #[arg(
        long,
        global = true,
        env = "LEAPCRAFT_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub base_url: Option<String>,

    /// API key of the account (never printed).
    #[arg(
        long,
        global = true,
        env = "LEAPCRAFT_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Run against a fake server started in-process, with demo data: no key needed.
    #[arg(long, global = true)]
    pub demo: bool,

    /// Attempts per API call, the first included (failed calls are retried with backoff).
    #[arg(long, global = true, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// The longest wait, in seconds, honoured when the server asks to retry later.
    #[arg(long, global = true, default_value_t = 30.0, value_name = "SECONDS",
          value_parser = parse_seconds)]
    pub max_retry_wait: f64,

    /// Allow a plain `http://` base URL to a host other than loopback (the key and the
    /// token then cross the network in clear text).
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How records are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// The records as JSON: an array for lists, an object for one item.
    Json,
    /// A header row, then one row per record.
    Csv,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List devices: one page, or all of them.
    Devices(DevicesArgs),
    /// Show one device.
    Device {
        /// The device's physical id, such as `D2:C1:AA:FF:3E:09`.
        physical_id: String,
    },
    /// Telemetry of a device: the latest reading, or averages over a range.
    Telemetry(TelemetryArgs),
    /// The latest reading of some devices, or of all of them.
    Latest(LatestArgs),
    /// List topologies (gateways and their devices).
    Topologies,
    /// Show one topology.
    Topology {
        /// The topology's gateway id, such as `0123245cf74c60d7ee`.
        gateway_id: String,
    },
    /// List notifications, or follow new ones as they appear.
    Notifications(NotificationsArgs),
    /// List things and their parameters.
    Things(ThingsArgs),
    /// Export the readings to Prometheus: poll in the background, serve `/metrics`.
    Serve(crate::serve::ServeArgs),
}

/// `devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Every device of the account, page after page.
    #[arg(long, conflicts_with_all = ["limit", "page"])]
    pub all: bool,
    /// Devices per page.
    #[arg(long, default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Which page, from 1.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Devices per request with `--all`.
    #[arg(long, default_value_t = 100, value_name = "N", requires = "all",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

/// `telemetry`.
#[derive(Debug, Args)]
pub struct TelemetryArgs {
    /// The device's physical id.
    pub physical_id: String,
    /// Averages at this resolution instead of the latest reading.
    #[arg(long, value_enum, value_name = "RESOLUTION")]
    pub averages: Option<ResolutionArg>,
    /// Start of the range (default: the end minus 7 days, 8 weeks or 12 months).
    /// Accepts `2021-05-20`, `2021-05-20T00:00:00Z`, `2021-05-20 00:00:00`...
    #[arg(long, value_name = "T", value_parser = parse_timestamp)]
    pub from: Option<Timestamp>,
    /// End of the range (default: now).
    #[arg(long, value_name = "T", value_parser = parse_timestamp)]
    pub to: Option<Timestamp>,
    /// Draw the averages of each metric as an SVG line chart into this file (daily
    /// averages unless `--averages` says otherwise).
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

/// `latest`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["all", "physical_ids"])))]
pub struct LatestArgs {
    /// Every device of the account.
    #[arg(long)]
    pub all: bool,
    /// The devices' physical ids.
    #[arg(value_name = "PHYSICAL_ID")]
    pub physical_ids: Vec<String>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = leapcraft_ext::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = parse_concurrency)]
    pub concurrency: usize,
}

/// `notifications`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Only the notifications of this device.
    #[arg(long, value_name = "PHYSICAL_ID")]
    pub device: Option<String>,
    /// Every notification.
    #[arg(long, conflicts_with_all = ["limit", "offset"])]
    pub all: bool,
    /// How many notifications.
    #[arg(long, default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// How many to skip first.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u32,
    /// Print new notifications as they appear, until Ctrl-C (JSON: one object per line).
    #[arg(long, conflicts_with_all = ["all", "offset"])]
    pub follow: bool,
    /// Seconds between two polls with `--follow`.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", requires = "follow",
          value_parser = parse_seconds)]
    pub interval: f64,
}

/// `things`.
#[derive(Debug, Args)]
pub struct ThingsArgs {
    /// Every thing.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// How many things.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

/// A resolution of averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResolutionArg {
    /// One average per day.
    Daily,
    /// One average per week.
    Weekly,
    /// One average per month.
    Monthly,
}

impl ResolutionArg {
    /// The SDK's resolution.
    pub fn resolution(self) -> Resolution {
        match self {
            Self::Daily => Resolution::Daily,
            Self::Weekly => Resolution::Weekly,
            Self::Monthly => Resolution::Monthly,
        }
    }

    /// The default span of a range at this resolution.
    pub fn default_span(self) -> chrono::Duration {
        match self {
            Self::Daily => chrono::Duration::days(7),
            Self::Weekly => chrono::Duration::weeks(8),
            Self::Monthly => chrono::Duration::days(365),
        }
    }
}

fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>().map_err(|e| e.to_string())
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0 to 86400")),
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a number from 1 to 1024")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn devices_all_conflicts_with_paging() {
        assert!(Cli::try_parse_from(["leapcraft", "devices", "--all", "--page", "2"]).is_err());
        assert!(Cli::try_parse_from(["leapcraft", "latest"]).is_err());
        let cli = Cli::try_parse_from([
            "leapcraft",
            "telemetry",
            "X",
            "--averages",
            "daily",
            "--from",
            "2021-05-20",
            "--to",
            "2021-05-27 00:00:00",
        ])
        .unwrap();
        let Command::Telemetry(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.to.unwrap().to_string(), "2021-05-27T00:00:00.000Z");
    }
}
