//! AMQP sink: publisher confirms, mandatory flag, exchanges created on
//! demand.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use serde::Deserialize;

use super::{AmqpBrokerConfig, ExchangeType, close_quietly, ensure_exchange, short};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{Message, Outcome, Sink, TransportError};

/// A pipeline sink on AMQP (`type = "amqp"` in `[pipelines.sink]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkConfig {
    /// Exchange for events whose connector names none (`""`: the default
    /// exchange, which routes by queue name).
    #[serde(default)]
    pub exchange: String,
    /// Routing key for events whose connector gives none.
    #[serde(default)]
    pub routing_key: String,
    /// Type of the exchanges this sink creates when they are missing.
    #[serde(default)]
    pub exchange_type: ExchangeType,
    /// Create missing exchanges (durable). When false, a message for a
    /// missing exchange is rejected.
    #[serde(default = "yes")]
    pub declare_exchanges: bool,
    /// Publish with the mandatory flag: a message no queue receives comes
    /// back (`basic.return`) and is reported as unroutable.
    #[serde(default = "yes")]
    pub mandatory: bool,
    /// Persistent messages (delivery mode 2): they survive a broker restart
    /// in durable queues.
    #[serde(default = "yes")]
    pub persistent: bool,
}

fn yes() -> bool {
    true
}

impl Default for AmqpSinkConfig {
    fn default() -> Self {
        AmqpSinkConfig {
            exchange: String::new(),
            routing_key: String::new(),
            exchange_type: ExchangeType::Topic,
            declare_exchanges: true,
            mandatory: true,
            persistent: true,
        }
    }
}

/// Publishes to an AMQP broker.
pub struct AmqpSink {
    broker: AmqpBrokerConfig,
    config: AmqpSinkConfig,
    name: String,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    link: Option<(Connection, Channel)>,
    exchanges: HashSet<String>,
    /// Names this sink in the `message_id` of what it publishes.
    instance: String,
    sequence: u64,
    description: String,
}

/// A message refused for good, or a broken connection to retry through.
enum Failure {
    Permanent(String),
    Connection(String),
}

impl AmqpSink {
    /// Creates the sink; it connects on first use, and again after every
    /// failure.
    pub fn new(
        broker: &AmqpBrokerConfig,
        config: &AmqpSinkConfig,
        connection_name: &str,
        retry: RetryConfig,
        monitor: Arc<OutageMonitor>,
    ) -> AmqpSink {
        AmqpSink {
            description: format!(
                "amqp exchange `{}` on {}",
                if config.exchange.is_empty() {
                    "<from connector>"
                } else {
                    &config.exchange
                },
                broker.describe()
            ),
            broker: broker.clone(),
            config: config.clone(),
            name: connection_name.to_owned(),
            retry,
            monitor,
            link: None,
            exchanges: HashSet::new(),
            instance: format!("fnaa-{:016x}", rand::random::<u64>()),
            sequence: 0,
        }
    }

    async fn connect(&mut self) -> Result<(), lapin::Error> {
        let connection = self.broker.connect(&self.name).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.link = Some((connection, channel));
        Ok(())
    }

    async fn disconnect(&mut self) {
        if let Some((connection, channel)) = self.link.take() {
            close_quietly(&channel).await;
            let _ = connection.close(200, "reconnecting".into()).await;
        }
        // A restarted broker may have lost non-durable exchanges.
        self.exchanges.clear();
    }

    fn properties(&self, m: &Message, publish_id: &str) -> Result<BasicProperties, String> {
        // A `basic.return` carries the message's properties: the id tells
        // which of the messages in flight came back (lapin hands a returned
        // message to whichever confirmation completes next, which with
        // several publishes in flight need not be the returned one's).
        let mut p = BasicProperties::default().with_message_id(short("message id", publish_id)?);
        if let Some(ct) = &m.content_type {
            p = p.with_content_type(short("content type", ct)?);
        }
        if !m.headers.is_empty() {
            let mut table = FieldTable::default();
            for (name, value) in &m.headers {
                table.insert(
                    short("header name", name)?,
                    AMQPValue::LongString(LongString::from(value.clone())),
                );
            }
            p = p.with_headers(table);
        }
        if self.config.persistent {
            p = p.with_delivery_mode(2);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(p.with_timestamp(now))
    }

    /// Publishes one message under `publish_id` (its `message_id`);
    /// returns the future of its confirmation.
    async fn publish(
        &mut self,
        m: &Message,
        publish_id: &str,
    ) -> Result<BoxFuture<'static, Result<Confirmation, lapin::Error>>, Failure> {
        let exchange = if m.destination.name.is_empty() {
            &self.config.exchange
        } else {
            &m.destination.name
        };
        let routing_key = m
            .destination
            .routing_key
            .as_deref()
            .unwrap_or(&self.config.routing_key);
        let exchange_name = short("exchange name", exchange).map_err(Failure::Permanent)?;
        let key = short("routing key", routing_key).map_err(Failure::Permanent)?;
        let properties = self.properties(m, publish_id).map_err(Failure::Permanent)?;
        let Some((connection, channel)) = &self.link else {
            return Err(Failure::Connection("not connected".into()));
        };
        if !self.exchanges.contains(exchange.as_str()) {
            match ensure_exchange(
                connection,
                exchange,
                self.config.exchange_type,
                self.config.declare_exchanges,
            )
            .await
            {
                Ok(true) => {
                    self.exchanges.insert(exchange.clone());
                }
                Ok(false) => {
                    return Err(Failure::Permanent(format!(
                        "exchange `{exchange}` does not exist (and declare_exchanges is off)"
                    )));
                }
                Err(e) if connection.status().connected() => {
                    return Err(Failure::Permanent(format!(
                        "cannot declare exchange `{exchange}`: {e}"
                    )));
                }
                Err(e) => return Err(Failure::Connection(e.to_string())),
            }
        }
        let options = BasicPublishOptions {
            mandatory: self.config.mandatory,
            immediate: false,
        };
        match channel
            .basic_publish(exchange_name, key, options, &m.payload, properties)
            .await
        {
            Ok(confirm) => Ok(Box::pin(confirm)),
            Err(e) => Err(Failure::Connection(e.to_string())),
        }
    }

    async fn send_batch(&mut self, batch: Vec<Message>) -> Result<Vec<Outcome>, TransportError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut backoff = self.retry.backoff();
        let mut nacks = vec![0u8; batch.len()];
        loop {
            if self
                .link
                .as_ref()
                .is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected())
            {
                self.disconnect().await;
                if let Err(e) = self.connect().await {
                    self.monitor.failed(&e);
                    backoff.wait().await;
                    continue;
                }
            }
            let mut broken = None;
            let mut pending = Vec::new();
            let mut ids: HashMap<String, usize> = HashMap::new();
            for (i, m) in batch.iter().enumerate() {
                if outcomes[i].is_some() {
                    continue;
                }
                self.sequence += 1;
                let id = format!("{}-{}", self.instance, self.sequence);
                match self.publish(m, &id).await {
                    Ok(confirm) => {
                        ids.insert(id, i);
                        pending.push((i, confirm));
                    }
                    Err(Failure::Permanent(reason)) => {
                        outcomes[i] = Some(Outcome::Rejected { reason })
                    }
                    Err(Failure::Connection(reason)) => {
                        broken = Some(reason);
                        break;
                    }
                }
            }
            // The broker sends a message's `basic.return` before its
            // `basic.ack`: once every confirmation of the batch is in, so are
            // its returns, whichever confirmation lapin attached them to.
            let mut returned = Vec::new();
            let mut acked = Vec::new();
            for (i, confirm) in pending {
                match confirm.await {
                    Ok(Confirmation::Ack(r)) => {
                        returned.extend(r);
                        acked.push(i);
                    }
                    Ok(Confirmation::NotRequested) => acked.push(i),
                    Ok(Confirmation::Nack(r)) => {
                        let was_returned = r.is_some();
                        returned.extend(r);
                        if !was_returned {
                            // The broker could not take the message (internal
                            // error, queue limit): try again a few times.
                            nacks[i] += 1;
                            if nacks[i] >= 5 {
                                outcomes[i] = Some(Outcome::Rejected {
                                    reason: "the broker nacked the message 5 times".into(),
                                });
                            }
                        } else {
                            acked.push(i);
                        }
                    }
                    Err(e) => broken = Some(e.to_string()),
                }
            }
            for i in acked {
                outcomes[i] = Some(Outcome::Confirmed);
            }
            for r in returned {
                let id = r
                    .delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.as_str().to_owned());
                match id.and_then(|id| ids.get(&id).copied()) {
                    Some(i) => {
                        outcomes[i] = Some(Outcome::Unroutable {
                            reason: format!(
                                "{} {}: exchange `{}` routing key `{}` reaches no queue",
                                r.reply_code,
                                r.reply_text,
                                r.delivery.exchange,
                                r.delivery.routing_key
                            ),
                        })
                    }
                    None => tracing::warn!(
                        exchange = %r.delivery.exchange,
                        routing_key = %r.delivery.routing_key,
                        "the broker returned a message this sink cannot match to a publish"
                    ),
                }
            }
            if let Some(reason) = broken {
                self.monitor.failed(&reason);
                self.disconnect().await;
                backoff.wait().await;
                continue;
            }
            self.monitor.recovered();
            if outcomes.iter().all(Option::is_some) {
                return Ok(outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or(Outcome::Confirmed))
                    .collect());
            }
            backoff.wait().await;
        }
    }
}

impl Sink for AmqpSink {
    fn send(&mut self, batch: Vec<Message>) -> BoxFuture<'_, Result<Vec<Outcome>, TransportError>> {
        Box::pin(self.send_batch(batch))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
