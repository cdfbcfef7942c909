//! MQTT 3.1.1 and 5 (`rumqttc`'s packet codecs over a connection of our
//! own that batches its writes, see `client.rs`): QoS 0/1/2, persistent
//! sessions for at-least-once sources, TLS, user name and password.
//!
//! * [`MqttSink`] publishes and counts a message as sent on PUBACK (QoS 1) or
//!   PUBCOMP (QoS 2). It connects with a clean session and, after a
//!   reconnect, publishes again whatever was not confirmed.
//! * [`open_source`] subscribes; in at-least-once mode it uses a persistent
//!   session and manual acknowledgements, so the broker keeps (and resends)
//!   what we have not acknowledged, and we acknowledge only once the sink
//!   confirmed. In `latest` mode it uses a clean session: whatever was
//!   published while we were away is not replayed.

mod broker;
mod client;
mod sink;
mod source;

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use sink::{MqttSink, MqttSinkConfig};
pub use source::{MqttSourceConfig, open as open_source};

use super::TransportError;
use crate::secret::Secret;
use crate::transport::EnvVars;

/// The MQTT protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum MqttVersion {
    /// MQTT 3.1.1: no properties, so CloudEvents travel in structured mode.
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5 (default).
    #[default]
    #[serde(rename = "5")]
    V5,
}

/// TLS towards the broker.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttTlsConfig {
    /// CA certificates (PEM) that sign the broker's certificate. Default: the
    /// system bundle `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<String>,
    /// Client certificate chain (PEM), for brokers that authenticate clients
    /// by certificate.
    pub client_cert_file: Option<String>,
    /// Private key (PEM) of `client_cert_file`.
    pub client_key_file: Option<String>,
}

/// An MQTT broker (`type = "mqtt"` in `[brokers.connections.<name>]`).
///
/// Unset fields are read from environment variables named after
/// `env_prefix`: `MQTT_HOST`, `MQTT_PORT`, `MQTT_USERNAME`, `MQTT_PASSWORD`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttBrokerConfig {
    /// Host name or address. Env: `<prefix>_HOST`.
    pub host: Option<String>,
    /// Port (default 1883, or 8883 with TLS). Env: `<prefix>_PORT`.
    pub port: Option<u16>,
    /// Protocol version: `"5"` (default) or `"3.1.1"`.
    #[serde(default)]
    pub version: MqttVersion,
    /// User name. Env: `<prefix>_USERNAME`.
    pub username: Option<String>,
    /// Password; never logged. Env: `<prefix>_PASSWORD`.
    pub password: Option<Secret>,
    /// TLS settings; absent means plain TCP.
    pub tls: Option<MqttTlsConfig>,
    /// Keep-alive interval in seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// Prefix of the environment variables that fill unset fields.
    #[serde(default = "default_mqtt_env_prefix")]
    pub env_prefix: String,
}

impl MqttBrokerConfig {
    /// Another organisation's broker at the first of `servers`, spoken to in
    /// MQTT 3.1.1, which every broker offers (see
    /// [`BrokerConfig::reaching`](super::BrokerConfig::reaching)).
    pub fn reaching(servers: &[String], tls: bool) -> Result<Self, TransportError> {
        let (host, port) = super::host_and_port("mqtt", servers)?;
        Ok(MqttBrokerConfig {
            host: Some(host),
            port,
            version: MqttVersion::V311,
            username: None,
            password: None,
            tls: tls.then(MqttTlsConfig::default),
            keep_alive_s: default_keep_alive(),
            env_prefix: default_mqtt_env_prefix(),
        })
    }
}

fn default_keep_alive() -> u64 {
    30
}

fn default_mqtt_env_prefix() -> String {
    "MQTT".to_owned()
}

impl MqttBrokerConfig {
    /// A plain-TCP broker at `host:port`, MQTT `version`.
    pub fn new(host: impl Into<String>, port: u16, version: MqttVersion) -> Self {
        MqttBrokerConfig {
            host: Some(host.into()),
            port: Some(port),
            version,
            keep_alive_s: default_keep_alive(),
            env_prefix: default_mqtt_env_prefix(),
            ..MqttBrokerConfig::default()
        }
    }

    /// Fills unset fields from the environment.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MqttBrokerConfig, TransportError> {
        let vars = EnvVars {
            broker: "mqtt",
            prefix: &self.env_prefix,
            env,
        };
        let mut out = self.clone();
        out.host = vars.or(out.host, "HOST");
        out.port = vars.port(out.port)?;
        out.username = vars.or(out.username, "USERNAME");
        out.password = vars.password(out.password);
        if out.host.as_deref().is_none_or(str::is_empty) {
            return Err(TransportError::Config {
                broker: "mqtt",
                reason: format!("no host (set it or {}_HOST)", self.env_prefix),
            });
        }
        Ok(out)
    }

    pub(crate) fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
            .unwrap_or(if self.tls.is_some() { 8883 } else { 1883 })
    }

    /// Where the broker is, for logs.
    pub fn describe(&self) -> String {
        let v = match self.version {
            MqttVersion::V311 => "3.1.1",
            MqttVersion::V5 => "5",
        };
        format!("mqtt{} {}:{}", v, self.host(), self.port())
    }

    pub(crate) fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_s.max(5))
    }

    /// The rustls client configuration, when TLS is on.
    pub(crate) fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, TransportError> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let err = |reason: String| TransportError::Config {
            broker: "mqtt",
            reason,
        };
        let ca_file = tls
            .ca_file
            .as_deref()
            .unwrap_or("/etc/ssl/certs/ca-certificates.crt");
        let ca_pem = std::fs::read(ca_file)
            .map_err(|e| err(format!("cannot read CA file {ca_file}: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_slice()) {
            let cert = cert.map_err(|e| err(format!("bad certificate in {ca_file}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| err(format!("bad certificate in {ca_file}: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&tls.client_cert_file, &tls.client_key_file) {
            (Some(cert_file), Some(key_file)) => {
                let pem = std::fs::read(cert_file)
                    .map_err(|e| err(format!("cannot read {cert_file}: {e}")))?;
                let chain = rustls_pemfile::certs(&mut pem.as_slice())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err(format!("bad certificate in {cert_file}: {e}")))?;
                let pem = std::fs::read(key_file)
                    .map_err(|e| err(format!("cannot read {key_file}: {e}")))?;
                let key = rustls_pemfile::private_key(&mut pem.as_slice())
                    .map_err(|e| err(format!("bad key in {key_file}: {e}")))?
                    .ok_or_else(|| err(format!("no private key in {key_file}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| err(e.to_string()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(err(
                    "client_cert_file and client_key_file go together".into()
                ));
            }
        };
        Ok(Some(Arc::new(config)))
    }
}

/// MQTT quality of service, named as the MQTT specification names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

impl Qos {
    pub(crate) fn from_level(level: u8) -> Result<Qos, TransportError> {
        match level {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            2 => Ok(Qos::ExactlyOnce),
            other => Err(TransportError::Config {
                broker: "mqtt",
                reason: format!("QoS {other} does not exist (0, 1 or 2)"),
            }),
        }
    }
}

fn default_qos() -> u8 {
    1
}
