//! The stage worker: runs a batch through the plugins on a blocking
//! thread (decode, each processor in turn, encode). Retryable failures
//! are retried per [`ProcessorRetryConfig`], then isolated (a batch that
//! keeps failing is split until the failing events are found); what fails
//! for good becomes a dead letter, annotated by [`annotate`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fnaa_event::{AttributeValue, Event};
use tokio::sync::mpsc;

use super::dead_letter::annotate;
use super::{
    Codec, InBatch, NamedProcessor, OutBatch, PipelineError, PipelineMetrics, ProcessorRetryConfig,
    StageError, StageInput, now_ms,
};
use crate::transport::Message;

/// Runs the stage worker on blocking threads, one batch at a time, until
/// the source side closes or the sink side is gone.
pub(super) async fn run_stage(
    worker: StageWorker,
    mut input: StageInput,
    out: mpsc::Sender<OutBatch>,
) -> Result<(), PipelineError> {
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
            Err(e) => return Err(PipelineError::StageWorkerPanicked(e.to_string())),
        };
        w.metrics.stage_latency.record(started.elapsed());
        worker = Some(w);
        if out.send(batch).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// The plugins of a pipeline and the failure policy around them.
pub(super) struct StageWorker {
    pub(super) pipeline: String,
    pub(super) decoder_plugin: String,
    pub(super) decoder: Box<dyn Codec>,
    pub(super) processors: Vec<NamedProcessor>,
    pub(super) encoder_plugin: String,
    pub(super) encoder: Box<dyn Codec>,
    /// Keep the events each batch's messages were encoded from (there is
    /// a dead-letter flow for publish failures).
    pub(super) keep_events: bool,
    pub(super) routes: BTreeMap<String, String>,
    pub(super) retry: ProcessorRetryConfig,
    pub(super) metrics: Arc<PipelineMetrics>,
    /// Numbers the ids of undecodable messages' dead letters.
    pub(super) sequence: u64,
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

    /// Decodes, processes and encodes one batch.
    pub(super) fn run(&mut self, batch: InBatch) -> OutBatch {
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
                            dead.push(self.undecodable(m, &reason.0));
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
            self.process(i, events, self.retry.attempts, &mut emitted, &mut dead);
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
                                &reason.0,
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
    /// (output port, event) to `out` and dead letters to `dead`. A
    /// retryable failure is tried `attempts` times in all; a batch that
    /// still fails is split in halves, each tried once, until the failing
    /// events are isolated.
    fn process(
        &mut self,
        index: usize,
        mut events: Vec<Event>,
        attempts: u32,
        out: &mut Vec<(String, Event)>,
        dead: &mut Vec<Event>,
    ) {
        let mut attempts_left = attempts.max(1);
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
                    self.process(index, events, 1, out, dead);
                    self.process(index, second, 1, out, dead);
                    return;
                }
            }
        }
    }
}
