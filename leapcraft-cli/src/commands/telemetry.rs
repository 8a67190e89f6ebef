//! `telemetry`: the latest reading of a device, or its averages over a range, optionally
//! drawn as a chart; and the table and CSV form of readings, which `latest` shares.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use leapcraft_ext::{Client, Reading, Resolution, TelemetryQuery, Timestamp};
use serde_json::Value;

use crate::commands::interruptible;
use crate::error::{Failure, report};
use crate::output::{Output, Records, num, opt};
use crate::{chart, values};

/// `telemetry`.
#[derive(Debug, Args)]
pub struct TelemetryArgs {
    /// The device's physical id.
    pub physical_id: String,
    /// Averages at this resolution instead of the latest reading.
    #[arg(long, value_enum, value_name = "RESOLUTION")]
    pub averages: Option<ResolutionArg>,
    /// Start of the range (default: the end minus 7 days, 8 weeks or 12 months): such as
    /// 2026-03-01, 2026-03-01T08:00:00Z, 24h or 7d (ago), yesterday, today, now.
    #[arg(long, value_name = "T", value_parser = values::timestamp)]
    pub from: Option<Timestamp>,
    /// End of the range (default: now), in the same forms.
    #[arg(long, value_name = "T", value_parser = values::timestamp)]
    pub to: Option<Timestamp>,
    /// Draw the averages of each metric as an SVG line chart into this file (daily
    /// averages unless `--averages` says otherwise). The file is replaced whole or not at
    /// all.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

/// A resolution of averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResolutionArg {
    /// One average per day.
    Daily,
    /// One average per week.
    Weekly,
    /// One average per month.
    Monthly,
}

impl ResolutionArg {
    /// The SDK's resolution.
    pub fn resolution(self) -> Resolution {
        match self {
            Self::Daily => Resolution::Daily,
            Self::Weekly => Resolution::Weekly,
            Self::Monthly => Resolution::Monthly,
        }
    }

    /// The default span of a range at this resolution.
    pub fn default_span(self) -> chrono::Duration {
        match self {
            Self::Daily => chrono::Duration::days(7),
            Self::Weekly => chrono::Duration::weeks(8),
            Self::Monthly => chrono::Duration::days(365),
        }
    }
}

/// The documented columns of readings; every other key any reading has follows them.
const READING_COLUMNS: [&str; 7] = [
    "physical_id",
    "timestamp",
    "created_at",
    "temperature",
    "humidity",
    "co2",
    "pm2_5",
];

/// Readings as records: the documented columns, then every other key any reading has.
pub fn reading_records(readings: &[Reading]) -> Records<'_> {
    let others: BTreeSet<&String> = readings.iter().flat_map(|r| r.other.keys()).collect();
    let columns: Vec<&str> = READING_COLUMNS
        .into_iter()
        .chain(others.iter().map(|k| k.as_str()))
        .collect();
    Records::list(readings, &columns, move |r| {
        let mut cells = vec![
            opt(r.physical_id.as_ref()),
            opt(r.timestamp),
            opt(r.created_at),
            num(r.temperature),
            num(r.humidity),
            num(r.co2),
            num(r.pm2_5),
        ];
        cells.extend(others.iter().map(|key| match r.other.get(*key) {
            None | Some(Value::Null) => String::new(),
            Some(Value::Number(n)) => num(n.as_f64()),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }));
        cells
    })
}

/// The query of averages at `resolution` from `from` to `to`: a range that does not start
/// before it ends is a usage error.
pub fn averages(
    resolution: ResolutionArg,
    from: Timestamp,
    to: Timestamp,
) -> Result<TelemetryQuery, Failure> {
    if from.as_datetime() >= to.as_datetime() {
        return Err(Failure::Usage(format!(
            "--from {from} is not before --to {to}: the range must start before it ends"
        )));
    }
    Ok(TelemetryQuery::averages(resolution.resolution(), from, to)?)
}

/// `telemetry`.
pub async fn run(client: &Client, args: TelemetryArgs, out: &Output) -> Result<(), Failure> {
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
            let to = args.to.unwrap_or_else(Timestamp::now);
            let from = args
                .from
                .unwrap_or_else(|| (to.as_datetime() - resolution.default_span()).into());
            averages(resolution, from, to)?
        }
    };
    let Some(path) = &args.chart else {
        let readings = client.telemetry(&args.physical_id, &query).await?;
        out.print(&reading_records(&readings))?;
        return Ok(());
    };
    // With a chart, Ctrl-C cancels cleanly: no request left behind, no file touched.
    let readings =
        interruptible(async { Ok(client.telemetry(&args.physical_id, &query).await?) }).await?;
    let (from, to) = query.range().expect("charts are of averages");
    let title = format!(
        "{} — {} averages, {} to {}",
        args.physical_id,
        query.resolution().expect("averages have a resolution"),
        from.as_datetime().format("%Y-%m-%d %H:%M"),
        to.as_datetime().format("%Y-%m-%d %H:%M"),
    );
    let chart = chart::draw(&title, &readings).map_err(Failure::Other)?;
    chart::save(path, &chart.svg)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))?;
    if let [first, .., last] | [first @ last] = chart.left_out.as_slice() {
        report(&format!(
            "the chart shows {} metrics; {} left out ({first} to {last}): --format csv has them",
            chart::MAX_PANELS,
            chart.left_out.len(),
        ));
    }
    out.print(&reading_records(&readings))?;
    Ok(())
}
