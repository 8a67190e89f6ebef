//! One poller, many outputs: the background [`poller`] reads the account into a [`Store`],
//! and the long-running commands' outputs (`serve`'s Prometheus exposition, `mqtt`'s
//! publisher) read the store, and follow its change feed, without ever calling the API.
//! [`PollArgs`] are the flags every such command shares.

pub mod poller;
pub mod store;

use std::time::Duration;

use clap::Args;

pub use poller::Schedule;
pub use store::Store;

/// How often and how widely to poll: the flags of every command built on the poller.
#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Time between two polls of the latest readings (at least 1s).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Duration,
    /// Time between two listings of the devices.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    pub devices_every: Duration,
    /// Readings the sensor recorded longer ago than this are not passed on.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    pub stale_after: Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = leapcraft_ext::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
}

impl PollArgs {
    /// The poller's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            devices_every: self.devices_every,
            concurrency: self.concurrency,
        }
    }

    /// An empty store for these polls.
    pub fn store(&self) -> Store {
        Store::new(self.interval, self.stale_after)
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (try 30s, 5m, 1h)"))?;
    if d.is_zero() || d > Duration::from_secs(366 * 86_400) {
        return Err(format!("`{s}` is not a duration from 1ms to a year"));
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{s}` is shorter than the minimum interval, 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_interval("500ms").unwrap_err().contains("minimum"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("try 30s"));
        assert!(parse_duration("1000y").is_err());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        #[derive(Parser)]
        struct Poll {
            #[command(flatten)]
            args: PollArgs,
        }
        let args = Poll::try_parse_from(["poll"]).unwrap().args;
        assert_eq!(args.interval, Duration::from_secs(300));
        assert_eq!(args.devices_every, Duration::from_secs(3600));
        assert_eq!(args.stale_after, Duration::from_secs(3600));
        assert_eq!(args.concurrency, leapcraft_ext::DEFAULT_CONCURRENCY);
        assert!(Poll::try_parse_from(["poll", "--interval", "999ms"]).is_err());
        assert!(Poll::try_parse_from(["poll", "--concurrency", "0"]).is_err());
    }
}
