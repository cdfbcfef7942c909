//! The queue behind a flow on its broker (thesis 6.2.1): a Kafka topic, an
//! AMQP exchange, an MQTT topic. FNAP creates one with each flow and
//! removes it with the flow; pipelines that stop for good remove their
//! consumer state (AMQP queue, Kafka consumer group) here too.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

use crate::dataplane::Broker;
use crate::transport::TransportError;
use crate::transport::amqp::{
    AmqpBrokerConfig, ExchangeType, client_error, ensure_exchange, is_not_found, short,
};
use crate::transport::kafka::KafkaAdmin;

/// How long provisioning waits for an AMQP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How new Kafka topics are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    pub partitions: i32,
    pub replication: i32,
}

impl Default for TopicLayout {
    fn default() -> Self {
        TopicLayout {
            partitions: 1,
            replication: 1,
        }
    }
}

/// Creates and removes queues on one broker.
#[derive(Clone)]
pub struct FlowQueues {
    broker: Broker,
    admin: Admin,
}

/// What makes and removes the queues.
#[derive(Clone)]
enum Admin {
    /// One admin client for every call (a client per call would connect
    /// and fetch metadata each time).
    Kafka(Arc<KafkaAdmin>),
    /// MQTT topics need no creating.
    Mqtt,
    /// A connection per call: provisioning is rare.
    Amqp(AmqpBrokerConfig),
}

impl std::fmt::Debug for FlowQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowQueues")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl FlowQueues {
    pub(crate) fn new(broker: Broker) -> Result<FlowQueues, TransportError> {
        let admin = match &broker {
            Broker::Kafka(k) => Admin::Kafka(Arc::new(KafkaAdmin::new(k)?)),
            Broker::Mqtt(_) => Admin::Mqtt,
            Broker::Amqp(a) => Admin::Amqp(a.clone()),
        };
        Ok(FlowQueues { broker, admin })
    }

    /// The broker's protocol: `kafka`, `mqtt` or `amqp`.
    pub fn kind(&self) -> &'static str {
        self.broker.kind()
    }

    /// The `host:port` addresses the host reaches the broker at.
    pub fn servers(&self) -> Vec<String> {
        match &self.broker {
            Broker::Kafka(k) => k
                .bootstrap_servers
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Broker::Mqtt(m) => vec![format!("{}:{}", m.host(), m.port())],
            Broker::Amqp(a) => vec![format!("{}:{}", a.host(), a.port())],
        }
    }

    /// Whether the host reaches the broker over TLS.
    pub fn tls(&self) -> bool {
        match &self.broker {
            Broker::Kafka(k) => k
                .security_protocol
                .as_deref()
                .is_some_and(|p| p.to_ascii_lowercase().contains("ssl")),
            Broker::Mqtt(m) => m.tls.is_some(),
            Broker::Amqp(a) => a.tls,
        }
    }

    /// Creates queue `name`; succeeds when it exists. MQTT topics need no
    /// creating.
    pub async fn create(&self, name: &str, layout: TopicLayout) -> Result<(), TransportError> {
        match &self.admin {
            Admin::Kafka(kafka) => {
                kafka
                    .create_topic(name, layout.partitions, layout.replication)
                    .await
            }
            Admin::Mqtt => Ok(()),
            Admin::Amqp(a) => {
                let connection =
                    tokio::time::timeout(CONNECT_TIMEOUT, a.connect("fnaa-provisioning"))
                        .await
                        .map_err(|_| client_error("timed out connecting"))?
                        .map_err(client_error)?;
                let created = ensure_exchange(&connection, name, ExchangeType::Topic, true).await;
                let _ = connection.close(200, "done".into()).await;
                match created.map_err(client_error)? {
                    true => Ok(()),
                    false => Err(TransportError::Config {
                        broker: "amqp",
                        reason: format!("exchange `{name}` cannot be declared"),
                    }),
                }
            }
        }
    }

    /// Removes queue `name`; succeeds when it does not exist.
    pub async fn delete(&self, name: &str) -> Result<(), TransportError> {
        match &self.admin {
            Admin::Kafka(kafka) => kafka.delete_topic(name).await,
            Admin::Mqtt => Ok(()),
            Admin::Amqp(a) => {
                amqp_call(a, name, |channel, name| async move {
                    channel
                        .exchange_delete(name, ExchangeDeleteOptions::default())
                        .await
                })
                .await
            }
        }
    }

    /// Removes what a stopped pipeline's source kept on the broker so that
    /// it could resume: the durable AMQP queue `consumer`, or the Kafka
    /// consumer group `consumer`. MQTT sessions expire by themselves.
    pub async fn delete_consumer(&self, consumer: &str) -> Result<(), TransportError> {
        match &self.admin {
            Admin::Kafka(kafka) => kafka.delete_group(consumer).await,
            Admin::Mqtt => Ok(()),
            Admin::Amqp(a) => {
                amqp_call(a, consumer, |channel, name| async move {
                    channel
                        .queue_delete(name, QueueDeleteOptions::default())
                        .await
                        .map(|_| ())
                })
                .await
            }
        }
    }
}

/// Runs one AMQP call about `name` on a fresh connection, treating
/// `NOT_FOUND` as success.
async fn amqp_call<F, Fut>(
    broker: &AmqpBrokerConfig,
    name: &str,
    call: F,
) -> Result<(), TransportError>
where
    F: FnOnce(lapin::Channel, lapin::types::ShortString) -> Fut,
    Fut: std::future::Future<Output = Result<(), lapin::Error>>,
{
    let name = short("name", name).map_err(|reason| TransportError::Config {
        broker: "amqp",
        reason,
    })?;
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, broker.connect("fnaa-provisioning"))
        .await
        .map_err(|_| client_error("timed out connecting"))?
        .map_err(client_error)?;
    let channel = connection.create_channel().await.map_err(client_error)?;
    let result = call(channel, name).await;
    let _ = connection.close(200, "done".into()).await;
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(client_error(e)),
    }
}
