//! The latency the wasm stage adds: decode + bridge + encode per batch,
//! wasm vs the same binding code compiled natively, and the end-to-end
//! latency of single events through an MQTT pipeline, wasm vs native.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::pipeline::native::{NativeCodec, NativePlugins, PassThrough};
use fnaa_dataplane::pipeline::{Codec, PluginFactory, Processor};
use fnaa_dataplane::transport::mqtt;
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSinkConfig, MqttSourceConfig, MqttVersion,
};
use fnaa_dataplane::transport::{DeliveryMode, Message};
use fnaa_event::Event;
use fnaa_event::binding::Binding;

use crate::common;
use crate::common::pipeline::{Conn, Producer, brokers_toml, codec, parse};
use crate::harness::{Row, drain, event, monitor, percentile, row, wasm_plugins};
use crate::mqtt::MOSQUITTO_TUNING;

/// The wasm stage alone: decode (mqtt) + bridge + encode (mqtt), per batch,
/// wasm components vs the same code compiled natively.
pub fn stage(batch_sizes: &[usize]) -> Vec<String> {
    let wasm = wasm_plugins();
    let cfg: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for &size in batch_sizes {
        let events: Vec<Event> = (0..size).map(event).collect();
        let structured = codec(Binding::Mqtt, &[("mode", "structured")]);
        let messages: Vec<Message> = events
            .iter()
            .map(|e| structured.encode(e).unwrap())
            .collect();
        let mut results = Vec::new();
        for variant in ["native", "wasm"] {
            let (mut dec, mut proc_, mut enc): (
                Box<dyn Codec>,
                Box<dyn Processor>,
                Box<dyn Codec>,
            ) = if variant == "wasm" {
                (
                    wasm.connector("mqtt", "d", &cfg).unwrap(),
                    wasm.processor("bridge", "p", &cfg).unwrap(),
                    wasm.connector("mqtt", "e", &cfg).unwrap(),
                )
            } else {
                (
                    Box::new(NativeCodec::new("mqtt", &cfg).unwrap()),
                    Box::new(PassThrough),
                    Box::new(NativeCodec::new("mqtt", &cfg).unwrap()),
                )
            };
            let iterations = (20_000 / size).clamp(50, 2000);
            let mut samples = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t = Instant::now();
                let evs: Vec<Event> = dec
                    .decode(&messages)
                    .unwrap()
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                let evs: Vec<Event> = proc_
                    .process("in", &evs)
                    .unwrap()
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect();
                let msgs = enc.encode(&evs).unwrap();
                assert_eq!(msgs.len(), size);
                samples.push(t.elapsed().as_nanos() as u64);
            }
            let p50 = percentile(&mut samples, 0.5);
            let p99 = percentile(&mut samples, 0.99);
            results.push((p50, p99));
        }
        let ((n50, n99), (w50, w99)) = (results[0], results[1]);
        let line = format!(
            "| {size} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            n50 as f64 / 1000.0,
            w50 as f64 / 1000.0,
            n99 as f64 / 1000.0,
            w99 as f64 / 1000.0,
            w50.saturating_sub(n50) as f64 / 1000.0 / size as f64,
            w99.saturating_sub(n99) as f64 / 1000.0 / size as f64,
        );
        eprintln!("stage {line}");
        out.push(line);
    }
    out
}

/// End-to-end latency of single events (one every 5 ms) through an MQTT ->
/// MQTT pipeline, wasm plugins vs native, batches of whatever has arrived
/// (no batching delay), from the producer's clock to the consumer's.
pub async fn latency(n: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let variants: [(&str, Arc<dyn PluginFactory>); 2] = [
        ("native connector + bridge", Arc::new(NativePlugins)),
        ("wasm connector + bridge", wasm_plugins()),
    ];
    for (variant, plugins) in variants {
        let a = common::Mosquitto::start(MOSQUITTO_TUNING);
        let b = common::Mosquitto::start(MOSQUITTO_TUNING);
        let doc = parse(&format!(
            r#"{}
            [[pipelines]]
            name = "bench-latency"
            batch_size = 100
            batch_timeout_ms = 0
            metrics_interval_s = 0
            source = {{ broker = "a", mqtt = {{ topics = ["lat/in"] }} }}
            processors = [{{ plugin = "bridge" }}]
            sink = {{ broker = "b", mqtt = {{ topic = "lat/out" }} }}
            "#,
            brokers_toml(&[("a", Conn::Mqtt(a.port)), ("b", Conn::Mqtt(b.port))])
        ));
        let plane = doc.start(plugins).await;
        let mut consumer = mqtt::open_source(
            &MqttBrokerConfig::new("127.0.0.1", b.port, MqttVersion::V5),
            &MqttSourceConfig::new(vec!["lat/out".into()]),
            &common::unique("lat-consumer"),
            DeliveryMode::AtLeastOnce,
            RetryConfig::default(),
            monitor(),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut producer = Producer::mqtt_with(
            a.port,
            MqttSinkConfig::new("lat/in"),
            RetryConfig::default(),
        );
        let start = Instant::now();
        let produce = tokio::spawn(async move {
            producer
                .publish_numbered(0..n, 1, Duration::from_millis(5), event)
                .await;
        });
        let (_, lat) = drain(
            &mut consumer,
            Binding::Mqtt,
            n,
            Duration::from_secs(120),
            Duration::ZERO,
        )
        .await;
        produce.await.unwrap();
        rows.push(row("MQTT latency", variant, n, start.elapsed(), lat));
        let m = plane.metrics()[0].1.clone();
        eprintln!(
            "   stage p50 {} us p99 {} us (pipeline metrics)",
            m.stage_latency_p50_us, m.stage_latency_p99_us
        );
        plane.shutdown(Duration::from_secs(5)).await;
    }
    rows
}
