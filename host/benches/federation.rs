//! Events between two organisations' hosts (docs/fnap.md 5.9, 5.16), each
//! with its flows on a Kafka-protocol broker of its own (two tansu): events
//! per second from the publisher's source flow into the subscriber's local
//! flow in direct mode and in relay mode, side by side with `kcat -C |
//! kcat -P` moving the same events between the same two brokers; and the
//! revocation latency: the publisher's UNSUBSCRIBE (after its reply no
//! event enters the copy) and the time until the subscriber shows the
//! subscription `revoked`, p50 and p99.
//!
//! Run: `cargo bench -p fnaa-host --bench federation` (`FNAA_BENCH_EVENTS`,
//! `FNAA_BENCH_ROUNDS`, `FNAA_BENCH_REVOCATIONS` change the load). Needs
//! tansu and kcat, as the tests do. Prints each round and the medians.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../fns/tests/support/mod.rs"]
mod dns;
#[path = "../tests/federation/mod.rs"]
mod org;

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use org::{Dns, Org, organisation, subscribed};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `[flows]` of a host whose flows live on `tansu`.
fn on_kafka(tansu: &brokers::Tansu) -> String {
    format!(
        "[flows]\nbroker = \"kafka\"\n\n[brokers.connections.kafka]\ntype = \"kafka\"\nbootstrap_servers = \"{}\"\n",
        tansu.bootstrap()
    )
}

/// `n` structured CloudEvents, one per line, ~300 bytes each.
fn events(n: usize, round: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        writeln!(
            out,
            r#"{{"specversion":"1.0","id":"{round}-{i}","source":"/clock/bench","type":"clock.tick","time":"2026-12-06T10:00:00Z","datacontenttype":"application/json","data":{{"i":{i},"round":{round},"note":"a clock tick from unix.ar, padded to a realistic size for a bench run"}}}}"#
        )
        .unwrap();
    }
    out
}

/// Produces `payload` (one message a line) into `topic` with `kcat -P`.
fn produce(bootstrap: &str, topic: &str, payload: &[u8]) {
    let mut child = brokers::kcat()
        .args(["-P", "-b", bootstrap, "-t", topic, "-H"])
        .arg("content-type=application/cloudevents+json")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    assert!(child.wait().unwrap().success(), "kcat -P into {topic}");
}

/// A `kcat -C` from the end of `topic` that exits once it read `n` new
/// messages.
fn reader(bootstrap: &str, topic: &str, n: usize) -> std::process::Child {
    brokers::kcat()
        .args(["-C", "-q", "-b", bootstrap, "-t", topic, "-o", "end"])
        .args(["-c", &n.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `reader` to exit, at most `limit`; whether it did.
fn finish(mut reader: std::process::Child, limit: Duration, what: &str) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = reader.try_wait().unwrap() {
            assert!(status.success(), "{what}: reader failed");
            return true;
        }
        if Instant::now() > deadline {
            let _ = reader.kill();
            let _ = reader.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How many messages `topic` holds.
fn count(bootstrap: &str, topic: &str) -> usize {
    let out = brokers::kcat()
        .args([
            "-C",
            "-q",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
        ])
        .output()
        .unwrap();
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

/// The warnings and errors of `org`'s log.
fn alarms(org: &Org) -> String {
    org.host
        .log()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Seconds from producing `n` events into `source` at the publisher
/// until the subscriber's `local` flow holds all of them.
fn through_hosts(
    orgs: (&Org, &Org),
    a: &brokers::Tansu,
    b: &brokers::Tansu,
    (source, copy, local): (&str, &str, &str),
    n: usize,
    round: usize,
) -> f64 {
    let payload = events(n, round);
    let read = reader(&b.bootstrap(), local, n);
    // The reader starts at the end of the flow: let it get there first.
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    produce(&a.bootstrap(), source, &payload);
    if !finish(read, Duration::from_secs(120), local) {
        panic!(
            "{local}: not all {n} events arrived within 120 s: {} in {source}, {} in {copy}, {} in {local}\npublisher:\n{}\nsubscriber:\n{}",
            count(&a.bootstrap(), source),
            count(&a.bootstrap(), copy),
            count(&b.bootstrap(), local),
            alarms(orgs.0),
            alarms(orgs.1)
        );
    }
    started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[rank.min(values.len() - 1)]
}

fn main() {
    let n = env("FNAA_BENCH_EVENTS", 20_000);
    let rounds = env("FNAA_BENCH_ROUNDS", 3);
    let revocations = env("FNAA_BENCH_REVOCATIONS", 20);
    let certs = tempfile::tempdir().unwrap();
    let ca = brokers::TestCa::create_for(
        certs.path(),
        &["fnaa.unix.ar", "fnaa.emiliano.ar", "fnaa.ernesto.ar"],
    );
    let a = brokers::Tansu::start();
    let b = brokers::Tansu::start();
    let unix = organisation(
        "unix.ar",
        "test",
        &ca,
        &Dns::Embedded { nameserver: None },
        &on_kafka(&a),
    );
    let subscriber = |domain: &str, user: &str, mode: &str| -> Org {
        organisation(
            domain,
            user,
            &ca,
            &Dns::Embedded {
                nameserver: Some(unix.dns_port),
            },
            &format!("mode = \"{mode}\"\n{}", on_kafka(&b)),
        )
    };
    let direct = subscriber("emiliano.ar", "emiliano", "direct");
    let relay = subscriber("ernesto.ar", "ernesto", "relay");
    let mut at_unix = unix.host.session("test", "test");
    let mut at_direct = direct.host.session("emiliano", "emiliano");
    let mut at_relay = relay.host.session("ernesto", "ernesto");

    println!("{n} events of ~300 bytes per round, {rounds} rounds, tansu -> tansu");
    let (mut direct_rates, mut relay_rates, mut pipe_rates) = (Vec::new(), Vec::new(), Vec::new());
    // One subscription per mode, made before any kcat run, each round
    // sending new events through it.
    at_unix.ok("CREATE FLOW d.flows.unix.ar PUBLIC");
    let direct_copy =
        subscribed(&at_direct.send("SUBSCRIBE d.flows.unix.ar LOCAL d.flows.emiliano.ar"));
    at_unix.ok("CREATE FLOW r.flows.unix.ar PUBLIC");
    let relay_copy =
        subscribed(&at_relay.send("SUBSCRIBE r.flows.unix.ar LOCAL r.flows.ernesto.ar"));
    for round in 0..rounds {
        // Direct: emiliano.ar reads the copy on unix.ar's broker.
        let names = (
            "d.flows.unix.ar",
            direct_copy.as_str(),
            "d.flows.emiliano.ar",
        );
        let seconds = through_hosts((&unix, &direct), &a, &b, names, n, round);
        direct_rates.push(n as f64 / seconds);

        // Relay: ernesto.ar has unix.ar's FNAA send the copy over FNAP.
        let names = ("r.flows.unix.ar", relay_copy.as_str(), "r.flows.ernesto.ar");
        let seconds = through_hosts((&unix, &relay), &a, &b, names, n, round);
        relay_rates.push(n as f64 / seconds);

        // The peer tool: produce the same events, then kcat -C | kcat -P
        // between the same two brokers (kcat -P exits once delivered).
        let source = format!("k{round}.flows.unix.ar");
        at_unix.ok(&format!("CREATE FLOW {source} PUBLIC"));
        let target = format!("k{round}.flows.emiliano.ar");
        at_direct.ok(&format!("CREATE FLOW {target}"));
        let payload = events(n, round);
        let started = Instant::now();
        produce(&a.bootstrap(), &source, &payload);
        let mut consume = brokers::kcat()
            .args([
                "-C",
                "-q",
                "-b",
                &a.bootstrap(),
                "-t",
                &source,
                "-o",
                "beginning",
                "-e",
            ])
            .args(["-c", &n.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let status = brokers::kcat()
            .args(["-P", "-b", &b.bootstrap(), "-t", &target])
            .stdin(consume.stdout.take().unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "kcat -P into {target}");
        assert!(consume.wait().unwrap().success(), "kcat -C of {source}");
        let seconds = started.elapsed().as_secs_f64();
        pipe_rates.push(n as f64 / seconds);
        println!(
            "round {round}: direct {:.0} events/s, relay {:.0} events/s, kcat -C | kcat -P {:.0} events/s",
            direct_rates[round], relay_rates[round], pipe_rates[round]
        );
    }
    let (d, r, k) = (
        median(&mut direct_rates),
        median(&mut relay_rates),
        median(&mut pipe_rates),
    );
    println!(
        "median: direct {d:.0} events/s ({:.2} of kcat), relay {r:.0} events/s ({:.2} of kcat), kcat -C | kcat -P {k:.0} events/s",
        d / k,
        r / k
    );

    // Revocation: UNSUBSCRIBE at the publisher, then the subscriber shows
    // `revoked` ([peers] check_interval_ms = 200 in these hosts).
    at_unix.ok("CREATE FLOW rev.flows.unix.ar PUBLIC");
    for (name, session, domain) in [
        ("direct", &mut at_direct, "emiliano.ar"),
        ("relay", &mut at_relay, "ernesto.ar"),
    ] {
        let (mut stopped, mut shown) = (Vec::new(), Vec::new());
        for i in 0..revocations {
            let copy = subscribed(&session.send(&format!(
                "SUBSCRIBE rev.flows.unix.ar LOCAL rev{i}.flows.{domain}"
            )));
            let started = Instant::now();
            at_unix.ok(&format!("UNSUBSCRIBE {copy}"));
            stopped.push(started.elapsed().as_secs_f64() * 1000.0);
            loop {
                let listed = session.ok("LIST SUBSCRIPTIONS");
                if listed
                    .iter()
                    .any(|l| l.starts_with(&copy) && l.contains("state=revoked"))
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            shown.push(started.elapsed().as_secs_f64() * 1000.0);
            session.ok(&format!("UNSUBSCRIBE {copy}"));
        }
        println!(
            "revocation, {name}, {revocations} subscriptions: publisher stops p50 {:.1} ms p99 {:.1} ms; subscriber shows revoked p50 {:.0} ms p99 {:.0} ms",
            percentile(&mut stopped, 0.5),
            percentile(&mut stopped, 0.99),
            percentile(&mut shown, 0.5),
            percentile(&mut shown, 0.99)
        );
    }
}
