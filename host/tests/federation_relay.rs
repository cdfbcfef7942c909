//! Relay mode between two organisations (docs/fnap.md 5.16): the
//! publisher's FNAA sends the events of a copy flow over the FNAP session,
//! so its broker need not be reachable from the subscriber. Outsiders
//! write and read the events, as in `federation.rs`.
#![allow(clippy::unwrap_used)]

#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;
#[path = "../fns/tests/support/mod.rs"]
mod dns;

mod common;
#[path = "federation/mod.rs"]
mod org;

use std::time::Duration;

use org::*;

/// The same in relay mode, chosen by `auto`: the publisher advertises a
/// broker address nobody answers on, so the subscriber's FNAA has the
/// events relayed over FNAP.
#[test]
fn nothing_is_lost_in_relay_mode_when_either_host_is_killed_mid_stream() {
    nothing_is_lost_across_kills("relay", "advertise = [\"127.0.0.1:9\"]\n");
}

/// Relay mode (docs/fnap.md 5.16): unix.ar keeps its broker private (it
/// offers `relay` only), so emiliano.ar's FNAA has the events sent over its
/// FNAP session. The publisher revokes one of two subscribers: events
/// published a second later reach the other one only.
#[test]
fn a_private_broker_relays_over_fnap_and_revokes_one_subscriber_within_a_second() {
    let certs = tempfile::tempdir().unwrap();
    let ca = brokers::TestCa::create_for(certs.path(), &["fnaa.unix.ar", "fnaa.emiliano.ar"]);
    let unix = organisation_with(
        "unix.ar",
        "test",
        &ca,
        &Dns::Embedded { nameserver: None },
        "subscription_modes = [\"relay\"]",
        "",
    );
    let nats = brokers::NatsServer::start();
    let emiliano = organisation(
        "emiliano.ar",
        "emiliano",
        &ca,
        &Dns::Embedded {
            nameserver: Some(unix.dns_port),
        },
        &on_nats(&nats, ""),
    );
    let mut publisher = unix.host.session("test", "test");
    publisher.ok("CREATE FLOW time.flows.unix.ar PUBLIC");
    let mut subscriber = emiliano.host.session("emiliano", "emiliano");
    let first =
        subscribed(&subscriber.send("SUBSCRIBE time.flows.unix.ar LOCAL time.flows.emiliano.ar"));
    let second =
        subscribed(&subscriber.send("SUBSCRIBE time.flows.unix.ar LOCAL clock.flows.emiliano.ar"));
    let copy = publisher.ok(&format!("DESCRIBE FLOW {first}"));
    assert!(copy.contains(&"modes=relay".to_owned()), "{copy:?}");
    for subscription in [&first, &second] {
        let described = subscriber.ok(&format!("DESCRIBE SUBSCRIPTION {subscription}"));
        assert!(
            described.contains(&"mode=relay".to_owned())
                && described.contains(&"state=active".to_owned()),
            "{described:?}"
        );
    }

    publish(unix.mqtt_port, "time.flows.unix.ar", 0, 20);
    for stream in ["time_flows_emiliano_ar", "clock_flows_emiliano_ar"] {
        let mut ids = read_ids(&nats, stream, 20, 30);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20, "{stream}: {ids:?}");
    }

    publisher.ok(&format!("UNSUBSCRIBE {first}"));
    std::thread::sleep(Duration::from_secs(1));
    publish(unix.mqtt_port, "time.flows.unix.ar", 100, 5);
    let mut kept = read_ids(&nats, "clock_flows_emiliano_ar", 5, 30);
    kept.sort();
    kept.dedup();
    assert_eq!(kept, ["e100", "e101", "e102", "e103", "e104"]);
    let late = read_ids(&nats, "time_flows_emiliano_ar", 1, 2);
    assert!(
        late.is_empty(),
        "events after the revocation arrived: {late:?}"
    );
    let listed = wait_listed(&mut subscriber, "state=revoked");
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&first) && l.contains("state=revoked")),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&second) && l.contains("state=active")),
        "{listed:?}"
    );
}
