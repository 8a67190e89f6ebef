//! The query an export file was made by, remembered beside it in `FILE.leapcraft-export`, so
//! that a resume with another query cannot mix two sets of rows in one file.
//!
//! The record is a file of its own rather than a line in the export: a comment line or an
//! extra column would make `FILE.csv` / `FILE.jsonl` something else than the plain CSV and
//! JSON Lines that spreadsheets, `pandas.read_csv`, `jq` or DuckDB read as they are. It is
//! small JSON, readable by a person:
//!
//! ```json
//! {
//!   "leapcraft_export": 1,
//!   "averages": "daily",
//!   "from": "2026-03-01T00:00:00.000Z",
//!   "to": "2026-04-01T00:00:00.000Z",
//!   "devices": [],
//!   "format": "csv",
//!   "raw_csv": false
//! }
//! ```
//!
//! Everything that decides which rows the file holds and how they are written is in it: the
//! resolution, the range (relative times such as `7d` as the instants they stood for), the
//! devices chosen (none: every device of the account), the format and whether CSV cells were
//! neutralised. Move or copy the export with its record to resume it elsewhere.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::ExportArgs;
use super::file::FileFormat;

/// The version of the record's form, in its `leapcraft_export` field.
const VERSION: u32 = 1;

/// The longest record read: far more than a list of every device of an account takes.
const MAX_RECORD: u64 = 64 << 20;

/// What defines the rows of an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The form of this record: [`VERSION`].
    leapcraft_export: u32,
    /// `daily`, `weekly` or `monthly`.
    averages: String,
    /// Start of the range, RFC 3339.
    from: String,
    /// End of the range, RFC 3339.
    to: String,
    /// The devices chosen with `--device`, sorted, each once; empty for every device.
    devices: Vec<String>,
    /// `csv` or `jsonl`.
    format: String,
    /// Whether CSV cells are written as received (`--raw-csv`) rather than neutralised.
    raw_csv: bool,
}

impl Query {
    /// The query of an `export` run.
    pub fn of(args: &ExportArgs, format: FileFormat, neutralise: bool) -> Self {
        let mut devices = args.devices.clone();
        devices.sort();
        devices.dedup();
        Self {
            leapcraft_export: VERSION,
            averages: args
                .averages
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
            from: args.from.to_string(),
            to: args.to.to_string(),
            devices,
            format: format.name().to_owned(),
            raw_csv: format == FileFormat::Csv && !neutralise,
        }
    }

    /// Where the query of the export file `export` is recorded.
    pub fn record_of(export: &Path) -> PathBuf {
        let mut name = export.as_os_str().to_owned();
        name.push(".leapcraft-export");
        PathBuf::from(name)
    }

    /// The query recorded for `export`, if one is.
    pub fn recorded(export: &Path) -> Result<Option<Self>, String> {
        let record = Self::record_of(export);
        let file = match File::open(&record) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", record.display())),
        };
        let mut text = Vec::new();
        file.take(MAX_RECORD)
            .read_to_end(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", record.display()))?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a record of an export ({e})", record.display()))
    }

    /// Records this query for `export`, replacing its record whole or not at all.
    pub fn record(&self, export: &Path) -> io::Result<()> {
        let record = Self::record_of(export);
        let dir = match record.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer_pretty(&mut temporary, self)?;
        temporary.write_all(b"\n")?;
        temporary.persist(&record).map_err(|e| e.error)?;
        Ok(())
    }

    /// What differs between the query `self` recorded and `asked`, by the flags that set it:
    /// empty when they are the same.
    pub fn differences(&self, asked: &Self) -> Vec<String> {
        let mut differences = Vec::new();
        let mut compare = |flag: &str, there: String, here: String| {
            if there != here {
                differences.push(format!("{flag} {there} there, {here} here"));
            }
        };
        compare("--averages", self.averages.clone(), asked.averages.clone());
        compare("--from", self.from.clone(), asked.from.clone());
        compare("--to", self.to.clone(), asked.to.clone());
        compare(
            "--device",
            describe_devices(&self.devices),
            describe_devices(&asked.devices),
        );
        compare("the format", self.format.clone(), asked.format.clone());
        let cells = |raw: bool| if raw { "raw" } else { "neutralised" }.to_owned();
        compare(
            "--raw-csv (cells)",
            cells(self.raw_csv),
            cells(asked.raw_csv),
        );
        if self.leapcraft_export != asked.leapcraft_export {
            differences.push(format!(
                "the record's form {} there, {} here",
                self.leapcraft_export, asked.leapcraft_export
            ));
        }
        differences
    }
}

/// A device selection in a few words: "every device", or the devices chosen (the first few).
fn describe_devices(devices: &[String]) -> String {
    const SHOWN: usize = 3;
    match devices {
        [] => "every device".to_owned(),
        [one] => one.clone(),
        many => {
            let mut shown = many[..many.len().min(SHOWN)].join(", ");
            if many.len() > SHOWN {
                shown.push_str(&format!(", … ({} in all)", many.len()));
            }
            format!("({shown})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn query(args: &[&str]) -> Query {
        #[derive(Parser)]
        struct Export {
            #[command(flatten)]
            args: ExportArgs,
        }
        let parsed = Export::try_parse_from(
            ["export", "--out", "x.csv"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        Query::of(&parsed.args, FileFormat::Csv, true)
    }

    const DAILY_MARCH: [&str; 6] = [
        "--averages",
        "daily",
        "--from",
        "2026-03-01",
        "--to",
        "2026-04-01",
    ];

    #[test]
    fn the_same_query_in_other_words_is_the_same() {
        let a = query(&[&DAILY_MARCH[..], &["--device", "B", "--device", "A"]].concat());
        let b = query(
            &[
                &DAILY_MARCH[..],
                &["--device", "A", "--device", "B", "--device", "A"],
            ]
            .concat(),
        );
        assert_eq!(a.differences(&b), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_named_by_its_flag() {
        let daily = query(&DAILY_MARCH);
        let weekly = query(&[
            "--averages",
            "weekly",
            "--from",
            "2025-01-01",
            "--to",
            "2026-04-01",
            "--device",
            "A",
        ]);
        assert_eq!(
            daily.differences(&weekly),
            [
                "--averages daily there, weekly here",
                "--from 2026-03-01T00:00:00.000Z there, 2025-01-01T00:00:00.000Z here",
                "--device every device there, A here",
            ]
        );
    }

    #[test]
    fn a_record_reads_back_and_refuses_what_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("march.csv");
        assert_eq!(Query::recorded(&export), Ok(None));
        let daily = query(&DAILY_MARCH);
        daily.record(&export).unwrap();
        assert_eq!(
            Query::record_of(&export),
            dir.path().join("march.csv.leapcraft-export")
        );
        assert_eq!(Query::recorded(&export), Ok(Some(daily)));

        let record = Query::record_of(&export);
        let text = std::fs::read_to_string(&record).unwrap();
        std::fs::write(&record, text.replace("\"raw_csv\"", "\"rows\"")).unwrap();
        let refused = Query::recorded(&export).unwrap_err();
        assert!(refused.contains("not a record of an export"), "{refused}");
    }
}
