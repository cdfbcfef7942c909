//! The MQTT transport against real Mosquitto brokers started per test: the
//! transport contract (`common::compliance`) in MQTT 5 and 3.1.1, QoS 1
//! and 2, and what only MQTT has (3.1.1 refusing headers, `mosquitto_sub`
//! reading what we publish; TLS with user and password is in
//! `transport_mqtt_tls.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use common::compliance::monitor;
use common::mosquitto::{fast_retry, message};

use std::sync::Arc;

use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::mqtt;
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSourceConfig, MqttVersion,
};
use fnaa_dataplane::transport::{DeliveryMode, Destination, Message, Outcome, Sink, Source};
use fnaa_event::binding::Mode;

use common::compliance::{self, Endpoint, TransportHarness};

/// The transport contract ([`common::compliance`]) on a Mosquitto of the
/// harness's own, which an outage stops (SIGTERM: it saves its persistent
/// sessions) and starts again on the same port. Sources are persistent
/// sessions named after their consumer; `mosquitto_pub` is the outside
/// client.
struct MqttHarness {
    mosquitto: common::Mosquitto,
    version: MqttVersion,
    qos: u8,
}

impl MqttHarness {
    fn start(version: MqttVersion, qos: u8) -> MqttHarness {
        common::init_tracing();
        MqttHarness {
            mosquitto: common::Mosquitto::start(""),
            version,
            qos,
        }
    }

    fn broker(&self) -> MqttBrokerConfig {
        MqttBrokerConfig::new("127.0.0.1", self.mosquitto.port, self.version)
    }
}

impl TransportHarness for MqttHarness {
    fn name(&self) -> String {
        format!("mqtt {:?} qos {}", self.version, self.qos)
    }

    fn connector(&self) -> (&'static str, Vec<(String, String)>) {
        match self.version {
            MqttVersion::V5 => ("mqtt", Vec::new()),
            MqttVersion::V311 => ("mqtt", vec![("version".into(), "3.1.1".into())]),
        }
    }

    fn modes(&self) -> Vec<Mode> {
        match self.version {
            MqttVersion::V5 => vec![Mode::Binary, Mode::Structured],
            // No user properties: structured mode only.
            MqttVersion::V311 => vec![Mode::Structured],
        }
    }

    async fn endpoint(&mut self, tag: &str) -> Endpoint {
        let prefix = common::unique(tag);
        Endpoint {
            destination: Destination {
                name: format!("{prefix}/x"),
                routing_key: None,
            },
            name: prefix,
        }
    }

    async fn source(
        &mut self,
        endpoint: &Endpoint,
        consumer: &str,
        monitor: Arc<OutageMonitor>,
    ) -> Box<dyn Source> {
        let mut config = MqttSourceConfig::new(vec![format!("{}/#", endpoint.name)]);
        config.qos = self.qos;
        Box::new(
            mqtt::open_source(
                &self.broker(),
                &config,
                consumer,
                DeliveryMode::AtLeastOnce,
                fast_retry(),
                monitor,
            )
            .unwrap(),
        )
    }

    fn sink(&mut self, endpoint: &Endpoint, monitor: Arc<OutageMonitor>) -> Box<dyn Sink> {
        let mut config = MqttSinkConfig::new(&endpoint.destination.name);
        config.qos = self.qos;
        Box::new(
            MqttSink::new(
                &self.broker(),
                &config,
                &common::unique("sink"),
                fast_retry(),
                monitor,
            )
            .unwrap(),
        )
    }

    async fn publish_outside(&mut self, _endpoint: &Endpoint, messages: &[Message]) {
        let bin = common::require("mosquitto_pub", "apt-get install mosquitto-clients");
        for m in messages {
            let mut command = tokio::process::Command::new(&bin);
            command
                .args(["-h", "127.0.0.1", "-p", &self.mosquitto.port.to_string()])
                .args(["-t", &m.destination.name, "-q", &self.qos.to_string()]);
            match self.version {
                MqttVersion::V5 => {
                    command.args(["-V", "mqttv5"]);
                    if let Some(ct) = &m.content_type {
                        command.args(["-D", "publish", "content-type", ct]);
                    }
                    for (name, value) in &m.headers {
                        command.args(["-D", "publish", "user-property", name]);
                        command.arg(String::from_utf8(value.clone()).unwrap());
                    }
                }
                MqttVersion::V311 => {
                    assert!(m.headers.is_empty() && m.content_type.is_none(), "{m:?}");
                    command.args(["-V", "mqttv311"]);
                }
            }
            command
                .arg("-m")
                .arg(String::from_utf8(m.payload.clone()).unwrap());
            let out = command.output().await.unwrap();
            assert!(
                out.status.success(),
                "mosquitto_pub failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    async fn outage_start(&mut self) {
        self.mosquitto.stop();
    }

    async fn outage_end(&mut self) {
        self.mosquitto.restart();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_qos1_transport_contract() {
    compliance::assert_transport_contract(&mut MqttHarness::start(MqttVersion::V5, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_qos1_transport_contract() {
    compliance::assert_transport_contract(&mut MqttHarness::start(MqttVersion::V311, 1)).await;
}

/// QoS 2 (PUBREC/PUBREL/PUBCOMP) in both versions: the round trip and the
/// redelivery of what was not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_round_trip_and_redelivery_v5_and_v311() {
    for version in [MqttVersion::V5, MqttVersion::V311] {
        let mut h = MqttHarness::start(version, 2);
        compliance::check_round_trip(&mut h).await;
        compliance::check_redelivery_after_restart(&mut h).await;
    }
}

#[tokio::test]
async fn v311_refuses_headers_instead_of_dropping_them() {
    let mosquitto = common::Mosquitto::start("");
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, MqttVersion::V311);
    let mut sink = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("x"),
        &common::unique("sink"),
        fast_retry(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink
        .send(vec![message("x", 1, true), message("x/+", 2, false)])
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], Outcome::Rejected { reason } if reason.contains("3.1.1")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], Outcome::Rejected { reason } if reason.contains("topic")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn mosquitto_sub_reads_what_we_publish() {
    let mosquitto = common::Mosquitto::start("");
    let mut sub = common::MosquittoSub::start(
        mosquitto.port,
        "out/#",
        1,
        &["-V", "5", "-F", "%t|%C|%P|%p"],
    );
    sub.wait_subscribed();
    let broker = MqttBrokerConfig::new("127.0.0.1", mosquitto.port, MqttVersion::V5);
    let mut sink = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("out/x"),
        &common::unique("sink"),
        fast_retry(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink.send(vec![message("out/x", 7, true)]).await.unwrap();
    assert!(outcomes[0].is_confirmed());
    let lines = sub.messages();
    let line = lines.join("\n");
    assert_eq!(
        line.trim(),
        "out/x|application/json|specversion:1.0 id:7|{\"n\":7}",
        "{line}"
    );
}
