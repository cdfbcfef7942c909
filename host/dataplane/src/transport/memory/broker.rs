//! The memory broker as a configured [`Broker`]: `type = "memory"`, a
//! broker inside the process that configurations (and tests) find by
//! name.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BROKER, MemoryBroker, MemorySink, MemorySource, SinkFaults};
use crate::transport::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, QueueAdmin, QueueLayout, Sink, Source,
    TransportError,
};

/// Every named memory broker of the process.
static BROKERS: LazyLock<Mutex<BTreeMap<String, Arc<MemoryBroker>>>> =
    LazyLock::new(Mutex::default);

/// The process-wide memory broker called `name`, created empty on first
/// use.
pub fn named(name: &str) -> Arc<MemoryBroker> {
    let mut brokers = BROKERS.lock().unwrap_or_else(|p| p.into_inner());
    brokers.entry(name.to_owned()).or_default().clone()
}

/// A `[brokers.connections]` entry of `type = "memory"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryBrokerConfig {
    /// Which process-wide broker (see [`named`]); default: the unnamed one.
    #[serde(default)]
    pub name: String,
}

/// Source settings: the one topic to read, and the consumer name
/// (default: the pipeline's, [`EndpointContext::consumer`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySourceConfig {
    /// The topic to read, as a list of exactly one.
    pub topics: Vec<String>,
    /// The consumer whose position is kept, so that the source resumes
    /// where it stopped. Default: `fnaa-<pipeline>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// Sink settings: the topic messages without a destination go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySinkConfig {
    /// Topic for events whose connector names no destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl MemoryBrokerConfig {
    fn broker(&self) -> Arc<MemoryBroker> {
        named(&self.name)
    }
}

impl Broker for MemoryBrokerConfig {
    fn kind(&self) -> &'static str {
        BROKER
    }

    fn describe(&self) -> String {
        format!("memory broker `{}`", self.name)
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
            let config: MemorySourceConfig = settings.require(BROKER, "source")?;
            let topic = crate::transport::broker::single_topic(BROKER, &config.topics)?;
            let consumer = config.consumer.unwrap_or_else(|| context.consumer());
            let source = MemorySource::new(self.broker().topic(topic), &consumer, context.delivery);
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn sink(
        &self,
        _context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        let config: MemorySinkConfig = settings.parse(BROKER, "sink")?.unwrap_or_default();
        Ok(Box::new(MemorySink::new(
            self.broker(),
            config.topic.as_deref(),
            SinkFaults::new(),
        )))
    }

    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(MemoryAdmin(self.broker())))
    }

    fn flow_source(&self, _pipeline: &str, queues: &[&str]) -> EndpointSettings {
        EndpointSettings::of(&MemorySourceConfig {
            topics: queues.iter().map(|q| (*q).to_owned()).collect(),
            consumer: None,
        })
    }

    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        EndpointSettings::of(&MemorySinkConfig {
            topic: Some(queue.to_owned()),
        })
    }
}

/// Creates and removes the topics of a memory broker.
#[derive(Debug)]
struct MemoryAdmin(Arc<MemoryBroker>);

impl QueueAdmin for MemoryAdmin {
    fn create<'a>(&'a self, name: &'a str, _layout: QueueLayout) -> BrokerFuture<'a, ()> {
        self.0.topic(name);
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BrokerFuture<'a, ()> {
        self.0.remove_topic(name);
        Box::pin(async { Ok(()) })
    }

    fn delete_consumer<'a>(&'a self, consumer: &'a str) -> BrokerFuture<'a, ()> {
        self.0.remove_consumer(consumer);
        Box::pin(async { Ok(()) })
    }
}
