//! Each processor's `out` port feeds the next; the last one's ports go
//! where `routes` says, and events on other ports are filtered out.

use super::*;

/// Emits each event on the port its subject names.
struct BySubject;

impl Processor for BySubject {
    fn process(
        &mut self,
        _port: &str,
        batch: &[Event],
    ) -> Result<Vec<(String, Event)>, StageError> {
        Ok(batch
            .iter()
            .map(|e| (e.subject.clone().unwrap_or_default(), e.clone()))
            .collect())
    }
}

fn publish_subjects(topic: &Topic, subjects: &[&str]) {
    let codec = binding();
    topic.publish_all(
        subjects
            .iter()
            .enumerate()
            .map(|(i, s)| codec.encode(&event(i, s)).unwrap())
            .collect(),
    );
}

#[tokio::test]
async fn the_last_processors_ports_are_routed_to_destinations() {
    let h = Harness::new();
    publish_subjects(&h.input, &["out", "alerts", "out", "nowhere", "alerts"]);
    let p = h.start(Options {
        batch_size: 5,
        processors: vec![named("bridge", PassThrough), named("split", BySubject)],
        routes: [("out", "out"), ("alerts", "alerts")]
            .into_iter()
            .map(|(port, to)| (port.to_owned(), to.to_owned()))
            .collect(),
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 5).await);
    assert_eq!(ids(&h.output), expected([0, 2]));
    assert_eq!(ids(&h.broker.topic("alerts")), expected([1, 4]));
    let m = p.metrics().snapshot();
    assert_eq!((m.events_out, m.events_filtered), (4, 1));
    p.stop(WAIT).await;
}

/// Without routes only port `out` goes on, to the sink's destination.
#[tokio::test]
async fn without_routes_only_port_out_goes_on() {
    let h = Harness::new();
    publish_subjects(&h.input, &["out", "alerts", "out"]);
    let p = h.start(Options {
        batch_size: 3,
        processors: vec![named("split", BySubject), named("bridge", PassThrough)],
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 3).await);
    assert_eq!(ids(&h.output), expected([0, 2]));
    assert_eq!(h.broker.topics(), ["dlq", "in", "out"]);
    assert_eq!(p.metrics().snapshot().events_filtered, 1);
    p.stop(WAIT).await;
}
