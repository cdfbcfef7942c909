//! The AMQP transport against the system RabbitMQ (unique names per test):
//! the transport contract (`common::compliance`), and what only AMQP has
//! (unroutable messages, exchanges declared or refused).

#![allow(clippy::unwrap_used)]

mod common;

use common::compliance::monitor;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::amqp;
use fnaa_dataplane::transport::amqp::{
    AmqpBrokerConfig, AmqpSink, AmqpSinkConfig, AmqpSourceConfig, ExchangeType,
};
use fnaa_dataplane::transport::{DeliveryMode, Destination, Message, Outcome, Sink, Source};

use common::compliance::{self, Endpoint, TransportHarness};

fn broker() -> AmqpBrokerConfig {
    AmqpBrokerConfig::new("127.0.0.1", common::rabbitmq())
}

fn message(exchange: &str, key: &str, i: usize) -> Message {
    Message {
        destination: Destination {
            name: exchange.to_owned(),
            routing_key: Some(key.to_owned()),
        },
        key: None,
        content_type: Some("application/json".into()),
        headers: vec![("cloudEvents:id".into(), format!("{i}").into_bytes())],
        payload: format!("{{\"n\":{i}}}").into_bytes(),
    }
}

fn source_config(queue: &str, exchange: &str, keys: &[&str]) -> AmqpSourceConfig {
    AmqpSourceConfig {
        exchange: Some(exchange.to_owned()),
        binding_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..AmqpSourceConfig::queue(queue)
    }
}

/// The transport contract ([`common::compliance`]) on the system RabbitMQ,
/// through a proxy of the harness's own: an outage cuts it (every
/// connection closed, new ones refused) while RabbitMQ keeps its queues.
/// Each endpoint is a topic exchange with a durable queue bound to it (the
/// consumer state: sources of one endpoint share it); `pika` is the
/// outside client.
struct AmqpHarness {
    rabbitmq: u16,
    proxy: Arc<common::TcpProxy>,
}

impl AmqpHarness {
    async fn start() -> AmqpHarness {
        common::init_tracing();
        let rabbitmq = common::rabbitmq();
        AmqpHarness {
            rabbitmq,
            proxy: common::TcpProxy::start(common::free_port(), rabbitmq).await,
        }
    }

    fn broker(&self) -> AmqpBrokerConfig {
        AmqpBrokerConfig::new("127.0.0.1", self.proxy.port)
    }

    fn source_config(endpoint: &Endpoint) -> AmqpSourceConfig {
        source_config(
            &endpoint.name,
            &endpoint.destination.name,
            &["operational.#"],
        )
    }
}

/// Publishes the messages (JSON on stdin) with publisher confirms.
const PIKA_PUBLISHER: &str = r#"
import json, sys, pika
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[1])))
ch = conn.channel()
ch.confirm_delivery()
for m in json.load(sys.stdin):
    props = pika.BasicProperties(content_type=m['content_type'], headers=dict(m['headers']) or None, delivery_mode=2)
    ch.basic_publish(m['exchange'], m['routing_key'], m['body'].encode(), props, mandatory=True)
conn.close()
"#;

impl TransportHarness for AmqpHarness {
    fn name(&self) -> String {
        "amqp".into()
    }

    fn connector(&self) -> (&'static str, Vec<(String, String)>) {
        ("amqp", Vec::new())
    }

    async fn endpoint(&mut self, tag: &str) -> Endpoint {
        let endpoint = Endpoint {
            name: common::unique(&format!("fnaa-test-{tag}")),
            destination: Destination {
                name: common::unique(&format!("fnaa.test.{tag}")),
                routing_key: Some("operational.kytos/topology.link_up".into()),
            },
        };
        // The queue is declared and bound on connect, before anything is
        // published (a mandatory message that reaches no queue is
        // unroutable).
        let setup = amqp::open_source(
            &self.broker(),
            &Self::source_config(&endpoint),
            "setup",
            DeliveryMode::AtLeastOnce,
            RetryConfig::default(),
            monitor("setup"),
        )
        .unwrap();
        tokio::time::timeout(Duration::from_secs(20), setup.ready())
            .await
            .unwrap();
        endpoint
    }

    async fn source(
        &mut self,
        endpoint: &Endpoint,
        consumer: &str,
        monitor: Arc<OutageMonitor>,
    ) -> Box<dyn Source> {
        Box::new(
            amqp::open_source(
                &self.broker(),
                &Self::source_config(endpoint),
                consumer,
                DeliveryMode::AtLeastOnce,
                RetryConfig {
                    initial_interval_ms: 50,
                    max_interval_ms: 500,
                    reminder_interval_s: 60,
                },
                monitor,
            )
            .unwrap(),
        )
    }

    fn sink(&mut self, _endpoint: &Endpoint, monitor: Arc<OutageMonitor>) -> Box<dyn Sink> {
        Box::new(AmqpSink::new(
            &self.broker(),
            &AmqpSinkConfig::default(),
            "test-sink",
            RetryConfig {
                initial_interval_ms: 50,
                max_interval_ms: 500,
                reminder_interval_s: 60,
            },
            monitor,
        ))
    }

    async fn publish_outside(&mut self, _endpoint: &Endpoint, messages: &[Message]) {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let json: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "exchange": m.destination.name,
                    "routing_key": m.destination.routing_key.clone().unwrap_or_default(),
                    "content_type": m.content_type,
                    "headers": m.headers.iter().map(|(k, v)| (k.clone(), text(v))).collect::<Vec<_>>(),
                    "body": text(&m.payload),
                })
            })
            .collect();
        let mut python = tokio::process::Command::from(common::python_with_pika());
        let mut child = python
            .args(["-c", PIKA_PUBLISHER, &self.rabbitmq.to_string()])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use tokio::io::AsyncWriteExt as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(serde_json::to_string(&json).unwrap().as_bytes())
                .await
                .unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "the pika publisher failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The source returns header tables sorted by name (an AMQP table is
    /// a map).
    fn received(&self, _endpoint: &Endpoint, sent: &Message) -> Message {
        let mut m = sent.clone();
        m.headers.sort_by(|a, b| a.0.cmp(&b.0));
        m
    }

    async fn outage_start(&mut self) {
        self.proxy.cut();
    }

    async fn outage_end(&mut self) {
        self.proxy.restore().await;
    }

    fn timestamps(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_contract() {
    compliance::assert_transport_contract(&mut AmqpHarness::start().await).await;
}

#[tokio::test]
async fn unroutable_messages_are_reported_and_missing_exchanges_created() {
    common::init_tracing();
    let exchange = common::unique("fnaa.test.unroutable");
    let mut sink = AmqpSink::new(
        &broker(),
        &AmqpSinkConfig::default(),
        "test-sink",
        RetryConfig::default(),
        monitor("sink"),
    );
    // The exchange does not exist: the sink checks (passively, on a
    // throwaway channel), creates it, publishes; no queue is bound, so the
    // broker returns the message.
    let outcomes = sink
        .send(vec![
            message(&exchange, "nobody.listens", 1),
            message(&exchange, "nobody.either", 2),
        ])
        .await
        .unwrap();
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::Unroutable { reason } if reason.contains("312") && reason.contains(&exchange)),
            "{o:?}"
        );
    }
    // The publishing channel survived: a routable message still goes through.
    let queue = common::unique("fnaa-test-after");
    let mut source = amqp::open_source(
        &broker(),
        &source_config(&queue, &exchange, &["listens.#"]),
        "test-source",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor("source"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .unwrap();
    let outcomes = sink
        .send(vec![message(&exchange, "listens.here", 3)])
        .await
        .unwrap();
    assert_eq!(outcomes, [Outcome::Confirmed]);
    assert_eq!(
        compliance::receive("amqp", &mut source, 1, Duration::from_secs(10)).await[0]
            .message
            .payload,
        b"{\"n\":3}"
    );

    // Routable and unroutable messages interleaved in one batch: each
    // outcome is the message's own, however the broker groups its acks.
    let batch: Vec<Message> = (0..40)
        .map(|i| {
            message(
                &exchange,
                if i % 3 == 0 { "nobody.x" } else { "listens.x" },
                i,
            )
        })
        .collect();
    let outcomes = sink.send(batch).await.unwrap();
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(
            matches!(o, Outcome::Unroutable { .. }),
            i % 3 == 0,
            "message {i}: {o:?}"
        );
        assert_eq!(o.is_confirmed(), i % 3 != 0, "message {i}: {o:?}");
    }
    let got = compliance::receive("amqp", &mut source, 26, Duration::from_secs(10)).await;
    assert!(
        got.iter()
            .all(|r| r.message.destination.routing_key.as_deref() == Some("listens.x"))
    );

    // Without declare_exchanges a missing exchange is refused, not dropped.
    let strict = AmqpSinkConfig {
        declare_exchanges: false,
        exchange_type: ExchangeType::Topic,
        ..AmqpSinkConfig::default()
    };
    let mut sink = AmqpSink::new(
        &broker(),
        &strict,
        "test-sink-strict",
        RetryConfig::default(),
        monitor("sink"),
    );
    let outcomes = sink
        .send(vec![message(&common::unique("fnaa.test.missing"), "k", 4)])
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], Outcome::Rejected { reason } if reason.contains("does not exist")),
        "{outcomes:?}"
    );
}
