//! Reading a topic as one consumer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::topic::{State, Topic};
use crate::transport::{
    AckToken, Acker, DeliveryMode, Received, Source, TokenInner, TransportError,
};

/// Reads a [`Topic`] as consumer `consumer`. At least once: starts after
/// the consumer's last acknowledged message, and its [`MemoryAcker`]
/// moves that position. `latest`: starts at the end of the topic and
/// commits on receipt (the tokens need no acknowledgement).
#[derive(Debug)]
pub struct MemorySource {
    topic: Arc<Topic>,
    consumer: String,
    mode: DeliveryMode,
    /// The next sequence number to deliver.
    next: u64,
    /// The consumer's generation `next` belongs to.
    generation: u64,
}

impl MemorySource {
    pub fn new(topic: Arc<Topic>, consumer: &str, mode: DeliveryMode) -> MemorySource {
        let (next, generation) = {
            let mut state = topic.lock();
            let end = state.messages.len() as u64;
            let c = state.consumer(consumer);
            if mode == DeliveryMode::Latest {
                c.committed = c.committed.max(end);
            }
            (c.committed, c.generation)
        };
        MemorySource {
            topic,
            consumer: consumer.to_owned(),
            mode,
            next,
            generation,
        }
    }

    /// Messages ready for this source; starts over after the last
    /// acknowledged one when the consumer's generation changed.
    fn available(&mut self, state: &mut State) -> u64 {
        let c = state.consumer(&self.consumer);
        if c.generation != self.generation {
            self.generation = c.generation;
            self.next = c.committed;
        }
        (state.messages.len() as u64).saturating_sub(self.next)
    }

    /// Takes up to `max` ready messages.
    fn take(&mut self, max: usize) -> Vec<Received> {
        let topic = self.topic.clone();
        let mut state = topic.lock();
        let n = self.available(&mut state).min(max as u64);
        let start = usize::try_from(self.next).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        let latest = self.mode == DeliveryMode::Latest;
        let generation = self.generation;
        let received: Vec<Received> = state
            .messages
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|s| Received {
                message: s.message.clone(),
                token: if latest {
                    AckToken::none()
                } else {
                    AckToken(TokenInner::Delivery {
                        generation,
                        tag: s.sequence,
                        class: 0,
                    })
                },
                timestamp_ms: Some(s.timestamp_ms),
            })
            .collect();
        self.next += received.len() as u64;
        let next = self.next;
        let c = state.consumer(&self.consumer);
        c.taken += received.len() as u64;
        if latest {
            c.committed = c.committed.max(next);
        }
        received
    }

    async fn recv_batch(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<Received>, TransportError> {
        let max = max.max(1);
        let mut changes = self.topic.subscribe();
        loop {
            // Wait for the first message.
            loop {
                changes.borrow_and_update();
                if self.ready_count() > 0 {
                    break;
                }
                changes
                    .changed()
                    .await
                    .map_err(|_| TransportError::Closed)?;
            }
            // Then for more, until `max` or `linger`.
            let deadline = tokio::time::Instant::now() + linger;
            while self.ready_count() < max as u64 {
                match tokio::time::timeout_at(deadline, changes.changed()).await {
                    Ok(Ok(())) => {
                        changes.borrow_and_update();
                    }
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            // Empty only if a redelivery moved the position meanwhile to
            // where nothing is: wait again.
            let batch = self.take(max);
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    fn ready_count(&mut self) -> u64 {
        let topic = self.topic.clone();
        let mut state = topic.lock();
        self.available(&mut state)
    }
}

impl Source for MemorySource {
    fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(self.recv_batch(max, linger))
    }

    fn acker(&self) -> Arc<dyn Acker> {
        Arc::new(MemoryAcker {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "memory topic {} consumer {}",
            self.topic.name(),
            self.consumer
        )
    }

    fn backlog(&self) -> Option<u64> {
        Some(self.topic.len().saturating_sub(self.next))
    }
}

/// Commits a [`MemorySource`]'s consumer position: each token's sequence
/// number plus one, as a Kafka offset commit does (acknowledging out of
/// order would skip messages on the next start).
#[derive(Debug)]
pub struct MemoryAcker {
    topic: Arc<Topic>,
    consumer: String,
}

impl Acker for MemoryAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        {
            let mut state = self.topic.lock();
            let c = state.consumer(&self.consumer);
            for token in tokens {
                let TokenInner::Delivery {
                    generation,
                    tag: sequence,
                    ..
                } = token.0
                else {
                    continue;
                };
                if generation != c.generation {
                    c.stale_acks += 1;
                    continue;
                }
                c.acked.push(sequence);
                c.committed = sequence + 1;
            }
        }
        Box::pin(async { Ok(()) })
    }
}
