//! The embedded MQTT broker (`rumqttd`) that `fnaa serve` runs when no
//! external broker is configured, so that the host works alone on a fresh
//! machine (an edge gateway, a laptop).
//!
//! It listens on 127.0.0.1:11883 by default, not on 1883: a system Mosquitto
//! (or RabbitMQ's MQTT plugin) often holds 1883 already. Pipelines reach it
//! as the broker named [`EMBEDDED_BROKER`].

mod gate;

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::transport::mqtt::{MqttBrokerConfig, MqttVersion};
use crate::transport::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, QueueAdmin, Sink, Source,
    TransportError,
};

/// The name pipelines use for the embedded broker.
pub const EMBEDDED_BROKER: &str = "embedded";

/// Default MQTT 3.1.1 listener of the embedded broker.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:11883";

/// When the embedded broker runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
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
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
    /// Optional MQTT 3.1.1 listener over TLS (e.g. `0.0.0.0:8883`, what
    /// gateways on other machines should use); needs `tls`. Clients must
    /// connect by host name: an IP address sent as TLS SNI is refused.
    pub tls_listen: Option<SocketAddr>,
    /// Certificate and key of `tls_listen` (`[brokers.embedded_mqtt.tls]`).
    pub tls: Option<EmbeddedTls>,
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

/// The TLS identity of the embedded broker.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedTls {
    /// PEM file with the certificate chain, leaf first.
    pub certificate: std::path::PathBuf,
    /// PEM file with the private key (PKCS #8, PKCS #1 or SEC1).
    pub private_key: std::path::PathBuf,
}

impl EmbeddedTls {
    /// Reads both files now, for an error that names the bad one (rumqttd
    /// would only fail each TLS connection later).
    fn check(&self) -> Result<(), EmbeddedError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| EmbeddedError::Tls(format!("{}: {e}", path.display())))
        };
        let pem = read(&self.certificate)?;
        let certificates = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EmbeddedError::Tls(format!("{}: {e}", self.certificate.display())))?;
        if certificates.is_empty() {
            return Err(EmbeddedError::Tls(format!(
                "{}: no PEM certificate",
                self.certificate.display()
            )));
        }
        let pem = read(&self.private_key)?;
        match rustls_pemfile::private_key(&mut pem.as_slice()) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(EmbeddedError::Tls(format!(
                "{}: no PEM private key",
                self.private_key.display()
            ))),
            Err(e) => Err(EmbeddedError::Tls(format!(
                "{}: {e}",
                self.private_key.display()
            ))),
        }
    }
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
            tls_listen: None,
            tls: None,
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
    #[error("embedded MQTT broker TLS: {0}")]
    Tls(String),
    #[error("cannot open the listeners of the embedded MQTT broker: {0}")]
    Open(std::io::Error),
}

/// A running embedded broker. It runs until the process exits (rumqttd has
/// no shutdown).
#[derive(Debug, Clone)]
pub struct EmbeddedMqtt {
    listen: SocketAddr,
    listen_v5: Option<SocketAddr>,
    tls_listen: Option<SocketAddr>,
    /// rumqttd's private MQTT 3.1.1 listener, which the host's own
    /// pipelines use.
    internal: SocketAddr,
    gates: gate::Gates,
}

/// A free port on the loopback interface for one of rumqttd's private
/// listeners.
fn private_address() -> Result<SocketAddr, EmbeddedError> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    TcpListener::bind(any)
        .and_then(|l| l.local_addr())
        .map_err(|source| EmbeddedError::Bind { addr: any, source })
}

fn server(
    name: &str,
    listen: SocketAddr,
    tls: Option<&EmbeddedTls>,
    config: &EmbeddedMqttConfig,
) -> rumqttd::ServerSettings {
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
        tls: tls.map(|t| rumqttd::TlsConfig::Rustls {
            capath: None,
            certpath: t.certificate.display().to_string(),
            keypath: t.private_key.display().to_string(),
        }),
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
    /// Starts the broker and opens its listeners at once.
    pub async fn start(config: &EmbeddedMqttConfig) -> Result<EmbeddedMqtt, EmbeddedError> {
        let broker = Self::start_closed(config).await?;
        broker.open()?;
        Ok(broker)
    }

    /// Starts the broker with its listeners bound but not accepting until
    /// [`EmbeddedMqtt::open`]: the host's pipelines can subscribe first.
    pub async fn start_closed(config: &EmbeddedMqttConfig) -> Result<EmbeddedMqtt, EmbeddedError> {
        let tls = match (config.tls_listen, &config.tls) {
            (Some(_), Some(tls)) => {
                tls.check()?;
                Some(tls)
            }
            (Some(_), None) => {
                return Err(EmbeddedError::Tls(
                    "`tls_listen` needs [brokers.embedded_mqtt.tls] with `certificate` and `private_key`".into(),
                ));
            }
            (None, _) => None,
        };
        // (public listener, rumqttd's private one) for each protocol.
        let v4 = (config.listen, private_address()?);
        let v5 = config
            .listen_v5
            .map(|l| Ok((l, private_address()?)))
            .transpose()?;
        let v4_tls = config
            .tls_listen
            .map(|l| Ok((l, private_address()?)))
            .transpose()?;
        let gates = gate::Gates::default();
        for (public, private) in std::iter::once(v4).chain(v5).chain(v4_tls) {
            gates
                .bind(public, private)
                .map_err(|source| EmbeddedError::Bind {
                    addr: public,
                    source,
                })?;
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
            v4: Some(
                std::iter::once((
                    "1".to_owned(),
                    server("fnaa-embedded-v4", v4.1, None, config),
                ))
                .chain(v4_tls.map(|(_, private)| {
                    (
                        "2".to_owned(),
                        server("fnaa-embedded-v4-tls", private, tls, config),
                    )
                }))
                .collect(),
            ),
            v5: v5.map(|(_, private)| {
                HashMap::from([(
                    "1".to_owned(),
                    server("fnaa-embedded-v5", private, None, config),
                )])
            }),
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
        // A real MQTT session, not a bare TCP connection, which rumqttd
        // would log as an error. The TLS listener is not probed (see
        // `gate::connect_upstream`).
        for (private, level) in std::iter::once((v4.1, 4)).chain(v5.map(|(_, p)| (p, 5))) {
            let mut ready = false;
            for _ in 0..100 {
                if gate::probe(private, level).await.is_ok() {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !ready {
                return Err(EmbeddedError::NotListening(private));
            }
        }
        tracing::debug!(internal = %v4.1, "embedded MQTT broker started, listeners closed");
        Ok(EmbeddedMqtt {
            listen: config.listen,
            listen_v5: config.listen_v5,
            tls_listen: config.tls_listen,
            internal: v4.1,
            gates,
        })
    }

    /// Opens the public listeners (once; later calls do nothing).
    pub fn open(&self) -> Result<(), EmbeddedError> {
        self.gates.open().map_err(EmbeddedError::Open)?;
        tracing::info!(listen = %self.listen, listen_v5 = ?self.listen_v5, tls_listen = ?self.tls_listen, "embedded MQTT broker listening");
        Ok(())
    }

    /// The MQTT 3.1.1 listener.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The MQTT 3.1.1 listener over TLS, if any.
    pub fn tls_listen(&self) -> Option<SocketAddr> {
        self.tls_listen
    }

    /// The MQTT 5 listener, if any.
    pub fn listen_v5(&self) -> Option<SocketAddr> {
        self.listen_v5
    }

    /// The broker as pipelines and FNAP flows use it: the host's own
    /// clients on the private listener, the public one advertised.
    pub fn broker(&self) -> EmbeddedBroker {
        EmbeddedBroker {
            private: self.broker_config(),
            public: self.listen,
        }
    }

    /// How the host's pipelines connect to it: MQTT 3.1.1 on a private
    /// listener, open before the public ones.
    pub fn broker_config(&self) -> MqttBrokerConfig {
        MqttBrokerConfig::new(
            self.internal.ip().to_string(),
            self.internal.port(),
            MqttVersion::V311,
        )
    }
}

/// The embedded broker as a [`Broker`]: an MQTT broker the host reaches on
/// its private listener, and outsiders on the public one.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    private: MqttBrokerConfig,
    public: SocketAddr,
}

impl Broker for EmbeddedBroker {
    fn kind(&self) -> &'static str {
        self.private.kind()
    }

    fn describe(&self) -> String {
        format!("embedded {}", self.public)
    }

    fn servers(&self) -> Vec<String> {
        let host = if self.public.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            self.public.ip().to_string()
        };
        vec![format!("{host}:{}", self.public.port())]
    }

    fn tls(&self) -> bool {
        false
    }

    fn connector_defaults(&self, plugin: &str, config: &mut Vec<(String, String)>) {
        self.private.connector_defaults(plugin, config);
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        self.private.source(context, settings)
    }

    fn sink(
        &self,
        context: &EndpointContext,
        settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        self.private.sink(context, settings)
    }

    fn admin(&self) -> Result<std::sync::Arc<dyn QueueAdmin>, TransportError> {
        self.private.admin()
    }

    fn flow_source(&self, pipeline: &str, queues: &[&str]) -> EndpointSettings {
        self.private.flow_source(pipeline, queues)
    }

    fn flow_sink(&self, queue: &str) -> EndpointSettings {
        self.private.flow_sink(queue)
    }
}
