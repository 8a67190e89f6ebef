//! Progress on stderr for long work, shown only when stderr is a terminal.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use leapcraft_ext::Client;

/// A bar of `what` done out of a total that may grow as work is found
/// ([`ProgressBar::inc_length`]); hidden when stderr is not a terminal.
pub fn bar(len: u64, what: &'static str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(len)
        .with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
                .expect("a valid template")
                .progress_chars("=> "),
        )
        .with_message(what)
}

/// A spinner counting `what` as it arrives; hidden when stderr is not a terminal.
pub fn counter(what: &'static str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner()
        .with_style(
            ProgressStyle::with_template("{spinner} {msg}: {pos}").expect("a valid template"),
        )
        .with_message(what);
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// Notes on `bar` (whose message is `what`) whether the client is pacing its requests: the
/// API answered `429` and the client's rate limiter holds requests back to the rate shown.
pub fn show_pace(bar: &ProgressBar, what: &'static str, client: &Client) {
    if bar.is_hidden() {
        return;
    }
    match client.stats().request_rate {
        Some(rate) => bar.set_message(format!("{what} (throttled: {rate:.0} requests/s)")),
        None => bar.set_message(what),
    }
}
