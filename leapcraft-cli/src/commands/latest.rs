//! `latest`: the latest reading of some devices, or of every device.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::{ArgGroup, Args};
use futures::StreamExt;
use leapcraft_ext::{Client, Error, PhysicalId};
use tokio_util::task::AbortOnDropHandle;

use crate::commands::device_failures;
use crate::commands::telemetry::reading_records;
use crate::error::{Failure, Left, is_fatal, report};
use crate::output::Output;
use crate::{progress, values};

/// `latest`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["all", "physical_ids"])))]
pub struct LatestArgs {
    /// Every device of the account (readings are fetched while the list arrives).
    #[arg(long)]
    pub all: bool,
    /// The devices' physical ids.
    #[arg(value_name = "PHYSICAL_ID")]
    pub physical_ids: Vec<String>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = leapcraft_ext::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = values::concurrency)]
    pub concurrency: usize,
}

/// `latest`: readings printed in the order of the devices (as asked, or as listed). A
/// device that fails does not stop the others. An authentication failure, a device list
/// that fails midway or Ctrl-C stops the command: the readings got so far are printed, in
/// order, and the final report says why it stopped and how many devices were not read.
pub async fn run(client: &Client, args: LatestArgs, out: &Output) -> Result<(), Failure> {
    // The devices in order, as they become known.
    let order: Arc<Mutex<Vec<PhysicalId>>> = Arc::default();
    // Why the device list ended early, if it did.
    let list_failure: Arc<Mutex<Option<Error>>> = Arc::default();
    let bar = progress::counter("latest readings");
    let ids = if args.all {
        client.device_ids()
    } else {
        futures::stream::iter(args.physical_ids.into_iter().map(|id| Ok(id.into()))).boxed()
    };
    // The list is read as fast as it comes, ahead of the readings, so that when the command
    // stops it can say how many devices it did not read. A failure of the list ends it, kept
    // aside: the devices listed before it are still all read.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let list_complete = Arc::new(AtomicBool::new(false));
    let (known, failed, complete, counted) = (
        order.clone(),
        list_failure.clone(),
        list_complete.clone(),
        bar.clone(),
    );
    let _lister = AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::pin!(ids);
        while let Some(id) = ids.next().await {
            match id {
                Ok(id) => {
                    lock(&known).push(id.clone());
                    if tx.send(id).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    *lock(&failed) = Some(e);
                    return;
                }
            }
        }
        complete.store(true, Ordering::SeqCst);
        progress::known_total(&counted, lock(&known).len() as u64);
    }));
    let ids = futures::stream::unfold(rx, |mut rx| async move {
        let id = rx.recv().await?;
        Some((Ok(id), rx))
    });
    let mut results = client.fetch_each(ids, args.concurrency, |client, id| async move {
        client.latest(id).await
    });

    let mut readings = Vec::new();
    let mut failures = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let stopped: Option<Failure> = loop {
        let next = tokio::select! {
            _ = &mut ctrl_c => break Some(Failure::Interrupted),
            next = results.next() => next,
        };
        match next {
            None => break None,
            Some(Err(list_failed)) => break Some(list_failed.into()),
            Some(Ok((_, Err(e)))) if is_fatal(&e) => break Some(e.into()),
            Some(Ok((id, Ok(mut reading)))) => {
                reading.physical_id.get_or_insert(id.clone());
                readings.push((id, reading));
            }
            Some(Ok((id, Err(e)))) => failures.push((id, e)),
        }
        bar.inc(1);
        progress::show_pace(&bar, "latest readings", client);
    };
    bar.finish_and_clear();
    drop(results);
    let list_complete = list_complete.load(Ordering::SeqCst);
    let stopped = stopped.or_else(|| lock(&list_failure).take().map(Failure::from));

    let order = std::mem::take(&mut *lock(&order));
    let position: HashMap<&PhysicalId, usize> =
        order.iter().enumerate().map(|(i, id)| (id, i)).collect();
    readings.sort_by_key(|(id, _)| position.get(id).copied().unwrap_or(usize::MAX));
    let read = readings.len();
    let readings: Vec<_> = readings.into_iter().map(|(_, r)| r).collect();
    let Some(cause) = stopped else {
        out.print(&reading_records(&readings))?;
        return device_failures(failures, order.len());
    };
    // Nothing read: the report alone says it all.
    if read > 0 {
        out.print(&reading_records(&readings))?;
    }
    for (id, e) in &failures {
        report(&format!("{id}: {e}"));
    }
    Err(Failure::Stopped {
        cause: Box::new(cause),
        left: Left {
            not_read: order.len() - read - failures.len(),
            known: order.len(),
            what: "device",
            list_complete,
        },
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
