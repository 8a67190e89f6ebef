//! Printing records on stdout as a table, JSON or CSV, with server text made safe for where
//! it lands (see [`crate::sanitize`]).
//!
//! A command turns what it got into a [`Records`]: the JSON of each record exactly as the
//! SDK serialises it, or the columns and cells for the table and CSV forms, each made only
//! when that form is printed.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ColumnConstraint, ContentArrangement, Row, Table, Width};
use serde::Serialize;
use serde_json::Value;

use crate::sanitize::{for_spreadsheet, for_terminal, json_for_terminal};

/// How records are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable table, as wide as the terminal.
    Table,
    /// The records as JSON: an array for lists, an object for one item.
    Json,
    /// A header row, then one row per record.
    Csv,
}

/// Records ready to print: one item, or a list, and how to show them in each form.
pub struct Records<'a> {
    /// One item (printed as a JSON object) or a list (a JSON array).
    single: bool,
    /// Column names, for tables and CSV.
    columns: Vec<String>,
    /// The records as JSON, one per record.
    json: Box<dyn Fn() -> serde_json::Result<Vec<Value>> + 'a>,
    /// One row of cells per record.
    rows: Box<dyn Fn() -> Vec<Vec<String>> + 'a>,
}

impl<'a> Records<'a> {
    /// A list of records, with `columns` and a function giving the cells of a record.
    pub fn list<T: Serialize>(
        items: &'a [T],
        columns: &[&str],
        cells: impl Fn(&T) -> Vec<String> + 'a,
    ) -> Self {
        Self {
            single: false,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            json: Box::new(move || items.iter().map(serde_json::to_value).collect()),
            rows: Box::new(move || items.iter().map(&cells).collect()),
        }
    }

    /// One record.
    pub fn one<T: Serialize>(
        item: &'a T,
        columns: &[&str],
        cells: impl Fn(&T) -> Vec<String> + 'a,
    ) -> Self {
        Self {
            single: true,
            ..Self::list(std::slice::from_ref(item), columns, cells)
        }
    }
}

/// Where and how records are printed: the format, and what the text must be kept from.
#[derive(Debug, Clone)]
pub struct Output {
    /// The format.
    pub format: Format,
    /// Whether CSV cells a spreadsheet would run as formulas get a leading `'`.
    pub neutralise_formulas: bool,
    /// Whether stdout is a terminal: CSV then shows control characters escaped too.
    terminal: bool,
    /// The width tables must fit: `$COLUMNS` if set, else the terminal's (looked up by
    /// comfy-table when stdout is a terminal).
    width: Option<u16>,
}

impl Output {
    /// Output on stdout.
    pub fn new(format: Format, neutralise_formulas: bool) -> Self {
        Self {
            format,
            neutralise_formulas,
            terminal: io::stdout().is_terminal(),
            width: std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok())
                .filter(|&w| w > 0),
        }
    }

    /// Prints `records` on stdout.
    pub fn print(&self, records: &Records<'_>) -> io::Result<()> {
        let mut out = io::stdout().lock();
        self.write(records, &mut out)?;
        out.flush()
    }

    /// Writes `records` to `out`.
    pub fn write(&self, records: &Records<'_>, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let json = (records.json)()?;
                let text = match (records.single, json.first()) {
                    (true, one) => json_text(one.unwrap_or(&Value::Null), true)?,
                    (false, _) => json_text(&json, true)?,
                };
                writeln!(out, "{text}")
            }
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(&mut *out);
                writer.write_record(records.columns.iter().map(|c| self.csv_cell(c)))?;
                for row in (records.rows)() {
                    writer.write_record(row.iter().map(|c| self.csv_cell(c)))?;
                }
                writer.flush()
            }
            Format::Table => self.write_table(records, out),
        }
    }

    /// Writes `records` as a table: one record as a table of fields and values.
    fn write_table(&self, records: &Records<'_>, out: &mut impl Write) -> io::Result<()> {
        let rows = (records.rows)();
        if records.single {
            let fields: Vec<Vec<String>> = rows
                .first()
                .map(|row| {
                    records
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(column, cell)| vec![column.clone(), cell.clone()])
                        .collect()
                })
                .unwrap_or_default();
            let (table, _) = self.table(&["field".into(), "value".into()], &fields);
            return writeln!(out, "{table}");
        }
        if rows.is_empty() {
            return writeln!(out, "(none)");
        }
        let (table, note) = self.table(&records.columns, &rows);
        writeln!(out, "{table}")?;
        if let Some(note) = note {
            writeln!(out, "{note}")?;
        }
        writeln!(
            out,
            "{} record{}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        )
    }

    /// A CSV cell: formulas neutralised unless turned off; on a terminal, controls escaped.
    fn csv_cell(&self, cell: &str) -> String {
        let cell = if self.neutralise_formulas {
            for_spreadsheet(cell)
        } else {
            Cow::Borrowed(cell)
        };
        if self.terminal {
            for_terminal(&cell).into_owned()
        } else {
            cell.into_owned()
        }
    }

    /// A table of the cells, controls escaped, one line per row: what does not fit the width
    /// is cut with an ellipsis, and columns that would be narrower than [`MIN_COLUMN`] are
    /// left out (the note says how many).
    fn table(&self, header: &[String], rows: &[Vec<String>]) -> (Table, Option<String>) {
        let escaped = |cells: &[String]| -> Vec<String> {
            cells.iter().map(|c| for_terminal(c).into_owned()).collect()
        };
        let header = escaped(header);
        let rows: Vec<Vec<String>> = rows.iter().map(|r| escaped(r)).collect();
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_truncation_indicator("…");
        if let Some(width) = self.width {
            table.set_width(width);
        }
        let shown = match table.width() {
            Some(width) => columns_that_fit(&header, &rows, usize::from(width)),
            None => header.len(),
        };
        let line = |cells: &[String]| {
            let mut row = Row::from(cells.iter().take(shown));
            row.max_height(1);
            row
        };
        table.set_header(line(&header));
        for row in &rows {
            table.add_row(line(row));
        }
        // The first column is the records' id: not cut, so that it can be copied, unless
        // it alone cannot fit; the others give way.
        let id_width = widest(&header, &rows, 0);
        if let (Some(width), Some(first)) = (table.width(), table.column_mut(0))
            && id_fits(id_width, usize::from(width))
        {
            // The boundary counts the cell's padding, a space each side.
            let id_width = u16::try_from(id_width + 2).unwrap_or(u16::MAX);
            first.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(id_width)));
        }
        let left_out = header.len() - shown;
        let note = (left_out > 0).then(|| {
            format!(
                "{left_out} more column{} not shown: {}",
                if left_out == 1 { "" } else { "s" },
                "--format json or csv has them all"
            )
        });
        (table, note)
    }

    /// A printer of records one at a time, as they arrive.
    pub fn streamer<W: Write>(&self, out: W) -> Streamer<'_, W> {
        Streamer {
            output: self,
            out,
            header_written: false,
        }
    }
}

/// Columns narrower than this many characters are not worth showing.
const MIN_COLUMN: usize = 8;

/// How many of the first columns fit `width`, the first as wide as its content, each other
/// as wide as its content up to [`MIN_COLUMN`], with its borders and padding; at least one.
fn columns_that_fit(header: &[String], rows: &[Vec<String>], width: usize) -> usize {
    let mut used = 1;
    for i in 0..header.len() {
        let content = widest(header, rows, i);
        used += if i == 0 && id_fits(content, width) {
            content.max(1)
        } else {
            content.clamp(1, MIN_COLUMN)
        } + 3;
        if used > width && i > 0 {
            return i;
        }
    }
    header.len()
}

/// The widest cell of column `i`, its name included, in characters.
fn widest(header: &[String], rows: &[Vec<String>], i: usize) -> usize {
    rows.iter()
        .filter_map(|row| row.get(i))
        .chain(header.get(i))
        .map(|cell| cell.chars().count())
        .max()
        .unwrap_or(0)
}

/// Whether an id column `content` wide fits a table `width` wide alone, with its borders,
/// padding and an ellipsis column beside it.
fn id_fits(content: usize, width: usize) -> bool {
    content + 4 + MIN_COLUMN <= width
}

/// JSON text of `value`, with the controls serde_json leaves raw escaped too.
fn json_text(value: &(impl Serialize + ?Sized), pretty: bool) -> io::Result<String> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }?;
    Ok(json_for_terminal(text))
}

/// Prints records one at a time, as they arrive (`notifications --follow`): JSON as one
/// object per line, CSV with its header first, tables as one line per record.
pub struct Streamer<'a, W: Write> {
    output: &'a Output,
    out: W,
    header_written: bool,
}

impl<W: Write> Streamer<'_, W> {
    /// Prints the records of `records` (a list of one or more) and flushes.
    pub fn push(&mut self, records: &Records<'_>) -> io::Result<()> {
        match self.output.format {
            Format::Json => {
                for value in (records.json)()? {
                    writeln!(self.out, "{}", json_text(&value, false)?)?;
                }
            }
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(&mut self.out);
                if !self.header_written {
                    writer.write_record(records.columns.iter().map(|c| self.output.csv_cell(c)))?;
                }
                for row in (records.rows)() {
                    writer.write_record(row.iter().map(|c| self.output.csv_cell(c)))?;
                }
                writer.flush()?;
            }
            Format::Table => {
                for row in (records.rows)() {
                    let cells: Vec<Cow<'_, str>> = row.iter().map(|c| for_terminal(c)).collect();
                    writeln!(self.out, "{}", cells.join("  "))?;
                }
            }
        }
        self.header_written = true;
        self.out.flush()
    }

    /// Flushes what was printed.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Prints `bytes` on stdout as they are: a document made whole elsewhere (a completion
/// script, a man page).
pub fn print_bytes(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
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

    /// Two things, the first named `name`, as `output` writes them.
    fn sample(output: &Output, name: &'static str) -> String {
        let items = [Thing { name, n: 1 }, Thing { name: "c", n: -2 }];
        let records = Records::list(&items, &["name", "n"], |t| {
            vec![t.name.into(), t.n.to_string()]
        });
        let mut out = Vec::new();
        output.write(&records, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn output(format: Format) -> Output {
        Output {
            format,
            neutralise_formulas: true,
            terminal: false,
            width: None,
        }
    }

    #[test]
    fn formats() {
        let csv = sample(&output(Format::Csv), "a,b");
        assert_eq!(csv, "name,n\n\"a,b\",1\nc,-2\n");
        let json: Value = serde_json::from_str(&sample(&output(Format::Json), "a")).unwrap();
        assert_eq!(json[1]["n"], -2);
        assert!(sample(&output(Format::Table), "a,b").contains("a,b"));
    }

    #[test]
    fn csv_on_a_terminal_shows_controls_escaped() {
        let mut on_terminal = output(Format::Csv);
        on_terminal.terminal = true;
        let csv = sample(&on_terminal, "=x\u{1b}[2J");
        assert!(csv.contains("'=x\\u{1b}[2J"), "{csv}");
        let mut raw = output(Format::Csv);
        raw.neutralise_formulas = false;
        assert!(sample(&raw, "=x\u{1b}").contains("=x\u{1b}"));
    }

    #[test]
    fn tables_fit_the_width() {
        let mut narrow = output(Format::Table);
        narrow.width = Some(30);
        let long: &'static str = "a very long name that does not fit in thirty columns";
        let table = sample(&narrow, long);
        for line in table.lines() {
            assert!(line.chars().count() <= 30, "{line:?} in\n{table}");
        }
        assert!(table.contains('…'), "{table}");
    }

    #[test]
    fn ids_are_never_cut_other_columns_give_way() {
        let mut narrow = output(Format::Table);
        narrow.width = Some(40);
        let id: &'static str = "0123993712345678d55d3a3582";
        let table = sample(&narrow, id);
        assert!(table.contains(id), "{table}");
        for line in table.lines() {
            assert!(line.chars().count() <= 40, "{line:?} in\n{table}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(num(Some(21.456)), "21.46");
        assert_eq!(num(Some(400.0)), "400");
        assert_eq!(num(Some(0.5)), "0.5");
        assert_eq!(num(None), "");
    }
}
