//! MQTT as the data plane uses it: sources and sinks; topics need no
//! creating.

use std::sync::Arc;

use super::{MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSourceConfig, MqttVersion};
use crate::transport::{
    Broker, BrokerFuture, DeliveryMode, EndpointContext, EndpointSettings, NoQueues, QueueAdmin,
    Sink, Source, TransportError,
};

impl Broker for MqttBrokerConfig {
    fn kind(&self) -> &'static str {
        "mqtt"
    }

    fn describe(&self) -> String {
        MqttBrokerConfig::describe(self)
    }

    fn servers(&self) -> Vec<String> {
        vec![format!("{}:{}", self.host(), self.port())]
    }

    fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The MQTT binding must know the protocol version: MQTT 3.1.1 has no
    /// properties, so CloudEvents travel in structured mode.
    fn connector_defaults(&self, plugin: &str, config: &mut Vec<(String, String)>) {
        if plugin == "mqtt"
            && self.version == MqttVersion::V311
            && !config.iter().any(|(k, _)| k == "version")
        {
            config.push(("version".into(), "3.1.1".into()));
        }
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        Box::pin(async move {
            let config: MqttSourceConfig = settings.require("mqtt", context.role)?;
            if context.delivery == DeliveryMode::AtLeastOnce && config.qos == 0 {
                tracing::warn!(pipeline = %context.pipeline, "MQTT source with QoS 0 cannot be at-least-once: the broker does not resend what we miss");
            }
            let source = super::source::open(
                self,
                &config,
                &context.client_id,
                context.delivery,
                context.retry.clone(),
                context.monitor.clone(),
            )?;
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn sink(
        &self,
        context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        let config: MqttSinkConfig = settings.or_defaults("mqtt", context.role)?;
        if context.delivery == DeliveryMode::AtLeastOnce && config.qos == 0 {
            tracing::warn!(pipeline = %context.pipeline, "MQTT {} with QoS 0 cannot be at-least-once: nothing confirms delivery", context.role);
        }
        let sink = MqttSink::new(
            self,
            &config,
            &context.client_id,
            context.retry.clone(),
            context.monitor.clone(),
        )?;
        Ok(Box::new(sink))
    }

    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(NoQueues))
    }

    /// The flows' topics with QoS 1 on a persistent session (client id
    /// `fnaa-<pipeline>-source`), so the broker keeps what the pipeline has
    /// not acknowledged while it is paused or down.
    fn flow_source(&self, _pipeline: &str, queues: &[&str]) -> EndpointSettings {
        EndpointSettings(Some(serde_json::json!({ "topics": queues, "qos": 1 })))
    }

    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        EndpointSettings(Some(serde_json::json!({ "topic": queue, "qos": 1 })))
    }
}
