//! The host's TOML configuration (`fnaa.toml`). Each section is the config
//! struct of the crate that implements it, so its `///` docs sit next to the
//! code that reads it. Unknown fields are rejected with their name.

use std::path::Path;

use anyhow::Context as _;
use schemars::JsonSchema;
use serde::Deserialize;

/// The whole configuration file. Every section is optional: an empty file
/// runs the host on its embedded defaults.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The WebAssembly plugin runtime: limits, cache, instance density.
    #[serde(default)]
    pub runtime: fnaa_runtime::RuntimeConfig,
    /// The Flow Name Service: how flows are resolved and where their DNS
    /// records are published (an embedded authoritative server on
    /// 127.0.0.1:5300 by default, or RFC 2136 updates to BIND9).
    #[serde(default)]
    pub dns: fnaa_fns::FnsConfig,
    /// The FNAP server: listeners, TLS, limits, timeouts.
    #[serde(default)]
    pub fnap: fnaa_control::config::FnapConfig,
    /// The gRPC admin API.
    #[serde(default)]
    pub grpc: fnaa_control::config::GrpcConfig,
    /// The state store (accounts, namespaces, flows, subscriptions, processors).
    #[serde(default)]
    pub store: fnaa_control::config::StoreConfig,
    /// The brokers flows live on (`[brokers.connections.<name>]`) and the
    /// embedded MQTT broker (`[brokers.embedded_mqtt]`), which runs when no
    /// broker is configured.
    #[serde(default)]
    pub brokers: fnaa_dataplane::BrokersConfig,
    /// Where flows created over FNAP live (`broker`, advertised address,
    /// Kafka topic layout) and which plugins their processors may run.
    #[serde(default)]
    pub flows: crate::backends::dataplane::FlowsConfig,
    /// Subscriptions to other organisations' flows: which CA their FNAAs'
    /// certificates chain to, whether clear text is allowed, timeouts.
    #[serde(default)]
    pub peers: crate::backends::peers::PeersConfig,
    /// The HTTP ingestion listener: CloudEvents POSTed by sources that
    /// cannot replay them (a Kytos NApp, webhooks) into an outbox broker.
    #[serde(default)]
    pub ingest: Option<crate::ingest::IngestConfig>,
    /// Pipelines declared statically (`[[pipelines]]`): source flow ->
    /// connector -> processors -> connector -> sink flow.
    #[serde(default)]
    pub pipelines: Vec<fnaa_dataplane::PipelineConfig>,
}

impl Config {
    /// The sections of the control plane (FNAP, gRPC, store).
    pub fn control(&self) -> fnaa_control::config::ControlConfig {
        fnaa_control::config::ControlConfig {
            fnap: self.fnap.clone(),
            grpc: self.grpc.clone(),
            store: self.store.clone(),
        }
    }

    /// Parses a configuration document.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("invalid configuration in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let text = include_str!("../../examples/fnaa.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.flows.broker, "rabbit");
        assert_eq!(config.flows.advertise, ["rabbit.unix.ar:5672"]);
        assert!(config.brokers.connections.contains_key("rabbit"));
        assert_eq!(config.pipelines.len(), 2);
        assert_eq!(config.ingest.map(|i| i.outbox).as_deref(), Some("inbox"));
        assert_eq!(config.fnap.hostname, "fnaa.unix.ar");
    }

    #[test]
    fn flows_default_to_the_embedded_broker_and_unknown_fields_are_named() {
        assert_eq!(Config::parse("").unwrap().flows.broker, "embedded");
        let error = format!(
            "{:#}",
            Config::parse("[flows]\nbrokr = \"x\"\n").unwrap_err()
        );
        assert!(error.contains("brokr"), "{error}");
    }
}
