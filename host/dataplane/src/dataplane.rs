//! The data plane as `fnaa serve` runs it: the embedded MQTT broker when
//! needed, and the pipelines declared in the configuration.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BrokerConfig, BrokersConfig, PipelineConfig, SinkConfig, SourceConfig};
use crate::embedded_mqtt::{EMBEDDED_BROKER, EmbeddedError, EmbeddedMode, EmbeddedMqtt};
use crate::outage::OutageMonitor;
use crate::pipeline::{
    Codec, DeadLetterSpec, MetricsSnapshot, NamedProcessor, Pipeline, PipelineSpec, PluginFactory,
    Processor,
};
use crate::transport::amqp::{AmqpSink, AmqpSource};
use crate::transport::kafka::{KafkaSink, KafkaSource};
use crate::transport::mqtt::{MqttBrokerConfig, MqttSink, MqttSource, MqttVersion};
use crate::transport::{DeliveryMode, Sink, Source, TransportError};

/// Why the data plane did not start.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("pipeline `{pipeline}`: {reason}")]
    Pipeline { pipeline: String, reason: String },
    #[error("pipeline `{0}` is declared twice")]
    Duplicate(String),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
}

/// A resolved broker: its settings with environment variables applied.
#[derive(Debug, Clone)]
pub(crate) enum Broker {
    Kafka(crate::transport::kafka::KafkaBrokerConfig),
    Mqtt(MqttBrokerConfig),
    Amqp(crate::transport::amqp::AmqpBrokerConfig),
}

impl Broker {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Broker::Kafka(_) => "kafka",
            Broker::Mqtt(_) => "mqtt",
            Broker::Amqp(_) => "amqp",
        }
    }
}

/// How long [`DataPlane::start`] waits for the pipelines' sources to
/// consume.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads an environment variable (credentials missing from the
/// configuration).
pub type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The running data plane.
pub struct DataPlane {
    embedded: Option<EmbeddedMqtt>,
    pipelines: Vec<Pipeline>,
    brokers: BrokersConfig,
    plugins: Arc<dyn PluginFactory>,
    env: Arc<Env>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("embedded", &self.embedded)
            .field("pipelines", &self.pipelines)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl DataPlane {
    /// Starts the embedded broker (when the configuration calls for it) and
    /// every pipeline. Credentials missing from the configuration come from
    /// the process environment.
    pub async fn start(
        brokers: &BrokersConfig,
        pipelines: &[PipelineConfig],
        plugins: Arc<dyn PluginFactory>,
    ) -> Result<DataPlane, DataplaneError> {
        Self::start_with_env(brokers, pipelines, plugins, Arc::new(process_env)).await
    }

    /// [`DataPlane::start`] with the environment given by `env`.
    pub async fn start_with_env(
        brokers: &BrokersConfig,
        pipelines: &[PipelineConfig],
        plugins: Arc<dyn PluginFactory>,
        env: Arc<Env>,
    ) -> Result<DataPlane, DataplaneError> {
        let mut names = HashSet::new();
        for p in pipelines {
            if !names.insert(p.name.as_str()) {
                return Err(DataplaneError::Duplicate(p.name.clone()));
            }
        }
        let uses_embedded = pipelines.iter().any(|p| {
            p.source.broker == EMBEDDED_BROKER
                || p.sink.broker == EMBEDDED_BROKER
                || p.dead_letter
                    .as_ref()
                    .is_some_and(|d| d.broker == EMBEDDED_BROKER)
        });
        let start_embedded = match brokers.embedded_mqtt.mode {
            EmbeddedMode::Always => true,
            EmbeddedMode::Never => false,
            EmbeddedMode::Auto => brokers.connections.is_empty() || uses_embedded,
        };
        let embedded = if !start_embedded {
            None
        } else {
            match EmbeddedMqtt::start(&brokers.embedded_mqtt).await {
                Ok(e) => Some(e),
                // Nothing needs it: a host that cannot have its own broker
                // (another one on the port) still serves everything else.
                Err(e @ EmbeddedError::Bind { .. })
                    if brokers.embedded_mqtt.mode == EmbeddedMode::Auto && !uses_embedded =>
                {
                    tracing::warn!("{e}; running without the embedded MQTT broker");
                    None
                }
                Err(e) => return Err(e.into()),
            }
        };
        let mut plane = DataPlane {
            embedded,
            pipelines: Vec::new(),
            brokers: brokers.clone(),
            plugins,
            env,
        };
        for p in pipelines {
            if let Err(e) = plane.add_pipeline(p).await {
                plane.shutdown(Duration::from_secs(5)).await;
                return Err(e);
            }
        }
        // Return once every source consumes, so that what is published
        // after start reaches the pipelines; a broker that is down does not
        // hold the host up for long (its pipeline catches up later).
        let waits = plane.pipelines.iter().map(|p| async move {
            (
                p.name(),
                tokio::time::timeout(READY_TIMEOUT, p.ready()).await,
            )
        });
        for (name, ready) in futures::future::join_all(waits).await {
            if ready.is_err() {
                tracing::warn!(pipeline = %name, "source not consuming after {READY_TIMEOUT:?} (broker unreachable?); the pipeline catches up once it is");
            }
        }
        Ok(plane)
    }

    /// Starts one more pipeline (one created at run time, say) on the
    /// brokers and plugins the data plane started with.
    pub async fn add_pipeline(&mut self, config: &PipelineConfig) -> Result<(), DataplaneError> {
        if self.pipelines.iter().any(|p| p.name() == config.name) {
            return Err(DataplaneError::Duplicate(config.name.clone()));
        }
        let spec = self
            .build(config)
            .await
            .map_err(|reason| DataplaneError::Pipeline {
                pipeline: config.name.clone(),
                reason,
            })?;
        self.pipelines.push(Pipeline::start(spec));
        Ok(())
    }

    /// Stops pipeline `name` (letting batches in flight finish within
    /// `grace`) and forgets it; false when there is no such pipeline.
    pub async fn remove_pipeline(&mut self, name: &str, grace: Duration) -> bool {
        match self.pipelines.iter().position(|p| p.name() == name) {
            Some(i) => {
                self.pipelines.remove(i).stop(grace).await;
                true
            }
            None => false,
        }
    }

    /// The queues of broker `name` (`embedded` or a configured one), to
    /// create and remove the queues of flows.
    pub fn queues(&self, name: &str) -> Result<crate::queues::FlowQueues, String> {
        crate::queues::FlowQueues::new(self.broker(name)?)
            .map_err(|e| format!("broker `{name}`: {e}"))
    }

    /// The running pipeline `name`.
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name() == name)
    }

    /// The embedded MQTT broker, when it runs.
    pub fn embedded(&self) -> Option<&EmbeddedMqtt> {
        self.embedded.as_ref()
    }

    /// The running pipelines.
    pub fn pipelines(&self) -> &[Pipeline] {
        &self.pipelines
    }

    /// Every pipeline's metrics, by name.
    pub fn metrics(&self) -> Vec<(String, MetricsSnapshot)> {
        self.pipelines
            .iter()
            .map(|p| (p.name().to_owned(), p.metrics().snapshot()))
            .collect()
    }

    /// Stops every pipeline, letting batches in flight finish within `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop_pipelines(grace).await;
    }

    /// Stops and forgets every pipeline, letting batches in flight finish
    /// within `grace`; the embedded broker goes on.
    pub async fn stop_pipelines(&mut self, grace: Duration) {
        let pipelines = std::mem::take(&mut self.pipelines);
        futures::future::join_all(pipelines.into_iter().map(|p| p.stop(grace))).await;
    }

    pub(crate) fn broker(&self, name: &str) -> Result<Broker, String> {
        let brokers = &self.brokers;
        let env = &*self.env;
        if name == EMBEDDED_BROKER && !brokers.connections.contains_key(name) {
            return match &self.embedded {
                Some(e) => Ok(Broker::Mqtt(e.broker_config())),
                None => Err(
                    "broker `embedded` is not running ([brokers.embedded_mqtt] mode = \"never\")"
                        .into(),
                ),
            };
        }
        let config = brokers.connections.get(name).ok_or_else(|| {
            let known: Vec<&str> = brokers
                .connections
                .keys()
                .map(String::as_str)
                .chain(self.embedded.as_ref().map(|_| EMBEDDED_BROKER))
                .collect();
            format!("no broker `{name}` (known: {known:?})")
        })?;
        let resolved = match config {
            BrokerConfig::Kafka(k) => k.resolve(env).map(Broker::Kafka),
            BrokerConfig::Mqtt(m) => m.resolve(env).map(Broker::Mqtt),
            BrokerConfig::Amqp(a) => a.resolve(env).map(Broker::Amqp),
        };
        resolved.map_err(|e| format!("broker `{name}`: {e}"))
    }

    async fn build(&self, p: &PipelineConfig) -> Result<PipelineSpec, String> {
        let plugins = self.plugins.clone();
        let name = &p.name;
        if !p.routes.is_empty() && p.processors.is_empty() {
            return Err(
                "`routes` name output ports of the last processor, but there is none".into(),
            );
        }
        if let Some((port, _)) = p.routes.iter().find(|(_, d)| d.is_empty()) {
            return Err(format!("route of port `{port}`: empty destination"));
        }
        let source_broker = self.broker(&p.source.broker)?;
        let sink_broker = self.broker(&p.sink.broker)?;
        let (decoder_plugin, decoder_config) = connector_for(
            &p.source.connector,
            &p.source.connector_config.0,
            &source_broker,
        );
        let (encoder_plugin, encoder_config) =
            connector_for(&p.sink.connector, &p.sink.connector_config.0, &sink_broker);

        // Plugins first: a bad plugin configuration should fail before any
        // broker connection is made.
        let decoder = instantiate_connector(
            &plugins,
            &decoder_plugin,
            &format!("{name}/source"),
            decoder_config,
        )
        .await?;
        let encoder = instantiate_connector(
            &plugins,
            &encoder_plugin,
            &format!("{name}/sink"),
            encoder_config,
        )
        .await?;
        let mut processors = Vec::new();
        for (i, pc) in p.processors.iter().enumerate() {
            let processor = instantiate_processor(
                &plugins,
                &pc.plugin,
                &format!("{name}/processor-{i}"),
                pc.config.0.clone(),
            )
            .await?;
            processors.push(NamedProcessor {
                plugin: pc.plugin.clone(),
                processor,
            });
        }
        let dead_letter = match &p.dead_letter {
            Some(dl) => {
                let broker = self.broker(&dl.broker)?;
                let (plugin, config) =
                    connector_for(&dl.connector, &dl.connector_config.0, &broker);
                let encoder = instantiate_connector(
                    &plugins,
                    &plugin,
                    &format!("{name}/dead-letter"),
                    config,
                )
                .await?;
                let sink = self.sink(p, dl, &broker, "dead-letter")?;
                Some(DeadLetterSpec { encoder, sink })
            }
            None => None,
        };
        let source = self.source(p, &p.source, &source_broker).await?;
        let sink = self.sink(p, &p.sink, &sink_broker, "sink")?;
        Ok(PipelineSpec {
            name: name.clone(),
            mode: p.delivery,
            batch_size: p.batch_size,
            batch_timeout: Duration::from_millis(p.batch_timeout_ms),
            queue_batches: p.queue_batches,
            source,
            decoder_plugin,
            decoder,
            processors,
            encoder_plugin,
            encoder,
            sink,
            dead_letter,
            routes: p.routes.clone(),
            processor_retry: p.processor_retry.clone(),
            metrics_interval: Duration::from_secs(p.metrics_interval_s),
        })
    }

    async fn source(
        &self,
        p: &PipelineConfig,
        s: &SourceConfig,
        broker: &Broker,
    ) -> Result<Box<dyn Source>, String> {
        let monitor = Arc::new(OutageMonitor::new(
            format!("pipeline `{}` source (broker `{}`)", p.name, s.broker),
            p.retry.reminder_interval(),
        ));
        let client_id = client_id(&format!("fnaa-{}-source", p.name));
        let sections = [
            ("kafka", s.kafka.is_some()),
            ("mqtt", s.mqtt.is_some()),
            ("amqp", s.amqp.is_some()),
        ];
        check_sections("source", &s.broker, broker.kind(), &sections)?;
        let err = |e: TransportError| format!("source: {e}");
        Ok(match broker {
            Broker::Kafka(b) => {
                let c = s.kafka.as_ref().ok_or("source: missing `kafka` settings")?;
                Box::new(
                    KafkaSource::new(b, c, &format!("fnaa-{}", p.name), p.delivery, monitor)
                        .await
                        .map_err(err)?,
                )
            }
            Broker::Mqtt(b) => {
                let c = s.mqtt.as_ref().ok_or("source: missing `mqtt` settings")?;
                if p.delivery == DeliveryMode::AtLeastOnce && c.qos == 0 {
                    tracing::warn!(pipeline = %p.name, "MQTT source with QoS 0 cannot be at-least-once: the broker does not resend what we miss");
                }
                Box::new(
                    MqttSource::new(b, c, &client_id, p.delivery, p.retry.clone(), monitor)
                        .map_err(err)?,
                )
            }
            Broker::Amqp(b) => {
                let c = s.amqp.as_ref().ok_or("source: missing `amqp` settings")?;
                Box::new(
                    AmqpSource::new(b, c, &client_id, p.delivery, p.retry.clone(), monitor)
                        .map_err(err)?,
                )
            }
        })
    }

    fn sink(
        &self,
        p: &PipelineConfig,
        s: &SinkConfig,
        broker: &Broker,
        role: &str,
    ) -> Result<Box<dyn Sink>, String> {
        let monitor = Arc::new(OutageMonitor::new(
            format!("pipeline `{}` {role} (broker `{}`)", p.name, s.broker),
            p.retry.reminder_interval(),
        ));
        let client_id = client_id(&format!("fnaa-{}-{role}", p.name));
        let sections = [
            ("kafka", s.kafka.is_some()),
            ("mqtt", s.mqtt.is_some()),
            ("amqp", s.amqp.is_some()),
        ];
        check_sections(role, &s.broker, broker.kind(), &sections)?;
        let err = |e: TransportError| format!("{role}: {e}");
        Ok(match broker {
            Broker::Kafka(b) => {
                let c = s.kafka.clone().unwrap_or_default();
                Box::new(KafkaSink::new(b, &c, p.retry.clone(), monitor).map_err(err)?)
            }
            Broker::Mqtt(b) => {
                let c = s
                    .mqtt
                    .clone()
                    .unwrap_or_else(|| crate::transport::mqtt::MqttSinkConfig {
                        topic: None,
                        ..crate::transport::mqtt::MqttSinkConfig::new("")
                    });
                if p.delivery == DeliveryMode::AtLeastOnce && c.qos == 0 {
                    tracing::warn!(pipeline = %p.name, "MQTT {role} with QoS 0 cannot be at-least-once: nothing confirms delivery");
                }
                Box::new(MqttSink::new(b, &c, &client_id, p.retry.clone(), monitor).map_err(err)?)
            }
            Broker::Amqp(b) => {
                let c = s.amqp.clone().unwrap_or_default();
                Box::new(AmqpSink::new(b, &c, &client_id, p.retry.clone(), monitor))
            }
        })
    }
}

/// A client id brokers accept: rumqttd refuses `+ $ # /` (and rumqttd
/// 0.20 then fails every later connection of the same id, bytebeamio/rumqtt
/// #1062), so they become `_`.
fn client_id(wanted: &str) -> String {
    wanted
        .chars()
        .map(|c| if "+$#/".contains(c) { '_' } else { c })
        .collect()
}

/// At most the settings section of the broker's own kind.
fn check_sections(
    role: &str,
    broker: &str,
    kind: &str,
    sections: &[(&str, bool)],
) -> Result<(), String> {
    for (section, present) in sections {
        if *present && *section != kind {
            return Err(format!(
                "{role}: broker `{broker}` is {kind}, but the {role} has `{section}` settings"
            ));
        }
    }
    Ok(())
}

/// The connector plugin for an endpoint and its configuration: the one
/// named, or the binding of the broker's protocol. The MQTT binding learns
/// the broker's protocol version unless told otherwise.
fn connector_for(
    named: &Option<String>,
    config: &[(String, String)],
    broker: &Broker,
) -> (String, Vec<(String, String)>) {
    let plugin = named.clone().unwrap_or_else(|| broker.kind().to_owned());
    let mut config = config.to_vec();
    if plugin == "mqtt"
        && let Broker::Mqtt(b) = broker
        && b.version == MqttVersion::V311
        && !config.iter().any(|(k, _)| k == "version")
    {
        config.push(("version".into(), "3.1.1".into()));
    }
    (plugin, config)
}

async fn instantiate_connector(
    plugins: &Arc<dyn PluginFactory>,
    plugin: &str,
    instance: &str,
    config: Vec<(String, String)>,
) -> Result<Box<dyn Codec>, String> {
    let (f, p, i) = (plugins.clone(), plugin.to_owned(), instance.to_owned());
    tokio::task::spawn_blocking(move || f.connector(&p, &i, &config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("connector `{plugin}` ({instance}): {e}"))
}

async fn instantiate_processor(
    plugins: &Arc<dyn PluginFactory>,
    plugin: &str,
    instance: &str,
    config: Vec<(String, String)>,
) -> Result<Box<dyn Processor>, String> {
    let (f, p, i) = (plugins.clone(), plugin.to_owned(), instance.to_owned());
    tokio::task::spawn_blocking(move || f.processor(&p, &i, &config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("processor `{plugin}` ({instance}): {e}"))
}
