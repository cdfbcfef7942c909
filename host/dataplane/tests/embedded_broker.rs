//! The embedded MQTT broker: plain and TLS listeners, read and written by
//! outsiders (`mosquitto_pub`, `mosquitto_sub`).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use fnaa_dataplane::embedded_mqtt::{EmbeddedMqtt, EmbeddedMqttConfig, EmbeddedTls};

fn localhost(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_talk_to_the_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::TestCa::create(dir.path());
    let tls_port = common::free_port();
    let config = EmbeddedMqttConfig {
        listen: localhost(common::free_port()),
        tls_listen: Some(localhost(tls_port)),
        tls: Some(EmbeddedTls {
            certificate: ca.cert.clone(),
            private_key: ca.key.clone(),
        }),
        ..EmbeddedMqttConfig::default()
    };
    let broker = EmbeddedMqtt::start(&config).await.unwrap();
    assert_eq!(broker.tls_listen(), Some(localhost(tls_port)));

    let cafile = ca.ca.to_str().unwrap().to_owned();
    let mut sub = common::MosquittoSub::start(
        tls_port,
        "edge/readings",
        1,
        // By name: OpenSSL sends an IP address as SNI, which rustls refuses.
        &["-h", "localhost", "--cafile", &cafile, "-V", "mqttv311"],
    );
    sub.wait_subscribed();
    let published = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &tls_port.to_string()])
        .args(["--cafile", &cafile, "-V", "mqttv311", "-q", "1"])
        .args(["-t", "edge/readings", "-m", "21.5"])
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "mosquitto_pub over TLS: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    assert_eq!(sub.messages(), ["21.5"]);

    // A client that does not trust the certificate is refused.
    let untrusting = dir.path().join("other-ca");
    std::fs::create_dir(&untrusting).unwrap();
    let other = common::TestCa::create(&untrusting);
    let refused = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &tls_port.to_string()])
        .args(["--cafile", other.ca.to_str().unwrap(), "-V", "mqttv311"])
        .args(["-t", "edge/readings", "-m", "x"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a client with another CA connected"
    );
}

#[tokio::test]
async fn tls_settings_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let config = EmbeddedMqttConfig {
        listen: localhost(common::free_port()),
        tls_listen: Some(localhost(common::free_port())),
        tls: Some(EmbeddedTls {
            certificate: missing.clone(),
            private_key: missing.clone(),
        }),
        ..EmbeddedMqttConfig::default()
    };
    let error = EmbeddedMqtt::start(&config).await.unwrap_err().to_string();
    assert!(error.contains("missing.pem"), "{error}");

    let not_pem = dir.path().join("junk.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let config = EmbeddedMqttConfig {
        tls: Some(EmbeddedTls {
            certificate: not_pem.clone(),
            private_key: not_pem,
        }),
        ..config
    };
    let error = EmbeddedMqtt::start(&config).await.unwrap_err().to_string();
    assert!(
        error.contains("junk.pem") && error.contains("no PEM certificate"),
        "{error}"
    );

    let config = EmbeddedMqttConfig {
        tls: None,
        ..config
    };
    let error = EmbeddedMqtt::start(&config).await.unwrap_err().to_string();
    assert!(
        error.contains("tls_listen") && error.contains("certificate"),
        "{error}"
    );
}
