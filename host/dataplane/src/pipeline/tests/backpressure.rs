//! A stalled sink stops the source: what the pipeline takes from the
//! topic is bounded by its queues, not by the backlog.

use super::*;

#[tokio::test]
async fn a_stalled_sink_bounds_what_the_source_takes() {
    let h = Harness::new();
    h.input.publish_all(messages(0..200));
    h.faults.stall();
    let (batch, queue) = (5, 2);
    let p = h.start(Options {
        batch_size: batch,
        queue_batches: queue,
        ..Options::default()
    });
    // `queue` batches in flight at the sink, one in the channel to it, one
    // processed and waiting for that channel, `queue` in the channel to
    // the stage worker and one read and waiting for that channel.
    let bound = ((2 * queue + 3) * batch) as u64;
    assert!(eventually(WAIT, || h.faults.held() == queue).await);
    assert!(eventually(WAIT, || h.input.taken(CONSUMER) >= bound).await);
    // And no more, however long the sink stalls.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.input.taken(CONSUMER), bound);
    assert_eq!(h.faults.held(), queue);
    assert_eq!(h.output.len(), 0);
    assert_eq!(h.input.committed(CONSUMER), 0);

    h.faults.release();
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 200).await);
    assert_eq!(ids(&h.output), expected(0..200));
    assert_eq!(h.input.taken(CONSUMER), 200);
    p.stop(WAIT).await;
}
