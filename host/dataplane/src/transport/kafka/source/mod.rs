//! Kafka source. At-least-once: every partition of its topics assigned to
//! the consumer directly (no group membership), reading on from the offsets
//! committed for its group, which it commits itself once the sink
//! confirmed. `latest`: every partition assigned at its end, nothing
//! committed.
//!
//! Why no group membership: a consumer-group member that dies without
//! leaving (a host killed with SIGKILL, a power cut) holds its partitions
//! until the coordinator times its session out (45 s by default), and its
//! successor reads nothing until then; a consumer that assigns the
//! partitions itself reads at once, as MirrorMaker and kcat do. See
//! [`KafkaSource`] for what this means for two hosts sharing a group.
//!
//! The parts: [`assign`] finds the partitions and assigns them (at the
//! committed offsets, or at their end in `latest` mode); [`resume`] makes
//! sure reading at a committed offset starts there (tansu 0.6 skips the
//! rest of a batch a fetch starts inside of); [`acker`] commits what the
//! sink confirmed; [`health`] ends an outage as soon as the cluster
//! answers again.

mod acker;
mod assign;
mod health;
mod resume;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Context, KafkaBrokerConfig};
use crate::outage::OutageMonitor;
use crate::transport::{
    AckToken, Acker, DeliveryMode, Destination, Message, NoAck, Received, Source, TokenInner,
    TransportError,
};
use acker::KafkaAcker;
use assign::{Assigner, assign_at_end, keep_assigned};
pub(crate) use health::{HasMetadata, spawn_health_check};
use resume::Resuming;

/// Broker requests of the partition discovery (metadata, committed offsets).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a consumer group without committed offsets starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The oldest message still in the topic.
    #[default]
    Earliest,
    /// The next message produced.
    Latest,
}

/// A pipeline source on Kafka (`kafka = { ... }` in `[pipelines.source]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group (at-least-once mode): the name its offsets are
    /// committed under; the source does not join it (see [`KafkaSource`]).
    /// Default: `fnaa-<pipeline name>`.
    pub group_id: Option<String>,
    /// Where a partition without committed offsets starts when the source
    /// starts: `earliest` (default) or `latest`. Partitions (and topics)
    /// that appear while it runs are read from their beginning. `latest`
    /// delivery mode always starts at the end.
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
///
/// In `at-least-once` mode the source assigns itself every partition of its
/// topics (found in the cluster metadata, and looked for again every few
/// seconds so that added partitions and topics created later are read too)
/// and starts each at the offset committed for its group (`group_id`);
/// where none is committed, it starts as `start_from` says, except in
/// partitions and topics that appear while it runs, which it reads from
/// their beginning. It commits offsets itself, only for messages the sink
/// confirmed, in order. A host killed without warning is therefore
/// replaced at once: its successor reads on from the last committed
/// offsets, and what had been confirmed but not committed yet comes again
/// (duplicates within the in-flight window, never a loss).
///
/// The group is only a name for the committed offsets: nothing stops two
/// sources with the same group from both reading every partition (each
/// event would then be delivered twice, and their commits would overwrite
/// one another; the committed offsets still only ever cover what one of
/// them delivered, so a restart still loses nothing). Running one source
/// per group, and fencing a stale one, is the placement layer's job.
/// Commits are generation-less (those of a simple consumer), which Kafka
/// refuses while the group has members: a group shared with subscribed
/// consumers keeps its old offsets (a restart then repeats events).
pub struct KafkaSource {
    ready: crate::transport::Readiness,
    consumer: Arc<StreamConsumer<Context>>,
    acker: Arc<dyn Acker>,
    lag: Arc<AtomicI64>,
    monitor: Arc<OutageMonitor>,
    description: String,
    topics: Vec<Arc<str>>,
    /// Partitions just assigned at a committed offset, until the first
    /// message shows that the broker served that offset (see [`Resuming`]).
    resuming: Resuming,
    /// Messages taken from the consumer and not returned yet (a cancelled
    /// `recv` leaves them here).
    buffer: Vec<Received>,
    /// The last consumer error, to log repeats at debug level only.
    last_error: Mutex<Option<String>>,
}

impl KafkaSource {
    /// Connects (lazily: librdkafka connects in the background) and starts
    /// assigning partitions in the background (a topic that does not exist
    /// yet must not hold up the host's start). `default_group` names the
    /// group when the config does not.
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
        let resuming = Resuming::default();
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
        let acker: Arc<dyn Acker> = match mode {
            DeliveryMode::AtLeastOnce => {
                tokio::spawn(keep_assigned(Assigner {
                    consumer: Arc::downgrade(&consumer),
                    topics: config.topics.clone(),
                    resuming: resuming.clone(),
                    monitor: monitor.clone(),
                    description: description.clone(),
                }));
                Arc::new(KafkaAcker {
                    consumer: consumer.clone(),
                })
            }
            DeliveryMode::Latest => {
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
            resuming,
            buffer: Vec::new(),
            last_error: Mutex::new(None),
        })
    }

    /// The next message (cancel-safe: a message is only taken from
    /// librdkafka when it is returned, or when it will be read again).
    async fn next(&self) -> Received {
        loop {
            match self.consumer.recv().await {
                Ok(m) => {
                    let topic = self
                        .topics
                        .iter()
                        .find(|t| ***t == *m.topic())
                        .cloned()
                        .unwrap_or_else(|| Arc::from(m.topic()));
                    if self
                        .resuming
                        .keep(&self.consumer, &topic, m.partition(), m.offset())
                    {
                        return received(&m, topic);
                    }
                }
                Err(e) => {
                    // librdkafka repeats an error (a missing topic, say) on
                    // every metadata refresh: say it once at warn level.
                    let text = e.to_string();
                    let repeated = {
                        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
                        last.replace(text.clone()).as_deref() == Some(text.as_str())
                    };
                    if repeated {
                        tracing::debug!(source = %self.description, "kafka consumer error: {text}");
                    } else {
                        tracing::warn!(source = %self.description, "kafka consumer error: {text}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// `m` as a received message of `topic`.
fn received(m: &BorrowedMessage<'_>, topic: Arc<str>) -> Received {
    let mut content_type = None;
    let mut headers = Vec::new();
    if let Some(h) = m.headers() {
        headers.reserve(h.count());
        for header in h.iter() {
            let value = header.value.unwrap_or_default().to_vec();
            if header.key.eq_ignore_ascii_case("content-type") && content_type.is_none() {
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
    Received {
        message,
        token: AckToken(TokenInner::Offset {
            topic,
            partition: m.partition(),
            offset: m.offset(),
        }),
        timestamp_ms: m.timestamp().to_millis(),
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
                let first = self.next().await;
                self.buffer.push(first);
            }
            let deadline = tokio::time::Instant::now() + linger;
            while self.buffer.len() < max {
                match tokio::time::timeout_at(deadline, self.next()).await {
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
