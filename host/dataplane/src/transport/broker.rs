//! What the data plane needs of a broker, implemented once per folder of
//! `transport/` (`kafka/`, `mqtt/`, `amqp/`, `nats/`, `memory/`): build a
//! pipeline's source and sink, make and remove the queues of flows, and say
//! how an FNAP flow maps onto the broker. Nothing outside a broker's folder
//! matches on the kind of broker; the [`BrokerConfig`](super::BrokerConfig)
//! enum is the only list of them.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DeliveryMode, Sink, Source, TransportError};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;

/// What a source or sink is built with besides its broker and settings.
#[derive(Debug, Clone)]
pub struct EndpointContext {
    /// The pipeline's name: it names consumer groups, durable queues and
    /// log lines.
    pub pipeline: String,
    /// `source`, `sink` or `dead-letter`.
    pub role: &'static str,
    /// A client id every broker accepts, unique per pipeline and role.
    pub client_id: String,
    /// The guarantee the pipeline gives.
    pub delivery: DeliveryMode,
    /// Reconnect timing.
    pub retry: RetryConfig,
    /// Where outages are reported.
    pub monitor: Arc<OutageMonitor>,
}

impl EndpointContext {
    /// A context for `role` of pipeline `pipeline`, with a broker-safe
    /// client id `fnaa-<pipeline>-<role>`.
    pub fn new(
        pipeline: &str,
        role: &'static str,
        delivery: DeliveryMode,
        retry: RetryConfig,
        monitor: Arc<OutageMonitor>,
    ) -> Self {
        EndpointContext {
            pipeline: pipeline.to_owned(),
            role,
            client_id: client_id(&format!("fnaa-{pipeline}-{role}")),
            delivery,
            retry,
            monitor,
        }
    }

    /// The consumer state a source of this pipeline keeps at the broker by
    /// default ([`consumer_name`]).
    pub fn consumer(&self) -> String {
        consumer_name(&self.pipeline)
    }
}

/// The one topic of a source of an in-process broker (memory, outbox),
/// which reads exactly one.
pub fn single_topic<'t>(
    broker: &'static str,
    topics: &'t [String],
) -> Result<&'t str, TransportError> {
    match topics {
        [topic] => Ok(topic),
        _ => Err(TransportError::Config {
            broker,
            reason: format!(
                "a source on the {broker} broker reads exactly one topic, not {}",
                topics.len()
            ),
        }),
    }
}

/// The consumer state (Kafka consumer group, durable AMQP queue, JetStream
/// durable consumer) pipeline `pipeline` keeps at a broker to resume where
/// it stopped: `fnaa-<pipeline>`. Brokers with stricter naming rules clean
/// it in their own folder.
pub fn consumer_name(pipeline: &str) -> String {
    format!("fnaa-{pipeline}")
}

/// A client id brokers accept: rumqttd refuses `+ $ # /` (and rumqttd
/// 0.20 then fails every later connection of the same id, bytebeamio/rumqtt
/// #1062), so they become `_`. Brokers with stricter rules (NATS durable
/// names) clean names further in their own folder.
pub fn client_id(wanted: &str) -> String {
    wanted
        .chars()
        .map(|c| if "+$#/".contains(c) { '_' } else { c })
        .collect()
}

/// The broker-specific section of a pipeline endpoint (`kafka = { ... }`
/// in a `source` or `sink`), kept as JSON until the broker parses it into
/// its own settings type. `None`: the section is absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointSettings(pub Option<serde_json::Value>);

impl EndpointSettings {
    /// The settings `value` of a broker's own type.
    pub fn of<T: Serialize>(value: &T) -> Self {
        EndpointSettings(serde_json::to_value(value).ok())
    }

    /// Parses the section into the broker's settings type; `None` when it is
    /// absent. Errors name the broker, the role and the offending field.
    pub fn parse<T: DeserializeOwned>(
        &self,
        broker: &'static str,
        role: &str,
    ) -> Result<Option<T>, TransportError> {
        match &self.0 {
            None => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| TransportError::Config {
                    broker,
                    reason: format!("{role} `{broker}` settings: {e}"),
                }),
        }
    }

    /// [`EndpointSettings::parse`], with the type's defaults (those of an
    /// empty section) when the section is absent.
    pub fn or_defaults<T: DeserializeOwned>(
        &self,
        broker: &'static str,
        role: &str,
    ) -> Result<T, TransportError> {
        match self.parse(broker, role)? {
            Some(value) => Ok(value),
            None => EndpointSettings(Some(serde_json::json!({}))).require(broker, role),
        }
    }

    /// [`EndpointSettings::parse`] for a section the role cannot do without.
    pub fn require<T: DeserializeOwned>(
        &self,
        broker: &'static str,
        role: &str,
    ) -> Result<T, TransportError> {
        self.parse(broker, role)?
            .ok_or_else(|| TransportError::Config {
                broker,
                reason: format!("the {role} needs `{broker}` settings"),
            })
    }
}

/// How a new queue is laid out; brokers without partitions ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLayout {
    pub partitions: i32,
    pub replication: i32,
}

impl Default for QueueLayout {
    fn default() -> Self {
        QueueLayout {
            partitions: 1,
            replication: 1,
        }
    }
}

/// A future a broker returns.
pub type BrokerFuture<'a, T> = futures::future::BoxFuture<'a, Result<T, TransportError>>;

/// One broker, its settings resolved (environment variables applied).
pub trait Broker: Send + Sync + fmt::Debug {
    /// The kind of broker, as `type` names it in the configuration
    /// (`kafka`, `mqtt`, `amqp`, `nats`, `memory`).
    fn kind(&self) -> &'static str;

    /// Where the broker is, for logs.
    fn describe(&self) -> String;

    /// The `host:port` addresses the host reaches the broker at.
    fn servers(&self) -> Vec<String>;

    /// Whether the host reaches the broker over TLS.
    fn tls(&self) -> bool;

    /// The connector plugin of the broker's CloudEvents binding, used when
    /// an endpoint names none. Default: the broker's kind.
    fn default_connector(&self) -> &'static str {
        self.kind()
    }

    /// Adds to a connector's configuration what it must know of this broker
    /// (the MQTT protocol version, say) unless the user set it.
    fn connector_defaults(&self, _plugin: &str, _config: &mut Vec<(String, String)>) {}

    /// A source reading what `settings` says.
    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>>;

    /// A sink publishing where `settings` says (absent settings: the
    /// destination comes with each message).
    fn sink(
        &self,
        context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError>;

    /// What makes and removes the queues of flows on this broker.
    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError>;

    /// The source settings that read the queues of FNAP flows `queues` for
    /// pipeline `pipeline`, at least once, resuming where it stopped
    /// (consumer state named [`EndpointContext::consumer`]).
    fn flow_source(&self, pipeline: &str, queues: &[&str]) -> EndpointSettings;

    /// The sink settings that publish to the queue of FNAP flow `queue`.
    fn flow_sink(&self, queue: &str) -> EndpointSettings;
}

/// Makes and removes queues and consumer state on one broker.
pub trait QueueAdmin: Send + Sync {
    /// Creates queue `name`; succeeds when it exists.
    fn create<'a>(&'a self, name: &'a str, layout: QueueLayout) -> BrokerFuture<'a, ()>;

    /// Removes queue `name`; succeeds when it does not exist.
    fn delete<'a>(&'a self, name: &'a str) -> BrokerFuture<'a, ()>;

    /// Removes what a pipeline that stopped for good kept on the broker to
    /// resume (durable queue, consumer group, durable consumer), named
    /// `consumer` ([`EndpointContext::consumer`]); succeeds when there is
    /// none.
    fn delete_consumer<'a>(&'a self, consumer: &'a str) -> BrokerFuture<'a, ()>;
}

/// A broker whose queues need no creating (MQTT topics, NATS core
/// subjects).
#[derive(Debug, Default)]
pub struct NoQueues;

impl QueueAdmin for NoQueues {
    fn create<'a>(&'a self, _name: &'a str, _layout: QueueLayout) -> BrokerFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, _name: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn delete_consumer<'a>(&'a self, _consumer: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}
