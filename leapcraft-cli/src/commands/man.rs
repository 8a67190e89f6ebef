//! `man`: the manual page, in roff, made from the command line's own definition.

use crate::error::Failure;
use crate::output;

/// Prints the manual page of `command` on stdout (`leapcraft man | man -l -`).
pub fn print(command: clap::Command) -> Result<(), Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    output::print_bytes(&page)?;
    Ok(())
}
