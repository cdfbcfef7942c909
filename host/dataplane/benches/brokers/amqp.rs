//! AMQP -> AMQP: our pipeline (wasm `amqp` connector) vs RabbitMQ's shovel
//! plugin (`ack-mode = on-confirm`, the same guarantee).

use std::process::Command;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::transport::DeliveryMode;
use fnaa_dataplane::transport::amqp;
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSinkConfig, AmqpSourceConfig};
use fnaa_event::binding::Binding;

use crate::common;
use crate::common::pipeline::{Conn, Producer, brokers_toml, parse};
use crate::harness::{Row, drain, event, monitor, report_plane, row, wasm_plugins};

/// AMQP -> AMQP. `n` events wait in a durable queue; the pipeline (or a
/// shovel) moves them to another queue; a consumer counts them there.
pub async fn amqp(n: usize) -> Vec<Row> {
    let port = common::rabbitmq();
    let broker = AmqpBrokerConfig::new("127.0.0.1", port);
    let mut rows = Vec::new();
    for variant in [
        "fnaa pipeline (wasm amqp connector)",
        "rabbitmq shovel (on-confirm)",
    ] {
        let (q_in, q_out) = (common::unique("bench-in"), common::unique("bench-out"));
        // Declare both queues, then preload the input queue.
        for q in [&q_in, &q_out] {
            let s = amqp::open_source(
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
        let mut producer = Producer::amqp(
            port,
            AmqpSinkConfig {
                routing_key: q_in.clone(),
                ..AmqpSinkConfig::default()
            },
            &[],
        );
        producer
            .publish_numbered(0..n, 2000, Duration::ZERO, event)
            .await;
        let mut consumer = amqp::open_source(
            &broker,
            &AmqpSourceConfig::queue(&q_out),
            "bench-consumer",
            DeliveryMode::AtLeastOnce,
            RetryConfig::default(),
            monitor(),
        )
        .unwrap();
        let mut plane = None;
        let shovel = common::unique("bench-shovel");
        if variant.starts_with("fnaa") {
            let doc = parse(&format!(
                r#"{}
                [[pipelines]]
                name = "bench-amqp"
                batch_size = 1000
                batch_timeout_ms = 2
                metrics_interval_s = 0
                source = {{ broker = "r", amqp = {{ queue = "{q_in}", prefetch = 4000 }} }}
                sink = {{ broker = "r", amqp = {{ routing_key = "{q_out}" }} }}
                "#,
                brokers_toml(&[("r", Conn::Amqp(port))])
            ));
            plane = Some(doc.start(wasm_plugins()).await);
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
