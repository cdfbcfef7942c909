//! Broker transports: one folder per broker (`kafka/`, `mqtt/`, `amqp/`,
//! `nats/`, and `memory/` inside the process for tests),
//! each behind the same [`Broker`] trait and [`Source`]/[`Sink`] pair, so
//! that pipelines do not care which broker a flow lives on.
//!
//! A broker's folder holds everything about it: `mod.rs` its configuration
//! (`[brokers.connections.<name>]`, whose `///` docs are the user docs),
//! `broker.rs` its [`Broker`] implementation (how a pipeline endpoint and an
//! FNAP flow map onto it), `source.rs`, `sink.rs`, and `admin.rs` when its
//! queues need creating. Adding a broker is that folder and, in this file
//! only, one variant of [`BrokerConfig`] with its name in
//! [`BrokerConfig::KINDS`], its sections in [`SourceFields`] and
//! [`SinkFields`] and its structs in [`config_structs`] (tests name any
//! that is missing); then the broker's CloudEvents binding in
//! `sdk/event/src/binding/` and its connector plugin in
//! `plugins/connectors/`.
//!
//! Contract shared by every transport:
//!
//! * A source reconnects by itself (with backoff and outage alarms) and
//!   never returns an error for a broker outage; [`Source::recv`] just waits.
//! * Every received message carries an [`AckToken`]. In at-least-once mode
//!   the pipeline hands the tokens to the source's [`Acker`] once the sink
//!   confirmed everything made from them: Kafka offsets are committed, AMQP
//!   deliveries acked, MQTT PUBACK/PUBREC sent.
//! * [`Sink::send`] returns only when every message of the batch is either
//!   confirmed by the broker (Kafka delivery report, AMQP publisher
//!   confirm, MQTT PUBACK/PUBCOMP) or failed for good ([`Outcome`]). It
//!   retries through outages itself, however long they last, so nothing is
//!   lost; a message the broker refuses for good (an unroutable AMQP
//!   message, a message too large) is reported, never silently dropped.

pub mod amqp;
pub mod broker;
mod channel;
pub mod kafka;
pub mod memory;
pub mod mqtt;
pub mod nats;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

pub use broker::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, NoQueues, QueueAdmin, QueueLayout,
    client_id, consumer_name,
};
pub use channel::ChannelSource;
pub use fnaa_event::binding::{Destination, Message};

/// One external broker (`[brokers.connections.<name>]`), by `type`. This
/// enum is the only list of brokers: a new one is a folder of this module,
/// a variant here and its name in [`BrokerConfig::KINDS`].
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum BrokerConfig {
    /// A Kafka cluster (or any Kafka-protocol broker).
    Kafka(kafka::KafkaBrokerConfig),
    /// An MQTT 3.1.1 or 5 broker.
    Mqtt(mqtt::MqttBrokerConfig),
    /// An AMQP 0.9.1 broker (RabbitMQ).
    Amqp(amqp::AmqpBrokerConfig),
    /// A NATS server: JetStream streams for at-least-once flows.
    Nats(nats::NatsBrokerConfig),
    /// Topics inside the host process (tests, trying a configuration).
    Memory(memory::MemoryBrokerConfig),
    /// A durable log on the host's disk, for events that enter the host
    /// through the HTTP ingestion listener.
    Outbox(outbox::OutboxBrokerConfig),
}

impl BrokerConfig {
    /// The `type` of every broker, which also names its settings section in
    /// a pipeline's `source` and `sink` (`kafka = { ... }`).
    pub const KINDS: &[&str] = &["kafka", "mqtt", "amqp", "nats", "memory", "outbox"];

    /// The broker with unset fields filled from the environment (through
    /// `env`, so that tests can pass their own).
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<std::sync::Arc<dyn Broker>, TransportError> {
        Ok(match self {
            BrokerConfig::Kafka(c) => std::sync::Arc::new(c.resolve(env)?),
            BrokerConfig::Mqtt(c) => std::sync::Arc::new(c.resolve(env)?),
            BrokerConfig::Amqp(c) => std::sync::Arc::new(c.resolve(env)?),
            BrokerConfig::Nats(c) => std::sync::Arc::new(c.resolve(env)?),
            BrokerConfig::Memory(c) => std::sync::Arc::new(c.clone()),
            BrokerConfig::Outbox(c) => std::sync::Arc::new(c.clone()),
        })
    }
}

impl BrokerConfig {
    /// A broker of kind `kind` at `servers` (`host:port`), over TLS when
    /// `tls`, with no credentials: another organisation's broker as its
    /// FNAA described a flow (DESCRIBE FLOW's `type=`, `server=`, `tls=`).
    /// Resolve it with an empty environment, so that none of this host's
    /// credentials reach it.
    pub fn reaching(
        kind: &str,
        servers: &[String],
        tls: bool,
    ) -> Result<BrokerConfig, TransportError> {
        let unsupported = || TransportError::Config {
            broker: "remote",
            reason: format!(
                "a flow on a `{kind}` broker cannot be read here (known: {})",
                Self::KINDS.join(", ")
            ),
        };
        if servers.iter().all(|s| s.trim().is_empty()) {
            return Err(TransportError::Config {
                broker: "remote",
                reason: "the flow's description names no broker server".into(),
            });
        }
        Ok(match kind {
            "kafka" => BrokerConfig::Kafka(kafka::KafkaBrokerConfig::reaching(servers, tls)),
            "mqtt" => BrokerConfig::Mqtt(mqtt::MqttBrokerConfig::reaching(servers, tls)?),
            "amqp" => BrokerConfig::Amqp(amqp::AmqpBrokerConfig::reaching(servers, tls)?),
            "nats" => BrokerConfig::Nats(nats::NatsBrokerConfig::reaching(servers, tls)),
            _ => return Err(unsupported()),
        })
    }
}

/// `host:port` split, for brokers configured by host and port.
pub(crate) fn host_and_port(
    broker: &'static str,
    servers: &[String],
) -> Result<(String, Option<u16>), TransportError> {
    let first = servers.first().map(|s| s.trim()).unwrap_or_default();
    match first.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse().map_err(|_| TransportError::Config {
                broker,
                reason: format!("bad port in server {first:?}"),
            })?;
            Ok((host.trim_matches(['[', ']']).to_owned(), Some(port)))
        }
        None => Ok((first.to_owned(), None)),
    }
}

/// How a pipeline delivers: the guarantee it gives and where it resumes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
pub enum DeliveryMode {
    /// Every event arrives at least once: a source message is acknowledged
    /// (Kafka offset committed, AMQP delivery acked, MQTT PUBACK sent) only
    /// after the sink confirmed what was made from it. Outages delay events
    /// and never lose them; a restart resumes where the last one stopped.
    #[default]
    #[serde(rename = "at-least-once")]
    AtLeastOnce,
    /// Real-time flows: start at the live point and, when the sink falls
    /// behind (outage, slow broker), discard the oldest waiting events
    /// rather than delay new ones. Messages are acknowledged on receipt;
    /// after a restart nothing old is replayed.
    #[serde(rename = "latest")]
    Latest,
}

/// A message a source received, with what is needed to acknowledge it.
#[derive(Debug)]
pub struct Received {
    pub message: Message,
    pub token: AckToken,
    /// The broker's timestamp (Kafka) or the producer's (AMQP `timestamp`
    /// property), in milliseconds since the Unix epoch, when known.
    pub timestamp_ms: Option<i64>,
}

/// Identifies one received message for acknowledgement. Opaque; only the
/// source that produced it understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckToken(pub(crate) TokenInner);

/// What a token holds, by the shape of the acknowledgement rather than by
/// broker, so that a new broker reuses one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenInner {
    /// Nothing to acknowledge (auto-ack, `latest` mode, QoS 0).
    None,
    /// A position in a partitioned log (Kafka): acknowledging it commits
    /// the offset after it.
    Offset {
        topic: Arc<str>,
        partition: i32,
        offset: i64,
    },
    /// One delivery on one connection (an AMQP delivery tag, an MQTT packet
    /// id with its QoS as `class`, a memory topic's sequence number):
    /// acknowledged on that connection only; skipped once the connection is
    /// gone, since the broker redelivers.
    Delivery {
        generation: u64,
        tag: u64,
        class: u8,
    },
}

impl AckToken {
    /// A token that needs no acknowledgement.
    pub fn none() -> Self {
        AckToken(TokenInner::None)
    }

    /// Delivery `tag` on connection `generation`, for a source built
    /// outside this crate (the host's relay of another FNAA's copy flow).
    pub fn delivery(generation: u64, tag: u64) -> Self {
        AckToken(TokenInner::Delivery {
            generation,
            tag,
            class: 0,
        })
    }

    /// The connection generation and tag of a [`AckToken::delivery`].
    pub fn as_delivery(&self) -> Option<(u64, u64)> {
        match self.0 {
            TokenInner::Delivery {
                generation, tag, ..
            } => Some((generation, tag)),
            _ => None,
        }
    }
}

/// Why a transport operation failed. Outages are not errors (transports
/// retry them); these are configuration mistakes and shutdown.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid {broker} configuration: {reason}")]
    Config {
        broker: &'static str,
        reason: String,
    },
    #[error("{broker} client error: {reason}")]
    Client {
        broker: &'static str,
        reason: String,
    },
    #[error("the transport was shut down")]
    Closed,
}

/// What became of one message handed to [`Sink::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The broker confirmed the message.
    Confirmed,
    /// The broker accepted the message but could route it to no queue (AMQP
    /// `basic.return` of a mandatory publish). Retrying would not help.
    Unroutable { reason: String },
    /// The broker or client refused the message for good (too large, not
    /// representable on this protocol, access refused).
    Rejected { reason: String },
}

impl Outcome {
    pub fn is_confirmed(&self) -> bool {
        matches!(self, Outcome::Confirmed)
    }
}

/// Receives messages from one broker endpoint (topics, a queue).
pub trait Source: Send {
    /// Waits for at least one message and returns up to `max`, waiting at
    /// most `linger` after the first one for more.
    fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>>;

    /// The handle that acknowledges received messages, usable from another
    /// task. Tokens must be acknowledged in the order received.
    fn acker(&self) -> Arc<dyn Acker>;

    /// A short description for logs (`kafka topics [a, b] group g on 127.0.0.1:9092`).
    fn describe(&self) -> String;

    /// Messages waiting at the broker for this source (Kafka consumer lag),
    /// when the broker tells.
    fn backlog(&self) -> Option<u64> {
        None
    }

    /// Resolves once the source consumes: subscribed (MQTT), consumer
    /// started on a declared and bound queue (AMQP), partitions assigned
    /// (Kafka). Messages published before that may not reach a source
    /// without a persistent session. Resolves again at once afterwards.
    fn ready(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Whether a source consumes yet; set by its connection task.
#[derive(Debug, Clone)]
pub struct Readiness {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Readiness {
    pub fn new() -> Self {
        Readiness {
            tx: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    pub fn set(&self) {
        self.tx.send_replace(true);
    }

    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// [`Readiness::wait`] as a future that owns what it needs.
    pub(crate) fn wait_owned(&self) -> BoxFuture<'static, ()> {
        let me = self.clone();
        Box::pin(async move { me.wait().await })
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

/// Acknowledges received messages to the broker they came from.
pub trait Acker: Send + Sync {
    /// Acknowledges every token (in order). Tokens from a connection that
    /// has since been lost are skipped: the broker redelivers those
    /// messages.
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>>;
}

/// Publishes messages to one broker endpoint.
pub trait Sink: Send {
    /// Publishes `batch`; the future resolves once every message is
    /// confirmed or failed for good, with one [`Outcome`] per message, in
    /// order. Retries through outages; errors only on shutdown or a fatal
    /// client error. The batch is handed to the client before this returns
    /// and the future does not borrow the sink, so that a pipeline can keep
    /// several batches in flight: they go out in the order they were sent.
    fn send(&mut self, batch: Vec<Message>) -> SendFuture;

    /// A short description for logs.
    fn describe(&self) -> String;
}

/// The outcomes of a batch started with [`Sink::send`].
pub type SendFuture = BoxFuture<'static, Result<Vec<Outcome>, TransportError>>;

/// An acker for sources that need none.
#[derive(Debug, Default)]
pub struct NoAck;

impl Acker for NoAck {
    fn ack(&self, _tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The `<prefix>_<NAME>` environment variables that fill a broker's unset
/// settings (e.g. `RABBITMQ_HOST`), read through `env` so tests can pass
/// their own.
pub(crate) struct EnvVars<'a> {
    pub broker: &'static str,
    pub prefix: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl EnvVars<'_> {
    /// `current`, else variable `<prefix>_<name>`.
    pub(crate) fn or(&self, current: Option<String>, name: &str) -> Option<String> {
        current.or_else(|| (self.env)(&format!("{}_{name}", self.prefix)))
    }

    /// `current`, else `<prefix>_PASSWORD`.
    pub(crate) fn password(
        &self,
        current: Option<crate::secret::Secret>,
    ) -> Option<crate::secret::Secret> {
        current.or_else(|| self.or(None, "PASSWORD").map(crate::secret::Secret::new))
    }

    /// `current`, else `<prefix>_PORT`, which must be a port number.
    pub(crate) fn port(&self, current: Option<u16>) -> Result<Option<u16>, TransportError> {
        match (current, self.or(None, "PORT")) {
            (Some(port), _) => Ok(Some(port)),
            (None, None) => Ok(None),
            (None, Some(text)) => text.parse().map(Some).map_err(|_| TransportError::Config {
                broker: self.broker,
                reason: format!("{}_PORT is not a port number", self.prefix),
            }),
        }
    }
}

/// A batch handed to a sink's connection task, and where its outcomes go.
pub(crate) struct SinkRequest {
    pub messages: Vec<Message>,
    pub reply: tokio::sync::oneshot::Sender<Vec<Outcome>>,
}

/// Hands `batch` to a sink's connection task through `requests`; the
/// future resolves with the outcomes the task sends back (an empty batch
/// needs no trip).
pub(crate) fn submit(
    requests: &tokio::sync::mpsc::UnboundedSender<SinkRequest>,
    batch: Vec<Message>,
) -> SendFuture {
    if batch.is_empty() {
        return Box::pin(async { Ok(Vec::new()) });
    }
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let handed = requests.send(SinkRequest {
        messages: batch,
        reply,
    });
    Box::pin(async move {
        handed.map_err(|_| TransportError::Closed)?;
        outcome.await.map_err(|_| TransportError::Closed)
    })
}

// The list of brokers, with `BrokerConfig`: a new broker adds its
// sections here.

// Only the schema of `SourceFields` and `SinkFields` is used (by `fnaa
// config example`; `Deserialize` tells their fields' order): they are
// `EndpointConfig` as written, with a section for each type of broker
// (`BrokerConfig::KINDS`) holding that broker's own settings.

/// A pipeline's source: the broker to read from, the connector that decodes
/// its messages and, in the section named after the broker's type (the
/// only one to write), what to read there.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SourceFields {
    /// A broker of `[brokers.connections]`, or `embedded`.
    broker: String,
    /// Connector plugin that decodes the messages. Default: the CloudEvents
    /// binding of the broker's protocol (`kafka`, `mqtt`, `amqp`, ...);
    /// `raw` wraps plain payloads.
    connector: Option<String>,
    /// The connector's configuration (`mode`, `raw.source`, ...).
    #[serde(default)]
    connector_config: crate::config::PluginConfig,
    /// What to read when `broker` is of type `kafka`.
    kafka: Option<kafka::KafkaSourceConfig>,
    /// What to read when `broker` is of type `mqtt` (or is `embedded`).
    mqtt: Option<mqtt::MqttSourceConfig>,
    /// What to read when `broker` is of type `amqp`.
    amqp: Option<amqp::AmqpSourceConfig>,
    /// What to read when `broker` is of type `nats`.
    nats: Option<nats::NatsSourceConfig>,
    /// What to read when `broker` is of type `memory`.
    memory: Option<memory::MemorySourceConfig>,
    /// What to read when `broker` is of type `outbox`.
    outbox: Option<outbox::OutboxSourceConfig>,
}

/// A pipeline's sink: the broker to publish to, the connector that encodes
/// the events and, in the section named after the broker's type (the only
/// one to write), where to publish there.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SinkFields {
    /// A broker of `[brokers.connections]`, or `embedded`.
    broker: String,
    /// Connector plugin that encodes the events. Default: the CloudEvents
    /// binding of the broker's protocol.
    connector: Option<String>,
    /// The connector's configuration (`mode`, `destination`,
    /// `routing_key`, `var.*`, ...).
    #[serde(default)]
    connector_config: crate::config::PluginConfig,
    /// Where to publish when `broker` is of type `kafka`.
    kafka: Option<kafka::KafkaSinkConfig>,
    /// Where to publish when `broker` is of type `mqtt` (or is `embedded`).
    mqtt: Option<mqtt::MqttSinkConfig>,
    /// Where to publish when `broker` is of type `amqp`.
    amqp: Option<amqp::AmqpSinkConfig>,
    /// Where to publish when `broker` is of type `nats`.
    nats: Option<nats::NatsSinkConfig>,
    /// Where to publish when `broker` is of type `memory`.
    memory: Option<memory::MemorySinkConfig>,
    /// Where to publish when `broker` is of type `outbox`.
    outbox: Option<outbox::OutboxSinkConfig>,
}

/// Takes each configuration struct of the brokers, by type.
pub trait ConfigStructs {
    fn add<T: serde::de::DeserializeOwned>(&mut self);
}

/// Hands `to` every broker's configuration structs: its connection, and
/// its source and sink sections (`fnaa config example` lists their fields
/// in the order they are declared).
pub fn config_structs(to: &mut impl ConfigStructs) {
    to.add::<kafka::KafkaBrokerConfig>();
    to.add::<kafka::KafkaSourceConfig>();
    to.add::<kafka::KafkaSinkConfig>();
    to.add::<mqtt::MqttBrokerConfig>();
    to.add::<mqtt::MqttTlsConfig>();
    to.add::<mqtt::MqttSourceConfig>();
    to.add::<mqtt::MqttSinkConfig>();
    to.add::<amqp::AmqpBrokerConfig>();
    to.add::<amqp::AmqpSourceConfig>();
    to.add::<amqp::AmqpSinkConfig>();
    to.add::<amqp::key_queues::KeyQueuesConfig>();
    to.add::<nats::NatsBrokerConfig>();
    to.add::<nats::NatsSourceConfig>();
    to.add::<nats::NatsSinkConfig>();
    to.add::<memory::MemoryBrokerConfig>();
    to.add::<memory::MemorySourceConfig>();
    to.add::<memory::MemorySinkConfig>();
    to.add::<outbox::OutboxBrokerConfig>();
    to.add::<outbox::OutboxSourceConfig>();
    to.add::<outbox::OutboxSinkConfig>();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment that holds this host's broker credentials.
    fn credentials(name: &str) -> Option<String> {
        name.ends_with("_USERNAME")
            .then(|| "local-user".to_owned())
            .or_else(|| {
                name.ends_with("_PASSWORD")
                    .then(|| "local-secret".to_owned())
            })
    }

    #[test]
    fn another_organisations_broker_is_reached_as_described_and_without_our_credentials() {
        let servers = vec!["mqtt.unix.ar:8883".to_owned()];
        for kind in ["kafka", "mqtt", "amqp", "nats"] {
            let config = BrokerConfig::reaching(kind, &servers, true).unwrap();
            // Resolved as the host does for such a broker: no environment.
            let broker = config.resolve(&|_| None).unwrap();
            assert_eq!(broker.kind(), kind);
            assert!(broker.tls(), "{kind}");
            let described = format!("{} {:?}", broker.describe(), broker);
            assert!(described.contains("mqtt.unix.ar"), "{kind}: {described}");
            assert!(!described.contains("local-"), "{kind}: {described}");
            // The same configuration would pick them up from an
            // environment: which is why it must not get one.
            let leaky = format!("{:?}", config.resolve(&credentials).unwrap());
            assert!(
                leaky.contains("local-user") || kind == "kafka",
                "{kind}: {leaky}"
            );
        }
        let error = BrokerConfig::reaching("pulsar", &servers, false).unwrap_err();
        assert!(error.to_string().contains("`pulsar`"), "{error}");
        let error = BrokerConfig::reaching("mqtt", &[], false).unwrap_err();
        assert!(error.to_string().contains("no broker server"), "{error}");
        let error = BrokerConfig::reaching("mqtt", &["h:port".to_owned()], false).unwrap_err();
        assert!(error.to_string().contains("bad port"), "{error}");
    }
}
