//! At-least-once pipelines end to end against real brokers, declared the
//! way an operator declares them (TOML), with the native connectors (the
//! same binding code the wasm connector plugins run): every event arrives
//! across sink outages and restarts (MQTT, AMQP, Kafka), and memory stays
//! bounded while the sink is down.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fnaa_dataplane::pipeline::native::NativePlugins;
use fnaa_dataplane::transport::DeliveryMode;
use fnaa_dataplane::transport::amqp;
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSourceConfig};
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_event::binding::Binding;

use common::pipeline::{
    Conn, Producer, brokers_toml, collect, every_event_arrived, fast_retry, ids, monitor,
    mqtt_collector, parse, produce_slowly, ready, settled,
};
use common::plugins::{TestPlugins, event};

/// A pipeline from MQTT broker `edge` (topics `in/#`) through the bridge
/// processor to `sink` (a TOML inline table) on broker `sink_broker`.
fn bridge_pipeline(name: &str, sink: &str) -> String {
    format!(
        r#"
        [[pipelines]]
        name = "{name}"
        batch_size = 50
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "edge", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "bridge" }}]
        sink = {sink}
        "#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_across_a_sink_outage() {
    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let mut sink_broker = common::Mosquitto::start("");
    let doc = parse(&format!(
        "{}{}",
        brokers_toml(&[
            ("edge", Conn::Mqtt(source_broker.port)),
            ("cloud", Conn::Mqtt(sink_broker.port)),
        ]),
        bridge_pipeline(
            &common::unique("outage"),
            r#"{ broker = "cloud", mqtt = { topic = "out/all" } }"#
        )
    ));
    // The collector keeps a persistent session on the sink broker, which
    // keeps it (with what is queued for it) across the restart.
    let mut collector = mqtt_collector(sink_broker.port, "out/#").await;
    let plane = doc.start(Arc::new(TestPlugins::default())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = 1500;
    let producer = produce_slowly(source_broker.port, 0..total, |i| event(i, "s"));
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
    every_event_arrived(&got, total, &plane);
    let m = settled(&plane, |m| m.events_in == m.events_out).await;
    assert_eq!(m.events_in, m.events_out, "{m:?}");
    plane.shutdown(Duration::from_secs(5)).await;
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
    let mut collector = amqp::open_source(
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
        "{}{}",
        brokers_toml(&[
            ("edge", Conn::Mqtt(source_broker.port)),
            ("rabbit", Conn::Amqp(rabbit.port)),
        ]),
        bridge_pipeline(
            &common::unique("amqp-outage"),
            &format!(
                r#"{{ broker = "rabbit", amqp = {{ exchange = "{exchange}", routing_key = "readings" }} }}"#
            )
        )
    ));
    let plane = doc.start(Arc::new(TestPlugins::default())).await;

    let total = 1500;
    let producer = produce_slowly(source_broker.port, 0..total, |i| event(i, "s"));
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
    let bootstrap = tansu.bootstrap();
    let doc = parse(&format!(
        "{}{}",
        brokers_toml(&[
            ("edge", Conn::Mqtt(source_broker.port)),
            ("kafka", Conn::Kafka(&bootstrap)),
        ]),
        bridge_pipeline(
            &common::unique("kafka-restart"),
            &format!(r#"{{ broker = "kafka", kafka = {{ topic = "{output}" }} }}"#)
        )
    ));
    let plane = doc.start(Arc::new(TestPlugins::default())).await;

    let make = |i| event(i, "s");
    produce_slowly(source_broker.port, 0..500, make)
        .await
        .unwrap();
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
    produce_slowly(source_broker.port, 500..1000, make)
        .await
        .unwrap();
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
    produce_slowly(source_broker.port, 1000..1500, make)
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
    common::init_tracing();
    let source_broker = common::Mosquitto::start("");
    let proxy_port = common::free_port();
    let tansu = common::Tansu::start_advertising(common::free_port(), proxy_port);
    let proxy = common::TcpProxy::start(proxy_port, tansu.port).await;
    let bootstrap = format!("127.0.0.1:{proxy_port}");
    let kafka = KafkaBrokerConfig::new(&bootstrap);
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
        "{}{}",
        brokers_toml(&[
            ("edge", Conn::Mqtt(source_broker.port)),
            ("kafka", Conn::Kafka(&bootstrap)),
        ]),
        bridge_pipeline(
            &common::unique("kafka-outage"),
            &format!(
                r#"{{ broker = "kafka", kafka = {{ topic = "{output}", message_timeout_ms = 3000 }} }}"#
            )
        )
    ));
    let plane = doc.start(Arc::new(TestPlugins::default())).await;

    let total = 1500;
    let producer = produce_slowly(source_broker.port, 0..total, |i| event(i, "s"));
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
    let total = 4000;
    Producer::kafka(&tansu.bootstrap(), &input, &[])
        .publish_numbered(0..total, 1000, Duration::ZERO, |i| event(i, "s"))
        .await;
    let mut collector = mqtt_collector(sink_broker.port, "out/#").await;
    sink_broker.stop();

    let (batch, queue) = (100, 2);
    let doc = parse(&format!(
        r#"{}
        [[pipelines]]
        name = "{}"
        batch_size = {batch}
        queue_batches = {queue}
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 1 }}
        source = {{ broker = "kafka", kafka = {{ topics = ["{input}"] }} }}
        sink = {{ broker = "cloud", mqtt = {{ topic = "out/all" }} }}
        "#,
        brokers_toml(&[
            ("kafka", Conn::Kafka(&tansu.bootstrap())),
            ("cloud", Conn::Mqtt(sink_broker.port)),
        ]),
        common::unique("stall")
    ));
    let plane = doc.start(Arc::new(NativePlugins)).await;
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
