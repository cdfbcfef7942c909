//! Kafka -> Kafka on tansu: our pipeline (wasm `kafka` connector) vs a
//! `kcat -C | kcat -P` pipe.

use std::time::Duration;

use fnaa_dataplane::secret::Secret;
use fnaa_dataplane::transport::DeliveryMode;
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_event::binding::Binding;

use crate::common;
use crate::common::pipeline::{Conn, Producer, brokers_toml, parse};
use crate::harness::{Row, drain_copied, env_or, event, monitor, report_plane, row, wasm_plugins};

/// Kafka -> Kafka on tansu. `n` events wait in a topic; the pipeline (or a
/// kcat pipe) copies them to another topic; a consumer counts them there.
pub async fn kafka(n: usize) -> Vec<Row> {
    // A copy of 20,000 events lasts ~0.1 s on tansu, too short for a steady
    // rate (one fetch or one batch more or less changes it by half): the
    // Kafka part moves `BENCH_KAFKA_SCALE` (default 5) times more.
    let scale: usize = env_or("BENCH_KAFKA_SCALE", 5);
    let n = n * scale.max(1);
    // tansu 0.6 answers every fetch only after sleeping half of the
    // consumer's `fetch.wait.max.ms` (librdkafka's default: 500 ms), data
    // or not: with the default every copier would move ~1 MB per 250 ms.
    // Every consumer here (ours, `kcat -C`, the counting one) waits 10 ms.
    let fetch_wait: u64 = env_or("BENCH_KAFKA_FETCH_WAIT_MS", 10);
    let kbatch: usize = env_or("BENCH_KAFKA_BATCH", 2000);
    // What the pipeline writes: `structured` (the whole event in the value,
    // like the copied records) or `binary` (the connector's default).
    let kmode = std::env::var("BENCH_KAFKA_SINK_MODE").unwrap_or_else(|_| "structured".to_owned());
    let klinger: u64 = env_or("BENCH_KAFKA_LINGER_MS", 2);
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let admin = KafkaAdmin::new(&broker).unwrap();
    let mut rows = Vec::new();
    for variant in ["fnaa pipeline (wasm kafka connector)", "kcat -C | kcat -P"] {
        let (t_in, t_out) = (common::unique("bench-in"), common::unique("bench-out"));
        admin.create_topic(&t_in, 1, 1).await.unwrap();
        admin.create_topic(&t_out, 1, 1).await.unwrap();
        // Preloaded the way producers write: many records per produce
        // batch. (tansu 0.6 miscounts the end offset of multi-record
        // batches, so `kcat -C` stops after `n` messages (`-c`), not at the
        // end of the topic (`-e`).)
        Producer::kafka(&tansu.bootstrap(), &t_in, &[("mode", "structured")])
            .publish_numbered(0..n, 5000, Duration::ZERO, event)
            .await;
        let mut count_config = KafkaSourceConfig::new(vec![t_out.clone()]);
        count_config.properties.insert(
            "fetch.wait.max.ms".into(),
            Secret::new(fetch_wait.to_string()),
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
            let doc = parse(&format!(
                r#"{}
                [[pipelines]]
                name = "bench-kafka"
                batch_size = {kbatch}
                batch_timeout_ms = 2
                metrics_interval_s = 0
                source = {{ broker = "k", kafka = {{ topics = ["{t_in}"], properties = {{ "fetch.wait.max.ms" = "{fetch_wait}" }} }} }}
                sink = {{ broker = "k", connector_config = {{ mode = "{kmode}" }}, kafka = {{ topic = "{t_out}", linger_ms = {klinger} }} }}
                "#,
                brokers_toml(&[("k", Conn::Kafka(&b))])
            ));
            let ((elapsed, _), plane) = drain_copied(&mut consumer, Binding::Kafka, n, async {
                doc.start(wasm_plugins()).await
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
