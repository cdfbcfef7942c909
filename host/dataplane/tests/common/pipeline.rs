//! The pipeline harness the pipeline tests and the benches share: a
//! configuration from TOML ([`parse`], [`brokers_toml`]), the `DataPlane`
//! it starts ([`Doc::start`]), a [`Producer`] that publishes numbered
//! events (`ev-<i>`), readers that decode what came out ([`collect`],
//! [`mqtt_collector`]) and a [`Tally`] that counts what is missing and
//! what arrived more than once.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fnaa_dataplane::DataPlane;
use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::config::{BrokersConfig, PipelineConfig};
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::pipeline::{MetricsSnapshot, PluginFactory};
use fnaa_dataplane::transport::ChannelSource;
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSink, AmqpSinkConfig};
use fnaa_dataplane::transport::kafka::{KafkaBrokerConfig, KafkaSink, KafkaSinkConfig};
use fnaa_dataplane::transport::mqtt;
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSourceConfig, MqttVersion,
};
use fnaa_dataplane::transport::{DeliveryMode, Message, Outcome, Sink, Source};
use fnaa_event::Event;
use fnaa_event::binding::{Binding, Codec as BindingCodec};

/// A configuration document: `[brokers]` and `[[pipelines]]`.
#[derive(Debug, serde::Deserialize)]
pub struct Doc {
    #[serde(default)]
    pub brokers: BrokersConfig,
    pub pipelines: Vec<PipelineConfig>,
}

/// Parses `toml_text`, or panics with the error and the text.
pub fn parse(toml_text: &str) -> Doc {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

impl Doc {
    /// Starts the data plane of this document with `plugins`.
    pub async fn start(&self, plugins: Arc<dyn PluginFactory>) -> DataPlane {
        DataPlane::start(&self.brokers, &self.pipelines, plugins)
            .await
            .unwrap_or_else(|e| panic!("the data plane did not start: {e}"))
    }
}

/// A broker connection of a `[brokers]` section.
#[derive(Debug, Clone, Copy)]
pub enum Conn<'a> {
    /// MQTT on 127.0.0.1:`port`.
    Mqtt(u16),
    /// AMQP on 127.0.0.1:`port` (guest/guest).
    Amqp(u16),
    /// Kafka at `bootstrap_servers`.
    Kafka(&'a str),
}

/// A `[brokers]` section without the embedded MQTT broker and with
/// `connections` (name, connection), to which a test appends its
/// `[[pipelines]]`.
pub fn brokers_toml(connections: &[(&str, Conn)]) -> String {
    let mut s = String::from("[brokers.embedded_mqtt]\nmode = \"never\"\n");
    for (name, conn) in connections {
        s.push_str(&format!("[brokers.connections.{name}]\n"));
        s.push_str(&match conn {
            Conn::Mqtt(port) => format!("type = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
            Conn::Amqp(port) => format!("type = \"amqp\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
            Conn::Kafka(servers) => {
                format!("type = \"kafka\"\nbootstrap_servers = \"{servers}\"\n")
            }
        });
    }
    s
}

/// An outage monitor for a client of a test (alarms are reminded every
/// 60 s).
pub fn monitor() -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new("test client", Duration::from_secs(60)))
}

/// Reconnects quickly.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_interval_ms: 50,
        max_interval_ms: 500,
        reminder_interval_s: 1,
    }
}

/// The id of numbered event `i`: `ev-<i>`.
pub fn ev_id(i: usize) -> String {
    format!("ev-{i}")
}

/// Publishes events through one of our sinks with a binding codec; every
/// message must be confirmed.
pub struct Producer {
    sink: Box<dyn Sink>,
    codec: BindingCodec,
}

impl Producer {
    pub fn new(sink: Box<dyn Sink>, codec: BindingCodec) -> Producer {
        Producer { sink, codec }
    }

    /// To `topic` on the MQTT 5 broker at 127.0.0.1:`port`, in structured
    /// mode.
    pub fn mqtt(port: u16, topic: &str) -> Producer {
        Producer::mqtt_with(port, MqttSinkConfig::new(topic), fast_retry())
    }

    /// [`Producer::mqtt`] with a sink configuration and retry of its own.
    pub fn mqtt_with(port: u16, config: MqttSinkConfig, retry: RetryConfig) -> Producer {
        let broker = MqttBrokerConfig::new("127.0.0.1", port, MqttVersion::V5);
        let sink = MqttSink::new(
            &broker,
            &config,
            &super::unique("producer"),
            retry,
            monitor(),
        )
        .unwrap();
        Producer::new(
            Box::new(sink),
            codec(Binding::Mqtt, &[("mode", "structured")]),
        )
    }

    /// To the AMQP broker at 127.0.0.1:`port`, with the AMQP binding
    /// configured by `codec_config`.
    pub fn amqp(port: u16, config: AmqpSinkConfig, codec_config: &[(&str, &str)]) -> Producer {
        let broker = AmqpBrokerConfig::new("127.0.0.1", port);
        let sink = AmqpSink::new(
            &broker,
            &config,
            "producer",
            RetryConfig::default(),
            monitor(),
        );
        Producer::new(Box::new(sink), codec(Binding::Amqp, codec_config))
    }

    /// To `topic` at Kafka `bootstrap`, with the Kafka binding configured by
    /// `codec_config`.
    pub fn kafka(bootstrap: &str, topic: &str, codec_config: &[(&str, &str)]) -> Producer {
        let broker = KafkaBrokerConfig::new(bootstrap);
        let sink = KafkaSink::new(
            &broker,
            &KafkaSinkConfig::new(topic),
            RetryConfig::default(),
            monitor(),
        )
        .unwrap();
        Producer::new(Box::new(sink), codec(Binding::Kafka, codec_config))
    }

    /// Publishes `events` in one batch and waits until all are confirmed.
    pub async fn publish(&mut self, events: &[Event]) {
        let messages: Vec<Message> = events
            .iter()
            .map(|e| self.codec.encode(e).unwrap())
            .collect();
        self.send(messages).await;
    }

    /// Publishes messages as they are.
    pub async fn send(&mut self, messages: Vec<Message>) {
        let outcomes = self.sink.send(messages).await.unwrap();
        assert!(
            outcomes.iter().all(Outcome::is_confirmed),
            "the producer's messages were not all confirmed: {outcomes:?}"
        );
    }

    /// Publishes the events `make(i)`, `i` in `range`, `chunk` per batch
    /// (1: one produce request per event, which tansu 0.6 needs to count
    /// end offsets right), made just before their batch goes out, waiting
    /// `pause` after each batch.
    pub async fn publish_numbered(
        &mut self,
        range: Range<usize>,
        chunk: usize,
        pause: Duration,
        make: impl Fn(usize) -> Event,
    ) {
        let numbers: Vec<usize> = range.collect();
        for part in numbers.chunks(chunk.max(1)) {
            let events: Vec<Event> = part.iter().map(|&i| make(i)).collect();
            self.publish(&events).await;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// A binding codec from string pairs.
pub fn codec(binding: Binding, config: &[(&str, &str)]) -> BindingCodec {
    let config: Vec<(String, String)> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    BindingCodec::new(binding, &config).unwrap()
}

/// Publishes events to an MQTT broker (structured mode, MQTT 5).
pub async fn publish_mqtt(port: u16, topic: &str, events: &[Event]) {
    Producer::mqtt(port, topic).publish(events).await;
}

/// Publishes the events `make(i)`, `i` in `range`, to `in/x` on the MQTT
/// broker at `port`, 50 at a time every 60 ms, in the background.
pub fn produce_slowly(
    port: u16,
    range: Range<usize>,
    make: impl Fn(usize) -> Event + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        Producer::mqtt(port, "in/x")
            .publish_numbered(range, 50, Duration::from_millis(60), make)
            .await;
    })
}

/// Waits until `source` consumes.
pub async fn ready(source: &dyn Source) {
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .expect("the source did not start consuming within 20 s");
}

/// A subscriber with a persistent session, subscribed when this returns.
pub async fn mqtt_collector(port: u16, topic: &str) -> ChannelSource {
    let broker = MqttBrokerConfig::new("127.0.0.1", port, MqttVersion::V5);
    let source = mqtt::open_source(
        &broker,
        &MqttSourceConfig::new(vec![topic.to_owned()]),
        &super::unique("collector"),
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor(),
    )
    .unwrap();
    ready(&source).await;
    source
}

/// A collector: receives, decodes and acknowledges until `done` says so or
/// `timeout` passed.
pub async fn collect(
    source: &mut dyn Source,
    binding: Binding,
    timeout: Duration,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let mut codec = BindingCodec::new(binding, &[]).unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + timeout;
    while !done(&events) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(batch) =
            tokio::time::timeout(left, source.recv(1000, Duration::from_millis(20))).await
        else {
            break;
        };
        let batch = batch.unwrap();
        for r in &batch {
            events.push(
                codec
                    .decode(&r.message, (0, 0))
                    .unwrap_or_else(|e| panic!("undecodable {:?}: {e}", r.message)),
            );
        }
        source
            .acker()
            .ack(batch.into_iter().map(|r| r.token).collect())
            .await
            .unwrap();
    }
    events
}

/// The ids of `events`.
pub fn ids(events: &[Event]) -> BTreeSet<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// How often each event id arrived.
#[derive(Debug, Default)]
pub struct Tally {
    counts: HashMap<String, usize>,
    deliveries: usize,
}

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    /// The tally of `events`.
    pub fn of(events: &[Event]) -> Tally {
        let mut t = Tally::new();
        for e in events {
            t.add(&e.id);
        }
        t
    }

    /// Counts one arrival of `id`; true when it is the first.
    pub fn add(&mut self, id: &str) -> bool {
        self.deliveries += 1;
        match self.counts.get_mut(id) {
            Some(n) => {
                *n += 1;
                false
            }
            None => {
                self.counts.insert(id.to_owned(), 1);
                true
            }
        }
    }

    /// Distinct ids seen.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Arrivals, duplicates included.
    pub fn deliveries(&self) -> usize {
        self.deliveries
    }

    /// Arrivals of an id seen before.
    pub fn duplicates(&self) -> usize {
        self.deliveries - self.counts.len()
    }

    /// The numbered events of `range` that never arrived, in order.
    pub fn missing(&self, range: Range<usize>) -> Vec<String> {
        range
            .map(ev_id)
            .filter(|id| !self.counts.contains_key(id))
            .collect()
    }
}

/// Checks that each of `ev-0`..`ev-{total-1}` is in `got` at least once;
/// returns how many arrived more than once.
pub fn every_event_arrived(got: &[Event], total: usize, plane: &DataPlane) -> usize {
    let tally = Tally::of(got);
    let missing = tally.missing(0..total);
    assert!(
        missing.is_empty(),
        "{} of {total} events missing after the sink outage, e.g. {:?}; pipeline: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)],
        plane.metrics()
    );
    tally.duplicates()
}

/// Polls the first pipeline's metrics until `ok` holds (metrics are updated
/// after the sink confirmed and the source was acknowledged, a moment after
/// a collector may have seen the events); gives up after 10 s.
pub async fn settled(plane: &DataPlane, ok: impl Fn(&MetricsSnapshot) -> bool) -> MetricsSnapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = plane.metrics()[0].1.clone();
        if ok(&m) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
