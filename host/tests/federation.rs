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

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Host, Session, add_user, free_port, publish_event, python};

/// Where an organisation publishes its zone and resolves others'.
enum Dns<'a> {
    /// Its own embedded authoritative server, and others' flows resolved
    /// through the server at `nameserver` (the system resolver if `None`).
    Embedded { nameserver: Option<u16> },
    /// One BIND9 for everyone: zones updated over RFC 2136 with TSIG,
    /// every flow resolved through it.
    Bind9(&'a dns::Named),
}

impl Dns<'_> {
    /// The `[dns]` section of `domain` (`dns_port` for an embedded server).
    fn section(&self, domain: &str, dns_port: u16) -> String {
        match self {
            Dns::Embedded { nameserver } => format!(
                "[dns]\n{}\n[dns.registry]\ntype = \"embedded\"\nlisten = \"127.0.0.1:{dns_port}\"\nzones = [\"{domain}\"]\n",
                nameserver.map_or(String::new(), |port| format!(
                    "nameserver = \"127.0.0.1:{port}\""
                ))
            ),
            Dns::Bind9(named) => format!(
                "[dns]\nnameserver = \"{0}\"\n\n[dns.registry]\ntype = \"rfc2136\"\nserver = \"{0}\"\nzones = [\"{domain}\"]\ntimeout_ms = 3000\n\n[dns.registry.tsig]\nkey_file = \"{1}\"\n",
                named.address,
                named.key_file.display()
            ),
        }
    }
}

/// One organisation's host: its FNAP ports, DNS port and broker.
struct Org {
    dir: tempfile::TempDir,
    host: Host,
    dns_port: u16,
    mqtt_port: u16,
}

/// Starts an `fnaa serve` for `domain` (zone `domain`, host name
/// `fnaa.<domain>`, user `user` owning `flows.<domain>`), FNAP in clear on
/// loopback for the test's sessions and over TLS for other FNAAs.
fn organisation(domain: &str, user: &str, ca: &brokers::TestCa, dns: &Dns, extra: &str) -> Org {
    organisation_with(domain, user, ca, dns, "", extra)
}

/// [`organisation`] with `fnap` added to its `[fnap]` section.
fn organisation_with(
    domain: &str,
    user: &str,
    ca: &brokers::TestCa,
    dns: &Dns,
    fnap_extra: &str,
    extra: &str,
) -> Org {
    let dir = tempfile::tempdir().unwrap();
    let (fnap, fnap_tls, dns_port, mqtt_port) =
        (free_port(), free_port(), free_port(), free_port());
    let d = dir.path().display();
    let config = format!(
        r#"
[runtime]
cache_dir = "{d}/cache"

[fnap]
listen = "127.0.0.1:{fnap}"
tls_listen = "127.0.0.1:{fnap_tls}"
hostname = "fnaa.{domain}"
login_failure_delay_ms = 0
allow_anonymous = true
# The test talks PLAIN in clear on loopback; other FNAAs use TLS.
allow_plaintext_auth = true
{fnap_extra}

[fnap.tls]
certificate = "{cert}"
private_key = "{key}"

[grpc]
listen = "127.0.0.1:0"

[store]
path = "{d}/control.redb"

[brokers.embedded_mqtt]
listen = "127.0.0.1:{mqtt_port}"

[peers]
ca_file = "{ca}"
check_interval_ms = 200
{extra}
"#,
        cert = ca.cert.display(),
        key = ca.key.display(),
        ca = ca.ca.display(),
    );
    let config = format!("{config}\n{}", dns.section(domain, dns_port));
    let path = dir.path().join("fnaa.toml");
    std::fs::write(&path, config).unwrap();
    add_user(&path, user, user, &format!("flows.{domain}"));
    let host = Host::start(dir.path(), &path, fnap);
    Org {
        dir,
        host,
        dns_port,
        mqtt_port,
    }
}

/// unix.ar (publisher, embedded MQTT) and emiliano.ar (subscriber, NATS),
/// both publishing into and resolving through one BIND9 when `named` is
/// given, else emiliano.ar resolving through unix.ar's own DNS server.
fn two_organisations(
    named: Option<&dns::Named>,
) -> (Org, Org, brokers::NatsServer, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let ca = brokers::TestCa::create_for(
        certs.path(),
        &["fnaa.unix.ar", "fnaa.emiliano.ar", "localhost"],
    );
    let publisher_dns = match named {
        Some(named) => Dns::Bind9(named),
        None => Dns::Embedded { nameserver: None },
    };
    let unix = organisation("unix.ar", "test", &ca, &publisher_dns, "");
    let subscriber_dns = match named {
        Some(named) => Dns::Bind9(named),
        None => Dns::Embedded {
            nameserver: Some(unix.dns_port),
        },
    };
    let nats = brokers::NatsServer::start();
    let emiliano = organisation(
        "emiliano.ar",
        "emiliano",
        &ca,
        &subscriber_dns,
        &format!(
            "[flows]\nbroker = \"nats\"\n\n[brokers.connections.nats]\ntype = \"nats\"\nservers = [\"nats://127.0.0.1:{}\"]\n",
            nats.port
        ),
    );
    (unix, emiliano, nats, certs)
}

/// Publishes structured-mode CloudEvents `e<first>..` (`n` of them) with
/// `mosquitto_pub` into unix.ar's flow `topic`.
fn publish(mqtt_port: u16, topic: &str, first: usize, n: usize) {
    for i in first..first + n {
        publish_event(mqtt_port, topic, &format!("e{i}"), "clock.tick");
    }
}

/// Reads the JetStream stream of emiliano.ar's flow with `nats-py` for
/// `seconds`, or until `want` distinct events came; prints their ids. A durable
/// consumer: each read goes on where the last one stopped.
const READ: &str = r#"
import asyncio, json, sys, time, nats
async def main():
    url, stream, want, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe(">", durable="outsider", stream=stream)
    ids, deadline = [], time.time() + seconds
    while len(set(ids)) < want and time.time() < deadline:
        try:
            msgs = await sub.fetch(50, timeout=0.5)
        except (asyncio.TimeoutError, nats.errors.TimeoutError):
            continue
        for m in msgs:
            headers = m.headers or {}
            ids.append(headers.get("ce-id") or json.loads(m.data)["id"])
            await m.ack()
    print(' '.join(ids))
    await nc.close()
asyncio.run(main())
"#;

fn read_ids(nats: &brokers::NatsServer, stream: &str, want: usize, seconds: u32) -> Vec<String> {
    let url = format!("nats://127.0.0.1:{}", nats.port);
    python(
        "read emiliano.ar's flow",
        READ,
        &[&url, stream, &want.to_string(), &seconds.to_string()],
    )
    .split_whitespace()
    .map(str::to_owned)
    .collect()
}

/// The one data line of a SUBSCRIBE reply (`220 DATA`, copy, `220 OK`).
fn subscribed(reply: &[String]) -> String {
    assert_eq!(reply.len(), 3, "{reply:?}");
    assert_eq!(
        (reply[0].as_str(), reply[2].as_str()),
        ("220 DATA", "220 OK")
    );
    reply[1].clone()
}

/// Waits until `LIST SUBSCRIPTIONS` has a line containing `wanted`.
fn wait_listed(session: &mut Session, wanted: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = session.ok("LIST SUBSCRIPTIONS");
        if listed.iter().any(|l| l.contains(wanted)) {
            return listed;
        }
        assert!(Instant::now() < deadline, "no `{wanted}` in {listed:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One BIND9, authoritative for both organisations' zones, which both
/// update over RFC 2136 and resolve through.
fn shared_bind9() -> dns::Named {
    dns::Named::start(&[
        dns::Zone::dynamic("unix.ar"),
        dns::Zone::dynamic("emiliano.ar"),
    ])
}

fn flows_of(session: &mut Session, namespace: &str) -> Vec<String> {
    session.ok(&format!("LIST FLOWS {namespace}"))
}

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

/// Publishes `n` CloudEvents `c0..` into unix.ar's flow on its NATS server
/// with `nats-py`, each acknowledged by JetStream, `pause` seconds apart.
const PUBLISH: &str = r#"
import asyncio, json, sys, time, nats
async def main():
    url, subject, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    nc = await nats.connect(url)
    js = nc.jetstream()
    for i in range(n):
        event = {"specversion": "1.0", "id": "c%d" % i, "source": "/clock", "type": "clock.tick", "data": {"i": i}}
        await js.publish(subject, json.dumps(event).encode(),
                         headers={"Content-Type": "application/cloudevents+json"})
        time.sleep(pause)
    await nc.close()
asyncio.run(main())
"#;

/// The `[flows]` of a host whose flows live on `nats`, plus `more`.
fn on_nats(nats: &brokers::NatsServer, more: &str) -> String {
    format!(
        "[flows]\nbroker = \"nats\"\n{more}\n[brokers.connections.nats]\ntype = \"nats\"\nservers = [\"nats://127.0.0.1:{}\"]\n",
        nats.port
    )
}

#[test]
fn nothing_is_lost_when_either_host_is_killed_mid_stream() {
    nothing_is_lost_across_kills("direct", "");
}

/// The same in relay mode, chosen by `auto`: the publisher advertises a
/// broker address nobody answers on, so the subscriber's FNAA has the
/// events relayed over FNAP.
#[test]
fn nothing_is_lost_in_relay_mode_when_either_host_is_killed_mid_stream() {
    nothing_is_lost_across_kills("relay", "advertise = [\"127.0.0.1:9\"]\n");
}

fn nothing_is_lost_across_kills(mode: &str, publisher_flows: &str) {
    let certs = tempfile::tempdir().unwrap();
    let ca = brokers::TestCa::create_for(certs.path(), &["fnaa.unix.ar", "fnaa.emiliano.ar"]);
    let unix_nats = brokers::NatsServer::start();
    let mut unix = organisation(
        "unix.ar",
        "test",
        &ca,
        &Dns::Embedded { nameserver: None },
        &on_nats(&unix_nats, publisher_flows),
    );
    let emiliano_nats = brokers::NatsServer::start();
    let mut emiliano = organisation(
        "emiliano.ar",
        "emiliano",
        &ca,
        &Dns::Embedded {
            nameserver: Some(unix.dns_port),
        },
        &on_nats(&emiliano_nats, ""),
    );
    unix.host
        .session("test", "test")
        .ok("CREATE FLOW time.flows.unix.ar PUBLIC");
    let mut subscriber = emiliano.host.session("emiliano", "emiliano");
    let copy =
        subscribed(&subscriber.send("SUBSCRIBE time.flows.unix.ar LOCAL time.flows.emiliano.ar"));
    let described = subscriber.ok(&format!("DESCRIBE SUBSCRIPTION {copy}"));
    assert!(described.contains(&format!("mode={mode}")), "{described:?}");
    drop(subscriber);

    const EVENTS: usize = 300;
    let mut publisher = Command::new("python3")
        .args(["-c", PUBLISH])
        .arg(format!("nats://127.0.0.1:{}", unix_nats.port))
        .args(["time.flows.unix.ar", &EVENTS.to_string(), "0.01"])
        .spawn()
        .unwrap();
    // kill -9 of the subscriber's host, then of the publisher's, each
    // restarted at once, while events flow.
    std::thread::sleep(Duration::from_millis(800));
    emiliano.kill_and_restart();
    std::thread::sleep(Duration::from_millis(800));
    unix.kill_and_restart();
    assert!(publisher.wait().unwrap().success(), "the publisher failed");

    // NATS redelivers what a killed reader had not acknowledged after its
    // ack wait (30 s), so allow for that.
    let ids = read_ids(&emiliano_nats, "time_flows_emiliano_ar", EVENTS, 90);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    let missing: Vec<String> = (0..EVENTS)
        .map(|i| format!("c{i}"))
        .filter(|id| !unique.contains(id))
        .collect();
    eprintln!(
        "federation kill -9 ({mode}): {} events read, {} distinct, {} duplicates, {} missing",
        ids.len(),
        unique.len(),
        ids.len() - unique.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost across the kills: {missing:?}");
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

impl Org {
    /// `kill -9` of the host, then the same host started again on its
    /// configuration, store and ports.
    fn kill_and_restart(&mut self) {
        self.host.kill();
        let path = self.dir.path().join("fnaa.toml");
        self.host = Host::start(self.dir.path(), &path, self.host.fnap_port);
    }
}
