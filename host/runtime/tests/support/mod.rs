//! Shared helpers of the runtime's integration tests.
#![allow(dead_code)]

use fnaa_runtime::{AttributeValue, Event, Plugin, Runtime, RuntimeConfig};

/// A runtime with test-friendly limits and no disk cache.
pub fn runtime() -> Runtime {
    runtime_with(|_| {})
}

pub fn runtime_with(adjust: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut config = RuntimeConfig {
        cache_dir: None,
        call_deadline_ms: 200,
        max_memory_bytes: 32 << 20,
        ..RuntimeConfig::default()
    };
    adjust(&mut config);
    Runtime::new(config).expect("runtime starts")
}

/// Loads a built-in plugin by name (as built from plugins/).
pub fn plugin(runtime: &Runtime, name: &str) -> Plugin {
    let builtin =
        fnaa_plugins::find(name).unwrap_or_else(|| panic!("plugin `{name}` was not built"));
    runtime
        .load(builtin.name, builtin.wasm)
        .expect("plugin loads")
}

pub fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An event of `ty` with JSON data.
pub fn event(id: &str, ty: &str, json: &str) -> Event {
    Event::new(id, "/test", ty).with_data("application/json", json.as_bytes().to_vec())
}

/// An event that uses every CloudEvents attribute and every extension type,
/// with binary data holding every byte value.
pub fn full_event() -> Event {
    let mut e = Event::new(
        "id-ü-1",
        "https://example.org/source?x=1",
        "org.example.everything",
    );
    e.spec_version = "1.0".into();
    e.subject = Some("subject/ä".into());
    e.time = Some("2026-11-22T10:00:00.123456789+01:00".into());
    e.data_content_type = Some("application/octet-stream".into());
    e.data_schema = Some("https://example.org/schema".into());
    e.extensions = vec![
        ("flag".into(), AttributeValue::Boolean(true)),
        ("count".into(), AttributeValue::Integer(i32::MIN)),
        (
            "text".into(),
            AttributeValue::String("multi\nline \u{1F600}".into()),
        ),
        ("blob".into(), AttributeValue::Binary((0..=255).collect())),
        (
            "link".into(),
            AttributeValue::Uri("https://example.org/a#b".into()),
        ),
        (
            "rel".into(),
            AttributeValue::UriReference("../relative".into()),
        ),
        (
            "at".into(),
            AttributeValue::Timestamp("1985-04-12T23:20:50.52Z".into()),
        ),
    ];
    e.data = Some((0..=255).rev().collect());
    e
}
