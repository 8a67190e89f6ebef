//! Telemetry: [`TelemetryQuery`] (latest, or averages over a range), and [`Reading`], one
//! data point with its metrics typed and every other key kept.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{Client, Error, PhysicalId, Timestamp, types};

pub use crate::types::Resolution;

/// What telemetry to fetch: the latest raw reading, or averages at a resolution over a time
/// range. Invalid combinations cannot be built: averages always have a resolution and a
/// range with `from` before `to`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use leapcraft_ext::{Resolution, TelemetryQuery};
///
/// let latest = TelemetryQuery::latest();
/// let week = TelemetryQuery::averages(
///     Resolution::Daily,
///     Utc.with_ymd_and_hms(2021, 5, 20, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2021, 5, 27, 0, 0, 0).unwrap(),
/// )?;
/// assert!(TelemetryQuery::averages(
///     Resolution::Daily,
///     Utc.with_ymd_and_hms(2021, 5, 27, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2021, 5, 20, 0, 0, 0).unwrap(),
/// ).is_err());
/// # Ok::<(), leapcraft_ext::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryQuery(Kind);

/// Readings an answer for the latest reading may hold (the API sends one).
const LATEST_READINGS: u64 = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Latest,
    Averages {
        resolution: Resolution,
        from: Timestamp,
        to: Timestamp,
    },
}

/// The most averages a range can hold: one per period it overlaps (a month is at least 28
/// days), two more for the partial periods at its ends. The answer's body is bounded by it.
fn periods(resolution: Resolution, from: &Timestamp, to: &Timestamp) -> u64 {
    let days = (to.as_datetime() - from.as_datetime()).num_days().max(0) as u64 + 1;
    let period_days = match resolution {
        Resolution::Daily => 1,
        Resolution::Weekly => 7,
        Resolution::Monthly => 28,
    };
    days.div_ceil(period_days) + 2
}

impl TelemetryQuery {
    /// The latest raw data point the sensor recorded.
    pub fn latest() -> Self {
        Self(Kind::Latest)
    }

    /// Averages at `resolution` over `from..to`. Fails with [`Error::InvalidInput`] unless
    /// `from` is before `to`.
    pub fn averages(
        resolution: Resolution,
        from: impl Into<Timestamp>,
        to: impl Into<Timestamp>,
    ) -> Result<Self, Error> {
        let (from, to) = (from.into(), to.into());
        if from >= to {
            return Err(Error::invalid(format!(
                "get_telemetry: the range must start before it ends (from {from}, to {to})"
            )));
        }
        Ok(Self(Kind::Averages {
            resolution,
            from,
            to,
        }))
    }

    /// The resolution, for averages.
    pub fn resolution(&self) -> Option<Resolution> {
        match &self.0 {
            Kind::Latest => None,
            Kind::Averages { resolution, .. } => Some(*resolution),
        }
    }

    /// The range `(from, to)`, for averages.
    pub fn range(&self) -> Option<(Timestamp, Timestamp)> {
        match &self.0 {
            Kind::Latest => None,
            Kind::Averages { from, to, .. } => Some((*from, *to)),
        }
    }
}

/// One reading of a device: raw, or an average over a period.
///
/// The four documented metrics are typed; every other key the sensor sent is kept in
/// [`other`](Self::other), so nothing a new sensor kind reports is lost.
///
/// ```
/// use leapcraft_ext::Reading;
/// let reading: Reading = serde_json::from_str(r#"{"co2": 550, "other": {"voc": 12}}"#)?;
/// assert_eq!(reading.co2, Some(550.0));
/// assert_eq!(reading.other["voc"], 12);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Reading {
    /// The device.
    pub physical_id: Option<PhysicalId>,
    /// When the reading was taken (for averages, the start of the period).
    pub timestamp: Option<Timestamp>,
    /// When the reading was stored.
    pub created_at: Option<Timestamp>,
    /// Temperature, in degrees Celsius.
    pub temperature: Option<f64>,
    /// Relative humidity, in percent.
    pub humidity: Option<f64>,
    /// CO2 concentration, in ppm.
    pub co2: Option<f64>,
    /// Particulate matter up to 2.5 µm, in µg/m³.
    pub pm2_5: Option<f64>,
    /// The reading's free-form `meta`.
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Every other key of the reading's data, as sent (`voc`, `noise`, ...).
    #[serde(default)]
    pub other: BTreeMap<String, Value>,
}

impl From<types::Telemetry> for Reading {
    fn from(t: types::Telemetry) -> Self {
        let mut reading = Self {
            physical_id: t.physical_id.map(PhysicalId::from),
            timestamp: t.timestamp,
            created_at: t.created_at,
            ..Self::default()
        };
        if let Some(data) = t.data {
            reading.temperature = data.temperature;
            reading.humidity = data.humidity;
            reading.co2 = data.co2;
            reading.pm2_5 = data.pm2_5;
            reading.meta = data.meta.map(|m| m.0).unwrap_or_default();
            reading.other = data.extra.into_iter().collect();
        }
        reading
    }
}

/// The readings of a response, whether it held one object or a list.
fn readings(response: types::TelemetryResponse) -> Vec<Reading> {
    match response {
        types::TelemetryResponse::Telemetry(one) => vec![Reading::from(one)],
        types::TelemetryResponse::Array(many) => many.into_iter().map(Reading::from).collect(),
    }
}

impl Client {
    /// Telemetry of a device: the latest reading, or averages over a range. Always a list:
    /// the API may answer with one object or an array.
    ///
    /// ```no_run
    /// use chrono::{Duration, Utc};
    /// use leapcraft_ext::{Resolution, TelemetryQuery};
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let now = Utc::now();
    /// let query = TelemetryQuery::averages(Resolution::Daily, now - Duration::days(7), now)?;
    /// for day in client.telemetry("D2:C1:AA:FF:3E:09", &query).await? {
    ///     println!("{:?}: {:?} °C", day.timestamp, day.temperature);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn telemetry(
        &self,
        physical_id: impl Into<PhysicalId>,
        query: &TelemetryQuery,
    ) -> Result<Vec<Reading>, Error> {
        const OP: &str = "get_telemetry";
        let id = physical_id.into();
        let checked = id.checked(OP)?;
        // The latest reading is a few readings at most; a range holds one a period.
        let items = match &query.0 {
            Kind::Latest => LATEST_READINGS,
            Kind::Averages {
                resolution,
                from,
                to,
            } => periods(*resolution, from, to),
        };
        let response = self
            .call_for_items(OP, items, async |api| {
                let request = api.get_telemetry().physical_id(checked);
                let request = match &query.0 {
                    Kind::Latest => request.type_(types::TelemetryType::Latest),
                    Kind::Averages {
                        resolution,
                        from,
                        to,
                    } => request
                        .type_(types::TelemetryType::Averages)
                        .resolution(*resolution)
                        .from(*from)
                        .to(*to),
                };
                request.send().await
            })
            .await?;
        Ok(readings(response))
    }

    /// The latest reading of a device (the last one, should the API send several).
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let reading = client.latest("D2:C1:AA:FF:3E:09").await?;
    /// println!("{:?} ppm CO2 at {:?}", reading.co2, reading.timestamp);
    /// # Ok(()) }
    /// ```
    pub async fn latest(&self, physical_id: impl Into<PhysicalId>) -> Result<Reading, Error> {
        self.telemetry(physical_id, &TelemetryQuery::latest())
            .await?
            .pop()
            .ok_or_else(|| {
                Error::Decode(Box::new(crate::DecodeError {
                    operation: "get_telemetry",
                    path: ".".to_owned(),
                    reason: "an empty list where the latest reading was expected".to_owned(),
                    body: "[]".to_owned(),
                }))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_of_averages_is_bounded_by_its_periods() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        for (resolution, from, to, most) in [
            (Resolution::Daily, "2026-03-01", "2026-03-08", 10),
            (Resolution::Daily, "2026-03-01", "2026-03-01", 3),
            (Resolution::Weekly, "2026-03-01", "2026-03-29", 7),
            (Resolution::Monthly, "2025-01-01", "2026-01-01", 16),
            (Resolution::Daily, "2026-03-08", "2026-03-01", 3),
        ] {
            assert_eq!(
                periods(resolution, &at(from), &at(to)),
                most,
                "{resolution} {from} {to}"
            );
        }
    }
}
