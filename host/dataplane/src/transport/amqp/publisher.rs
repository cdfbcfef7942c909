//! The AMQP sink's connection: connect, declare exchanges, publish with
//! confirms and the mandatory flag.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use super::key_queues::{CopyOutcome, Decision, KeyQueues, share};
use super::sink::{AmqpSinkConfig, Failure};
use super::{AmqpBrokerConfig, TooLong, close_quietly, ensure_exchange, short};
use crate::transport::Message;

/// The connection and what publishing needs.
pub(super) struct Publisher {
    pub(super) broker: AmqpBrokerConfig,
    pub(super) config: AmqpSinkConfig,
    pub(super) name: String,
    pub(super) link: Option<(Connection, Channel)>,
    pub(super) exchanges: HashSet<String>,
    /// Names this sink in the `message_id` of what it publishes.
    pub(super) instance: String,
    pub(super) sequence: u64,
    pub(super) key_queues: Option<KeyQueues>,
}

impl Publisher {
    pub(super) fn connected(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|(c, ch)| c.status().connected() && ch.status().connected())
    }

    pub(super) async fn connect(&mut self) -> Result<(), lapin::Error> {
        let connection = self.broker.connect(&self.name).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        if let Some(key_queues) = &mut self.key_queues
            && let Err(failure) = key_queues.declare_configured(&connection).await
        {
            let reason = match failure {
                Failure::Permanent(r) | Failure::Connection(r) => r,
            };
            tracing::error!(%reason, "cannot declare the configured key queues");
        }
        self.link = Some((connection, channel));
        Ok(())
    }

    pub(super) async fn disconnect(&mut self) {
        if let Some((connection, channel)) = self.link.take() {
            close_quietly(&channel).await;
            let _ = connection.close(200, "reconnecting".into()).await;
        }
        // A restarted broker may have lost non-durable exchanges.
        self.exchanges.clear();
        if let Some(key_queues) = &mut self.key_queues {
            key_queues.reconnected();
        }
    }

    /// A new `message_id`.
    pub(super) fn next_id(&mut self) -> String {
        self.sequence += 1;
        format!("{}-{}", self.instance, self.sequence)
    }

    pub(super) fn properties(
        &self,
        m: &Message,
        publish_id: &str,
    ) -> Result<BasicProperties, TooLong> {
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
    pub(super) async fn publish(
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
        let exchange_name =
            short("exchange name", exchange).map_err(|e| Failure::Permanent(e.to_string()))?;
        let key =
            short("routing key", routing_key).map_err(|e| Failure::Permanent(e.to_string()))?;
        let properties = self
            .properties(m, publish_id)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
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
                // A refusal (no configure permission, an exchange of
                // another type) is for the operator to fix: the batch waits
                // and is tried again with the outage alarm, rather than
                // being dropped.
                Err(e) => {
                    return Err(Failure::Connection(format!(
                        "cannot declare exchange `{exchange}` (retrying): {e}"
                    )));
                }
            }
        }
        let decision = match &mut self.key_queues {
            Some(key_queues) => key_queues.decide(connection, channel, m).await?,
            None => Decision::Publish,
        };
        let options = BasicPublishOptions {
            mandatory: self.config.mandatory,
            immediate: false,
        };
        let copy = match decision {
            Decision::Suppress => return Ok(Box::pin(async { Ok(Confirmation::NotRequested) })),
            Decision::Publish => None,
            Decision::PublishAndCopy { key, queue } => {
                // Its own message id: a copy that comes back must not be
                // taken for the main message.
                let properties = self
                    .properties(m, &format!("{publish_id}-copy"))
                    .map_err(|e| Failure::Permanent(e.to_string()))?;
                let queue =
                    short("queue name", &queue).map_err(|e| Failure::Permanent(e.to_string()))?;
                let copy = channel
                    .basic_publish("".into(), queue, options, &m.payload, properties)
                    .await
                    .map_err(|e| Failure::Connection(e.to_string()))?;
                let copy = share(copy);
                if let Some(key_queues) = &mut self.key_queues {
                    key_queues.copied(key, copy.clone());
                }
                Some(copy)
            }
        };
        let confirm = channel
            .basic_publish(exchange_name, key, options, &m.payload, properties)
            .await
            .map_err(|e| Failure::Connection(e.to_string()))?;
        Ok(match copy {
            None => Box::pin(confirm),
            // Delivered once both are confirmed; a nacked copy sends both
            // again (a duplicate, never a loss).
            Some(copy) => Box::pin(async move {
                let main = confirm.await;
                match copy.await {
                    CopyOutcome::Nacked => Ok(Confirmation::Nack(None)),
                    // The connection broke: the main publish's own
                    // confirmation fails as well, or says what it got.
                    CopyOutcome::Failed(_) if main.is_ok() => Ok(Confirmation::Nack(None)),
                    CopyOutcome::Failed(_) | CopyOutcome::Acked => main,
                }
            }),
        })
    }
}

/// The confirmations of one publishing round of a batch: (index, message
/// id, confirmation).
pub(super) type Confirmed = Vec<(usize, String, Result<Confirmation, lapin::Error>)>;
