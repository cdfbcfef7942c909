use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::transport::{DeliveryMode, Destination, Message, Outcome, Sink, Source};

fn message(i: usize) -> Message {
    Message {
        destination: Destination::default(),
        key: None,
        content_type: Some("application/cloudevents+json".into()),
        headers: vec![("n".into(), i.to_string().into_bytes())],
        payload: format!("{{\"id\":\"e{i}\"}}").into_bytes(),
    }
}

fn ids(batch: &[crate::transport::Received]) -> Vec<String> {
    batch
        .iter()
        .map(|r| String::from_utf8(r.message.headers[0].1.clone()).unwrap())
        .collect()
}

async fn source(outbox: &Arc<Outbox>, consumer: &str, mode: DeliveryMode) -> OutboxSource {
    let at = outbox
        .join("t", consumer, mode == DeliveryMode::Latest)
        .unwrap();
    OutboxSource::new(outbox.clone(), "t", consumer, at, mode)
}

#[tokio::test]
async fn what_is_not_acknowledged_comes_again_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.redb");
    {
        let outbox = Outbox::open(&path, 1 << 20).unwrap();
        outbox
            .append("t", &(0..5).map(message).collect::<Vec<_>>())
            .unwrap();
        let mut s = source(&outbox, "c", DeliveryMode::AtLeastOnce).await;
        let batch = s.recv(3, Duration::ZERO).await.unwrap();
        assert_eq!(ids(&batch), ["0", "1", "2"]);
        // Only the first two are acknowledged.
        let tokens = batch.into_iter().take(2).map(|r| r.token).collect();
        s.acker().ack(tokens).await.unwrap();
    }
    // The file closed with its last handle; a new one resumes after "1".
    let outbox = Outbox::open(&path, 1 << 20).unwrap();
    let mut s = source(&outbox, "c", DeliveryMode::AtLeastOnce).await;
    let batch = s.recv(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&batch), ["2", "3", "4"]);
    assert_eq!(batch[0].message, message(2));
}

#[tokio::test]
async fn acknowledged_messages_leave_the_file_and_free_room() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), 1 << 20).unwrap();
    let mut s = source(&outbox, "c", DeliveryMode::AtLeastOnce).await;
    outbox
        .append("t", &(0..4).map(message).collect::<Vec<_>>())
        .unwrap();
    let full = outbox.usage().0;
    assert!(full > 0);
    let batch = s.recv(4, Duration::ZERO).await.unwrap();
    s.acker()
        .ack(batch.into_iter().map(|r| r.token).collect())
        .await
        .unwrap();
    assert_eq!(outbox.usage().0, 0);
    assert!(outbox.read("t", 0, 10).unwrap().is_empty());
    assert_eq!(outbox.head("t").unwrap(), 4, "sequence numbers go on");
}

#[tokio::test]
async fn a_full_outbox_refuses_whole_batches_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let one = super::codec::encode(0, &message(0)).len() as u64;
    let outbox = Outbox::open(&dir.path().join("o.redb"), 3 * one).unwrap();
    outbox.append("t", &[message(0), message(1)]).unwrap();
    let err = outbox.append("t", &[message(2), message(3)]).unwrap_err();
    assert!(
        matches!(err, OutboxError::Full { limit, .. } if limit == 3 * one),
        "{err}"
    );
    assert!(err.to_string().contains("is full"), "{err}");
    assert_eq!(outbox.read("t", 0, 10).unwrap().len(), 2);
    outbox.append("t", &[message(2)]).unwrap();
}

#[tokio::test]
async fn a_source_waits_for_new_messages_and_latest_starts_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), 1 << 20).unwrap();
    outbox.append("t", &[message(0)]).unwrap();
    let mut latest = source(&outbox, "live", DeliveryMode::Latest).await;
    let writer = outbox.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append("t", &[message(1)]).unwrap();
    });
    let batch = tokio::time::timeout(Duration::from_secs(5), latest.recv(10, Duration::ZERO))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&batch), ["1"]);
}

#[tokio::test]
async fn the_sink_appends_by_destination_and_refuses_messages_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), 1 << 20).unwrap();
    let mut routed = message(1);
    routed.destination.name = "other".into();
    let outcomes = OutboxSink::new(outbox.clone(), Some("t"))
        .send(vec![message(0), routed.clone()])
        .await
        .unwrap();
    assert_eq!(outcomes, [Outcome::Confirmed, Outcome::Confirmed]);
    assert_eq!(outbox.read("t", 0, 10).unwrap()[0].message, message(0));
    assert_eq!(outbox.read("other", 0, 10).unwrap()[0].message, routed);
    let outcomes = OutboxSink::new(outbox.clone(), None)
        .send(vec![message(2)])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], Outcome::Rejected { .. }));
}
