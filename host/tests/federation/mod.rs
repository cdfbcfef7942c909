//! Two organisations as on the internet, for the federation tests:
//! `fnaa serve` hosts with their own zones, brokers and a test CA, and the
//! outside clients that write and read their flows.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{Host, Session, add_user, free_ports, publish_event, python};
use super::{brokers, dns};

/// Where an organisation publishes its zone and resolves others'.
pub enum Dns<'a> {
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
pub struct Org {
    pub dir: tempfile::TempDir,
    pub host: Host,
    pub dns_port: u16,
    pub mqtt_port: u16,
}

/// Starts an `fnaa serve` for `domain` (zone `domain`, host name
/// `fnaa.<domain>`, user `user` owning `flows.<domain>`), FNAP in clear on
/// loopback for the test's sessions and over TLS for other FNAAs.
pub fn organisation(domain: &str, user: &str, ca: &brokers::TestCa, dns: &Dns, extra: &str) -> Org {
    organisation_with(domain, user, ca, dns, "", extra)
}

/// [`organisation`] with `fnap` added to its `[fnap]` section.
pub fn organisation_with(
    domain: &str,
    user: &str,
    ca: &brokers::TestCa,
    dns: &Dns,
    fnap_extra: &str,
    extra: &str,
) -> Org {
    let dir = tempfile::tempdir().unwrap();
    let [fnap, fnap_tls, dns_port, mqtt_port] = free_ports();
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
pub fn two_organisations(
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
pub fn publish(mqtt_port: u16, topic: &str, first: usize, n: usize) {
    for i in first..first + n {
        publish_event(mqtt_port, topic, &format!("e{i}"), "clock.tick");
    }
}

/// Reads the JetStream stream of emiliano.ar's flow with `nats-py` for
/// `seconds`, or until `want` distinct events came; prints their ids. A durable
/// consumer: each read goes on where the last one stopped.
pub const READ: &str = r#"
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

pub fn read_ids(
    nats: &brokers::NatsServer,
    stream: &str,
    want: usize,
    seconds: u32,
) -> Vec<String> {
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
pub fn subscribed(reply: &[String]) -> String {
    assert_eq!(reply.len(), 3, "{reply:?}");
    assert_eq!(
        (reply[0].as_str(), reply[2].as_str()),
        ("220 DATA", "220 OK")
    );
    reply[1].clone()
}

/// Waits until `LIST SUBSCRIPTIONS` has a line containing `wanted`.
pub fn wait_listed(session: &mut Session, wanted: &str) -> Vec<String> {
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
pub fn shared_bind9() -> dns::Named {
    dns::Named::start(&[
        dns::Zone::dynamic("unix.ar"),
        dns::Zone::dynamic("emiliano.ar"),
    ])
}

pub fn flows_of(session: &mut Session, namespace: &str) -> Vec<String> {
    session.ok(&format!("LIST FLOWS {namespace}"))
}

/// Publishes `n` CloudEvents `c0..` into unix.ar's flow on its NATS server
/// with `nats-py`, each acknowledged by JetStream, `pause` seconds apart.
pub const PUBLISH: &str = r#"
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
pub fn on_nats(nats: &brokers::NatsServer, more: &str) -> String {
    format!(
        "[flows]\nbroker = \"nats\"\n{more}\n[brokers.connections.nats]\ntype = \"nats\"\nservers = [\"nats://127.0.0.1:{}\"]\n",
        nats.port
    )
}

pub fn nothing_is_lost_across_kills(mode: &str, publisher_flows: &str) {
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

impl Org {
    /// `kill -9` of the host, then the same host started again on its
    /// configuration, store and ports.
    pub fn kill_and_restart(&mut self) {
        self.host.kill();
        let path = self.dir.path().join("fnaa.toml");
        self.host = Host::start(self.dir.path(), &path, self.host.fnap_port);
    }
}
