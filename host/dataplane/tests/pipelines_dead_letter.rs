//! Dead letters end to end: events a processor refuses, a batch that keeps
//! failing, and a message that is no CloudEvent go to the dead-letter flow
//! with why, where and by whom; the pipeline goes on with the rest.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::transport::Message;
use fnaa_event::Event;
use fnaa_event::binding::Binding;

use common::pipeline::{
    Conn, Producer, brokers_toml, collect, ids, mqtt_collector, parse, publish_mqtt, settled,
};
use common::plugins::{TestPlugins, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_go_to_the_dead_letter_flow_and_the_pipeline_goes_on() {
    common::init_tracing();
    let mosquitto = common::Mosquitto::start("");
    let name = common::unique("dlq");
    let doc = parse(&format!(
        r#"{}
        [[pipelines]]
        name = "{name}"
        batch_size = 100
        batch_timeout_ms = 200
        processor_retry = {{ attempts = 2, backoff_ms = 10 }}
        source = {{ broker = "m", mqtt = {{ topics = ["in/#"] }} }}
        processors = [{{ plugin = "failer" }}]
        sink = {{ broker = "m", mqtt = {{ topic = "out/ok" }} }}
        dead_letter = {{ broker = "m", connector_config = {{ mode = "structured" }}, mqtt = {{ topic = "out/dlq" }} }}
        "#,
        brokers_toml(&[("m", Conn::Mqtt(mosquitto.port))]),
    ));
    let mut ok = mqtt_collector(mosquitto.port, "out/ok").await;
    let mut dlq = mqtt_collector(mosquitto.port, "out/dlq").await;
    let plane = doc.start(Arc::new(TestPlugins::default())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let subjects = [
        "fine", "bad", "fine", "poison", "flaky", "fine", "fine", "fine",
    ];
    let events: Vec<Event> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| event(i, s))
        .collect();
    publish_mqtt(mosquitto.port, "in/x", &events).await;
    // And a message that is no CloudEvent at all.
    Producer::mqtt(mosquitto.port, "in/raw")
        .send(vec![Message {
            payload: b"garbage".to_vec(),
            ..Message::default()
        }])
        .await;

    let good = collect(&mut ok, Binding::Mqtt, Duration::from_secs(15), |e| {
        e.len() >= 6
    })
    .await;
    let dead = collect(&mut dlq, Binding::Mqtt, Duration::from_secs(15), |e| {
        e.len() >= 3
    })
    .await;
    assert_eq!(
        ids(&good),
        BTreeSet::from(["ev-0", "ev-2", "ev-4", "ev-5", "ev-6", "ev-7"].map(String::from))
    );
    let reason = |e: &Event| e.attribute("deadletterreason").unwrap().into_owned();
    let bad = dead
        .iter()
        .find(|e| e.id == "ev-1")
        .expect("`bad` dead-lettered");
    assert_eq!(bad.attribute("deadletterstage").as_deref(), Some("process"));
    assert_eq!(bad.attribute("deadletterplugin").as_deref(), Some("failer"));
    assert_eq!(
        bad.attribute("deadletterpipeline").as_deref(),
        Some(name.as_str())
    );
    assert!(reason(bad).contains("not allowed"));
    let poison = dead
        .iter()
        .find(|e| e.id == "ev-3")
        .expect("`poison` isolated and dead-lettered");
    assert!(reason(poison).contains("trap"));
    let garbage = dead
        .iter()
        .find(|e| e.ty == "dev.fnaa.deadletter.undecodable")
        .expect("undecodable message dead-lettered");
    assert_eq!(garbage.data.as_deref(), Some(&b"garbage"[..]));
    assert_eq!(
        garbage.attribute("deadletterstage").as_deref(),
        Some("decode")
    );
    assert_eq!(garbage.subject.as_deref(), Some("in/raw"));
    assert_eq!(dead.len(), 3, "{dead:?}");
    let m = settled(&plane, |m| m.dead_lettered == 3).await;
    assert!(
        m.retries >= 1 && m.dead_lettered == 3 && m.decode_errors == 1,
        "{m:?}"
    );
    plane.shutdown(Duration::from_secs(5)).await;
}
