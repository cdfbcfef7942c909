//! Pipelines: source transport -> decode (connector) -> processor plugins ->
//! encode (connector) -> sink transport.
//!
//! Three stages run concurrently, joined by bounded queues of batches, so
//! that a slow sink slows the source (backpressure) and memory stays
//! bounded:
//!
//! 1. the **source task** collects batches (by size and time) from the
//!    source transport;
//! 2. the **stage worker** runs the plugins on a blocking thread: decode,
//!    each processor in turn, encode; failures are retried per policy, then
//!    isolated (a batch that keeps failing is split until the failing events
//!    are found) and turned into dead letters;
//! 3. the **sink task** publishes each batch and waits for the broker's
//!    confirmations, sends failed events to the dead-letter flow (and waits
//!    for that too), then acknowledges the batch's source messages, in order.
//!    A sink that can (Kafka, MQTT) has up to `queue_batches` batches in
//!    flight at once, so that their broker round trips overlap.
//!
//! In `at-least-once` mode nothing is acknowledged before it is confirmed,
//! so an outage or a crash can duplicate events but never lose them. In
//! `latest` mode the queue in front of the stage worker drops its oldest
//! batch when full, so the pipeline resumes at the live point after an
//! outage.
//!
//! This file holds the [`PipelineSpec`], the running [`Pipeline`] and the
//! batches passed between the stages; each stage has its file
//! (`source_task`, `stage_worker`, `sink_task`), dead letters theirs
//! (`dead_letter`). The tests (`tests/`) run pipelines on the memory
//! transport ([`crate::transport::memory`]).

mod dead_letter;
mod error;
mod latest;
pub mod metrics;
pub mod native;
mod sink_task;
mod source_task;
pub mod stage;
mod stage_worker;
pub mod wasm;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fnaa_event::Event;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::{NativePluginError, PipelineError};
pub use metrics::{MetricsSnapshot, PipelineMetrics};
pub use stage::{
    BoxError, Codec, PerRecord, PluginError, PluginFactory, Processor, Refusal, StageError,
};

use self::dead_letter::DeadLetter;
use self::error::FailureSlot;
use self::latest::LatestQueue;
use self::sink_task::SinkTask;
use self::source_task::{SourceTask, StageInputTx};
use self::stage_worker::StageWorker;
use crate::transport::{AckToken, DeliveryMode, Message, Readiness, Received, Sink, Source};

/// How processor (and connector) call failures are retried before the
/// events concerned go to the dead-letter flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorRetryConfig {
    /// Attempts per batch for a retryable failure (trap, deadline, a
    /// plugin's `failed`), counting the first.
    pub attempts: u32,
    /// Wait before the first retry in ms; doubles with each retry.
    pub backoff_ms: u64,
}

impl Default for ProcessorRetryConfig {
    fn default() -> Self {
        ProcessorRetryConfig {
            attempts: 3,
            backoff_ms: 50,
        }
    }
}

/// A processor instance and the plugin name it reports failures under.
pub struct NamedProcessor {
    pub plugin: String,
    pub processor: Box<dyn Processor>,
}

/// Where failed events go.
pub struct DeadLetterSpec {
    pub encoder: Box<dyn Codec>,
    pub sink: Box<dyn Sink>,
}

/// Everything a pipeline runs with, already connected and instantiated.
pub struct PipelineSpec {
    pub name: String,
    pub mode: DeliveryMode,
    /// Most messages per batch.
    pub batch_size: usize,
    /// Longest wait for a batch to fill once its first message arrived.
    pub batch_timeout: Duration,
    /// Batches waiting between two stages at most.
    pub queue_batches: usize,
    pub source: Box<dyn Source>,
    /// The source connector's plugin name, for dead letters.
    pub decoder_plugin: String,
    pub decoder: Box<dyn Codec>,
    pub processors: Vec<NamedProcessor>,
    pub encoder_plugin: String,
    pub encoder: Box<dyn Codec>,
    pub sink: Box<dyn Sink>,
    pub dead_letter: Option<DeadLetterSpec>,
    /// Output ports of the last processor -> the destination their events
    /// are published to on the sink. Empty: port `out` to the sink's own
    /// destination.
    pub routes: BTreeMap<String, String>,
    pub processor_retry: ProcessorRetryConfig,
    /// How often the metrics are logged (zero: never).
    pub metrics_interval: Duration,
}

/// A running pipeline.
pub struct Pipeline {
    name: String,
    ready: Readiness,
    metrics: Arc<PipelineMetrics>,
    cancel: CancellationToken,
    failure: FailureSlot,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A batch on its way from the source to the stage worker.
struct InBatch {
    received: Vec<Received>,
    received_at: Instant,
}

/// A batch on its way from the stage worker to the sink.
struct OutBatch {
    messages: Vec<Message>,
    /// The events `messages` were encoded from (kept only when there is a
    /// dead-letter flow, to dead-letter publish failures).
    events: Option<Vec<Event>>,
    /// Events that failed in the stage, annotated.
    dead: Vec<Event>,
    tokens: Vec<AckToken>,
    received_at: Instant,
}

/// The queue between source and stage worker.
enum StageInput {
    Bounded(mpsc::Receiver<InBatch>),
    Latest(Arc<LatestQueue<InBatch>>),
}

impl StageInput {
    async fn recv(&mut self) -> Option<InBatch> {
        match self {
            StageInput::Bounded(rx) => rx.recv().await,
            StageInput::Latest(q) => q.pop().await,
        }
    }
}

impl Pipeline {
    /// Starts the pipeline's tasks.
    pub fn start(spec: PipelineSpec) -> Pipeline {
        let metrics = Arc::new(PipelineMetrics::new());
        let cancel = CancellationToken::new();
        let queue = spec.queue_batches.max(1);
        let (input_tx, input_rx) = match spec.mode {
            DeliveryMode::AtLeastOnce => {
                let (tx, rx) = mpsc::channel(queue);
                (StageInputTx::Bounded(tx), StageInput::Bounded(rx))
            }
            DeliveryMode::Latest => {
                let q = Arc::new(LatestQueue::new(queue));
                (StageInputTx::Latest(q.clone()), StageInput::Latest(q))
            }
        };
        // The sink task keeps up to `queue` batches in flight (see
        // `Sink::send`) behind a channel of one: as many batches as `queue`
        // waiting ones and one in the sink.
        let (out_tx, out_rx) = mpsc::channel(1);
        let acker = spec.source.acker();
        tracing::info!(
            pipeline = %spec.name,
            mode = ?spec.mode,
            source = %spec.source.describe(),
            sink = %spec.sink.describe(),
            processors = ?spec.processors.iter().map(|p| p.plugin.as_str()).collect::<Vec<_>>(),
            "pipeline starting"
        );
        let ready = Readiness::new();
        let source = SourceTask {
            name: spec.name.clone(),
            ready: ready.clone(),
            source: spec.source,
            batch_size: spec.batch_size.max(1),
            batch_timeout: spec.batch_timeout,
            metrics: metrics.clone(),
            cancel: cancel.clone(),
        };
        let worker = StageWorker {
            pipeline: spec.name.clone(),
            decoder_plugin: spec.decoder_plugin,
            decoder: spec.decoder,
            processors: spec.processors,
            encoder_plugin: spec.encoder_plugin,
            encoder: spec.encoder,
            keep_events: spec.dead_letter.is_some(),
            routes: spec.routes,
            retry: spec.processor_retry,
            metrics: metrics.clone(),
            sequence: 0,
        };
        let sink = SinkTask {
            name: spec.name.clone(),
            in_flight: queue,
            sink: spec.sink,
            dead_letter: spec.dead_letter.map(DeadLetter::new),
            acker,
            metrics: metrics.clone(),
        };
        let failure = FailureSlot::default();
        let mut tasks = vec![
            tokio::spawn(source.run(input_tx)),
            spawn_recorded(
                &spec.name,
                &failure,
                stage_worker::run_stage(worker, input_rx, out_tx),
            ),
            spawn_recorded(&spec.name, &failure, sink.run(out_rx)),
        ];
        if !spec.metrics_interval.is_zero() {
            tasks.push(tokio::spawn(metrics::report(
                spec.name.clone(),
                metrics.clone(),
                spec.metrics_interval,
                cancel.clone(),
            )));
        }
        Pipeline {
            name: spec.name,
            ready,
            metrics,
            cancel,
            failure,
            tasks,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Resolves once the pipeline's source consumes (see [`Source::ready`]).
    pub fn ready(&self) -> futures::future::BoxFuture<'static, ()> {
        self.ready.wait_owned()
    }

    /// The pipeline's live counters.
    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        self.metrics.clone()
    }

    /// Why the pipeline stopped by itself, once it did (see
    /// [`Pipeline::is_running`]).
    pub fn failure(&self) -> Option<Arc<PipelineError>> {
        self.failure.get()
    }

    /// True while every task of the pipeline runs.
    pub fn is_running(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }

    /// Stops reading the source, lets the batches already read go through
    /// (published, confirmed, acknowledged), then returns. Gives up waiting
    /// after `grace`; what is not acknowledged by then is redelivered later
    /// (at-least-once).
    pub async fn stop(self, grace: Duration) {
        self.cancel.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(pipeline = %self.name, "pipeline did not drain within {grace:?}; unacknowledged messages will be redelivered");
        }
        tracing::info!(pipeline = %self.name, "pipeline stopped");
    }
}

/// Spawns a pipeline task; the error it stops with is logged and recorded.
fn spawn_recorded(
    pipeline: &str,
    failure: &FailureSlot,
    task: impl Future<Output = Result<(), PipelineError>> + Send + 'static,
) -> JoinHandle<()> {
    let (pipeline, failure) = (pipeline.to_owned(), failure.clone());
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(pipeline = %pipeline, "pipeline stops (unacknowledged messages will be redelivered): {e}");
            failure.set(e);
        }
    })
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
