//! `completions`: a shell completion script, printed on stdout.

use clap::Args;
use clap_complete::Shell;

use crate::error::Failure;
use crate::output;

/// `completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    leapcraft completions bash > ~/.local/share/bash-completion/completions/leapcraft\n  \
    leapcraft completions zsh > \"${fpath[1]}/_leapcraft\"\n  \
    leapcraft completions fish > ~/.config/fish/completions/leapcraft.fish\n  \
    leapcraft completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// Prints the completion script of `command` for the shell.
pub fn print(args: CompletionsArgs, mut command: clap::Command) -> Result<(), Failure> {
    // Into memory first: the generators panic on a failed write (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "leapcraft", &mut script);
    output::print_bytes(&script)?;
    Ok(())
}
