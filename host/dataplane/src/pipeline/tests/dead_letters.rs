//! Failed events go to the dead-letter flow, annotated with why, where
//! and in which pipeline they failed; their source messages are
//! acknowledged either way.

use super::*;

fn attr(e: &Event, name: &str) -> Option<String> {
    e.attribute(name).map(|v| v.into_owned())
}

fn subject_is(m: &Message, subject: &str) -> bool {
    m.header("ce_subject") == Some(subject.as_bytes())
}

/// One batch: a good event, an undecodable message, an event the
/// processor refuses, one the sink rejects, one it cannot route, another
/// good one.
fn publish_mixed(topic: &Topic) {
    let codec = binding();
    let enc = |i: usize, subject: &str| codec.encode(&event(i, subject)).unwrap();
    topic.publish_all(vec![
        enc(0, "ok"),
        Message {
            content_type: Some("text/plain".into()),
            payload: b"not a cloud event".to_vec(),
            ..Message::default()
        },
        enc(2, "bad"),
        enc(3, "refuse"),
        enc(4, "lost"),
        enc(5, "ok"),
    ]);
}

#[tokio::test]
async fn failures_of_every_stage_become_annotated_dead_letters() {
    let h = Harness::new();
    h.faults.reject_if(|m| subject_is(m, "refuse"));
    h.faults.unroutable_if(|m| subject_is(m, "lost"));
    publish_mixed(&h.input);
    let p = h.start(Options {
        batch_size: 10,
        processors: vec![named("picky", Picky::default())],
        dead_letter: true,
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 6).await);
    assert_eq!(ids(&h.output), expected([0, 5]));

    let dead = events(&h.dlq);
    let described: Vec<(Option<String>, Option<String>, Option<String>)> = dead
        .iter()
        .map(|e| {
            assert_eq!(attr(e, "deadletterpipeline").as_deref(), Some("test"));
            (
                attr(e, "deadletterstage"),
                attr(e, "deadletterplugin"),
                attr(e, "deadletterreason"),
            )
        })
        .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        described,
        vec![
            (s("decode"), s("kafka"), described[0].2.clone()),
            (s("process"), s("picky"), s("subject `bad` is not allowed")),
            (
                s("publish"),
                None,
                s("refused by the memory broker (injected)")
            ),
            (
                s("publish"),
                None,
                s("unroutable: no route in the memory broker (injected)")
            ),
        ]
    );
    assert!(
        described[0].2.as_deref().is_some_and(|r| !r.is_empty()),
        "{described:?}"
    );

    // The undecodable message travels as the data of its dead letter.
    assert_eq!(dead[0].ty, "dev.fnaa.deadletter.undecodable");
    assert_eq!(dead[0].data.as_deref(), Some(&b"not a cloud event"[..]));
    assert_eq!(dead[0].data_content_type.as_deref(), Some("text/plain"));
    // The others are the events themselves.
    assert_eq!(
        dead[1..].iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["ev-2", "ev-3", "ev-4"]
    );

    let m = p.metrics().snapshot();
    assert_eq!(
        (
            m.decode_errors,
            m.publish_failures,
            m.unroutable,
            m.dead_lettered,
            m.events_out
        ),
        (1, 2, 1, 4, 2)
    );
    p.stop(WAIT).await;
}

/// Without a dead-letter flow the same failures are acknowledged, counted
/// and dropped: the pipeline goes on.
#[tokio::test]
async fn without_a_dead_letter_flow_failures_are_dropped_and_acknowledged() {
    let h = Harness::new();
    h.faults.reject_if(|m| subject_is(m, "refuse"));
    h.faults.unroutable_if(|m| subject_is(m, "lost"));
    publish_mixed(&h.input);
    let p = h.start(Options {
        batch_size: 10,
        processors: vec![named("picky", Picky::default())],
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 6).await);
    assert_eq!(ids(&h.output), expected([0, 5]));
    assert!(h.dlq.is_empty());
    let m = p.metrics().snapshot();
    assert_eq!((m.dropped_failures, m.dead_lettered), (4, 0));
    assert!(p.is_running());
    p.stop(WAIT).await;
}

/// An event the sink connector cannot encode (its destination template
/// names an attribute the event lacks) is a dead letter of stage `encode`.
#[tokio::test]
async fn encode_failures_are_dead_letters_of_the_encode_stage() {
    let h = Harness::new();
    let codec = binding();
    let mut routed = event(0, "ok");
    routed.set_extension("region", fnaa_event::AttributeValue::String("out".into()));
    h.input.publish_all(vec![
        codec.encode(&routed).unwrap(),
        codec.encode(&event(1, "ok")).unwrap(),
    ]);
    let p = h.start(Options {
        dead_letter: true,
        encoder_config: vec![("destination".into(), "{region}".into())],
        ..Options::default()
    });
    assert!(eventually(WAIT, || h.input.committed(CONSUMER) == 2).await);
    assert_eq!(ids(&h.output), expected([0]));
    let dead = events(&h.dlq);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "ev-1");
    assert_eq!(attr(&dead[0], "deadletterstage").as_deref(), Some("encode"));
    assert_eq!(attr(&dead[0], "deadletterplugin").as_deref(), Some("kafka"));
    assert!(
        attr(&dead[0], "deadletterreason").is_some_and(|r| r.contains("region")),
        "{:?}",
        attr(&dead[0], "deadletterreason")
    );
    assert_eq!(p.metrics().snapshot().encode_errors, 1);
    p.stop(WAIT).await;
}
