//! The MQTT transport through a Mosquitto that speaks only TLS and admits
//! only a user with its password: round trips in MQTT 5 and 3.1.1, a
//! certificate that is really checked, wrong passwords reported (never
//! logged).

#![allow(clippy::unwrap_used)]

mod common;

use common::compliance::monitor;
use common::mosquitto::{fast_retry, message};

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::secret::Secret;
use fnaa_dataplane::transport::mqtt;
use fnaa_dataplane::transport::mqtt::{
    MqttBrokerConfig, MqttSink, MqttSinkConfig, MqttSourceConfig, MqttTlsConfig, MqttVersion,
};
use fnaa_dataplane::transport::{DeliveryMode, Message, Outcome, Sink as _, Source};

use common::compliance;

/// The user the TLS brokers of these tests admit, its password, and a
/// wrong one. Distinctive, so that a log search finds them.
const USER: &str = "fnaa-edge";
const PASSWORD: &str = "pw-7f3a9c-correct-horse";
const WRONG_PASSWORD: &str = "pw-0b1d2e-wrong-battery";

/// `mosquitto` (started with [`common::Mosquitto::start_tls`]) as user
/// [`USER`] with `password`, verifying its certificate against `ca_file`
/// (`None`: the system's CA bundle).
fn secure_broker(
    mosquitto: &common::Mosquitto,
    version: MqttVersion,
    password: &str,
    ca_file: Option<String>,
) -> MqttBrokerConfig {
    MqttBrokerConfig {
        username: Some(USER.into()),
        password: Some(Secret::new(password)),
        tls: Some(MqttTlsConfig {
            ca_file,
            ..MqttTlsConfig::default()
        }),
        ..MqttBrokerConfig::new("127.0.0.1", mosquitto.port, version)
    }
}

/// Our sink and source through a Mosquitto that speaks only TLS (a
/// certificate for 127.0.0.1 signed by a CA made here) and admits only a
/// user with its password, in MQTT 5 and 3.1.1; a client that does not
/// trust the CA is refused, so the certificate is really checked.
#[tokio::test]
async fn tls_with_user_and_password_round_trip_v5_and_v311() {
    let logs = common::LogCapture::start();
    let mosquitto = common::Mosquitto::start_tls(&[(USER, PASSWORD)]);
    let ca = Some(mosquitto.ca_file().display().to_string());
    for (version, headers) in [(MqttVersion::V5, true), (MqttVersion::V311, false)] {
        let broker = secure_broker(&mosquitto, version, PASSWORD, ca.clone());
        let source_monitor = monitor("secure source");
        let mut source = mqtt::open_source(
            &broker,
            &MqttSourceConfig::new(vec!["secure/#".into()]),
            &common::unique("src"),
            DeliveryMode::AtLeastOnce,
            fast_retry(),
            source_monitor.clone(),
        )
        .unwrap();
        if tokio::time::timeout(Duration::from_secs(20), source.ready())
            .await
            .is_err()
        {
            panic!(
                "MQTT {version:?}: the source did not subscribe through the TLS listener with user and password within 20 s; logs:\n{}",
                logs.text()
            );
        }
        let sink_monitor = monitor("secure sink");
        let mut sink = MqttSink::new(
            &broker,
            &MqttSinkConfig::new("secure/default"),
            &common::unique("sink"),
            fast_retry(),
            sink_monitor.clone(),
        )
        .unwrap();
        let batch: Vec<Message> = (0..20)
            .map(|i| message(&format!("secure/{}", i % 2), i, headers))
            .collect();
        let outcomes = tokio::time::timeout(Duration::from_secs(20), sink.send(batch.clone()))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "MQTT {version:?}: the sink's messages were not confirmed through the TLS listener within 20 s; logs:\n{}",
                    logs.text()
                )
            })
            .unwrap();
        assert!(
            outcomes.iter().all(Outcome::is_confirmed),
            "MQTT {version:?}: the broker did not confirm every message: {outcomes:?}"
        );
        let got = compliance::receive(
            &format!("MQTT {version:?} over TLS"),
            &mut source,
            batch.len(),
            Duration::from_secs(10),
        )
        .await;
        for (sent, received) in batch.iter().zip(&got) {
            assert_eq!(
                &received.message, sent,
                "MQTT {version:?}: a message changed on its way through the TLS broker"
            );
        }
        source
            .acker()
            .ack(got.into_iter().map(|r| r.token).collect())
            .await
            .unwrap();
        assert!(
            !source_monitor.is_down() && !sink_monitor.is_down() && sink_monitor.outages() == 0,
            "MQTT {version:?}: an outage was reported on a working TLS connection; logs:\n{}",
            logs.text()
        );
    }

    // A client that trusts only the system's CAs refuses the broker's
    // certificate: nothing is confirmed, and the alarm says why.
    let untrusting_monitor = monitor("untrusting sink");
    let mut untrusting = MqttSink::new(
        &secure_broker(&mosquitto, MqttVersion::V5, PASSWORD, None),
        &MqttSinkConfig::new("secure/x"),
        &common::unique("untrusting"),
        fast_retry(),
        untrusting_monitor.clone(),
    )
    .unwrap();
    let sent = tokio::time::timeout(
        Duration::from_secs(2),
        untrusting.send(vec![message("secure/x", 99, true)]),
    )
    .await;
    assert!(
        sent.is_err(),
        "a client that does not trust the test CA got a message confirmed: {sent:?}"
    );
    assert!(
        untrusting_monitor.is_down(),
        "no outage reported for a broker whose certificate is not trusted"
    );
    let text = logs.text();
    let alarm = text
        .lines()
        .find(|l| l.contains("ALARM: untrusting sink"))
        .unwrap_or_else(|| panic!("no alarm line for the untrusted certificate; logs:\n{text}"));
    assert!(
        alarm.contains("certificate") || alarm.contains("UnknownIssuer"),
        "the alarm does not say that the certificate is not trusted: {alarm}"
    );
}

/// Credentials end to end, with every log line of every level captured: a
/// pipeline declared in TOML (user, password, TLS) moves events through a
/// TLS Mosquitto; a second pipeline whose sink has a wrong password, and a
/// source with a wrong password, report the outage once with the broker's
/// reason (bad user name or password) and deliver nothing; no password,
/// right or wrong, appears in the logs or in the configuration's `Debug`.
#[tokio::test]
async fn wrong_password_is_reported_and_no_password_is_ever_logged() {
    use fnaa_dataplane::DataPlane;
    use fnaa_dataplane::pipeline::native::NativePlugins;
    use fnaa_event::Event;
    use fnaa_event::binding::{Binding, Codec};

    let logs = common::LogCapture::start();
    let mosquitto = common::Mosquitto::start_tls(&[(USER, PASSWORD)]);
    let ca = mosquitto.ca_file().display().to_string();
    let (good, bad) = (common::unique("good"), common::unique("bad"));
    let toml_text = format!(
        r#"
        [brokers.embedded_mqtt]
        mode = "never"
        [brokers.connections.secure]
        type = "mqtt"
        host = "127.0.0.1"
        port = {port}
        username = "{USER}"
        password = "{PASSWORD}"
        tls = {{ ca_file = "{ca}" }}
        [brokers.connections.wrong]
        type = "mqtt"
        host = "127.0.0.1"
        port = {port}
        username = "{USER}"
        password = "{WRONG_PASSWORD}"
        tls = {{ ca_file = "{ca}" }}
        [[pipelines]]
        name = "{good}"
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 60 }}
        source = {{ broker = "secure", mqtt = {{ topics = ["in/good"] }} }}
        sink = {{ broker = "secure", mqtt = {{ topic = "out/good" }} }}
        [[pipelines]]
        name = "{bad}"
        retry = {{ initial_interval_ms = 50, max_interval_ms = 300, reminder_interval_s = 60 }}
        source = {{ broker = "secure", mqtt = {{ topics = ["in/bad"] }} }}
        sink = {{ broker = "wrong", mqtt = {{ topic = "out/bad" }} }}
        "#,
        port = mosquitto.port
    );
    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        brokers: fnaa_dataplane::BrokersConfig,
        pipelines: Vec<fnaa_dataplane::PipelineConfig>,
    }
    let doc: Doc = toml::from_str(&toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"));

    let broker = secure_broker(&mosquitto, MqttVersion::V5, PASSWORD, Some(ca.clone()));
    let mut collector = mqtt::open_source(
        &broker,
        &MqttSourceConfig::new(vec!["out/#".into()]),
        &common::unique("collector"),
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        monitor("collector"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), collector.ready())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the collector did not subscribe with the right password within 20 s; logs:\n{}",
                logs.text()
            )
        });
    let plane = DataPlane::start(&doc.brokers, &doc.pipelines, Arc::new(NativePlugins))
        .await
        .unwrap();
    let codec = Codec::new(Binding::Mqtt, &[]).unwrap();
    let mut producer = MqttSink::new(
        &broker,
        &MqttSinkConfig::new("in/good"),
        &common::unique("producer"),
        fast_retry(),
        monitor("producer"),
    )
    .unwrap();
    let mut events = Vec::new();
    for i in 0..10 {
        let topic = if i % 2 == 0 { "in/good" } else { "in/bad" };
        let mut m = codec
            .encode(&Event::new(
                format!("ev-{i}"),
                "/test",
                "org.example.reading",
            ))
            .unwrap();
        m.destination.name = topic.into();
        events.push(m);
    }
    let outcomes = producer.send(events).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");

    // The good pipeline delivers; the bad one delivers nothing.
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while delivered.len() < 5 {
        let Ok(batch) =
            tokio::time::timeout_at(deadline, collector.recv(100, Duration::from_millis(20))).await
        else {
            break;
        };
        delivered.extend(batch.unwrap());
    }
    // Give the bad pipeline time to (wrongly) deliver too.
    if let Ok(more) = tokio::time::timeout(
        Duration::from_secs(1),
        collector.recv(100, Duration::from_millis(20)),
    )
    .await
    {
        delivered.extend(more.unwrap());
    }
    let topics: Vec<&str> = delivered
        .iter()
        .map(|r| r.message.destination.name.as_str())
        .collect();
    assert_eq!(
        topics,
        ["out/good"; 5],
        "the pipeline with the right password should deliver its 5 events, the one with the wrong password none; logs:\n{}",
        logs.text()
    );

    // A source with the wrong password never consumes.
    let wrong_source_monitor = monitor("wrong-password source");
    let wrong_source = mqtt::open_source(
        &secure_broker(&mosquitto, MqttVersion::V311, WRONG_PASSWORD, Some(ca)),
        &MqttSourceConfig::new(vec!["in/#".into()]),
        &common::unique("wrong"),
        DeliveryMode::AtLeastOnce,
        fast_retry(),
        wrong_source_monitor.clone(),
    )
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(2), wrong_source.ready())
            .await
            .is_err(),
        "a source with a wrong password subscribed"
    );
    assert!(
        wrong_source_monitor.is_down(),
        "no outage reported for a source with a wrong password"
    );
    let metrics = plane.metrics();
    let (_, bad_metrics) = metrics.iter().find(|(n, _)| n == &bad).unwrap();
    assert_eq!(
        bad_metrics.events_out, 0,
        "the sink with the wrong password confirmed events: {bad_metrics:?}"
    );
    plane.shutdown(Duration::from_secs(2)).await;
    drop(wrong_source);

    let text = logs.text();
    // One alarm per outage, each with the broker's reason.
    for who in [
        format!("pipeline `{bad}` sink (broker `wrong`)"),
        "wrong-password source".to_owned(),
    ] {
        let alarms: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("ALARM: {who} is unreachable")))
            .collect();
        assert_eq!(
            alarms.len(),
            1,
            "expected one alarm line for {who} (then reminders at most every 60 s); logs:\n{text}"
        );
        assert!(
            alarms[0].contains("BadUserNamePassword") || alarms[0].contains("NotAuthorized"),
            "the alarm for {who} does not say that the credentials were refused: {}",
            alarms[0]
        );
    }
    assert!(
        !text.contains(&format!("ALARM: pipeline `{good}`")),
        "the pipeline with the right password reported an outage; logs:\n{text}"
    );
    for (what, secret) in [("password", PASSWORD), ("wrong password", WRONG_PASSWORD)] {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("the {what} appears in the logs: {line}");
        }
        let debug = format!("{doc:?} {broker:?}");
        assert!(
            !debug.contains(secret),
            "the {what} appears in the configuration's Debug output: {debug}"
        );
    }
}
