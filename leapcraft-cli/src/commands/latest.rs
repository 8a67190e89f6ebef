//! `latest`: the latest reading of some devices, or of every device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clap::{ArgGroup, Args};
use futures::{StreamExt, TryStreamExt};
use leapcraft_ext::{Client, PhysicalId};

use crate::commands::device_failures;
use crate::commands::telemetry::reading_records;
use crate::error::{Failure, is_auth};
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
/// device that fails does not stop the others; an authentication failure or a device list
/// that cannot be read stops everything.
pub async fn run(client: &Client, args: LatestArgs, out: &Output) -> Result<(), Failure> {
    // The devices in order, as they become known.
    let order: Arc<Mutex<Vec<PhysicalId>>> = Arc::default();
    let bar = progress::bar(0, "latest readings");
    let ids = if args.all {
        client.device_ids()
    } else {
        futures::stream::iter(args.physical_ids.into_iter().map(|id| Ok(id.into()))).boxed()
    };
    let known = order.clone();
    let counted = bar.clone();
    let ids = ids.inspect_ok(move |id| {
        known.lock().expect("never poisoned").push(id.clone());
        counted.inc_length(1);
    });
    let mut results = client.fetch_each(ids, args.concurrency, |client, id| async move {
        client.latest(id).await
    });

    let mut readings = Vec::new();
    let mut failures = Vec::new();
    let outcome: Result<(), Failure> = loop {
        match results.next().await {
            None => break Ok(()),
            Some(Err(list_failed)) => break Err(list_failed.into()),
            Some(Ok((_, Err(e)))) if is_auth(&e) => break Err(e.into()),
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
    outcome?;

    let order = std::mem::take(&mut *order.lock().expect("never poisoned"));
    let position: HashMap<&PhysicalId, usize> =
        order.iter().enumerate().map(|(i, id)| (id, i)).collect();
    readings.sort_by_key(|(id, _)| position.get(id).copied().unwrap_or(usize::MAX));
    let readings: Vec<_> = readings.into_iter().map(|(_, r)| r).collect();
    out.print(&reading_records(&readings))?;
    device_failures(failures, order.len())
}
