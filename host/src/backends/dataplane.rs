//! Flows on a real broker and pipelines in the data plane: the
//! [`FlowProvisioner`] and [`PipelineController`] of `fnaa serve`.
//!
//! Every flow created over FNAP lives on one broker, `[flows] broker`: its
//! queue is named after the flow (Kafka topic, AMQP topic exchange, MQTT
//! topic). Subscriptions and processor instances run as data-plane
//! pipelines reading the input flows and writing the output flows, with
//! at-least-once delivery; a paused pipeline is stopped but keeps its
//! position (Kafka consumer group, durable AMQP queue, persistent MQTT
//! session), so it resumes where it stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fnaa_control::names::DnsName;
use fnaa_control::provision::{
    CopyFeed, FlowProvisioner, PipelineController, PipelineKind, PipelineSpec, PipelineStatus,
    ProvisionError,
};
use fnaa_control::store::{BrokerBinding, PluginRef, RunState};
use fnaa_dataplane::config::{PluginConfig, ProcessorConfig};
use fnaa_dataplane::queues::{FlowQueues, TopicLayout};
use fnaa_dataplane::transport::{Broker, BrokerConfig, consumer_name};
use fnaa_dataplane::{DataPlane, EndpointConfig, PipelineConfig};

pub use super::flows_config::FlowsConfig;

use super::peers::FnapPeers;
use super::relay::RelayBroker;
use super::relay::copy_reader::CopyReaders;
use tokio::sync::Mutex;

/// The data plane, shared by the pipeline controller and the host.
pub type SharedDataPlane = Arc<Mutex<DataPlane>>;

/// How long a started pipeline may take to consume before FNAP answers
/// anyway (events published before it consumes may then be missed by a
/// new subscription).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping pipeline may finish the batches in flight.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn provision_error(what: &str, error: impl std::fmt::Display) -> ProvisionError {
    ProvisionError(format!("{what}: {error}"))
}

/// Flow queues on the `[flows]` broker.
pub struct BrokerQueues {
    queues: FlowQueues,
    layout: TopicLayout,
    advertise: Vec<String>,
    tls: bool,
}

impl BrokerQueues {
    /// The queues of `config.broker` in `plane`; fails when that broker is
    /// unknown or not running.
    pub async fn new(plane: &SharedDataPlane, config: &FlowsConfig) -> anyhow::Result<Self> {
        let queues = plane
            .lock()
            .await
            .queues(&config.broker)
            .map_err(|e| anyhow::anyhow!("[flows] broker: {e}"))?;
        let advertise = if config.advertise.is_empty() {
            queues.servers()
        } else {
            config.advertise.clone()
        };
        Ok(BrokerQueues {
            tls: config.advertise_tls.unwrap_or_else(|| queues.tls()),
            layout: TopicLayout {
                partitions: config.kafka_partitions.max(1),
                replication: config.kafka_replication.max(1),
            },
            queues,
            advertise,
        })
    }

    /// The broker's protocol (`kafka`, `mqtt`, `amqp`).
    pub fn kind(&self) -> &'static str {
        self.queues.kind()
    }
}

#[async_trait::async_trait]
impl FlowProvisioner for BrokerQueues {
    async fn create_queue(&self, flow: &DnsName) -> Result<BrokerBinding, ProvisionError> {
        let topic = flow.to_string();
        self.queues
            .create(&topic, self.layout)
            .await
            .map_err(|e| provision_error(&format!("cannot create the queue of {flow}"), e))?;
        Ok(BrokerBinding {
            broker_type: self.queues.kind().to_owned(),
            topic,
            servers: self.advertise.clone(),
            tls: self.tls,
        })
    }

    async fn delete_queue(
        &self,
        flow: &DnsName,
        binding: Option<&BrokerBinding>,
    ) -> Result<(), ProvisionError> {
        let topic = binding.map_or_else(|| flow.to_string(), |b| b.topic.clone());
        self.queues
            .delete(&topic)
            .await
            .map_err(|e| provision_error(&format!("cannot delete the queue of {flow}"), e))
    }
}

/// Resolves the plugin of a processor to what the data plane loads (a
/// built-in name or a `.wasm` path), checking its version.
pub type PluginCatalog = dyn Fn(&PluginRef) -> Result<String, String> + Send + Sync;

/// What the controller remembers of a pipeline.
struct Entry {
    spec: PipelineSpec,
    state: RunState,
}

/// Runs subscriptions and processors as data-plane pipelines.
pub struct DataPlanePipelines {
    plane: SharedDataPlane,
    broker: String,
    queues: FlowQueues,
    config: FlowsConfig,
    catalog: Arc<PluginCatalog>,
    entries: Mutex<BTreeMap<String, Entry>>,
    wait_ready: AtomicBool,
    /// How relayed copy flows of other FNAAs are reached.
    peers: Arc<FnapPeers>,
    /// The readers of this host's copy flows that other FNAAs relay.
    copy_readers: CopyReaders,
}

impl DataPlanePipelines {
    /// Pipelines on the `[flows]` broker of `queues`, whose processors'
    /// plugins `catalog` resolves, reaching relayed copy flows through
    /// `peers`.
    pub fn new(
        plane: SharedDataPlane,
        queues: &BrokerQueues,
        config: &FlowsConfig,
        catalog: Arc<PluginCatalog>,
        peers: Arc<FnapPeers>,
    ) -> Self {
        DataPlanePipelines {
            plane,
            broker: config.broker.clone(),
            queues: queues.queues.clone(),
            config: config.clone(),
            catalog,
            entries: Mutex::default(),
            wait_ready: AtomicBool::new(false),
            peers,
            copy_readers: CopyReaders::default(),
        }
    }

    /// Whether starting a pipeline waits until it consumes. Off while the
    /// host restarts its pipelines (they resume from committed positions,
    /// so nothing is missed), on once it serves: a new subscription must
    /// not miss what is published right after FNAP confirmed it.
    pub fn wait_until_consuming(&self, wait: bool) {
        self.wait_ready.store(wait, Ordering::Relaxed);
    }

    /// The data-plane pipeline that runs `spec`, and for a spec reading
    /// another organisation's flow the broker it reads, to register as
    /// [`remote_broker_name`].
    fn pipeline_config(&self, spec: &PipelineSpec) -> Result<Planned, ProvisionError> {
        let remote = remote_input(spec, &self.peers)?;
        for endpoint in spec
            .inputs
            .iter()
            .filter(|e| !e.remote)
            .chain(&spec.outputs)
        {
            if endpoint.binding.broker_type != self.queues.kind() {
                return Err(ProvisionError(format!(
                    "flow {} lives on a {} broker, but this host's flows are on {} broker `{}`",
                    endpoint.flow,
                    endpoint.binding.broker_type,
                    self.queues.kind(),
                    self.broker
                )));
            }
        }
        let inputs: Vec<&str> = spec
            .inputs
            .iter()
            .map(|e| e.binding.topic.as_str())
            .collect();
        let outputs: Vec<&str> = spec
            .outputs
            .iter()
            .map(|e| e.binding.topic.as_str())
            .collect();
        let Some(first_output) = outputs.first() else {
            return Err(ProvisionError(
                "a pipeline needs at least one input and one output flow".into(),
            ));
        };
        if inputs.is_empty() {
            return Err(ProvisionError(
                "a pipeline needs at least one input and one output flow".into(),
            ));
        }
        let broker = self.queues.broker();
        let source = match &remote {
            Some(remote) => EndpointConfig::new(
                remote_broker_name(&spec.id),
                remote.kind(),
                remote.flow_source(&spec.id, &inputs),
            ),
            None => EndpointConfig::new(
                &self.broker,
                broker.kind(),
                broker.flow_source(&spec.id, &inputs),
            ),
        };
        let sink = EndpointConfig::new(&self.broker, broker.kind(), broker.flow_sink(first_output));
        let mut config = PipelineConfig::new(spec.id.clone(), source, sink);
        config.batch_size = self.config.batch_size;
        config.batch_timeout_ms = self.config.batch_timeout_ms;
        config.metrics_interval_s = 0;
        if let PipelineKind::Plugin {
            plugin,
            config: plugin_conf,
        } = &spec.kind
        {
            config.processors.push(ProcessorConfig {
                plugin: (self.catalog)(plugin).map_err(ProvisionError)?,
                config: plugin_config(plugin_conf)?,
            });
        }
        // With several outputs, a processor's port named after an output
        // flow's first label (or its whole name) writes to that flow; `out`
        // writes to the first output.
        if spec.outputs.len() > 1 {
            for (endpoint, topic) in spec.outputs.iter().zip(&outputs) {
                let name = endpoint.flow.to_string();
                let label = name.split('.').next().unwrap_or(&name).to_owned();
                config.routes.insert(label, (*topic).to_owned());
                config.routes.insert(name, (*topic).to_owned());
            }
            config
                .routes
                .insert("out".to_owned(), (*first_output).to_owned());
        }
        Ok(Planned { config, remote })
    }

    /// Starts `spec` in the data plane and waits (a while) until it consumes.
    async fn run(&self, spec: &PipelineSpec) -> Result<(), ProvisionError> {
        let Planned { config, remote } = self.pipeline_config(spec)?;
        let ready = {
            let mut plane = self.plane.lock().await;
            if let Some(remote) = remote {
                plane
                    .connect_remote(&remote_broker_name(&spec.id), remote)
                    .map_err(|e| ProvisionError(e.to_string()))?;
            }
            if let Err(error) = plane.add_pipeline(&config).await {
                plane.disconnect_remote(&remote_broker_name(&spec.id));
                return Err(ProvisionError(error.to_string()));
            }
            plane.pipeline(&spec.id).map(|p| p.ready())
        };
        if let Some(ready) = ready
            && self.wait_ready.load(Ordering::Relaxed)
            && tokio::time::timeout(READY_TIMEOUT, ready).await.is_err()
        {
            tracing::warn!(pipeline = %spec.id, "pipeline not consuming after {READY_TIMEOUT:?} (broker unreachable?); it catches up once it is");
        }
        Ok(())
    }

    /// Stops the data-plane pipeline `id`, if it runs.
    async fn halt(&self, id: &str) {
        let mut plane = self.plane.lock().await;
        plane.remove_pipeline(id, STOP_GRACE).await;
        plane.disconnect_remote(&remote_broker_name(id));
    }
}

/// A pipeline to add, and the other organisation's broker it reads.
struct Planned {
    config: PipelineConfig,
    remote: Option<Arc<dyn Broker>>,
}

/// The name under which the data plane knows the other organisation's
/// broker pipeline `id` reads.
fn remote_broker_name(id: &str) -> String {
    format!("remote:{id}")
}

/// The broker of the remote inputs of `spec` (all on one broker), resolved
/// with an empty environment so that none of this host's credentials go
/// to it; for a copy flow read by relay, the publisher's FNAA.
fn remote_input(
    spec: &PipelineSpec,
    peers: &Arc<FnapPeers>,
) -> Result<Option<Arc<dyn Broker>>, ProvisionError> {
    let remote: Vec<_> = spec.inputs.iter().filter(|e| e.remote).collect();
    let Some(first) = remote.first() else {
        return Ok(None);
    };
    if remote.len() != spec.inputs.len()
        || remote.iter().any(|e| {
            e.binding.servers != first.binding.servers
                || e.binding.broker_type != first.binding.broker_type
        })
    {
        return Err(ProvisionError(
            "a pipeline reads flows of one broker: all of this host's, or all of one other organisation's".into(),
        ));
    }
    if let Some(peer) = &first.relay {
        let relay = RelayBroker::new(peer.clone(), first.flow.to_string(), peers.clone());
        return Ok(Some(Arc::new(relay)));
    }
    let binding = &first.binding;
    let config = BrokerConfig::reaching(&binding.broker_type, &binding.servers, binding.tls)
        .map_err(|e| provision_error(&format!("cannot read {}", first.flow), e))?;
    let broker = config
        .resolve(&|_| None)
        .map_err(|e| provision_error(&format!("cannot read {}", first.flow), e))?;
    Ok(Some(broker))
}

/// A processor's JSON configuration as the plugin's key/value pairs:
/// strings as they are, numbers and booleans as text, arrays of those
/// comma-separated.
fn plugin_config(config: &serde_json::Value) -> Result<PluginConfig, ProvisionError> {
    use serde_json::Value;
    let scalar = |key: &str, v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ProvisionError(format!(
            "CONFIG key `{key}`: values are strings, numbers, booleans or arrays of them"
        ))),
    };
    let map = match config {
        Value::Null => return Ok(PluginConfig::default()),
        Value::Object(map) => map,
        _ => return Err(ProvisionError("CONFIG must be a JSON object".into())),
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let text = match value {
            Value::Null => continue,
            Value::Array(items) => items
                .iter()
                .map(|v| scalar(key, v))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            v => scalar(key, v)?,
        };
        out.push((key.clone(), text));
    }
    Ok(PluginConfig(out))
}

#[async_trait::async_trait]
impl PipelineController for DataPlanePipelines {
    async fn start(&self, spec: &PipelineSpec, state: RunState) -> Result<(), ProvisionError> {
        let mut entries = self.entries.lock().await;
        if let Some(entry) = entries.get(&spec.id) {
            if &entry.spec == spec {
                return Ok(());
            }
            return Err(ProvisionError(format!(
                "pipeline {} runs with another spec",
                spec.id
            )));
        }
        match state {
            RunState::Running => self.run(spec).await?,
            // Checked now so that a bad spec fails here, not at resume.
            RunState::Paused => {
                self.pipeline_config(spec)?;
            }
        }
        entries.insert(
            spec.id.clone(),
            Entry {
                spec: spec.clone(),
                state,
            },
        );
        Ok(())
    }

    async fn update(&self, spec: &PipelineSpec) -> Result<(), ProvisionError> {
        let mut entries = self.entries.lock().await;
        let Some(entry) = entries.get_mut(&spec.id) else {
            return Err(ProvisionError(format!("no pipeline {}", spec.id)));
        };
        self.pipeline_config(spec)?;
        if entry.state == RunState::Running {
            // Same name, same consumer group / queue / session: the new
            // pipeline resumes where the old one stopped.
            self.halt(&spec.id).await;
            if let Err(error) = self.run(spec).await {
                if let Err(again) = self.run(&entry.spec).await {
                    tracing::error!(pipeline = %spec.id, error = %again, "cannot restart the previous pipeline either");
                }
                return Err(error);
            }
        }
        entry.spec = spec.clone();
        Ok(())
    }

    async fn stop(&self, id: &str) -> Result<(), ProvisionError> {
        let mut entries = self.entries.lock().await;
        let Some(entry) = entries.remove(id) else {
            return Ok(());
        };
        self.halt(id).await;
        // Nothing resumes this pipeline: drop what its source kept, at
        // whichever broker it read.
        let queues = match remote_input(&entry.spec, &self.peers) {
            Ok(Some(remote)) => match FlowQueues::new(remote) {
                Ok(queues) => queues,
                Err(error) => {
                    tracing::warn!(pipeline = %id, %error, "cannot remove the consumer state of a stopped pipeline");
                    return Ok(());
                }
            },
            _ => self.queues.clone(),
        };
        if let Err(error) = queues.delete_consumer(&consumer_name(id)).await {
            tracing::warn!(pipeline = %id, %error, "cannot remove the consumer state of a stopped pipeline");
        }
        Ok(())
    }

    async fn pause(&self, id: &str) -> Result<(), ProvisionError> {
        let mut entries = self.entries.lock().await;
        let Some(entry) = entries.get_mut(id) else {
            return Err(ProvisionError(format!("no pipeline {id}")));
        };
        if entry.state == RunState::Running {
            self.halt(id).await;
            entry.state = RunState::Paused;
        }
        Ok(())
    }

    async fn resume(&self, id: &str) -> Result<(), ProvisionError> {
        let mut entries = self.entries.lock().await;
        let Some(entry) = entries.get_mut(id) else {
            return Err(ProvisionError(format!("no pipeline {id}")));
        };
        if entry.state == RunState::Paused {
            self.run(&entry.spec).await?;
            entry.state = RunState::Running;
        }
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<Option<PipelineStatus>, ProvisionError> {
        let state = match self.entries.lock().await.get(id) {
            Some(entry) => entry.state,
            None => return Ok(None),
        };
        let plane = self.plane.lock().await;
        let status = match (state, plane.pipeline(id)) {
            (RunState::Paused, _) => PipelineStatus {
                state: "paused".into(),
                detail: String::new(),
            },
            (RunState::Running, Some(pipeline)) => {
                let m = pipeline.metrics().snapshot();
                PipelineStatus {
                    state: "running".into(),
                    detail: format!(
                        "events_in={} events_out={} filtered={} errors={} dead_lettered={}",
                        m.events_in,
                        m.events_out,
                        m.events_filtered,
                        m.decode_errors
                            + m.process_errors
                            + m.encode_errors
                            + m.publish_failures
                            + m.unroutable,
                        m.dead_lettered
                    ),
                }
            }
            (RunState::Running, None) => PipelineStatus {
                state: "failed".into(),
                detail: "the pipeline is not running".into(),
            },
        };
        Ok(Some(status))
    }

    async fn read_copy(
        &self,
        copy: &DnsName,
        binding: &BrokerBinding,
    ) -> Result<CopyFeed, ProvisionError> {
        self.copy_readers
            .open(self.queues.broker().clone(), copy, binding)
            .await
    }

    async fn forget_copy_reader(
        &self,
        copy: &DnsName,
        _binding: &BrokerBinding,
    ) -> Result<(), ProvisionError> {
        self.copy_readers
            .forget(self.queues.broker().clone(), copy)
            .await
    }
}
