//! Kafka sink: idempotent producer, `acks=all`, delivery reports awaited.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;

use super::source::{HasMetadata, spawn_health_check};
use super::{Context, KafkaBrokerConfig, is_retryable};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{Message, Outcome, Sink, TransportError};

/// A pipeline sink on Kafka (`type = "kafka"` in `[pipelines.sink]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Topic for events whose connector names no destination.
    pub topic: Option<String>,
    /// How long librdkafka keeps trying one message before handing it back
    /// to us (we then send it again, logging the outage), in ms.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// librdkafka `linger.ms`: how long to wait to fill a produce request.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Extra librdkafka producer properties. Values are never logged.
    #[serde(default)]
    pub properties: BTreeMap<String, crate::secret::Secret>,
}

fn default_message_timeout_ms() -> u64 {
    10_000
}

fn default_linger_ms() -> u64 {
    2
}

impl KafkaSinkConfig {
    pub fn new(topic: impl Into<String>) -> Self {
        KafkaSinkConfig {
            topic: Some(topic.into()),
            message_timeout_ms: default_message_timeout_ms(),
            linger_ms: default_linger_ms(),
            properties: BTreeMap::new(),
        }
    }
}

/// Produces to Kafka.
pub struct KafkaSink {
    producer: Arc<FutureProducer<Context>>,
    default_topic: Option<String>,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    description: String,
}

impl HasMetadata for FutureProducer<Context> {
    fn probe(&self) -> bool {
        self.client()
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok_and(|m| !m.brokers().is_empty())
    }
}

impl KafkaSink {
    pub fn new(
        broker: &KafkaBrokerConfig,
        config: &KafkaSinkConfig,
        retry: RetryConfig,
        monitor: Arc<OutageMonitor>,
    ) -> Result<KafkaSink, TransportError> {
        let mut client = broker.client_config();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger_ms.to_string())
            .set(
                "message.timeout.ms",
                config.message_timeout_ms.max(1000).to_string(),
            )
            .set("queue.buffering.max.messages", "100000");
        for (k, v) in &config.properties {
            client.set(k, v.expose());
        }
        let producer: FutureProducer<Context> = client
            .create_with_context(Context::new(monitor.clone()))
            .map_err(|e| TransportError::Client {
                broker: "kafka",
                reason: e.to_string(),
            })?;
        let producer = Arc::new(producer);
        spawn_health_check(Arc::downgrade(&producer), monitor.clone());
        let description = match &config.topic {
            Some(t) => format!("kafka topic {t} on {}", broker.describe()),
            None => format!("kafka on {}", broker.describe()),
        };
        Ok(KafkaSink {
            producer,
            default_topic: config.topic.clone(),
            retry,
            monitor,
            description,
        })
    }

    /// Waits until every message handed to librdkafka is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        self.producer
            .flush(timeout)
            .map_err(|e| TransportError::Client {
                broker: "kafka",
                reason: e.to_string(),
            })
    }

    async fn send_batch(&self, batch: Vec<Message>) -> Result<Vec<Outcome>, TransportError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut todo: Vec<usize> = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            if m.destination.name.is_empty() && self.default_topic.is_none() {
                outcomes[i] = Some(Outcome::Rejected {
                    reason: "no topic: the connector named none and the sink has no `topic`".into(),
                });
            } else {
                todo.push(i);
            }
        }
        let mut backoff = self.retry.backoff();
        while !todo.is_empty() {
            let mut pending = Vec::with_capacity(todo.len());
            for &i in &todo {
                let m = &batch[i];
                let topic = if m.destination.name.is_empty() {
                    self.default_topic.as_deref().unwrap_or_default()
                } else {
                    m.destination.name.as_str()
                };
                let mut headers = OwnedHeaders::new_with_capacity(m.headers.len() + 1);
                if let Some(ct) = &m.content_type {
                    headers = headers.insert(Header {
                        key: "content-type",
                        value: Some(ct.as_bytes()),
                    });
                }
                for (k, v) in &m.headers {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v.as_slice()),
                    });
                }
                let mut record = FutureRecord::to(topic)
                    .payload(m.payload.as_slice())
                    .headers(headers);
                if let Some(key) = &m.key {
                    record = record.key(key.as_slice());
                }
                // The local queue is full while the cluster is away: wait.
                loop {
                    match self.producer.send_result(record) {
                        Ok(future) => {
                            pending.push((i, future));
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            record = r;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err((e, _)) => {
                            outcomes[i] = Some(Outcome::Rejected {
                                reason: e.to_string(),
                            });
                            break;
                        }
                    }
                }
            }
            let mut retry = Vec::new();
            let mut last_error = None;
            for (i, future) in pending {
                match future.await {
                    Ok(Ok(_delivery)) => outcomes[i] = Some(Outcome::Confirmed),
                    Ok(Err((e, _))) if is_retryable(&e) => {
                        last_error = Some(e);
                        retry.push(i);
                    }
                    Ok(Err((e, _))) => {
                        outcomes[i] = Some(Outcome::Rejected {
                            reason: e.to_string(),
                        })
                    }
                    Err(_canceled) => return Err(TransportError::Closed),
                }
            }
            match last_error {
                Some(e) => {
                    self.monitor
                        .failed(&format!("{} message(s) not delivered: {e}", retry.len()));
                    backoff.wait().await;
                }
                None => {
                    self.monitor.recovered();
                    backoff.reset();
                }
            }
            todo = retry;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(Outcome::Rejected {
                    reason: "internal: no outcome".into(),
                })
            })
            .collect())
    }
}

impl Sink for KafkaSink {
    fn send(&mut self, batch: Vec<Message>) -> BoxFuture<'_, Result<Vec<Outcome>, TransportError>> {
        Box::pin(self.send_batch(batch))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
