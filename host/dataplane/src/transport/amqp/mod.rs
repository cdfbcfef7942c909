//! AMQP 0.9.1 (RabbitMQ) with `lapin`.
//!
//! * [`AmqpSink`]: publisher confirms; the mandatory flag with `basic.return`
//!   handling, so that an unroutable message is reported
//!   ([`Outcome::Unroutable`](crate::transport::Outcome::Unroutable)), never
//!   silently dropped; exchanges created when missing, after a passive
//!   existence check on a throwaway channel (a failed passive declare closes
//!   its channel).
//! * [`open_source`]: a durable queue bound to an exchange (topic, direct,
//!   fanout), consumed with manual acknowledgements and a prefetch window;
//!   in `latest` mode an exclusive server-named queue (or the named queue,
//!   purged on every connect), so no backlog is replayed.

mod admin;
mod broker;
pub mod key_queues;
mod publisher;
mod sink;
mod source;

use std::fmt;

use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use admin::AmqpAdmin;
pub use sink::{AmqpSink, AmqpSinkConfig};
pub use source::{AmqpSourceConfig, open as open_source};

use super::TransportError;
use crate::secret::Secret;
use crate::transport::EnvVars;

/// An AMQP 0.9.1 broker (`type = "amqp"` in `[brokers.connections.<name>]`).
///
/// Unset fields are read from the environment variables of seed 003 (with
/// the default `env_prefix`): `RABBITMQ_HOST`, `RABBITMQ_PORT`,
/// `RABBITMQ_USERNAME`, `RABBITMQ_PASSWORD`, `RABBITMQ_VIRTUAL_HOST`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpBrokerConfig {
    /// Host name or address. Env: `<prefix>_HOST`. Default `localhost`.
    pub host: Option<String>,
    /// Port. Env: `<prefix>_PORT`. Default 5672 (5671 with TLS).
    pub port: Option<u16>,
    /// User name. Env: `<prefix>_USERNAME`. Default `guest`.
    pub username: Option<String>,
    /// Password; never logged. Env: `<prefix>_PASSWORD`. Default `guest`.
    pub password: Option<Secret>,
    /// Virtual host. Env: `<prefix>_VIRTUAL_HOST`. Default `/`.
    pub virtual_host: Option<String>,
    /// Connect with TLS (`amqps`), verifying the broker against the system's
    /// CA certificates.
    #[serde(default)]
    pub tls: bool,
    /// Heartbeat interval in seconds (0: the broker's choice).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_s: u16,
    /// Prefix of the environment variables that fill unset fields.
    #[serde(default = "default_amqp_env_prefix")]
    pub env_prefix: String,
}

impl AmqpBrokerConfig {
    /// Another organisation's broker at the first of `servers` (see
    /// [`BrokerConfig::reaching`](super::BrokerConfig::reaching)).
    pub fn reaching(servers: &[String], tls: bool) -> Result<Self, TransportError> {
        let (host, port) = super::host_and_port("amqp", servers)?;
        Ok(AmqpBrokerConfig {
            host: Some(host),
            port,
            username: None,
            password: None,
            virtual_host: None,
            tls,
            heartbeat_s: default_heartbeat(),
            env_prefix: default_amqp_env_prefix(),
        })
    }
}

fn default_heartbeat() -> u16 {
    10
}

fn default_amqp_env_prefix() -> String {
    "RABBITMQ".to_owned()
}

impl AmqpBrokerConfig {
    /// A broker at `host:port` with user `guest`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        AmqpBrokerConfig {
            host: Some(host.into()),
            port: Some(port),
            heartbeat_s: default_heartbeat(),
            env_prefix: default_amqp_env_prefix(),
            ..AmqpBrokerConfig::default()
        }
    }

    /// Fills unset fields from the environment.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AmqpBrokerConfig, TransportError> {
        let vars = EnvVars {
            broker: "amqp",
            prefix: &self.env_prefix,
            env,
        };
        let mut out = self.clone();
        out.host = vars.or(out.host, "HOST");
        out.port = vars.port(out.port)?;
        out.username = vars.or(out.username, "USERNAME");
        out.password = vars.password(out.password);
        out.virtual_host = vars.or(out.virtual_host, "VIRTUAL_HOST");
        Ok(out)
    }

    pub(crate) fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    pub(crate) fn port(&self) -> u16 {
        self.port.unwrap_or(if self.tls { 5671 } else { 5672 })
    }

    /// Where the broker is, for logs (no credentials).
    pub fn describe(&self) -> String {
        format!(
            "amqp{} {}:{} vhost {}",
            if self.tls { "s" } else { "" },
            self.host(),
            self.port(),
            self.virtual_host.as_deref().unwrap_or("/")
        )
    }

    fn uri(&self) -> AMQPUri {
        AMQPUri {
            scheme: if self.tls {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: self.username.clone().unwrap_or_else(|| "guest".into()),
                    password: self
                        .password
                        .as_ref()
                        .map_or_else(|| "guest".into(), |p| p.expose().to_owned()),
                },
                host: self.host().to_owned(),
                port: self.port(),
            },
            vhost: self.virtual_host.clone().unwrap_or_else(|| "/".into()),
            query: AMQPQueryString {
                heartbeat: Some(self.heartbeat_s),
                connection_timeout: Some(5_000),
                ..AMQPQueryString::default()
            },
        }
    }

    /// Opens a connection.
    pub async fn connect(&self, name: &str) -> Result<Connection, lapin::Error> {
        let properties =
            ConnectionProperties::default().with_connection_name(name.to_owned().into());
        Connection::connect_uri(self.uri(), properties).await
    }
}

/// An exchange type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    /// Routing keys matched against binding patterns (`*`, `#`).
    #[default]
    Topic,
    /// Routing key equal to the binding key.
    Direct,
    /// Every bound queue.
    Fanout,
}

impl ExchangeType {
    fn kind(self) -> ExchangeKind {
        match self {
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Direct => ExchangeKind::Direct,
            ExchangeType::Fanout => ExchangeKind::Fanout,
        }
    }
}

/// A name longer than the protocol's 255 bytes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} `{start}…` is longer than 255 bytes")]
pub(crate) struct TooLong {
    what: &'static str,
    start: String,
}

impl From<TooLong> for TransportError {
    fn from(e: TooLong) -> Self {
        TransportError::Config {
            broker: "amqp",
            reason: e.to_string(),
        }
    }
}

/// A name the protocol accepts (at most 255 bytes).
pub(crate) fn short(what: &'static str, value: &str) -> Result<ShortString, TooLong> {
    ShortString::try_new(value).map_err(|_| TooLong {
        what,
        start: value.chars().take(40).collect(),
    })
}

pub(crate) fn client_error(e: impl fmt::Display) -> TransportError {
    TransportError::Client {
        broker: "amqp",
        reason: e.to_string(),
    }
}

/// AMQP reply code `404 NOT_FOUND`.
const NOT_FOUND: u16 = 404;

/// True when `error` is the broker saying "no such exchange/queue".
pub(crate) fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == NOT_FOUND)
}

/// Makes sure exchange `name` exists: a passive declare on a throwaway
/// channel (a failed passive declare closes its channel, so it must not be
/// the publishing one), then, if missing and `create` is set, a durable
/// declare of type `kind`. Returns whether it exists now.
pub(crate) async fn ensure_exchange(
    connection: &Connection,
    name: &str,
    kind: ExchangeType,
    create: bool,
) -> Result<bool, lapin::Error> {
    if name.is_empty() || name.starts_with("amq.") {
        return Ok(true);
    }
    let Ok(exchange) = ShortString::try_new(name) else {
        return Ok(false);
    };
    let probe = connection.create_channel().await?;
    let passive = lapin::options::ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match probe
        .exchange_declare(
            exchange.clone(),
            kind.kind(),
            passive,
            FieldTable::default(),
        )
        .await
    {
        Ok(()) => {
            let _ = probe.close(200, "probe done".into()).await;
            return Ok(true);
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    if !create {
        return Ok(false);
    }
    let declare = connection.create_channel().await?;
    let durable = lapin::options::ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    declare
        .exchange_declare(exchange, kind.kind(), durable, FieldTable::default())
        .await?;
    tracing::info!(exchange = name, ?kind, "created missing AMQP exchange");
    let _ = declare.close(200, "declared".into()).await;
    Ok(true)
}

/// A header table entry as bytes: strings as they are, numbers and booleans
/// as decimal text, nested tables and arrays left out.
fn header_bytes(value: &AMQPValue) -> Option<Vec<u8>> {
    Some(match value {
        AMQPValue::LongString(s) => s.as_bytes().to_vec(),
        AMQPValue::ShortString(s) => s.as_str().as_bytes().to_vec(),
        AMQPValue::ByteArray(b) => b.as_slice().to_vec(),
        AMQPValue::Boolean(b) => b.to_string().into_bytes(),
        AMQPValue::ShortShortInt(i) => i.to_string().into_bytes(),
        AMQPValue::ShortShortUInt(i) => i.to_string().into_bytes(),
        AMQPValue::ShortInt(i) => i.to_string().into_bytes(),
        AMQPValue::ShortUInt(i) => i.to_string().into_bytes(),
        AMQPValue::LongInt(i) => i.to_string().into_bytes(),
        AMQPValue::LongUInt(i) => i.to_string().into_bytes(),
        AMQPValue::LongLongInt(i) => i.to_string().into_bytes(),
        AMQPValue::Timestamp(t) => t.to_string().into_bytes(),
        AMQPValue::Float(f) => f.to_string().into_bytes(),
        AMQPValue::Double(f) => f.to_string().into_bytes(),
        _ => return None,
    })
}

/// Closes a channel, ignoring errors (it may be gone already).
async fn close_quietly(channel: &Channel) {
    let _ = channel.close(200, "bye".into()).await;
}
