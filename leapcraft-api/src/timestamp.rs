//! The lenient timestamp type that every `date-time` of the spec maps to.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// An instant in UTC, decoded from any timestamp shape the Leapcraft API sends.
///
/// The API's responses mix `2026-03-29T15:24:05Z`, `2022-01-29T05:59:57.000Z` and
/// `2020-12-16 13:51:58` (a space, and no zone). All of these parse; a timestamp without a
/// zone is taken as UTC, one with an offset is converted to UTC, and a bare date means its
/// midnight in UTC.
///
/// It encodes (and displays) as RFC 3339 in UTC with at least millisecond precision and a
/// `Z`, such as `2021-05-26T00:00:00.000Z`: the shape the API's `from` and `to` parameters
/// expect, and lossless, since finer fractions are kept.
///
/// ```
/// use leapcraft_api::Timestamp;
///
/// let t: Timestamp = "2020-12-16 13:51:58".parse()?;
/// assert_eq!(t.to_string(), "2020-12-16T13:51:58.000Z");
/// let same: Timestamp = "2020-12-16T14:51:58+01:00".parse()?;
/// assert_eq!(t, same);
/// let utc: chrono::DateTime<chrono::Utc> = t.into();
/// assert_eq!(utc.timestamp(), 1608126718);
/// # Ok::<(), leapcraft_api::TimestampError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// A string that is not a timestamp in any shape [`Timestamp`] accepts (years outside
/// 0000–9999 included: RFC 3339 cannot write them back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampError {
    input: String,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        let shown: String = self.input.chars().take(MAX).collect();
        let more = if self.input.chars().count() > MAX {
            "…"
        } else {
            ""
        };
        write!(f, "not a timestamp: {shown:?}{more}")
    }
}

impl std::error::Error for TimestampError {}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// The instant as a chrono `DateTime<Utc>`.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
            .filter(|t| (0..=9999).contains(&t.year()))
            .map(Self)
            .ok_or_else(|| TimestampError {
                input: s.to_owned(),
            })
    }
}

/// Every shape the API sends, zoneless meaning UTC.
fn parse(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    let midnight = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?;
    Some(midnight.and_utc())
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.timestamp_subsec_nanos() % 1_000_000_000;
        let precision = if nanos.is_multiple_of(1_000_000) {
            SecondsFormat::Millis
        } else if nanos.is_multiple_of(1_000) {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Nanos
        };
        f.write_str(&self.0.to_rfc3339_opts(precision, true))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp such as 2026-03-29T15:24:05Z or 2020-12-16 13:51:58")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> String {
        "Timestamp".to_owned()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            format: Some("date-time".to_owned()),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_shape_parses_to_utc() {
        let cases = [
            ("2026-03-29T15:24:05Z", "2026-03-29T15:24:05.000Z"),
            ("2022-01-29T05:59:57.000Z", "2022-01-29T05:59:57.000Z"),
            ("2020-12-16 13:51:58", "2020-12-16T13:51:58.000Z"),
            ("2021-05-26T00:00:00.000", "2021-05-26T00:00:00.000Z"),
            ("2021-05-27T11:42:58.721", "2021-05-27T11:42:58.721Z"),
            ("2021-05-27T13:42:58.721+02:00", "2021-05-27T11:42:58.721Z"),
            ("2021-05-27", "2021-05-27T00:00:00.000Z"),
            ("2021-05-27T11:42:58.123456Z", "2021-05-27T11:42:58.123456Z"),
        ];
        for (input, shown) in cases {
            let t: Timestamp = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.to_string(), shown, "{input}");
            assert_eq!(shown.parse::<Timestamp>().unwrap(), t, "{input} round trip");
        }
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for input in [
            "",
            "yesterday",
            "2021-13-01T00:00:00Z",
            "2021-05-27T25:00:00",
            "2021-05-27 ",
        ] {
            let err = input.parse::<Timestamp>().unwrap_err();
            assert!(err.to_string().starts_with("not a timestamp"), "{input}");
        }
    }

    #[test]
    fn json_accepts_strings_only() {
        let t: Timestamp = serde_json::from_str("\"2020-12-16 13:51:58\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2020-12-16T13:51:58.000Z\""
        );
        assert!(serde_json::from_str::<Timestamp>("1608126718").is_err());
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    }
}
