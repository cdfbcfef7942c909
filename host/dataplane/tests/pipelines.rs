//! Pipelines end to end against real brokers, declared the way an operator
//! declares them (TOML), with the native connectors (the same binding code
//! the wasm connector plugins run) and test processors.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fnaa_dataplane::DataPlane;
use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::config::{BrokersConfig, PipelineConfig};
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::pipeline::native::NativePlugins;
use fnaa_dataplane::pipeline::{Codec, PluginFactory, Processor, StageError};
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSource, AmqpSourceConfig};
use fnaa_dataplane::transport::kafka::{KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig};
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSource, MqttSourceConfig, MqttVersion,
};
use fnaa_dataplane::transport::{DeliveryMode, Message, Outcome, Sink, Source};
use fnaa_event::binding::{Binding, Codec as BindingCodec};
use fnaa_event::{AttributeValue, Event};
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    brokers: BrokersConfig,
    pipelines: Vec<PipelineConfig>,
}

fn parse(toml_text: &str) -> Doc {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn monitor() -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new("test client", Duration::from_secs(60)))
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_interval_ms: 50,
        max_interval_ms: 500,
        reminder_interval_s: 1,
    }
}

fn event(i: usize, subject: &str) -> Event {
    let mut e = Event::new(format!("ev-{i}"), "/test", "org.example.reading")
        .with_data("application/json", format!("{{\"n\":{i}}}").into_bytes());
    e.subject = Some(subject.to_owned());
    e.set_extension(
        "category",
        AttributeValue::String(
            if i.is_multiple_of(2) {
                "operational"
            } else {
                "administrative"
            }
            .into(),
        ),
    );
    e
}

/// Test processors on top of the native plugins:
/// * `failer`: refuses events with subject `bad` (invalid-event), fails
///   the whole batch while it contains subject `poison` (retryable), and
///   fails the first call that sees subject `flaky` (retryable once).
/// * `stall`: sleeps `ms` per batch.
#[derive(Default)]
struct TestPlugins {
    flaky_seen: Arc<Mutex<BTreeSet<String>>>,
}

struct Failer {
    flaky_seen: Arc<Mutex<BTreeSet<String>>>,
}

impl Processor for Failer {
    fn process(
        &mut self,
        _port: &str,
        batch: &[Event],
    ) -> Result<Vec<(String, Event)>, StageError> {
        if let Some(i) = batch
            .iter()
            .position(|e| e.subject.as_deref() == Some("bad"))
        {
            return Err(StageError {
                reason: "subject `bad` is not allowed".into(),
                retryable: false,
                invalid_index: Some(i),
            });
        }
        if batch.iter().any(|e| e.subject.as_deref() == Some("poison")) {
            return Err(StageError::new("trap: unreachable executed", true));
        }
        for e in batch
            .iter()
            .filter(|e| e.subject.as_deref() == Some("flaky"))
        {
            if self.flaky_seen.lock().unwrap().insert(e.id.clone()) {
                return Err(StageError::new("deadline exceeded", true));
            }
        }
        Ok(batch
            .iter()
            .map(|e| ("out".to_owned(), e.clone()))
            .collect())
    }
}

impl PluginFactory for TestPlugins {
    fn connector(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Codec>, String> {
        NativePlugins.connector(plugin, instance, config)
    }

    fn processor(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, String> {
        match plugin {
            "failer" => Ok(Box::new(Failer {
                flaky_seen: self.flaky_seen.clone(),
            })),
            _ => NativePlugins.processor(plugin, instance, config),
        }
    }
}

/// Publishes events to an MQTT broker (structured mode, MQTT 5).
async fn publish_mqtt(port: u16, topic: &str, events: &[Event]) {
    let broker = MqttBrokerConfig::new("127.0.0.1", port, MqttVersion::V5);
    let mut sink = MqttSink::new(
        &broker,
        &MqttSinkConfig::new(topic),
        &common::unique("producer"),
        fast_retry(),
        monitor(),
    )
    .unwrap();
    let codec = BindingCodec::new(Binding::Mqtt, &[("mode".into(), "structured".into())]).unwrap();
    let messages: Vec<Message> = events.iter().map(|e| codec.encode(e).unwrap()).collect();
    let outcomes = sink.send(messages).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
}

/// A collector: receives and decodes until `done` says so or `timeout`.
async fn collect(
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

/// A subscriber with a persistent session, subscribed when this returns.
async fn mqtt_collector(port: u16, topic: &str) -> MqttSource {
    let broker = MqttBrokerConfig::new("127.0.0.1", port, MqttVersion::V5);
    let source = MqttSource::new(
        &broker,
        &MqttSourceConfig::new(vec![topic.to_owned()]),
        &common::unique("collector"),
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor(),
    )
    .unwrap();
    ready(&source).await;
    source
}

/// Waits until `source` consumes.
async fn ready(source: &dyn Source) {
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .expect("the source did not start consuming within 20 s");
}

fn ids(events: &[Event]) -> BTreeSet<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_across_a_sink_outage() {
    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let mut sink_broker = common::Mosquitto::start("");
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.edge]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [brokers.connections.cloud]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{}"
        batch_size = 50
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "edge", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "bridge" }}]
        sink = {{ broker = "cloud", mqtt = {{ topic = "out/all" }} }}
        "#,
        source_broker.port,
        sink_broker.port,
        common::unique("outage")
    ));
    // The collector keeps a persistent session on the sink broker, which
    // keeps it (with what is queued for it) across the restart.
    let mut collector = mqtt_collector(sink_broker.port, "out/#").await;
    let plane = DataPlane::start(
        &doc.brokers,
        &doc.pipelines,
        Arc::new(TestPlugins::default()),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = 1500;
    let producer = tokio::spawn({
        let port = source_broker.port;
        async move {
            for chunk in 0..30 {
                let events: Vec<Event> = (chunk * 50..(chunk + 1) * 50)
                    .map(|i| event(i, "s"))
                    .collect();
                publish_mqtt(port, "in/x", &events).await;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink_broker.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sink_broker.restart();
    producer.await.unwrap();

    let got = collect(
        &mut collector,
        Binding::Mqtt,
        Duration::from_secs(30),
        |e| ids(e).len() >= total,
    )
    .await;
    let expected: BTreeSet<String> = (0..total).map(|i| format!("ev-{i}")).collect();
    let got_ids = ids(&got);
    let missing: Vec<_> = expected.difference(&got_ids).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} events missing, e.g. {missing:?}; pipeline: {:?}",
        expected.len() - got_ids.len(),
        plane.metrics()
    );
    let m = settled(&plane, |m| m.events_in == m.events_out).await;
    assert_eq!(m.events_in, m.events_out, "{m:?}");
    plane.shutdown(Duration::from_secs(5)).await;
}

/// Publishes the events with ids `ev-<i>`, `i` in `range`, to `in/x` on the
/// MQTT broker at `port`, 50 at a time every 60 ms, in the background.
fn produce_slowly(port: u16, range: std::ops::Range<usize>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let ids: Vec<usize> = range.collect();
        for chunk in ids.chunks(50) {
            let events: Vec<Event> = chunk.iter().map(|&i| event(i, "s")).collect();
            publish_mqtt(port, "in/x", &events).await;
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    })
}

/// Checks that each of `ev-0`..`ev-{total-1}` is in `got` at least once;
/// returns how many arrived more than once.
fn every_event_arrived(got: &[Event], total: usize, plane: &DataPlane) -> usize {
    let expected: BTreeSet<String> = (0..total).map(|i| format!("ev-{i}")).collect();
    let got_ids = ids(got);
    let missing: Vec<_> = expected.difference(&got_ids).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} events missing after the sink outage, e.g. {missing:?}; pipeline: {:?}",
        expected.difference(&got_ids).count(),
        plane.metrics()
    );
    got.len() - got_ids.len()
}

/// At-least-once across an AMQP sink outage. The sink broker is a
/// RabbitMQ node of this test's own (the shared one serves other tests):
/// it is stopped (SIGTERM, a clean shutdown) while events flow into the
/// pipeline and started again on the same data directory. Every event
/// reaches the durable queue bound to the sink's exchange; duplicates
/// (messages published again because their confirm was lost with the
/// connection, deliveries redelivered because their ack was) are allowed
/// and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_across_an_amqp_sink_outage() {
    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let mut rabbit = tokio::task::block_in_place(common::RabbitNode::start);
    let exchange = common::unique("outage");
    let queue = common::unique("outage-collector");
    // The collector's durable queue, bound before anything is published (a
    // mandatory publish that reaches no queue is unroutable, not retried).
    let amqp = AmqpBrokerConfig::new("127.0.0.1", rabbit.port);
    let mut collector = AmqpSource::new(
        &amqp,
        &AmqpSourceConfig {
            exchange: Some(exchange.clone()),
            binding_keys: vec!["#".into()],
            ..AmqpSourceConfig::queue(&queue)
        },
        "collector",
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor(),
    )
    .unwrap();
    ready(&collector).await;
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.edge]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [brokers.connections.rabbit]
        type = "amqp"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{}"
        batch_size = 50
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "edge", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "bridge" }}]
        sink = {{ broker = "rabbit", amqp = {{ exchange = "{exchange}", routing_key = "readings" }} }}
        "#,
        source_broker.port,
        rabbit.port,
        common::unique("amqp-outage")
    ));
    let plane = DataPlane::start(
        &doc.brokers,
        &doc.pipelines,
        Arc::new(TestPlugins::default()),
    )
    .await
    .unwrap();

    let total = 1500;
    let producer = produce_slowly(source_broker.port, 0..total);
    // Stop the broker once events flow through the pipeline.
    let sent_before_outage = settled(&plane, |m| m.events_out >= 100).await.events_out;
    tokio::task::block_in_place(|| rabbit.stop());
    let m = plane.metrics()[0].1.clone();
    assert!(
        sent_before_outage >= 100 && m.events_out < total as u64,
        "the outage should start while events flow: {sent_before_outage} sent before it, {m:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    tokio::task::block_in_place(|| rabbit.restart());
    producer.await.unwrap();

    let got = collect(
        &mut collector,
        Binding::Amqp,
        Duration::from_secs(30),
        |e| ids(e).len() >= total,
    )
    .await;
    let duplicates = every_event_arrived(&got, total, &plane);
    eprintln!(
        "AMQP sink outage: {total} events, {} deliveries, {duplicates} duplicates; {} sent before the outage",
        got.len(),
        sent_before_outage
    );
    let m = settled(&plane, |m| m.events_in == m.events_out).await;
    assert_eq!(
        m.events_in, m.events_out,
        "the pipeline did not confirm everything it read: {m:?}"
    );
    plane.shutdown(Duration::from_secs(5)).await;
}

/// At-least-once across a Kafka sink restart. The sink broker is tansu
/// keeping everything in memory (tansu as the tests install it has no
/// storage that survives a restart; its SQLite engine, in 0.6, panics under
/// this load): when it stops it forgets its topics, the records it
/// acknowledged and the idempotent producer's state. No client can bring
/// back records a broker acknowledged and then lost, so the outage starts
/// once what went before it has been read back, and the test shows the
/// rest: 500 events flow and are read; tansu stops; 500 events reach the
/// pipeline while it is down; tansu starts again on the same port, empty,
/// and the operator creates the topic again; 500 more events follow. Every
/// event arrives (duplicates allowed and counted): the sink retried
/// through the outage and went on with a broker that no longer knew its
/// producer id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_across_a_kafka_sink_restart() {
    use fnaa_dataplane::transport::kafka::{KafkaSource, KafkaSourceConfig};

    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let mut tansu = common::Tansu::start();
    let kafka = KafkaBrokerConfig::new(tansu.bootstrap());
    let output = common::unique("restart-out");
    KafkaAdmin::new(&kafka)
        .unwrap()
        .create_topic(&output, 1, 1)
        .await
        .unwrap();
    // Readers in new groups read the topic from its beginning.
    let reader = || async {
        KafkaSource::new(
            &kafka,
            &KafkaSourceConfig::new(vec![output.clone()]),
            &common::unique("collector"),
            DeliveryMode::AtLeastOnce,
            monitor(),
        )
        .await
        .unwrap()
    };
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.edge]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [brokers.connections.kafka]
        type = "kafka"
        bootstrap_servers = "{}"
        [[pipelines]]
        name = "{}"
        batch_size = 50
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "edge", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "bridge" }}]
        sink = {{ broker = "kafka", kafka = {{ topic = "{output}" }} }}
        "#,
        source_broker.port,
        tansu.bootstrap(),
        common::unique("kafka-restart")
    ));
    let plane = DataPlane::start(
        &doc.brokers,
        &doc.pipelines,
        Arc::new(TestPlugins::default()),
    )
    .await
    .unwrap();

    produce_slowly(source_broker.port, 0..500).await.unwrap();
    let mut got = collect(
        &mut reader().await,
        Binding::Kafka,
        Duration::from_secs(15),
        |e| ids(e).len() >= 500,
    )
    .await;
    assert_eq!(
        ids(&got).len(),
        500,
        "before the outage, only {} of 500 events were read back; pipeline: {:?}",
        ids(&got).len(),
        plane.metrics()
    );

    // The first reader is gone before the broker goes: a consumer still
    // fetching when tansu comes back empty makes librdkafka 2.12.1 crash
    // the process (SIGSEGV in strcmp under rd_kafka_metadata_update_op,
    // handling the leader update of a fetch response for a topic it can
    // no longer name).
    tansu.stop();
    produce_slowly(source_broker.port, 500..1000).await.unwrap();
    // Let the sink fail and retry for a while.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = plane.metrics()[0].1.clone();
    assert!(
        during.events_out <= 500,
        "the pipeline confirmed events while its broker was down: {during:?}"
    );
    tansu.restart();
    let admin = KafkaAdmin::new(&kafka).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match admin.create_topic(&output, 1, 1).await {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot create topic {output} again after the restart: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    produce_slowly(source_broker.port, 1000..1500)
        .await
        .unwrap();

    got.extend(
        collect(
            &mut reader().await,
            Binding::Kafka,
            Duration::from_secs(30),
            |e| ids(e).len() >= 1000,
        )
        .await,
    );
    let duplicates = every_event_arrived(&got, 1500, &plane);
    eprintln!(
        "Kafka sink restart: 1500 events, {} records read, {duplicates} duplicates",
        got.len()
    );
    let m = settled(&plane, |m| m.events_in == m.events_out).await;
    assert_eq!(
        m.events_in, m.events_out,
        "the pipeline did not confirm everything it read: {m:?}"
    );
    plane.shutdown(Duration::from_secs(5)).await;
}

/// At-least-once across a Kafka sink outage with events in flight. A proxy
/// stands between the clients and tansu (which tells clients to connect
/// to the proxy): cutting it closes every connection and refuses new ones,
/// as when the broker stops, but tansu keeps what it acknowledged (a real
/// restart of tansu loses it, see the test above). The outage starts while
/// events flow and outlasts `message_timeout_ms`, so that librdkafka gives
/// messages back and the sink sends them again. Every event arrives;
/// duplicates are allowed and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_across_a_kafka_sink_outage() {
    use fnaa_dataplane::transport::kafka::{KafkaSource, KafkaSourceConfig};

    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let proxy_port = common::free_port();
    let tansu = common::Tansu::start_advertising(common::free_port(), proxy_port);
    let proxy = common::TcpProxy::start(proxy_port, tansu.port).await;
    let kafka = KafkaBrokerConfig::new(format!("127.0.0.1:{proxy_port}"));
    let output = common::unique("outage-out");
    KafkaAdmin::new(&kafka)
        .unwrap()
        .create_topic(&output, 1, 1)
        .await
        .unwrap();
    // A new group reads the topic from its beginning; it goes through the
    // outage too.
    let mut collector = KafkaSource::new(
        &kafka,
        &KafkaSourceConfig::new(vec![output.clone()]),
        &common::unique("collector"),
        DeliveryMode::AtLeastOnce,
        monitor(),
    )
    .await
    .unwrap();
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.edge]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [brokers.connections.kafka]
        type = "kafka"
        bootstrap_servers = "127.0.0.1:{proxy_port}"
        [[pipelines]]
        name = "{}"
        batch_size = 50
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "edge", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "bridge" }}]
        sink = {{ broker = "kafka", kafka = {{ topic = "{output}", message_timeout_ms = 3000 }} }}
        "#,
        source_broker.port,
        common::unique("kafka-outage")
    ));
    let plane = DataPlane::start(
        &doc.brokers,
        &doc.pipelines,
        Arc::new(TestPlugins::default()),
    )
    .await
    .unwrap();

    let total = 1500;
    let producer = produce_slowly(source_broker.port, 0..total);
    // Cut the broker off once events flow through the pipeline.
    let sent_before_outage = settled(&plane, |m| m.events_out >= 100).await.events_out;
    proxy.cut();
    let m = plane.metrics()[0].1.clone();
    assert!(
        sent_before_outage >= 100 && m.events_out < total as u64,
        "the outage should start while events flow: {sent_before_outage} sent before it, {m:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.restore().await;
    producer.await.unwrap();

    let got = collect(
        &mut collector,
        Binding::Kafka,
        Duration::from_secs(30),
        |e| ids(e).len() >= total,
    )
    .await;
    let duplicates = every_event_arrived(&got, total, &plane);
    eprintln!(
        "Kafka sink outage: {total} events, {} records read, {duplicates} duplicates; {sent_before_outage} sent before the outage",
        got.len()
    );
    let m = settled(&plane, |m| m.events_in == m.events_out).await;
    assert_eq!(
        m.events_in, m.events_out,
        "the pipeline did not confirm everything it read: {m:?}"
    );
    plane.shutdown(Duration::from_secs(5)).await;
}

/// Polls the first pipeline's metrics until `ok` holds (metrics are updated
/// after the sink confirmed and the source was acknowledged, a moment after
/// a collector may have seen the events).
async fn settled(
    plane: &DataPlane,
    ok: impl Fn(&fnaa_dataplane::pipeline::MetricsSnapshot) -> bool,
) -> fnaa_dataplane::pipeline::MetricsSnapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = plane.metrics()[0].1.clone();
        if ok(&m) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads what a `latest` pipeline delivered: exactly `n` events, all
/// published after it started (subject `new`), none of the backlog.
async fn expect_only_new_events(reader: &mut dyn Source, binding: Binding, n: usize) {
    let got = collect(reader, binding, Duration::from_secs(15), |e| e.len() >= n).await;
    let more = collect(reader, binding, Duration::from_millis(700), |_| false).await;
    let subjects: BTreeSet<_> = got
        .iter()
        .chain(&more)
        .map(|e| e.subject.clone().unwrap())
        .collect();
    assert_eq!(
        subjects,
        BTreeSet::from(["new".to_owned()]),
        "the backlog was replayed"
    );
    assert_eq!(got.len() + more.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_starts_a_kafka_source_at_the_live_point() {
    common::init_tracing();
    let tansu = common::Tansu::start();
    let kafka = KafkaBrokerConfig::new(tansu.bootstrap());
    let admin = KafkaAdmin::new(&kafka).unwrap();
    let (input, output) = (common::unique("live-in"), common::unique("live-out"));
    admin.create_topic(&input, 2, 1).await.unwrap();
    admin.create_topic(&output, 1, 1).await.unwrap();
    let codec = BindingCodec::new(Binding::Kafka, &[]).unwrap();
    let mut producer = KafkaSink::new(
        &kafka,
        &KafkaSinkConfig::new(&input),
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    // The backlog, one produce request per event (tansu 0.6 miscounts the
    // end offset of multi-record batches, which would make "the end" wrong).
    for i in 0..40 {
        let m = codec.encode(&event(i, "old")).unwrap();
        assert!(
            producer
                .send(vec![m])
                .await
                .unwrap()
                .iter()
                .all(Outcome::is_confirmed)
        );
    }
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.kafka]
        type = "kafka"
        bootstrap_servers = "{}"
        [[pipelines]]
        name = "{}"
        delivery = "latest"
        source = {{ broker = "kafka", kafka = {{ topics = ["{input}"] }} }}
        sink = {{ broker = "kafka", kafka = {{ topic = "{output}" }} }}
        "#,
        tansu.bootstrap(),
        common::unique("latest")
    ));
    let plane = DataPlane::start(&doc.brokers, &doc.pipelines, Arc::new(NativePlugins))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 1000..1005 {
        let m = codec.encode(&event(i, "new")).unwrap();
        assert!(
            producer
                .send(vec![m])
                .await
                .unwrap()
                .iter()
                .all(Outcome::is_confirmed)
        );
    }
    let mut reader = fnaa_dataplane::transport::kafka::KafkaSource::new(
        &kafka,
        &fnaa_dataplane::transport::kafka::KafkaSourceConfig::new(vec![output]),
        &common::unique("reader"),
        DeliveryMode::AtLeastOnce,
        monitor(),
    )
    .await
    .unwrap();
    expect_only_new_events(&mut reader, Binding::Kafka, 5).await;
    plane.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_skips_the_backlog_of_a_rabbitmq_queue() {
    common::init_tracing();
    let rabbit = common::rabbitmq();
    let mosquitto = common::Mosquitto::start("");
    let amqp = AmqpBrokerConfig::new("127.0.0.1", rabbit);
    let exchange = common::unique("kytos.live");
    let queue = common::unique("kytos-live");
    // A durable queue with a backlog: events from before a restart.
    let queue_config = AmqpSourceConfig {
        exchange: Some(exchange.clone()),
        binding_keys: vec!["#".into()],
        ..AmqpSourceConfig::queue(&queue)
    };
    let setup = AmqpSource::new(
        &amqp,
        &queue_config,
        "setup",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    ready(&setup).await;
    drop(setup);
    let codec = BindingCodec::new(
        Binding::Amqp,
        &[
            ("destination".into(), exchange.clone()),
            ("routing_key".into(), "{type}".into()),
        ],
    )
    .unwrap();
    let mut producer = fnaa_dataplane::transport::amqp::AmqpSink::new(
        &amqp,
        &Default::default(),
        "producer",
        RetryConfig::default(),
        monitor(),
    );
    let old: Vec<Message> = (0..300)
        .map(|i| codec.encode(&event(i, "old")).unwrap())
        .collect();
    assert!(
        producer
            .send(old)
            .await
            .unwrap()
            .iter()
            .all(Outcome::is_confirmed)
    );

    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.rabbit]
        type = "amqp"
        host = "127.0.0.1"
        port = {rabbit}
        [brokers.connections.out]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{}"
        delivery = "latest"
        source = {{ broker = "rabbit", amqp = {{ queue = "{queue}", exchange = "{exchange}" }} }}
        sink = {{ broker = "out", mqtt = {{ topic = "live" }} }}
        "#,
        mosquitto.port,
        common::unique("latest")
    ));
    let mut reader = mqtt_collector(mosquitto.port, "live").await;
    let plane = DataPlane::start(&doc.brokers, &doc.pipelines, Arc::new(NativePlugins))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let new: Vec<Message> = (1000..1010)
        .map(|i| codec.encode(&event(i, "new")).unwrap())
        .collect();
    assert!(
        producer
            .send(new)
            .await
            .unwrap()
            .iter()
            .all(Outcome::is_confirmed)
    );

    expect_only_new_events(&mut reader, Binding::Mqtt, 10).await;
    plane.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_forgets_an_mqtt_session_backlog_and_drops_the_oldest_when_behind() {
    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let mut sink_broker = common::Mosquitto::start("");
    let name = common::unique("live");
    let client_id = format!("fnaa-{name}-source");
    // An earlier at-least-once run left a persistent session, and the
    // broker queued a backlog in it while we were away.
    let broker = MqttBrokerConfig::new("127.0.0.1", source_broker.port, MqttVersion::V5);
    let earlier = MqttSource::new(
        &broker,
        &MqttSourceConfig::new(vec!["in/#".into()]),
        &client_id,
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor(),
    )
    .unwrap();
    ready(&earlier).await;
    drop(earlier);
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish_mqtt(
        source_broker.port,
        "in/x",
        &(0..200).map(|i| event(i, "old")).collect::<Vec<_>>(),
    )
    .await;

    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.edge]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [brokers.connections.cloud]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{name}"
        delivery = "latest"
        batch_size = 10
        batch_timeout_ms = 1
        queue_batches = 2
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "edge", mqtt = {{ topics = ["in/#"] }} }}
        sink = {{ broker = "cloud", mqtt = {{ topic = "live" }} }}
        "#,
        source_broker.port, sink_broker.port
    ));
    let mut reader = mqtt_collector(sink_broker.port, "live").await;
    let plane = DataPlane::start(&doc.brokers, &doc.pipelines, Arc::new(NativePlugins))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish_mqtt(
        source_broker.port,
        "in/x",
        &(1000..1005).map(|i| event(i, "new")).collect::<Vec<_>>(),
    )
    .await;
    let got = collect(&mut reader, Binding::Mqtt, Duration::from_secs(10), |e| {
        e.len() >= 5
    })
    .await;
    assert!(
        got.iter().all(|e| e.subject.as_deref() == Some("new")),
        "the session backlog was replayed"
    );

    // The sink goes away while 500 events arrive: the pipeline keeps only
    // the newest few batches and, once the sink is back, delivers those
    // and whatever comes next.
    sink_broker.stop();
    publish_mqtt(
        source_broker.port,
        "in/x",
        &(2000..2500).map(|i| event(i, "burst")).collect::<Vec<_>>(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink_broker.restart();
    publish_mqtt(source_broker.port, "in/x", &[event(9999, "after")]).await;
    let got = collect(&mut reader, Binding::Mqtt, Duration::from_secs(15), |e| {
        e.iter().any(|e| e.id == "ev-9999")
    })
    .await;
    let burst = got
        .iter()
        .filter(|e| e.subject.as_deref() == Some("burst"))
        .count();
    assert!(
        burst < 100,
        "{burst} events of the burst were delivered; latest should have discarded most"
    );
    assert!(
        got.iter().any(|e| e.id == "ev-2499"),
        "the newest event of the burst was discarded"
    );
    let m = settled(&plane, |m| m.discarded_backlog >= 400).await;
    assert!(m.discarded_backlog >= 400, "{m:?}");
    plane.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_go_to_the_dead_letter_flow_and_the_pipeline_goes_on() {
    common::init_tracing();
    let mosquitto = common::Mosquitto::start("");
    let name = common::unique("dlq");
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.m]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{name}"
        batch_size = 100
        batch_timeout_ms = 200
        processor_retry = {{ attempts = 2, backoff_ms = 10 }}
        source = {{ broker = "m", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "failer" }}]
        sink = {{ broker = "m", mqtt = {{ topic = "out/ok" }} }}
        dead_letter = {{ broker = "m", connector_config = {{ mode = "structured" }}, mqtt = {{ topic = "out/dlq" }} }}
        "#,
        mosquitto.port
    ));
    let mut ok = mqtt_collector(mosquitto.port, "out/ok").await;
    let mut dlq = mqtt_collector(mosquitto.port, "out/dlq").await;
    let plane = DataPlane::start(
        &doc.brokers,
        &doc.pipelines,
        Arc::new(TestPlugins::default()),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let subjects = [
        "fine", "bad", "fine", "poison", "flaky", "fine", "fine", "fine",
    ];
    let events: Vec<Event> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| event(i, s))
        .collect();
    publish_mqtt(mosquitto.port, "in/x", &events).await;
    // And a message that is no CloudEvent at all.
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, MqttVersion::V5);
    let mut raw = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("in/raw"),
        &common::unique("raw"),
        fast_retry(),
        monitor(),
    )
    .unwrap();
    raw.send(vec![Message {
        payload: b"garbage".to_vec(),
        ..Message::default()
    }])
    .await
    .unwrap();

    let good = collect(&mut ok, Binding::Mqtt, Duration::from_secs(15), |e| {
        e.len() >= 6
    })
    .await;
    let dead = collect(&mut dlq, Binding::Mqtt, Duration::from_secs(15), |e| {
        e.len() >= 3
    })
    .await;
    assert_eq!(
        ids(&good),
        BTreeSet::from(["ev-0", "ev-2", "ev-4", "ev-5", "ev-6", "ev-7"].map(String::from))
    );
    let reason = |e: &Event| e.attribute("deadletterreason").unwrap().into_owned();
    let bad = dead
        .iter()
        .find(|e| e.id == "ev-1")
        .expect("`bad` dead-lettered");
    assert_eq!(bad.attribute("deadletterstage").as_deref(), Some("process"));
    assert_eq!(bad.attribute("deadletterplugin").as_deref(), Some("failer"));
    assert_eq!(
        bad.attribute("deadletterpipeline").as_deref(),
        Some(name.as_str())
    );
    assert!(reason(bad).contains("not allowed"));
    let poison = dead
        .iter()
        .find(|e| e.id == "ev-3")
        .expect("`poison` isolated and dead-lettered");
    assert!(reason(poison).contains("trap"));
    let garbage = dead
        .iter()
        .find(|e| e.ty == "dev.fnaa.deadletter.undecodable")
        .expect("undecodable message dead-lettered");
    assert_eq!(garbage.data.as_deref(), Some(&b"garbage"[..]));
    assert_eq!(
        garbage.attribute("deadletterstage").as_deref(),
        Some("decode")
    );
    assert_eq!(garbage.subject.as_deref(), Some("in/raw"));
    assert_eq!(dead.len(), 3, "{dead:?}");
    let m = settled(&plane, |m| m.dead_lettered == 3).await;
    assert!(
        m.retries >= 1 && m.dead_lettered == 3 && m.decode_errors == 1,
        "{m:?}"
    );
    plane.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_a_stalled_sink_and_nothing_is_lost() {
    common::init_tracing();
    let tansu = common::Tansu::start();
    let mut sink_broker = common::Mosquitto::start("");
    let kafka = KafkaBrokerConfig::new(tansu.bootstrap());
    let input = common::unique("stall-in");
    KafkaAdmin::new(&kafka)
        .unwrap()
        .create_topic(&input, 1, 1)
        .await
        .unwrap();
    let codec = BindingCodec::new(Binding::Kafka, &[]).unwrap();
    let mut producer = KafkaSink::new(
        &kafka,
        &KafkaSinkConfig::new(&input),
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    let total = 4000;
    let events: Vec<Message> = (0..total)
        .map(|i| codec.encode(&event(i, "s")).unwrap())
        .collect();
    for chunk in events.chunks(1000) {
        assert!(
            producer
                .send(chunk.to_vec())
                .await
                .unwrap()
                .iter()
                .all(Outcome::is_confirmed)
        );
    }
    let mut collector = mqtt_collector(sink_broker.port, "out/#").await;
    sink_broker.stop();

    let (batch, queue) = (100, 2);
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.kafka]
        type = "kafka"
        bootstrap_servers = "{}"
        [brokers.connections.cloud]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{}"
        batch_size = {batch}
        queue_batches = {queue}
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "kafka", kafka = {{ topics = ["{input}"] }} }}
        sink = {{ broker = "cloud", mqtt = {{ topic = "out/all" }} }}
        "#,
        tansu.bootstrap(),
        sink_broker.port,
        common::unique("stall")
    ));
    let plane = DataPlane::start(&doc.brokers, &doc.pipelines, Arc::new(NativePlugins))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = plane.metrics()[0].1.clone();
    // In flight at most: one batch in the source task, `queue` before the
    // stage worker, one in it, `queue` before the sink, and the batches the
    // sink keeps in flight (`queue_batches` of them).
    let bound = (batch * (3 * queue + 2)) as u64;
    assert!(
        m.events_in <= bound,
        "read {} events with the sink down (bound {bound})",
        m.events_in
    );
    assert_eq!(m.events_out, 0);

    sink_broker.restart();
    let got = collect(
        &mut collector,
        Binding::Mqtt,
        Duration::from_secs(30),
        |e| ids(e).len() >= total,
    )
    .await;
    assert_eq!(ids(&got).len(), total);
    plane.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kytos_routing_on_rabbitmq_with_unroutable_events_reported() {
    common::init_tracing();
    let rabbit = common::rabbitmq();
    let mosquitto = common::Mosquitto::start("");
    let prefix = common::unique("kytos");
    let queue = common::unique("sdx-operational");
    let doc = parse(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.edge]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [brokers.connections.rabbit]
        type = "amqp"
        env_prefix = "FNAA_TEST_RABBITMQ"
        [[pipelines]]
        name = "{}"
        source = {{ broker = "edge", mqtt = {{ topics = ["kytos/#"] }} }}
        sink = {{ broker = "rabbit", connector_config = {{ destination = "{{var.prefix}}.{{category}}", routing_key = "{{category}}.{{type}}", "var.prefix" = "{prefix}" }} }}
        dead_letter = {{ broker = "edge", mqtt = {{ topic = "kytos-dlq" }} }}
        "#,
        mosquitto.port,
        common::unique("kytos")
    ));
    // Only operational events have a consumer (a queue bound to their
    // exchange); administrative ones reach no queue.
    let amqp = AmqpBrokerConfig::new("127.0.0.1", rabbit);
    let mut consumer = AmqpSource::new(
        &amqp,
        &AmqpSourceConfig {
            exchange: Some(format!("{prefix}.operational")),
            binding_keys: vec!["operational.#".into()],
            ..AmqpSourceConfig::queue(&queue)
        },
        "sdx",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    // The consumer's queue must be bound before events are routed, or the
    // operational ones would be unroutable too.
    ready(&consumer).await;
    let mut dlq = mqtt_collector(mosquitto.port, "kytos-dlq").await;
    let rabbit_port = rabbit.to_string();
    let env = move |name: &str| match name {
        "FNAA_TEST_RABBITMQ_HOST" => Some("127.0.0.1".to_owned()),
        "FNAA_TEST_RABBITMQ_PORT" => Some(rabbit_port.clone()),
        "FNAA_TEST_RABBITMQ_USERNAME" | "FNAA_TEST_RABBITMQ_PASSWORD" => Some("guest".to_owned()),
        _ => None,
    };
    let plane = DataPlane::start_with_env(
        &doc.brokers,
        &doc.pipelines,
        Arc::new(NativePlugins),
        Arc::new(env),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events: Vec<Event> = (0..10).map(|i| event(i, "link")).collect();
    publish_mqtt(mosquitto.port, "kytos/topology", &events).await;

    let delivered = collect(&mut consumer, Binding::Amqp, Duration::from_secs(15), |e| {
        e.len() >= 5
    })
    .await;
    assert_eq!(
        ids(&delivered),
        (0..10).step_by(2).map(|i| format!("ev-{i}")).collect()
    );
    let dead = collect(&mut dlq, Binding::Mqtt, Duration::from_secs(15), |e| {
        e.len() >= 5
    })
    .await;
    assert_eq!(
        ids(&dead),
        (1..10).step_by(2).map(|i| format!("ev-{i}")).collect()
    );
    for e in &dead {
        assert_eq!(e.attribute("deadletterstage").as_deref(), Some("publish"));
        let reason = e.attribute("deadletterreason").unwrap();
        assert!(
            reason.contains("unroutable") && reason.contains("NO_ROUTE"),
            "{reason}"
        );
    }
    let m = settled(&plane, |m| m.dead_lettered == 5).await;
    assert_eq!(
        (m.unroutable, m.dead_lettered, m.events_out),
        (5, 5, 5),
        "{m:?}"
    );
    plane.shutdown(Duration::from_secs(5)).await;
}
