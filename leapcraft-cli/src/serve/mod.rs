//! `leapcraft serve`: a Prometheus exporter. The shared poller ([`crate::poll`]) keeps a
//! [`Store`](crate::poll::Store) of the account's devices, readings and notifications; the HTTP server ([`http`])
//! renders `/metrics` ([`exposition`]) and `/healthz` from it alone, so scrapes never spend
//! the API's quota. With `--mqtt URL`, the MQTT bridge ([`crate::mqtt`]) publishes the same
//! store. SIGTERM or Ctrl-C stop them all.

mod exposition;
mod http;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use leapcraft_ext::Client;
use tokio_util::sync::CancellationToken;

use crate::error::Failure;
use crate::mqtt::{BridgeArgs, Broker};
use crate::poll::PollArgs;

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
    /// Also publish the readings to this MQTT broker, as `leapcraft mqtt` does:
    /// mqtt://HOST:PORT or mqtts://HOST:PORT (TLS).
    #[arg(long, value_name = "URL", value_parser = crate::mqtt::broker::broker,
          help_heading = "MQTT")]
    pub mqtt: Option<Broker>,
    /// The MQTT bridge's options, with --mqtt.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

/// Runs the exporter (and the MQTT bridge, with `--mqtt`) until SIGTERM or Ctrl-C, or until
/// the broker refuses the bridge for good.
pub async fn run(client: &Client, args: ServeArgs) -> Result<(), Failure> {
    let bridge = match args.mqtt {
        Some(broker) => Some(args.bridge.connection(broker)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let (store, poller) = args.poll.start(client, &cancel);
    let app = http::router(http::Shared {
        store: store.clone(),
        client: client.clone(),
        last_size: Arc::default(),
    });
    tracing::info!("listening on http://{addr}/metrics");
    let server = http::serve(listener, app, cancel.clone());
    let bridge = async {
        let Some(connection) = bridge else {
            return Ok(());
        };
        let result =
            crate::mqtt::session::run(store, connection, args.bridge.topics(), cancel.clone())
                .await;
        cancel.cancel();
        result
    };
    let stop = crate::shutdown::cancel_on_request(&cancel);
    let ((), result, ()) = tokio::join!(server, bridge, stop);
    let _ = poller.await;
    tracing::info!("stopped");
    result
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
