//! Running each subcommand against a [`Client`] and turning its results into [`Records`].

use std::collections::{BTreeSet, HashMap};
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use leapcraft_ext::{Client, Device, Notification, PhysicalId, Reading, TelemetryQuery, types};
use serde_json::Value;

use crate::args::{
    Command, DevicesArgs, Format, LatestArgs, NotificationsArgs, ResolutionArg, TelemetryArgs,
    ThingsArgs,
};
use crate::error::Failure;
use crate::output::{Records, Streamer, num, opt};

/// Runs `command`, printing its records on stdout in `format`.
pub async fn run(client: &Client, command: Command, format: Format) -> Result<(), Failure> {
    let records = match command {
        Command::Devices(args) => devices(client, args).await?,
        Command::Device { physical_id } => {
            let device = client.device(physical_id).await?;
            Records::one(&device, DEVICE_COLUMNS, device_cells)?
        }
        Command::Telemetry(args) => telemetry(client, args).await?,
        Command::Latest(args) => return latest(client, args, format).await,
        Command::Topologies => {
            let topologies = client.topologies().await?;
            Records::list(&topologies, TOPOLOGY_COLUMNS, topology_cells)?
        }
        Command::Topology { gateway_id } => {
            let topology = client.topology(gateway_id).await?;
            Records::one(&topology, TOPOLOGY_DETAILS_COLUMNS, topology_details_cells)?
        }
        Command::Notifications(args) if args.follow => {
            return follow(client, args, format).await;
        }
        Command::Notifications(args) => notifications(client, args).await?,
        Command::Things(args) => things(client, args).await?,
        Command::Serve(args) => return crate::serve::run(client, args).await,
    };
    print(&records, format)
}

fn print(records: &Records, format: Format) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    records.print(format, &mut out)?;
    out.flush()?;
    Ok(())
}

/// A progress indicator on stderr when stderr is a terminal, a hidden one otherwise.
/// With a length: a bar; without: a spinner counting items.
fn progress(len: Option<u64>, what: &'static str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
                .expect("a valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg}: {pos}").expect("a valid template"),
        ),
    }
    .with_message(what)
}

const DEVICE_COLUMNS: &[&str] = &[
    "physical_id",
    "name",
    "serial",
    "type",
    "topology_id",
    "meta",
];

fn device_cells(d: &Device) -> Vec<String> {
    vec![
        d.physical_id.to_string(),
        opt(d.name.as_ref()),
        opt(d.serial.as_ref()),
        opt(d.kind.as_ref()),
        opt(d.topology_id),
        if d.meta.is_empty() {
            String::new()
        } else {
            Value::Object(d.meta.clone()).to_string()
        },
    ]
}

async fn devices(client: &Client, args: DevicesArgs) -> Result<Records, Failure> {
    let devices: Vec<Device> = if args.all {
        let bar = progress(None, "devices");
        bar.enable_steady_tick(Duration::from_millis(120));
        let result = client
            .devices()
            .page_size(args.page_size.into())
            .items()
            .inspect_ok(|_| bar.inc(1))
            .try_collect()
            .await;
        bar.finish_and_clear();
        result?
    } else {
        let (limit, page) = (u64::from(args.limit), u64::from(args.page));
        client
            .devices()
            .page_size(i64::from(args.limit))
            .skip((page - 1) * limit)
            .max_items(args.limit as usize)
            .collect()
            .await?
    };
    Ok(Records::list(&devices, DEVICE_COLUMNS, device_cells)?)
}

/// The columns of readings: the documented ones, then every other key any reading has.
fn reading_columns(readings: &[Reading]) -> Vec<String> {
    let others: BTreeSet<&String> = readings.iter().flat_map(|r| r.other.keys()).collect();
    [
        "physical_id",
        "timestamp",
        "created_at",
        "temperature",
        "humidity",
        "co2",
        "pm2_5",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(others.into_iter().cloned())
    .collect()
}

fn reading_records(readings: &[Reading]) -> Result<Records, Failure> {
    let columns = reading_columns(readings);
    let extra = columns[7..].to_vec();
    let column_refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    Ok(Records::list(readings, &column_refs, |r| {
        let mut cells = vec![
            opt(r.physical_id.as_ref()),
            opt(r.timestamp),
            opt(r.created_at),
            num(r.temperature),
            num(r.humidity),
            num(r.co2),
            num(r.pm2_5),
        ];
        cells.extend(extra.iter().map(|key| match r.other.get(key) {
            None | Some(Value::Null) => String::new(),
            Some(Value::Number(n)) => num(n.as_f64()),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }));
        cells
    })?)
}

async fn telemetry(client: &Client, args: TelemetryArgs) -> Result<Records, Failure> {
    let resolution = match (args.averages, &args.chart) {
        (Some(r), _) => Some(r),
        (None, Some(_)) => Some(ResolutionArg::Daily),
        (None, None) if args.from.is_some() || args.to.is_some() => {
            return Err(Failure::Usage(
                "--from and --to need --averages daily|weekly|monthly".to_owned(),
            ));
        }
        (None, None) => None,
    };
    let query = match resolution {
        None => TelemetryQuery::latest(),
        Some(resolution) => {
            let to = args.to.unwrap_or_else(leapcraft_ext::Timestamp::now);
            let from = args
                .from
                .unwrap_or_else(|| (to.as_datetime() - resolution.default_span()).into());
            TelemetryQuery::averages(resolution.resolution(), from, to)?
        }
    };
    let readings = client.telemetry(&args.physical_id, &query).await?;
    if let Some(path) = &args.chart {
        let (from, to) = query.range().expect("charts are of averages");
        let title = format!(
            "{} — {} averages, {} to {}",
            args.physical_id,
            query.resolution().expect("averages have a resolution"),
            from.as_datetime().format("%Y-%m-%d %H:%M"),
            to.as_datetime().format("%Y-%m-%d %H:%M"),
        );
        crate::chart::draw(path, &title, &readings).map_err(Failure::Other)?;
    }
    reading_records(&readings)
}

async fn latest(client: &Client, args: LatestArgs, format: Format) -> Result<(), Failure> {
    let ids: Vec<PhysicalId> = if args.all {
        let bar = progress(None, "devices");
        bar.enable_steady_tick(Duration::from_millis(120));
        let ids = client
            .devices()
            .page_size(1000)
            .items()
            .map_ok(|d| d.physical_id)
            .inspect_ok(|_| bar.inc(1))
            .try_collect()
            .await;
        bar.finish_and_clear();
        ids?
    } else {
        args.physical_ids.iter().map(PhysicalId::from).collect()
    };
    let order: HashMap<&PhysicalId, usize> =
        ids.iter().enumerate().map(|(i, id)| (id, i)).collect();
    let bar = progress(Some(ids.len() as u64), "latest readings");
    let mut results: Vec<_> = client
        .latest_many(ids.clone(), args.concurrency)
        .inspect(|_| bar.inc(1))
        .collect()
        .await;
    bar.finish_and_clear();
    results.sort_by_key(|(id, _)| order.get(id).copied().unwrap_or(usize::MAX));

    let mut readings = Vec::new();
    let mut failures = Vec::new();
    for (id, result) in results {
        match result {
            Ok(mut reading) => {
                reading.physical_id.get_or_insert(id);
                readings.push(reading);
            }
            Err(e) => failures.push((id, e)),
        }
    }
    print(&reading_records(&readings)?, format)?;
    match failures.len() {
        0 => Ok(()),
        1 => {
            let (id, e) = failures.pop().expect("one failure");
            Err(Failure::Device(id.to_string(), e))
        }
        n => {
            for (id, e) in &failures {
                eprintln!(
                    "leapcraft: {id}: {}",
                    crate::error::one_line(&e.to_string())
                );
            }
            Err(Failure::Other(format!(
                "{n} of {} devices failed",
                ids.len()
            )))
        }
    }
}

const TOPOLOGY_COLUMNS: &[&str] = &["gateway_id", "name", "network_id", "created_at", "devices"];

fn topology_cells(t: &leapcraft_ext::Topology) -> Vec<String> {
    vec![
        t.gateway_id.to_string(),
        opt(t.name.as_ref()),
        opt(t.network_id),
        opt(t.created_at),
        t.devices.len().to_string(),
    ]
}

const TOPOLOGY_DETAILS_COLUMNS: &[&str] = &["gateway_id", "name", "created_at", "devices"];

fn topology_details_cells(t: &leapcraft_ext::TopologyDetails) -> Vec<String> {
    vec![
        t.gateway_id.to_string(),
        opt(t.name.as_ref()),
        opt(t.created_at),
        t.devices
            .iter()
            .map(|d| d.physical_id.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    ]
}

const NOTIFICATION_COLUMNS: &[&str] = &["id", "physical_id", "category", "created_at", "message"];

fn notification_cells(n: &Notification) -> Vec<String> {
    vec![
        n.id.to_string(),
        opt(n.physical_id.as_ref()),
        opt(n.category.as_ref()),
        opt(n.created_at),
        opt(n.message.as_ref()),
    ]
}

fn notification_pager(client: &Client, device: Option<&str>) -> leapcraft_ext::Pager<Notification> {
    match device {
        Some(id) => client.device_notifications(id),
        None => client.notifications(),
    }
    .page_size(leapcraft_ext::MAX_NOTIFICATION_PAGE_SIZE)
}

async fn notifications(client: &Client, args: NotificationsArgs) -> Result<Records, Failure> {
    let pager = notification_pager(client, args.device.as_deref());
    let found: Vec<Notification> = if args.all {
        let bar = progress(None, "notifications");
        bar.enable_steady_tick(Duration::from_millis(120));
        let result = pager.items().inspect_ok(|_| bar.inc(1)).try_collect().await;
        bar.finish_and_clear();
        result?
    } else {
        pager
            .page_size(i64::from(args.limit))
            .skip(u64::from(args.offset))
            .max_items(args.limit as usize)
            .collect()
            .await?
    };
    Ok(Records::list(
        &found,
        NOTIFICATION_COLUMNS,
        notification_cells,
    )?)
}

async fn follow(client: &Client, args: NotificationsArgs, format: Format) -> Result<(), Failure> {
    let every = Duration::from_secs_f64(args.interval.max(0.01));
    let device = args.device.map(PhysicalId::from);
    let mut stream = client.follow_notifications(device, every);
    let mut streamer = Streamer::new(format, io::stdout());
    if format == Format::Csv {
        streamer.push(&Records::list::<Notification>(
            &[],
            NOTIFICATION_COLUMNS,
            notification_cells,
        )?)?;
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            next = stream.next() => match next {
                None => return Ok(()),
                Some(Ok(n)) => {
                    let records = Records::list(std::slice::from_ref(&n), NOTIFICATION_COLUMNS, notification_cells)?;
                    streamer.push(&records)?;
                }
                // A failed poll (after the client's own retries): say so, keep following.
                Some(Err(e)) => eprintln!("leapcraft: {}", crate::error::one_line(&e.to_string())),
            }
        }
    }
}

const THING_COLUMNS: &[&str] = &["name", "description", "parameters"];

fn thing_cells(t: &types::Thing) -> Vec<String> {
    vec![
        opt(t.name.as_ref()),
        opt(t.description.as_ref()),
        t.parameters
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p.name.as_deref().unwrap_or(""),
                    p.payload.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

async fn things(client: &Client, args: ThingsArgs) -> Result<Records, Failure> {
    let size = if args.all { -1 } else { i64::from(args.limit) };
    let things = client.things().page_size(size).collect().await?;
    Ok(Records::list(&things, THING_COLUMNS, thing_cells)?)
}
