//! The MQTT transport against real Mosquitto brokers started per test.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSource, MqttSourceConfig, MqttVersion,
};
use fnaa_dataplane::transport::{
    DeliveryMode, Destination, Message, Outcome, Received, Sink as _, Source,
};

fn monitor(what: &str) -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new(what, Duration::from_secs(60)))
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_interval_ms: 50,
        max_interval_ms: 500,
        reminder_interval_s: 60,
    }
}

fn message(topic: &str, i: usize, headers: bool) -> Message {
    Message {
        destination: Destination {
            name: topic.to_owned(),
            routing_key: None,
        },
        key: None,
        content_type: headers.then(|| "application/json".to_owned()),
        headers: if headers {
            vec![
                ("specversion".into(), b"1.0".to_vec()),
                ("id".into(), format!("{i}").into_bytes()),
            ]
        } else {
            Vec::new()
        },
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

async fn round_trip(version: MqttVersion, qos: u8, headers: bool) {
    common::init_tracing();
    let mosquitto = common::Mosquitto::start("");
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, version);
    let mut source_config = MqttSourceConfig::new(vec!["rt/#".into()]);
    source_config.qos = qos;
    let mut source = MqttSource::new(
        &broker,
        &source_config,
        &common::unique("src"),
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor("source"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .unwrap();
    let mut sink_config = MqttSinkConfig::new("rt/default");
    sink_config.qos = qos;
    let mut sink = MqttSink::new(
        &broker,
        &sink_config,
        &common::unique("sink"),
        fast_retry(),
        monitor("sink"),
    )
    .unwrap();
    let batch: Vec<Message> = (0..50)
        .map(|i| message(&format!("rt/{}", i % 3), i, headers))
        .collect();
    let outcomes = sink.send(batch.clone()).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    let got = receive(&mut source, 50).await;
    for (m, r) in batch.iter().zip(&got) {
        assert_eq!(&r.message, m);
    }
    source
        .acker()
        .ack(got.into_iter().map(|r| r.token).collect())
        .await
        .unwrap();
}

#[tokio::test]
async fn v5_binary_headers_round_trip_qos1() {
    round_trip(MqttVersion::V5, 1, true).await;
}

#[tokio::test]
async fn v5_round_trip_qos2() {
    round_trip(MqttVersion::V5, 2, true).await;
}

#[tokio::test]
async fn v311_round_trip_qos1_and_qos2() {
    round_trip(MqttVersion::V311, 1, false).await;
    round_trip(MqttVersion::V311, 2, false).await;
}

#[tokio::test]
async fn v311_refuses_headers_instead_of_dropping_them() {
    let mosquitto = common::Mosquitto::start("");
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, MqttVersion::V311);
    let mut sink = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("x"),
        &common::unique("sink"),
        fast_retry(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink
        .send(vec![message("x", 1, true), message("x/+", 2, false)])
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], Outcome::Rejected { reason } if reason.contains("3.1.1")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], Outcome::Rejected { reason } if reason.contains("topic")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn unacknowledged_messages_come_back_after_reconnect() {
    common::init_tracing();
    let mosquitto = common::Mosquitto::start("");
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, MqttVersion::V5);
    let client_id = common::unique("persistent");
    let config = MqttSourceConfig::new(vec!["p/#".into()]);
    let mut source = MqttSource::new(
        &broker,
        &config,
        &client_id,
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor("source"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .unwrap();
    let mut sink = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("p/1"),
        &common::unique("sink"),
        fast_retry(),
        monitor("sink"),
    )
    .unwrap();
    let batch: Vec<Message> = (0..10).map(|i| message("p/1", i, true)).collect();
    sink.send(batch.clone()).await.unwrap();
    let got = receive(&mut source, 10).await;
    // Acknowledge only the first five, then go away.
    source
        .acker()
        .ack(got.into_iter().take(5).map(|r| r.token).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(source);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Published while we are away: kept in our persistent session.
    sink.send(vec![message("p/1", 10, true)]).await.unwrap();
    let mut source = MqttSource::new(
        &broker,
        &config,
        &client_id,
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor("source"),
    )
    .unwrap();
    let got = receive(&mut source, 6).await;
    let ids: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.message.header("id").unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(ids, ["5", "6", "7", "8", "9", "10"]);
}

#[tokio::test]
async fn mosquitto_sub_reads_what_we_publish() {
    let mosquitto = common::Mosquitto::start("");
    let mut sub = common::MosquittoSub::start(
        mosquitto.port,
        "out/#",
        1,
        &["-V", "5", "-F", "%t|%C|%P|%p"],
    );
    sub.wait_subscribed();
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, MqttVersion::V5);
    let mut sink = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("out/x"),
        &common::unique("sink"),
        fast_retry(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink.send(vec![message("out/x", 7, true)]).await.unwrap();
    assert!(outcomes[0].is_confirmed());
    let lines = sub.messages();
    let line = lines.join("\n");
    assert_eq!(
        line.trim(),
        "out/x|application/json|specversion:1.0 id:7|{\"n\":7}",
        "{line}"
    );
}
