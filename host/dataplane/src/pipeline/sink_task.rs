//! The sink task: publishes each batch and waits for the broker's
//! confirmations, sends failed events to the dead-letter flow (and waits
//! for that too), then acknowledges the batch's source messages, in order.
//! A sink that can (Kafka, MQTT) has up to `queue_batches` batches in
//! flight at once, so that their broker round trips overlap.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::dead_letter::{DeadLetter, annotate};
use super::{OutBatch, PipelineError, PipelineMetrics};
use crate::transport::{Acker, Outcome, SendFuture, Sink, TransportError};

/// Publishes batches, dead-letters failures, acknowledges sources.
pub(super) struct SinkTask {
    pub(super) name: String,
    /// Batches handed to the sink at most (see [`Sink::send`]):
    /// their broker round trips overlap, and their source messages are
    /// still acknowledged batch after batch, in order.
    pub(super) in_flight: usize,
    pub(super) sink: Box<dyn Sink>,
    pub(super) dead_letter: Option<DeadLetter>,
    pub(super) acker: Arc<dyn Acker>,
    pub(super) metrics: Arc<PipelineMetrics>,
}

/// A batch handed to the sink, waiting for its outcomes.
struct InFlight {
    /// The batch, its messages taken out.
    batch: OutBatch,
    count: usize,
    outcomes: SendFuture,
}

impl SinkTask {
    /// Runs until the stage worker is gone and every batch is finished, or
    /// until the sink or the dead-letter sink fails for good.
    pub(super) async fn run(
        mut self,
        mut input: mpsc::Receiver<OutBatch>,
    ) -> Result<(), PipelineError> {
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut ready: Option<OutBatch> = None;
        let mut closed = false;
        loop {
            // Hand the sink what is ready, up to the limit; wait for input
            // only when nothing is in flight.
            while !closed && in_flight.len() < self.in_flight {
                let batch = match ready.take() {
                    Some(b) => Some(b),
                    None if in_flight.is_empty() => input.recv().await,
                    None => match input.try_recv() {
                        Ok(b) => Some(b),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                    },
                };
                let Some(batch) = batch else {
                    closed = true;
                    break;
                };
                self.start(batch, &mut in_flight);
            }
            let room = !closed && in_flight.len() < self.in_flight;
            let Some(front) = in_flight.front_mut() else {
                if closed {
                    break;
                }
                continue;
            };
            let done = tokio::select! {
                biased;
                outcomes = &mut front.outcomes => Some(outcomes),
                batch = input.recv(), if room => {
                    match batch {
                        Some(b) => ready = Some(b),
                        None => closed = true,
                    }
                    None
                }
            };
            if let Some(outcomes) = done
                && let Some(f) = in_flight.pop_front()
            {
                self.finish(f.batch, f.count, outcomes).await?;
            }
        }
        tracing::debug!(pipeline = %self.name, "sink task done");
        Ok(())
    }

    /// Hands `batch` to the sink (an empty one needs no round trip).
    fn start(&mut self, mut batch: OutBatch, in_flight: &mut VecDeque<InFlight>) {
        let messages = std::mem::take(&mut batch.messages);
        let count = messages.len();
        let outcomes = if messages.is_empty() {
            Box::pin(async { Ok(Vec::new()) })
        } else {
            self.sink.send(messages)
        };
        in_flight.push_back(InFlight {
            batch,
            count,
            outcomes,
        });
    }

    /// Dead-letters what failed and acknowledges the batch's source
    /// messages. An error when the pipeline must stop; the batch is then
    /// not acknowledged.
    async fn finish(
        &mut self,
        batch: OutBatch,
        count: usize,
        outcomes: Result<Vec<Outcome>, TransportError>,
    ) -> Result<(), PipelineError> {
        let OutBatch {
            messages: _,
            events,
            mut dead,
            tokens,
            received_at,
        } = batch;
        let outcomes = outcomes.map_err(PipelineError::Sink)?;
        let mut confirmed = 0;
        let mut failures = Vec::new();
        for (i, outcome) in outcomes.into_iter().enumerate().take(count) {
            let reason = match outcome {
                Outcome::Confirmed => {
                    confirmed += 1;
                    continue;
                }
                Outcome::Unroutable { reason } => {
                    PipelineMetrics::add(&self.metrics.unroutable, 1);
                    format!("unroutable: {reason}")
                }
                Outcome::Rejected { reason } => reason,
            };
            PipelineMetrics::add(&self.metrics.publish_failures, 1);
            failures.push(reason.clone());
            if let Some(e) = events.as_ref().and_then(|evs| evs.get(i)) {
                dead.push(annotate(e.clone(), &self.name, "publish", "", &reason));
            }
        }
        PipelineMetrics::add(&self.metrics.events_out, confirmed);
        if !failures.is_empty() {
            if self.dead_letter.is_some() {
                tracing::warn!(
                    pipeline = %self.name,
                    failed = failures.len(),
                    first = %failures[0],
                    "the sink refused {} message(s); they go to the dead-letter flow",
                    failures.len()
                );
            } else {
                tracing::error!(
                    pipeline = %self.name,
                    failed = failures.len(),
                    first = %failures[0],
                    "the sink refused {} message(s) and the pipeline has no dead-letter flow; they are acknowledged and dropped",
                    failures.len()
                );
            }
        }
        if let Some(dl) = self.dead_letter.as_mut() {
            if !dead.is_empty() {
                let n = dl.send(&self.name, dead).await?;
                PipelineMetrics::add(&self.metrics.dead_lettered, n);
            }
        } else if !dead.is_empty() || !failures.is_empty() {
            // Without a dead-letter flow, publish failures were reported
            // above and stage failures are reported here, one line each
            // (up to ten per batch).
            PipelineMetrics::add(&self.metrics.dropped_failures, dead.len() + failures.len());
            for e in dead.iter().take(10) {
                tracing::error!(
                    pipeline = %self.name,
                    event = %e.id,
                    stage = %e.attribute("deadletterstage").unwrap_or_default(),
                    "event failed and the pipeline has no dead-letter flow; it is acknowledged and dropped: {}",
                    e.attribute("deadletterreason").unwrap_or_default()
                );
            }
            if dead.len() > 10 {
                tracing::error!(pipeline = %self.name, "... and {} more failed events dropped", dead.len() - 10);
            }
        }
        if let Err(e) = self.acker.ack(tokens).await {
            tracing::warn!(pipeline = %self.name, "acknowledging the source failed (messages will be redelivered): {e}");
        }
        PipelineMetrics::add(&self.metrics.batches, 1);
        self.metrics.batch_latency.record(received_at.elapsed());
        Ok(())
    }
}
