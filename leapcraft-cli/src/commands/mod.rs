//! The subcommands, one module per family: each defines its arguments and runs them against
//! a [`Client`](leapcraft_ext::Client), printing through [`Output`](crate::output::Output).

pub mod completions;
pub mod devices;
pub mod export;
pub mod latest;
pub mod notifications;
pub mod telemetry;
pub mod things;
pub mod topologies;

use leapcraft_ext::{Error, PhysicalId};

use crate::error::{Failure, report};

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
