//! Kafka source: a consumer group with offsets committed by us (at-least-once)
//! or a group-less consumer assigned to the end of every partition (`latest`).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use super::{Context, KafkaBrokerConfig};
use crate::outage::OutageMonitor;
use crate::transport::{
    AckToken, Acker, DeliveryMode, Destination, Message, NoAck, Received, Source, TokenInner,
    TransportError,
};

/// Where a consumer group without committed offsets starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The oldest message still in the topic.
    #[default]
    Earliest,
    /// The next message produced.
    Latest,
}

/// A pipeline source on Kafka (`type = "kafka"` in `[pipelines.source]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group (at-least-once mode). Default: `fnaa-<pipeline name>`.
    pub group_id: Option<String>,
    /// Where a group without committed offsets starts: `earliest` (default)
    /// or `latest`. `latest` delivery mode always starts at the end.
    #[serde(default)]
    pub start_from: StartFrom,
    /// Extra librdkafka consumer properties. Values are never logged.
    #[serde(default)]
    pub properties: BTreeMap<String, crate::secret::Secret>,
}

impl KafkaSourceConfig {
    pub fn new(topics: Vec<String>) -> Self {
        KafkaSourceConfig {
            topics,
            group_id: None,
            start_from: StartFrom::Earliest,
            properties: BTreeMap::new(),
        }
    }
}

/// Consumes Kafka topics.
pub struct KafkaSource {
    ready: crate::transport::Readiness,
    consumer: Arc<StreamConsumer<Context>>,
    acker: Arc<dyn Acker>,
    lag: Arc<AtomicI64>,
    monitor: Arc<OutageMonitor>,
    description: String,
    topics: Vec<Arc<str>>,
    /// Messages taken from the consumer and not returned yet (a cancelled
    /// `recv` leaves them here).
    buffer: Vec<Received>,
    /// The last consumer error, to log repeats at debug level only.
    last_error: std::sync::Mutex<Option<String>>,
}

impl KafkaSource {
    /// Connects (lazily: librdkafka connects in the background) and
    /// subscribes. `default_group` names the group when the config does not.
    pub async fn new(
        broker: &KafkaBrokerConfig,
        config: &KafkaSourceConfig,
        default_group: &str,
        mode: DeliveryMode,
        monitor: Arc<OutageMonitor>,
    ) -> Result<KafkaSource, TransportError> {
        if config.topics.is_empty() {
            return Err(TransportError::Config {
                broker: "kafka",
                reason: "a source needs at least one topic".into(),
            });
        }
        let mut client = broker.client_config();
        let group = match mode {
            DeliveryMode::AtLeastOnce => config
                .group_id
                .clone()
                .unwrap_or_else(|| default_group.to_owned()),
            // Group-less assignment; librdkafka still wants a group id.
            DeliveryMode::Latest => {
                format!("{default_group}-latest-{:016x}", rand::random::<u64>())
            }
        };
        client
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("statistics.interval.ms", "5000")
            .set(
                "auto.offset.reset",
                match (mode, config.start_from) {
                    (DeliveryMode::Latest, _) | (_, StartFrom::Latest) => "latest",
                    _ => "earliest",
                },
            );
        for (k, v) in &config.properties {
            client.set(k, v.expose());
        }
        let context = Context::new(monitor.clone());
        let lag = context.lag.clone();
        let ready = context.ready.clone();
        let consumer: StreamConsumer<Context> =
            client
                .create_with_context(context)
                .map_err(|e| TransportError::Client {
                    broker: "kafka",
                    reason: e.to_string(),
                })?;
        let consumer = Arc::new(consumer);
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        let acker: Arc<dyn Acker> = match mode {
            DeliveryMode::AtLeastOnce => {
                consumer
                    .subscribe(&topics)
                    .map_err(|e| TransportError::Client {
                        broker: "kafka",
                        reason: e.to_string(),
                    })?;
                Arc::new(KafkaAcker {
                    consumer: consumer.clone(),
                })
            }
            DeliveryMode::Latest => {
                // In the background: a topic that does not exist yet must
                // not hold up the host's start.
                let (c, t, m) = (consumer.clone(), config.topics.clone(), monitor.clone());
                tokio::spawn(async move {
                    if let Err(e) = assign_at_end(&c, &t, &m).await {
                        tracing::error!("kafka source: cannot assign partitions: {e}");
                    }
                });
                Arc::new(NoAck)
            }
        };
        spawn_health_check(Arc::downgrade(&consumer), monitor.clone());
        let description = match mode {
            DeliveryMode::AtLeastOnce => format!(
                "kafka topics {:?} group {group} on {}",
                config.topics,
                broker.describe()
            ),
            DeliveryMode::Latest => format!(
                "kafka topics {:?} (latest) on {}",
                config.topics,
                broker.describe()
            ),
        };
        Ok(KafkaSource {
            ready,
            consumer,
            acker,
            lag,
            monitor,
            description,
            topics: config
                .topics
                .iter()
                .map(|t| Arc::from(t.as_str()))
                .collect(),
            buffer: Vec::new(),
            last_error: std::sync::Mutex::new(None),
        })
    }
}

/// The next message of `consumer` (cancel-safe: a message is only taken
/// from librdkafka when it is returned).
async fn next(
    consumer: &StreamConsumer<Context>,
    topics: &[Arc<str>],
    description: &str,
    last_error: &std::sync::Mutex<Option<String>>,
) -> Received {
    {
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let topic = topics
                        .iter()
                        .find(|t| ***t == *m.topic())
                        .cloned()
                        .unwrap_or_else(|| Arc::from(m.topic()));
                    let mut content_type = None;
                    let mut headers = Vec::new();
                    if let Some(h) = m.headers() {
                        headers.reserve(h.count());
                        for header in h.iter() {
                            let value = header.value.unwrap_or_default().to_vec();
                            if header.key.eq_ignore_ascii_case("content-type")
                                && content_type.is_none()
                            {
                                content_type = String::from_utf8(value).ok();
                            } else {
                                headers.push((header.key.to_owned(), value));
                            }
                        }
                    }
                    let message = Message {
                        destination: Destination {
                            name: topic.to_string(),
                            routing_key: None,
                        },
                        key: m.key().map(<[u8]>::to_vec),
                        content_type,
                        headers,
                        payload: m.payload().unwrap_or_default().to_vec(),
                    };
                    return Received {
                        message,
                        token: AckToken(TokenInner::Kafka {
                            topic,
                            partition: m.partition(),
                            offset: m.offset(),
                        }),
                        timestamp_ms: m.timestamp().to_millis(),
                    };
                }
                Err(e) => {
                    // librdkafka repeats an error (a missing topic, say) on
                    // every metadata refresh: say it once at warn level.
                    let text = e.to_string();
                    let repeated = {
                        let mut last = last_error.lock().unwrap_or_else(|p| p.into_inner());
                        last.replace(text.clone()).as_deref() == Some(text.as_str())
                    };
                    if repeated {
                        tracing::debug!(source = %description, "kafka consumer error: {text}");
                    } else {
                        tracing::warn!(source = %description, "kafka consumer error: {text}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Assigns every partition of `topics` at its end, waiting for the topics to
/// exist.
async fn assign_at_end(
    consumer: &Arc<StreamConsumer<Context>>,
    topics: &[String],
    monitor: &Arc<OutageMonitor>,
) -> Result<(), TransportError> {
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let c = consumer.clone();
        let t = topics.to_vec();
        let found = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for topic in &t {
                let metadata = c
                    .fetch_metadata(Some(topic), Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                let partitions = metadata
                    .topics()
                    .iter()
                    .find(|m| m.name() == topic && m.error().is_none())
                    .map(|m| m.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
                    .unwrap_or_default();
                if partitions.is_empty() {
                    return Err(format!("topic `{topic}` does not exist (yet)"));
                }
                for p in partitions {
                    tpl.add_partition_offset(topic, p, Offset::End)
                        .map_err(|e| e.to_string())?;
                }
            }
            c.assign(&tpl).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| TransportError::Client {
            broker: "kafka",
            reason: e.to_string(),
        })?;
        match found {
            Ok(()) => {
                consumer.context().ready.set();
                monitor.recovered();
                return Ok(());
            }
            Err(reason) => {
                monitor.failed(&reason);
                backoff.wait().await;
            }
        }
    }
}

/// While `monitor` reports an outage, probe the cluster every second and end
/// the outage as soon as it answers (a quiet topic would otherwise keep the
/// alarm on until the next message).
pub(crate) fn spawn_health_check<C>(client: Weak<C>, monitor: Arc<OutageMonitor>)
where
    C: HasMetadata + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(c) = client.upgrade() else { return };
            if !monitor.is_down() {
                continue;
            }
            let ok = tokio::task::spawn_blocking(move || c.probe())
                .await
                .unwrap_or(false);
            if ok {
                monitor.recovered();
            }
        }
    });
}

/// A client that can fetch cluster metadata.
pub(crate) trait HasMetadata {
    /// True when some broker answered a metadata request.
    fn probe(&self) -> bool;
}

impl HasMetadata for StreamConsumer<Context> {
    fn probe(&self) -> bool {
        self.fetch_metadata(None, Duration::from_secs(2))
            .is_ok_and(|m| !m.brokers().is_empty())
    }
}

impl Source for KafkaSource {
    fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(async move {
            let max = max.max(1);
            if self.buffer.is_empty() {
                let first = next(
                    &self.consumer,
                    &self.topics,
                    &self.description,
                    &self.last_error,
                )
                .await;
                self.buffer.push(first);
            }
            let deadline = tokio::time::Instant::now() + linger;
            while self.buffer.len() < max {
                match tokio::time::timeout_at(
                    deadline,
                    next(
                        &self.consumer,
                        &self.topics,
                        &self.description,
                        &self.last_error,
                    ),
                )
                .await
                {
                    Ok(r) => self.buffer.push(r),
                    Err(_) => break,
                }
            }
            self.monitor.recovered();
            Ok(std::mem::take(&mut self.buffer))
        })
    }

    fn acker(&self) -> Arc<dyn Acker> {
        self.acker.clone()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn backlog(&self) -> Option<u64> {
        u64::try_from(self.lag.load(Ordering::Relaxed)).ok()
    }

    fn ready(&self) -> BoxFuture<'static, ()> {
        self.ready.wait_owned()
    }
}

/// Commits offsets of confirmed messages.
struct KafkaAcker {
    consumer: Arc<StreamConsumer<Context>>,
}

impl Acker for KafkaAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let mut next: HashMap<(Arc<str>, i32), i64> = HashMap::new();
            for token in tokens {
                if let TokenInner::Kafka {
                    topic,
                    partition,
                    offset,
                } = token.0
                {
                    let slot = next.entry((topic, partition)).or_insert(offset + 1);
                    *slot = (*slot).max(offset + 1);
                }
            }
            if next.is_empty() {
                return Ok(());
            }
            let mut tpl = TopicPartitionList::with_capacity(next.len());
            for ((topic, partition), offset) in next {
                tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))
                    .map_err(|e| TransportError::Client {
                        broker: "kafka",
                        reason: e.to_string(),
                    })?;
            }
            // Asynchronous: a lost commit means redelivery (at-least-once),
            // never loss. Partitions revoked meanwhile fail harmlessly.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!("kafka offset commit failed (messages will be redelivered): {e}");
            }
            Ok(())
        })
    }
}
