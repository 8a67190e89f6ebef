//! `export`: the averages of many devices over a range, appended to a CSV or JSON Lines file
//! one whole device at a time, so that running the same command again after an
//! interruption completes the file. The file itself (locked, whole devices, one query) is
//! [`mod@file`]; the query it remembers, [`query`].

mod file;
mod query;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use futures::{StreamExt, TryStreamExt};
use leapcraft_ext::{Client, PhysicalId, Reading, Timestamp};
use serde_json::{Map, Value, json};

use crate::commands::device_failures;
use crate::commands::telemetry::{self, ResolutionArg};
use crate::error::{Failure, is_fatal, plural, report};
use crate::output::Output;
use crate::sanitize::for_spreadsheet;
use crate::{progress, values};

use self::file::{ExportFile, FileFormat};
use self::query::Query;

/// `export`.
#[derive(Debug, Args)]
#[command(after_help = "\
The file's extension picks its format:
  .csv    one row per device, period and metric: physical_id,timestamp,metric,value
          (cells a spreadsheet would run as formulas get a leading ', unless --raw-csv)
  .jsonl  one reading per line, as the API returned it, with its physical_id

Each device's rows are appended in one write, whole; when a write fails (a full disk), the
file is cut back to its last whole device. Run the same command again after an
interruption (Ctrl-C, a crash, failures, a full disk) to fetch only the devices the file
does not hold yet; the last device in the file is fetched again, in case it was cut short.
Devices with no data in the range leave nothing in the file, so they are asked for again
too.

The query that made the file (--averages, --from, --to, --device, the format, --raw-csv) is
recorded beside it, in FILE.leapcraft-export: a run with another query is refused, so that
the file never mixes two (--overwrite starts it afresh). While a run writes the file, it is
locked: a second export into it fails at once.

Example:
  leapcraft export --averages daily --from 2026-03-01 --to 2026-04-01 --out march.csv")]
pub struct ExportArgs {
    /// The resolution of the averages.
    #[arg(long, value_enum, value_name = "RESOLUTION")]
    pub averages: ResolutionArg,
    /// Start of the range: such as 2026-03-01, 2026-03-01T08:00:00Z, 24h or 7d (ago),
    /// yesterday, today, now.
    #[arg(long, value_name = "TIME", value_parser = values::timestamp)]
    pub from: Timestamp,
    /// End of the range, in the same forms.
    #[arg(long, value_name = "TIME", value_parser = values::timestamp)]
    pub to: Timestamp,
    /// Only this device (repeat for several); without it, every device of the account.
    #[arg(long = "device", value_name = "PHYSICAL_ID")]
    pub devices: Vec<String>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = leapcraft_ext::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = values::concurrency)]
    pub concurrency: usize,
    /// The file to write or complete: `.csv` or `.jsonl`.
    #[arg(long, value_name = "FILE.csv|FILE.jsonl")]
    pub out: PathBuf,
    /// Start the file afresh: drop what it holds, whatever query made it.
    #[arg(long)]
    pub overwrite: bool,
}

/// What `export` did, for the summary.
#[derive(Debug, Default)]
struct Tally {
    written: usize,
    rows: usize,
    without_data: usize,
    failures: Vec<(PhysicalId, leapcraft_ext::Error)>,
}

/// `export`.
/// SIGXFSZ, sent when a write passes the file size limit (`ulimit -f`, systemd's
/// `LimitFSIZE`), kills by default before the write can fail: caught, the write fails with
/// `EFBIG` instead and the file is cut back to its last whole device.
fn catch_file_size_limit() {
    // SIGXFSZ is 25 on Linux on these architectures (MIPS numbers it otherwise).
    #[cfg(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "x86",
            target_arch = "aarch64",
            target_arch = "arm",
            target_arch = "riscv64",
            target_arch = "powerpc64",
            target_arch = "s390x",
            target_arch = "loongarch64"
        )
    ))]
    let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25));
}

pub async fn run(client: &Client, args: ExportArgs, out: &Output) -> Result<(), Failure> {
    catch_file_size_limit();
    let format = FileFormat::of(&args.out)?;
    let query = telemetry::averages(args.averages, args.from, args.to)?;
    let neutralise = out.neutralise_formulas;
    let asked = Query::of(&args, format, neutralise);
    let mut file = ExportFile::open(&args.out, format, &asked, args.overwrite)?;
    let already = file.devices();

    let held = Arc::new(file.take_held());
    let bar = progress::bar(0, "devices");
    let counted = bar.clone();
    let mut asked = HashSet::new();
    let ids = if args.devices.is_empty() {
        client.device_ids()
    } else {
        futures::stream::iter(args.devices.into_iter().map(|id| Ok(id.into()))).boxed()
    }
    .try_filter(move |id: &PhysicalId| {
        let wanted = !held.contains(id.as_str())
            && !held.contains(for_spreadsheet(id.as_str()).as_ref())
            && asked.insert(id.clone());
        if wanted {
            counted.inc_length(1);
        }
        futures::future::ready(wanted)
    });
    let mut results = client.fetch_each(ids, args.concurrency, move |client, id| {
        let query = query.clone();
        async move {
            let readings = client.telemetry(id.clone(), &query).await?;
            Ok(Block::of(format, &id, &readings, neutralise))
        }
    });

    let mut tally = Tally::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let interrupted = loop {
        let next = tokio::select! {
            _ = &mut ctrl_c => break true,
            next = results.next() => next,
        };
        match next {
            None => break false,
            Some(Err(list_failed)) => return Err(list_failed.into()),
            Some(Ok((_, Err(e)))) if is_fatal(&e) => return Err(e.into()),
            Some(Ok((id, Err(e)))) => tally.failures.push((id, e)),
            Some(Ok((_, Ok(block)))) if block.rows == 0 => tally.without_data += 1,
            Some(Ok((_, Ok(block)))) => {
                file.append(&block.bytes)?;
                tally.written += 1;
                tally.rows += block.rows;
            }
        }
        bar.inc(1);
        progress::show_pace(&bar, "devices", client);
    };
    bar.finish_and_clear();
    drop(results);

    let mut summary = format!(
        "{}: {} written ({}), {already} already there",
        args.out.display(),
        plural(tally.written, "device"),
        plural(tally.rows, "row")
    );
    if tally.without_data > 0 {
        summary.push_str(&format!(
            ", {} without data in the range",
            tally.without_data
        ));
    }
    summary.push_str(&format!(", {} failed", tally.failures.len()));
    if interrupted {
        summary.push_str("; run the same command again to complete the file");
    }
    report(&summary);
    if interrupted {
        return Err(Failure::Interrupted);
    }
    let total = tally.written + tally.without_data + tally.failures.len();
    device_failures(tally.failures, total)
}

/// The rows of one device, ready to be appended in one write.
#[derive(Debug)]
struct Block {
    bytes: Vec<u8>,
    rows: usize,
}

impl Block {
    fn of(format: FileFormat, id: &PhysicalId, readings: &[Reading], neutralise: bool) -> Self {
        let mut bytes = Vec::new();
        let mut rows = 0;
        match format {
            FileFormat::Csv => {
                let cell = |text: &str| {
                    if neutralise {
                        for_spreadsheet(text).into_owned()
                    } else {
                        text.to_owned()
                    }
                };
                let mut writer = csv::Writer::from_writer(&mut bytes);
                for reading in readings {
                    let at = reading.timestamp.map(|t| t.to_string()).unwrap_or_default();
                    for (metric, value) in metrics(reading) {
                        // Writing into memory cannot fail.
                        let _ = writer.write_record([
                            cell(id.as_str()),
                            cell(&at),
                            cell(&metric),
                            cell(&value),
                        ]);
                        rows += 1;
                    }
                }
                let _ = writer.flush();
            }
            FileFormat::Jsonl => {
                for reading in readings {
                    let line = api_shape(id, reading);
                    // A `Value` always serialises.
                    let _ = serde_json::to_writer(&mut bytes, &line);
                    bytes.push(b'\n');
                    rows += 1;
                }
            }
        }
        Self { bytes, rows }
    }
}

/// The metrics of a reading as `(name, value)` text: the documented ones, then every other
/// key (numbers as JSON writes them, text as is, nulls left out).
fn metrics(reading: &Reading) -> Vec<(String, String)> {
    let documented = [
        ("temperature", reading.temperature),
        ("humidity", reading.humidity),
        ("co2", reading.co2),
        ("pm2_5", reading.pm2_5),
    ];
    let documented = documented.into_iter().filter_map(|(name, value)| {
        let number = serde_json::Number::from_f64(value?)?;
        Some((name.to_owned(), number.to_string()))
    });
    let others = reading.other.iter().filter_map(|(key, value)| match value {
        Value::Null => None,
        Value::String(text) => Some((key.clone(), text.clone())),
        other => Some((key.clone(), other.to_string())),
    });
    documented.chain(others).collect()
}

/// A reading as the API sends it (`data` holding the metrics), with the device it was asked
/// for (whatever id the server put in it: the file is resumed by that id).
fn api_shape(id: &PhysicalId, reading: &Reading) -> Value {
    let mut data = Map::new();
    for (name, value) in [
        ("temperature", reading.temperature),
        ("humidity", reading.humidity),
        ("co2", reading.co2),
        ("pm2_5", reading.pm2_5),
    ] {
        if let Some(value) = value {
            data.insert(name.to_owned(), json!(value));
        }
    }
    if !reading.meta.is_empty() {
        data.insert("meta".to_owned(), Value::Object(reading.meta.clone()));
    }
    data.extend(reading.other.clone());
    json!({
        "physical_id": id,
        "timestamp": reading.timestamp,
        "created_at": reading.created_at,
        "data": data,
    })
}
