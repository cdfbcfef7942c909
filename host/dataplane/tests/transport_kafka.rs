//! The Kafka transport against a real Kafka-protocol broker (tansu).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_dataplane::transport::{
    DeliveryMode, Destination, Message, Outcome, Sink as _, Source as _,
};
use rdkafka::mocking::MockCluster;

fn monitor(what: &str) -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new(what, Duration::from_secs(60)))
}

fn message(i: usize) -> Message {
    Message {
        destination: Destination::default(),
        key: Some(format!("k{i}").into_bytes()),
        content_type: Some("application/json".into()),
        headers: vec![
            ("ce_id".into(), format!("{i}").into_bytes()),
            ("ce_type".into(), b"t".to_vec()),
        ],
        payload: format!("{{\"n\":{i}}}").into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_and_source_round_trip_with_committed_offsets() {
    common::init_tracing();
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let topic = common::unique("rt");
    let admin = KafkaAdmin::new(&broker).unwrap();
    admin.create_topic(&topic, 1, 1).await.unwrap();
    assert_eq!(admin.partitions(&topic).await.unwrap(), Some(1));

    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new(&topic),
        RetryConfig::default(),
        monitor("sink"),
    )
    .unwrap();
    // One produce request per message: tansu 0.6 miscounts the high
    // watermark of multi-record batches (it ends up below the last offset),
    // which stops a consumer group from resuming in the middle of a batch.
    for i in 0..10 {
        let outcomes = sink.send(vec![message(i)]).await.unwrap();
        assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    }

    let mut config = KafkaSourceConfig::new(vec![topic.clone()]);
    // A replacement consumer waits for the old one's session to expire if
    // the broker missed its LeaveGroup: keep that short.
    config.properties.insert(
        "session.timeout.ms".into(),
        fnaa_dataplane::secret::Secret::new("6000"),
    );
    let group = common::unique("g");
    let mut source = KafkaSource::new(
        &broker,
        &config,
        &group,
        DeliveryMode::AtLeastOnce,
        monitor("source"),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        let batch = tokio::time::timeout(
            Duration::from_secs(20),
            source.recv(100, Duration::from_millis(50)),
        )
        .await
        .unwrap()
        .unwrap();
        got.extend(batch);
    }
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            r.message,
            Message {
                destination: Destination {
                    name: topic.clone(),
                    routing_key: None
                },
                ..message(i)
            }
        );
    }
    // Commit the first six only: the group resumes at the seventh.
    source
        .acker()
        .ack(got.into_iter().take(6).map(|r| r.token).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(source);
    let mut again = KafkaSource::new(
        &broker,
        &config,
        &group,
        DeliveryMode::AtLeastOnce,
        monitor("source"),
    )
    .await
    .unwrap();
    let mut rest = Vec::new();
    while rest.len() < 4 {
        let batch = tokio::time::timeout(
            Duration::from_secs(20),
            again.recv(100, Duration::from_millis(50)),
        )
        .await
        .unwrap()
        .unwrap();
        rest.extend(batch);
    }
    let keys: Vec<&[u8]> = rest
        .iter()
        .map(|r| r.message.key.as_deref().unwrap())
        .collect();
    assert_eq!(keys, [b"k6", b"k7", b"k8", b"k9"]);
    admin.delete_topic(&topic).await.unwrap();
}

/// librdkafka's mock cluster: a fast check of the sink's delivery reports
/// and of the source, without a broker process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_round_trip() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("mock", 2, 1).unwrap();
    let broker = KafkaBrokerConfig::new(cluster.bootstrap_servers());
    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new("mock"),
        RetryConfig::default(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink.send((0..100).map(message).collect()).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed));
    let mut source = KafkaSource::new(
        &broker,
        &KafkaSourceConfig::new(vec!["mock".into()]),
        "mock-group",
        DeliveryMode::AtLeastOnce,
        monitor("source"),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 100 {
        got.extend(source.recv(100, Duration::from_millis(50)).await.unwrap());
    }
    let mut keys: Vec<Vec<u8>> = got.iter().map(|r| r.message.key.clone().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100);
}
