//! Kafka with `rdkafka` (bundled librdkafka).
//!
//! * [`KafkaSink`]: idempotent producer with `acks=all`; a message counts as
//!   sent when its delivery report says so.
//! * [`KafkaSource`]: at-least-once, every partition of its topics
//!   assigned to it directly (no group membership), read from the offsets
//!   committed for its group, which it commits itself once the sink
//!   confirmed; or, in `latest` mode, every partition assigned at its end,
//!   nothing committed.
//! * [`KafkaAdmin`]: topic creation and deletion through the admin API.

mod admin;
mod broker;
mod sink;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use schemars::JsonSchema;
use serde::Deserialize;

pub use admin::KafkaAdmin;
pub use sink::{KafkaSink, KafkaSinkConfig};
pub use source::{KafkaSource, KafkaSourceConfig};

use super::TransportError;
use crate::outage::OutageMonitor;
use crate::secret::Secret;
use crate::transport::EnvVars;

/// A Kafka cluster (`type = "kafka"` in `[brokers.connections.<name>]`).
///
/// Unset fields are read from environment variables named after
/// `env_prefix`: `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_USERNAME`,
/// `KAFKA_PASSWORD`, `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_MECHANISM`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaBrokerConfig {
    /// Comma-separated `host:port` list (librdkafka `bootstrap.servers`).
    /// Env: `<prefix>_BOOTSTRAP_SERVERS`.
    pub bootstrap_servers: Option<String>,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    /// Env: `<prefix>_SECURITY_PROTOCOL`.
    pub security_protocol: Option<String>,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    /// Env: `<prefix>_SASL_MECHANISM`.
    pub sasl_mechanism: Option<String>,
    /// SASL user name. Env: `<prefix>_USERNAME`.
    pub username: Option<String>,
    /// SASL password; never logged. Env: `<prefix>_PASSWORD`.
    pub password: Option<Secret>,
    /// CA certificate file (PEM) to verify the brokers' certificates.
    pub ssl_ca_location: Option<String>,
    /// Prefix of the environment variables that fill unset fields.
    #[serde(default = "default_kafka_env_prefix")]
    pub env_prefix: String,
    /// Extra librdkafka properties for every client of this broker (see
    /// librdkafka's CONFIGURATION.md). Values are never logged.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

impl KafkaBrokerConfig {
    /// Another organisation's cluster at `servers` (see
    /// [`BrokerConfig::reaching`](super::BrokerConfig::reaching)).
    pub fn reaching(servers: &[String], tls: bool) -> Self {
        KafkaBrokerConfig {
            bootstrap_servers: Some(servers.join(",")),
            security_protocol: tls.then(|| "ssl".to_owned()),
            sasl_mechanism: None,
            username: None,
            password: None,
            ssl_ca_location: None,
            env_prefix: default_kafka_env_prefix(),
            properties: BTreeMap::new(),
        }
    }
}

fn default_kafka_env_prefix() -> String {
    "KAFKA".to_owned()
}

impl KafkaBrokerConfig {
    /// A broker at `bootstrap_servers` with everything else default.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaBrokerConfig {
            bootstrap_servers: Some(bootstrap_servers.into()),
            env_prefix: default_kafka_env_prefix(),
            ..KafkaBrokerConfig::default()
        }
    }

    /// Fills unset fields from the environment (through `env`, so tests can
    /// pass their own).
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KafkaBrokerConfig, TransportError> {
        let vars = EnvVars {
            broker: "kafka",
            prefix: &self.env_prefix,
            env,
        };
        let mut out = self.clone();
        out.bootstrap_servers = vars.or(out.bootstrap_servers, "BOOTSTRAP_SERVERS");
        out.security_protocol = vars.or(out.security_protocol, "SECURITY_PROTOCOL");
        out.sasl_mechanism = vars.or(out.sasl_mechanism, "SASL_MECHANISM");
        out.username = vars.or(out.username, "USERNAME");
        out.password = vars.password(out.password);
        if out.bootstrap_servers.as_deref().is_none_or(str::is_empty) {
            return Err(TransportError::Config {
                broker: "kafka",
                reason: format!(
                    "no bootstrap_servers (set it or {}_BOOTSTRAP_SERVERS)",
                    self.env_prefix
                ),
            });
        }
        Ok(out)
    }

    /// Where the cluster is, for logs.
    pub fn describe(&self) -> String {
        format!("kafka {}", self.bootstrap_servers.as_deref().unwrap_or("?"))
    }

    /// The librdkafka configuration common to every client of this broker.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        if let Some(servers) = &self.bootstrap_servers {
            c.set("bootstrap.servers", servers);
        }
        if let Some(p) = &self.security_protocol {
            c.set("security.protocol", p);
        }
        if let Some(m) = &self.sasl_mechanism {
            c.set("sasl.mechanism", m);
        }
        if let Some(u) = &self.username {
            c.set("sasl.username", u);
        }
        if let Some(p) = &self.password {
            c.set("sasl.password", p.expose());
        }
        if let Some(ca) = &self.ssl_ca_location {
            c.set("ssl.ca.location", ca);
        }
        // Reconnect quickly after an outage; our own retries sit on top.
        c.set("reconnect.backoff.ms", "100");
        c.set("reconnect.backoff.max.ms", "2000");
        c.set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in &self.properties {
            c.set(k, v.expose());
        }
        c
    }
}

/// librdkafka callbacks: errors feed the outage monitor, statistics feed
/// the consumer-lag gauge. librdkafka's own log lines go to `tracing` at
/// debug level (they repeat every reconnect attempt; the monitor says it
/// once).
pub(crate) struct Context {
    monitor: Arc<OutageMonitor>,
    lag: Arc<AtomicI64>,
    pub(crate) ready: super::Readiness,
}

impl Context {
    pub(crate) fn new(monitor: Arc<OutageMonitor>) -> Self {
        Context {
            monitor,
            lag: Arc::new(AtomicI64::new(-1)),
            ready: super::Readiness::new(),
        }
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", ?level, "{fac} {log_message}");
    }

    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        self.lag.store(lag, Ordering::Relaxed);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown)
            | Some(RDKafkaErrorCode::BrokerTransportFailure)
            | Some(RDKafkaErrorCode::Resolve) => self.monitor.failed(&reason),
            _ => tracing::warn!(target: "librdkafka", "{}: {error}: {reason}", self.monitor.what()),
        }
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if let rdkafka::consumer::Rebalance::Assign(tpl) = rebalance
            && tpl.count() > 0
        {
            self.ready.set();
        }
    }
}

/// True for errors that may go away by themselves (broker down, leader
/// election, timeouts): the message is sent again.
pub(crate) fn is_retryable(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    !matches!(
        error.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::InvalidRecord
                | C::TopicAuthorizationFailed
                | C::InvalidTopic
                | C::MessageBatchTooLarge
                | C::UnsupportedForMessageFormat
        )
    )
}
