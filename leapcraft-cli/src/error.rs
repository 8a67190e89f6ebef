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
    /// No API key was given.
    NoKey,
    /// The arguments do not go together.
    Usage(String),
    /// Writing the output failed.
    Io(io::Error),
    /// Ctrl-C.
    Interrupted,
    /// Anything else.
    Other(String),
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
        _ => match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => EXIT_AUTH,
            Some(404) => EXIT_NOT_FOUND,
            _ => EXIT_FAILURE,
        },
    }
}

/// Whether `e` says the key or token is not accepted: no other call can succeed either.
pub fn is_auth(e: &Error) -> bool {
    sdk_code(e) == EXIT_AUTH
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Sdk(e) | Self::Device(_, e) => sdk_code(e),
            Self::NoKey => EXIT_AUTH,
            Self::Usage(_) => EXIT_USAGE,
            Self::Interrupted => EXIT_INTERRUPTED,
            Self::Io(_) | Self::Devices { .. } | Self::Other(_) => EXIT_FAILURE,
        })
    }

    /// Whether this is stdout closed early (`leapcraft devices | head`): not worth a word.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// The message for stderr. The SDK's messages never hold the key or a token.
    pub fn message(&self) -> String {
        match self {
            Self::Sdk(e) if sdk_code(e) == EXIT_NOT_FOUND => format!("not found: {e}"),
            Self::Sdk(e) => e.to_string(),
            Self::Device(id, e) => format!("{id}: {e}"),
            Self::Devices { failed, total } => {
                format!("{failed} of {total} devices failed (listed above)")
            }
            Self::NoKey => format!(
                "no API key: pass --api-key, set {}, or try --demo",
                leapcraft_ext::API_KEY_ENV
            ),
            Self::Usage(m) => m.clone(),
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
}
