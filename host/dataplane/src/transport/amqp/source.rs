//! AMQP source: a queue bound to an exchange, consumed with manual acks.

use std::sync::Arc;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
    QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::{Mutex, mpsc};

use super::{AmqpBrokerConfig, ExchangeType, client_error, ensure_exchange, header_bytes, short};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{
    AckToken, Acker, ChannelSource, DeliveryMode, Destination, Message, Readiness, Received,
    TokenInner, TransportError,
};

/// A pipeline source on AMQP (`amqp = { ... }` in `[pipelines.source]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpSourceConfig {
    /// Queue to consume. Absent: an exclusive, server-named queue that lives
    /// as long as the connection (what `latest` flows want).
    pub queue: Option<String>,
    /// Declare the queue (durable) when it is missing.
    #[serde(default = "yes")]
    pub declare_queue: bool,
    /// Exchange to bind the queue to (created, durable, when missing).
    pub exchange: Option<String>,
    /// Further exchanges to bind the queue to, with the same binding keys
    /// (a processor reading several flows).
    #[serde(default)]
    pub extra_exchanges: Vec<String>,
    /// Type of the exchanges when they have to be created.
    #[serde(default)]
    pub exchange_type: ExchangeType,
    /// Binding keys (topic patterns such as `operational.#`). Default `#`.
    #[serde(default = "default_binding_keys")]
    pub binding_keys: Vec<String>,
    /// Unacknowledged messages the broker may send us at most.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
}

fn yes() -> bool {
    true
}

fn default_binding_keys() -> Vec<String> {
    vec!["#".to_owned()]
}

fn default_prefetch() -> u16 {
    2000
}

impl AmqpSourceConfig {
    /// Consume `queue` (declared if missing), no binding.
    pub fn queue(queue: impl Into<String>) -> Self {
        AmqpSourceConfig {
            queue: Some(queue.into()),
            declare_queue: true,
            exchange: None,
            extra_exchanges: Vec::new(),
            exchange_type: ExchangeType::Topic,
            binding_keys: default_binding_keys(),
            prefetch: default_prefetch(),
        }
    }
}

/// The channel deliveries arrive on, and which connection it belongs to.
type Current = Arc<Mutex<Option<(u64, Channel)>>>;

/// Consumes an AMQP queue: starts the connection task; it connects,
/// declares, binds and consumes, and does it all again after every failure.
pub fn open(
    broker: &AmqpBrokerConfig,
    config: &AmqpSourceConfig,
    connection_name: &str,
    mode: DeliveryMode,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
) -> Result<ChannelSource, TransportError> {
    match &config.queue {
        Some(q) => {
            short("queue name", q)?;
        }
        None if mode == DeliveryMode::AtLeastOnce => {
            return Err(TransportError::Config {
                    broker: "amqp",
                    reason: "at-least-once needs a named `queue`: an exclusive queue dies, with what it holds, with its connection".into(),
                });
        }
        None => {}
    }
    let current: Current = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel(usize::from(config.prefetch.max(1)) + 16);
    let description = format!(
        "amqp queue `{}`{} on {}",
        config.queue.as_deref().unwrap_or("<exclusive>"),
        config
            .exchange
            .as_ref()
            .map(|e| format!(" bound to `{e}` {:?}", config.binding_keys))
            .unwrap_or_default(),
        broker.describe()
    );
    let ready = Readiness::new();
    let driver = Driver {
        ready: ready.clone(),
        broker: broker.clone(),
        config: config.clone(),
        name: connection_name.to_owned(),
        mode,
        retry,
        monitor,
        current: current.clone(),
        tx,
    };
    tokio::spawn(driver.run());
    Ok(ChannelSource::new(
        ready,
        rx,
        Arc::new(AmqpAcker { current }),
        description,
    ))
}

struct AmqpAcker {
    current: Current,
}

impl Acker for AmqpAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let guard = self.current.lock().await;
            let Some((generation, channel)) = guard.as_ref() else {
                return Ok(());
            };
            // Tokens come in delivery order and every earlier delivery was
            // acknowledged by an earlier call: one `multiple` ack covers the
            // batch.
            let last = tokens
                .iter()
                .filter_map(|t| match t.0 {
                    TokenInner::Delivery {
                        generation: g, tag, ..
                    } if g == *generation => Some(tag),
                    _ => None,
                })
                .max();
            if let Some(tag) = last
                && let Err(e) = channel
                    .basic_ack(tag, BasicAckOptions { multiple: true })
                    .await
            {
                // The connection is gone: the broker redelivers.
                tracing::debug!("amqp ack failed (messages will be redelivered): {e}");
            }
            Ok(())
        })
    }
}

struct Driver {
    ready: Readiness,
    broker: AmqpBrokerConfig,
    config: AmqpSourceConfig,
    name: String,
    mode: DeliveryMode,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    current: Current,
    tx: mpsc::Sender<Received>,
}

impl Driver {
    async fn run(self) {
        let mut backoff = self.retry.backoff();
        let mut generation = 0u64;
        while !self.tx.is_closed() {
            generation += 1;
            match self.consume(generation, &mut backoff).await {
                Ok(()) => return,
                Err(e) => {
                    *self.current.lock().await = None;
                    self.monitor.failed(&e);
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = self.tx.closed() => return,
                    }
                }
            }
        }
    }

    /// One connection's life: set up, then forward deliveries until the
    /// connection fails (error) or the pipeline goes away (`Ok`).
    async fn consume(
        &self,
        generation: u64,
        backoff: &mut crate::backoff::Backoff,
    ) -> Result<(), TransportError> {
        let connection = self
            .broker
            .connect(&self.name)
            .await
            .map_err(client_error)?;
        let channel = connection.create_channel().await.map_err(client_error)?;
        let queue = self.declare(&connection, &channel).await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(client_error)?;
        let mut consumer = channel
            .basic_consume(
                queue.clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(client_error)?;
        *self.current.lock().await = Some((generation, channel.clone()));
        self.ready.set();
        self.monitor.recovered();
        backoff.reset();
        tracing::debug!(queue = %queue, "amqp source consuming");
        let latest = self.mode == DeliveryMode::Latest;
        loop {
            let delivery = tokio::select! {
                d = consumer.next() => d,
                _ = self.tx.closed() => {
                    let _ = connection.close(200, "pipeline stopped".into()).await;
                    return Ok(());
                }
            };
            let delivery = match delivery {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(client_error(e)),
                None => return Err(client_error("the broker cancelled the consumer")),
            };
            let headers = delivery
                .properties
                .headers()
                .as_ref()
                .map(|t| {
                    t.inner()
                        .iter()
                        .filter_map(|(k, v)| header_bytes(v).map(|b| (k.as_str().to_owned(), b)))
                        .collect()
                })
                .unwrap_or_default();
            let token = if latest {
                // Real-time flows acknowledge on receipt.
                let _ = channel
                    .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                    .await;
                AckToken::none()
            } else {
                AckToken(TokenInner::Delivery {
                    generation,
                    tag: delivery.delivery_tag,
                    class: 0,
                })
            };
            let received = Received {
                message: Message {
                    destination: Destination {
                        name: delivery.exchange.as_str().to_owned(),
                        routing_key: Some(delivery.routing_key.as_str().to_owned()),
                    },
                    key: None,
                    content_type: delivery
                        .properties
                        .content_type()
                        .as_ref()
                        .map(|c| c.as_str().to_owned()),
                    headers,
                    payload: delivery.data,
                },
                token,
                timestamp_ms: delivery
                    .properties
                    .timestamp()
                    .map(|t| i64::try_from(t.saturating_mul(1000)).unwrap_or(i64::MAX)),
            };
            if self.tx.send(received).await.is_err() {
                let _ = connection.close(200, "pipeline stopped".into()).await;
                return Ok(());
            }
        }
    }

    /// Declares (or checks) the queue and its bindings; returns its name.
    async fn declare(
        &self,
        connection: &Connection,
        channel: &Channel,
    ) -> Result<lapin::types::ShortString, TransportError> {
        let config_error = |reason: String| TransportError::Config {
            broker: "amqp",
            reason,
        };
        let exchanges = || {
            self.config
                .exchange
                .iter()
                .chain(&self.config.extra_exchanges)
        };
        for exchange in exchanges() {
            if !ensure_exchange(connection, exchange, self.config.exchange_type, true)
                .await
                .map_err(client_error)?
            {
                return Err(config_error(format!(
                    "exchange `{exchange}` does not exist"
                )));
            }
        }
        let queue = match &self.config.queue {
            Some(name) => {
                let name = short("queue name", name)?;
                let options = if self.config.declare_queue {
                    QueueDeclareOptions::durable()
                } else {
                    QueueDeclareOptions::durable().passive()
                };
                channel
                    .queue_declare(name.clone(), options, FieldTable::default())
                    .await
                    .map_err(client_error)?;
                if self.mode == DeliveryMode::Latest {
                    let purged = channel
                        .queue_purge(name.clone(), QueuePurgeOptions::default())
                        .await
                        .map_err(client_error)?;
                    if purged > 0 {
                        tracing::info!(queue = %name, purged, "latest mode: discarded the queue's backlog");
                    }
                }
                name
            }
            None => channel
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions::exclusive().auto_delete(),
                    FieldTable::default(),
                )
                .await
                .map_err(client_error)?
                .name()
                .clone(),
        };
        for exchange in exchanges() {
            let exchange = short("exchange name", exchange)?;
            for key in &self.config.binding_keys {
                let key = short("binding key", key)?;
                channel
                    .queue_bind(
                        queue.clone(),
                        exchange.clone(),
                        key,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(client_error)?;
            }
        }
        Ok(queue)
    }
}
