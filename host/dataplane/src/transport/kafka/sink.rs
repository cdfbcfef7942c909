//! Kafka sink: idempotent producer, `acks=all`, delivery reports awaited.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use schemars::JsonSchema;
use serde::Deserialize;

use super::source::{HasMetadata, spawn_health_check};
use super::{Context, KafkaBrokerConfig, is_retryable};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{Message, Outcome, SendFuture, Sink, TransportError};

/// A pipeline sink on Kafka (`kafka = { ... }` in `[pipelines.sink]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
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
    inner: Arc<Inner>,
    description: String,
}

/// What a batch in flight needs; shared by the batches in flight.
struct Inner {
    /// Replaced when it seems stuck (see [`Inner::renew_if_stuck`]).
    producer: std::sync::Mutex<Arc<FutureProducer<Context>>>,
    /// How to make the producer again.
    client: rdkafka::ClientConfig,
    default_topic: Option<String>,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
}

/// Messages handed to librdkafka (index in the batch, delivery report).
type Pending = Vec<(usize, DeliveryFuture)>;

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
        let producer = create_producer(&client, &monitor)?;
        let description = match &config.topic {
            Some(t) => format!("kafka topic {t} on {}", broker.describe()),
            None => format!("kafka on {}", broker.describe()),
        };
        Ok(KafkaSink {
            inner: Arc::new(Inner {
                producer: std::sync::Mutex::new(producer),
                client,
                default_topic: config.topic.clone(),
                retry,
                monitor,
            }),
            description,
        })
    }

    /// Waits until every message handed to librdkafka is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        self.inner
            .producer()
            .flush(timeout)
            .map_err(|e| TransportError::Client {
                broker: "kafka",
                reason: e.to_string(),
            })
    }

    /// Hands `batch` to librdkafka (as far as its queue takes it) and
    /// returns the future of the outcomes, which does not borrow the sink.
    fn start(&self, batch: Vec<Message>) -> SendFuture {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut todo: VecDeque<usize> = VecDeque::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            if m.destination.name.is_empty() && self.inner.default_topic.is_none() {
                outcomes[i] = Some(Outcome::Rejected {
                    reason: "no topic: the connector named none and the sink has no `topic`".into(),
                });
            } else {
                todo.push_back(i);
            }
        }
        let mut pending = Vec::with_capacity(todo.len());
        let used = self
            .inner
            .enqueue(&batch, &mut todo, &mut outcomes, &mut pending);
        Box::pin(
            self.inner
                .clone()
                .deliver(batch, outcomes, todo, pending, used),
        )
    }
}

/// A producer for `client`, with its health check.
fn create_producer(
    client: &rdkafka::ClientConfig,
    monitor: &Arc<OutageMonitor>,
) -> Result<Arc<FutureProducer<Context>>, TransportError> {
    let producer: FutureProducer<Context> = client
        .create_with_context(Context::new(monitor.clone()))
        .map_err(|e| TransportError::Client {
            broker: "kafka",
            reason: e.to_string(),
        })?;
    let producer = Arc::new(producer);
    spawn_health_check(Arc::downgrade(&producer), monitor.clone());
    Ok(producer)
}

impl Inner {
    fn producer(&self) -> Arc<FutureProducer<Context>> {
        self.producer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Called when messages of `used` timed out: if the cluster answers
    /// nevertheless, `used` may be an idempotent producer stuck on a
    /// producer id the cluster has forgotten (a broker that restarted
    /// without its state, such as tansu on memory storage, answers
    /// UNKNOWN_PRODUCER_ID to every epoch librdkafka bumps that id to,
    /// forever), so it is replaced by a new one, which asks for a new id.
    /// Messages still in the old producer are purged when it goes, and
    /// their batches send them again.
    async fn renew_if_stuck(&self, used: Arc<FutureProducer<Context>>) {
        let probe = used.clone();
        let answers = tokio::task::spawn_blocking(move || probe.probe())
            .await
            .unwrap_or(false);
        if answers {
            self.renew(used);
        } else {
            tokio::task::spawn_blocking(move || drop(used));
        }
    }

    /// Replaces the producer with a new one, if it still is `stuck`.
    fn renew(&self, stuck: Arc<FutureProducer<Context>>) {
        let mut current = self.producer.lock().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&current, &stuck) {
            return;
        }
        match create_producer(&self.client, &self.monitor) {
            Ok(fresh) => {
                let old = std::mem::replace(&mut *current, fresh);
                drop(current);
                tracing::info!(
                    sink = %self.monitor.what(),
                    "kafka messages timed out: replaced the producer (new producer id)"
                );
                // Dropping a producer purges it and joins its threads.
                tokio::task::spawn_blocking(move || drop((old, stuck)));
            }
            Err(e) => {
                tracing::warn!(sink = %self.monitor.what(), "cannot replace the kafka producer: {e}")
            }
        }
    }

    /// Hands the messages `todo` of `batch` to librdkafka, in order, without
    /// waiting. What finds librdkafka's queue full stays in `todo`. Returns
    /// the producer they went to (weakly: a replaced producer goes as soon
    /// as its messages are resolved).
    fn enqueue(
        &self,
        batch: &[Message],
        todo: &mut VecDeque<usize>,
        outcomes: &mut [Option<Outcome>],
        pending: &mut Pending,
    ) -> Weak<FutureProducer<Context>> {
        let producer = self.producer();
        while let Some(&i) = todo.front() {
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
            match producer.send_result(record) {
                Ok(future) => pending.push((i, future)),
                // The local queue is full (the cluster is away, or slow):
                // the rest waits.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Arc::downgrade(&producer);
                }
                Err((e, _)) => {
                    outcomes[i] = Some(Outcome::Rejected {
                        reason: e.to_string(),
                    });
                }
            }
            todo.pop_front();
        }
        Arc::downgrade(&producer)
    }

    /// Waits for the delivery reports of `pending`, hands librdkafka what is
    /// left in `todo` and sends again what failed for a reason that may go
    /// away, until every message is delivered or failed for good.
    async fn deliver(
        self: Arc<Self>,
        batch: Vec<Message>,
        mut outcomes: Vec<Option<Outcome>>,
        mut todo: VecDeque<usize>,
        mut pending: Pending,
        mut used: Weak<FutureProducer<Context>>,
    ) -> Result<Vec<Outcome>, TransportError> {
        let mut backoff = self.retry.backoff();
        loop {
            while !todo.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                used = self.enqueue(&batch, &mut todo, &mut outcomes, &mut pending);
            }
            let mut retry = VecDeque::new();
            let mut last_error = None;
            let mut timed_out = false;
            for (i, future) in pending.drain(..) {
                match future.await {
                    Ok(Ok(_delivery)) => outcomes[i] = Some(Outcome::Confirmed),
                    Ok(Err((e, _))) if is_retryable(&e) => {
                        timed_out |= matches!(
                            e,
                            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)
                        );
                        last_error = Some(e);
                        retry.push_back(i);
                    }
                    Ok(Err((e, _))) => {
                        outcomes[i] = Some(Outcome::Rejected {
                            reason: e.to_string(),
                        })
                    }
                    // A producer replaced meanwhile went before reporting
                    // (its purge outlasted its flush): send again.
                    Err(_canceled) if used.upgrade().is_none() => {
                        last_error = Some(KafkaError::Canceled);
                        retry.push_back(i);
                    }
                    Err(_canceled) => return Err(TransportError::Closed),
                }
            }
            if timed_out && let Some(producer) = used.upgrade() {
                self.renew_if_stuck(producer).await;
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
            if retry.is_empty() {
                break;
            }
            retry.make_contiguous().sort_unstable();
            todo = retry;
            used = self.enqueue(&batch, &mut todo, &mut outcomes, &mut pending);
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
    fn send(&mut self, batch: Vec<Message>) -> SendFuture {
        self.start(batch)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
