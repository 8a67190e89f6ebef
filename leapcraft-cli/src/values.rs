//! Parsers of option values that clap cannot check alone, one per concept: a time
//! ([`timestamp`]), a span of time ([`duration`]), a time between polls ([`interval`]), a
//! rate ([`positive_rate`]), a number of requests in flight ([`concurrency`]) and a secret
//! ([`secret`]).

use std::time::Duration;

use chrono::{Days, Utc};
use leapcraft_ext::Timestamp;
use secrecy::SecretString;

/// The forms [`timestamp`] accepts, for its error and the options' help.
pub const TIME_FORMS: &str = "RFC 3339 (2026-03-01T08:00:00Z), a date (2026-03-01, midnight UTC), \
     a date and time in UTC (2026-03-01 08:00:00), a time ago (24h, 7d, 90m), \
     yesterday or today (midnight UTC), or now";

/// A point in time: RFC 3339, a date or a date and time (UTC), a [`duration`] meaning that
/// long ago, `yesterday` or `today` (midnight UTC), or `now`.
pub fn timestamp(s: &str) -> Result<Timestamp, String> {
    let now = Utc::now();
    let midnight = || now.date_naive().and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let relative = match s.trim().to_ascii_lowercase().as_str() {
        "now" => Some(now),
        "today" => midnight(),
        "yesterday" => midnight().and_then(|t| t.checked_sub_days(Days::new(1))),
        _ => match s.parse::<Timestamp>() {
            Ok(t) => return Ok(t),
            Err(_) => duration(s)
                .ok()
                .and_then(|ago| chrono::Duration::from_std(ago).ok())
                .and_then(|ago| now.checked_sub_signed(ago)),
        },
    };
    relative
        .map(Timestamp::from)
        .ok_or_else(|| format!("`{s}` is not a time: use {TIME_FORMS}"))
}

/// The longest [`duration`]: a year.
const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// A span of time from 1 ms to a year: a bare number is seconds (`30`, `0.5`); otherwise a
/// number and a unit, or several (`500ms`, `30s`, `5m`, `1h 30m`, `7d`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed = match s.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
        }
        Ok(_) => Err("not a duration".to_owned()),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(d) if d >= Duration::from_millis(1) && d <= MAX_DURATION => Ok(d),
        Ok(_) => Err(format!("`{s}` is not a duration from 1ms to a year")),
        Err(e) => Err(format!(
            "`{s}`: {e} (a number of seconds, or such as 500ms, 30s, 5m, 1h 30m)"
        )),
    }
}

/// The shortest interval between two polls: a follower should not hammer the API.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A time between two polls: a [`duration`] of at least [`MIN_POLL_INTERVAL`].
pub fn interval(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < MIN_POLL_INTERVAL {
        return Err(format!(
            "`{s}` is shorter than the minimum interval, {}",
            humantime::format_duration(MIN_POLL_INTERVAL)
        ));
    }
    Ok(d)
}

/// A rate of requests a second: a positive, finite number.
pub fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a positive number of requests a second"
        )),
    }
}

/// Requests in flight: 1 to 1024.
pub fn concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a number from 1 to 1024")),
    }
}

/// A secret (an API key): taken as is, and never shown (its `Debug` is redacted).
pub fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them_and_a_bare_number_is_seconds() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        for wrong in ["0", "0s", "-1", "NaN", "inf", "1000y", "soon", ""] {
            assert!(duration(wrong).is_err(), "{wrong}");
        }
        assert!(duration("soon").unwrap_err().contains("30s"));
    }

    #[test]
    fn intervals_have_a_minimum() {
        assert_eq!(interval("30"), Ok(Duration::from_secs(30)));
        assert_eq!(interval("1s"), Ok(Duration::from_secs(1)));
        assert!(interval("500ms").unwrap_err().contains("minimum"));
        assert!(interval("0.05").unwrap_err().contains("minimum"));
    }

    #[test]
    fn times_absolute_and_relative() {
        assert_eq!(
            timestamp("2026-03-01").unwrap().to_string(),
            "2026-03-01T00:00:00.000Z"
        );
        assert_eq!(
            timestamp("2026-03-01T08:00:00+01:00").unwrap().to_string(),
            "2026-03-01T07:00:00.000Z"
        );
        let now = Utc::now();
        let ago = |s: &str| now - timestamp(s).unwrap().as_datetime();
        assert!(
            (ago("24h") - chrono::Duration::hours(24))
                .num_seconds()
                .abs()
                <= 60
        );
        assert!((ago("7d") - chrono::Duration::days(7)).num_seconds().abs() <= 60);
        assert!(ago("now").num_seconds().abs() <= 60);
        let yesterday = timestamp("yesterday").unwrap().as_datetime();
        let today = timestamp("Today").unwrap().as_datetime();
        assert_eq!(today - yesterday, chrono::Duration::days(1));
        assert_eq!(today.time(), chrono::NaiveTime::MIN);
        assert!(today <= now && now - today < chrono::Duration::days(1));
        let wrong = timestamp("soon").unwrap_err();
        for form in ["RFC 3339", "2026-03-01", "24h", "yesterday", "now"] {
            assert!(wrong.contains(form), "{form} in {wrong}");
        }
    }
}
