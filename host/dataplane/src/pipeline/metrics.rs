//! Per-pipeline metrics: counters and a latency histogram, cheap to update
//! from every stage, read as a [`MetricsSnapshot`] by the metrics endpoint
//! and logged periodically through `tracing`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Latency histogram with power-of-two buckets from 1 µs to about 1 h.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; 32],
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        let bucket = (63 - us.leading_zeros() as usize).min(31);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket, in µs.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0;
        }
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return (1u64 << (i + 1)).min(self.max_us.load(Ordering::Relaxed).max(1));
            }
        }
        self.max_us.load(Ordering::Relaxed)
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn mean_us(&self) -> u64 {
        self.sum_us
            .load(Ordering::Relaxed)
            .checked_div(self.count())
            .unwrap_or(0)
    }
}

/// The counters of one pipeline.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// Messages received from the source.
    pub events_in: AtomicU64,
    /// Messages the sink confirmed.
    pub events_out: AtomicU64,
    /// Events the processors dropped on purpose (filters).
    pub events_filtered: AtomicU64,
    /// Batches completed (sent, confirmed, acknowledged).
    pub batches: AtomicU64,
    /// Messages the connector could not decode.
    pub decode_errors: AtomicU64,
    /// Failed processor calls (each retry counts).
    pub process_errors: AtomicU64,
    /// Events the connector could not encode.
    pub encode_errors: AtomicU64,
    /// Messages the sink refused for good (including unroutable).
    pub publish_failures: AtomicU64,
    /// Of those, AMQP messages that reached no queue.
    pub unroutable: AtomicU64,
    /// Processor calls retried.
    pub retries: AtomicU64,
    /// Events sent to the dead-letter flow.
    pub dead_lettered: AtomicU64,
    /// Failed events with no dead-letter flow to go to (logged, then
    /// acknowledged).
    pub dropped_failures: AtomicU64,
    /// Events discarded in `latest` mode because the sink fell behind.
    pub discarded_backlog: AtomicU64,
    /// Age of the newest received message when it arrived, in ms (from the
    /// broker or producer timestamp; -1 when unknown).
    pub lag_ms: AtomicI64,
    /// Messages waiting at the broker for this pipeline (Kafka consumer lag;
    /// -1 when unknown).
    pub backlog: AtomicI64,
    /// From receipt of a batch to its acknowledgement.
    pub batch_latency: Histogram,
    /// Time in the wasm stage (decode, processors, encode) per batch.
    pub stage_latency: Histogram,
}

/// A point-in-time copy of [`PipelineMetrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    pub events_in: u64,
    pub events_out: u64,
    pub events_filtered: u64,
    pub batches: u64,
    pub decode_errors: u64,
    pub process_errors: u64,
    pub encode_errors: u64,
    pub publish_failures: u64,
    pub unroutable: u64,
    pub retries: u64,
    pub dead_lettered: u64,
    pub dropped_failures: u64,
    pub discarded_backlog: u64,
    pub lag_ms: i64,
    pub backlog: i64,
    pub batch_latency_p50_us: u64,
    pub batch_latency_p99_us: u64,
    pub stage_latency_p50_us: u64,
    pub stage_latency_p99_us: u64,
}

impl PipelineMetrics {
    pub fn new() -> Self {
        let m = PipelineMetrics::default();
        m.lag_ms.store(-1, Ordering::Relaxed);
        m.backlog.store(-1, Ordering::Relaxed);
        m
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            events_in: l(&self.events_in),
            events_out: l(&self.events_out),
            events_filtered: l(&self.events_filtered),
            batches: l(&self.batches),
            decode_errors: l(&self.decode_errors),
            process_errors: l(&self.process_errors),
            encode_errors: l(&self.encode_errors),
            publish_failures: l(&self.publish_failures),
            unroutable: l(&self.unroutable),
            retries: l(&self.retries),
            dead_lettered: l(&self.dead_lettered),
            dropped_failures: l(&self.dropped_failures),
            discarded_backlog: l(&self.discarded_backlog),
            lag_ms: self.lag_ms.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
            batch_latency_p50_us: self.batch_latency.quantile_us(0.5),
            batch_latency_p99_us: self.batch_latency.quantile_us(0.99),
            stage_latency_p50_us: self.stage_latency.quantile_us(0.5),
            stage_latency_p99_us: self.stage_latency.quantile_us(0.99),
        }
    }
}

/// Logs `metrics` every `every` (when they changed) until `cancel`.
pub(super) async fn report(
    name: String,
    metrics: Arc<PipelineMetrics>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut last = MetricsSnapshot::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let s = metrics.snapshot();
        if s == last {
            continue;
        }
        tracing::info!(
            pipeline = %name,
            events_in = s.events_in,
            events_out = s.events_out,
            filtered = s.events_filtered,
            errors = s.decode_errors + s.process_errors + s.encode_errors + s.publish_failures,
            retries = s.retries,
            dead_lettered = s.dead_lettered,
            discarded = s.discarded_backlog,
            lag_ms = s.lag_ms,
            backlog = s.backlog,
            batch_p50_us = s.batch_latency_p50_us,
            batch_p99_us = s.batch_latency_p99_us,
            "pipeline metrics"
        );
        last = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_millis(10));
        h.record(Duration::from_millis(10));
        assert_eq!(h.quantile_us(0.5), 128);
        assert!(h.quantile_us(0.99) >= 8192, "{}", h.quantile_us(0.99));
        assert_eq!(h.count(), 100);
    }
}
