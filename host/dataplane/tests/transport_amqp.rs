//! The AMQP transport against the system RabbitMQ (unique names per test).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::amqp::{
    AmqpBrokerConfig, AmqpSink, AmqpSinkConfig, AmqpSource, AmqpSourceConfig, ExchangeType,
};
use fnaa_dataplane::transport::{
    DeliveryMode, Destination, Message, Outcome, Received, Sink as _, Source,
};

fn monitor(what: &str) -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new(what, Duration::from_secs(60)))
}

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

async fn receive(source: &mut dyn Source, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = tokio::time::timeout(
            Duration::from_secs(10),
            source.recv(n, Duration::from_millis(20)),
        )
        .await
        .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", got.len()))
        .unwrap();
        got.extend(batch);
    }
    got
}

fn source_config(queue: &str, exchange: &str, keys: &[&str]) -> AmqpSourceConfig {
    AmqpSourceConfig {
        exchange: Some(exchange.to_owned()),
        binding_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..AmqpSourceConfig::queue(queue)
    }
}

#[tokio::test]
async fn topic_exchange_round_trip_with_confirms() {
    common::init_tracing();
    let exchange = common::unique("fnaa.test.rt");
    let queue = common::unique("fnaa-test-rt");
    let mut source = AmqpSource::new(
        &broker(),
        &source_config(&queue, &exchange, &["operational.#"]),
        "test-source",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor("source"),
    )
    .unwrap();
    // The source declares the exchange, queue and binding on connect.
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .unwrap();
    let mut sink = AmqpSink::new(
        &broker(),
        &AmqpSinkConfig::default(),
        "test-sink",
        RetryConfig::default(),
        monitor("sink"),
    );
    let batch: Vec<Message> = (0..20)
        .map(|i| message(&exchange, "operational.kytos/topology.link_up", i))
        .collect();
    let outcomes = sink.send(batch.clone()).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    let got = receive(&mut source, 20).await;
    for (m, r) in batch.iter().zip(&got) {
        assert_eq!(&r.message, m);
        assert!(r.timestamp_ms.is_some());
    }
    source
        .acker()
        .ack(got.into_iter().map(|r| r.token).collect())
        .await
        .unwrap();
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
    let mut source = AmqpSource::new(
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
        receive(&mut source, 1).await[0].message.payload,
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
    let got = receive(&mut source, 26).await;
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

#[tokio::test]
async fn unacknowledged_deliveries_come_back() {
    let exchange = common::unique("fnaa.test.redeliver");
    let queue = common::unique("fnaa-test-redeliver");
    let config = source_config(&queue, &exchange, &["#"]);
    let mut source = AmqpSource::new(
        &broker(),
        &config,
        "s1",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor("source"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .unwrap();
    let mut sink = AmqpSink::new(
        &broker(),
        &AmqpSinkConfig::default(),
        "test-sink",
        RetryConfig::default(),
        monitor("sink"),
    );
    sink.send((0..6).map(|i| message(&exchange, "a", i)).collect())
        .await
        .unwrap();
    let got = receive(&mut source, 6).await;
    source
        .acker()
        .ack(got.into_iter().take(4).map(|r| r.token).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(source);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut source = AmqpSource::new(
        &broker(),
        &config,
        "s2",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        monitor("source"),
    )
    .unwrap();
    let got = receive(&mut source, 2).await;
    let ids: Vec<&[u8]> = got
        .iter()
        .map(|r| r.message.header("cloudEvents:id").unwrap())
        .collect();
    assert_eq!(ids, [b"4", b"5"]);
}
