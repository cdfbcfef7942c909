//! AMQP 0.9.1 as the data plane uses it: sources, sinks, exchanges.

use std::sync::Arc;

use super::{AmqpAdmin, AmqpBrokerConfig, AmqpSink, AmqpSinkConfig, AmqpSourceConfig};
use crate::transport::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, QueueAdmin, Sink, Source,
    TransportError, consumer_name,
};

impl Broker for AmqpBrokerConfig {
    fn kind(&self) -> &'static str {
        "amqp"
    }

    fn describe(&self) -> String {
        AmqpBrokerConfig::describe(self)
    }

    fn servers(&self) -> Vec<String> {
        vec![format!("{}:{}", self.host(), self.port())]
    }

    fn tls(&self) -> bool {
        self.tls
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        Box::pin(async move {
            let config: AmqpSourceConfig = settings.require("amqp", context.role)?;
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
        let config: AmqpSinkConfig = settings.or_defaults("amqp", context.role)?;
        Ok(Box::new(AmqpSink::new(
            self,
            &config,
            &context.client_id,
            context.retry.clone(),
            context.monitor.clone(),
        )))
    }

    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(AmqpAdmin::new(self)))
    }

    /// A durable queue `fnaa-<pipeline>` bound with `#` to every flow's
    /// exchange: it keeps what the pipeline has not acknowledged while it
    /// is paused or down.
    fn flow_source(&self, pipeline: &str, queues: &[&str]) -> EndpointSettings {
        let (first, rest) = queues.split_first().map_or(("", &[][..]), |(f, r)| (*f, r));
        EndpointSettings(Some(serde_json::json!({
            "queue": consumer_name(pipeline),
            "exchange": first,
            "extra_exchanges": rest,
            "binding_keys": ["#"],
        })))
    }

    /// A flow nobody reads is normal: no mandatory flag.
    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        EndpointSettings(Some(
            serde_json::json!({ "exchange": queue, "mandatory": false }),
        ))
    }
}
