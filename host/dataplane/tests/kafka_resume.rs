//! The at-least-once Kafka source resumes at the committed offsets without
//! waiting on consumer-group membership, even where tansu 0.6 would skip
//! the rest of a record batch.

#![allow(clippy::unwrap_used)]

mod common;

use common::compliance::monitor;

use std::time::{Duration, Instant};

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_dataplane::transport::{
    DeliveryMode, Destination, Message, Outcome, Received, Sink as _, Source,
};

fn message(i: usize) -> Message {
    Message {
        destination: Destination::default(),
        key: Some(format!("k{i}").into_bytes()),
        content_type: Some("application/json".into()),
        headers: vec![("ce_id".into(), format!("{i}").into_bytes())],
        payload: format!("{{\"n\":{i}}}").into_bytes(),
    }
}

/// Receives until `n` messages came (or `within` went).
async fn receive_within(source: &mut KafkaSource, n: usize, within: Duration) -> Vec<Received> {
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    while got.len() < n && Instant::now() < deadline {
        if let Ok(batch) = tokio::time::timeout(
            Duration::from_secs(1),
            source.recv(100, Duration::from_millis(20)),
        )
        .await
        {
            got.extend(batch.unwrap());
        }
    }
    got
}

async fn receive(source: &mut KafkaSource, n: usize) -> Vec<Received> {
    receive_within(source, n, Duration::from_secs(20)).await
}

fn keys(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| String::from_utf8_lossy(r.message.key.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Offsets committed inside a record batch: the next source of the group
/// reads on from there, neither skipping the rest of the batch (tansu 0.6
/// answers a fetch with the batches that start at or after the fetch
/// offset) nor repeating what was committed; and at once, since nothing
/// waits on the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_resumes_inside_a_record_batch() {
    common::init_tracing();
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let topic = common::unique("mid-batch");
    let admin = KafkaAdmin::new(&broker).unwrap();
    admin.create_topic(&topic, 1, 1).await.unwrap();
    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new(&topic),
        RetryConfig::default(),
        monitor("sink"),
    )
    .unwrap();
    // Two batches of ten records each (one produce request each).
    for batch in 0..2 {
        let outcomes = sink
            .send((batch * 10..batch * 10 + 10).map(message).collect())
            .await
            .unwrap();
        assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    }
    let group = common::unique("g");
    let config = KafkaSourceConfig::new(vec![topic.clone()]);
    let source = || {
        KafkaSource::new(
            &broker,
            &config,
            &group,
            DeliveryMode::AtLeastOnce,
            monitor("source"),
        )
    };
    let mut first = source().await.unwrap();
    let got = receive(&mut first, 20).await;
    assert_eq!(got.len(), 20, "{:?}", keys(&got));
    // Commit the first six of the first batch only.
    first
        .acker()
        .ack(got.into_iter().take(6).map(|r| r.token).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(first);

    let started = Instant::now();
    let mut again = source().await.unwrap();
    let rest = receive(&mut again, 14).await;
    let took = started.elapsed();
    let expected: Vec<String> = (6..20).map(|i| format!("k{i}")).collect();
    assert_eq!(keys(&rest), expected, "resumed after {took:?}");
    assert!(took < Duration::from_secs(5), "resumed after {took:?}");
    // Nothing else comes (the dropped records are not delivered later).
    let more = receive_within(&mut again, 1, Duration::from_secs(2)).await;
    assert!(more.is_empty(), "more: {:?}", keys(&more));

    // A later commit inside the second batch, from the new source.
    again
        .acker()
        .ack(rest.into_iter().take(7).map(|r| r.token).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(again);
    let mut third = source().await.unwrap();
    let last = receive(&mut third, 7).await;
    let expected: Vec<String> = (13..20).map(|i| format!("k{i}")).collect();
    assert_eq!(keys(&last), expected);
    admin.delete_topic(&topic).await.unwrap();
}

/// Partitions added to a topic while the source runs are read too, from
/// their beginning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_reads_a_topic_created_after_it_started() {
    common::init_tracing();
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let topic = common::unique("later");
    let mut source = KafkaSource::new(
        &broker,
        &KafkaSourceConfig::new(vec![topic.clone()]),
        &common::unique("g"),
        DeliveryMode::AtLeastOnce,
        monitor("source"),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admin = KafkaAdmin::new(&broker).unwrap();
    admin.create_topic(&topic, 2, 1).await.unwrap();
    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new(&topic),
        RetryConfig::default(),
        monitor("sink"),
    )
    .unwrap();
    for i in 0..6 {
        let outcomes = sink.send(vec![message(i)]).await.unwrap();
        assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    }
    tokio::time::timeout(Duration::from_secs(15), source.ready())
        .await
        .expect("the source never became ready");
    let got = receive(&mut source, 6).await;
    let mut keys = keys(&got);
    keys.sort();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4", "k5"]);
}
