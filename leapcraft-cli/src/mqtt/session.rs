//! The bridge's life on the broker: connect, say `online`, publish what the store holds
//! after each poll, publish everything again on each reconnect and whenever Home Assistant
//! announces itself, and on stop say `offline` and disconnect.
//!
//! On each connection the bridge also reads what the broker holds of it ([`retained`]), so
//! that the devices removed from the account while it was down are cleared.
//!
//! Two tasks share the work, and neither waits for the other: the *driver* polls rumqttc's
//! event loop (which does the network I/O) and reports the link's state on a `watch`
//! channel; the *publisher* (this module's [`run`]) plans messages from the store
//! ([`Mirror`]) and hands them to the client. A watch never blocks its sender, so the driver
//! keeps the event loop moving whatever the publisher does.
//!
//! Whether a connection error is final, and how long to wait before the next attempt, are
//! pure functions ([`classify`], [`backoff`]), tested as tables.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, Outgoing, QoS,
    TlsError,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::broker::{Broker, Connection, OFFLINE, ONLINE};
use super::mirror::{Message, Mirror};
use super::retained::{self, Retained};
use super::topics::Topics;
use crate::error::Failure;
use crate::poll::Store;

/// Requests the client queues for the event loop: enough to keep it busy, little memory.
const QUEUE: usize = 256;

/// How long the goodbye (`offline`, then a clean disconnect) may take on stop.
const GOODBYE_DEADLINE: Duration = Duration::from_secs(5);

/// The first wait before connecting again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The link as the driver sees it.
#[derive(Debug, Clone, Default)]
struct Link {
    /// Connections made so far (each `CONNACK`).
    connects: u64,
    /// Whether the connection is up.
    up: bool,
    /// Times Home Assistant said `online` on its status topic.
    births: u64,
    /// Times the broker's retained messages were read to the end, one per connection.
    reads: u64,
    /// The bridge's retained messages of the last read (at most [`retained::MAX_TOPICS`]).
    retained: Arc<Vec<Retained>>,
    /// A connection error that no retry can mend.
    fatal: Option<Fatal>,
}

/// A connection error that no retry can mend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// The broker refused the credentials (exit 3).
    Refused(String),
    /// Anything else: a certificate that does not verify, a refused client id...
    Other(String),
}

impl From<Fatal> for Failure {
    fn from(fatal: Fatal) -> Self {
        match fatal {
            Fatal::Refused(m) => Failure::BrokerRefused(m),
            Fatal::Other(m) => Failure::Other(m),
        }
    }
}

/// Whether a connection error is final, and what to tell the user. Errors of the network or
/// of a broker that is not up are not: they are retried.
pub fn classify(error: &ConnectionError, broker: &Broker) -> Option<Fatal> {
    match error {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => Some(Fatal::Refused(format!(
            "the broker {broker} refused the credentials ({}): check \
             LEAPCRAFT_MQTT_USERNAME / --username and LEAPCRAFT_MQTT_PASSWORD / --password-file",
            if *code == ConnectReturnCode::NotAuthorized {
                "not authorized"
            } else {
                "bad user name or password"
            }
        ))),
        ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable) => None,
        ConnectionError::ConnectionRefused(code) => Some(Fatal::Other(format!(
            "the broker {broker} refused the connection: {code:?}"
        ))),
        ConnectionError::Tls(e) => tls_failure(e).map(|why| {
            Fatal::Other(format!(
                "the broker {broker}'s TLS certificate does not verify: {why} (pass its CA \
                 with --ca-file if it is private)"
            ))
        }),
        _ => None,
    }
}

/// What is wrong with the broker's certificate or name, if that is what failed: a TLS
/// error of the handshake itself (rustls's, carried in an I/O error), not of the network.
fn tls_failure(error: &TlsError) -> Option<String> {
    match error {
        TlsError::TLS(e) => Some(e.to_string()),
        TlsError::DNSName(e) => Some(e.to_string()),
        TlsError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(ToString::to_string),
        _ => None,
    }
}

/// The wait before connection attempt `failures + 1`, after `failures` failed in a row.
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// Publishes the store to the broker until `cancel` is cancelled (then says `offline` and
/// disconnects, and returns `Ok`), or until the connection fails for good.
pub async fn run(
    store: Store,
    connection: Connection,
    topics: Topics,
    cancel: CancellationToken,
) -> Result<(), Failure> {
    let options = connection.options(&topics.availability())?;
    let broker = connection.broker.clone();
    let (client, eventloop) = AsyncClient::new(options, QUEUE);
    let (link_tx, mut link) = watch::channel(Link::default());
    let driver = tokio::spawn(drive(eventloop, link_tx, broker.clone(), topics.clone()));

    let mut mirror = Mirror::new(topics.clone(), store.stale_after());
    let mut polls = store.subscribe();
    let (mut connects, mut births, mut reads) = (0, 0, 0);
    // Whether the store changed since the last plan.
    let mut due = false;
    tracing::info!(broker = %broker, "connecting to the broker");
    let result = loop {
        let now = link.borrow_and_update().clone();
        if let Some(fatal) = now.fatal {
            break Err(Failure::from(fatal));
        }
        let mut everything = false;
        if now.connects != connects {
            connects = now.connects;
            everything = true;
            // The client's queue may be full while the link is down again: a stop must not
            // wait for it.
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                started = start_session(&client, &topics, connects) => {
                    if started.is_err() { break Err(ended(&link)) }
                }
            }
        }
        if now.reads != reads {
            reads = now.reads;
            let kept = now
                .retained
                .iter()
                .take_while(|r| mirror.found((*r).clone()))
                .count();
            if kept < now.retained.len() {
                tracing::warn!(
                    "the broker holds more than {} retained messages of the bridge: those \
                     beyond are not cleared when their device leaves the account",
                    retained::MAX_TOPICS
                );
            }
            tracing::info!(
                messages = now.retained.len(),
                "read what the broker holds of the bridge"
            );
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                ended_read = end_read(&client, &topics) => {
                    if ended_read.is_err() { break Err(ended(&link)) }
                }
            }
            due = true;
        }
        if now.births != births {
            births = now.births;
            everything = true;
        }
        if everything {
            mirror.forget();
            due = true;
        }
        // While the link is down nothing is sent: everything is, once it is up again.
        if now.up && due {
            due = false;
            let (messages, counts) = {
                let state = store.read();
                mirror.plan(&state, SystemTime::now(), store.stale_after())
            };
            if counts.configs + counts.removed > 0 {
                tracing::info!(
                    sensors = counts.configs,
                    states = counts.states,
                    removed_devices = counts.removed,
                    "published discovery and state"
                );
            } else if counts.states > 0 {
                tracing::debug!(states = counts.states, "published state");
            }
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                sent = send(&client, messages) => if sent.is_err() { break Err(ended(&link)) },
            }
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            changed = link.changed() => if changed.is_err() { break Err(ended(&link)) },
            _ = polls.changed() => due = true,
        }
    };

    let driving = driver.abort_handle();
    if result.is_ok() && link.borrow().up {
        let goodbye = async {
            let _ = client
                .publish(topics.availability(), QoS::AtLeastOnce, true, OFFLINE)
                .await;
            let _ = client.disconnect().await;
            let _ = driver.await;
        };
        if tokio::time::timeout(GOODBYE_DEADLINE, goodbye)
            .await
            .is_err()
        {
            tracing::warn!(
                "the broker did not take the goodbye within {GOODBYE_DEADLINE:?}: it sends \
                 the will (offline) instead"
            );
        }
    }
    driving.abort();
    tracing::info!(broker = %broker, "disconnected from the broker");
    result
}

/// Why the connection ended while the bridge still ran: the final error the driver saw.
fn ended(link: &watch::Receiver<Link>) -> Failure {
    link.borrow().fatal.clone().map_or_else(
        || Failure::Other("the connection to the MQTT broker ended".to_owned()),
        Failure::from,
    )
}

/// What the bridge does on each connection: listen to Home Assistant's status, start reading
/// what the broker holds of it (the [`retained::filters`], ended by the marker of connection
/// `connects`), and say `online`. The read is at QoS 0: a broker queues only so many QoS 1
/// messages for a client (Mosquitto, 1,000) and drops the rest.
async fn start_session(
    client: &AsyncClient,
    topics: &Topics,
    connects: u64,
) -> Result<(), rumqttc::ClientError> {
    let read = retained::filters(topics)
        .into_iter()
        .chain([retained::marker_topic(topics)])
        .map(|path| rumqttc::SubscribeFilter::new(path, QoS::AtMostOnce));
    client
        .subscribe_many(
            [rumqttc::SubscribeFilter::new(
                topics.home_assistant_status(),
                QoS::AtLeastOnce,
            )]
            .into_iter()
            .chain(read),
        )
        .await?;
    client
        .publish(
            retained::marker_topic(topics),
            QoS::AtMostOnce,
            false,
            retained::marker(connects),
        )
        .await?;
    client
        .publish(topics.availability(), QoS::AtLeastOnce, true, ONLINE)
        .await
}

/// Ends the read of what the broker holds: the bridge does not get its own messages back.
async fn end_read(client: &AsyncClient, topics: &Topics) -> Result<(), rumqttc::ClientError> {
    for filter in retained::filters(topics)
        .into_iter()
        .chain([retained::marker_topic(topics)])
    {
        client.unsubscribe(filter).await?;
    }
    Ok(())
}

/// Hands `messages` to the client, in order, all retained.
async fn send(client: &AsyncClient, messages: Vec<Message>) -> Result<(), rumqttc::ClientError> {
    for message in messages {
        client
            .publish(message.topic, QoS::AtLeastOnce, true, message.payload)
            .await?;
    }
    Ok(())
}

/// Polls the event loop until the bridge disconnects or the connection fails for good,
/// telling `link` what happens and waiting [`backoff`] between failed attempts.
async fn drive(
    mut eventloop: EventLoop,
    link: watch::Sender<Link>,
    broker: Broker,
    topics: Topics,
) {
    let home_assistant_status = topics.home_assistant_status();
    let marker_topic = retained::marker_topic(&topics);
    let mut failures = 0u32;
    let mut connects = 0;
    // The bridge's retained messages read on this connection so far.
    let mut read = Vec::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                tracing::info!(broker = %broker, "connected to the broker");
                failures = 0;
                connects += 1;
                read.clear();
                link.send_modify(|l| {
                    l.connects = connects;
                    l.up = true;
                });
            }
            Ok(Event::Incoming(Incoming::Publish(publish)))
                if publish.topic == home_assistant_status && publish.payload == ONLINE =>
            {
                tracing::info!("Home Assistant is online: publishing discovery and state again");
                link.send_modify(|l| l.births += 1);
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) if publish.retain => {
                if read.len() < retained::MAX_TOPICS
                    && let Some(r) = retained::of_bridge(&topics, &publish.topic, &publish.payload)
                {
                    read.push(r);
                }
            }
            Ok(Event::Incoming(Incoming::Publish(publish)))
                if publish.topic == marker_topic
                    && publish.payload == retained::marker(connects).as_bytes() =>
            {
                let read = Arc::new(std::mem::take(&mut read));
                link.send_modify(|l| {
                    l.reads += 1;
                    l.retained = read;
                });
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                let was_up = link.borrow().up;
                link.send_modify(|l| l.up = false);
                if let Some(fatal) = classify(&e, &broker) {
                    tracing::error!("{}", Failure::from(fatal.clone()).message());
                    link.send_modify(|l| l.fatal = Some(fatal));
                    return;
                }
                failures += 1;
                let wait = backoff(failures);
                let reason = crate::sanitize::for_terminal(&e.to_string()).into_owned();
                if was_up {
                    tracing::warn!(broker = %broker, "lost the connection to the broker: {reason}; reconnecting in {wait:?}");
                } else {
                    tracing::warn!(broker = %broker, "cannot connect to the broker: {reason}; retrying in {wait:?}");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn only_what_no_retry_mends_is_final() {
        let broker = super::super::broker::broker("mqtts://broker.example").unwrap();
        let io = |kind| ConnectionError::Io(std::io::Error::from(kind));
        let bad_cert = ConnectionError::Tls(TlsError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        let cases = [
            (io(std::io::ErrorKind::ConnectionRefused), "retry"),
            (io(std::io::ErrorKind::ConnectionReset), "retry"),
            (ConnectionError::NetworkTimeout, "retry"),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable),
                "retry",
            ),
            (
                ConnectionError::Tls(TlsError::Io(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                ))),
                "retry",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                "refused",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
                "refused",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId),
                "other",
            ),
            (bad_cert, "other"),
        ];
        for (error, expected) in cases {
            let got = match classify(&error, &broker) {
                None => "retry",
                Some(Fatal::Refused(m)) => {
                    assert!(m.contains("mqtts://broker.example:8883"), "{m}");
                    "refused"
                }
                Some(Fatal::Other(_)) => "other",
            };
            assert_eq!(got, expected, "{error:?}");
        }
    }
}
