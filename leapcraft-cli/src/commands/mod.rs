//! The subcommands, one module per family: each defines its arguments and runs them against
//! a [`Client`](leapcraft_ext::Client), printing through [`Output`](crate::output::Output).

pub mod completions;
pub mod devices;
pub mod export;
pub mod latest;
pub mod man;
pub mod notifications;
pub mod telemetry;
pub mod things;
pub mod topologies;

use futures::{Stream, StreamExt};
use indicatif::ProgressBar;
use leapcraft_ext::{Error, PhysicalId};

use crate::error::{Failure, Left, report};

/// Runs `work` until it ends or Ctrl-C comes: then `work` is dropped (its requests
/// cancelled, its temporary files removed) and the command fails with
/// [`Failure::Interrupted`].
pub async fn interruptible<T>(
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Failure::Interrupted),
    }
}

/// The outcome of a command over `total` devices of which `failures` failed: each failure
/// reported on its own line when there are several, the command failing if any did.
pub fn device_failures(
    mut failures: Vec<(PhysicalId, Error)>,
    total: usize,
) -> Result<(), Failure> {
    match failures.len() {
        0 => Ok(()),
        1 => {
            let (id, e) = failures.pop().expect("one failure");
            Err(Failure::Device(id.to_string(), e))
        }
        failed => {
            for (id, e) in &failures {
                report(&format!("{id}: {e}"));
            }
            Err(Failure::Devices { failed, total })
        }
    }
}

/// The items of a listing until it ends, fails or Ctrl-C comes, each counted on `bar`: all
/// of them, or those that came before it stopped and the [`Failure::Stopped`] saying why.
pub async fn listing<T>(
    items: impl Stream<Item = Result<T, Error>>,
    what: &'static str,
    bar: &ProgressBar,
) -> (Vec<T>, Option<Failure>) {
    let mut got = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c, items);
    let cause = loop {
        let next = tokio::select! {
            _ = &mut ctrl_c => break Failure::Interrupted,
            next = items.next() => next,
        };
        match next {
            None => return (got, None),
            Some(Ok(item)) => {
                got.push(item);
                bar.inc(1);
            }
            Some(Err(e)) => break e.into(),
        }
    };
    let left = Left {
        not_read: 0,
        known: got.len(),
        what,
        list_complete: false,
    };
    let stopped = Failure::Stopped {
        cause: Box::new(cause),
        left,
    };
    (got, Some(stopped))
}
