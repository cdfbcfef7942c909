//! MQTT -> MQTT: our pipeline (wasm `mqtt` connector + wasm `bridge`) vs
//! Mosquitto's own bridge.

use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::transport::DeliveryMode;
use fnaa_dataplane::transport::mqtt;
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSinkConfig, MqttSourceConfig, MqttVersion,
};
use fnaa_event::binding::Binding;

use crate::common;
use crate::common::pipeline::{Conn, Producer, brokers_toml, parse};
use crate::harness::{
    Row, cpu_now, drain, env_or, event, monitor, report_cpu, report_plane, row, wasm_plugins,
};

pub const MOSQUITTO_TUNING: &str = "max_queued_messages 10000000\nmax_inflight_messages 0\n";

/// MQTT -> MQTT. A producer publishes `n` events (QoS 1) to broker A as fast
/// as A takes them; a subscriber on broker B counts them. In between: our
/// pipeline, or Mosquitto's bridge running inside B.
pub async fn mqtt(n: usize) -> Vec<Row> {
    let batch: usize = env_or("BENCH_MQTT_BATCH", 2000);
    let window = (batch * 2).min(65_000);
    let mut rows = Vec::new();
    // Our pipeline.
    {
        let a = common::Mosquitto::start(MOSQUITTO_TUNING);
        let b = common::Mosquitto::start(MOSQUITTO_TUNING);
        let doc = parse(&format!(
            r#"{}
            [[pipelines]]
            name = "bench-mqtt"
            batch_size = {batch}
            batch_timeout_ms = 2
            metrics_interval_s = 0
            source = {{ broker = "a", mqtt = {{ topics = ["bench/in"] }} }}
            processors = [{{ plugin = "bridge" }}]
            sink = {{ broker = "b", mqtt = {{ topic = "bench/out", max_inflight = {window} }} }}
            "#,
            brokers_toml(&[("a", Conn::Mqtt(a.port)), ("b", Conn::Mqtt(b.port))])
        ));
        let plane = doc.start(wasm_plugins()).await;
        let before = cpu_now(&a, &b);
        rows.push(
            mqtt_run(
                "MQTT -> MQTT",
                "fnaa pipeline (wasm mqtt + bridge)",
                a.port,
                b.port,
                "bench/in",
                "bench/out",
                n,
            )
            .await,
        );
        report_cpu("fnaa", &a, &b, before);
        report_plane(&plane);
        plane.shutdown(Duration::from_secs(5)).await;
    }
    // Mosquitto's bridge: B connects to A and pulls bench/in into B.
    {
        let a = common::Mosquitto::start(MOSQUITTO_TUNING);
        let b = common::Mosquitto::start(&format!(
            "{MOSQUITTO_TUNING}connection bench-bridge\naddress 127.0.0.1:{}\ntopic bench/in in 1 \"\" \"\"\ncleansession true\n",
            a.port
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = cpu_now(&a, &b);
        rows.push(
            mqtt_run(
                "MQTT -> MQTT",
                "mosquitto bridge (QoS 1)",
                a.port,
                b.port,
                "bench/in",
                "bench/in",
                n,
            )
            .await,
        );
        report_cpu("bridge", &a, &b, before);
    }
    rows
}

async fn mqtt_run(
    bench: &str,
    variant: &str,
    a: u16,
    b: u16,
    in_topic: &str,
    out_topic: &str,
    n: usize,
) -> Row {
    let mut consumer = mqtt::open_source(
        &MqttBrokerConfig::new("127.0.0.1", b, MqttVersion::V5),
        &MqttSourceConfig::new(vec![out_topic.to_owned()]),
        &common::unique("bench-consumer"),
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sink_config = MqttSinkConfig::new(in_topic);
    // The producer publishes `chunk` events, waits for their PUBACKs, and
    // so on: it paces both variants alike.
    let chunk: usize = env_or("BENCH_MQTT_PRODUCER_CHUNK", 1000);
    sink_config.max_inflight = u16::try_from(chunk).unwrap_or(u16::MAX);
    let mut producer = Producer::mqtt_with(a, sink_config, RetryConfig::default());
    let produce = tokio::spawn(async move {
        producer
            .publish_numbered(0..n, chunk, Duration::ZERO, event)
            .await;
    });
    let (elapsed, lat) = drain(
        &mut consumer,
        Binding::Mqtt,
        n,
        Duration::from_secs(300),
        Duration::from_millis(2),
    )
    .await;
    produce.await.unwrap();
    row(bench, variant, n, elapsed, lat)
}
