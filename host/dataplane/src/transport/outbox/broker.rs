//! The outbox as a configured [`Broker`].

use std::sync::Arc;

use super::{
    BROKER, OutboxBrokerConfig, OutboxSink, OutboxSinkConfig, OutboxSource, OutboxSourceConfig,
    blocking,
};
use crate::transport::{
    Broker, BrokerFuture, DeliveryMode, EndpointContext, EndpointSettings, QueueAdmin, QueueLayout,
    Sink, Source, TransportError,
};

fn config_error(e: super::OutboxError) -> TransportError {
    TransportError::Config {
        broker: BROKER,
        reason: e.to_string(),
    }
}

impl Broker for OutboxBrokerConfig {
    fn kind(&self) -> &'static str {
        BROKER
    }

    fn describe(&self) -> String {
        format!("outbox {}", self.path.display())
    }

    fn servers(&self) -> Vec<String> {
        Vec::new()
    }

    fn tls(&self) -> bool {
        false
    }

    /// Messages keep key and headers as Kafka's do.
    fn default_connector(&self) -> &'static str {
        "kafka"
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        Box::pin(async move {
            let config: OutboxSourceConfig = settings.require(BROKER, "source")?;
            let topic = crate::transport::broker::single_topic(BROKER, &config.topics)?.to_owned();
            let outbox = self.open().map_err(config_error)?;
            let consumer = config.consumer.unwrap_or_else(|| context.consumer());
            let latest = context.delivery == DeliveryMode::Latest;
            let (joined, topic_name, name) = (outbox.clone(), topic.clone(), consumer.clone());
            let position = blocking(move || joined.join(&topic_name, &name, latest)).await?;
            let source = OutboxSource::new(outbox, &topic, &consumer, position, context.delivery);
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn sink(
        &self,
        _context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        let config: OutboxSinkConfig = settings.parse(BROKER, "sink")?.unwrap_or_default();
        let outbox = self.open().map_err(config_error)?;
        Ok(Box::new(OutboxSink::new(outbox, config.topic.as_deref())))
    }

    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(OutboxAdmin(self.clone())))
    }

    fn flow_source(&self, _pipeline: &str, queues: &[&str]) -> EndpointSettings {
        EndpointSettings::of(&OutboxSourceConfig {
            topics: queues.iter().map(|q| (*q).to_owned()).collect(),
            consumer: None,
        })
    }

    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        EndpointSettings::of(&OutboxSinkConfig {
            topic: Some(queue.to_owned()),
        })
    }
}

/// Removes the topics and consumers of an outbox; topics come into being
/// with their first message.
#[derive(Debug)]
struct OutboxAdmin(OutboxBrokerConfig);

impl QueueAdmin for OutboxAdmin {
    fn create<'a>(&'a self, _name: &'a str, _layout: QueueLayout) -> BrokerFuture<'a, ()> {
        Box::pin(async move { self.0.open().map(|_| ()).map_err(config_error) })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(async move {
            let outbox = self.0.open().map_err(config_error)?;
            let name = name.to_owned();
            blocking(move || outbox.remove_topic(&name)).await
        })
    }

    fn delete_consumer<'a>(&'a self, consumer: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(async move {
            let outbox = self.0.open().map_err(config_error)?;
            let consumer = consumer.to_owned();
            blocking(move || outbox.remove_consumer(&consumer)).await
        })
    }
}
