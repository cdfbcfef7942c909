//! The data plane of the fnaa host: broker transports (Kafka, MQTT, AMQP),
//! the embedded MQTT broker that `fnaa serve` runs when no broker is
//! configured, and the pipelines that move events from a source flow through
//! connector and processor plugins to a sink flow, at least once.
//!
//! * [`transport`]: one [`Source`](transport::Source)/[`Sink`](transport::Sink)
//!   pair, implemented for Kafka (`rdkafka`), MQTT 3.1.1/5 (`rumqttc`) and
//!   AMQP 0.9.1 (`lapin`).
//! * [`embedded_mqtt`]: `rumqttd` inside the host.
//! * [`pipeline`]: source -> decode -> processors -> encode -> sink, with
//!   batching, backpressure, delivery modes, retries, dead letters and
//!   metrics.
//! * [`config`]: the `[brokers]` and `[[pipelines]]` configuration sections.
//! * [`queues`]: the queue behind a flow, created and removed with it.
//! * [`DataPlane`]: all of the above as `fnaa serve` runs it.

pub mod backoff;
pub mod config;
mod dataplane;
pub mod embedded_mqtt;
pub mod outage;
pub mod pipeline;
pub mod queues;
pub mod secret;
pub mod transport;

pub use config::{BrokersConfig, EndpointConfig, PipelineConfig, SinkConfig, SourceConfig};
pub use dataplane::{BrokerError, BuildError, DataPlane, DataplaneError, Env, process_environment};
