//! The data plane as `fnaa serve` runs it: the embedded MQTT broker when
//! needed, and the pipelines declared in the configuration.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BrokersConfig, EndpointConfig, PipelineConfig};
use crate::embedded_mqtt::{EMBEDDED_BROKER, EmbeddedError, EmbeddedMode, EmbeddedMqtt};
use crate::outage::OutageMonitor;
use crate::pipeline::{
    Codec, DeadLetterSpec, MetricsSnapshot, NamedProcessor, Pipeline, PipelineSpec, PluginError,
    PluginFactory, Processor,
};
use crate::transport::{Broker, EndpointContext, Sink, Source, TransportError};

/// Why the data plane, or one of its pipelines, did not start.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("pipeline `{pipeline}`: {error}")]
    Pipeline {
        pipeline: String,
        #[source]
        error: BuildError,
    },
    #[error("pipeline `{0}` is declared twice")]
    Duplicate(String),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// Why a broker named by a pipeline or by `[flows]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("no broker `{name}` (known: {known:?})")]
    Unknown { name: String, known: Vec<String> },
    #[error("broker `embedded` is not running ([brokers.embedded_mqtt] mode = \"never\")")]
    EmbeddedNotRunning,
    #[error("broker `{name}`: {error}")]
    Config {
        name: String,
        #[source]
        error: TransportError,
    },
    #[error("broker `{0}` is configured; another organisation's broker cannot take its name")]
    Duplicate(String),
}

/// Why a pipeline cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("`routes` name output ports of the last processor, but there is none")]
    RoutesWithoutProcessor,
    #[error("route of port `{0}`: empty destination")]
    EmptyRoute(String),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{role}: broker `{broker}` is {kind}, but the {role} has `{section}` settings")]
    WrongSection {
        role: &'static str,
        broker: String,
        kind: &'static str,
        section: String,
    },
    #[error("{role}: {error}")]
    Endpoint {
        role: &'static str,
        #[source]
        error: TransportError,
    },
    #[error("{kind} `{plugin}` ({instance}): {error}")]
    Plugin {
        kind: &'static str,
        plugin: String,
        instance: String,
        error: Box<PluginError>,
    },
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
    /// Brokers of other organisations, added at run time for the pipelines
    /// that read their flows ([`DataPlane::connect_remote`]).
    remote: std::collections::BTreeMap<String, Arc<dyn Broker>>,
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

/// The process environment, as [`DataPlane::start_closed`] takes it.
pub fn process_environment() -> Arc<Env> {
    Arc::new(process_env)
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
        let plane = Self::start_closed(brokers, pipelines, plugins, env).await?;
        if let Some(embedded) = &plane.embedded {
            embedded.open()?;
        }
        Ok(plane)
    }

    /// [`DataPlane::start_with_env`], leaving the embedded broker's public
    /// listeners closed until [`DataPlane::open`]: pipelines started after
    /// this (those of FNAP subscriptions, say) can subscribe before devices
    /// publish.
    pub async fn start_closed(
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
            match EmbeddedMqtt::start_closed(&brokers.embedded_mqtt).await {
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
            remote: Default::default(),
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

    /// What [`DataPlane::open`] waits for: every pipeline consuming, or
    /// `timeout`; then the embedded broker's listeners open. Called without
    /// holding a lock on the data plane, so that it can go on meanwhile.
    pub fn opener(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), DataplaneError>> + use<> {
        let waits: Vec<_> = self
            .pipelines
            .iter()
            .map(|p| (p.name().to_owned(), p.ready()))
            .collect();
        let embedded = self.embedded.clone();
        async move {
            let waits = waits.into_iter().map(|(name, ready)| async move {
                (name, tokio::time::timeout(timeout, ready).await.is_ok())
            });
            for (name, ready) in futures::future::join_all(waits).await {
                if !ready {
                    tracing::warn!(pipeline = %name, "source not consuming after {timeout:?}; the embedded broker opens anyway");
                }
            }
            if let Some(embedded) = embedded {
                embedded.open()?;
            }
            Ok(())
        }
    }

    /// Opens the embedded broker's listeners once every pipeline consumes
    /// (see [`DataPlane::opener`]).
    pub async fn open(&self) -> Result<(), DataplaneError> {
        self.opener(READY_TIMEOUT).await
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
            .map_err(|error| DataplaneError::Pipeline {
                pipeline: config.name.clone(),
                error,
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
    pub fn queues(&self, name: &str) -> Result<crate::queues::FlowQueues, BrokerError> {
        crate::queues::FlowQueues::new(self.broker(name)?).map_err(|error| BrokerError::Config {
            name: name.to_owned(),
            error,
        })
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

    /// Makes `broker` (another organisation's, resolved without this
    /// host's environment) known as `name` to the pipelines added next.
    /// Replaces a broker of that name added before; a configured broker of
    /// that name cannot be replaced.
    pub fn connect_remote(
        &mut self,
        name: &str,
        broker: Arc<dyn Broker>,
    ) -> Result<(), BrokerError> {
        if self.brokers.connections.contains_key(name) || name == EMBEDDED_BROKER {
            return Err(BrokerError::Duplicate(name.to_owned()));
        }
        self.remote.insert(name.to_owned(), broker);
        Ok(())
    }

    /// Forgets a broker added with [`DataPlane::connect_remote`].
    pub fn disconnect_remote(&mut self, name: &str) {
        self.remote.remove(name);
    }

    /// Broker `name` with its settings resolved: `embedded`, one of
    /// `[brokers.connections]`, or one added by [`DataPlane::connect_remote`].
    pub fn broker(&self, name: &str) -> Result<Arc<dyn Broker>, BrokerError> {
        if let Some(remote) = self.remote.get(name) {
            return Ok(remote.clone());
        }
        let brokers = &self.brokers;
        if name == EMBEDDED_BROKER && !brokers.connections.contains_key(name) {
            return match &self.embedded {
                Some(e) => Ok(Arc::new(e.broker())),
                None => Err(BrokerError::EmbeddedNotRunning),
            };
        }
        let config = brokers
            .connections
            .get(name)
            .ok_or_else(|| BrokerError::Unknown {
                name: name.to_owned(),
                known: brokers
                    .connections
                    .keys()
                    .map(String::as_str)
                    .chain(self.embedded.as_ref().map(|_| EMBEDDED_BROKER))
                    .map(str::to_owned)
                    .collect(),
            })?;
        config
            .resolve(&*self.env)
            .map_err(|error| BrokerError::Config {
                name: name.to_owned(),
                error,
            })
    }

    async fn build(&self, p: &PipelineConfig) -> Result<PipelineSpec, BuildError> {
        let plugins = self.plugins.clone();
        let name = &p.name;
        if !p.routes.is_empty() && p.processors.is_empty() {
            return Err(BuildError::RoutesWithoutProcessor);
        }
        if let Some((port, _)) = p.routes.iter().find(|(_, d)| d.is_empty()) {
            return Err(BuildError::EmptyRoute(port.clone()));
        }
        let source_broker = self.broker(&p.source.broker)?;
        let sink_broker = self.broker(&p.sink.broker)?;
        check_section("source", &p.source, &*source_broker)?;
        check_section("sink", &p.sink, &*sink_broker)?;
        let (decoder_plugin, decoder_config) = connector_for(&p.source, &*source_broker);
        let (encoder_plugin, encoder_config) = connector_for(&p.sink, &*sink_broker);

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
                check_section("dead-letter", dl, &*broker)?;
                let (plugin, config) = connector_for(dl, &*broker);
                let encoder = instantiate_connector(
                    &plugins,
                    &plugin,
                    &format!("{name}/dead-letter"),
                    config,
                )
                .await?;
                let sink = self.sink(p, dl, &*broker, "dead-letter")?;
                Some(DeadLetterSpec { encoder, sink })
            }
            None => None,
        };
        let source = self.source(p, &*source_broker).await?;
        let sink = self.sink(p, &p.sink, &*sink_broker, "sink")?;
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

    fn context(
        p: &PipelineConfig,
        endpoint: &EndpointConfig,
        role: &'static str,
    ) -> EndpointContext {
        let monitor = Arc::new(OutageMonitor::new(
            format!(
                "pipeline `{}` {role} (broker `{}`)",
                p.name, endpoint.broker
            ),
            p.retry.reminder_interval(),
        ));
        EndpointContext::new(&p.name, role, p.delivery, p.retry.clone(), monitor)
    }

    async fn source(
        &self,
        p: &PipelineConfig,
        broker: &dyn Broker,
    ) -> Result<Box<dyn Source>, BuildError> {
        let context = Self::context(p, &p.source, "source");
        broker
            .source(&context, &p.source.settings)
            .await
            .map_err(|error| BuildError::Endpoint {
                role: "source",
                error,
            })
    }

    fn sink(
        &self,
        p: &PipelineConfig,
        endpoint: &EndpointConfig,
        broker: &dyn Broker,
        role: &'static str,
    ) -> Result<Box<dyn Sink>, BuildError> {
        let context = Self::context(p, endpoint, role);
        broker
            .sink(&context, &endpoint.settings)
            .map_err(|error| BuildError::Endpoint { role, error })
    }
}

/// At most the settings section of the broker's own kind.
fn check_section(
    role: &'static str,
    endpoint: &EndpointConfig,
    broker: &dyn Broker,
) -> Result<(), BuildError> {
    match &endpoint.section {
        Some(section) if section != broker.kind() => Err(BuildError::WrongSection {
            role,
            broker: endpoint.broker.clone(),
            kind: broker.kind(),
            section: section.clone(),
        }),
        _ => Ok(()),
    }
}

/// The connector plugin for an endpoint and its configuration: the one
/// named, or the binding of the broker's protocol, with what the broker
/// adds to its configuration.
fn connector_for(
    endpoint: &EndpointConfig,
    broker: &dyn Broker,
) -> (String, Vec<(String, String)>) {
    let plugin = endpoint
        .connector
        .clone()
        .unwrap_or_else(|| broker.default_connector().to_owned());
    let mut config = endpoint.connector_config.0.clone();
    broker.connector_defaults(&plugin, &mut config);
    (plugin, config)
}

/// Runs `make` (a plugin instantiation: compiles, so blocking) off the
/// async threads.
async fn instantiate<T: Send + 'static>(
    kind: &'static str,
    plugin: &str,
    instance: &str,
    make: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, BuildError> {
    let made = tokio::task::spawn_blocking(make).await;
    let made = made.unwrap_or_else(|e| Err(PluginError::Panicked(e.to_string())));
    made.map_err(|error| BuildError::Plugin {
        kind,
        plugin: plugin.to_owned(),
        instance: instance.to_owned(),
        error: Box::new(error),
    })
}

async fn instantiate_connector(
    plugins: &Arc<dyn PluginFactory>,
    plugin: &str,
    instance: &str,
    config: Vec<(String, String)>,
) -> Result<Box<dyn Codec>, BuildError> {
    let (f, p, i) = (plugins.clone(), plugin.to_owned(), instance.to_owned());
    instantiate("connector", plugin, instance, move || {
        f.connector(&p, &i, &config)
    })
    .await
}

async fn instantiate_processor(
    plugins: &Arc<dyn PluginFactory>,
    plugin: &str,
    instance: &str,
    config: Vec<(String, String)>,
) -> Result<Box<dyn Processor>, BuildError> {
    let (f, p, i) = (plugins.clone(), plugin.to_owned(), instance.to_owned());
    instantiate("processor", plugin, instance, move || {
        f.processor(&p, &i, &config)
    })
    .await
}
