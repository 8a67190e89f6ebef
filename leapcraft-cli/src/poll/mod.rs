//! One poller, many outputs: the background [`poller`] reads the account into a [`Store`],
//! and the long-running commands' outputs (`serve`'s Prometheus exposition, `mqtt`'s
//! publisher) read the store, and follow its change feed, without ever calling the API.
//! [`PollArgs`] are the flags every such command shares.

pub mod poller;
pub mod store;

use std::time::Duration;

use clap::Args;

use crate::values;

pub use poller::Schedule;
pub use store::Store;

/// How often and how widely to poll: the flags of every command built on the poller.
#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Time between two polls of the latest readings (at least 1s).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = values::interval)]
    pub interval: Duration,
    /// Time between two listings of the devices.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = values::duration)]
    pub devices_every: Duration,
    /// Readings the sensor recorded longer ago than this are not passed on.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = values::duration)]
    pub stale_after: Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = leapcraft_ext::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = values::concurrency)]
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

    /// Starts the poller of a long-running command: the store its outputs read, and the task
    /// that fills it until `cancel`.
    pub fn start(
        &self,
        client: &leapcraft_ext::Client,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> (Store, tokio::task::JoinHandle<()>) {
        let store = self.store();
        let task = tokio::spawn(poller::run(
            client.clone(),
            store.clone(),
            self.schedule(),
            cancel.clone(),
        ));
        (store, task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

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
