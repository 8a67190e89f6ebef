//! `leapcraft mqtt`: the readings on an MQTT broker, with Home Assistant discovery. The shared
//! poller ([`crate::poll`]) keeps the [`Store`](crate::poll::Store); the bridge publishes it after each poll
//! ([`session`]): a retained discovery config per sensor and a retained JSON state per device
//! ([`discovery`]), only what changed ([`mirror`]), clearing what the broker held of devices
//! gone ([`retained`]), on topics made safe ([`topics`]), to the
//! broker given ([`broker`]). `serve --mqtt URL` runs the same bridge beside the exporter.

pub mod broker;
pub mod discovery;
pub mod mirror;
pub mod retained;
pub mod session;
pub mod topics;

use std::path::PathBuf;

use clap::Args;
use leapcraft_ext::Client;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::error::Failure;
use crate::poll::PollArgs;

pub use broker::Broker;

/// The heading of the bridge's options in `--help`.
const MQTT: &str = "MQTT";

/// The environment variable holding the broker's password.
pub const PASSWORD_ENV: &str = "LEAPCRAFT_MQTT_PASSWORD";

/// `mqtt`.
#[derive(Debug, Args)]
#[command(after_help = "Durations such as 30s, 5m, 1h or 1h 30m.\n\
    The password comes from --password-file or LEAPCRAFT_MQTT_PASSWORD, never from a flag.\n\
    Topics: <discovery-prefix>/sensor/leapcraft_<device>/<metric>/config (retained discovery), \
    <topic-prefix>/<device>/state (retained JSON: recorded_at and the metrics), \
    <topic-prefix>/bridge/availability (online / offline). On each connection the bridge reads \
    the retained configs and states (at QoS 0, until a marker it sends itself on \
    <topic-prefix>/bridge/retained-read) to clear the devices gone from the account.\n\n\
    Examples:\n  \
    leapcraft mqtt --broker mqtt://localhost\n  \
    LEAPCRAFT_MQTT_USERNAME=leapcraft LEAPCRAFT_MQTT_PASSWORD=... leapcraft mqtt --broker mqtts://broker.lan --ca-file ca.pem\n  \
    leapcraft --demo mqtt --broker mqtt://localhost --interval 1m")]
pub struct MqttArgs {
    /// The broker: mqtt://HOST:PORT (port 1883 when left out) or mqtts://HOST:PORT (TLS, 8883).
    #[arg(long, env = "LEAPCRAFT_MQTT_BROKER", value_name = "URL", value_parser = broker::broker,
          help_heading = MQTT)]
    pub broker: Broker,
    /// Who the bridge is on the broker, and its topics.
    #[command(flatten)]
    pub bridge: BridgeArgs,
    /// How often and how widely to poll.
    #[command(flatten)]
    pub poll: PollArgs,
}

/// The bridge's options, but the broker: shared by `mqtt` and `serve --mqtt`.
#[derive(Debug, Clone, Args)]
pub struct BridgeArgs {
    /// The user name on the broker.
    #[arg(long, env = "LEAPCRAFT_MQTT_USERNAME", value_name = "NAME", help_heading = MQTT)]
    pub username: Option<String>,
    /// A file whose first line is the broker's password, readable by its owner only
    /// (or LEAPCRAFT_MQTT_PASSWORD).
    #[arg(long, value_name = "FILE", help_heading = MQTT)]
    pub password_file: Option<PathBuf>,
    /// A PEM file of the CA the broker's certificate must chain to, instead of the
    /// system's roots (mqtts:// only).
    #[arg(long, value_name = "FILE", help_heading = MQTT)]
    pub ca_file: Option<PathBuf>,
    /// The MQTT client id [default: leapcraft- and 8 random hex digits].
    #[arg(long, value_name = "ID", help_heading = MQTT)]
    pub client_id: Option<String>,
    /// Home Assistant's discovery prefix.
    #[arg(long, default_value = "homeassistant", value_name = "PREFIX",
          value_parser = topics::prefix, help_heading = MQTT)]
    pub discovery_prefix: String,
    /// The prefix of the bridge's own topics (state, availability).
    #[arg(long, default_value = "leapcraft", value_name = "PREFIX",
          value_parser = topics::prefix, help_heading = MQTT)]
    pub topic_prefix: String,
}

impl BridgeArgs {
    /// How to reach `broker`: the password read from its file or the environment.
    pub fn connection(&self, broker: Broker) -> Result<broker::Connection, Failure> {
        let password = match &self.password_file {
            Some(path) => Some(crate::secrets::read_key_file(path, "--password-file")?),
            None => std::env::var(PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty())
                .map(SecretString::from),
        };
        let client_id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("leapcraft-{:08x}", rand::random::<u32>()));
        Ok(broker::Connection {
            broker,
            client_id,
            username: self.username.clone(),
            password,
            ca_file: self.ca_file.clone(),
        })
    }

    /// The bridge's topics.
    pub fn topics(&self) -> topics::Topics {
        topics::Topics {
            discovery_prefix: self.discovery_prefix.clone(),
            topic_prefix: self.topic_prefix.clone(),
        }
    }
}

/// Runs the bridge until SIGTERM or Ctrl-C (then `offline`, a clean disconnect, exit 0), or
/// until the broker refuses it for good.
pub async fn run(client: &Client, args: MqttArgs) -> Result<(), Failure> {
    let connection = args.bridge.connection(args.broker)?;
    let cancel = CancellationToken::new();
    let (store, poller) = args.poll.start(client, &cancel);
    let bridge = session::run(store, connection, args.bridge.topics(), cancel.clone());
    let stop = crate::shutdown::cancel_on_request(&cancel);
    let (result, ()) = tokio::join!(
        async {
            let result = bridge.await;
            cancel.cancel();
            result
        },
        stop
    );
    let _ = poller.await;
    tracing::info!("stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Mqtt {
        #[command(flatten)]
        args: MqttArgs,
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let args = Mqtt::try_parse_from(["mqtt", "--broker", "mqtt://localhost"])
            .unwrap()
            .args;
        assert_eq!(args.broker.port, 1883);
        assert_eq!(args.bridge.discovery_prefix, "homeassistant");
        assert_eq!(args.bridge.topic_prefix, "leapcraft");
        let connection = args.bridge.connection(args.broker).unwrap();
        assert!(connection.client_id.starts_with("leapcraft-"));
        assert_eq!(connection.client_id.len(), "leapcraft-".len() + 8);
        assert!(
            Mqtt::try_parse_from(["mqtt", "--broker", "mqtt://h", "--topic-prefix", "a/#"])
                .is_err()
        );
    }
}
