//! The pipeline's logic on the memory transport: batching, ordered
//! acknowledgements, at-least-once through failures, `latest`, dead
//! letters, retries and isolation, backpressure. No broker needed; every
//! test takes well under a second.
//!
//! Messages use the native Kafka connector (binary mode: attributes in
//! `ce_` headers), which works over any transport.

#![allow(clippy::unwrap_used)]

mod acks;
mod backpressure;
mod batching;
mod dead_letters;
mod retries;
mod routing;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fnaa_event::Event;
use fnaa_event::binding::{Binding, Codec as BindingCodec};

use super::native::{NativeCodec, PassThrough};
use super::{
    DeadLetterSpec, NamedProcessor, Pipeline, PipelineSpec, Processor, ProcessorRetryConfig,
    StageError,
};
use crate::transport::memory::{MemoryBroker, MemorySink, MemorySource, SinkFaults, Topic};
use crate::transport::{DeliveryMode, Message};

/// The consumer name every test pipeline reads its source topic as.
const CONSUMER: &str = "fnaa-test";

/// The event a test publishes as message `i`.
fn event(i: usize, subject: &str) -> Event {
    let mut e = Event::new(format!("ev-{i}"), "/test", "org.example.reading")
        .with_data("application/json", format!("{{\"n\":{i}}}").into_bytes());
    e.subject = Some(subject.to_owned());
    e
}

fn binding() -> BindingCodec {
    BindingCodec::new(Binding::Kafka, &[]).unwrap()
}

/// Events `range` with subject `ok`, encoded.
fn messages(range: std::ops::Range<usize>) -> Vec<Message> {
    let codec = binding();
    range
        .map(|i| codec.encode(&event(i, "ok")).unwrap())
        .collect()
}

/// Every message of `topic`, decoded.
fn events(topic: &Topic) -> Vec<Event> {
    let mut codec = binding();
    topic
        .messages()
        .iter()
        .map(|m| codec.decode(m, (0, 0)).unwrap())
        .collect()
}

/// The ids of the events on `topic`, in order.
fn ids(topic: &Topic) -> Vec<String> {
    events(topic).into_iter().map(|e| e.id).collect()
}

/// `ev-<i>` for each `i`.
fn expected(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    range.into_iter().map(|i| format!("ev-{i}")).collect()
}

/// Polls `done` every millisecond until it holds; false after `within`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

const WAIT: Duration = Duration::from_secs(2);

/// A broker with a source topic `in`, a sink topic `out` and a
/// dead-letter topic `dlq`, each sink with its faults.
struct Harness {
    broker: Arc<MemoryBroker>,
    input: Arc<Topic>,
    output: Arc<Topic>,
    dlq: Arc<Topic>,
    faults: SinkFaults,
}

/// How a test pipeline runs.
struct Options {
    mode: DeliveryMode,
    batch_size: usize,
    batch_timeout: Duration,
    queue_batches: usize,
    processors: Vec<NamedProcessor>,
    dead_letter: bool,
    retry: ProcessorRetryConfig,
    routes: BTreeMap<String, String>,
    /// The sink connector's configuration.
    encoder_config: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: DeliveryMode::AtLeastOnce,
            batch_size: 4,
            batch_timeout: Duration::from_millis(10),
            queue_batches: 2,
            processors: vec![named("bridge", PassThrough)],
            dead_letter: false,
            retry: ProcessorRetryConfig {
                attempts: 3,
                backoff_ms: 1,
            },
            routes: BTreeMap::new(),
            encoder_config: Vec::new(),
        }
    }
}

fn named(plugin: &str, processor: impl Processor + 'static) -> NamedProcessor {
    NamedProcessor {
        plugin: plugin.to_owned(),
        processor: Box::new(processor),
    }
}

impl Harness {
    fn new() -> Harness {
        let broker = MemoryBroker::new();
        Harness {
            input: broker.topic("in"),
            output: broker.topic("out"),
            dlq: broker.topic("dlq"),
            broker,
            faults: SinkFaults::new(),
        }
    }

    /// Starts a pipeline `in` -> `out` (dead letters to `dlq`).
    fn start(&self, options: Options) -> Pipeline {
        let codec = || Box::new(NativeCodec::new("kafka", &[]).unwrap());
        let dead_letter = options.dead_letter.then(|| DeadLetterSpec {
            encoder: Box::new(NativeCodec::new("kafka", &options.encoder_config).unwrap()),
            sink: Box::new(MemorySink::new(
                self.broker.clone(),
                Some("dlq"),
                SinkFaults::new(),
            )),
        });
        Pipeline::start(PipelineSpec {
            name: "test".into(),
            mode: options.mode,
            batch_size: options.batch_size,
            batch_timeout: options.batch_timeout,
            queue_batches: options.queue_batches,
            source: Box::new(MemorySource::new(
                self.input.clone(),
                CONSUMER,
                options.mode,
            )),
            decoder_plugin: "kafka".into(),
            decoder: codec(),
            processors: options.processors,
            encoder_plugin: "kafka".into(),
            encoder: Box::new(NativeCodec::new("kafka", &options.encoder_config).unwrap()),
            sink: Box::new(MemorySink::new(
                self.broker.clone(),
                Some("out"),
                self.faults.clone(),
            )),
            dead_letter,
            routes: options.routes,
            processor_retry: options.retry,
            metrics_interval: Duration::ZERO,
        })
    }
}

/// A processor that refuses events with subject `bad` (WIT
/// `invalid-event`), fails the whole batch (retryably) while it contains
/// one with subject `poison`, and fails the first batch it sees with a
/// `flaky` one (retryably). Logs the ids of every batch it is called with.
#[derive(Default, Clone)]
struct Picky {
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    flaky_seen: Arc<Mutex<bool>>,
}

impl Picky {
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

impl Processor for Picky {
    fn process(
        &mut self,
        _port: &str,
        batch: &[Event],
    ) -> Result<Vec<(String, Event)>, StageError> {
        self.calls
            .lock()
            .unwrap()
            .push(batch.iter().map(|e| e.id.clone()).collect());
        let subject = |e: &Event, s: &str| e.subject.as_deref() == Some(s);
        if let Some(i) = batch.iter().position(|e| subject(e, "bad")) {
            return Err(StageError {
                reason: "subject `bad` is not allowed".into(),
                retryable: false,
                invalid_index: Some(i),
            });
        }
        if batch.iter().any(|e| subject(e, "poison")) {
            return Err(StageError::new("trap: unreachable executed", true));
        }
        if batch.iter().any(|e| subject(e, "flaky")) {
            let mut seen = self.flaky_seen.lock().unwrap();
            if !*seen {
                *seen = true;
                return Err(StageError::new("deadline exceeded", true));
            }
        }
        Ok(batch
            .iter()
            .map(|e| ("out".to_owned(), e.clone()))
            .collect())
    }
}
