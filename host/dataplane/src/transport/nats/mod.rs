//! NATS with `async-nats`: JetStream for at-least-once, core NATS for
//! `latest`.
//!
//! * [`NatsSink`]: JetStream publish, a message counting as sent once its
//!   publish acknowledgement (`PubAck`) says a stream stored it; a subject
//!   no stream captures, or a message over the server's `max_payload`, is
//!   rejected ([`Outcome::Rejected`](crate::transport::Outcome::Rejected)),
//!   never silently dropped. Every message carries a `Nats-Msg-Id`, so that
//!   one sent again after a lost acknowledgement is stored once (within the
//!   stream's duplicate window). Or core NATS publish (`jetstream = false`).
//! * [`open_source`]: a durable pull consumer with explicit acks on each
//!   JetStream stream read, acknowledged only through the
//!   [`Acker`](crate::transport::Acker); or, in `latest` mode, core NATS
//!   subscriptions (nothing kept, nothing replayed).
//! * [`NatsAdmin`]: the JetStream stream of an FNAP flow, made and removed
//!   with it; durable consumers removed with their pipeline.
//!
//! An FNAP flow on NATS is stream [`stream_name`]`(flow)` (the flow name
//! with `.` and the other characters stream names refuse made `_`)
//! capturing subject `<flow>` (the flow name as it is).
//!
//! The client reconnects by itself (forever, with our backoff); its
//! disconnect and reconnect events feed the [`OutageMonitor`], so an outage
//! gives one alarm line and one line when it ends.

mod admin;
mod sink;
mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, ServerAddr};
use schemars::JsonSchema;
use serde::Deserialize;

pub use admin::NatsAdmin;
pub use sink::{NatsSink, NatsSinkConfig};
pub use source::{NatsSourceConfig, open as open_source};

use super::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, QueueAdmin, Sink, Source,
    TransportError,
};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::secret::Secret;
use crate::transport::EnvVars;

/// A NATS server or cluster (`type = "nats"` in
/// `[brokers.connections.<name>]`). At-least-once pipelines and FNAP flows
/// need JetStream enabled on the server (`nats-server -js`).
///
/// Unset fields are read from environment variables named after
/// `env_prefix`: `NATS_URL` (else `NATS_SERVERS`), `NATS_USERNAME`,
/// `NATS_PASSWORD`, `NATS_TOKEN`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsBrokerConfig {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`, or plain
    /// `host:port`); the client fails over between them. Env:
    /// `<prefix>_URL` or `<prefix>_SERVERS`, comma-separated. Default
    /// `nats://localhost:4222`.
    #[serde(default)]
    pub servers: Vec<String>,
    /// User name. Env: `<prefix>_USERNAME`.
    pub username: Option<String>,
    /// Password; never logged. Env: `<prefix>_PASSWORD`.
    pub password: Option<Secret>,
    /// Authentication token (instead of user and password); never logged.
    /// Env: `<prefix>_TOKEN`.
    pub token: Option<Secret>,
    /// Require TLS, verifying the server against the system's CA
    /// certificates (and `ca_file`). `tls://` URLs imply it.
    #[serde(default)]
    pub tls: bool,
    /// CA certificate file (PEM) to verify the server's certificate.
    pub ca_file: Option<String>,
    /// Prefix of the environment variables that fill unset fields.
    #[serde(default = "default_nats_env_prefix")]
    pub env_prefix: String,
}

impl NatsBrokerConfig {
    /// Another organisation's server at `servers` (see
    /// [`BrokerConfig::reaching`](super::BrokerConfig::reaching)).
    pub fn reaching(servers: &[String], tls: bool) -> Self {
        NatsBrokerConfig {
            servers: servers.to_vec(),
            username: None,
            password: None,
            token: None,
            tls,
            ca_file: None,
            env_prefix: default_nats_env_prefix(),
        }
    }
}

fn default_nats_env_prefix() -> String {
    "NATS".to_owned()
}

const BROKER: &str = "nats";

pub(crate) fn client_error(e: impl std::fmt::Display) -> TransportError {
    TransportError::Client {
        broker: BROKER,
        reason: e.to_string(),
    }
}

fn config_error(reason: impl Into<String>) -> TransportError {
    TransportError::Config {
        broker: BROKER,
        reason: reason.into(),
    }
}

/// The JetStream stream of FNAP flow `flow`: its name with every character
/// stream names refuse (`.`, `*`, `>`, spaces, path separators) made `_`
/// (`kytos.topology` -> `kytos_topology`).
pub fn stream_name(flow: &str) -> String {
    safe_name(flow)
}

/// `name` with every character JetStream refuses in stream and durable
/// consumer names made `_`.
pub(crate) fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if ".*>/\\ \t+$#".contains(c) || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl NatsBrokerConfig {
    /// A server at `url` with everything else default.
    pub fn new(url: impl Into<String>) -> Self {
        NatsBrokerConfig {
            servers: vec![url.into()],
            env_prefix: default_nats_env_prefix(),
            ..NatsBrokerConfig::default()
        }
    }

    /// Fills unset fields from the environment (through `env`, so tests can
    /// pass their own) and checks the server addresses.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NatsBrokerConfig, TransportError> {
        let vars = EnvVars {
            broker: BROKER,
            prefix: &self.env_prefix,
            env,
        };
        let mut out = self.clone();
        if out.servers.is_empty()
            && let Some(list) = vars.or(vars.or(None, "URL"), "SERVERS")
        {
            out.servers = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        out.username = vars.or(out.username, "USERNAME");
        out.password = vars.password(out.password);
        out.token = out
            .token
            .or_else(|| vars.or(None, "TOKEN").map(Secret::new));
        if out.token.is_some() && out.username.is_some() {
            return Err(config_error(
                "set either `token` or `username`/`password`, not both",
            ));
        }
        if out.password.is_some() && out.username.is_none() {
            return Err(config_error(format!(
                "a password needs a `username` (or {}_USERNAME)",
                self.env_prefix
            )));
        }
        out.addresses()?;
        Ok(out)
    }

    /// The servers as the client takes them.
    fn addresses(&self) -> Result<Vec<ServerAddr>, TransportError> {
        if self.servers.is_empty() {
            return Ok(vec![
                "nats://localhost:4222"
                    .parse()
                    .map_err(|e| config_error(format!("default server: {e}")))?,
            ]);
        }
        self.servers
            .iter()
            .map(|s| match s.parse::<ServerAddr>() {
                Ok(a) if !a.host().is_empty() => Ok(a),
                Ok(_) => Err(config_error(format!("server `{s}` names no host"))),
                Err(e) => Err(config_error(format!("server `{s}`: {e}"))),
            })
            .collect()
    }

    /// Where the servers are, for logs (no credentials).
    pub fn describe(&self) -> String {
        format!("nats {}", self.host_ports().join(","))
    }

    fn host_ports(&self) -> Vec<String> {
        match self.addresses() {
            Ok(addresses) => addresses
                .iter()
                .map(|a| format!("{}:{}", a.host(), a.port()))
                .collect(),
            Err(_) => vec!["?".to_owned()],
        }
    }

    fn uses_tls(&self) -> bool {
        self.tls
            || self
                .addresses()
                .is_ok_and(|a| a.iter().any(ServerAddr::tls_required))
    }

    /// Connects, retrying reconnects forever; `monitor` hears of every
    /// disconnect and reconnect. Fails when no server is reachable now.
    pub(crate) async fn connect(
        &self,
        name: &str,
        retry: &RetryConfig,
        monitor: Option<Arc<OutageMonitor>>,
    ) -> Result<Client, TransportError> {
        let mut options = ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None::<usize>)
            .retain_servers_order();
        if let Some(token) = &self.token {
            options = options.token(token.expose().to_owned());
        }
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        } else if let Some(user) = &self.username {
            options = options.user_and_password(user.clone(), String::new());
        }
        if self.uses_tls() {
            options = options.require_tls(true);
        }
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(PathBuf::from(ca));
        }
        let initial = Duration::from_millis(retry.initial_interval_ms.max(1));
        let max = Duration::from_millis(retry.max_interval_ms.max(1));
        // async-nats asks for a delay before the very first attempt too
        // (`attempts` = 1): none then, so a restarted host connects at once.
        options = options.reconnect_delay_callback(move |attempts| {
            if attempts <= 1 {
                return Duration::ZERO;
            }
            let doubled = initial.saturating_mul(1u32 << (attempts - 2).min(16));
            doubled.min(max)
        });
        if let Some(monitor) = monitor {
            options = options.event_callback(move |event| {
                let monitor = monitor.clone();
                async move {
                    match event {
                        Event::Disconnected => monitor.failed(&"disconnected from the server"),
                        Event::Connected => monitor.recovered(),
                        Event::ServerError(e) => {
                            tracing::warn!("{}: server error: {e}", monitor.what())
                        }
                        Event::ClientError(e) => {
                            tracing::warn!("{}: client error: {e}", monitor.what())
                        }
                        other => tracing::debug!("{}: {other}", monitor.what()),
                    }
                }
            });
        }
        options
            .connect(self.addresses()?)
            .await
            .map_err(client_error)
    }
}

impl Broker for NatsBrokerConfig {
    fn kind(&self) -> &'static str {
        BROKER
    }

    fn describe(&self) -> String {
        NatsBrokerConfig::describe(self)
    }

    fn servers(&self) -> Vec<String> {
        self.host_ports()
    }

    fn tls(&self) -> bool {
        self.uses_tls()
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        Box::pin(async move {
            let config: NatsSourceConfig = settings.require(BROKER, context.role)?;
            let source = source::open(self, &config, context)?;
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn sink(
        &self,
        context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        let config: NatsSinkConfig = settings.parse(BROKER, context.role)?.unwrap_or_default();
        Ok(Box::new(NatsSink::new(self, &config, context)))
    }

    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(NatsAdmin::new(self)))
    }

    fn flow_source(&self, _pipeline: &str, queues: &[&str]) -> EndpointSettings {
        EndpointSettings::of(&NatsSourceConfig {
            streams: queues.iter().map(|q| stream_name(q)).collect(),
            ..NatsSourceConfig::default()
        })
    }

    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        EndpointSettings::of(&NatsSinkConfig {
            subject: Some(queue.to_owned()),
            ..NatsSinkConfig::default()
        })
    }
}

/// A received NATS message as a transport [`Message`](super::Message): the
/// subject as destination, the `Content-Type` header as content type, every
/// other header (values in order) as headers.
pub(crate) fn to_message(message: async_nats::Message) -> super::Message {
    let mut content_type = None;
    let mut headers = Vec::new();
    if let Some(map) = &message.headers {
        for (name, values) in map.iter() {
            let name: &str = name.as_ref();
            for value in values {
                if content_type.is_none() && name.eq_ignore_ascii_case("content-type") {
                    content_type = Some(value.as_str().to_owned());
                } else {
                    headers.push((name.to_owned(), value.as_str().as_bytes().to_vec()));
                }
            }
        }
    }
    // Header maps have no order; a stable one keeps logs and tests calm.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    super::Message {
        destination: super::Destination {
            name: message.subject.to_string(),
            routing_key: None,
        },
        key: None,
        content_type,
        headers,
        payload: message.payload.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_fills_unset_fields() {
        let env = |name: &str| match name {
            "NATS_URL" => Some("nats://a:4222, b:4223".to_owned()),
            "NATS_USERNAME" => Some("u".to_owned()),
            "NATS_PASSWORD" => Some("p".to_owned()),
            _ => None,
        };
        let config = NatsBrokerConfig {
            env_prefix: "NATS".into(),
            ..NatsBrokerConfig::default()
        }
        .resolve(&env)
        .expect("valid");
        assert_eq!(config.servers, ["nats://a:4222", "b:4223"]);
        assert_eq!(config.password.as_ref().map(Secret::expose), Some("p"));
        assert_eq!(config.describe(), "nats a:4222,b:4223");
        assert_eq!(Broker::servers(&config), ["a:4222", "b:4223"]);
        assert!(!config.uses_tls());
        assert!(!format!("{config:?}").contains("\"p\""));

        let token = |name: &str| (name == "X_TOKEN").then(|| "t".to_owned());
        let config = NatsBrokerConfig {
            servers: vec!["tls://h:4222".into()],
            env_prefix: "X".into(),
            ..NatsBrokerConfig::default()
        }
        .resolve(&token)
        .expect("valid");
        assert_eq!(config.token.as_ref().map(Secret::expose), Some("t"));
        assert!(config.uses_tls());
    }

    #[test]
    fn refuses_bad_settings() {
        let none = |_: &str| None;
        for server in ["nats://h:99999", "nats://"] {
            let bad = NatsBrokerConfig::new(server);
            assert!(bad.resolve(&none).is_err(), "{server}");
        }
        let both = NatsBrokerConfig {
            username: Some("u".into()),
            token: Some(Secret::new("t")),
            ..NatsBrokerConfig::new("nats://h:4222")
        };
        assert!(both.resolve(&none).is_err());
        let config: Result<NatsBrokerConfig, _> =
            serde_json::from_value(serde_json::json!({ "servers": ["h:1"], "nope": 1 }));
        assert!(config.is_err());
    }

    #[test]
    fn flows_map_onto_streams() {
        assert_eq!(stream_name("kytos.topology.links"), "kytos_topology_links");
        let broker = NatsBrokerConfig::new("nats://h:4222");
        let source: NatsSourceConfig = broker
            .flow_source("p", &["a.b", "c"])
            .parse(BROKER, "source")
            .expect("parses")
            .expect("present");
        assert_eq!(source.streams, ["a_b", "c"]);
        let sink: NatsSinkConfig = broker
            .flow_sink("a.b")
            .parse(BROKER, "sink")
            .expect("parses")
            .expect("present");
        assert_eq!(sink.subject.as_deref(), Some("a.b"));
        assert!(sink.jetstream);
    }
}
