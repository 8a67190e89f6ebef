//! Parsers of option values that clap cannot check alone: seconds, timestamps, counts.

use leapcraft_ext::Timestamp;

/// A timestamp: `2021-05-20`, `2021-05-20T00:00:00Z`, `2021-05-20 00:00:00`...
pub fn timestamp(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>().map_err(|e| e.to_string())
}

/// A number of seconds from 0 to a day.
pub fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0 to 86400")),
    }
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

/// The shortest interval between two polls: a follower should not hammer the API.
pub const MIN_POLL_INTERVAL: f64 = 1.0;

/// An interval between polls, in seconds: from [`MIN_POLL_INTERVAL`] to a day.
pub fn poll_interval(s: &str) -> Result<f64, String> {
    match seconds(s) {
        Ok(v) if v >= MIN_POLL_INTERVAL => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds from {MIN_POLL_INTERVAL} to 86400"
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
