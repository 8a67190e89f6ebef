//! Where the MQTT broker is and how to connect to it: its URL (`mqtt://` or `mqtts://`), the
//! credentials, the roots a TLS certificate must chain to, and the MQTT options the session
//! connects with (the will, keep-alive, packet sizes).
//!
//! TLS is rustls, verifying the broker's certificate against the system's roots or the
//! `--ca-file` given, and its name against the URL's host: a certificate that does not verify
//! is an error, never a downgrade. The password is kept as a secret: no `Debug`, no log.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};

use crate::error::Failure;

/// The largest CA file read.
const MAX_CA_FILE: u64 = 1 << 20;

/// The largest packet taken from the broker: the bridge only listens to Home Assistant's
/// status (`online`, `offline`).
const MAX_INCOMING_PACKET: usize = 16 * 1024;

/// The largest packet sent: a discovery config of a device with the longest id and name.
const MAX_OUTGOING_PACKET: usize = 256 * 1024;

/// How often the bridge pings an idle broker (and how soon the broker sends the will of a
/// bridge that went silent: one and a half times this).
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The payload of the availability topic while the bridge is connected.
pub const ONLINE: &str = "online";
/// The payload of the availability topic otherwise: the will, and the last word on SIGTERM.
pub const OFFLINE: &str = "offline";

/// A broker URL: `mqtt://HOST[:PORT]` (port 1883) or `mqtts://HOST[:PORT]` (TLS, port 8883).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The host: a name (checked against the certificate with TLS) or an address.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `--broker` as a value parser.
pub fn broker(text: &str) -> Result<Broker, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("{e}: a broker is mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"))?;
    let (tls, default_port) = match url.scheme() {
        "mqtt" | "tcp" => (false, 1883),
        "mqtts" | "ssl" => (true, 8883),
        other => {
            return Err(format!(
                "`{other}://` is not a broker scheme: use mqtt:// or mqtts:// (TLS)"
            ));
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials do not go in the URL (it shows in `ps` and logs): use \
                    LEAPCRAFT_MQTT_USERNAME / --username and LEAPCRAFT_MQTT_PASSWORD / \
                    --password-file"
                .to_owned(),
        );
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("a broker URL has no path, query or fragment".to_owned());
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("the broker URL has no host".to_owned()),
    };
    Ok(Broker {
        tls,
        host,
        port: url.port().unwrap_or(default_port),
    })
}

/// How to connect: everything but the topics.
pub struct Connection {
    /// The broker.
    pub broker: Broker,
    /// The MQTT client id.
    pub client_id: String,
    /// The user name, if the broker asks for one.
    pub username: Option<String>,
    /// The password, if the broker asks for one.
    pub password: Option<SecretString>,
    /// The roots the broker's certificate must chain to instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.broker)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Connection {
    /// The MQTT options: a clean session (the bridge publishes everything again on each
    /// connect), the will `offline` retained on `availability`, and TLS when asked.
    pub fn options(&self, availability: &str) -> Result<MqttOptions, Failure> {
        let mut options = MqttOptions::new(&self.client_id, &self.broker.host, self.broker.port);
        options
            .set_clean_session(true)
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET)
            .set_last_will(LastWill::new(availability, OFFLINE, QoS::AtLeastOnce, true));
        match (&self.username, &self.password) {
            (Some(user), password) => {
                let password = password.as_ref().map(|p| p.expose_secret()).unwrap_or("");
                options.set_credentials(user, password);
            }
            (None, Some(_)) => {
                return Err(Failure::Usage(
                    "a broker password without a user name: set LEAPCRAFT_MQTT_USERNAME or \
                     --username"
                        .to_owned(),
                ));
            }
            (None, None) => {}
        }
        if self.broker.tls {
            let config = tls_config(self.ca_file.as_deref())?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        } else if self.ca_file.is_some() {
            return Err(Failure::Usage(
                "--ca-file is for a TLS broker: use an mqtts:// URL".to_owned(),
            ));
        }
        Ok(options)
    }
}

/// The TLS client configuration: the broker's certificate must chain to the roots of
/// `ca_file` when given, to the system's otherwise.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, Failure> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let fail = |why: String| Failure::Usage(format!("--ca-file {}: {why}", path.display()));
            let mut pem = Vec::new();
            File::open(path)
                .and_then(|f| f.take(MAX_CA_FILE).read_to_end(&mut pem))
                .map_err(|e| fail(format!("cannot read it: {e}")))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| fail(format!("not a PEM certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("not a CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(fail("it holds no certificate".to_owned()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(Failure::Other(
                    "no trusted root certificate found on this system for the mqtts:// \
                     broker: pass the broker's CA with --ca-file"
                        .to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Other(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        for (text, tls, host, port) in [
            ("mqtt://localhost", false, "localhost", 1883),
            ("mqtt://10.0.0.2:1884", false, "10.0.0.2", 1884),
            (
                "mqtts://broker.example.org",
                true,
                "broker.example.org",
                8883,
            ),
            ("mqtts://[::1]:8884/", true, "::1", 8884),
        ] {
            let b = broker(text).unwrap();
            assert_eq!(
                (b.tls, b.host.as_str(), b.port),
                (tls, host, port),
                "{text}"
            );
        }
        assert_eq!(
            broker("mqtts://[::1]:8884").unwrap().to_string(),
            "mqtts://[::1]:8884"
        );
        for bad in [
            "localhost:1883",
            "http://localhost",
            "mqtt://user:secret@localhost",
            "mqtt://localhost/topic",
            "mqtt://",
        ] {
            let e = broker(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let connection = Connection {
            broker: broker("mqtt://localhost").unwrap(),
            client_id: "id".into(),
            username: Some("user".into()),
            password: Some(SecretString::from("hunter2")),
            ca_file: None,
        };
        assert!(!format!("{connection:?}").contains("hunter2"));
        assert!(connection.options("lc/bridge/availability").is_ok());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(tls_config(Some(&path)).is_err());
        assert!(tls_config(Some(&dir.path().join("missing.pem"))).is_err());
    }
}
