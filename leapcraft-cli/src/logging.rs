//! The log subscriber: what the SDK and the commands say through `tracing`, on stderr, one
//! line an event with its time, as text or JSON.
//!
//! How much: one-shot commands (`devices`, `latest`, `export`...) log warnings only (a record
//! skipped or repaired, the API refusing calls, the retry budget spent: what the user must
//! know while their output stays their own); long-running ones (`serve`, `mqtt`,
//! `notifications --follow`) log at info what an operator follows. `-v`, `-vv`, `-vvv` raise
//! the leapcraft crates to info, debug (one line per request: operation, method, path,
//! status, attempt, time taken) and trace; `-q` keeps errors only; `RUST_LOG` overrides both.
//! Other crates (HTTP internals) stay at warnings unless `RUST_LOG` asks for them.

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::args::{LogArgs, LogFormat};
use crate::error::Failure;
use crate::progress;

/// The leapcraft crates' targets (the binary's own, `leapcraft`, and `leapcraft_ext`...):
/// a directive's target matches every target it starts.
const OURS: &str = "leapcraft";

/// The filter `args` ask for, for a command that runs until stopped or not: `RUST_LOG`
/// when set.
fn filter(args: &LogArgs, runs_until_stopped: bool) -> Result<EnvFilter, Failure> {
    if let Some(directives) = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return EnvFilter::try_new(&directives)
            .map_err(|e| Failure::Usage(format!("RUST_LOG={directives}: {e}")));
    }
    Ok(EnvFilter::new(directives(args, runs_until_stopped)))
}

/// The directives of `-v`/`-q` and the command's default.
fn directives(args: &LogArgs, runs_until_stopped: bool) -> String {
    let level = match (args.quiet, args.verbose, runs_until_stopped) {
        (true, _, _) => return "error".to_owned(),
        (false, 0, false) => "warn",
        (false, 0, true) | (false, 1, _) => "info",
        (false, 2, _) => "debug",
        (false, _, _) => "trace",
    };
    // The in-process demo server is not what the user asked to watch.
    format!("warn,{OURS}={level},leapcraft_fake=warn")
}

/// Installs the subscriber for the whole process. Called once, first thing.
pub fn init(args: &LogArgs, runs_until_stopped: bool) -> Result<(), Failure> {
    let filter = filter(args, runs_until_stopped)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .with_ansi(io::stderr().is_terminal());
    let installed = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| Failure::Other(format!("cannot set up logging: {e}")))
}

/// Stderr, written with the progress bars out of the way.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        progress::suspend(|| io::stderr().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        progress::suspend(|| io::stderr().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl MakeWriter<'_> for Stderr {
    type Writer = Stderr;

    fn make_writer(&self) -> Self::Writer {
        Stderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(verbose: u8, quiet: bool) -> LogArgs {
        LogArgs {
            verbose,
            quiet,
            log_format: LogFormat::Text,
        }
    }

    #[test]
    fn one_shot_commands_are_quiet_unless_asked() {
        assert_eq!(
            directives(&args(0, false), false),
            "warn,leapcraft=warn,leapcraft_fake=warn"
        );
        assert_eq!(directives(&args(0, true), true), "error");
        assert_eq!(directives(&args(0, true), false), "error");
        assert!(directives(&args(0, false), true).contains("leapcraft=info"));
        assert!(directives(&args(1, false), false).contains("leapcraft=info"));
        assert!(directives(&args(2, false), false).contains("leapcraft=debug"));
        assert!(directives(&args(5, false), false).contains("leapcraft=trace"));
        for verbose in 1..4 {
            EnvFilter::try_new(directives(&args(verbose, false), false)).unwrap();
        }
    }
}
