//! The data plane's sections of the host configuration: `[brokers]` and
//! `[[pipelines]]`. The `///` docs of every field are the user
//! documentation.
//!
//! ```toml
//! [brokers.embedded_mqtt]          # runs when no broker is configured
//! listen = "127.0.0.1:11883"
//!
//! [brokers.connections.rabbit]     # credentials from RABBITMQ_* if unset
//! type = "amqp"
//!
//! [[pipelines]]
//! name = "edge-to-rabbit"
//! delivery = "at-least-once"
//! source = { broker = "embedded", mqtt = { topics = ["sensors/#"] }, connector_config = { "raw.source" = "/edge", "raw.type" = "reading" } }
//! processors = [{ plugin = "bridge" }]
//! sink = { broker = "rabbit", amqp = { exchange = "readings" } }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::backoff::RetryConfig;
use crate::embedded_mqtt::EmbeddedMqttConfig;
use crate::pipeline::ProcessorRetryConfig;
pub use crate::transport::BrokerConfig;
use crate::transport::{DeliveryMode, EndpointSettings};

/// The `[brokers]` section: the embedded MQTT broker and the external
/// brokers flows live on.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokersConfig {
    /// The MQTT broker built into the host (`[brokers.embedded_mqtt]`).
    /// Pipelines reach it as broker `embedded`.
    #[serde(default)]
    pub embedded_mqtt: EmbeddedMqttConfig,
    /// External brokers by name (`[brokers.connections.<name>]`), each with
    /// a `type` that says which kind of broker it is and so which settings
    /// it takes (see [`BrokerConfig`]).
    #[serde(default)]
    pub connections: BTreeMap<String, BrokerConfig>,
}

/// Key/value configuration for a plugin instance. TOML strings, numbers
/// and booleans are accepted and handed to the plugin as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginConfig(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for PluginConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PluginConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of strings, numbers or booleans")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PluginConfig, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = match map.next_value::<Scalar>()? {
                        Scalar::S(s) => s,
                        Scalar::I(i) => i.to_string(),
                        Scalar::F(f) => f.to_string(),
                        Scalar::B(b) => b.to_string(),
                    };
                    out.push((key, value));
                }
                Ok(PluginConfig(out))
            }
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            F(f64),
            B(bool),
        }
        deserializer.deserialize_map(V)
    }
}

impl Serialize for PluginConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
    }
}

impl JsonSchema for PluginConfig {
    fn schema_name() -> Cow<'static, str> {
        "PluginConfig".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": { "type": ["string", "number", "boolean"] }
        })
    }
}

/// One `[[pipelines]]` entry: moves events from a source flow to a sink
/// flow through connector and processor plugins.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Unique name; it names consumer groups, client ids and logs.
    pub name: String,
    /// `at-least-once` (default): nothing acknowledged before the sink
    /// confirmed it, nothing lost across outages and restarts. `latest`:
    /// real-time flows that resume at the live point and discard the
    /// backlog.
    #[serde(default)]
    pub delivery: DeliveryMode,
    /// Most events per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest wait for a batch to fill once its first event arrived, in ms.
    #[serde(default = "default_batch_timeout")]
    pub batch_timeout_ms: u64,
    /// Batches waiting between two stages at most; with `batch_size` it
    /// bounds the memory a stalled sink can make the pipeline hold.
    #[serde(default = "default_queue_batches")]
    pub queue_batches: usize,
    /// Where events come from.
    #[schemars(with = "SourceFields")]
    pub source: SourceConfig,
    /// Processor plugins the events go through, in order; each one's `out`
    /// port feeds the next. None: events go straight from source to sink.
    #[serde(default)]
    pub processors: Vec<ProcessorConfig>,
    /// Where events go.
    #[schemars(with = "SinkFields")]
    pub sink: SinkConfig,
    /// Output ports of the last processor and the destination (Kafka topic,
    /// MQTT topic, AMQP exchange on the sink's broker) each port's events
    /// are published to, e.g. `{ alerts = "alerts", rest = "archive" }`.
    /// Ports not listed are dropped. Empty (default): port `out` goes to
    /// the sink's own destination.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// Where events go that cannot be decoded, processed, encoded or
    /// published, with the failure in `deadletter*` extension attributes.
    /// Absent: such events are logged as errors, counted and dropped.
    #[schemars(with = "Option<SinkFields>")]
    pub dead_letter: Option<SinkConfig>,
    /// Reconnect timing for the pipeline's brokers and outage reminders.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Retries of failed plugin calls before events are dead-lettered.
    #[serde(default)]
    pub processor_retry: ProcessorRetryConfig,
    /// How often the pipeline's metrics are logged, in seconds (0: never).
    #[serde(default = "default_metrics_interval")]
    pub metrics_interval_s: u64,
}

impl PipelineConfig {
    /// A pipeline from `source` to `sink` with every other setting at its
    /// default.
    pub fn new(name: impl Into<String>, source: SourceConfig, sink: SinkConfig) -> Self {
        PipelineConfig {
            name: name.into(),
            delivery: DeliveryMode::default(),
            batch_size: default_batch_size(),
            batch_timeout_ms: default_batch_timeout(),
            queue_batches: default_queue_batches(),
            source,
            processors: Vec::new(),
            sink,
            routes: BTreeMap::new(),
            dead_letter: None,
            retry: RetryConfig::default(),
            processor_retry: ProcessorRetryConfig::default(),
            metrics_interval_s: default_metrics_interval(),
        }
    }
}

fn default_batch_size() -> usize {
    500
}

fn default_batch_timeout() -> u64 {
    5
}

fn default_queue_batches() -> usize {
    4
}

fn default_metrics_interval() -> u64 {
    60
}

/// A processor plugin instance in a pipeline.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// Plugin name (`bridge`, `signal`, ... or an installed plugin).
    pub plugin: String,
    /// The plugin's configuration.
    #[serde(default)]
    pub config: PluginConfig,
}

/// The source of a pipeline: a broker, what to read there, and the
/// connector that decodes the messages.
///
/// * `broker`: a broker of `[brokers.connections]`, or `embedded`.
/// * `connector`: connector plugin. Default: the CloudEvents binding of the
///   broker's protocol (`kafka`, `mqtt`, `amqp`, ...); `raw` wraps plain
///   payloads.
/// * `connector_config`: the connector's configuration (`mode`,
///   `raw.source`, ...).
/// * a section named after the broker's type (`kafka = { topics = [...] }`,
///   `mqtt = { ... }`, `amqp = { ... }`): what to read; see the broker's
///   source settings.
pub type SourceConfig = EndpointConfig;

/// The sink of a pipeline (or its dead-letter flow): a broker, where to
/// publish there, and the connector that encodes the events. Fields as
/// [`SourceConfig`]; the connector's configuration takes `mode`,
/// `destination`, `routing_key`, `var.*`, ...
pub type SinkConfig = EndpointConfig;

/// One end of a pipeline (see [`SourceConfig`] and [`SinkConfig`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointConfig {
    /// A broker of `[brokers.connections]`, or `embedded`.
    pub broker: String,
    /// Connector plugin; default: the binding of the broker's protocol.
    pub connector: Option<String>,
    /// The connector's configuration.
    pub connector_config: PluginConfig,
    /// The type of broker the settings section was named after, if any.
    pub section: Option<String>,
    /// The broker's own settings (that section), parsed by the broker.
    pub settings: EndpointSettings,
}

impl EndpointConfig {
    /// An endpoint on broker `broker` with the settings of a broker of type
    /// `kind`.
    pub fn new(broker: impl Into<String>, kind: &str, settings: EndpointSettings) -> Self {
        EndpointConfig {
            broker: broker.into(),
            section: settings.0.as_ref().map(|_| kind.to_owned()),
            settings,
            ..EndpointConfig::default()
        }
    }
}

pub use crate::transport::{SinkFields, SourceFields};

const ENDPOINT_FIELDS: &[&str] = &["broker", "connector", "connector_config"];

impl<'de> Deserialize<'de> for EndpointConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndpointConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table with `broker` and the settings of its type")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EndpointConfig, A::Error> {
                use serde::de::Error;
                let mut out = EndpointConfig::default();
                let mut broker = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "broker" => broker = Some(map.next_value::<String>()?),
                        "connector" => out.connector = Some(map.next_value()?),
                        "connector_config" => out.connector_config = map.next_value()?,
                        kind if BrokerConfig::KINDS.contains(&kind) => {
                            if let Some(other) = &out.section {
                                return Err(A::Error::custom(format!(
                                    "settings for two types of broker, `{other}` and `{kind}`"
                                )));
                            }
                            out.settings = EndpointSettings(Some(map.next_value()?));
                            out.section = Some(key);
                        }
                        _ => {
                            let expected: Vec<String> = ENDPOINT_FIELDS
                                .iter()
                                .chain(BrokerConfig::KINDS)
                                .map(|f| format!("`{f}`"))
                                .collect();
                            return Err(A::Error::custom(format!(
                                "unknown field `{key}`, expected one of {}",
                                expected.join(", ")
                            )));
                        }
                    }
                }
                out.broker = broker.ok_or_else(|| A::Error::missing_field("broker"))?;
                Ok(out)
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        brokers: BrokersConfig,
        #[serde(default)]
        pipelines: Vec<PipelineConfig>,
    }

    const EXAMPLE: &str = r#"
[brokers.embedded_mqtt]
listen = "127.0.0.1:11883"

[brokers.connections.rabbit]
type = "amqp"
host = "127.0.0.1"
password = "s3cret"

[brokers.connections.kafka]
type = "kafka"
bootstrap_servers = "127.0.0.1:9092"
properties = { "sasl.password" = "also-secret" }

[[pipelines]]
name = "kytos"
delivery = "latest"
source = { broker = "embedded", mqtt = { topics = ["kytos/#"], qos = 1 } }
processors = [{ plugin = "bridge" }, { plugin = "signal", config = { threshold = 3, enabled = true } }]
sink = { broker = "rabbit", connector_config = { destination = "kytos.{category}", routing_key = "{category}.{type}" }, amqp = { mandatory = true } }
dead_letter = { broker = "kafka", kafka = { topic = "dlq" } }
"#;

    #[test]
    fn parses_the_example_and_hides_secrets() {
        let doc: Doc = toml::from_str(EXAMPLE).unwrap();
        let p = &doc.pipelines[0];
        assert_eq!(p.delivery, DeliveryMode::Latest);
        assert_eq!(p.batch_size, 500);
        let mut config = p.processors[1].config.0.clone();
        config.sort();
        assert_eq!(
            config,
            vec![
                ("enabled".to_owned(), "true".to_owned()),
                ("threshold".to_owned(), "3".to_owned())
            ]
        );
        assert!(matches!(
            doc.brokers.connections["rabbit"],
            BrokerConfig::Amqp(_)
        ));
        let debug = format!("{doc:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("also-secret"),
            "{debug}"
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        // A broker's own section is checked by the broker, when the
        // pipeline is built.
        let bad = EXAMPLE.replace("mandatory = true", "mandatry = true");
        let doc = toml::from_str::<Doc>(&bad).unwrap();
        let sink = &doc.pipelines[0].sink;
        assert_eq!(sink.section.as_deref(), Some("amqp"));
        let err = sink
            .settings
            .parse::<crate::transport::amqp::AmqpSinkConfig>("amqp", "sink")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mandatry"), "{err}");
        // The endpoint's own fields, and a section of no broker type.
        let bad = EXAMPLE.replace(
            "connector_config = { destination",
            "connectr_config = { destination",
        );
        let err = toml::from_str::<Doc>(&bad).unwrap_err().to_string();
        assert!(
            err.contains("connectr_config") && err.contains("`amqp`"),
            "{err}"
        );
        let bad = EXAMPLE.replace("amqp = { mandatory", "amqq = { mandatory");
        let err = toml::from_str::<Doc>(&bad).unwrap_err().to_string();
        assert!(err.contains("amqq"), "{err}");
        let bad = EXAMPLE.replace("host = \"127.0.0.1\"", "hots = \"127.0.0.1\"");
        let err = toml::from_str::<Doc>(&bad).unwrap_err().to_string();
        assert!(err.contains("hots"), "{err}");
    }
}
