//! Batches close when full or when `batch_timeout` has passed since their
//! first message.

use std::time::{Duration, Instant};

use super::*;

/// A backlog of 8 with batches of 4: two full batches go out at once,
/// without waiting for the (long) batch timeout.
#[tokio::test]
async fn full_batches_go_out_without_waiting() {
    let h = Harness::new();
    h.input.publish_all(messages(0..8));
    let started = Instant::now();
    let p = h.start(Options {
        batch_size: 4,
        batch_timeout: Duration::from_secs(10),
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.output.len() == 8).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(h.faults.sent_batches(), vec![4, 4]);
    assert_eq!(ids(&h.output), expected(0..8));
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 8).await);
    p.stop(WAIT).await;
}

/// A batch that does not fill closes `batch_timeout` after its first
/// message, with what arrived meanwhile.
#[tokio::test]
async fn a_partial_batch_closes_after_the_timeout() {
    let h = Harness::new();
    let timeout = Duration::from_millis(150);
    let p = h.start(Options {
        batch_size: 100,
        batch_timeout: timeout,
        ..Options::default()
    });
    p.ready().await;
    let first = Instant::now();
    h.input.publish_all(messages(0..1));
    tokio::time::sleep(Duration::from_millis(40)).await;
    h.input.publish_all(messages(1..3));
    assert!(eventually(WAIT, || h.output.len() == 3).await);
    let took = first.elapsed();
    assert!(took >= timeout, "the batch closed after {took:?}");
    assert!(
        took < timeout + Duration::from_secs(1),
        "the batch closed after {took:?}"
    );
    assert_eq!(h.faults.sent_batches(), vec![3]);

    // The next batch starts with the next message.
    h.input.publish_all(messages(3..5));
    assert!(eventually(WAIT, || h.output.len() == 5).await);
    assert_eq!(h.faults.sent_batches(), vec![3, 2]);
    assert_eq!(ids(&h.output), expected(0..5));
    p.stop(WAIT).await;
}
