//! Two organisations as on the internet (thesis 7.4.3): `unix.ar` publishes
//! flows on its embedded MQTT broker, `emiliano.ar` keeps its flows on NATS;
//! each publishes its zone (into one BIND9 over RFC 2136, or as its own
//! embedded authoritative server), and emiliano.ar finds unix.ar's FNAA
//! through DNS alone and talks to it over TLS (a test CA). Outsiders write and read the events: `mosquitto_pub`
//! into unix.ar's flow, Python `nats-py` out of emiliano.ar's.
#![allow(clippy::unwrap_used)]

#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;
#[path = "../fns/tests/support/mod.rs"]
mod dns;

mod common;
#[path = "federation/mod.rs"]
mod org;

use common::publish_event;
use org::*;

#[test]
fn a_user_subscribes_to_another_organisations_flow_through_bind9_and_tls() {
    let named = shared_bind9();
    let (unix, emiliano, nats, _certs) = two_organisations(Some(&named));
    let mut publisher = unix.host.session("test", "test");
    publisher.ok("CREATE FLOW time.flows.unix.ar PUBLIC");
    // What emiliano.ar will find, as `dig` sees it in BIND9.
    let srv = dns::dig_data(named.address, "_flow._tcp.time.flows.unix.ar", "SRV");
    assert!(srv.iter().any(|r| r.ends_with(" fnaa.unix.ar.")), "{srv:?}");
    let a = dns::dig_data(named.address, "fnaa.unix.ar", "A");
    assert_eq!(a, ["127.0.0.1"]);

    // Thesis 7.4.3, across the two hosts.
    let mut subscriber = emiliano.host.session("emiliano", "emiliano");
    let copy =
        subscribed(&subscriber.send("SUBSCRIBE time.flows.unix.ar LOCAL time.flows.emiliano.ar"));
    assert!(
        copy.ends_with(".time.flows.unix.ar") && copy.len() == "ksdj898.time.flows.unix.ar".len(),
        "{copy}"
    );
    let listed = wait_listed(&mut subscriber, &copy);
    assert!(
        listed
            .iter()
            .any(|l| l.contains("source=time.flows.unix.ar")
                && l.contains("local=time.flows.emiliano.ar")
                && l.contains("fnaa=fnaa.unix.ar")
                && l.contains("state=active")),
        "{listed:?}"
    );
    // The publisher sees the copy it made, as any subscription to its flow.
    wait_listed(&mut publisher, &copy);

    // Events published by an outsider at unix.ar come out at emiliano.ar.
    publish(unix.mqtt_port, "time.flows.unix.ar", 0, 20);
    let ids = read_ids(&nats, "time_flows_emiliano_ar", 20, 30);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 20, "all 20 events arrive: {ids:?}");
    let described = subscriber.ok(&format!("DESCRIBE SUBSCRIPTION {copy}"));
    assert!(
        described.contains(&"state=active".to_owned()),
        "{described:?}"
    );
    assert!(
        described
            .iter()
            .any(|l| l.starts_with("deliver=running events_in=") && l.contains("events_out=")),
        "{described:?}"
    );

    // The publisher revokes: emiliano.ar notices and stops.
    publisher.ok(&format!("UNSUBSCRIBE {copy}"));
    let listed = wait_listed(&mut subscriber, "state=revoked");
    assert!(listed.iter().any(|l| l.starts_with(&copy)), "{listed:?}");
    publish(unix.mqtt_port, "time.flows.unix.ar", 100, 5);
    let late = read_ids(&nats, "time_flows_emiliano_ar", 1, 2);
    assert!(
        late.is_empty(),
        "events after the revocation arrived: {late:?}"
    );
    // Only UNSUBSCRIBE is left to the subscriber; the local flow stays.
    subscriber.ok(&format!("UNSUBSCRIBE {copy}"));
    assert!(
        !subscriber
            .ok("LIST SUBSCRIPTIONS")
            .iter()
            .any(|l| l.contains(&copy))
    );
    assert!(
        flows_of(&mut subscriber, "flows.emiliano.ar")
            .iter()
            .any(|l| l.contains("time.flows.emiliano.ar"))
    );
}

#[test]
fn the_subscriber_unsubscribes_on_both_hosts_and_failures_leave_nothing() {
    let (unix, emiliano, _nats, _certs) = two_organisations(None);
    let mut publisher = unix.host.session("test", "test");
    publisher.ok("CREATE FLOW time.flows.unix.ar PUBLIC");
    publisher.ok("CREATE FLOW secret.flows.unix.ar");
    let mut subscriber = emiliano.host.session("emiliano", "emiliano");

    // The subscriber's UNSUBSCRIBE ends the copy at the publisher too.
    let copy =
        subscribed(&subscriber.send("SUBSCRIBE time.flows.unix.ar LOCAL clock.flows.emiliano.ar"));
    wait_listed(&mut publisher, &copy);
    subscriber.ok(&format!("UNSUBSCRIBE {copy}"));
    let listed = publisher.ok("LIST SUBSCRIPTIONS");
    assert!(!listed.iter().any(|l| l.contains(&copy)), "{listed:?}");
    assert!(
        !flows_of(&mut publisher, "flows.unix.ar")
            .iter()
            .any(|l| l.contains(&copy))
    );

    // No such flow in DNS: 556, naming DNS; the local flow is not left.
    let reply = subscriber.send("SUBSCRIBE missing.flows.unix.ar LOCAL a.flows.emiliano.ar");
    assert!(
        reply[0].starts_with("556 ")
            && reply[0].contains("no FNAA found for missing.flows.unix.ar"),
        "{reply:?}"
    );
    // A private flow: the publisher refuses anonymous readers.
    let reply = subscriber.send("SUBSCRIBE secret.flows.unix.ar LOCAL b.flows.emiliano.ar");
    assert!(
        reply[0].starts_with("556 ") && reply[0].contains("551"),
        "{reply:?}"
    );
    // Without LOCAL there is nowhere to deliver here.
    let reply = subscriber.send("SUBSCRIBE time.flows.unix.ar");
    assert!(reply[0].starts_with("501 "), "{reply:?}");
    let flows = flows_of(&mut subscriber, "flows.emiliano.ar");
    assert!(
        !flows
            .iter()
            .any(|l| l.contains("a.flows") || l.contains("b.flows")),
        "{flows:?}"
    );

    // The publisher's FNAA down: 455, and nothing left behind.
    drop(unix);
    let reply = subscriber.send("SUBSCRIBE time.flows.unix.ar LOCAL c.flows.emiliano.ar");
    assert!(reply[0].starts_with("45"), "{reply:?}");
    assert!(
        !flows_of(&mut subscriber, "flows.emiliano.ar")
            .iter()
            .any(|l| l.contains("c.flows")),
    );
}

/// Thesis 4.2.2: unix.ar's clock reaches emiliano.ar, a processor there
/// keeps the alarms in a public flow of its own, and unix.ar subscribes to
/// that one: events go out and come back through both FNAAs.
#[test]
fn bidirectional_subscriptions_with_a_processor_in_between() {
    let named = shared_bind9();
    let (unix, emiliano, _nats, _certs) = two_organisations(Some(&named));
    let mut at_unix = unix.host.session("test", "test");
    at_unix.ok("CREATE FLOW time.flows.unix.ar PUBLIC");
    let mut at_emiliano = emiliano.host.session("emiliano", "emiliano");
    subscribed(&at_emiliano.send("SUBSCRIBE time.flows.unix.ar LOCAL time.flows.emiliano.ar"));
    at_emiliano.ok("CREATE FLOW alarms.flows.emiliano.ar PUBLIC");
    at_emiliano.ok(
        r#"CREATE PROCESSOR keep.flows.emiliano.ar PLUGIN signal INPUT time.flows.emiliano.ar OUTPUT alarms.flows.emiliano.ar CONFIG {"types":"*.alarm"}"#,
    );
    // And back: unix.ar subscribes to emiliano.ar's flow made of its own.
    subscribed(&at_unix.send("SUBSCRIBE alarms.flows.emiliano.ar LOCAL alarms.flows.unix.ar"));

    let mut reader = brokers::MosquittoSub::start(
        unix.mqtt_port,
        "alarms.flows.unix.ar",
        2,
        &["-V", "mqttv311"],
    );
    reader.wait_subscribed();
    for (id, kind) in [
        ("t1", "clock.tick"),
        ("a1", "clock.alarm"),
        ("t2", "clock.tick"),
        ("a2", "door.alarm"),
    ] {
        publish_event(unix.mqtt_port, "time.flows.unix.ar", id, kind);
    }
    let ids: Vec<String> = reader
        .messages()
        .iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(m).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["a1", "a2"], "only the alarms come back, in order");
}

#[test]
fn nothing_is_lost_when_either_host_is_killed_mid_stream() {
    nothing_is_lost_across_kills("direct", "");
}
