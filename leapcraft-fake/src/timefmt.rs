//! Timestamps: parsing every shape the Leapcraft docs use, and formatting the shapes the API
//! sends.
//!
//! Accepted on input (`from`/`to` of telemetry): `2021-05-26T00:00:00.000Z`, the zoneless
//! `2021-05-26T00:00:00.000` (UTC), `2021-05-26T00:00:00+02:00`, the space-separated
//! `2020-12-16 13:51:58` (UTC) and a bare date `2021-05-26` (midnight UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// Parses a timestamp in any shape the docs use. Zoneless shapes mean UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| n.and_utc());
    }
    None
}

/// `2026-03-29T15:24:05Z`: the shape of telemetry and notification timestamps.
pub(crate) fn seconds_z(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2022-01-29T05:59:57.000Z`: the shape of topology timestamps.
pub(crate) fn millis_z(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `2020-12-16 13:51:58`: the quirky zoneless, space-separated shape of some topology details.
pub(crate) fn space_separated(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Seconds since the epoch to a UTC time (clamped to the representable range).
pub(crate) fn from_unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_shape() {
        let z = parse_timestamp("2021-05-26T00:00:00.000Z").unwrap();
        assert_eq!(parse_timestamp("2021-05-26T00:00:00.000"), Some(z));
        assert_eq!(parse_timestamp("2021-05-26 00:00:00"), Some(z));
        assert_eq!(parse_timestamp("2021-05-26"), Some(z));
        assert_eq!(parse_timestamp("2021-05-26T02:00:00+02:00"), Some(z));
        assert_eq!(
            space_separated(parse_timestamp("2020-12-16 13:51:58").unwrap()),
            "2020-12-16 13:51:58"
        );
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("").is_none());
    }
}
