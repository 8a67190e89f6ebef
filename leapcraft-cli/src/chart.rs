//! `telemetry --chart`: the averages of each metric over the range, as an SVG line chart,
//! written whole or not at all.
//!
//! One panel per metric (their units differ too much to share an axis), drawn with
//! `plotters`' SVG backend into memory, then saved through a temporary file renamed over the
//! target. Text is written as SVG `<text>` elements: no system font is needed to render.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use leapcraft_ext::Reading;
use plotters::prelude::*;

use crate::sanitize::for_terminal;

/// The most panels a chart has: beyond, a chart is no longer readable.
pub const MAX_PANELS: usize = 12;

/// Metric names in captions are cut to this many characters.
const MAX_NAME: usize = 60;

/// The series of one metric: `(unix seconds, value)` in time order.
type Series = Vec<(i64, f64)>;

/// A drawn chart.
#[derive(Debug)]
pub struct Chart {
    /// The SVG document.
    pub svg: String,
    /// The metrics left out, beyond [`MAX_PANELS`].
    pub left_out: Vec<String>,
}

/// The metrics of `readings`, by name: the four documented ones first (with their units),
/// then every other numeric key the sensors sent. Values that are not finite are skipped.
pub fn metrics(readings: &[Reading]) -> Vec<(String, Series)> {
    let mut known: [(&str, Series); 4] = [
        ("temperature (°C)", Vec::new()),
        ("humidity (%)", Vec::new()),
        ("co2 (ppm)", Vec::new()),
        ("pm2_5 (µg/m³)", Vec::new()),
    ];
    let mut other: BTreeMap<String, Series> = BTreeMap::new();
    for r in readings {
        let Some(at) = r.timestamp else { continue };
        let t = at.as_datetime().timestamp();
        for (slot, value) in known
            .iter_mut()
            .zip([r.temperature, r.humidity, r.co2, r.pm2_5])
        {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                slot.1.push((t, v));
            }
        }
        for (key, value) in &r.other {
            if let Some(v) = value.as_f64().filter(|v| v.is_finite()) {
                other.entry(key.clone()).or_default().push((t, v));
            }
        }
    }
    let mut all: Vec<(String, Series)> = known
        .into_iter()
        .map(|(name, s)| (name.to_owned(), s))
        .chain(other)
        .filter(|(_, s)| !s.is_empty())
        .collect();
    for (_, series) in &mut all {
        series.sort_by_key(|(t, _)| *t);
    }
    all
}

/// Draws the chart of `readings`: at most [`MAX_PANELS`] metrics, the others named in
/// [`Chart::left_out`]. Fails if there is nothing to draw.
pub fn draw(title: &str, readings: &[Reading]) -> Result<Chart, String> {
    let mut metrics = metrics(readings);
    if metrics.is_empty() {
        return Err("no numeric metric to chart in the readings".to_owned());
    }
    let left_out = metrics
        .split_off(metrics.len().min(MAX_PANELS))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let fail = |e: &dyn std::fmt::Display| format!("cannot draw the chart: {e}");
    let panel_height = 220u32;
    let height = 40 + panel_height * metrics.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let root = root
            .titled(&for_terminal(title), ("sans-serif", 20))
            .map_err(|e| fail(&e))?;
        let panels = root.split_evenly((metrics.len(), 1));
        for (i, ((name, series), panel)) in metrics.iter().zip(&panels).enumerate() {
            let (series, power) = readable(series);
            let name = match power {
                Some(p) => format!("{} (×1e{p})", caption(name)),
                None => caption(name),
            };
            let (t0, t1) = time_range(&series);
            let (lo, hi) = value_range(&series);
            let mut chart = ChartBuilder::on(panel)
                .caption(&name, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(60)
                .build_cartesian_2d(t0..t1, lo..hi)
                .map_err(|e| fail(&e))?;
            chart
                .configure_mesh()
                .x_labels(8)
                .y_labels(5)
                .x_label_formatter(&|t| date_label(*t, t1 - t0))
                .y_label_formatter(&|v| format!("{v:.1}"))
                .draw()
                .map_err(|e| fail(&e))?;
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    series.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(
                    series
                        .iter()
                        .map(|&(t, v)| Circle::new((t, v), 3, color.filled())),
                )
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(Chart { svg, left_out })
}

/// Writes `svg` to `path` whole or not at all: into a temporary file beside it, then renamed
/// over it. On failure the temporary file is removed and an existing `path` is untouched.
pub fn save(path: &Path, svg: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".leapcraft-chart-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // As `File::create` would: what the umask allows.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(svg.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A metric name for the chart: controls made visible (they are not valid in SVG), a long
/// name cut.
fn caption(text: &str) -> String {
    let text = for_terminal(text);
    match text.char_indices().nth(MAX_NAME) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// The series with values an axis can show: divided by a power of ten when they are huge
/// (which also keeps the axis range finite up to ±`f64::MAX`), with that power.
fn readable(series: &Series) -> (Series, Option<i32>) {
    let largest = series.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
    if largest < 1e6 {
        return (series.clone(), None);
    }
    let power = largest.log10().floor() as i32;
    let scale = 10f64.powi(power);
    let scaled = series.iter().map(|&(t, v)| (t, v / scale)).collect();
    (scaled, Some(power))
}

fn time_range(series: &Series) -> (i64, i64) {
    let first = series.first().map_or(0, |p| p.0);
    let last = series.last().map_or(0, |p| p.0);
    if first == last {
        (first - 43_200, last + 43_200)
    } else {
        (first, last)
    }
}

fn value_range(series: &Series) -> (f64, f64) {
    let lo = series.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = series.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(0.5);
    (lo - pad, hi + pad)
}

fn date_label(t: i64, span: i64) -> String {
    let Some(at) = chrono::DateTime::from_timestamp(t, 0) else {
        return String::new();
    };
    if span <= 3 * 86_400 {
        at.format("%m-%d %H:%M").to_string()
    } else {
        at.format("%Y-%m-%d").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(day: u32, co2: f64) -> Reading {
        let mut r = Reading::default();
        r.timestamp = Some(format!("2021-05-{day:02}").parse().unwrap());
        r.co2 = Some(co2);
        r
    }

    #[test]
    fn metrics_in_order_with_others() {
        let mut a = reading(21, 500.0);
        a.other.insert("voc".into(), serde_json::json!(1.5));
        a.other.insert("label".into(), serde_json::json!("x"));
        let mut b = a.clone();
        b.timestamp = Some("2021-05-20".parse().unwrap());
        let m = metrics(&[a, b]);
        let names: Vec<_> = m.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["co2 (ppm)", "voc"]);
        assert!(m[0].1[0].0 < m[0].1[1].0, "sorted by time");
    }

    #[test]
    fn extreme_values_draw_a_chart() {
        for values in [
            [f64::MAX, -f64::MAX],
            [1e308, 1e308],
            [-1e308, 5e-324],
            [1e-300, 2e-300],
            [0.0, 0.0],
        ] {
            let readings = [reading(20, values[0]), reading(21, values[1])];
            let chart = draw("t", &readings).unwrap_or_else(|e| panic!("{values:?}: {e}"));
            assert!(chart.svg.trim_end().ends_with("</svg>"), "{values:?}");
        }
    }

    #[test]
    fn hundreds_of_metrics_keep_a_readable_chart() {
        let mut r = reading(20, 500.0);
        for k in 0..300 {
            r.other
                .insert(format!("m{k:03}\u{1b}[2J"), serde_json::json!(k));
        }
        let chart = draw("t", &[r]).unwrap();
        assert_eq!(chart.left_out.len(), 301 - MAX_PANELS);
        assert!(
            !chart.svg.contains('\u{1b}'),
            "controls are not valid in SVG"
        );
        assert!(chart.svg.contains("m000\\u{1b}[2J"));
    }
}
