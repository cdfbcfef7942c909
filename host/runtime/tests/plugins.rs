//! Each standard processor's behaviour, through the real host call path.

mod support;

use fnaa_runtime::{AttributeValue, Emitted, Event, ProcessError, ProcessorInstance, RuntimeError};
use support::{config, event, plugin, runtime};

fn instance(name: &str, pairs: &[(&str, &str)]) -> ProcessorInstance {
    let runtime = runtime();
    let plugin = plugin(&runtime, name);
    ProcessorInstance::new(&runtime, &plugin, &format!("{name}-test"), &config(pairs))
        .expect("instance starts")
}

fn ids(out: &[Emitted]) -> Vec<(&str, &str)> {
    out.iter()
        .map(|e| (e.port.as_str(), e.event.id.as_str()))
        .collect()
}

#[test]
fn bridge_passes_events_through_unchanged() {
    let mut bridge = instance("bridge", &[]);
    let batch = vec![support::full_event(), event("2", "t", "{}")];
    let out = bridge.process("in", batch.clone()).unwrap();
    assert_eq!(
        out.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        batch
    );
    assert!(out.iter().all(|e| e.port == "out"));
}

#[test]
fn bridge_rewrites_attributes() {
    let mut bridge = instance(
        "bridge",
        &[
            ("set.source", "/fnaa/copy"),
            ("set.origin", "kytos"),
            ("remove", "subject"),
        ],
    );
    let mut input = event("1", "t", "{}");
    input.subject = Some("s".into());
    let out = bridge.process("in", vec![input]).unwrap();
    assert_eq!(out[0].event.source, "/fnaa/copy");
    assert_eq!(out[0].event.subject, None);
    assert_eq!(
        out[0].event.extension("origin"),
        Some(&AttributeValue::String("kytos".into()))
    );
}

#[test]
fn unknown_configuration_key_is_named() {
    let runtime = runtime();
    let bridge = plugin(&runtime, "bridge");
    match ProcessorInstance::new(&runtime, &bridge, "b", &config(&[("sett.source", "x")])) {
        Err(RuntimeError::Config { plugin, reason, .. }) => {
            assert_eq!(plugin, "bridge");
            assert!(reason.contains("sett.source"), "{reason}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn collector_merges_ports_and_deduplicates_within_its_window() {
    let mut collector = instance("collector", &[("dedup", "true"), ("window", "2")]);
    let out = collector
        .process("a", vec![event("1", "t", "{}"), event("2", "t", "{}")])
        .unwrap();
    assert_eq!(ids(&out), [("out", "1"), ("out", "2")]);
    // "1" and "2" were seen: dropped, whatever port they come from.
    let out = collector
        .process("b", vec![event("1", "t", "{}"), event("3", "t", "{}")])
        .unwrap();
    assert_eq!(ids(&out), [("out", "3")]);
    // The window holds 2: "1" fell out of it and passes again.
    let out = collector.process("a", vec![event("1", "t", "{}")]).unwrap();
    assert_eq!(ids(&out), [("out", "1")]);
}

#[test]
fn distributor_broadcasts() {
    let mut distributor = instance("distributor", &[("ports", "x,y,z")]);
    let out = distributor
        .process("in", vec![event("1", "t", "{}")])
        .unwrap();
    assert_eq!(ids(&out), [("x", "1"), ("y", "1"), ("z", "1")]);
}

#[test]
fn distributor_routes_by_type_pattern() {
    let mut distributor = instance(
        "distributor",
        &[
            ("route.links", "kytos/topology.link_*"),
            ("route.switches", "kytos/topology.switch.*"),
            ("default", "other"),
        ],
    );
    let batch = vec![
        event("1", "kytos/topology.link_up", "{}"),
        event("2", "kytos/topology.switch.enabled", "{}"),
        event("3", "kytos/of_core.handshake", "{}"),
    ];
    let out = distributor.process("in", batch).unwrap();
    assert_eq!(
        ids(&out),
        [("links", "1"), ("switches", "2"), ("other", "3")]
    );
}

#[test]
fn signal_filters_by_type_and_subject_globs() {
    let mut signal = instance(
        "signal",
        &[
            ("types", "kytos/topology.*"),
            ("exclude-subjects", "test/*"),
        ],
    );
    let mut excluded = event("3", "kytos/topology.link_down", "{}");
    excluded.subject = Some("test/link".into());
    let batch = vec![
        event("1", "kytos/topology.link_up", "{}"),
        event("2", "kytos/of_core.v0x04.messages.in", "{}"),
        excluded,
        event("4", "kytos/topology.switch.enabled", "{}"),
    ];
    let out = signal.process("in", batch).unwrap();
    assert_eq!(ids(&out), [("out", "1"), ("out", "4")]);
}

#[test]
fn signal_picks_json_fields_and_sets_attributes() {
    let mut signal = instance(
        "signal",
        &[
            ("pick", "/link/id,/link/status"),
            ("set.category", "topology"),
            ("remove", "subject"),
        ],
    );
    let mut input = event(
        "1",
        "kytos/topology.link_up",
        r#"{"link":{"id":"l7","status":"up","mtu":1500},"noise":[1,2,3]}"#,
    );
    input.subject = Some("x".into());
    let out = signal.process("in", vec![input]).unwrap();
    let data: serde_json::Value =
        serde_json::from_slice(out[0].event.data.as_deref().unwrap()).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"link": {"id": "l7", "status": "up"}})
    );
    assert_eq!(out[0].event.subject, None);
    assert_eq!(
        out[0].event.attribute("category").as_deref(),
        Some("topology")
    );
}

#[test]
fn signal_reports_non_json_data_as_an_invalid_event() {
    let mut signal = instance("signal", &[("pick", "/a")]);
    let bad = Event::new("2", "/s", "t").with_data("application/json", b"not json".to_vec());
    match signal.process("in", vec![event("1", "t", r#"{"a":1}"#), bad]) {
        Err(ProcessError::InvalidEvent {
            index: 1, reason, ..
        }) => assert!(!reason.is_empty()),
        other => panic!("expected event 1 to be invalid, got {other:?}"),
    }
}

#[test]
fn changes_emits_only_when_the_status_changed() {
    let mut changes = instance("changes", &[("key", "/link"), ("value", "/status")]);
    let batch = vec![
        event("1", "t", r#"{"link":"a","status":"up"}"#),
        event("2", "t", r#"{"link":"a","status":"up"}"#),
        event("3", "t", r#"{"link":"b","status":"up"}"#),
        event("4", "t", r#"{"link":"a","status":"down"}"#),
        event("5", "t", r#"{"link":"a","status":"down"}"#),
    ];
    let out = changes.process("in", batch).unwrap();
    assert_eq!(ids(&out), [("out", "1"), ("out", "3"), ("out", "4")]);
}
