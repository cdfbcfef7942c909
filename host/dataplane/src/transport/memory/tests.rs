//! The memory transport on its own.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{
    Broker, DeliveryMode, EndpointContext, EndpointSettings, Message, Outcome, Received, Sink,
    Source,
};

fn message(n: u64) -> Message {
    Message {
        payload: n.to_string().into_bytes(),
        ..Message::default()
    }
}

fn payloads(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| String::from_utf8(r.message.payload.clone()).unwrap())
        .collect()
}

fn tokens(received: Vec<Received>) -> Vec<AckToken> {
    received.into_iter().map(|r| r.token).collect()
}

use crate::transport::AckToken;

const NO_LINGER: Duration = Duration::ZERO;

#[tokio::test]
async fn a_new_source_resumes_after_the_last_acknowledged_message() {
    let broker = MemoryBroker::new();
    let topic = broker.topic("t");
    topic.publish_all((0..5).map(message).collect());
    let mut a = MemorySource::new(topic.clone(), "c", DeliveryMode::AtLeastOnce);
    let got = a.recv(3, NO_LINGER).await.unwrap();
    assert_eq!(payloads(&got), ["0", "1", "2"]);
    a.acker().ack(tokens(got)).await.unwrap();
    let unacked = a.recv(10, NO_LINGER).await.unwrap();
    assert_eq!(payloads(&unacked), ["3", "4"]);
    drop(a);
    assert_eq!(topic.committed("c"), 3);

    let mut b = MemorySource::new(topic.clone(), "c", DeliveryMode::AtLeastOnce);
    assert_eq!(payloads(&b.recv(10, NO_LINGER).await.unwrap()), ["3", "4"]);
    // Another consumer starts at the beginning.
    let mut other = MemorySource::new(topic.clone(), "d", DeliveryMode::AtLeastOnce);
    assert_eq!(other.recv(10, NO_LINGER).await.unwrap().len(), 5);
    assert_eq!(topic.taken("c"), 7);
}

#[tokio::test]
async fn recv_waits_for_the_first_message_then_lingers() {
    let broker = MemoryBroker::new();
    let topic = broker.topic("t");
    let mut source = MemorySource::new(topic.clone(), "c", DeliveryMode::AtLeastOnce);
    let publisher = {
        let topic = topic.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            topic.publish(message(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
            topic.publish(message(1));
        })
    };
    let started = Instant::now();
    let got = source.recv(10, Duration::from_millis(80)).await.unwrap();
    let took = started.elapsed();
    assert_eq!(payloads(&got), ["0", "1"]);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    publisher.await.unwrap();

    // A full batch does not linger.
    topic.publish_all((2..4).map(message).collect());
    let started = Instant::now();
    assert_eq!(
        payloads(&source.recv(2, Duration::from_secs(10)).await.unwrap()),
        ["2", "3"]
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn redelivery_starts_over_and_voids_old_tokens() {
    let broker = MemoryBroker::new();
    let topic = broker.topic("t");
    topic.publish_all((0..4).map(message).collect());
    let mut source = MemorySource::new(topic.clone(), "c", DeliveryMode::AtLeastOnce);
    let acker = source.acker();
    let first = source.recv(2, NO_LINGER).await.unwrap();
    acker.ack(tokens(first)).await.unwrap();
    let second = source.recv(2, NO_LINGER).await.unwrap();
    topic.redeliver("c");
    acker.ack(tokens(second)).await.unwrap();
    assert_eq!(topic.stale_acks("c"), 2);
    assert_eq!(topic.committed("c"), 2);
    let again = source.recv(10, NO_LINGER).await.unwrap();
    assert_eq!(payloads(&again), ["2", "3"]);
    acker.ack(tokens(again)).await.unwrap();
    assert_eq!(topic.acked("c"), [0, 1, 2, 3]);
}

#[tokio::test]
async fn latest_starts_at_the_end_and_commits_on_receipt() {
    let broker = MemoryBroker::new();
    let topic = broker.topic("t");
    topic.publish_all((0..3).map(message).collect());
    let mut source = MemorySource::new(topic.clone(), "c", DeliveryMode::Latest);
    topic.publish(message(3));
    let got = source.recv(10, NO_LINGER).await.unwrap();
    assert_eq!(payloads(&got), ["3"]);
    assert!(got.iter().all(|r| r.token == AckToken::none()));
    assert_eq!(topic.committed("c"), 4);
    assert_eq!(source.backlog(), Some(0));
}

#[tokio::test]
async fn sink_faults() {
    let broker = MemoryBroker::new();
    let faults = SinkFaults::new();
    let mut sink = MemorySink::new(broker.clone(), Some("out"), faults.clone());
    faults.reject_if(|m| m.payload == b"1");
    faults.unroutable_if(|m| m.payload == b"2");
    let mut to_other = message(3);
    to_other.destination.name = "other".into();
    let outcomes = sink
        .send(vec![message(0), message(1), message(2), to_other])
        .await
        .unwrap();
    assert!(matches!(
        outcomes.as_slice(),
        [
            Outcome::Confirmed,
            Outcome::Rejected { .. },
            Outcome::Unroutable { .. },
            Outcome::Confirmed
        ]
    ));
    assert_eq!(broker.topic("out").messages(), [message(0)]);
    assert_eq!(broker.topic("other").len(), 1);

    // Stalled: nothing answered or stored until released, in order.
    faults.stall();
    let a = sink.send(vec![message(10)]);
    let b = sink.send(vec![message(11)]);
    assert_eq!(faults.held(), 2);
    assert!(
        tokio::time::timeout(Duration::from_millis(20), a)
            .await
            .is_err()
    );
    faults.release();
    assert_eq!(b.await.unwrap(), [Outcome::Confirmed]);
    assert_eq!(
        broker.topic("out").messages(),
        [message(0), message(10), message(11)]
    );

    // One batch through, two failed, then recovered.
    faults.fail_batches(1, 2);
    assert!(sink.send(vec![message(20)]).await.is_ok());
    assert!(sink.send(vec![message(21)]).await.is_err());
    assert!(sink.send(vec![message(22)]).await.is_err());
    assert!(sink.send(vec![message(23)]).await.is_ok());
    assert_eq!(broker.topic("out").len(), 5);
    assert_eq!(faults.sent_batches(), [4, 1, 1, 1, 1, 1, 1]);
}

#[tokio::test]
async fn configured_as_a_broker() {
    let config = MemoryBrokerConfig {
        name: "configured_as_a_broker".into(),
    };
    let context = EndpointContext::new(
        "p",
        "source",
        DeliveryMode::AtLeastOnce,
        RetryConfig::default(),
        Arc::new(OutageMonitor::new("test", Duration::from_secs(60))),
    );
    let admin = config.admin().unwrap();
    admin.create("flow", Default::default()).await.unwrap();
    let mut sink = config.sink(&context, &config.flow_sink("flow")).unwrap();
    sink.send(vec![message(0), message(1)]).await.unwrap();

    let settings = config.flow_source("p", &["flow"]);
    let mut source = config.source(&context, &settings).await.unwrap();
    let got = source.recv(10, NO_LINGER).await.unwrap();
    assert_eq!(payloads(&got), ["0", "1"]);
    source.acker().ack(tokens(got)).await.unwrap();
    let topic = named("configured_as_a_broker").topic("flow");
    assert_eq!(topic.committed(&context.consumer()), 2);
    admin.delete_consumer(&context.consumer()).await.unwrap();
    assert_eq!(topic.committed(&context.consumer()), 0);

    let two = config.flow_source("p", &["a", "b"]);
    assert!(config.source(&context, &two).await.is_err());
    assert!(
        config
            .source(&context, &EndpointSettings(None))
            .await
            .is_err()
    );
}
