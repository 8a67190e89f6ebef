//! The command line: global options, and the subcommands (each defined with the command
//! that runs it, in [`crate::commands`]).

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::commands::completions::CompletionsArgs;
use crate::commands::devices::{DeviceArgs, DevicesArgs};
use crate::commands::export::ExportArgs;
use crate::commands::latest::LatestArgs;
use crate::commands::notifications::NotificationsArgs;
use crate::commands::telemetry::TelemetryArgs;
use crate::commands::things::ThingsArgs;
use crate::commands::topologies::TopologyArgs;
use crate::output::Format;
use crate::values;

/// The heading of the options every subcommand takes, apart from its own in `--help`.
const GLOBAL: &str = "Global options";

/// `leapcraft`: devices, telemetry, topologies, notifications and things of a Leapcraft
/// account, from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "leapcraft",
    version,
    about = "Devices, telemetry, topologies, notifications and things of a Leapcraft account.",
    long_about = None,
    after_help = "The API key comes from --api-key-file, --api-key or LEAPCRAFT_API_KEY, or a profile; --demo needs none.\n\
                  Each setting comes from its flag, else its environment variable, else the profile \
                  (--profile, LEAPCRAFT_PROFILE, else `default`) of the config file, else its default. \
                  A profile in config.toml ($LEAPCRAFT_CONFIG, or ~/.config/leapcraft/ on Linux):\n  \
                  [profile.default]\n  \
                  api-key-file = \"~/.config/leapcraft/key\"   # or api-key = \"...\" (then chmod 600 the file)\n  \
                  base-url = \"https://...\"\n  \
                  max-attempts = 5\n  \
                  max-retry-wait = \"30s\"\n  \
                  max-rps = 20\n  \
                  allow-insecure-http = false\n\
                  Exit codes: 0 success, 2 usage error, 3 authentication failure or no key, \
                  4 not found, 130 interrupted, 1 anything else.\n\
                  Server text never reaches the terminal raw: control characters are shown \
                  escaped (\\u{1b}). Tables fit the terminal (or $COLUMNS), cutting wide cells \
                  with an ellipsis.\n\n\
                  Examples:\n  \
                  leapcraft --demo devices\n  \
                  leapcraft --demo --format json latest --all\n  \
                  leapcraft telemetry D2:C1:AA:FF:3E:09 --averages daily --from 2026-03-01 --to 2026-03-08 --chart week.svg\n  \
                  leapcraft export --averages daily --from 2026-03-01 --to 2026-04-01 --out march.csv"
)]
pub struct Cli {
    /// Where the API is and how to call it.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How much is logged on stderr, and in which form.
    #[command(flatten)]
    pub logs: LogArgs,

    /// Output format. In CSV, a cell a spreadsheet would run as a formula (it starts with
    /// =, +, -, @, a tab or a carriage return and is not a number) gets a leading ', so that
    /// it shows as text.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table,
          help_heading = GLOBAL)]
    pub format: Format,

    /// Write CSV cells exactly as received, formulas included: for CSV read by programs
    /// only, never opened in a spreadsheet.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub raw_csv: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the API is and how to call it. Each setting left unset here (by a flag or the
/// environment) is taken from the profile, then from its default: see
/// [`crate::config::resolve`].
#[derive(Debug, Default, Args)]
#[command(next_help_heading = GLOBAL)]
pub struct ConnectionArgs {
    /// Take the settings that no flag or environment variable gives from this profile of the
    /// config file (without it: the profile `default`, if the file has one). The file is
    /// config.toml in the platform's config directory ($XDG_CONFIG_HOME/leapcraft or
    /// ~/.config/leapcraft on Linux), or the one $LEAPCRAFT_CONFIG names.
    #[arg(long, global = true, env = "LEAPCRAFT_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

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
        value_name = "KEY",
        value_parser = values::secret
    )]
    pub api_key: Option<SecretString>,

    /// Read the API key from this file (its first line) instead: kept out of `ps` and the
    /// shell's history. Refused if others than its owner can read it (chmod 600).
    #[arg(long, global = true, value_name = "FILE")]
    pub api_key_file: Option<std::path::PathBuf>,

    /// Run against a fake server started in-process, with demo data: no key needed.
    #[cfg(feature = "demo")]
    #[arg(long, global = true)]
    pub demo: bool,

    /// Attempts per API call, the first included (failed calls are retried with backoff)
    /// [default: 5].
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: Option<u32>,

    /// The longest wait honoured when the server asks to retry later (a number of seconds,
    /// or such as 500ms, 30s, 2m) [default: 30s].
    #[arg(long, global = true, value_name = "DURATION", value_parser = values::duration)]
    pub max_retry_wait: Option<std::time::Duration>,

    /// At most this many requests a second (a fixed limit). Without it the client finds the
    /// API's pace by itself: it slows down when answered `429` and speeds up again after.
    #[arg(long, global = true, value_name = "N", value_parser = values::positive_rate)]
    pub max_rps: Option<f64>,

    /// Allow a plain `http://` base URL to a host other than loopback (the key and the
    /// token then cross the network in clear text).
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,
}

/// How much is logged, and in which form.
#[derive(Debug, Args)]
#[command(next_help_heading = GLOBAL)]
pub struct LogArgs {
    /// Log more on stderr: -v info, -vv debug (a line per request), -vvv trace.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log errors only, even for serve and --follow.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The form of log lines: text, or one JSON object a line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORM")]
    pub log_format: LogFormat,
}

/// The form of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines: time, level, where, message and fields.
    Text,
    /// One JSON object a line, its fields (and its span's, such as a request's) included.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The commands that call the API.
    #[command(flatten)]
    Api(ApiCommand),
    /// Print a completion script for bash, zsh, fish, powershell or elvish.
    Completions(CompletionsArgs),
    /// Print the manual page, in roff (`leapcraft man | man -l -`).
    Man,
}

impl Command {
    /// Whether the command runs until stopped (a service, a follower) rather than once.
    pub fn runs_until_stopped(&self) -> bool {
        match self {
            Self::Api(ApiCommand::Serve(_) | ApiCommand::Mqtt(_)) => true,
            Self::Api(ApiCommand::Notifications(args)) => args.follow,
            Self::Api(_) | Self::Completions(_) | Self::Man => false,
        }
    }
}

impl ApiCommand {
    /// Why `format` cannot be meant for this command, if it cannot: the command writes
    /// something else than records on stdout, whose form is its own.
    pub fn refuses_format(&self, format: Format) -> Option<String> {
        let (command, form) = match self {
            Self::Export(_) => (
                "export",
                "its file's form follows its extension (--out FILE.csv or FILE.jsonl)",
            ),
            Self::Serve(_) => ("serve", "it serves Prometheus metrics"),
            Self::Mqtt(_) => ("mqtt", "it publishes JSON to the broker"),
            _ => return None,
        };
        (format != Format::Table).then(|| format!("--format does not apply to {command}: {form}"))
    }
}

/// The subcommands that call the API.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// List devices: one page, or all of them.
    Devices(DevicesArgs),
    /// Show one device.
    Device(DeviceArgs),
    /// Telemetry of a device: the latest reading, or averages over a range.
    Telemetry(TelemetryArgs),
    /// The latest reading of some devices, or of all of them.
    Latest(LatestArgs),
    /// List topologies (gateways and their devices).
    Topologies,
    /// Show one topology.
    Topology(TopologyArgs),
    /// List notifications, or follow new ones as they appear.
    Notifications(NotificationsArgs),
    /// List things and their parameters.
    Things(ThingsArgs),
    /// Export averages of many devices to a CSV or JSON Lines file (re-run to resume).
    Export(ExportArgs),
    /// Export the readings to Prometheus: poll in the background, serve `/metrics`.
    Serve(Box<crate::serve::ServeArgs>),
    /// Publish the readings to an MQTT broker, with Home Assistant discovery.
    Mqtt(Box<crate::mqtt::MqttArgs>),
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
        let Command::Api(ApiCommand::Telemetry(t)) = cli.command else {
            panic!()
        };
        assert_eq!(t.to.unwrap().to_string(), "2021-05-27T00:00:00.000Z");
    }
}
