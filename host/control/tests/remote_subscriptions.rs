//! Subscriptions to flows of other organisations (docs/fnap.md 5.9), with
//! the other FNAA in memory: what is recorded and started, what a failure
//! leaves (nothing), revocation and UNSUBSCRIBE. The same over real DNS,
//! TLS and brokers is `host/tests/federation.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, name, test_config};
use fnaa_control::provision::PeerError;
use fnaa_control::service::{AnonymousSession, CAPABILITY_TRACE};
use fnaa_control::store::{BrokerBinding, RemoteState};

/// A host whose `test` owns flows.unix.ar, and another organisation that
/// offers `time.flows.remote.example` on its MQTT broker.
async fn host() -> TestHost {
    let host = TestHost::start(test_config()).await;
    host.fakes.peers.offer(
        &name("time.flows.remote.example"),
        BrokerBinding {
            broker_type: "mqtt".into(),
            topic: "time.flows.remote.example".into(),
            servers: vec!["mqtt.remote.example:1883".into()],
            tls: true,
        },
    );
    host
}

/// Subscribes `raw`'s user to the remote flow, delivered into `local`;
/// returns the copy.
async fn subscribe(raw: &mut common::Raw, local: &str) -> String {
    raw.data(&format!(
        "SUBSCRIBE time.flows.remote.example LOCAL {local}"
    ))
    .await
    .remove(0)
}

#[tokio::test]
async fn a_remote_subscription_is_recorded_and_reads_the_publishers_copy() {
    let host = host().await;
    let mut raw = host.logged_in().await;
    let lines = raw
        .data("SUBSCRIBE time.flows.remote.example LOCAL time.flows.unix.ar")
        .await;
    assert_eq!(lines, ["copy001.time.flows.remote.example"]);
    assert_eq!(
        host.fakes.peers.copies(),
        [name("copy001.time.flows.remote.example")]
    );

    // One pipeline: the publisher's copy, read at its broker, into ours.
    let (spec, _) = host
        .fakes
        .pipelines
        .get("subscription/copy001.time.flows.remote.example/deliver")
        .unwrap();
    assert!(spec.inputs[0].remote);
    assert_eq!(spec.inputs[0].binding.servers, ["mqtt.remote.example:1883"]);
    assert_eq!(
        spec.inputs[0].binding.topic,
        "copy001.time.flows.remote.example"
    );
    assert!(!spec.outputs[0].remote);
    assert_eq!(spec.outputs[0].flow, name("time.flows.unix.ar"));
    assert!(
        host.fakes
            .pipelines
            .get("subscription/copy001.time.flows.remote.example/publish")
            .is_none(),
        "the publisher copies; this host does not"
    );

    let listed = raw.data("LIST SUBSCRIPTIONS").await;
    assert_eq!(
        listed,
        [
            "copy001.time.flows.remote.example source=time.flows.remote.example local=time.flows.unix.ar subscriber=test fnaa=fnaa.remote.example state=active"
        ]
    );
    // The capability is kept, and never shown.
    let stored = host
        .service
        .store()
        .subscription(&name("copy001.time.flows.remote.example"))
        .await
        .unwrap()
        .unwrap();
    let remote = stored.remote.unwrap();
    assert!(remote.capability.0.len() >= 32);
    assert!(!format!("{remote:?}").contains(&remote.capability.0));
}

#[tokio::test]
async fn failures_name_the_step_and_leave_nothing_behind() {
    let host = host().await;
    let mut raw = host.logged_in().await;
    let reply = raw
        .code(
            "SUBSCRIBE nope.flows.remote.example LOCAL a.flows.unix.ar",
            556,
        )
        .await;
    assert!(
        reply.contains("no FNAA found for nope.flows.remote.example"),
        "{reply}"
    );

    host.fakes.peers.fail(Some(PeerError::Unavailable {
        step: "connecting to fnaa.remote.example at 192.0.2.1:61000".into(),
        reason: "connection refused".into(),
    }));
    let reply = raw
        .code(
            "SUBSCRIBE time.flows.remote.example LOCAL b.flows.unix.ar",
            455,
        )
        .await;
    assert!(
        reply.contains("connecting to fnaa.remote.example"),
        "{reply}"
    );
    host.fakes.peers.fail(Some(PeerError::Refused {
        fnaa: "fnaa.remote.example".into(),
        step: "SUBSCRIBE time.flows.remote.example".into(),
        code: 551,
        text: "anonymous sessions may only read public flows".into(),
    }));
    let reply = raw
        .code(
            "SUBSCRIBE time.flows.remote.example LOCAL c.flows.unix.ar",
            556,
        )
        .await;
    assert!(reply.contains("551 anonymous sessions"), "{reply}");
    host.fakes.peers.fail(None);

    // The local flows made for them are gone again; nothing runs.
    let flows = raw.data("LIST FLOWS flows.unix.ar").await;
    assert!(flows.is_empty(), "{flows:?}");
    assert!(host.fakes.pipelines.pipelines().is_empty());
    assert!(host.fakes.peers.copies().is_empty());

    // Nowhere to deliver: LOCAL is required for a remote flow.
    let reply = raw.code("SUBSCRIBE time.flows.remote.example", 501).await;
    assert!(reply.contains("LOCAL"), "{reply}");
    // A pipeline that cannot start ends the copy at the publisher.
    host.fakes.pipelines.fail_start(Some("runner down"));
    raw.code(
        "SUBSCRIBE time.flows.remote.example LOCAL d.flows.unix.ar",
        452,
    )
    .await;
    host.fakes.pipelines.fail_start(None);
    assert!(host.fakes.peers.copies().is_empty());
}

#[tokio::test]
async fn revocation_stops_the_pipeline_and_unsubscribe_ends_both_sides() {
    let host = host().await;
    let mut raw = host.logged_in().await;
    let first = subscribe(&mut raw, "one.flows.unix.ar").await;
    let second = subscribe(&mut raw, "two.flows.unix.ar").await;

    let described = raw.data(&format!("DESCRIBE SUBSCRIPTION {first}")).await;
    for line in [
        format!("subscription={first}"),
        "source=time.flows.remote.example".to_owned(),
        "local=one.flows.unix.ar".to_owned(),
        "fnaa=fnaa.remote.example".to_owned(),
        "state=active".to_owned(),
    ] {
        assert!(described.contains(&line), "{line} in {described:?}");
    }
    assert!(
        described.iter().any(|l| l.starts_with("deliver=running")),
        "{described:?}"
    );
    // A publisher that cannot be asked: failing, with the reason, and it
    // goes on.
    host.fakes.peers.fail(Some(PeerError::Unavailable {
        step: "connecting to fnaa.remote.example".into(),
        reason: "connection refused".into(),
    }));
    assert_eq!(host.service.check_remote_subscriptions().await.unwrap(), 0);
    let described = raw.data(&format!("DESCRIBE SUBSCRIPTION {first}")).await;
    assert!(
        described.contains(&"state=failing".to_owned()),
        "{described:?}"
    );
    assert!(
        described
            .iter()
            .any(|l| l.starts_with("reason=connecting to fnaa.remote.example failed")),
        "{described:?}"
    );
    host.fakes.peers.fail(None);

    // The publisher ends the first: the next check notices, the second
    // goes on.
    host.fakes.peers.revoke(&name(&first));
    assert_eq!(host.service.check_remote_subscriptions().await.unwrap(), 1);
    assert_eq!(host.service.check_remote_subscriptions().await.unwrap(), 0);
    let deliver = |copy: &str| format!("subscription/{copy}/deliver");
    assert!(host.fakes.pipelines.get(&deliver(&first)).is_none());
    assert!(host.fakes.pipelines.get(&deliver(&second)).is_some());
    let listed = raw.data("LIST SUBSCRIPTIONS").await;
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&first) && l.ends_with("state=revoked")),
        "{listed:?}"
    );
    let described = raw.data(&format!("DESCRIBE SUBSCRIPTION {first}")).await;
    assert!(
        described.contains(&"state=revoked".to_owned()),
        "{described:?}"
    );
    raw.code("DESCRIBE SUBSCRIPTION nope.flows.remote.example", 550)
        .await;
    let stored = host
        .service
        .store()
        .subscription(&name(&first))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        stored.remote.unwrap().state,
        RemoteState::Revoked { .. }
    ));

    // Another user may not end it.
    host.add_user("other", "other", "flows.other.example").await;
    let mut other = host.logged_in_as("other", "other").await;
    other.code(&format!("UNSUBSCRIBE {second}"), 551).await;

    // Unreachable publisher: 455 and nothing changes.
    host.fakes.peers.fail(Some(PeerError::Unavailable {
        step: "connecting".into(),
        reason: "timeout".into(),
    }));
    raw.code(&format!("UNSUBSCRIBE {second}"), 455).await;
    assert!(host.fakes.pipelines.get(&deliver(&second)).is_some());
    host.fakes.peers.fail(None);

    raw.exchange(&format!("UNSUBSCRIBE {first}"), &format!("220 OK {first}"))
        .await;
    raw.exchange(
        &format!("UNSUBSCRIBE {second}"),
        &format!("220 OK {second}"),
    )
    .await;
    assert!(host.fakes.peers.copies().is_empty());
    assert!(host.fakes.pipelines.pipelines().is_empty());
    assert!(raw.data("LIST SUBSCRIPTIONS").await.is_empty());
    // The local flows stay.
    assert_eq!(raw.data("LIST FLOWS flows.unix.ar").await.len(), 2);
}

#[tokio::test]
async fn a_restart_resumes_remote_subscriptions_but_not_revoked_ones() {
    let host = host().await;
    let mut raw = host.logged_in().await;
    let kept = subscribe(&mut raw, "one.flows.unix.ar").await;
    let revoked = subscribe(&mut raw, "two.flows.unix.ar").await;
    host.fakes.peers.revoke(&name(&revoked));
    host.service.check_remote_subscriptions().await.unwrap();
    drop(raw);
    let (dir, fakes) = host.stop().await;
    let fresh = common::Fakes {
        peers: fakes.peers.clone(),
        ..common::Fakes::new()
    };
    let host = TestHost::start_in(dir, test_config(), fresh, None, false).await;
    assert_eq!(
        host.fakes.pipelines.ids(),
        [format!("subscription/{kept}/deliver")]
    );
}

#[test]
fn a_capability_is_one_identity_across_sessions() {
    let address = "192.0.2.7".parse().unwrap();
    let secret = "k".repeat(32);
    let trace = format!("{CAPABILITY_TRACE}{secret}");
    let one = AnonymousSession::from_trace(address, trace.as_bytes());
    let two = AnonymousSession::from_trace(address, trace.as_bytes());
    assert_eq!(one.id, two.id);
    assert!(one.id.starts_with("anonymous-") && !one.id.contains(&secret));
    let other = AnonymousSession::from_trace(
        address,
        format!("{CAPABILITY_TRACE}{}", "j".repeat(32)).as_bytes(),
    );
    assert_ne!(one.id, other.id);
    // Too short, or any other trace: a fresh identity each time.
    let short = format!("{CAPABILITY_TRACE}{}", "k".repeat(31));
    assert_ne!(
        AnonymousSession::from_trace(address, short.as_bytes()).id,
        AnonymousSession::from_trace(address, short.as_bytes()).id
    );
    assert_ne!(
        AnonymousSession::from_trace(address, b"alice@example").id,
        AnonymousSession::from_trace(address, b"alice@example").id
    );
}

/// A host killed during a remote SUBSCRIBE, after the publisher made the
/// copy: the pending record it left makes the next check end that copy.
#[tokio::test]
async fn what_a_subscribe_interrupted_by_a_crash_left_at_the_publisher_is_ended() {
    use fnaa_control::provision::Peers as _;
    use fnaa_control::store::{Capability, Change, RemoteSource, Subscription};
    let host = host().await;
    let mut raw = host.logged_in().await;
    raw.exchange("CREATE FLOW one.flows.unix.ar", "220 OK one.flows.unix.ar")
        .await;
    // What the killed host had done: the pending record, and the
    // publisher's copy made with its capability.
    let capability = Capability("c".repeat(32));
    let source = name("time.flows.remote.example");
    host.fakes
        .peers
        .subscribe(&source, &capability)
        .await
        .unwrap();
    let pending = Subscription {
        id: name("pending-cccccccc.one.flows.unix.ar"),
        source: source.clone(),
        local: Some(name("one.flows.unix.ar")),
        subscriber: "test".into(),
        created_unix: 0,
        client_address: None,
        remote: Some(RemoteSource::pending(capability)),
    };
    host.service
        .store()
        .apply(Change::CreateSubscription(pending))
        .await
        .unwrap();
    assert!(
        raw.data("LIST SUBSCRIPTIONS").await.is_empty(),
        "pending is not listed"
    );
    // A subscription made meanwhile is left alone.
    let kept = subscribe(&mut raw, "two.flows.unix.ar").await;

    host.service.check_remote_subscriptions().await.unwrap();
    assert_eq!(host.fakes.peers.copies(), [name(&kept)]);
    let left: Vec<_> = host
        .service
        .store()
        .subscriptions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(left, [kept]);
}
