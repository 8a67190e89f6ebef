//! The file an export writes: locked while a run writes it, holding whole devices only, and
//! made by one query.
//!
//! - **Locked.** The run holds an exclusive lock on the file (`flock` on Unix, `LockFileEx` on
//!   Windows) from before it reads it until it ends, so a second `export` into the same file
//!   fails at once instead of appending the same devices again.
//! - **Whole devices.** Each device's rows are appended in one write. When a write fails (a
//!   full disk, a file size limit), the file is cut back to the end of its last whole device,
//!   so that a reader never sees a torn row; a crash in the middle of a write leaves a cut
//!   row, which the next run cuts away with its device before completing the file.
//! - **One query.** The query that made the file is recorded beside it
//!   ([`super::query::Query`]); a run with another one is refused, unless told to start
//!   the file afresh.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::query::Query;
use crate::error::{Failure, plural};

/// The format of an export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
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
    /// The format `path`'s extension names.
    pub fn of(path: &Path) -> Result<Self, Failure> {
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

    /// Its name, as its extension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The file an export appends whole devices to, locked for as long as this value lives.
#[derive(Debug)]
pub struct ExportFile {
    path: PathBuf,
    format: FileFormat,
    /// Open for reading and appending, locked.
    file: File,
    /// Its length: the end of its last whole device.
    len: u64,
    /// How many devices it holds.
    devices: usize,
    /// Whether this run created it: if it ends empty, it is removed with its record.
    created: bool,
    /// The devices it held when opened, as written in it.
    held: HashSet<String>,
}

impl ExportFile {
    /// Opens `path` for an export of `query`, locked: a new file, or one a previous run of
    /// the same query started, or (with `overwrite`) any file, emptied. Of a file started
    /// before, the devices it holds are noted, and its end is cut back to before its last
    /// device, which an interruption may have cut short.
    pub fn open(
        path: &Path,
        format: FileFormat,
        query: &Query,
        overwrite: bool,
    ) -> Result<Self, Failure> {
        let fail = |why: String| Failure::Other(format!("{}: {why}", path.display()));
        let (file, created) =
            open_or_create(path).map_err(|e| fail(format!("cannot open it for writing: {e}")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(fail(
                    "another export is writing it (the file is locked); wait until it ends, \
                     or choose another --out"
                        .to_owned(),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(fail(format!("cannot lock it: {e}"))),
        }
        let mut export = Self {
            path: path.to_owned(),
            format,
            file,
            len: 0,
            devices: 0,
            created,
            held: HashSet::new(),
        };
        if overwrite {
            export
                .file
                .set_len(0)
                .map_err(|e| fail(format!("cannot empty it: {e}")))?;
            return export.recording(query);
        }

        let scan = match format {
            FileFormat::Csv => scan_csv(&export.file),
            FileFormat::Jsonl => scan_jsonl(&export.file),
        }
        .map_err(|why| {
            fail(format!(
                "{why}; not a file this command wrote (choose another --out, or pass \
                 --overwrite to replace it)"
            ))
        })?;
        if !scan.rows {
            // Nothing of another query to mix with, whatever its record says.
            export.cut(0).map_err(&fail)?;
            return export.recording(query);
        }
        let recorded = Query::recorded(path)
            .map_err(|why| Failure::Other(format!("{why}; pass --overwrite to start afresh")))?
            .ok_or_else(|| {
                fail(format!(
                    "it does not say which query made it ({} is missing), so it cannot be \
                     completed; choose another --out, or pass --overwrite to start it afresh",
                    Query::record_of(path).display()
                ))
            })?;
        let differences = recorded.differences(query);
        if !differences.is_empty() {
            return Err(Failure::Usage(format!(
                "{} holds the rows of another query ({}): run that query to complete it, \
                 choose another --out, or pass --overwrite to start it afresh with this one",
                path.display(),
                differences.join("; ")
            )));
        }
        export.cut(scan.keep).map_err(&fail)?;
        export.devices = scan.held.len();
        export.held = scan.held;
        Ok(export)
    }

    /// The export, its query recorded: for a file that holds nothing yet.
    fn recording(self, query: &Query) -> Result<Self, Failure> {
        query.record(&self.path).map_err(|e| {
            Failure::Other(format!(
                "{}: cannot record its query: {e}",
                Query::record_of(&self.path).display()
            ))
        })?;
        Ok(self)
    }

    /// Cuts the file to `len` bytes, if it is longer.
    fn cut(&mut self, len: u64) -> Result<(), String> {
        let now = self
            .file
            .metadata()
            .map_err(|e| format!("cannot read it: {e}"))?
            .len();
        if now > len {
            self.file
                .set_len(len)
                .map_err(|e| format!("cannot cut its incomplete end: {e}"))?;
        }
        self.len = len;
        Ok(())
    }

    /// The devices the file held when opened, as written in it (taken: empty after).
    pub fn take_held(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.held)
    }

    /// How many devices it holds.
    pub fn devices(&self) -> usize {
        self.devices
    }

    /// Appends the rows of one device in one write; an empty CSV file gets its header in
    /// the same write. When the write fails, the file is cut back to where it ended, its
    /// last whole device.
    pub fn append(&mut self, block: &[u8]) -> Result<(), Failure> {
        let whole;
        let bytes = if self.len == 0 && self.format == FileFormat::Csv {
            whole = [CSV_HEADER, block].concat();
            &whole[..]
        } else {
            block
        };
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.devices += 1;
                Ok(())
            }
            Err(e) => Err(self.write_failed(&e)),
        }
    }

    /// Cuts the file back to its last whole device after a failed write, and says so.
    fn write_failed(&mut self, e: &io::Error) -> Failure {
        let held = plural(self.devices, "whole device");
        let path = self.path.display();
        Failure::Other(match self.file.set_len(self.len) {
            Ok(()) => format!(
                "cannot write {path}: {e}; it holds {held}, cut back to the end of the last \
                 one: run the same command again to continue it"
            ),
            Err(cut) => format!(
                "cannot write {path}: {e}; nor cut it back to its last whole device ({cut}): \
                 its end may hold a cut row, which running the same command again removes \
                 before continuing it"
            ),
        })
    }
}

impl Drop for ExportFile {
    /// A file this run created and wrote nothing to is not left behind (the lock is
    /// released after, as the file closes).
    fn drop(&mut self) {
        if self.created && self.len == 0 {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(Query::record_of(&self.path));
        }
    }
}

/// `path` open for reading and appending, and whether it was created.
fn open_or_create(path: &Path) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((options.open(path)?, false)),
        Err(e) => Err(e),
    }
}

/// What a previous run left in a file: the devices it holds whole, and how many bytes to
/// keep.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    held: HashSet<String>,
    keep: u64,
    /// Whether it holds a whole row (the last device's included).
    rows: bool,
}

/// The rows of a file, device by device as they are read, folded into a [`Scan`]: memory
/// grows with the devices, not with the file.
#[derive(Default)]
struct Devices {
    held: HashSet<String>,
    /// The device whose rows are being read, and where they start.
    last: Option<(u64, String)>,
    /// Whether a row was read.
    rows: bool,
}

impl Devices {
    /// A row of device `id` starting at byte `start`: each device's rows must be together.
    fn row(&mut self, start: u64, id: &str) -> Result<(), String> {
        self.rows = true;
        if self.last.as_ref().is_some_and(|(_, current)| current == id) {
            return Ok(());
        }
        if let Some((_, previous)) = self.last.take() {
            self.held.insert(previous);
        }
        if self.held.contains(id) {
            return Err(format!("it holds rows of device `{id}` in two places"));
        }
        self.last = Some((start, id.to_owned()));
        Ok(())
    }

    /// The devices read, but the last one, which may be incomplete: the file is kept up to
    /// where it starts (or up to `end` without rows).
    fn scan(self, end: u64) -> Scan {
        Scan {
            held: self.held,
            keep: self.last.map_or(end, |(start, _)| start),
            rows: self.rows,
        }
    }
}

/// A reader that remembers the last byte it gave: whether a file ends with a line break.
struct Tail<R> {
    inner: R,
    last: Option<u8>,
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }
}

/// Scans a CSV export: header, then rows of 4 cells. A row cut short at the end (no final
/// line break, or fewer cells) is dropped with its device.
fn scan_csv(file: impl Read) -> Result<Scan, String> {
    let mut tail = Tail {
        inner: file,
        last: None,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&mut tail);
    let not_csv = |e: csv::Error| format!("it is not CSV ({e})");
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(not_csv)? {
        return Ok(Devices::default().scan(0));
    }
    if record.iter().ne(CSV_COLUMNS.iter().map(|c| c.as_bytes())) {
        let first = record.iter().collect::<Vec<_>>().join(&b","[..]);
        let only_line = !reader.read_byte_record(&mut record).map_err(not_csv)?;
        drop(reader);
        if only_line && tail.last != Some(b'\n') && CSV_HEADER.starts_with(&first[..]) {
            // Cut while the header was written.
            return Ok(Devices::default().scan(0));
        }
        return Err("its first line is not `physical_id,timestamp,metric,value`".to_owned());
    }
    // Where rows start: after the header's line break (a file cut before it holds none).
    let header_end = Some(reader.position().byte()).filter(|&end| end == CSV_HEADER.len() as u64);
    let mut devices = Devices::default();
    // The last row read, held back until it is known not to be one cut short at the end.
    let mut pending: Option<(u64, String, usize)> = None;
    while reader.read_byte_record(&mut record).map_err(not_csv)? {
        if let Some((start, id, cells)) = pending.take() {
            if cells != CSV_COLUMNS.len() {
                return Err(format!("the row at byte {start} does not have 4 cells"));
            }
            devices.row(start, &id)?;
        }
        let start = record.position().map_or(0, |p| p.byte());
        let id = String::from_utf8_lossy(record.get(0).unwrap_or_default()).into_owned();
        pending = Some((start, id, record.len()));
    }
    drop(reader);
    if let Some((start, id, cells)) = pending
        && cells == CSV_COLUMNS.len()
        && tail.last == Some(b'\n')
    {
        devices.row(start, &id)?;
    }
    Ok(devices.scan(header_end.unwrap_or(0)))
}

/// Scans a JSON Lines export: one object with a `physical_id` per line. A line cut short at
/// the end is dropped with its device.
fn scan_jsonl(file: impl Read) -> Result<Scan, String> {
    let mut reader = io::BufReader::new(file);
    let mut devices = Devices::default();
    let (mut line, mut offset) = (Vec::new(), 0u64);
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read it: {e}"))?;
        let Some(object) = line.strip_suffix(b"\n") else {
            // The end, or the last line, cut short.
            break;
        };
        let value: Value = serde_json::from_slice(object)
            .map_err(|e| format!("line at byte {offset} is not JSON ({e})"))?;
        let id = value
            .get("physical_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("line at byte {offset} has no physical_id"))?;
        devices.row(offset, id)?;
        offset += read as u64;
    }
    Ok(devices.scan(0))
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
        assert!(scan_csv(&b"name,value\nx,1\n"[..]).is_err());
        let twice = format!("{CSV}A,2026-03-03T00:00:00.000Z,co2,1\nD,x,co2,1\n");
        assert!(scan_csv(twice.as_bytes()).is_err());
        assert!(scan_jsonl(&b"{\"physical_id\":\"A\"}\nnot json\n"[..]).is_err());
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
