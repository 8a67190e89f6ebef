//! `export`: the averages of many devices over a range, appended to a CSV or JSON Lines file
//! one whole device at a time, so that running the same command again after an
//! interruption completes the file.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
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

/// `export`.
#[derive(Debug, Args)]
#[command(after_help = "\
The file's extension picks its format:
  .csv    one row per device, period and metric: physical_id,timestamp,metric,value
          (cells a spreadsheet would run as formulas get a leading ', unless --raw-csv)
  .jsonl  one reading per line, as the API returned it, with its physical_id

Each device's rows are appended in one write, whole. Run the same command again after an
interruption (Ctrl-C, a crash, failures) to fetch only the devices the file does not hold
yet; the last device in the file is fetched again, in case it was cut short. Devices with
no data in the range leave nothing in the file, so they are asked for again too.

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
}

/// The format of an export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileFormat {
    /// Long-form CSV, [`CSV_HEADER`] first.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// The columns of a CSV export: the same whatever metrics the devices have.
const CSV_COLUMNS: [&str; 4] = ["physical_id", "timestamp", "metric", "value"];

/// The first line of a CSV export.
const CSV_HEADER: &[u8] = b"physical_id,timestamp,metric,value\n";

impl FileFormat {
    fn of(path: &Path) -> Result<Self, Failure> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("jsonl") => Ok(Self::Jsonl),
            _ => Err(Failure::Usage(format!(
                "--out {}: the file must end in .csv or .jsonl",
                path.display()
            ))),
        }
    }
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
pub async fn run(client: &Client, args: ExportArgs, out: &Output) -> Result<(), Failure> {
    let format = FileFormat::of(&args.out)?;
    let query = telemetry::averages(args.averages, args.from, args.to)?;
    let neutralise = out.neutralise_formulas;
    let mut file = ExportFile::resume(&args.out, format)?;
    let already = file.held.len();

    let held = Arc::new(std::mem::take(&mut file.held));
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
                file.append(&block.bytes).map_err(|e| {
                    Failure::Other(format!("cannot write {}: {e}", args.out.display()))
                })?;
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

/// The file an export appends whole devices to.
#[derive(Debug)]
struct ExportFile {
    path: PathBuf,
    format: FileFormat,
    /// The devices the file holds, as written in it.
    held: HashSet<String>,
    /// Open once something is appended.
    file: Option<File>,
}

impl ExportFile {
    /// Prepares `path` for an export: a new file, or one a previous run of the command
    /// started. Of the latter, the devices it holds are noted, and its end is cut back to
    /// before its last device, which an interruption may have cut short.
    fn resume(path: &Path, format: FileFormat) -> Result<Self, Failure> {
        let fail = |why: String| Failure::Other(format!("{}: {why}", path.display()));
        let mut export = Self {
            path: path.to_owned(),
            format,
            held: HashSet::new(),
            file: None,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(export),
            Err(e) => return Err(fail(format!("cannot read it: {e}"))),
        };
        let scan = match format {
            FileFormat::Csv => scan_csv(&bytes),
            FileFormat::Jsonl => scan_jsonl(&bytes),
        }
        .map_err(|why| {
            fail(format!(
                "{why}; not a file this command wrote (choose another --out)"
            ))
        })?;
        if scan.keep < bytes.len() as u64 {
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(scan.keep))
                .map_err(|e| fail(format!("cannot cut its incomplete end: {e}")))?;
        }
        export.held = scan.held;
        Ok(export)
    }

    /// Appends `block` in one write; a new file gets the CSV header in the same write.
    fn append(&mut self, block: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let empty = file.metadata()?.len() == 0;
            self.file = Some(file);
            if empty && self.format == FileFormat::Csv {
                let whole = [CSV_HEADER, block].concat();
                return self.write(&whole);
            }
        }
        self.write(block)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().expect("opened by append");
        file.write_all(bytes)?;
        file.flush()
    }
}

/// What a previous run left in a file: the devices it holds whole, and how many bytes to
/// keep.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    held: HashSet<String>,
    keep: u64,
}

/// Where each device's rows start, in file order: `(byte offset, device)`.
type Rows = Vec<(u64, String)>;

/// The devices of `rows` (each device's rows together, each device once), but the last one,
/// which may be incomplete: the file is kept up to where it starts (or up to `end` without
/// rows).
fn without_last_device(rows: Rows, end: u64) -> Result<Scan, String> {
    let mut held = HashSet::new();
    let mut last: Option<(u64, String)> = None;
    for (start, id) in rows {
        match &last {
            Some((_, current)) if *current == id => continue,
            _ => {}
        }
        if let Some((_, previous)) = last.take() {
            held.insert(previous);
        }
        if held.contains(&id) {
            return Err(format!("it holds rows of device `{id}` in two places"));
        }
        last = Some((start, id));
    }
    Ok(Scan {
        held,
        keep: last.map_or(end, |(start, _)| start),
    })
}

/// Scans a CSV export: header, then rows of 4 cells. A row cut short at the end (no final
/// line break, or fewer cells) is dropped with its device.
fn scan_csv(bytes: &[u8]) -> Result<Scan, String> {
    if !bytes.contains(&b'\n') && CSV_HEADER.starts_with(bytes) {
        // Cut while the header was written.
        return Ok(Scan {
            held: HashSet::new(),
            keep: 0,
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut header = true;
    let mut header_end = 0;
    let mut rows: Vec<(u64, String, usize)> = Vec::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| format!("it is not CSV ({e})"))?
    {
        let start = record.position().map_or(0, |p| p.byte());
        if header {
            if record.iter().ne(CSV_COLUMNS.iter().map(|c| c.as_bytes())) {
                return Err("its first line is not `physical_id,timestamp,metric,value`".to_owned());
            }
            header = false;
            header_end = reader.position().byte();
            continue;
        }
        let id = String::from_utf8_lossy(record.get(0).unwrap_or_default()).into_owned();
        rows.push((start, id, record.len()));
    }
    let cut_short = !bytes.ends_with(b"\n") || rows.last().is_some_and(|r| r.2 != 4);
    if cut_short {
        rows.pop();
    }
    if let Some(row) = rows.iter().find(|r| r.2 != 4) {
        return Err(format!("the row at byte {} does not have 4 cells", row.0));
    }
    let rows = rows.into_iter().map(|(start, id, _)| (start, id)).collect();
    without_last_device(rows, header_end)
}

/// Scans a JSON Lines export: one object with a `physical_id` per line. A line cut short at
/// the end is dropped with its device.
fn scan_jsonl(bytes: &[u8]) -> Result<Scan, String> {
    let mut rows = Vec::new();
    let mut start = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let offset = start as u64;
        start += line.len();
        let Some(line) = line.strip_suffix(b"\n") else {
            // The last line, cut short.
            break;
        };
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| format!("line at byte {offset} is not JSON ({e})"))?;
        let id = value
            .get("physical_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("line at byte {offset} has no physical_id"))?;
        rows.push((offset, id.to_owned()));
    }
    without_last_device(rows, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(scan: &Scan) -> Vec<&str> {
        let mut ids: Vec<&str> = scan.held.iter().map(String::as_str).collect();
        ids.sort();
        ids
    }

    const CSV: &str = "physical_id,timestamp,metric,value\n\
        A,2026-03-01T00:00:00.000Z,co2,500.0\n\
        A,2026-03-01T00:00:00.000Z,voc,1.5\n\
        B,2026-03-01T00:00:00.000Z,co2,600.0\n\
        C,2026-03-01T00:00:00.000Z,co2,700.0\n\
        C,2026-03-02T00:00:00.000Z,co2,710.0\n";

    #[test]
    fn a_csv_export_is_kept_up_to_its_last_device() {
        let scan = scan_csv(CSV.as_bytes()).unwrap();
        assert_eq!(ids(&scan), ["A", "B"]);
        assert_eq!(
            &CSV[scan.keep as usize..],
            "C,2026-03-01T00:00:00.000Z,co2,700.0\nC,2026-03-02T00:00:00.000Z,co2,710.0\n"
        );
    }

    #[test]
    fn a_csv_export_cut_anywhere_keeps_only_whole_devices() {
        for cut in 0..CSV.len() {
            let scan = scan_csv(&CSV.as_bytes()[..cut]).unwrap_or_else(|e| panic!("{cut}: {e}"));
            let kept = &CSV[..scan.keep as usize];
            for id in &scan.held {
                let whole = CSV
                    .lines()
                    .filter(|l| l.starts_with(&format!("{id},")))
                    .count();
                let in_kept = kept
                    .lines()
                    .filter(|l| l.starts_with(&format!("{id},")))
                    .count();
                assert_eq!(whole, in_kept, "{id} whole when cut at {cut}");
            }
            let kept_ids: HashSet<&str> = kept
                .lines()
                .skip(1)
                .filter_map(|l| l.split(',').next())
                .collect();
            assert_eq!(
                kept_ids.len(),
                scan.held.len(),
                "nothing kept but whole devices, at {cut}"
            );
            assert!(kept.is_empty() || kept.ends_with('\n'), "at {cut}");
        }
    }

    #[test]
    fn foreign_or_duplicated_files_are_refused() {
        assert!(scan_csv(b"name,value\nx,1\n").is_err());
        let twice = format!("{CSV}A,2026-03-03T00:00:00.000Z,co2,1\nD,x,co2,1\n");
        assert!(scan_csv(twice.as_bytes()).is_err());
        assert!(scan_jsonl(b"{\"physical_id\":\"A\"}\nnot json\n").is_err());
    }

    #[test]
    fn a_jsonl_export_cut_anywhere_keeps_only_whole_devices() {
        let lines = "{\"physical_id\":\"A\",\"data\":{}}\n{\"physical_id\":\"A\",\"data\":{}}\n\
                     {\"physical_id\":\"B\",\"data\":{}}\n{\"physical_id\":\"C\",\"data\":{}}\n";
        let scan = scan_jsonl(lines.as_bytes()).unwrap();
        assert_eq!(ids(&scan), ["A", "B"]);
        for cut in 0..lines.len() {
            let scan = scan_jsonl(&lines.as_bytes()[..cut]).unwrap();
            let kept = &lines[..scan.keep as usize];
            assert!(kept.is_empty() || kept.ends_with('\n'));
            assert!(!kept.contains('C'), "the last device is dropped at {cut}");
            if scan.held.contains("A") {
                assert_eq!(kept.matches("\"A\"").count(), 2, "A whole at {cut}");
            }
        }
    }
}
