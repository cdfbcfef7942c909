//! The embedded MQTT broker (`rumqttd`) that `fnaa serve` runs when no
//! external broker is configured, so that the host works alone on a fresh
//! machine (an edge gateway, a laptop).
//!
//! It listens on 127.0.0.1:11883 by default, not on 1883: a system Mosquitto
//! (or RabbitMQ's MQTT plugin) often holds 1883 already. Pipelines reach it
//! as the broker named [`EMBEDDED_BROKER`].

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;
use crate::transport::mqtt::{MqttBrokerConfig, MqttVersion};

/// The name pipelines use for the embedded broker.
pub const EMBEDDED_BROKER: &str = "embedded";

/// Default MQTT 3.1.1 listener of the embedded broker.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:11883";

/// When the embedded broker runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddedMode {
    /// When `[brokers.connections]` names no broker, or a pipeline names the
    /// `embedded` broker (default).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The embedded MQTT broker (`[brokers.embedded_mqtt]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedMqttConfig {
    /// `auto` (default), `always` or `never`.
    #[serde(default)]
    pub mode: EmbeddedMode,
    /// MQTT 3.1.1 listener address. Default `127.0.0.1:11883`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Optional MQTT 5 listener address (rumqttd serves one protocol
    /// version per port).
    pub listen_v5: Option<SocketAddr>,
    /// Largest message accepted, in bytes.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// Most clients connected at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Clients allowed to connect (user name to password). Empty: anyone,
    /// which is why the default listener is on the loopback interface only.
    #[serde(default)]
    pub users: BTreeMap<String, Secret>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 11883))
}

fn default_max_payload() -> usize {
    1024 * 1024
}

fn default_max_connections() -> usize {
    1000
}

impl Default for EmbeddedMqttConfig {
    fn default() -> Self {
        EmbeddedMqttConfig {
            mode: EmbeddedMode::Auto,
            listen: default_listen(),
            listen_v5: None,
            max_payload_bytes: default_max_payload(),
            max_connections: default_max_connections(),
            users: BTreeMap::new(),
        }
    }
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "cannot listen on {addr} for the embedded MQTT broker: {source} (another broker there? set `listen` in [brokers.embedded_mqtt] or mode = \"never\")"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the embedded MQTT broker did not start listening on {0}")]
    NotListening(SocketAddr),
    #[error("cannot start the embedded MQTT broker thread: {0}")]
    Thread(std::io::Error),
}

/// A running embedded broker. It runs until the process exits (rumqttd has
/// no shutdown).
#[derive(Debug, Clone)]
pub struct EmbeddedMqtt {
    listen: SocketAddr,
    listen_v5: Option<SocketAddr>,
}

fn server(name: &str, listen: SocketAddr, config: &EmbeddedMqttConfig) -> rumqttd::ServerSettings {
    let auth = (!config.users.is_empty()).then(|| {
        config
            .users
            .iter()
            .map(|(u, p)| (u.clone(), p.expose().to_owned()))
            .collect::<HashMap<_, _>>()
    });
    rumqttd::ServerSettings {
        name: name.to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: config.max_payload_bytes,
            max_inflight_count: 500,
            auth,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

impl EmbeddedMqtt {
    /// Starts the broker and waits until it accepts connections.
    pub async fn start(config: &EmbeddedMqttConfig) -> Result<EmbeddedMqtt, EmbeddedError> {
        for addr in std::iter::once(config.listen).chain(config.listen_v5) {
            // Check the port first, for an error that names it (rumqttd only
            // logs a failed bind from its own thread).
            TcpListener::bind(addr).map_err(|source| EmbeddedError::Bind { addr, source })?;
        }
        let rumqttd_config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: config.max_connections,
                max_outgoing_packet_count: 1000,
                max_segment_size: 16 * 1024 * 1024,
                max_segment_count: 10,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([(
                "1".to_owned(),
                server("fnaa-embedded-v4", config.listen, config),
            )])),
            v5: config
                .listen_v5
                .map(|l| HashMap::from([("1".to_owned(), server("fnaa-embedded-v5", l, config))])),
            ..Default::default()
        };
        std::thread::Builder::new()
            .name("embedded-mqtt".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(rumqttd_config);
                if let Err(e) = broker.start() {
                    tracing::error!("embedded MQTT broker stopped: {e}");
                }
            })
            .map_err(EmbeddedError::Thread)?;
        for addr in std::iter::once(config.listen).chain(config.listen_v5) {
            let mut ready = false;
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !ready {
                return Err(EmbeddedError::NotListening(addr));
            }
        }
        tracing::info!(listen = %config.listen, listen_v5 = ?config.listen_v5, "embedded MQTT broker started");
        Ok(EmbeddedMqtt {
            listen: config.listen,
            listen_v5: config.listen_v5,
        })
    }

    /// The MQTT 3.1.1 listener.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The MQTT 5 listener, if any.
    pub fn listen_v5(&self) -> Option<SocketAddr> {
        self.listen_v5
    }

    /// How pipelines connect to it (MQTT 3.1.1 on the main listener).
    pub fn broker_config(&self) -> MqttBrokerConfig {
        let host = if self.listen.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            self.listen.ip().to_string()
        };
        MqttBrokerConfig::new(host, self.listen.port(), MqttVersion::V311)
    }
}
