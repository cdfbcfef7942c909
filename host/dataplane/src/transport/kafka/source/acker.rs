//! Offset commits of what the sink confirmed (at-least-once mode).

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::transport::kafka::Context;
use crate::transport::{AckToken, Acker, TokenInner, TransportError};

/// Commits offsets of confirmed messages, for the group the source is
/// named after (it does not join it).
pub(super) struct KafkaAcker {
    pub(super) consumer: Arc<StreamConsumer<Context>>,
}

impl Acker for KafkaAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let mut next: HashMap<(Arc<str>, i32), i64> = HashMap::new();
            for token in tokens {
                if let TokenInner::Offset {
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
            // Asynchronous, in order (one coordinator connection): a lost
            // commit means redelivery (at-least-once), never loss.
            // Generation-less (the source is no group member): refused
            // while subscribed consumers share the group.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!("kafka offset commit failed (messages will be redelivered): {e}");
            }
            Ok(())
        })
    }
}
