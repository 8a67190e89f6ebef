//! What can make the CLI fail, the exit code each failure maps to, and how a failure is
//! reported on stderr.

use std::io;
use std::process::ExitCode;

use leapcraft_ext::Error;

use crate::sanitize::for_terminal;

/// Exit code: anything else went wrong.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line was wrong (as clap exits on a usage error).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: authentication failed, or no API key was given.
pub const EXIT_AUTH: u8 = 3;
/// Exit code: the device, topology... does not exist (`404`).
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code: interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A failure of the CLI.
#[derive(Debug)]
pub enum Failure {
    /// A call of the SDK failed.
    Sdk(Error),
    /// A call about one device failed.
    Device(String, Error),
    /// Several devices failed (each already reported on its own line).
    Devices {
        /// How many failed.
        failed: usize,
        /// How many were asked for.
        total: usize,
    },
    /// A command over many items stopped before the end, having printed what it got.
    Stopped {
        /// Why: its exit code is the command's.
        cause: Box<Failure>,
        /// What was not read.
        left: Left,
    },
    /// No API key was given.
    NoKey,
    /// The MQTT broker refused the bridge's credentials.
    BrokerRefused(String),
    /// The arguments do not go together.
    Usage(String),
    /// Writing the output failed.
    Io(io::Error),
    /// Ctrl-C.
    Interrupted,
    /// Anything else.
    Other(String),
}

/// What a command that stopped early did not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    /// Devices (or items) known but not read.
    pub not_read: usize,
    /// How many were known.
    pub known: usize,
    /// What they are: "device", "notification"...
    pub what: &'static str,
    /// Whether the list of them was complete: if not, those after it were not read either.
    pub list_complete: bool,
}

impl Left {
    /// What was not read, or nothing when nothing was known.
    fn describe(&self) -> Option<String> {
        if self.known == 0 {
            return None;
        }
        let known = plural(self.known, self.what);
        Some(match (self.not_read, self.list_complete) {
            (0, false) => format!("{known} listed before that; those after were not read"),
            (n, complete) => format!(
                "{n} of {known} {} not read{}",
                if n == 1 { "was" } else { "were" },
                if complete {
                    ""
                } else {
                    ", nor those listed after them"
                }
            ),
        })
    }
}

/// `n` and `what`, plural unless `n` is 1: "1 device", "2 devices".
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Sdk(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Self::Other(format!("cannot encode the output: {e}"))
    }
}

fn sdk_code(e: &Error) -> u8 {
    match e {
        Error::Auth(_) => EXIT_AUTH,
        // Nothing the user asked for is missing: the API is not where it was looked for.
        _ if is_wrong_base_url(e) => EXIT_FAILURE,
        _ => match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => EXIT_AUTH,
            Some(404) => EXIT_NOT_FOUND,
            _ => EXIT_FAILURE,
        },
    }
}

/// Whether `e` says that no other call can succeed either: the key or token is not
/// accepted, or the token exchange is not where the base URL says.
pub fn is_fatal(e: &Error) -> bool {
    sdk_code(e) == EXIT_AUTH || is_wrong_base_url(e)
}

/// Whether `e` is the token exchange answered `404`: the base URL is not the API's.
fn is_wrong_base_url(e: &Error) -> bool {
    matches!(e, Error::Api(api)
        if api.operation == "get_access_token" && api.status.as_u16() == 404)
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Sdk(e) | Self::Device(_, e) => sdk_code(e),
            Self::Stopped { cause, .. } => return cause.exit_code(),
            Self::NoKey | Self::BrokerRefused(_) => EXIT_AUTH,
            Self::Usage(_) => EXIT_USAGE,
            Self::Interrupted => EXIT_INTERRUPTED,
            Self::Io(_) | Self::Devices { .. } | Self::Other(_) => EXIT_FAILURE,
        })
    }

    /// Whether this is stdout closed early (`leapcraft devices | head`): not worth a word.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// This failure, told with the base URL the client called when the base URL is what is
    /// wrong.
    pub fn at_base_url(self, base_url: &str) -> Self {
        match self {
            Self::Sdk(e) | Self::Device(_, e) if is_wrong_base_url(&e) => Self::Other(format!(
                "{e}: no token exchange at {base_url}/auth/client/token; is --base-url \
                 (or LEAPCRAFT_BASE_URL) the API's? It ends in /v1, as in {}",
                leapcraft_ext::DEFAULT_BASE_URL
            )),
            Self::Stopped { cause, left } => Self::Stopped {
                cause: Box::new(cause.at_base_url(base_url)),
                left,
            },
            other => other,
        }
    }

    /// The message for stderr. The SDK's messages never hold the key or a token.
    pub fn message(&self) -> String {
        match self {
            Self::Sdk(e) if sdk_code(e) == EXIT_NOT_FOUND => format!("not found: {e}"),
            Self::Sdk(e) => e.to_string(),
            Self::Device(id, e) => format!("{id}: {e}"),
            Self::Devices { failed, total } => {
                format!(
                    "{failed} of {} failed (listed above)",
                    plural(*total, "device")
                )
            }
            Self::Stopped { cause, left } => match left.describe() {
                Some(left) => format!("{}; {left}", cause.message()),
                None => cause.message(),
            },
            Self::NoKey => format!(
                "no API key: pass --api-key-file or --api-key, set {}, or try --demo",
                leapcraft_ext::API_KEY_ENV
            ),
            Self::Usage(m) | Self::BrokerRefused(m) => m.clone(),
            Self::Io(e) => format!("cannot write the output: {e}"),
            Self::Interrupted => "interrupted".to_owned(),
            Self::Other(m) => m.clone(),
        }
    }
}

/// Prints `text` on stderr as one line, `leapcraft: ` first, with what came from the server
/// unable to act on the terminal. With [`crate::output`], the only writer of the terminal:
/// everything else goes through `tracing`.
#[allow(clippy::print_stderr)]
pub fn report(text: &str) {
    eprintln!("leapcraft: {}", for_terminal(&one_line(text)));
}

/// `text` on one line: line breaks and runs of whitespace become single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n  b\r\nc "), "a b c");
        assert_eq!(Failure::NoKey.exit_code(), ExitCode::from(3));
        assert!(Failure::NoKey.message().contains("--demo"));
        assert_eq!(Failure::Interrupted.exit_code(), ExitCode::from(130));
    }

    #[test]
    fn a_stopped_command_says_what_it_did_not_read_with_its_cause_s_exit_code() {
        let stopped = Failure::Stopped {
            cause: Box::new(Failure::Interrupted),
            left: Left {
                not_read: 1,
                known: 3,
                what: "device",
                list_complete: false,
            },
        };
        assert_eq!(stopped.exit_code(), ExitCode::from(130));
        assert_eq!(
            stopped.message(),
            "interrupted; 1 of 3 devices was not read, nor those listed after them"
        );
        assert_eq!(plural(1, "device"), "1 device");
        assert_eq!(plural(0, "device"), "0 devices");
    }
}
