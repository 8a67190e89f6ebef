//! Progress on stderr for long work, shown only when stderr is a terminal, and kept out of
//! the way of log lines ([`suspend`]).

use std::io::{self, IsTerminal};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use leapcraft_ext::Client;

/// Every bar shown, so that a log line can be written above them.
fn shown() -> &'static MultiProgress {
    static SHOWN: OnceLock<MultiProgress> = OnceLock::new();
    SHOWN.get_or_init(MultiProgress::new)
}

/// Runs `write` with the bars hidden, so that what it writes on stderr is not drawn over.
pub fn suspend<R>(write: impl FnOnce() -> R) -> R {
    shown().suspend(write)
}

/// A bar of `what` done out of a total that may grow as work is found
/// ([`ProgressBar::inc_length`]); hidden when stderr is not a terminal.
pub fn bar(len: u64, what: &'static str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    shown().add(
        ProgressBar::new(len)
            .with_style(bar_style())
            .with_message(what),
    )
}

/// Makes `bar` (a [`counter`] until then) a bar of `len` things in all, once that total is known.
pub fn known_total(bar: &ProgressBar, len: u64) {
    if bar.is_hidden() {
        return;
    }
    bar.disable_steady_tick();
    bar.set_length(len);
    bar.set_style(bar_style());
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
        .expect("a valid template")
        .progress_chars("=> ")
}

/// A spinner counting `what` as it arrives; hidden when stderr is not a terminal.
pub fn counter(what: &'static str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = shown().add(
        ProgressBar::new_spinner()
            .with_style(
                ProgressStyle::with_template("{spinner} {msg}: {pos}").expect("a valid template"),
            )
            .with_message(what),
    );
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
