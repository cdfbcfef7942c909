//! MQTT source: subscribes; acknowledges only what the pipeline confirmed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::client::{self, Connection, Ev};
use super::{MqttBrokerConfig, Qos, default_qos};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{
    AckToken, Acker, ChannelSource, DeliveryMode, Destination, Message, Readiness, Received,
    TokenInner, TransportError,
};

/// A pipeline source on MQTT (`mqtt = { ... }` in `[pipelines.source]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttSourceConfig {
    /// Topic filters to subscribe to (`+` and `#` wildcards allowed).
    pub topics: Vec<String>,
    /// Subscription QoS: 0, 1 (default) or 2. At-least-once needs 1 or 2.
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Client id; it names the persistent session, so keep it stable.
    /// Default: `fnaa-<pipeline>-source`.
    pub client_id: Option<String>,
    /// MQTT 5: how long the broker keeps our session (and the messages we
    /// have not acknowledged) while we are away, in seconds.
    #[serde(default = "default_session_expiry")]
    pub session_expiry_s: u32,
}

fn default_session_expiry() -> u32 {
    86_400
}

impl MqttSourceConfig {
    pub fn new(topics: Vec<String>) -> Self {
        MqttSourceConfig {
            topics,
            qos: 1,
            client_id: None,
            session_expiry_s: default_session_expiry(),
        }
    }
}

/// Messages waiting between the connection task and the pipeline. In
/// at-least-once mode the broker's in-flight window bounds them; in `latest`
/// mode the newest are dropped past this.
const BUFFER: usize = 16_384;

/// Receives from an MQTT broker: starts the connection task; it connects, subscribes and resubscribes
/// after every reconnect by itself.
pub fn open(
    broker: &MqttBrokerConfig,
    config: &MqttSourceConfig,
    default_client_id: &str,
    mode: DeliveryMode,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
) -> Result<ChannelSource, TransportError> {
    if config.topics.is_empty() {
        return Err(TransportError::Config {
            broker: "mqtt",
            reason: "a source needs at least one topic filter".into(),
        });
    }
    let qos = Qos::from_level(config.qos)?;
    let manual = mode == DeliveryMode::AtLeastOnce && qos != Qos::AtMostOnce;
    let options = client::Options {
        client_id: config
            .client_id
            .clone()
            .unwrap_or_else(|| default_client_id.to_owned()),
        clean: !manual,
        session_expiry_s: config.session_expiry_s,
        manual_acks: manual,
        inflight: 100,
    };
    let conn = client::create(broker, &options)?;
    let (tx, rx) = mpsc::channel(BUFFER);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let ready = Readiness::new();
    let driver = Driver {
        ready: ready.clone(),
        conn,
        topics: config.topics.clone(),
        qos,
        manual,
        generation: 0,
        connected: false,
        need_subscribe: false,
        pending_acks: VecDeque::new(),
        retry,
        monitor,
        tx,
    };
    tokio::spawn(driver.run(ack_rx));
    Ok(ChannelSource::new(
        ready,
        rx,
        Arc::new(MqttAcker { tx: ack_tx }),
        format!(
            "mqtt topics {:?} (QoS {}) on {}",
            config.topics,
            config.qos,
            broker.describe()
        ),
    ))
}

/// (connection generation, QoS, packet id) of a message to acknowledge.
type PendingAck = (u64, u8, u16);

/// Hands acknowledgements to the connection task, which sends them only on
/// the connection the messages came in on.
struct MqttAcker {
    tx: mpsc::UnboundedSender<Vec<PendingAck>>,
}

impl Acker for MqttAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        let acks: Vec<PendingAck> = tokens
            .into_iter()
            .filter_map(|t| match t.0 {
                TokenInner::Delivery {
                    generation,
                    tag,
                    class: qos,
                } => u16::try_from(tag).ok().map(|pkid| (generation, qos, pkid)),
                _ => None,
            })
            .collect();
        let result = if acks.is_empty() {
            Ok(())
        } else {
            self.tx.send(acks).map_err(|_| TransportError::Closed)
        };
        Box::pin(async move { result })
    }
}

struct Driver {
    ready: Readiness,
    conn: Connection,
    topics: Vec<String>,
    qos: Qos,
    manual: bool,
    /// Changes with every connect and disconnect: acknowledgements from
    /// another generation are stale.
    generation: u64,
    connected: bool,
    need_subscribe: bool,
    pending_acks: VecDeque<PendingAck>,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    tx: mpsc::Sender<Received>,
}

impl Driver {
    /// Hands waiting subscriptions and acknowledgements to the connection;
    /// its next poll writes them all at once.
    fn flush(&mut self) {
        if !self.connected {
            return;
        }
        if self.need_subscribe {
            match self.conn.subscribe(&self.topics, self.qos) {
                Ok(()) => self.need_subscribe = false,
                Err(e) => tracing::debug!("mqtt source: {e}"),
            }
        }
        for (generation, qos, pkid) in self.pending_acks.drain(..) {
            // After a reconnect the broker resends what we had not
            // acknowledged, possibly under packet ids now used by other
            // messages: acknowledging an old id could acknowledge the wrong
            // message.
            if generation == self.generation {
                self.conn.ack(qos, pkid);
            }
        }
    }

    async fn run(mut self, mut acks: mpsc::UnboundedReceiver<Vec<PendingAck>>) {
        let mut backoff = self.retry.backoff();
        let mut dropped: u64 = 0;
        loop {
            self.flush();
            let event = tokio::select! {
                e = self.conn.poll() => e,
                a = acks.recv() => {
                    if let Some(a) = a {
                        self.pending_acks.extend(a);
                    }
                    continue;
                }
                _ = self.tx.closed() => {
                    self.conn.disconnect();
                    let _ = tokio::time::timeout(Duration::from_millis(200), self.conn.poll()).await;
                    return;
                }
            };
            match event {
                Ok(Ev::Connected { session_present }) => {
                    self.generation += 1;
                    self.connected = true;
                    self.pending_acks.clear();
                    self.monitor.recovered();
                    backoff.reset();
                    tracing::debug!(session_present, "mqtt source connected");
                    // Subscribe again every time: a broker that restarted
                    // without persistence forgot our session.
                    self.need_subscribe = true;
                }
                Ok(Ev::Subscribed { refused }) => {
                    self.ready.set();
                    if refused == 0 {
                        continue;
                    }
                    tracing::error!(
                        topics = ?self.topics,
                        "the MQTT broker refused {refused} of our subscriptions (check its ACLs and the filters)"
                    );
                }
                Ok(Ev::Publish(p)) => {
                    let token = if self.manual && p.qos > 0 {
                        AckToken(TokenInner::Delivery {
                            generation: self.generation,
                            tag: u64::from(p.pkid),
                            class: p.qos,
                        })
                    } else {
                        AckToken::none()
                    };
                    let received = Received {
                        message: Message {
                            destination: Destination {
                                name: p.topic,
                                routing_key: None,
                            },
                            key: None,
                            content_type: p.content_type,
                            headers: p
                                .user_properties
                                .into_iter()
                                .map(|(k, v)| (k, v.into_bytes()))
                                .collect(),
                            payload: p.payload,
                        },
                        token,
                        timestamp_ms: None,
                    };
                    if self.manual {
                        // Bounded by the broker's in-flight window.
                        if self.tx.send(received).await.is_err() {
                            continue;
                        }
                    } else if self.tx.try_send(received).is_err() {
                        dropped += 1;
                        if dropped.is_power_of_two() {
                            tracing::warn!(
                                dropped,
                                "mqtt source buffer full: dropping messages (latest / QoS 0)"
                            );
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if self.connected {
                        self.generation += 1;
                        self.connected = false;
                        self.pending_acks.clear();
                    }
                    self.monitor.failed(&e);
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = self.tx.closed() => return,
                    }
                }
            }
        }
    }
}
