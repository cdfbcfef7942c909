//! Kytos-style routing on RabbitMQ end to end: events from MQTT go to a
//! per-category exchange with a `{category}.{type}` routing key; the ones
//! no queue is bound for are reported unroutable and dead-lettered.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::DataPlane;
use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::pipeline::native::NativePlugins;
use fnaa_dataplane::transport::DeliveryMode;
use fnaa_dataplane::transport::amqp;
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSourceConfig};
use fnaa_event::Event;
use fnaa_event::binding::Binding;

use common::pipeline::{
    collect, ids, monitor, mqtt_collector, parse, publish_mqtt, ready, settled,
};
use common::plugins::event;

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
    let mut consumer = amqp::open_source(
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
