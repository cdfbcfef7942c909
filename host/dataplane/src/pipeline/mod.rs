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

mod latest;
pub mod metrics;
pub mod native;
pub mod stage;
pub mod wasm;

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fnaa_event::binding::STRUCTURED_CONTENT_TYPE;
use fnaa_event::{AttributeValue, Event};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use metrics::{MetricsSnapshot, PipelineMetrics};
pub use stage::{Codec, PluginFactory, Processor, StageError};

use self::latest::LatestQueue;
use crate::transport::{
    AckToken, Acker, DeliveryMode, Message, Outcome, Readiness, Received, SendFuture, Sink, Source,
    TransportError,
};

/// How processor (and connector) call failures are retried before the
/// events concerned go to the dead-letter flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

enum StageInputTx {
    Bounded(mpsc::Sender<InBatch>),
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
            dead_letter: spec.dead_letter.map(|d| DeadLetter {
                encoder: Some(d.encoder),
                sink: d.sink,
            }),
            acker,
            metrics: metrics.clone(),
        };
        let mut tasks = vec![
            tokio::spawn(source.run(input_tx)),
            tokio::spawn(run_stage(worker, input_rx, out_tx)),
            tokio::spawn(sink.run(out_rx)),
        ];
        if !spec.metrics_interval.is_zero() {
            tasks.push(tokio::spawn(report_metrics(
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

struct SourceTask {
    name: String,
    ready: Readiness,
    source: Box<dyn Source>,
    batch_size: usize,
    batch_timeout: Duration,
    metrics: Arc<PipelineMetrics>,
    cancel: CancellationToken,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SourceTask {
    async fn run(mut self, out: StageInputTx) {
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

/// Runs the stage worker on blocking threads, one batch at a time.
async fn run_stage(worker: StageWorker, mut input: StageInput, out: mpsc::Sender<OutBatch>) {
    let mut worker = Some(worker);
    while let Some(batch) = input.recv().await {
        let Some(mut w) = worker.take() else { break };
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let out = w.run(batch);
            (w, out)
        })
        .await;
        let (w, batch) = match joined {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    "pipeline stage worker panicked: {e}; the pipeline stops (unacknowledged messages will be redelivered)"
                );
                break;
            }
        };
        w.metrics.stage_latency.record(started.elapsed());
        worker = Some(w);
        if out.send(batch).await.is_err() {
            break;
        }
    }
}

/// The plugins of a pipeline and the failure policy around them.
struct StageWorker {
    pipeline: String,
    decoder_plugin: String,
    decoder: Box<dyn Codec>,
    processors: Vec<NamedProcessor>,
    encoder_plugin: String,
    encoder: Box<dyn Codec>,
    keep_events: bool,
    routes: BTreeMap<String, String>,
    retry: ProcessorRetryConfig,
    metrics: Arc<PipelineMetrics>,
    sequence: u64,
}

/// Marks `event` as a dead letter: why, where and in which pipeline it
/// failed, as extension attributes.
fn annotate(mut event: Event, pipeline: &str, stage: &str, plugin: &str, reason: &str) -> Event {
    event.set_extension(
        "deadletterreason",
        AttributeValue::String(reason.to_owned()),
    );
    event.set_extension("deadletterstage", AttributeValue::String(stage.to_owned()));
    event.set_extension(
        "deadletterpipeline",
        AttributeValue::String(pipeline.to_owned()),
    );
    if !plugin.is_empty() {
        event.set_extension(
            "deadletterplugin",
            AttributeValue::String(plugin.to_owned()),
        );
    }
    event
}

impl StageWorker {
    fn backoff(&self, attempt: u32) -> Duration {
        Duration::from_millis(self.retry.backoff_ms.saturating_mul(1 << attempt.min(10)))
    }

    /// A message the connector could not decode, wrapped into an event so
    /// that it can go to the dead-letter flow.
    fn undecodable(&mut self, m: Message, reason: &str) -> Event {
        self.sequence += 1;
        let id = format!("{}-{}-{}", self.pipeline, now_ms(), self.sequence);
        let mut e = Event::new(
            id,
            format!("/fnaa/pipelines/{}", self.pipeline),
            "dev.fnaa.deadletter.undecodable",
        );
        e.subject = Some(m.destination.name.clone());
        e.data_content_type = Some(
            m.content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        );
        e.data = Some(m.payload);
        if let Some(rk) = m.destination.routing_key {
            e.set_extension("deadletterroutingkey", AttributeValue::String(rk));
        }
        annotate(e, &self.pipeline, "decode", &self.decoder_plugin, reason)
    }

    fn run(&mut self, batch: InBatch) -> OutBatch {
        let mut messages = Vec::with_capacity(batch.received.len());
        let mut tokens = Vec::with_capacity(batch.received.len());
        for r in batch.received {
            messages.push(r.message);
            tokens.push(r.token);
        }
        let mut dead = Vec::new();

        // Decode.
        let decoded = self.call_codec(true, |c| c.decode(&messages));
        let mut events = Vec::with_capacity(messages.len());
        match decoded {
            Ok(results) if results.len() == messages.len() => {
                for (m, r) in messages.into_iter().zip(results) {
                    match r {
                        Ok(e) => events.push(e),
                        Err(reason) => {
                            PipelineMetrics::add(&self.metrics.decode_errors, 1);
                            dead.push(self.undecodable(m, &reason));
                        }
                    }
                }
            }
            Ok(results) => {
                let reason = format!(
                    "connector returned {} results for {} messages",
                    results.len(),
                    messages.len()
                );
                PipelineMetrics::add(&self.metrics.decode_errors, messages.len());
                for m in messages {
                    dead.push(self.undecodable(m, &reason));
                }
            }
            Err(e) => {
                PipelineMetrics::add(&self.metrics.decode_errors, messages.len());
                for m in messages {
                    dead.push(self.undecodable(m, &e.reason));
                }
            }
        }

        // Processors: each one's `out` port feeds the next; the last one's
        // ports go where `routes` says (or `out` to the sink's destination).
        let mut destinations = Vec::new();
        let last = self.processors.len().checked_sub(1);
        for i in 0..self.processors.len() {
            let (inputs, dead_before) = (events.len(), dead.len());
            let mut emitted = Vec::with_capacity(events.len());
            self.process(i, events, &mut emitted, &mut dead);
            let routed = Some(i) == last && !self.routes.is_empty();
            events = Vec::with_capacity(emitted.len());
            for (port, e) in emitted {
                if routed {
                    if let Some(destination) = self.routes.get(&port) {
                        destinations.push(destination.clone());
                        events.push(e);
                    }
                } else if port == "out" {
                    events.push(e);
                }
            }
            let failed = dead.len() - dead_before;
            let filtered = inputs.saturating_sub(failed).saturating_sub(events.len());
            if filtered > 0 {
                PipelineMetrics::add(&self.metrics.events_filtered, filtered);
            }
        }

        // Encode.
        let mut out_messages = Vec::with_capacity(events.len());
        let mut kept = self.keep_events.then(|| Vec::with_capacity(events.len()));
        let encoded = self.call_codec(false, |c| c.encode(&events));
        match encoded {
            Ok(results) if results.len() == events.len() => {
                for (i, (e, r)) in events.into_iter().zip(results).enumerate() {
                    match r {
                        Ok(mut m) => {
                            if let Some(destination) = destinations.get(i) {
                                m.destination.name.clone_from(destination);
                            }
                            out_messages.push(m);
                            if let Some(k) = kept.as_mut() {
                                k.push(e);
                            }
                        }
                        Err(reason) => {
                            PipelineMetrics::add(&self.metrics.encode_errors, 1);
                            dead.push(annotate(
                                e,
                                &self.pipeline,
                                "encode",
                                &self.encoder_plugin,
                                &reason,
                            ));
                        }
                    }
                }
            }
            other => {
                let reason = match other {
                    Ok(r) => format!(
                        "connector returned {} results for {} events",
                        r.len(),
                        events.len()
                    ),
                    Err(e) => e.reason,
                };
                PipelineMetrics::add(&self.metrics.encode_errors, events.len());
                for e in events {
                    dead.push(annotate(
                        e,
                        &self.pipeline,
                        "encode",
                        &self.encoder_plugin,
                        &reason,
                    ));
                }
            }
        }
        OutBatch {
            messages: out_messages,
            events: kept,
            dead,
            tokens,
            received_at: batch.received_at,
        }
    }

    /// Calls the decoder (`decode`) or the encoder with retries of
    /// retryable failures.
    fn call_codec<T>(
        &mut self,
        decode: bool,
        mut call: impl FnMut(&mut dyn Codec) -> Result<T, StageError>,
    ) -> Result<T, StageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let codec: &mut dyn Codec = if decode {
                self.decoder.as_mut()
            } else {
                self.encoder.as_mut()
            };
            match call(codec) {
                Ok(r) => return Ok(r),
                Err(e) if e.retryable && attempt < self.retry.attempts => {
                    PipelineMetrics::add(&self.metrics.retries, 1);
                    tracing::warn!(pipeline = %self.pipeline, attempt, "connector failed, retrying: {}", e.reason);
                    std::thread::sleep(self.backoff(attempt - 1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs processor `index` over `events`, appending what it emits
    /// (output port, event) to `out` and dead letters to `dead`. Retryable
    /// failures are retried; a batch that still fails is split in halves
    /// until the failing events are isolated.
    fn process(
        &mut self,
        index: usize,
        mut events: Vec<Event>,
        out: &mut Vec<(String, Event)>,
        dead: &mut Vec<Event>,
    ) {
        let mut attempts_left = self.retry.attempts.max(1);
        let mut attempt = 0;
        while !events.is_empty() {
            attempt += 1;
            let np = &mut self.processors[index];
            match np.processor.process("in", &events) {
                Ok(emitted) => {
                    out.extend(emitted);
                    return;
                }
                Err(err) => {
                    PipelineMetrics::add(&self.metrics.process_errors, 1);
                    let plugin = np.plugin.clone();
                    if let Some(bad) = err.invalid_index.filter(|&i| i < events.len()) {
                        let e = events.remove(bad);
                        tracing::warn!(pipeline = %self.pipeline, plugin, event = %e.id, "processor refused an event: {}", err.reason);
                        dead.push(annotate(e, &self.pipeline, "process", &plugin, &err.reason));
                        attempt = 0;
                        continue;
                    }
                    attempts_left -= 1;
                    if err.retryable && attempts_left > 0 {
                        PipelineMetrics::add(&self.metrics.retries, 1);
                        tracing::warn!(pipeline = %self.pipeline, plugin, attempt, "processor failed, retrying: {}", err.reason);
                        std::thread::sleep(self.backoff(attempt - 1));
                        continue;
                    }
                    if events.len() == 1 {
                        let e = events.remove(0);
                        tracing::warn!(pipeline = %self.pipeline, plugin, event = %e.id, "processor failed on an event; dead-lettering it: {}", err.reason);
                        dead.push(annotate(e, &self.pipeline, "process", &plugin, &err.reason));
                        return;
                    }
                    // Isolate the failing events: each half gets one attempt.
                    let second = events.split_off(events.len() / 2);
                    let saved = std::mem::replace(&mut self.retry.attempts, 1);
                    self.process(index, events, out, dead);
                    self.process(index, second, out, dead);
                    self.retry.attempts = saved;
                    return;
                }
            }
        }
    }
}

/// The dead-letter flow of a pipeline.
struct DeadLetter {
    encoder: Option<Box<dyn Codec>>,
    sink: Box<dyn Sink>,
}

impl DeadLetter {
    /// Encodes and publishes `events`, returning once the broker confirmed
    /// them (the sink retries through outages). Events the dead-letter
    /// connector cannot encode go out in structured mode instead.
    async fn send(&mut self, pipeline: &str, events: Vec<Event>) -> Result<usize, TransportError> {
        let Some(mut encoder) = self.encoder.take() else {
            return Err(TransportError::Closed);
        };
        let joined = tokio::task::spawn_blocking(move || {
            let r = encoder.encode(&events);
            (encoder, r, events)
        })
        .await;
        let (encoder, result, events) = joined.map_err(|_| TransportError::Closed)?;
        self.encoder = Some(encoder);
        let results = match result {
            Ok(r) if r.len() == events.len() => r,
            _ => vec![Err("dead-letter connector failed".to_owned()); events.len()],
        };
        let messages: Vec<Message> = events
            .iter()
            .zip(results)
            .map(|(e, r)| {
                r.unwrap_or_else(|_| Message {
                    content_type: Some(STRUCTURED_CONTENT_TYPE.to_owned()),
                    payload: fnaa_event::to_json(e),
                    ..Message::default()
                })
            })
            .collect();
        let outcomes = self.sink.send(messages).await?;
        let mut sent = 0;
        for (e, o) in events.iter().zip(outcomes) {
            match o {
                Outcome::Confirmed => sent += 1,
                Outcome::Unroutable { reason } | Outcome::Rejected { reason } => tracing::error!(
                    pipeline,
                    event = %e.id,
                    "the dead-letter flow refused a failed event, which is lost: {reason}"
                ),
            }
        }
        Ok(sent)
    }
}

struct SinkTask {
    name: String,
    /// Batches handed to the sink at most (see [`Sink::send`]):
    /// their broker round trips overlap, and their source messages are
    /// still acknowledged batch after batch, in order.
    in_flight: usize,
    sink: Box<dyn Sink>,
    dead_letter: Option<DeadLetter>,
    acker: Arc<dyn Acker>,
    metrics: Arc<PipelineMetrics>,
}

/// A batch handed to the sink, waiting for its outcomes.
struct InFlight {
    /// The batch, its messages taken out.
    batch: OutBatch,
    count: usize,
    outcomes: SendFuture,
}

impl SinkTask {
    async fn run(mut self, mut input: mpsc::Receiver<OutBatch>) {
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
                && !self.finish(f.batch, f.count, outcomes).await
            {
                return;
            }
        }
        tracing::debug!(pipeline = %self.name, "sink task done");
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
    /// messages. False when the pipeline must stop.
    async fn finish(
        &mut self,
        batch: OutBatch,
        count: usize,
        outcomes: Result<Vec<Outcome>, TransportError>,
    ) -> bool {
        let OutBatch {
            messages: _,
            events,
            mut dead,
            tokens,
            received_at,
        } = batch;
        let outcomes = match outcomes {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(pipeline = %self.name, "sink failed for good, pipeline stops (unacknowledged messages will be redelivered): {e}");
                return false;
            }
        };
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
                match dl.send(&self.name, dead).await {
                    Ok(n) => PipelineMetrics::add(&self.metrics.dead_lettered, n),
                    Err(e) => {
                        tracing::error!(pipeline = %self.name, "dead-letter sink failed for good, pipeline stops: {e}");
                        return false;
                    }
                }
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
        true
    }
}

async fn report_metrics(
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
