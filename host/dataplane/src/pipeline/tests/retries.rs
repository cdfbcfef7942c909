//! Retryable processor failures are retried; a batch that keeps failing
//! is split until the failing events are isolated and dead-lettered.

use super::*;

/// `attempts = 3`: each batch holding a poison event is tried three
/// times, then its halves once each, down to the poison event alone,
/// which goes to the dead-letter flow. The second batch gets the full
/// three attempts again (the isolation does not change the policy).
#[tokio::test]
async fn a_failing_batch_is_retried_then_split_to_isolate_the_failing_event() {
    let h = Harness::new();
    let codec = binding();
    let subjects = ["ok", "poison", "ok", "ok", "ok", "ok", "poison", "ok"];
    h.input.publish_all(
        subjects
            .iter()
            .enumerate()
            .map(|(i, s)| codec.encode(&event(i, s)).unwrap())
            .collect(),
    );
    let picky = Picky::default();
    let p = h.start(Options {
        batch_size: 4,
        queue_batches: 1,
        processors: vec![named("picky", picky.clone())],
        dead_letter: true,
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 8).await);

    let ev = |list: &[usize]| expected(list.iter().copied());
    assert_eq!(
        picky.calls(),
        vec![
            ev(&[0, 1, 2, 3]),
            ev(&[0, 1, 2, 3]),
            ev(&[0, 1, 2, 3]),
            ev(&[0, 1]),
            ev(&[0]),
            ev(&[1]),
            ev(&[2, 3]),
            ev(&[4, 5, 6, 7]),
            ev(&[4, 5, 6, 7]),
            ev(&[4, 5, 6, 7]),
            ev(&[4, 5]),
            ev(&[6, 7]),
            ev(&[6]),
            ev(&[7]),
        ]
    );
    assert_eq!(ids(&h.output), expected([0, 2, 3, 4, 5, 7]));
    let dead = events(&h.dlq);
    assert_eq!(
        dead.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["ev-1", "ev-6"]
    );
    for e in &dead {
        assert_eq!(
            e.attribute("deadletterreason").as_deref(),
            Some("trap: unreachable executed")
        );
        assert_eq!(e.attribute("deadletterstage").as_deref(), Some("process"));
        assert_eq!(e.attribute("deadletterplugin").as_deref(), Some("picky"));
    }
    let m = p.metrics().snapshot();
    // Two retries per batch; every failed call counts as an error.
    assert_eq!((m.retries, m.process_errors), (4, 10));
    p.stop(WAIT).await;
}

/// A failure that goes away is retried and nothing is lost.
#[tokio::test]
async fn a_passing_failure_is_retried_once() {
    let h = Harness::new();
    let codec = binding();
    h.input.publish_all(
        ["ok", "flaky", "ok"]
            .iter()
            .enumerate()
            .map(|(i, s)| codec.encode(&event(i, s)).unwrap())
            .collect(),
    );
    let picky = Picky::default();
    let p = h.start(Options {
        batch_size: 3,
        processors: vec![named("picky", picky.clone())],
        dead_letter: true,
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 3).await);
    assert_eq!(picky.calls(), vec![expected(0..3), expected(0..3)]);
    assert_eq!(ids(&h.output), expected(0..3));
    assert!(h.dlq.is_empty());
    assert_eq!(p.metrics().snapshot().retries, 1);
    p.stop(WAIT).await;
}

/// With `attempts = 1` a failing batch is split at once.
#[tokio::test]
async fn one_attempt_splits_at_once() {
    let h = Harness::new();
    let codec = binding();
    h.input.publish_all(
        ["poison", "ok"]
            .iter()
            .enumerate()
            .map(|(i, s)| codec.encode(&event(i, s)).unwrap())
            .collect(),
    );
    let picky = Picky::default();
    let p = h.start(Options {
        batch_size: 2,
        processors: vec![named("picky", picky.clone())],
        retry: ProcessorRetryConfig {
            attempts: 1,
            backoff_ms: 1,
        },
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 2).await);
    assert_eq!(
        picky.calls(),
        vec![expected(0..2), expected([0]), expected([1])]
    );
    assert_eq!(ids(&h.output), expected([1]));
    assert_eq!(p.metrics().snapshot().retries, 0);
    p.stop(WAIT).await;
}
