//! The source task: collects batches (by size and time) from the source
//! transport and hands them to the stage worker's queue, waiting when that
//! queue is full (at-least-once) or discarding its oldest batch
//! (`latest`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::latest::LatestQueue;
use super::{InBatch, PipelineMetrics, now_ms};
use crate::transport::{Readiness, Source, TransportError};

/// The sending end of the queue between the source task and the stage
/// worker.
pub(super) enum StageInputTx {
    Bounded(mpsc::Sender<InBatch>),
    Latest(Arc<LatestQueue<InBatch>>),
}

/// Reads the source and feeds the stage worker.
pub(super) struct SourceTask {
    pub(super) name: String,
    pub(super) ready: Readiness,
    pub(super) source: Box<dyn Source>,
    pub(super) batch_size: usize,
    pub(super) batch_timeout: Duration,
    pub(super) metrics: Arc<PipelineMetrics>,
    pub(super) cancel: CancellationToken,
}

impl SourceTask {
    pub(super) async fn run(mut self, out: StageInputTx) {
        // Reading must not wait for readiness: a Kafka consumer, for one,
        // only gets its partitions while it is polled.
        let consuming = self.source.ready();
        let ready = self.ready.clone();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = consuming => ready.set(),
            }
        });
        loop {
            let batch = tokio::select! {
                _ = self.cancel.cancelled() => break,
                b = self.source.recv(self.batch_size, self.batch_timeout) => b,
            };
            let received = match batch {
                Ok(b) => b,
                Err(TransportError::Closed) => break,
                Err(e) => {
                    tracing::error!(pipeline = %self.name, "source: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            PipelineMetrics::add(&self.metrics.events_in, received.len());
            if let Some(ts) = received.iter().filter_map(|r| r.timestamp_ms).max() {
                self.metrics
                    .lag_ms
                    .store((now_ms() - ts).max(0), Ordering::Relaxed);
            }
            if let Some(backlog) = self.source.backlog() {
                self.metrics.backlog.store(
                    i64::try_from(backlog).unwrap_or(i64::MAX),
                    Ordering::Relaxed,
                );
            }
            let batch = InBatch {
                received,
                received_at: Instant::now(),
            };
            match &out {
                StageInputTx::Bounded(tx) => {
                    tokio::select! {
                        _ = self.cancel.cancelled() => break,
                        r = tx.send(batch) => if r.is_err() { break },
                    }
                }
                StageInputTx::Latest(q) => {
                    if let Some(old) = q.push(batch) {
                        let n = old.received.len();
                        let total = self
                            .metrics
                            .discarded_backlog
                            .fetch_add(n as u64, Ordering::Relaxed)
                            + n as u64;
                        tracing::debug!(pipeline = %self.name, discarded = n, total, "latest: sink behind, discarded the oldest batch");
                    }
                }
            }
        }
        if let StageInputTx::Latest(q) = &out {
            q.close();
        }
        tracing::debug!(pipeline = %self.name, "source task done");
    }
}
