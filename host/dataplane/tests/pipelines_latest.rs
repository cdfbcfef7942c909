//! `latest` pipelines end to end against real brokers: they start at the
//! live point (Kafka, a RabbitMQ queue's backlog, an MQTT session's
//! backlog) and, when the sink falls behind, drop the oldest events.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::pipeline::native::NativePlugins;
use fnaa_dataplane::transport::amqp;
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSourceConfig};
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_dataplane::transport::mqtt;
use fnaa_dataplane::transport::mqtt::{MqttBrokerConfig, MqttSourceConfig, MqttVersion};
use fnaa_dataplane::transport::{DeliveryMode, Source};
use fnaa_event::binding::Binding;

use common::pipeline::{
    Conn, Producer, brokers_toml, collect, fast_retry, monitor, mqtt_collector, parse,
    publish_mqtt, ready, settled,
};
use common::plugins::event;

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
    let mut producer = Producer::kafka(&tansu.bootstrap(), &input, &[]);
    // The backlog, one produce request per event (tansu 0.6 miscounts the
    // end offset of multi-record batches, which would make "the end" wrong).
    producer
        .publish_numbered(0..40, 1, Duration::ZERO, |i| event(i, "old"))
        .await;
    let doc = parse(&format!(
        r#"{}
        [[pipelines]]
        name = "{}"
        delivery = "latest"
        source = {{ broker = "kafka", kafka = {{ topics = ["{input}"] }} }}
        sink = {{ broker = "kafka", kafka = {{ topic = "{output}" }} }}
        "#,
        brokers_toml(&[("kafka", Conn::Kafka(&tansu.bootstrap()))]),
        common::unique("latest")
    ));
    let plane = doc.start(Arc::new(NativePlugins)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    producer
        .publish_numbered(1000..1005, 1, Duration::ZERO, |i| event(i, "new"))
        .await;
    let mut reader = KafkaSource::new(
        &kafka,
        &KafkaSourceConfig::new(vec![output]),
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
    let setup = amqp::open_source(
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
    let mut producer = Producer::amqp(
        rabbit,
        Default::default(),
        &[("destination", &exchange), ("routing_key", "{type}")],
    );
    producer
        .publish_numbered(0..300, 300, Duration::ZERO, |i| event(i, "old"))
        .await;

    let doc = parse(&format!(
        r#"{}
        [[pipelines]]
        name = "{}"
        delivery = "latest"
        source = {{ broker = "rabbit", amqp = {{ queue = "{queue}", exchange = "{exchange}" }} }}
        sink = {{ broker = "out", mqtt = {{ topic = "live" }} }}
        "#,
        brokers_toml(&[
            ("rabbit", Conn::Amqp(rabbit)),
            ("out", Conn::Mqtt(mosquitto.port)),
        ]),
        common::unique("latest")
    ));
    let mut reader = mqtt_collector(mosquitto.port, "live").await;
    let plane = doc.start(Arc::new(NativePlugins)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    producer
        .publish_numbered(1000..1010, 10, Duration::ZERO, |i| event(i, "new"))
        .await;

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
    let earlier = mqtt::open_source(
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
        r#"{}
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
        brokers_toml(&[
            ("edge", Conn::Mqtt(source_broker.port)),
            ("cloud", Conn::Mqtt(sink_broker.port)),
        ]),
    ));
    let mut reader = mqtt_collector(sink_broker.port, "live").await;
    let plane = doc.start(Arc::new(NativePlugins)).await;
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
