//! Acknowledgements: in source order, only after confirmation, and what
//! that gives across failures, redeliveries and restarts; `latest` mode.

use std::collections::BTreeSet;

use super::*;
use crate::pipeline::PipelineError;

/// Three batches in flight complete newest first: nothing is acknowledged
/// until the oldest is confirmed, then all of it, in source order.
#[tokio::test]
async fn acks_follow_source_order_when_batches_complete_out_of_order() {
    let h = Harness::new();
    h.faults.stall();
    h.input.publish_all(messages(0..6));
    let p = h.start(Options {
        batch_size: 2,
        queue_batches: 3,
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.faults.held() == 3).await);
    assert!(h.faults.release_batch(2));
    assert!(h.faults.release_batch(1));
    assert!(eventually(WAIT, || h.output.len() == 4).await);
    assert_eq!(ids(&h.output), expected([4, 5, 2, 3]));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(h.input.acked(CONSUMER), Vec::<u64>::new());
    assert_eq!(h.input.committed(CONSUMER), 0);

    assert!(h.faults.release_batch(0));
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 6).await);
    assert_eq!(h.input.acked(CONSUMER), (0..6).collect::<Vec<u64>>());
    assert_eq!(p.metrics().snapshot().events_out, 6);
    p.stop(WAIT).await;
}

/// The sink fails its third batch for good: the pipeline stops with the
/// two confirmed batches acknowledged and nothing else; a new pipeline on
/// the same consumer delivers the rest, exactly once here.
#[tokio::test]
async fn at_least_once_across_a_sink_that_fails() {
    let h = Harness::new();
    h.faults.fail_batches(2, 1);
    h.input.publish_all(messages(0..10));
    let options = || Options {
        batch_size: 2,
        queue_batches: 1,
        ..Options::default()
    };
    let p = h.start(options());
    assert!(eventually(WAIT, || !p.is_running()).await);
    assert!(matches!(
        p.failure().as_deref(),
        Some(PipelineError::Sink(_))
    ));
    assert_eq!(ids(&h.output), expected(0..4));
    assert_eq!(h.input.acked(CONSUMER), (0..4).collect::<Vec<u64>>());
    p.stop(WAIT).await;

    let p = h.start(options());
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 10).await);
    assert_eq!(ids(&h.output), expected(0..10));
    assert_eq!(h.faults.sent_batches(), vec![2; 6]);
    assert!(p.failure().is_none());
    p.stop(WAIT).await;
}

/// With batches in flight behind the one that fails, those may be
/// confirmed, but none is acknowledged past the failure: after a restart
/// every event arrives (some twice).
#[tokio::test]
async fn nothing_is_acknowledged_past_an_unconfirmed_batch() {
    let h = Harness::new();
    h.faults.stall();
    h.input.publish_all(messages(0..10));
    let options = || Options {
        batch_size: 2,
        queue_batches: 3,
        ..Options::default()
    };
    let p = h.start(options());
    assert!(eventually(WAIT, || h.faults.held() == 3).await);
    assert!(h.faults.release_batch(1));
    assert!(h.faults.release_batch(1));
    assert!(eventually(WAIT, || h.output.len() == 4).await);
    assert!(h.faults.fail_batch(0));
    assert!(eventually(WAIT, || !p.is_running()).await);
    h.faults.release();
    assert_eq!(ids(&h.output), expected(2..6));
    assert_eq!(h.input.acked(CONSUMER), Vec::<u64>::new());
    assert_eq!(h.input.committed(CONSUMER), 0);
    p.stop(WAIT).await;

    let p = h.start(options());
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 10).await);
    let got = ids(&h.output);
    assert_eq!(got.len(), 14, "{got:?}");
    let distinct: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(distinct, expected(0..10).into_iter().collect());
    assert_eq!(h.input.acked(CONSUMER), (0..10).collect::<Vec<u64>>());
    p.stop(WAIT).await;
}

/// The source's connection drops while batches are in flight: their
/// acknowledgements are void, the source reads again from the last
/// acknowledged message, and everything arrives (twice).
#[tokio::test]
async fn redelivered_messages_arrive_again_and_stale_acks_are_skipped() {
    let h = Harness::new();
    h.faults.stall();
    h.input.publish_all(messages(0..6));
    let p = h.start(Options {
        batch_size: 2,
        queue_batches: 2,
        ..Options::default()
    });
    assert!(
        eventually(WAIT, || h.faults.held() == 2
            && h.input.taken(CONSUMER) == 6)
        .await
    );
    h.input.redeliver(CONSUMER);
    assert!(eventually(WAIT, || h.input.taken(CONSUMER) == 12).await);
    h.faults.release();
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 6).await);
    assert_eq!(ids(&h.output), expected((0..6).chain(0..6)));
    assert_eq!(h.input.acked(CONSUMER), (0..6).collect::<Vec<u64>>());
    assert_eq!(h.input.stale_acks(CONSUMER), 6);
    p.stop(WAIT).await;
}

/// Stopping lets the batches in flight finish and acknowledges them.
#[tokio::test]
async fn stop_drains_what_was_read() {
    let h = Harness::new();
    h.faults.stall();
    h.input.publish_all(messages(0..8));
    let p = h.start(Options {
        batch_size: 2,
        queue_batches: 2,
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.faults.held() == 2).await);
    assert!(eventually(WAIT, || h.input.taken(CONSUMER) == 8).await);
    let faults = h.faults.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        faults.release();
    });
    p.stop(WAIT).await;
    release.await.unwrap();
    assert_eq!(h.input.committed(CONSUMER), 8);
    assert_eq!(ids(&h.output), expected(0..8));
}

/// `latest` starts at the live point: neither the backlog at the first
/// start nor what was published while stopped is delivered.
#[tokio::test]
async fn latest_skips_the_backlog() {
    let h = Harness::new();
    h.input.publish_all(messages(0..5));
    let options = || Options {
        mode: DeliveryMode::Latest,
        ..Options::default()
    };
    let p = h.start(options());
    p.ready().await;
    h.input.publish_all(messages(5..8));
    assert!(eventually(WAIT, || h.output.len() == 3).await);
    p.stop(WAIT).await;

    h.input.publish_all(messages(8..10));
    let p = h.start(options());
    p.ready().await;
    h.input.publish_all(messages(10..11));
    assert!(eventually(WAIT, || h.output.len() == 4).await);
    assert_eq!(ids(&h.output), expected([5, 6, 7, 10]));
    // Acknowledged on receipt: no tokens to acknowledge.
    assert_eq!(h.input.acked(CONSUMER), Vec::<u64>::new());
    p.stop(WAIT).await;
}

/// `latest` with a stalled sink keeps reading and discards the oldest
/// waiting batches: every message is either delivered or counted as
/// discarded, and the newest one is delivered.
#[tokio::test]
async fn latest_discards_the_oldest_when_the_sink_is_behind() {
    let h = Harness::new();
    h.faults.stall();
    let p = h.start(Options {
        mode: DeliveryMode::Latest,
        batch_size: 1,
        queue_batches: 1,
        ..Options::default()
    });
    p.ready().await;
    h.input.publish_all(messages(0..20));
    assert!(eventually(WAIT, || h.input.taken(CONSUMER) == 20).await);
    assert!(
        eventually(WAIT, || p.metrics().snapshot().discarded_backlog > 0).await,
        "nothing discarded"
    );
    h.faults.release();
    let m = p.metrics();
    assert!(
        eventually(WAIT, || {
            let s = m.snapshot();
            s.events_out + s.discarded_backlog == 20
        })
        .await,
        "{:?}",
        m.snapshot()
    );
    let got = ids(&h.output);
    assert_eq!(got.last().map(String::as_str), Some("ev-19"));
    let numbers: Vec<usize> = got
        .iter()
        .map(|id| id.trim_start_matches("ev-").parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(numbers.len() as u64, m.snapshot().events_out);
    p.stop(WAIT).await;
}
