//! Kafka as the data plane uses it: sources, sinks, topics.

use std::sync::Arc;

use super::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig,
};
use crate::transport::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, QueueAdmin, Sink, Source,
    TransportError,
};

impl Broker for KafkaBrokerConfig {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn describe(&self) -> String {
        KafkaBrokerConfig::describe(self)
    }

    fn servers(&self) -> Vec<String> {
        self.bootstrap_servers
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn tls(&self) -> bool {
        self.security_protocol
            .as_deref()
            .is_some_and(|p| p.to_ascii_lowercase().contains("ssl"))
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        Box::pin(async move {
            let config: KafkaSourceConfig = settings.require("kafka", context.role)?;
            let source = KafkaSource::new(
                self,
                &config,
                &context.consumer(),
                context.delivery,
                context.monitor.clone(),
            )
            .await?;
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn sink(
        &self,
        context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        let config: KafkaSinkConfig = settings.or_defaults("kafka", context.role)?;
        let sink = KafkaSink::new(
            self,
            &config,
            context.retry.clone(),
            context.monitor.clone(),
        )?;
        Ok(Box::new(sink))
    }

    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(KafkaAdmin::new(self)?))
    }

    /// The flows' topics, read by consumer group `fnaa-<pipeline>`; a new
    /// group starts at the end (a subscription sees what comes after it).
    fn flow_source(&self, _pipeline: &str, queues: &[&str]) -> EndpointSettings {
        EndpointSettings(Some(
            serde_json::json!({ "topics": queues, "start_from": "latest" }),
        ))
    }

    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        EndpointSettings(Some(serde_json::json!({ "topic": queue })))
    }
}
