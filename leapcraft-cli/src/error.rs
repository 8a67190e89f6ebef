//! What can make the CLI fail, and the exit code each failure maps to.

use std::io;
use std::process::ExitCode;

use leapcraft_ext::Error;

/// Exit code: anything else went wrong.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line was wrong (as clap exits on a usage error).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: authentication failed, or no API key was given.
pub const EXIT_AUTH: u8 = 3;
/// Exit code: the device, topology... does not exist (`404`).
pub const EXIT_NOT_FOUND: u8 = 4;

/// A failure of the CLI.
#[derive(Debug)]
pub enum Failure {
    /// A call of the SDK failed.
    Sdk(Error),
    /// A call about one device failed (`latest`).
    Device(String, Error),
    /// No API key was given.
    NoKey,
    /// The arguments do not go together.
    Usage(String),
    /// Writing the output failed.
    Io(io::Error),
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
        Error::Api(api) if matches!(api.status.as_u16(), 401 | 403) => EXIT_AUTH,
        Error::Api(api) if api.status.as_u16() == 404 => EXIT_NOT_FOUND,
        _ => EXIT_FAILURE,
    }
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Sdk(e) | Self::Device(_, e) => sdk_code(e),
            Self::NoKey => EXIT_AUTH,
            Self::Usage(_) => EXIT_USAGE,
            Self::Io(_) | Self::Other(_) => EXIT_FAILURE,
        })
    }

    /// Whether this is stdout closed early (`leapcraft devices | head`): not worth a word.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// The one-line message for stderr. The SDK's messages never hold the key or a token.
    pub fn message(&self) -> String {
        let text = match self {
            Self::Sdk(Error::Api(api)) if api.status.as_u16() == 404 => {
                format!("not found: {api}")
            }
            Self::Sdk(e) => e.to_string(),
            Self::Device(id, e) => format!("{id}: {e}"),
            Self::NoKey => format!(
                "no API key: pass --api-key, set {}, or try --demo",
                leapcraft_ext::API_KEY_ENV
            ),
            Self::Usage(m) => m.clone(),
            Self::Io(e) => format!("cannot write the output: {e}"),
            Self::Other(m) => m.clone(),
        };
        one_line(&text)
    }
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
    }
}
