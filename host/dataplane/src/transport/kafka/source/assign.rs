//! Which partitions the source reads, and from where: in at-least-once
//! mode every partition of its topics at the offset committed for its
//! group, looked for again every few seconds ([`keep_assigned`]); in
//! `latest` mode every partition at its end ([`assign_at_end`]).

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::REQUEST_TIMEOUT;
use super::resume::{Resuming, check_silent};
use crate::outage::OutageMonitor;
use crate::transport::TransportError;
use crate::transport::kafka::Context;

/// How often an at-least-once source looks for partitions added to its
/// topics (and for topics that did not exist yet, more often at first).
const PARTITION_REFRESH: Duration = Duration::from_secs(5);

/// What [`keep_assigned`] works with.
pub(super) struct Assigner {
    pub(super) consumer: Weak<StreamConsumer<Context>>,
    pub(super) topics: Vec<String>,
    pub(super) resuming: Resuming,
    pub(super) monitor: Arc<OutageMonitor>,
    pub(super) description: String,
}

/// What one look at the cluster found.
#[derive(Default)]
struct Discovery {
    /// Partitions assigned by this look.
    assigned: Vec<(String, i32)>,
    /// Topics with no partitions (yet).
    missing: Vec<String>,
    /// Partitions assigned at a committed offset (topic, partition, offset).
    checked: Vec<(Arc<str>, i32, i64)>,
}

/// Assigns every partition of the source's topics to its consumer, at the
/// committed offsets, and keeps looking for new ones until the consumer
/// goes.
pub(super) async fn keep_assigned(a: Assigner) {
    let mut assigned: HashSet<(String, i32)> = HashSet::new();
    // Once the cluster answered: a partition found after that (added, or of
    // a topic created since) is read from its beginning when nothing is
    // committed for it (everything in it is newer than the source).
    let mut looked = false;
    let mut warned: HashSet<String> = HashSet::new();
    let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(200), PARTITION_REFRESH);
    loop {
        let Some(consumer) = a.consumer.upgrade() else {
            return;
        };
        let (topics, known, resuming) = (a.topics.clone(), assigned.clone(), a.resuming.clone());
        let round = tokio::task::spawn_blocking(move || {
            discover(&consumer, &topics, &known, looked, &resuming)
        })
        .await
        .unwrap_or_else(|e| Err(DiscoveryError::Panicked(e.to_string())));
        match round {
            Ok(d) => {
                looked = true;
                backoff.reset();
                if !d.checked.is_empty() {
                    tokio::spawn(check_silent(
                        a.consumer.clone(),
                        a.resuming.clone(),
                        d.checked.clone(),
                    ));
                }
                for (topic, partition) in &d.assigned {
                    assigned.insert((topic.clone(), *partition));
                }
                if !d.assigned.is_empty() {
                    tracing::info!(
                        source = %a.description,
                        "kafka source reads {} new partition(s), {} in all, from the committed offsets",
                        d.assigned.len(),
                        assigned.len()
                    );
                    a.monitor.recovered();
                }
                if !assigned.is_empty()
                    && let Some(c) = a.consumer.upgrade()
                {
                    c.context().ready.set();
                }
                for topic in &d.missing {
                    if warned.insert(topic.clone()) {
                        tracing::warn!(
                            source = %a.description,
                            "kafka topic `{topic}` does not exist (yet): it is read once it does"
                        );
                    }
                }
                if d.missing.is_empty() {
                    tokio::time::sleep(PARTITION_REFRESH).await;
                } else {
                    backoff.wait().await;
                }
            }
            Err(reason) => {
                a.monitor.failed(&reason);
                backoff.wait().await;
            }
        }
    }
}

/// Why a look at the cluster failed (the next one may succeed).
#[derive(Debug, thiserror::Error)]
enum DiscoveryError {
    #[error("cannot fetch the metadata of topic `{topic}`: {error}")]
    Metadata {
        topic: String,
        error: rdkafka::error::KafkaError,
    },
    #[error("cannot fetch the committed offsets: {0}")]
    Committed(rdkafka::error::KafkaError),
    #[error("cannot assign partitions: {0}")]
    Assign(rdkafka::error::KafkaError),
    /// Adding a partition to a list (librdkafka refused it).
    #[error("{0}")]
    PartitionList(#[from] rdkafka::error::KafkaError),
    #[error("the partition lookup panicked: {0}")]
    Panicked(String),
}

/// One look at the cluster (blocking): finds the partitions of `topics` not
/// in `known`, fetches their committed offsets and assigns them. Each
/// starts where the group committed or, without a commit, where
/// `auto.offset.reset` says in the first look that succeeded, and at its
/// beginning in a later look (`looked`).
fn discover(
    consumer: &StreamConsumer<Context>,
    topics: &[String],
    known: &HashSet<(String, i32)>,
    looked: bool,
    resuming: &Resuming,
) -> Result<Discovery, DiscoveryError> {
    let mut d = Discovery::default();
    let mut new = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| DiscoveryError::Metadata {
                topic: topic.clone(),
                error: e,
            })?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .find(|m| m.name() == topic && m.error().is_none())
            .map(|m| m.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if partitions.is_empty() {
            d.missing.push(topic.clone());
        }
        for p in partitions {
            if !known.contains(&(topic.clone(), p)) {
                new.push((topic.clone(), p));
            }
        }
    }
    if new.is_empty() {
        return Ok(d);
    }
    let mut query = TopicPartitionList::with_capacity(new.len());
    for (topic, p) in &new {
        query.add_partition_offset(topic, *p, Offset::Invalid)?;
    }
    let committed = consumer
        .committed_offsets(query, REQUEST_TIMEOUT)
        .map_err(DiscoveryError::Committed)?;
    let mut tpl = TopicPartitionList::with_capacity(new.len());
    let mut checked = Vec::new();
    for (topic, p) in new {
        let at = committed
            .find_partition(&topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            });
        // Stored: librdkafka fetches the committed offset again (and so
        // knows it, for the lag) or applies `auto.offset.reset`.
        let offset = match (at, looked) {
            (None, true) => Offset::Beginning,
            _ => Offset::Stored,
        };
        tpl.add_partition_offset(&topic, p, offset)?;
        if let Some(c) = at {
            checked.push((Arc::<str>::from(topic.as_str()), p, c));
        }
        d.assigned.push((topic, p));
    }
    resuming.expect(&checked);
    if let Err(e) = consumer.incremental_assign(&tpl) {
        resuming.forget(&checked);
        return Err(DiscoveryError::Assign(e));
    }
    d.checked = checked;
    Ok(d)
}

/// Assigns every partition of `topics` at its end, waiting for the topics to
/// exist.
pub(super) async fn assign_at_end(
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
