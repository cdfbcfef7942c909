//! Data-plane benchmarks, side by side in one run on this machine:
//!
//! 1. MQTT -> MQTT: a pipeline with the wasm `mqtt` connector and the wasm
//!    `bridge` processor vs Mosquitto's own bridge (`connection`/`topic`);
//! 2. AMQP -> AMQP: a pipeline with the wasm `amqp` connector vs RabbitMQ's
//!    shovel plugin (`ack-mode = on-confirm`, the same guarantee);
//! 3. Kafka -> Kafka (tansu): a pipeline with the wasm `kafka` connector vs
//!    a `kcat -C | kcat -P` pipe;
//! 4. the latency the wasm stage adds: decode + bridge + encode per batch,
//!    wasm vs the same binding code compiled natively, and the end-to-end
//!    latency of single events through an MQTT pipeline, wasm vs native.
//!
//! Every pipeline runs `at-least-once` (the default): a message is
//! acknowledged at its source only after the sink broker confirmed it.
//!
//! Rates are steady rates at the counting consumer: from the arrival that
//! brings the count past a quarter of the events to the last arrival (so
//! neither side's start-up nor a pipeline's first whole batch counts); the
//! time column is the time all the events take at that rate.
//!
//! ```text
//! cargo bench -p fnaa-dataplane --bench brokers              # 20 000 events, 3 rounds
//! cargo bench -p fnaa-dataplane --bench brokers -- 50000 5   # events per run, rounds
//! ```
//!
//! Environment: `BENCH_ONLY=mqtt|amqp|kafka|latency` runs one part;
//! `BENCH_VERBOSE=1` prints the pipelines' counters, the arrival timeline
//! and (MQTT) the CPU time of each broker and of this process;
//! `BENCH_MQTT_BATCH` (2000), `BENCH_KAFKA_BATCH` (2000),
//! `BENCH_KAFKA_LINGER_MS` (2) set the pipelines' batches;
//! `BENCH_KAFKA_SINK_MODE` (`structured`) is the Kafka pipeline's output
//! mode;
//! `BENCH_MQTT_PRODUCER_CHUNK` (1000) is how many events the MQTT
//! producer publishes before it waits for their PUBACKs;
//! `BENCH_KAFKA_SCALE` (5) multiplies the events of the Kafka part;
//! `BENCH_KAFKA_FETCH_WAIT_MS` (10) is every Kafka consumer's
//! `fetch.wait.max.ms`.
//!
//! Needs mosquitto, RabbitMQ on 127.0.0.1:5672 with `rabbitmq_shovel`
//! enabled, tansu, kcat (see `tests/common`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fnaa_dataplane::DataPlane;
use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::config::{BrokersConfig, PipelineConfig};
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::pipeline::native::{NativeCodec, NativePlugins, PassThrough};
use fnaa_dataplane::pipeline::wasm::WasmPlugins;
use fnaa_dataplane::pipeline::{Codec, PluginFactory, Processor};
use fnaa_dataplane::transport::amqp::{
    AmqpBrokerConfig, AmqpSink, AmqpSinkConfig, AmqpSource, AmqpSourceConfig,
};
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSource, MqttSourceConfig, MqttVersion,
};
use fnaa_dataplane::transport::{DeliveryMode, Message, Sink, Source};
use fnaa_event::binding::{Binding, Codec as BindingCodec};
use fnaa_event::{AttributeValue, Event};
use fnaa_runtime::{Runtime, RuntimeConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    brokers: BrokersConfig,
    pipelines: Vec<PipelineConfig>,
}

fn monitor() -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new("bench client", Duration::from_secs(60)))
}

fn wasm_plugins() -> Arc<WasmPlugins> {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let r = runtime.clone();
    Arc::new(WasmPlugins::new(runtime, move |name| {
        let p = fnaa_plugins::find(name).ok_or_else(|| format!("no embedded plugin `{name}`"))?;
        r.load(name, p.wasm).map_err(|e| e.to_string())
    }))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A Kytos-like event, ~300 bytes in structured mode; its data carries the
/// send time for latency measurements.
fn event(i: usize) -> Event {
    let mut e = Event::new(
        format!("ev-{i}"),
        "/kytos/topology",
        "kytos/topology.link_up",
    )
    .with_data(
        "application/json",
        format!(r#"{{"link":"{i}","status":"up","sent_us":{}}}"#, now_us()).into_bytes(),
    );
    e.subject = Some(format!("link/{i}"));
    e.time = Some("2026-11-22T10:00:00Z".into());
    e.set_extension("category", AttributeValue::String("operational".into()));
    e
}

fn sent_us(e: &Event) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(e.data.as_deref()?).ok()?;
    v["sent_us"].as_u64()
}

/// Receives until `n` distinct event ids arrived, decoding with `binding`;
/// returns the time `n` events take at the steady rate and the per-event
/// latencies (µs).
///
/// The steady rate is measured from the arrival that brings the count past
/// a quarter of `n` to the last arrival: it leaves out the start-up of
/// either side (connecting, joining a consumer group, the first fetch) and
/// the first burst (a pipeline delivers whole batches, a first-to-last
/// measurement would count its first batch as if it took no time).
async fn drain(
    source: &mut dyn Source,
    binding: Binding,
    n: usize,
    timeout: Duration,
    linger: Duration,
) -> (Duration, Vec<u64>) {
    let mut codec = BindingCodec::new(binding, &[]).unwrap();
    let start = Instant::now();
    let mut quarter: Option<(Instant, usize)> = None;
    let mut last = start;
    // (time since start, events seen) after every receive, for BENCH_VERBOSE.
    let mut timeline: Vec<(f64, usize)> = Vec::new();
    let mut seen = HashSet::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    while seen.len() < n && start.elapsed() < timeout {
        let Ok(batch) =
            tokio::time::timeout(Duration::from_secs(5), source.recv(2000, linger)).await
        else {
            continue;
        };
        let batch = batch.unwrap();
        let arrived = Instant::now();
        let now = now_us();
        for r in &batch {
            // A `kcat -C | kcat -P` pipe copies values only: its output has
            // no content-type header, but the value is still the JSON event.
            let decoded = codec
                .decode(&r.message, (0, 0))
                .or_else(|_| fnaa_event::from_json(&r.message.payload).map_err(|e| e.to_string()));
            if let Ok(e) = decoded {
                if let Some(t) = sent_us(&e) {
                    latencies.push(now.saturating_sub(t));
                }
                seen.insert(e.id);
            }
        }
        last = arrived;
        timeline.push(((arrived - start).as_secs_f64(), seen.len()));
        if quarter.is_none() && seen.len() >= n / 4 {
            quarter = Some((arrived, seen.len()));
        }
        source
            .acker()
            .ack(batch.into_iter().map(|r| r.token).collect())
            .await
            .unwrap();
    }
    assert_eq!(seen.len(), n, "only {} of {n} events arrived", seen.len());
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let at = |fraction: f64| {
            timeline
                .iter()
                .find(|(_, count)| *count as f64 >= fraction * n as f64)
                .map_or(f64::NAN, |(t, _)| *t)
        };
        eprintln!(
            "   arrivals (s after the consumer started): first {:.3}, 25% {:.3}, 50% {:.3}, 75% {:.3}, all {:.3}",
            at(0.0),
            at(0.25),
            at(0.5),
            at(0.75),
            at(1.0)
        );
    }
    let steady = match quarter {
        Some((at, count)) if count < n && last > at => {
            (last - at).mul_f64(n as f64 / (n - count) as f64)
        }
        // Everything came at once: no rate to measure, say so loudly.
        _ => Duration::from_secs(1_000_000),
    };
    (steady, latencies)
}

/// [`drain`] on `consumer`, with `copier` started only once the consumer
/// consumes (so that it counts from the first copied event on, whatever
/// its own start-up takes); returns what both returned.
async fn drain_copied<T>(
    consumer: &mut dyn Source,
    binding: Binding,
    n: usize,
    copier: impl std::future::Future<Output = T>,
) -> ((Duration, Vec<u64>), T) {
    let ready = consumer.ready();
    let copy = async move {
        ready.await;
        copier.await
    };
    tokio::join!(
        drain(
            consumer,
            binding,
            n,
            Duration::from_secs(300),
            Duration::from_millis(2)
        ),
        copy
    )
}

/// With `BENCH_VERBOSE` set, prints a pipeline's counters (batches, batch
/// and stage latencies) to stderr.
fn report_plane(plane: &DataPlane) {
    if std::env::var_os("BENCH_VERBOSE").is_none() {
        return;
    }
    for (name, m) in plane.metrics() {
        eprintln!(
            "   {name}: {} in, {} out, {} batches (avg {:.0}), batch p50 {} us p99 {} us, stage p50 {} us p99 {} us",
            m.events_in,
            m.events_out,
            m.batches,
            m.events_in as f64 / m.batches.max(1) as f64,
            m.batch_latency_p50_us,
            m.batch_latency_p99_us,
            m.stage_latency_p50_us,
            m.stage_latency_p99_us
        );
    }
}

/// CPU time (user + system, seconds) of this process, or of the processes
/// whose command line contains `needle`.
fn cpu_seconds(needle: Option<&str>) -> f64 {
    let ticks = |stat: &str| -> f64 {
        // Fields after the command name (which may contain spaces).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (u, s) = (
            f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
            f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
        );
        (u + s) / 100.0
    };
    match needle {
        None => std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s)),
        Some(needle) => std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
            })
            .map(|e| std::fs::read_to_string(e.path().join("stat")).map_or(0.0, |s| ticks(&s)))
            .sum(),
    }
}

/// With `BENCH_VERBOSE` set, prints the CPU time brokers A and B and this
/// process (producer, consumer and, for fnaa, the pipeline) used since
/// `before`.
fn report_cpu(label: &str, a: &common::Mosquitto, b: &common::Mosquitto, before: (f64, f64, f64)) {
    if std::env::var_os("BENCH_VERBOSE").is_none() {
        return;
    }
    let (ca, cb) = (
        a.conf().display().to_string(),
        b.conf().display().to_string(),
    );
    eprintln!(
        "   {label}: CPU s: broker A {:.2}, broker B {:.2}, bench process {:.2}",
        cpu_seconds(Some(&ca)) - before.0,
        cpu_seconds(Some(&cb)) - before.1,
        cpu_seconds(None) - before.2
    );
}

fn cpu_now(a: &common::Mosquitto, b: &common::Mosquitto) -> (f64, f64, f64) {
    (
        cpu_seconds(Some(&a.conf().display().to_string())),
        cpu_seconds(Some(&b.conf().display().to_string())),
        cpu_seconds(None),
    )
}

fn percentile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

struct Row {
    bench: String,
    variant: String,
    events: usize,
    seconds: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

fn row(bench: &str, variant: &str, events: usize, elapsed: Duration, mut lat: Vec<u64>) -> Row {
    let (p50, p99) = if lat.is_empty() {
        (None, None)
    } else {
        (
            Some(percentile(&mut lat, 0.5) as f64 / 1000.0),
            Some(percentile(&mut lat, 0.99) as f64 / 1000.0),
        )
    };
    let r = Row {
        bench: bench.into(),
        variant: variant.into(),
        events,
        seconds: elapsed.as_secs_f64(),
        p50_ms: p50,
        p99_ms: p99,
    };
    eprintln!(
        "{bench:>16} | {variant:<34} | {:>9.0} ev/s | {:.2} s",
        r.rate(),
        r.seconds
    );
    r
}

const MOSQUITTO_TUNING: &str = "max_queued_messages 10000000\nmax_inflight_messages 0\n";

/// MQTT -> MQTT. A producer publishes `n` events (QoS 1) to broker A as fast
/// as A takes them; a subscriber on broker B counts them. In between: our
/// pipeline, or Mosquitto's bridge running inside B.
async fn mqtt(n: usize) -> Vec<Row> {
    let batch: usize = std::env::var("BENCH_MQTT_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let window = (batch * 2).min(65_000);
    let mut rows = Vec::new();
    // Our pipeline.
    {
        let a = common::Mosquitto::start(MOSQUITTO_TUNING);
        let b = common::Mosquitto::start(MOSQUITTO_TUNING);
        let doc: Doc = toml::from_str(&format!(
            r#"
            [brokers.embedded_mqtt]
            mode = "never"
            [brokers.connections.a]
            type = "mqtt"
            host = "127.0.0.1"
            port = {}
            [brokers.connections.b]
            type = "mqtt"
            host = "127.0.0.1"
            port = {}
            [[pipelines]]
            name = "bench-mqtt"
            batch_size = {batch}
            batch_timeout_ms = 2
            metrics_interval_s = 0
            source = {{ broker = "a", mqtt = {{ topics = ["bench/in"] }} }}
            processors = [{{ plugin = "bridge" }}]
            sink = {{ broker = "b", mqtt = {{ topic = "bench/out", max_inflight = {window} }} }}
            "#,
            a.port, b.port
        ))
        .unwrap();
        let plane = DataPlane::start(&doc.brokers, &doc.pipelines, wasm_plugins())
            .await
            .unwrap();
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
    let mut consumer = MqttSource::new(
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
    let chunk: usize = std::env::var("BENCH_MQTT_PRODUCER_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    sink_config.max_inflight = u16::try_from(chunk).unwrap_or(u16::MAX);
    let mut producer = MqttSink::new(
        &MqttBrokerConfig::new("127.0.0.1", a, MqttVersion::V5),
        &sink_config,
        &common::unique("bench-producer"),
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    let codec = BindingCodec::new(Binding::Mqtt, &[("mode".into(), "structured".into())]).unwrap();
    let start = Instant::now();
    let produce = tokio::spawn(async move {
        for chunk in (0..n).collect::<Vec<_>>().chunks(chunk) {
            let messages: Vec<Message> = chunk
                .iter()
                .map(|&i| codec.encode(&event(i)).unwrap())
                .collect();
            producer.send(messages).await.unwrap();
        }
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
    let _ = start;
    row(bench, variant, n, elapsed, lat)
}

/// AMQP -> AMQP. `n` events wait in a durable queue; the pipeline (or a
/// shovel) moves them to another queue; a consumer counts them there.
async fn amqp(n: usize) -> Vec<Row> {
    let port = common::rabbitmq();
    let broker = AmqpBrokerConfig::new("127.0.0.1", port);
    let codec = BindingCodec::new(Binding::Amqp, &[]).unwrap();
    let mut rows = Vec::new();
    for variant in [
        "fnaa pipeline (wasm amqp connector)",
        "rabbitmq shovel (on-confirm)",
    ] {
        let (q_in, q_out) = (common::unique("bench-in"), common::unique("bench-out"));
        // Declare both queues, then preload the input queue.
        for q in [&q_in, &q_out] {
            let s = AmqpSource::new(
                &broker,
                &AmqpSourceConfig::queue(q),
                "declare",
                DeliveryMode::AtLeastOnce,
                RetryConfig::default(),
                monitor(),
            )
            .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(s);
        }
        let mut producer = AmqpSink::new(
            &broker,
            &AmqpSinkConfig {
                routing_key: q_in.clone(),
                ..AmqpSinkConfig::default()
            },
            "bench-producer",
            RetryConfig::default(),
            monitor(),
        );
        for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
            producer
                .send(
                    chunk
                        .iter()
                        .map(|&i| codec.encode(&event(i)).unwrap())
                        .collect(),
                )
                .await
                .unwrap();
        }
        let mut consumer = AmqpSource::new(
            &broker,
            &AmqpSourceConfig::queue(&q_out),
            "bench-consumer",
            DeliveryMode::AtLeastOnce,
            RetryConfig::default(),
            monitor(),
        )
        .unwrap();
        let start = Instant::now();
        let mut plane = None;
        let shovel = common::unique("bench-shovel");
        if variant.starts_with("fnaa") {
            let doc: Doc = toml::from_str(&format!(
                r#"
                [brokers.embedded_mqtt]
                mode = "never"
                [brokers.connections.r]
                type = "amqp"
                host = "127.0.0.1"
                port = {port}
                [[pipelines]]
                name = "bench-amqp"
                batch_size = 1000
                batch_timeout_ms = 2
                metrics_interval_s = 0
                source = {{ broker = "r", amqp = {{ queue = "{q_in}", prefetch = 4000 }} }}
                sink = {{ broker = "r", amqp = {{ routing_key = "{q_out}" }} }}
                "#
            ))
            .unwrap();
            plane = Some(
                DataPlane::start(&doc.brokers, &doc.pipelines, wasm_plugins())
                    .await
                    .unwrap(),
            );
        } else {
            let definition = format!(
                r#"{{"src-protocol":"amqp091","src-uri":"amqp://127.0.0.1:{port}","src-queue":"{q_in}","dest-protocol":"amqp091","dest-uri":"amqp://127.0.0.1:{port}","dest-queue":"{q_out}","ack-mode":"on-confirm","src-prefetch-count":4000}}"#
            );
            let status = Command::new("rabbitmqctl")
                .args(["set_parameter", "shovel", &shovel, &definition])
                .output()
                .unwrap();
            assert!(
                status.status.success(),
                "rabbitmqctl set_parameter shovel failed (is rabbitmq_shovel enabled? rabbitmq-plugins enable rabbitmq_shovel): {}",
                String::from_utf8_lossy(&status.stderr)
            );
        }
        let (elapsed, _) = drain(
            &mut consumer,
            Binding::Amqp,
            n,
            Duration::from_secs(300),
            Duration::from_millis(2),
        )
        .await;
        let _ = start;
        rows.push(row("AMQP -> AMQP", variant, n, elapsed, Vec::new()));
        if let Some(p) = plane {
            report_plane(&p);
            p.shutdown(Duration::from_secs(5)).await;
        } else {
            let _ = Command::new("rabbitmqctl")
                .args(["clear_parameter", "shovel", &shovel])
                .output();
        }
        for q in [&q_in, &q_out] {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_queue", q.as_str()])
                .output();
        }
    }
    rows
}

/// Kafka -> Kafka on tansu. `n` events wait in a topic; the pipeline (or a
/// kcat pipe) copies them to another topic; a consumer counts them there.
async fn kafka(n: usize) -> Vec<Row> {
    // A copy of 20,000 events lasts ~0.1 s on tansu, too short for a steady
    // rate (one fetch or one batch more or less changes it by half): the
    // Kafka part moves `BENCH_KAFKA_SCALE` (default 5) times more.
    let scale: usize = std::env::var("BENCH_KAFKA_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let n = n * scale.max(1);
    // tansu 0.6 answers every fetch only after sleeping half of the
    // consumer's `fetch.wait.max.ms` (librdkafka's default: 500 ms), data
    // or not: with the default every copier would move ~1 MB per 250 ms.
    // Every consumer here (ours, `kcat -C`, the counting one) waits 10 ms.
    let fetch_wait: u64 = std::env::var("BENCH_KAFKA_FETCH_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let kbatch: usize = std::env::var("BENCH_KAFKA_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // What the pipeline writes: `structured` (the whole event in the value,
    // like the copied records) or `binary` (the connector's default).
    let kmode = std::env::var("BENCH_KAFKA_SINK_MODE").unwrap_or_else(|_| "structured".to_owned());
    let klinger: u64 = std::env::var("BENCH_KAFKA_LINGER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let admin = KafkaAdmin::new(&broker).unwrap();
    let codec = BindingCodec::new(Binding::Kafka, &[("mode".into(), "structured".into())]).unwrap();
    let mut rows = Vec::new();
    for variant in ["fnaa pipeline (wasm kafka connector)", "kcat -C | kcat -P"] {
        let (t_in, t_out) = (common::unique("bench-in"), common::unique("bench-out"));
        admin.create_topic(&t_in, 1, 1).await.unwrap();
        admin.create_topic(&t_out, 1, 1).await.unwrap();
        // Preloaded the way producers write: many records per produce
        // batch. (tansu 0.6 miscounts the end offset of multi-record
        // batches, so `kcat -C` stops after `n` messages (`-c`), not at the
        // end of the topic (`-e`).)
        let preload = KafkaSinkConfig::new(&t_in);
        let mut producer =
            KafkaSink::new(&broker, &preload, RetryConfig::default(), monitor()).unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
            producer
                .send(
                    chunk
                        .iter()
                        .map(|&i| codec.encode(&event(i)).unwrap())
                        .collect(),
                )
                .await
                .unwrap();
        }
        let mut count_config = KafkaSourceConfig::new(vec![t_out.clone()]);
        count_config.properties.insert(
            "fetch.wait.max.ms".into(),
            fnaa_dataplane::secret::Secret::new(fetch_wait.to_string()),
        );
        let mut consumer = KafkaSource::new(
            &broker,
            &count_config,
            &common::unique("bench-count"),
            DeliveryMode::AtLeastOnce,
            monitor(),
        )
        .await
        .unwrap();
        let b = tansu.bootstrap();
        if variant.starts_with("fnaa") {
            let doc: Doc = toml::from_str(&format!(
                r#"
                [brokers.embedded_mqtt]
                mode = "never"
                [brokers.connections.k]
                type = "kafka"
                bootstrap_servers = "{b}"
                [[pipelines]]
                name = "bench-kafka"
                batch_size = {kbatch}
                batch_timeout_ms = 2
                metrics_interval_s = 0
                source = {{ broker = "k", kafka = {{ topics = ["{t_in}"], properties = {{ "fetch.wait.max.ms" = "{fetch_wait}" }} }} }}
                sink = {{ broker = "k", connector_config = {{ mode = "{kmode}" }}, kafka = {{ topic = "{t_out}", linger_ms = {klinger} }} }}
                "#
            ))
            .unwrap();
            let ((elapsed, _), plane) = drain_copied(&mut consumer, Binding::Kafka, n, async {
                DataPlane::start(&doc.brokers, &doc.pipelines, wasm_plugins())
                    .await
                    .unwrap()
            })
            .await;
            rows.push(row("Kafka -> Kafka", variant, n, elapsed, Vec::new()));
            report_plane(&plane);
            plane.shutdown(Duration::from_secs(5)).await;
        } else {
            let ((elapsed, _), (mut c, mut p)) =
                drain_copied(&mut consumer, Binding::Kafka, n, async {
                    let mut kcat_c = common::kcat();
                    kcat_c
                        .args([
                            "-C",
                            "-b",
                            &b,
                            "-t",
                            &t_in,
                            "-o",
                            "beginning",
                            "-c",
                            &n.to_string(),
                            "-q",
                            "-X",
                            &format!("fetch.wait.max.ms={fetch_wait}"),
                            "-f",
                            "%s\n",
                        ])
                        .stdout(std::process::Stdio::piped());
                    let mut c = kcat_c.spawn().unwrap();
                    let mut kcat_p = common::kcat();
                    kcat_p
                        .args([
                            "-P",
                            "-b",
                            &b,
                            "-t",
                            &t_out,
                            "-X",
                            "enable.idempotence=true",
                        ])
                        .stdin(c.stdout.take().unwrap());
                    let p = kcat_p.spawn().unwrap();
                    (c, p)
                })
                .await;
            assert!(p.wait().unwrap().success() && c.wait().unwrap().success());
            rows.push(row("Kafka -> Kafka", variant, n, elapsed, Vec::new()));
        }
    }
    rows
}

/// The wasm stage alone: decode (mqtt) + bridge + encode (mqtt), per batch,
/// wasm components vs the same code compiled natively.
fn stage(batch_sizes: &[usize]) -> Vec<String> {
    let wasm = wasm_plugins();
    let cfg: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for &size in batch_sizes {
        let events: Vec<Event> = (0..size).map(event).collect();
        let structured =
            BindingCodec::new(Binding::Mqtt, &[("mode".into(), "structured".into())]).unwrap();
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
async fn latency(n: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let variants: [(&str, Arc<dyn PluginFactory>); 2] = [
        ("native connector + bridge", Arc::new(NativePlugins)),
        ("wasm connector + bridge", wasm_plugins()),
    ];
    for (variant, plugins) in variants {
        let a = common::Mosquitto::start(MOSQUITTO_TUNING);
        let b = common::Mosquitto::start(MOSQUITTO_TUNING);
        let doc: Doc = toml::from_str(&format!(
            r#"
            [brokers.embedded_mqtt]
            mode = "never"
            [brokers.connections.a]
            type = "mqtt"
            host = "127.0.0.1"
            port = {}
            [brokers.connections.b]
            type = "mqtt"
            host = "127.0.0.1"
            port = {}
            [[pipelines]]
            name = "bench-latency"
            batch_size = 100
            batch_timeout_ms = 0
            metrics_interval_s = 0
            source = {{ broker = "a", mqtt = {{ topics = ["lat/in"] }} }}
            processors = [{{ plugin = "bridge" }}]
            sink = {{ broker = "b", mqtt = {{ topic = "lat/out" }} }}
            "#,
            a.port, b.port
        ))
        .unwrap();
        let plane = DataPlane::start(&doc.brokers, &doc.pipelines, plugins)
            .await
            .unwrap();
        let mut consumer = MqttSource::new(
            &MqttBrokerConfig::new("127.0.0.1", b.port, MqttVersion::V5),
            &MqttSourceConfig::new(vec!["lat/out".into()]),
            &common::unique("lat-consumer"),
            DeliveryMode::AtLeastOnce,
            RetryConfig::default(),
            monitor(),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut producer = MqttSink::new(
            &MqttBrokerConfig::new("127.0.0.1", a.port, MqttVersion::V5),
            &MqttSinkConfig::new("lat/in"),
            &common::unique("lat-producer"),
            RetryConfig::default(),
            monitor(),
        )
        .unwrap();
        let codec =
            BindingCodec::new(Binding::Mqtt, &[("mode".into(), "structured".into())]).unwrap();
        let start = Instant::now();
        let produce = tokio::spawn(async move {
            for i in 0..n {
                producer
                    .send(vec![codec.encode(&event(i)).unwrap()])
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
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

/// Medians over the rounds, per (bench, variant), in first-seen order.
fn medians(rows: &[Row]) -> Vec<Row> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.bench.clone(), r.variant.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(bench, variant)| {
            let mut secs: Vec<f64> = rows
                .iter()
                .filter(|r| r.bench == bench && r.variant == variant)
                .map(|r| r.seconds)
                .collect();
            secs.sort_by(f64::total_cmp);
            let events = rows
                .iter()
                .find(|r| r.bench == bench)
                .map_or(0, |r| r.events);
            let all = secs
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(" · ");
            Row {
                bench,
                variant: format!("{variant} ({all} s)"),
                events,
                seconds: secs[secs.len() / 2],
                p50_ms: None,
                p99_ms: None,
            }
        })
        .collect()
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| bench | variant (rounds) | events | median time (s) | events/s | ratio vs peer |\n|---|---|---:|---:|---:|---:|\n",
    );
    for pair in rows.chunks(2) {
        let ratio = if pair.len() == 2 {
            pair[0].rate() / pair[1].rate()
        } else {
            f64::NAN
        };
        for (i, r) in pair.iter().enumerate() {
            s.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.0} | {} |\n",
                r.bench,
                r.variant.replace('|', "\\|"),
                r.events,
                r.seconds,
                r.rate(),
                if i == 0 {
                    format!("**{ratio:.2}x**")
                } else {
                    "1.00x".into()
                }
            ));
        }
    }
    s
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let n = numbers.next().unwrap_or(20_000);
    let rounds = numbers.next().unwrap_or(3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        if only.is_empty() || only == "mqtt" {
            all.extend(rt.block_on(mqtt(n)));
        }
        if only.is_empty() || only == "amqp" {
            all.extend(rt.block_on(amqp(n)));
        }
        if only.is_empty() || only == "kafka" {
            all.extend(rt.block_on(kafka(n)));
        }
    }
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only == "latency" {
        for r in rt.block_on(latency(1000)) {
            println!(
                "| {} | {} | {:.2} | {:.2} |",
                r.variant,
                r.events,
                r.p50_ms.unwrap_or(f64::NAN),
                r.p99_ms.unwrap_or(f64::NAN)
            );
        }
        return;
    }
    if !only.is_empty() {
        println!("{}", table(&medians(&all)));
        return;
    }
    let throughput = medians(&all);
    let stage_rows = stage(&[1, 10, 100, 500]);
    let latency_rows = rt.block_on(latency(1000));

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "\n<!-- generated by `cargo bench -p fnaa-dataplane --bench brokers -- {n} {rounds}` in {:.0} s -->",
        started.elapsed().as_secs_f64()
    );
    println!(
        "Machine: {cpu}, {cores} cores (brokers, producers, consumers and the host all share them).\n"
    );
    println!(
        "### Throughput, side by side ({n} events of ~300 bytes, at-least-once, median of {rounds} interleaved rounds)\n"
    );
    println!("{}", table(&throughput));
    println!(
        "### Latency of the wasm stage (decode -> bridge -> encode, MQTT binding, per batch, µs)\n"
    );
    println!(
        "| batch | native p50 | wasm p50 | native p99 | wasm p99 | added p50 per event | added p99 per event |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    for l in &stage_rows {
        println!("{l}");
    }
    println!(
        "\n### End-to-end latency of single events, MQTT -> MQTT pipeline (one event every 5 ms)\n"
    );
    println!("| variant | events | p50 (ms) | p99 (ms) |\n|---|---:|---:|---:|");
    for r in &latency_rows {
        println!(
            "| {} | {} | {:.2} | {:.2} |",
            r.variant,
            r.events,
            r.p50_ms.unwrap_or(f64::NAN),
            r.p99_ms.unwrap_or(f64::NAN)
        );
    }
}
