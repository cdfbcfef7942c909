//! Limits and bad input: the session gets a clear reply and survives
//! where it should.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Raw, TestHost, test_config};

#[tokio::test]
async fn bad_input_gets_clear_replies_and_the_session_survives() {
    let mut config = test_config();
    config.fnap.max_line_length = 128;
    let host = TestHost::start(config).await;
    let mut raw = host.raw().await;
    raw.expect("220 fnaa.unix.ar FNAA").await;

    raw.code("CREATE FLOW time.flows.unix.ar", 530).await;
    raw.code("LIST FLOWS", 530).await;
    raw.code("FROBNICATE", 500).await;
    raw.code("", 500).await;
    raw.code(&"X".repeat(10_000), 500).await;
    raw.send_bytes(b"\xff\xfe\x00\x01junk\r\n").await;
    raw.expect_code(500).await;
    raw.code("AUTHENTICATE KERBEROS_V4", 504).await;
    raw.code("AUTHENTICATE", 501).await;
    raw.exchange("AUTHENTICATE PLAIN", "220 OK").await;
    raw.code("not base64!", 501).await;
    raw.exchange("AUTHENTICATE PLAIN", "220 OK").await;
    raw.code("dGVzdA==", 501).await; // "test": not a PLAIN message
    raw.exchange("AUTHENTICATE PLAIN", "220 OK").await;
    raw.code("*", 501).await; // cancelled
    raw.exchange("AUTHENTICATE PLAIN", "220 OK").await;
    raw.code(&"A".repeat(500), 500).await;
    raw.code("AUTHENTICATE SCRAM-SHA-256 bm90IHNjcmFt", 501)
        .await; // "not scram"
    // Still alive, and logging in works.
    raw.exchange("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==", "220 Authenticated")
        .await;
    raw.code("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==", 503).await;
    raw.code("STARTTLS", 503).await;
    raw.code("CREATE FLOW a..flows.unix.ar", 553).await;
    raw.code("DESCRIBE FLOW", 501).await;
    raw.code("LIST THINGS", 501).await;
    raw.code("NOOP extra", 501).await;
    raw.code(
        &format!("CREATE FLOW {}.flows.unix.ar", "a".repeat(64)),
        553,
    )
    .await;
    raw.exchange(
        "CREATE FLOW time.flows.unix.ar",
        "220 OK time.flows.unix.ar",
    )
    .await;
    // A line split in the middle of a UTF-8 character, and bare LF.
    raw.send_bytes("DESCRIBE FLOW t\u{e9}".as_bytes()).await;
    raw.send_bytes(b"st.flows.unix.ar\n").await;
    raw.expect_code(553).await;
    raw.exchange("NOOP", "220 OK").await;
}

#[tokio::test]
async fn wrong_passwords_are_throttled() {
    let mut config = test_config();
    config.fnap.login_failures_per_connection = 2;
    config.fnap.login_failures_before_throttle = 3;
    let host = TestHost::start(config).await;

    let mut raw = host.raw().await;
    raw.expect("220 fnaa.unix.ar FNAA").await;
    // \0test\0wrong
    raw.code("AUTHENTICATE PLAIN AHRlc3QAd3Jvbmc=", 535).await;
    raw.code("AUTHENTICATE PLAIN AHRlc3QAd3Jvbmc=", 535).await;
    raw.expect_code(421).await; // too many failures on this connection
    assert!(raw.closed().await);

    let mut raw = host.raw().await;
    raw.expect("220 fnaa.unix.ar FNAA").await;
    // An unknown user fails like a wrong password.
    raw.code("AUTHENTICATE PLAIN AG5vYm9keQB0ZXN0", 535).await;
    // Three failures from this address: even the right password waits.
    raw.code("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==", 454).await;
    raw.exchange("QUIT", "221 fnaa.unix.ar closing connection")
        .await;
}

#[tokio::test]
async fn idle_sessions_are_closed() {
    let mut config = test_config();
    config.fnap.idle_timeout_secs = 1;
    let host = TestHost::start(config).await;
    let mut raw = host.logged_in().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    raw.exchange("NOOP", "220 OK").await; // resets the timer
    let started = std::time::Instant::now();
    let reply = raw.expect_code(421).await;
    assert!(reply.contains("idle"), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(raw.closed().await);
}

#[tokio::test]
async fn connection_limit() {
    let mut config = test_config();
    config.fnap.max_connections = 2;
    let host = TestHost::start(config).await;
    let mut first = host.raw().await;
    first.expect("220 fnaa.unix.ar FNAA").await;
    let mut second = host.raw().await;
    second.expect("220 fnaa.unix.ar FNAA").await;
    let mut third = host.raw().await;
    let reply = third.expect_code(421).await;
    assert!(reply.contains("too many connections"), "{reply}");
    assert!(third.closed().await);
    first
        .exchange("QUIT", "221 fnaa.unix.ar closing connection")
        .await;
    assert!(first.closed().await);
    // The slot is free again.
    let mut again = None;
    for _ in 0..50 {
        let mut raw = Raw::connect(host.fnap).await;
        if raw.line().await.as_deref() == Some("220 fnaa.unix.ar FNAA") {
            again = Some(raw);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some());
}

#[tokio::test]
async fn commands_that_take_too_long_time_out() {
    use fnaa_control::names::DnsName;
    use fnaa_control::provision::{FlowProvisioner, ProvisionError};
    use fnaa_control::store::BrokerBinding;
    use std::sync::Arc;

    /// A broker that takes 3 s to create a queue.
    struct SlowBroker;
    #[async_trait::async_trait]
    impl FlowProvisioner for SlowBroker {
        async fn create_queue(&self, flow: &DnsName) -> Result<BrokerBinding, ProvisionError> {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(BrokerBinding {
                broker_type: "kafka".into(),
                topic: flow.to_string(),
                servers: vec![],
                tls: false,
            })
        }
        async fn delete_queue(
            &self,
            _: &DnsName,
            _: Option<&BrokerBinding>,
        ) -> Result<(), ProvisionError> {
            Ok(())
        }
    }

    let mut config = test_config();
    config.fnap.command_timeout_secs = 1;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let fakes = common::Fakes::new();
    let mut backends = fakes.backends();
    backends.provisioner = Arc::new(SlowBroker);
    config.store.path = dir.path().join("state.redb");
    let store = Arc::new(fnaa_control::store::RedbStore::open(&config.store.path).unwrap());
    let plane = fnaa_control::ControlPlane::start_with_store(&config, store, backends, None)
        .await
        .unwrap();
    let service = plane.service().clone();
    service
        .add_user(&fnaa_control::service::Principal::Operator, "test", "test")
        .await
        .unwrap();
    service
        .create_namespace(
            &fnaa_control::service::Principal::Operator,
            &common::name("flows.unix.ar"),
            Some("test"),
        )
        .await
        .unwrap();
    let address = plane.fnap_addr().unwrap();
    let shutdown = fnaa_control::CancellationToken::new();
    tokio::spawn(plane.run(shutdown.clone()));

    let mut raw = Raw::connect(address).await;
    raw.expect("220 fnaa.unix.ar FNAA").await;
    raw.exchange("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==", "220 Authenticated")
        .await;
    raw.code("CREATE FLOW slow.flows.unix.ar", 451).await;
    raw.code("DESCRIBE FLOW slow.flows.unix.ar", 450).await; // still being created
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        raw.data("DESCRIBE FLOW slow.flows.unix.ar")
            .await
            .contains(&"flow=slow.flows.unix.ar".to_owned())
    );
    shutdown.cancel();
}

#[tokio::test]
async fn graceful_shutdown_tells_waiting_sessions() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.logged_in().await;
    let address = host.fnap;
    host.shutdown.cancel();
    let reply = raw.expect_code(421).await;
    assert!(reply.contains("shutting down"), "{reply}");
    assert!(raw.closed().await);
    host.task.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}
