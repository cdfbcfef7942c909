//! The `[flows]` section of `fnaa serve`: where flows created over FNAP
//! live and how their pipelines run.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

/// The `[flows]` section: where flows created over FNAP live and how their
/// pipelines run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowsConfig {
    /// Broker the queues of new flows are created on: `embedded` (the
    /// default, the host's own MQTT broker) or a name of
    /// `[brokers.connections]`.
    #[serde(default = "default_broker")]
    pub broker: String,
    /// Broker addresses published for the flows (`server=` of DESCRIBE
    /// FLOW, the flow's `_queue` SRV record), `host:port`. Default: the
    /// address the host itself uses, which only suits a private network.
    #[serde(default)]
    pub advertise: Vec<String>,
    /// Whether subscribers reach the advertised broker over TLS. Default:
    /// as the host reaches it.
    pub advertise_tls: Option<bool>,
    /// Partitions of a new flow's Kafka topic.
    #[serde(default = "one")]
    pub kafka_partitions: i32,
    /// Replication factor of a new flow's Kafka topic.
    #[serde(default = "one")]
    pub kafka_replication: i32,
    /// Directory of plugins that processors created over FNAP may run
    /// besides the built-in ones: `PLUGIN name@1.2.0` runs
    /// `<plugin_dir>/name@1.2.0.wasm`, else `<plugin_dir>/name.wasm` when
    /// that plugin reports version 1.2.0. Absent: built-in plugins only.
    pub plugin_dir: Option<PathBuf>,
    /// Most events per batch in these pipelines.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest wait for a batch to fill, in ms.
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
}

fn default_broker() -> String {
    fnaa_dataplane::embedded_mqtt::EMBEDDED_BROKER.to_owned()
}

fn one() -> i32 {
    1
}

fn default_batch_size() -> usize {
    500
}

fn default_batch_timeout_ms() -> u64 {
    5
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            broker: default_broker(),
            advertise: Vec::new(),
            advertise_tls: None,
            kafka_partitions: 1,
            kafka_replication: 1,
            plugin_dir: None,
            batch_size: default_batch_size(),
            batch_timeout_ms: default_batch_timeout_ms(),
        }
    }
}
