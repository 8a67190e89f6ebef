//! `leapcraft serve`: a Prometheus exporter. A background poller ([`poller`]) keeps a
//! [`store::Store`] of the account's devices, readings and notifications; the HTTP server
//! ([`http`]) renders `/metrics` ([`exposition`]) and `/healthz` from it alone, so scrapes
//! never spend the API's quota. SIGTERM or Ctrl-C stop both.

mod exposition;
mod http;
mod poller;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use leapcraft_ext::Client;
use tokio_util::sync::CancellationToken;

use crate::error::Failure;

/// Where `leapcraft serve` listens unless told otherwise. The Prometheus wiki's "Default port
/// allocations" has no free port left in 9100-9999, where exporters used to go; this one is
/// above it (see the README).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10273";

/// `serve`.
#[derive(Debug, Args)]
#[command(after_help = "Durations such as 30s, 5m, 1h or 1h 30m.\n\
                  Scrape http://ADDR/metrics; /healthz answers 200 while polls succeed, 503 otherwise.")]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Time between two polls of the latest readings (at least 1s).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Duration,
    /// Time between two listings of the devices.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    pub devices_every: Duration,
    /// Readings the sensor recorded longer ago than this are not served.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    pub stale_after: Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = leapcraft_ext::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
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

/// Runs the exporter until SIGTERM or Ctrl-C.
pub async fn run(client: &Client, args: ServeArgs) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    let store = Arc::new(store::Store::new(args.interval));
    let cancel = CancellationToken::new();

    let schedule = poller::Schedule {
        interval: args.interval,
        devices_every: args.devices_every,
        concurrency: args.concurrency,
    };
    let poller = tokio::spawn(poller::run(
        client.clone(),
        store.clone(),
        schedule,
        cancel.clone(),
    ));
    let app = http::router(http::Shared {
        store,
        client: client.clone(),
        stale_after: args.stale_after,
    });
    eprintln!("leapcraft serve: listening on http://{addr}/metrics");
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(cancel.clone().cancelled_owned())
        .into_future();
    let stop = async {
        shutdown_signal().await;
        cancel.cancel();
    };
    let (served, ()) = tokio::join!(server, stop);
    let _ = poller.await;
    served.map_err(|e| Failure::Other(format!("the HTTP server failed: {e}")))?;
    eprintln!("leapcraft serve: stopped");
    Ok(())
}

/// Resolves on SIGTERM (what systemd and container runtimes send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
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
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let args = Serve::try_parse_from(["serve"]).unwrap().args;
        assert_eq!(args.listen, DEFAULT_LISTEN.parse().unwrap());
        assert!(args.listen.ip().is_loopback());
        assert_eq!(args.interval, Duration::from_secs(300));
        assert_eq!(args.devices_every, Duration::from_secs(3600));
        assert_eq!(args.stale_after, Duration::from_secs(3600));
        assert_eq!(args.concurrency, leapcraft_ext::DEFAULT_CONCURRENCY);
        assert!(Serve::try_parse_from(["serve", "--interval", "999ms"]).is_err());
        assert!(Serve::try_parse_from(["serve", "--concurrency", "0"]).is_err());
    }
}
