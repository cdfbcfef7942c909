//! The standard connector plugins as the host runs them: WebAssembly
//! components in the sandbox. They must agree byte for byte with the
//! binding code they are built from, and carry a pipeline end to end.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::DataPlane;
use fnaa_dataplane::config::{BrokersConfig, PipelineConfig};
use fnaa_dataplane::pipeline::Codec as _;
use fnaa_dataplane::pipeline::native::NativeCodec;
use fnaa_dataplane::pipeline::wasm::WasmPlugins;
use fnaa_dataplane::pipeline::{PluginError, PluginFactory};
use fnaa_event::{AttributeValue, Event};
use fnaa_runtime::{Runtime, RuntimeConfig};

pub fn wasm_plugins() -> WasmPlugins {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let r = runtime.clone();
    WasmPlugins::new(runtime, move |name| {
        let p = fnaa_plugins::find(name).ok_or_else(|| format!("no embedded plugin `{name}`"))?;
        Ok(r.load(name, p.wasm)?)
    })
}

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sample(i: usize) -> Event {
    let mut e = Event::new(
        format!("ev-{i}"),
        "/kytos/topology",
        "kytos/topology.link_up",
    )
    .with_data("application/json", format!("{{\"link\":{i}}}").into_bytes());
    e.subject = Some("link".into());
    e.time = Some("2026-11-22T10:00:00Z".into());
    e.set_extension("category", AttributeValue::String("operational".into()));
    e
}

#[test]
fn wasm_connectors_agree_with_the_binding_code() {
    let plugins = wasm_plugins();
    let cases: &[(&str, Vec<(String, String)>)] = &[
        ("kafka", cfg(&[])),
        (
            "kafka",
            cfg(&[("mode", "structured"), ("key", "{subject}")]),
        ),
        ("mqtt", cfg(&[])),
        ("mqtt", cfg(&[("version", "3.1.1")])),
        (
            "amqp",
            cfg(&[
                ("destination", "kytos.{category}"),
                ("routing_key", "{category}.{type}"),
            ]),
        ),
        (
            "amqp",
            cfg(&[("mode", "structured"), ("header_prefix", "cloudEvents_")]),
        ),
        (
            "raw",
            cfg(&[("raw.source", "/edge"), ("raw.type", "reading")]),
        ),
    ];
    let events: Vec<Event> = (0..20).map(sample).collect();
    for (plugin, config) in cases {
        let mut wasm = plugins.connector(plugin, "t", config).unwrap();
        let mut native = NativeCodec::new(plugin, config).unwrap();
        let w = wasm.encode(&events).unwrap();
        let n = native.encode(&events).unwrap();
        assert_eq!(w, n, "{plugin} {config:?}");
        let messages: Vec<_> = w.into_iter().map(Result::unwrap).collect();
        let back = wasm.decode(&messages).unwrap();
        if *plugin != "raw" {
            assert_eq!(
                back,
                events.iter().cloned().map(Ok).collect::<Vec<_>>(),
                "{plugin} {config:?}"
            );
        }
    }
    // Configuration errors come back named.
    let err = plugins
        .connector("amqp", "t", &cfg(&[("modee", "binary")]))
        .err()
        .unwrap();
    assert!(
        matches!(err, PluginError::Instantiate(_)) && err.to_string().contains("modee"),
        "{err}"
    );
    let err = plugins.connector("bridge", "t", &[]).err().unwrap();
    assert!(
        matches!(
            err,
            PluginError::WrongKind {
                is: "processor",
                wanted: "connector",
                ..
            }
        ),
        "{err}"
    );
    let err = plugins.connector("no-such", "t", &[]).err().unwrap();
    assert!(matches!(err, PluginError::NotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_through_wasm_connectors_and_the_wasm_bridge() {
    common::init_tracing();
    let mosquitto = common::Mosquitto::start("");
    let doc: toml::Value = toml::from_str(&format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.m]
        type = "mqtt"
        host = "127.0.0.1"
        port = {}
        [[pipelines]]
        name = "{}"
        source = {{ broker = "m", mqtt = {{ topics = ["in"] }}, connector_config = {{ "raw.source" = "/sensors", "raw.type" = "reading" }} }}
        processors = [{{ plugin = "bridge", config = {{ "set.subject" = "bridged" }} }}]
        sink = {{ broker = "m", connector_config = {{ mode = "structured" }}, mqtt = {{ topic = "out" }} }}
        "#,
        mosquitto.port,
        common::unique("wasm")
    ))
    .unwrap();
    let brokers: BrokersConfig = doc["brokers"].clone().try_into().unwrap();
    let pipelines: Vec<PipelineConfig> = doc["pipelines"].clone().try_into().unwrap();
    let plane = DataPlane::start(&brokers, &pipelines, Arc::new(wasm_plugins()))
        .await
        .unwrap();
    let mut sub = common::MosquittoSub::start(mosquitto.port, "out", 2, &[]);
    sub.wait_subscribed();
    let port = mosquitto.port.to_string();
    let publ = common::require("mosquitto_pub", "apt-get install mosquitto-clients");
    for payload in [r#"{"t":21.5}"#, "plain text"] {
        let ok = std::process::Command::new(&publ)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "in",
                "-q",
                "1",
                "-m",
                payload,
            ])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let lines: Vec<serde_json::Value> = sub
        .messages()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["type"], "reading");
    assert_eq!(lines[0]["source"], "/sensors");
    assert_eq!(lines[0]["subject"], "bridged");
    assert_eq!(lines[0]["data"]["t"], 21.5);
    assert_eq!(lines[1]["datacontenttype"], "application/octet-stream");
    assert_eq!(lines[1]["data_base64"], "cGxhaW4gdGV4dA==");
    plane.shutdown(Duration::from_secs(5)).await;
}
