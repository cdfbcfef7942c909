//! The queue behind a flow on its broker (thesis 6.2.1): a Kafka topic, an
//! AMQP exchange, an MQTT topic, a JetStream stream. FNAP creates one with
//! each flow and removes it with the flow; pipelines that stop for good
//! remove their consumer state here too. What each broker does is in its
//! folder of [`transport`](crate::transport) ([`QueueAdmin`]).

use std::sync::Arc;

use crate::transport::{Broker, QueueAdmin, QueueLayout, TransportError};

/// How new Kafka topics are laid out (brokers without partitions ignore
/// it).
pub type TopicLayout = QueueLayout;

/// A broker and what makes and removes queues on it; cheap to clone.
#[derive(Clone)]
pub struct FlowQueues {
    broker: Arc<dyn Broker>,
    admin: Arc<dyn QueueAdmin>,
}

impl std::fmt::Debug for FlowQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowQueues")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl FlowQueues {
    /// The queues of `broker` (an admin client is made once, here).
    pub fn new(broker: Arc<dyn Broker>) -> Result<FlowQueues, TransportError> {
        let admin = broker.admin()?;
        Ok(FlowQueues { broker, admin })
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// The broker's protocol: `kafka`, `mqtt`, `amqp`, ...
    pub fn kind(&self) -> &'static str {
        self.broker.kind()
    }

    /// The `host:port` addresses the host reaches the broker at.
    pub fn servers(&self) -> Vec<String> {
        self.broker.servers()
    }

    /// Whether the host reaches the broker over TLS.
    pub fn tls(&self) -> bool {
        self.broker.tls()
    }

    /// Creates queue `name`; succeeds when it exists.
    pub async fn create(&self, name: &str, layout: QueueLayout) -> Result<(), TransportError> {
        self.admin.create(name, layout).await
    }

    /// Removes queue `name`; succeeds when it does not exist.
    pub async fn delete(&self, name: &str) -> Result<(), TransportError> {
        self.admin.delete(name).await
    }

    /// Removes what a stopped pipeline's source kept on the broker so that
    /// it could resume (see [`QueueAdmin::delete_consumer`]).
    pub async fn delete_consumer(&self, consumer: &str) -> Result<(), TransportError> {
        self.admin.delete_consumer(consumer).await
    }
}
