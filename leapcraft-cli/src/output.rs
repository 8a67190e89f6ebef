//! Printing records as a table, JSON or CSV.
//!
//! A command turns what it got into a [`Records`]: the JSON of each record exactly as the
//! SDK serialises it, and the columns and cells for the table and CSV forms.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;

use crate::args::Format;

/// Records ready to print: one item, or a list.
#[derive(Debug, Clone)]
pub struct Records {
    /// One item (printed as a JSON object) or a list (a JSON array).
    pub single: bool,
    /// The records as JSON, one per record.
    pub json: Vec<Value>,
    /// Column names, for tables and CSV.
    pub columns: Vec<String>,
    /// One row of cells per record.
    pub rows: Vec<Vec<String>>,
}

impl Records {
    /// A list of records, with `columns` and a function giving the cells of a record.
    pub fn list<T: Serialize>(
        items: &[T],
        columns: &[&str],
        cells: impl Fn(&T) -> Vec<String>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            single: false,
            json: items
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: items.iter().map(cells).collect(),
        })
    }

    /// One record.
    pub fn one<T: Serialize>(
        item: &T,
        columns: &[&str],
        cells: impl Fn(&T) -> Vec<String>,
    ) -> Result<Self, serde_json::Error> {
        let mut records = Self::list(std::slice::from_ref(item), columns, cells)?;
        records.single = true;
        Ok(records)
    }

    /// Prints the records on `out` in `format`.
    pub fn print(&self, format: Format, out: &mut impl Write) -> io::Result<()> {
        match format {
            Format::Json => {
                let value = if self.single {
                    self.json.first().cloned().unwrap_or(Value::Null)
                } else {
                    Value::Array(self.json.clone())
                };
                serde_json::to_writer_pretty(&mut *out, &value)?;
                writeln!(out)
            }
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(&mut *out);
                writer.write_record(&self.columns)?;
                for row in &self.rows {
                    writer.write_record(row)?;
                }
                writer.flush()
            }
            Format::Table if self.single => {
                let mut table = new_table();
                table.set_header(["field", "value"]);
                if let Some(row) = self.rows.first() {
                    for (column, cell) in self.columns.iter().zip(row) {
                        table.add_row([column.as_str(), cell.as_str()]);
                    }
                }
                writeln!(out, "{table}")
            }
            Format::Table if self.rows.is_empty() => writeln!(out, "(none)"),
            Format::Table => {
                let mut table = new_table();
                table.set_header(&self.columns);
                for row in &self.rows {
                    table.add_row(row);
                }
                writeln!(out, "{table}")?;
                writeln!(
                    out,
                    "{} record{}",
                    self.rows.len(),
                    if self.rows.len() == 1 { "" } else { "s" }
                )
            }
        }
    }
}

fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// Prints records one at a time, as they arrive (`notifications --follow`): JSON as one
/// object per line, CSV with its header first, tables as one line per record.
pub struct Streamer<W: Write> {
    format: Format,
    out: W,
    header_written: bool,
}

impl<W: Write> Streamer<W> {
    /// A streamer writing to `out`.
    pub fn new(format: Format, out: W) -> Self {
        Self {
            format,
            out,
            header_written: false,
        }
    }

    /// Prints the records of `records` (a list of one or more) and flushes.
    pub fn push(&mut self, records: &Records) -> io::Result<()> {
        match self.format {
            Format::Json => {
                for value in &records.json {
                    serde_json::to_writer(&mut self.out, value)?;
                    writeln!(self.out)?;
                }
            }
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(&mut self.out);
                if !self.header_written {
                    writer.write_record(&records.columns)?;
                }
                for row in &records.rows {
                    writer.write_record(row)?;
                }
                writer.flush()?;
            }
            Format::Table => {
                for row in &records.rows {
                    writeln!(self.out, "{}", row.join("  "))?;
                }
            }
        }
        self.header_written = true;
        self.out.flush()
    }
}

/// A cell for an optional value: empty when absent.
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A cell for a number: up to two decimals, no trailing zeros.
pub fn num(value: Option<f64>) -> String {
    match value {
        Some(v) => {
            let s = format!("{v:.2}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "0".to_owned()
            } else {
                s.to_owned()
            }
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Thing {
        name: &'static str,
        n: i32,
    }

    fn sample() -> Records {
        let items = [Thing { name: "a,b", n: 1 }, Thing { name: "c", n: 2 }];
        Records::list(&items, &["name", "n"], |t| {
            vec![t.name.into(), t.n.to_string()]
        })
        .unwrap()
    }

    #[test]
    fn formats() {
        let mut out = Vec::new();
        sample().print(Format::Csv, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "name,n\n\"a,b\",1\nc,2\n");
        let mut out = Vec::new();
        sample().print(Format::Json, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[1]["n"], 2);
        let mut out = Vec::new();
        sample().print(Format::Table, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("a,b"));
    }

    #[test]
    fn numbers() {
        assert_eq!(num(Some(21.456)), "21.46");
        assert_eq!(num(Some(400.0)), "400");
        assert_eq!(num(Some(0.5)), "0.5");
        assert_eq!(num(None), "");
    }
}
