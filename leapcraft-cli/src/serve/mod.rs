//! `leapcraft serve`: a Prometheus exporter. The shared poller ([`crate::poll`]) keeps a
//! [`Store`] of the account's devices, readings and notifications; the HTTP server ([`http`])
//! renders `/metrics` ([`exposition`]) and `/healthz` from it alone, so scrapes never spend
//! the API's quota. SIGTERM or Ctrl-C stop both.

mod exposition;
mod http;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use leapcraft_ext::Client;
use tokio_util::sync::CancellationToken;

use crate::error::Failure;
use crate::poll::{self, PollArgs, Store};

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
    /// How often and how widely to poll.
    #[command(flatten)]
    pub poll: PollArgs,
}

/// Runs the exporter until SIGTERM or Ctrl-C.
pub async fn run(client: &Client, args: ServeArgs) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    let store: Store = args.poll.store();
    let cancel = CancellationToken::new();

    let poller = tokio::spawn(poll::poller::run(
        client.clone(),
        store.clone(),
        args.poll.schedule(),
        cancel.clone(),
    ));
    let app = http::router(http::Shared {
        store,
        client: client.clone(),
        last_size: Arc::default(),
    });
    tracing::info!("listening on http://{addr}/metrics");
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
    tracing::info!("stopped");
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
    fn defaults_are_the_documented_ones() {
        #[derive(Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let args = Serve::try_parse_from(["serve"]).unwrap().args;
        assert_eq!(args.listen, DEFAULT_LISTEN.parse().unwrap());
        assert!(args.listen.ip().is_loopback());
        assert_eq!(args.poll.interval, std::time::Duration::from_secs(300));
        assert!(Serve::try_parse_from(["serve", "--interval", "999ms"]).is_err());
    }
}
