//! Topic creation and deletion through the Kafka admin API.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaBrokerConfig;
use crate::transport::{BrokerFuture, QueueAdmin, QueueLayout, TransportError};

/// Creates and deletes topics.
pub struct KafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
}

fn client_error(e: impl std::fmt::Display) -> TransportError {
    TransportError::Client {
        broker: "kafka",
        reason: e.to_string(),
    }
}

impl KafkaAdmin {
    pub fn new(broker: &KafkaBrokerConfig) -> Result<KafkaAdmin, TransportError> {
        let client = broker.client_config().create().map_err(client_error)?;
        Ok(KafkaAdmin {
            client: Arc::new(client),
            timeout: Duration::from_secs(10),
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Creates `topic`; succeeds when it already exists.
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<(), TransportError> {
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        let results = self
            .client
            .create_topics([&new], &self.options())
            .await
            .map_err(client_error)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(client_error(format!(
                        "cannot create topic `{name}`: {code}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Deletes `topic`; succeeds when it does not exist.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransportError> {
        let results = self
            .client
            .delete_topics(&[topic], &self.options())
            .await
            .map_err(client_error)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => {
                    return Err(client_error(format!(
                        "cannot delete topic `{name}`: {code}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Deletes consumer group `group` (its committed offsets); succeeds
    /// when it does not exist.
    pub async fn delete_group(&self, group: &str) -> Result<(), TransportError> {
        let results = self
            .client
            .delete_groups(&[group], &self.options())
            .await
            .map_err(client_error)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((name, code)) => {
                    return Err(client_error(format!(
                        "cannot delete consumer group `{name}`: {code}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The partition count of `topic`, or `None` when it does not exist.
    pub async fn partitions(&self, topic: &str) -> Result<Option<usize>, TransportError> {
        let topic = topic.to_owned();
        let client = self.client.clone();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let metadata = client
                .inner()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(client_error)?;
            Ok(metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
                .map(|t| t.partitions().len()))
        })
        .await
        .map_err(client_error)?
    }
}

impl QueueAdmin for KafkaAdmin {
    fn create<'a>(&'a self, name: &'a str, layout: QueueLayout) -> BrokerFuture<'a, ()> {
        Box::pin(self.create_topic(name, layout.partitions, layout.replication))
    }

    fn delete<'a>(&'a self, name: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(self.delete_topic(name))
    }

    fn delete_consumer<'a>(&'a self, consumer: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(self.delete_group(consumer))
    }
}
