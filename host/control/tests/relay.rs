//! RELAY (docs/fnap.md 5.16) on the publisher's side, line by line, over a
//! copy flow whose events the test appends: chunks and their window,
//! acknowledgements reaching the broker only after ACK, resumption from
//! the last acknowledged chunk, revocation within a second, and refusals.
//! The same between two real hosts is `host/tests/federation.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Raw, TestHost, name, test_config};

const E0: &str = r#"{"specversion":"1.0","id":"e0","source":"/clock","type":"clock.tick"}"#;
const E1: &str = r#"{"specversion":"1.0","id":"e1","source":"/clock","type":"clock.tick"}"#;
const E2: &str = r#"{"specversion":"1.0","id":"e2","source":"/clock","type":"clock.tick"}"#;

/// A host where `test` subscribed to its own flow; returns the copy.
async fn subscribed() -> (TestHost, String) {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.logged_in().await;
    raw.code("CREATE FLOW time.flows.unix.ar", 220).await;
    let copy = raw.data("SUBSCRIBE time.flows.unix.ar").await.remove(0);
    (host, copy)
}

/// Reads one chunk: its header and its event lines.
async fn chunk(raw: &mut Raw) -> (String, Vec<String>) {
    let header = raw.line().await.unwrap();
    let count: usize = header
        .rsplit(' ')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a chunk header: {header}"));
    let mut events = Vec::new();
    for _ in 0..count {
        events.push(raw.line().await.unwrap());
    }
    (header, events)
}

/// Waits until relays of `copy` acknowledged `want` events.
async fn acknowledged(host: &TestHost, copy: &str, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while host.fakes.pipelines.acknowledged(&name(copy)) != want {
        assert!(
            Instant::now() < deadline,
            "acknowledged {} events, not {want}",
            host.fakes.pipelines.acknowledged(&name(copy))
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn chunks_are_acknowledged_only_after_ack_and_resent_to_the_next_relay() {
    let (host, copy) = subscribed().await;
    let pipelines = &host.fakes.pipelines;
    pipelines.append_to_copy(&name(&copy), &[E0, E1]);
    pipelines.append_to_copy(&name(&copy), &[E2]);

    let mut raw = host.logged_in().await;
    raw.exchange(
        &format!("RELAY {copy}"),
        &format!("220 RELAY {copy} window=8"),
    )
    .await;
    assert_eq!(
        chunk(&mut raw).await,
        ("EVENTS 1 2".to_owned(), vec![E0.to_owned(), E1.to_owned()])
    );
    assert_eq!(
        chunk(&mut raw).await,
        ("EVENTS 2 1".to_owned(), vec![E2.to_owned()])
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        pipelines.acknowledged(&name(&copy)),
        0,
        "acknowledged before ACK"
    );
    raw.send("ACK 1").await;
    acknowledged(&host, &copy, 2).await;
    // An ACK of a chunk never sent ends the relay; the session goes on.
    raw.send("ACK 5").await;
    let refused = raw.expect_code(501).await;
    assert!(refused.contains("only chunks up to 2"), "{refused}");
    raw.exchange("NOOP", "220 OK").await;

    // The next relay starts again at the chunk not acknowledged.
    raw.exchange(
        &format!("RELAY {copy} WINDOW 2"),
        &format!("220 RELAY {copy} window=2"),
    )
    .await;
    assert_eq!(
        chunk(&mut raw).await,
        ("EVENTS 1 1".to_owned(), vec![E2.to_owned()])
    );
    raw.send("ack 1").await;
    acknowledged(&host, &copy, 3).await;
    raw.send("DONE").await;
    raw.expect("220 OK relay ended, 0 chunks not acknowledged")
        .await;
    raw.exchange("NOOP", "220 OK").await;
}

#[tokio::test]
async fn the_window_holds_chunks_back_until_acknowledged() {
    let (host, copy) = subscribed().await;
    let pipelines = &host.fakes.pipelines;
    for event in [E0, E1, E2] {
        pipelines.append_to_copy(&name(&copy), &[event]);
    }
    let mut raw = host.logged_in().await;
    raw.exchange(
        &format!("RELAY {copy} WINDOW 1"),
        &format!("220 RELAY {copy} window=1"),
    )
    .await;
    assert_eq!(chunk(&mut raw).await.0, "EVENTS 1 1");
    // Nothing more until ACK.
    let early = tokio::time::timeout(Duration::from_millis(300), raw.line()).await;
    assert!(early.is_err(), "sent beyond the window: {early:?}");
    raw.send("ACK 1").await;
    assert_eq!(
        chunk(&mut raw).await,
        ("EVENTS 2 1".to_owned(), vec![E1.to_owned()])
    );
    assert_eq!(pipelines.acknowledged(&name(&copy)), 1);
    raw.send("ACK 2").await;
    assert_eq!(chunk(&mut raw).await.0, "EVENTS 3 1");
}

#[tokio::test]
async fn unsubscribe_ends_the_relay_within_a_second() {
    let (host, copy) = subscribed().await;
    let mut relay = host.logged_in().await;
    relay
        .exchange(
            &format!("RELAY {copy}"),
            &format!("220 RELAY {copy} window=8"),
        )
        .await;
    let mut owner = host.logged_in().await;
    owner.code(&format!("UNSUBSCRIBE {copy}"), 220).await;
    let revoked = Instant::now();
    let ended = relay.expect_code(550).await;
    assert!(
        revoked.elapsed() < Duration::from_secs(1),
        "took {:?}",
        revoked.elapsed()
    );
    assert_eq!(
        ended,
        format!("550 subscription {copy} ended by the publisher")
    );
    relay.exchange("NOOP", "220 OK").await;
}

#[tokio::test]
async fn only_the_subscriber_of_an_existing_copy_may_relay_it() {
    let (host, copy) = subscribed().await;
    host.add_user("other", "other", "flows.other.ar").await;
    let mut other = host.logged_in_as("other", "other").await;
    let refused = other.code(&format!("RELAY {copy}"), 551).await;
    assert!(refused.contains("another subscriber"), "{refused}");
    let mut raw = host.logged_in().await;
    raw.code("RELAY nosuch.time.flows.unix.ar", 550).await;
    raw.code(&format!("RELAY {copy} WINDOW 65"), 501).await;
    let mut anonymous = host.raw().await;
    anonymous.expect("220 fnaa.unix.ar FNAA").await;
    anonymous.code(&format!("RELAY {copy}"), 530).await;
}

#[tokio::test]
async fn a_host_that_offers_no_relay_says_so() {
    let mut config = test_config();
    config.fnap.subscription_modes = vec![fnaa_control::store::TransferMode::Direct];
    let host = TestHost::start(config).await;
    let mut raw = host.logged_in().await;
    raw.code("CREATE FLOW time.flows.unix.ar", 220).await;
    let copy = raw.data("SUBSCRIBE time.flows.unix.ar").await.remove(0);
    let described = raw.data(&format!("DESCRIBE FLOW {copy}")).await;
    assert!(
        described.contains(&"modes=direct".to_owned()),
        "{described:?}"
    );
    let refused = raw.code(&format!("RELAY {copy}"), 502).await;
    assert!(refused.contains("subscription_modes"), "{refused}");
}
