//! `telemetry --chart`: the averages of each metric over the range, as an SVG line chart.
//!
//! One panel per metric (their units differ too much to share an axis), drawn with
//! `plotters`' SVG backend. Text is written as SVG `<text>` elements: no system font is
//! needed to render.

use std::collections::BTreeMap;
use std::path::Path;

use leapcraft_ext::Reading;
use plotters::prelude::*;

/// The series of one metric: `(unix seconds, value)` in time order.
type Series = Vec<(i64, f64)>;

/// The metrics of `readings`, by name: the four documented ones first (with their units),
/// then every other numeric key the sensors sent.
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

/// Draws the chart of `readings` into `path`. Fails if there is nothing to draw.
pub fn draw(path: &Path, title: &str, readings: &[Reading]) -> Result<(), String> {
    let metrics = metrics(readings);
    if metrics.is_empty() {
        return Err("no numeric metric to chart in the readings".to_owned());
    }
    let panel_height = 220u32;
    let height = 40 + panel_height * metrics.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| fail(&e))?;
    let panels = root.split_evenly((metrics.len(), 1));

    for (i, ((name, series), panel)) in metrics.iter().zip(&panels).enumerate() {
        let (t0, t1) = time_range(series);
        let (lo, hi) = value_range(series);
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 15))
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
    Ok(())
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

    #[test]
    fn metrics_in_order_with_others() {
        let mut a = Reading::default();
        a.timestamp = Some("2021-05-21".parse().unwrap());
        a.co2 = Some(500.0);
        a.other.insert("voc".into(), serde_json::json!(1.5));
        a.other.insert("label".into(), serde_json::json!("x"));
        let mut b = a.clone();
        b.timestamp = Some("2021-05-20".parse().unwrap());
        let m = metrics(&[a, b]);
        let names: Vec<_> = m.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["co2 (ppm)", "voc"]);
        assert!(m[0].1[0].0 < m[0].1[1].0, "sorted by time");
    }
}
