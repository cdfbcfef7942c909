//! Reading one outbox topic as one consumer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Outbox, blocking};
use crate::transport::{
    AckToken, Acker, DeliveryMode, Received, Source, TokenInner, TransportError,
};

/// Reads an outbox topic from the consumer's committed position. At least
/// once: its [`OutboxAcker`] moves the position, durably, and the
/// acknowledged messages leave the file. `latest`: starts at the head and
/// commits on receipt.
#[derive(Debug)]
pub struct OutboxSource {
    outbox: Arc<Outbox>,
    topic: String,
    consumer: String,
    mode: DeliveryMode,
    /// The next sequence number to deliver.
    next: u64,
    changes: watch::Receiver<u64>,
}

impl OutboxSource {
    /// A source at `position` (from [`Outbox::join`]).
    pub fn new(
        outbox: Arc<Outbox>,
        topic: &str,
        consumer: &str,
        position: u64,
        mode: DeliveryMode,
    ) -> OutboxSource {
        let changes = outbox.watch(topic);
        OutboxSource {
            outbox,
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
            mode,
            next: position,
            changes,
        }
    }

    async fn read(&mut self, max: usize) -> Result<Vec<Received>, TransportError> {
        self.changes.borrow_and_update();
        let (outbox, topic, from) = (self.outbox.clone(), self.topic.clone(), self.next);
        let stored = blocking(move || outbox.read(&topic, from, max)).await?;
        let latest = self.mode == DeliveryMode::Latest;
        let received: Vec<Received> = stored
            .into_iter()
            .map(|s| Received {
                token: if latest {
                    AckToken::none()
                } else {
                    AckToken(TokenInner::Delivery {
                        generation: 0,
                        tag: s.sequence,
                        class: 0,
                    })
                },
                message: s.message,
                timestamp_ms: Some(s.timestamp_ms),
            })
            .collect();
        Ok(received)
    }

    async fn recv_batch(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<Received>, TransportError> {
        let max = max.max(1);
        let mut batch = loop {
            let batch = self.read(max).await?;
            if !batch.is_empty() {
                break batch;
            }
            self.changes
                .changed()
                .await
                .map_err(|_| TransportError::Closed)?;
        };
        self.advance(&batch);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Ok(Ok(())) => {
                    let more = self.read(max - batch.len()).await?;
                    self.advance(&more);
                    batch.extend(more);
                }
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if self.mode == DeliveryMode::Latest {
            let (outbox, topic, consumer, next) = (
                self.outbox.clone(),
                self.topic.clone(),
                self.consumer.clone(),
                self.next,
            );
            blocking(move || outbox.commit(&topic, &consumer, next)).await?;
        }
        Ok(batch)
    }

    /// Moves past `batch`: the next read starts after its last message.
    fn advance(&mut self, batch: &[Received]) {
        self.next += batch.len() as u64;
    }
}

impl Source for OutboxSource {
    fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(self.recv_batch(max, linger))
    }

    fn acker(&self) -> Arc<dyn Acker> {
        Arc::new(OutboxAcker {
            outbox: self.outbox.clone(),
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "outbox {} topic {} consumer {}",
            self.outbox.path().display(),
            self.topic,
            self.consumer
        )
    }

    fn backlog(&self) -> Option<u64> {
        self.outbox
            .head(&self.topic)
            .ok()
            .map(|head| head.saturating_sub(self.next))
    }
}

/// Commits an [`OutboxSource`]'s position: after the last token's
/// sequence number (tokens come in the order received).
#[derive(Debug)]
pub struct OutboxAcker {
    outbox: Arc<Outbox>,
    topic: String,
    consumer: String,
}

impl Acker for OutboxAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        let last = tokens
            .iter()
            .filter_map(|t| match t.0 {
                TokenInner::Delivery { tag, .. } => Some(tag),
                _ => None,
            })
            .max();
        Box::pin(async move {
            let Some(last) = last else {
                return Ok(());
            };
            let (outbox, topic, consumer) = (
                self.outbox.clone(),
                self.topic.clone(),
                self.consumer.clone(),
            );
            blocking(move || outbox.commit(&topic, &consumer, last + 1)).await
        })
    }
}
