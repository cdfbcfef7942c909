//! Kytos EP038 end to end, against a real Kytos 2021.1 controller: our
//! `fnaa/listen_events` NApp posts the controller's events to `fnaa
//! serve`'s ingestion listener; a static pipeline moves them from the
//! outbox through the `classifier` plugin to RabbitMQ topic exchanges
//! (EP038's `admin_events` / `operational_events`, routing key
//! `<class>.<event name>`). Consumers are written with aio-pika, the
//! library EP038 evaluates, and read the messages with the CloudEvents
//! Python SDK's RabbitMQ binding.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "kytos/mod.rs"]
mod kytos;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Host, free_port, write_config};
use kytos::Kytos;
use serde_json::{Value, json};

const INSTALL: &str = "pip install aio-pika cloudevents (and a RabbitMQ on 127.0.0.1:5672, guest/guest: apt-get install rabbitmq-server)";

/// argv: admin exchange, operational exchange, queue prefix. Declares the
/// exchanges (topic, durable) and three queues: `op` bound with
/// `operational.kytos/topology.*`, `admin` with `administrative.#`, `all`
/// with `#` on both; prints READY, then one JSON line per message.
const CONSUMER: &str = r##"
import asyncio, json, sys
try:
    import aio_pika
    from cloudevents.core.bindings import rabbitmq
    from cloudevents.core.formats.json import JSONFormat
except ImportError as e:
    sys.exit("missing Python module: %r" % e)

admin_x, op_x, prefix = sys.argv[1:4]

def text(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)

async def main():
    try:
        conn = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    except Exception as e:
        sys.exit("RabbitMQ at 127.0.0.1:5672 (guest/guest) is required: %r" % e)
    ch = await conn.channel()
    admin = await ch.declare_exchange(admin_x, aio_pika.ExchangeType.TOPIC, durable=True)
    op = await ch.declare_exchange(op_x, aio_pika.ExchangeType.TOPIC, durable=True)
    queues = {}
    for name, bindings in (("op", [(op, "operational.kytos/topology.*")]),
                           ("admin", [(admin, "administrative.#")]),
                           ("all", [(admin, "#"), (op, "#")])):
        q = await ch.declare_queue(prefix + "-" + name, exclusive=True)
        for x, key in bindings:
            await q.bind(x, key)
        queues[name] = q
    print("READY", flush=True)

    async def consume(name, q):
        async with q.iterator() as it:
            async for m in it:
                async with m.process():
                    headers = {k: text(v) for k, v in (m.headers or {}).items()}
                    event = rabbitmq.from_binary(
                        rabbitmq.RabbitMQMessage(headers=headers, content_type=m.content_type, body=m.body),
                        JSONFormat())
                    a = event.get_attributes()
                    print(json.dumps({
                        "queue": name, "exchange": m.exchange, "routing_key": m.routing_key,
                        "type": a.get("type"), "id": a.get("id"), "source": a.get("source"),
                        "subject": a.get("subject"), "dpid": a.get("dpid"),
                        "category": a.get("category"), "has_time": a.get("time") is not None,
                        "data": event.get_data()}), flush=True)

    await asyncio.gather(*(consume(n, q) for n, q in queues.items()))

asyncio.run(main())
"##;

/// A consumer process whose JSON lines arrive on a channel.
struct Consumer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Consumer {
    fn start(admin: &str, operational: &str, prefix: &str) -> Consumer {
        let mut child = Command::new("python3")
            .args(["-c", CONSUMER, admin, operational, prefix])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = lines.recv_timeout(Duration::from_secs(30));
        assert_eq!(
            ready.as_deref(),
            Ok("READY"),
            "the aio-pika consumer did not start ({INSTALL})"
        );
        Consumer { child, lines }
    }

    /// Messages until `done` says so (or `within` passed), then whatever
    /// else arrives in the following `quiet`.
    fn collect(
        &self,
        within: Duration,
        quiet: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + within;
        while !done(&seen) && Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                seen.push(serde_json::from_str(&line).unwrap());
            }
        }
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            seen.push(serde_json::from_str(&line).unwrap());
        }
        seen
    }
}

/// Deletes the run's exchanges however the test ends.
struct Exchanges(Vec<String>);

impl Drop for Exchanges {
    fn drop(&mut self) {
        let script = "import sys, pika\nc = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))\nfor x in sys.argv[1:]:\n    c.channel().exchange_delete(x)\nc.close()\n";
        let _ = Command::new("python3")
            .args(["-c", script])
            .args(&self.0)
            .status();
    }
}

/// An `fnaa serve` with the ingestion listener, an outbox and the EP038
/// pipeline to RabbitMQ; returns the host, the ingestion URL and the
/// token file.
fn ep038_host(
    dir: &Path,
    admin: &str,
    operational: &str,
    sink_amqp: &str,
    (username, password): (&str, &str),
    topology_flow: Option<&str>,
) -> (Host, String, std::path::PathBuf) {
    let (fnap_port, dns_port, mqtt_port, ingest_port) =
        (free_port(), free_port(), free_port(), free_port());
    let token_file = dir.join("ingest.token");
    std::fs::write(&token_file, "kytos-secret-token\n").unwrap();
    let extra = format!(
        r#"
[flows]
broker = "rabbit"

[brokers.connections.inbox]
type = "outbox"
path = "{dir}/inbox.redb"

[brokers.connections.rabbit]
type = "amqp"
host = "127.0.0.1"
port = 5672
username = "{username}"
password = "{password}"

[ingest]
listen = "127.0.0.1:{ingest_port}"
outbox = "inbox"
topics = ["kytos"]
token_file = "{token}"

[[pipelines]]
name = "kytos-ep038"
source = {{ broker = "inbox", outbox = {{ topics = ["kytos"] }} }}
processors = [{{ plugin = "classifier", config = {{ admin_exchange = "{admin}", operational_exchange = "{operational}" }} }}]
sink = {{ broker = "rabbit", connector_config = {{ destination = "{{exchange}}", routing_key = "{{category}}.{{type}}" }}, amqp = {{ {sink_amqp} }} }}
"#,
        dir = dir.display(),
        token = token_file.display(),
    );
    // The same events, classified, into a flow of the host: a second
    // consumer of the outbox topic, whose sink is the flow's exchange.
    let extra = match topology_flow {
        Some(flow) => format!(
            r#"{extra}
[[pipelines]]
name = "kytos-topology-flow"
source = {{ broker = "inbox", outbox = {{ topics = ["kytos"], consumer = "topology-flow" }} }}
processors = [{{ plugin = "classifier" }}]
sink = {{ broker = "rabbit", connector_config = {{ routing_key = "{{category}}.{{type}}" }}, amqp = {{ exchange = "{flow}", mandatory = false }} }}
"#
        ),
        None => extra,
    };
    let config = write_config(dir, fnap_port, dns_port, mqtt_port, &extra);
    if let Some(flow) = topology_flow {
        let namespace = flow.split_once('.').map_or(flow, |(_, rest)| rest);
        common::add_user(&config, "test", "test", namespace);
    }
    let host = Host::start(dir, &config, fnap_port);
    let url = format!("http://127.0.0.1:{ingest_port}/events/kytos");
    (host, url, token_file)
}

fn link(name: &str, a: &str, b: &str) -> Value {
    json!({ "name": name, "link": [a, 1, b, 1], "reason": "test" })
}

const DPID_A: &str = "00:00:00:00:00:00:00:0a";
const DPID_B: &str = "00:00:00:00:00:00:00:0b";

/// One run's exchanges, consumer, host and directory.
struct Ep038 {
    run: String,
    consumer: Consumer,
    host: Host,
    url: String,
    token: std::path::PathBuf,
    _exchanges: Exchanges,
    dir: tempfile::TempDir,
}

impl Ep038 {
    /// The consumer first (its exchanges exist before anything is
    /// published), then the host, whose AMQP sink takes the settings
    /// `sink_amqp` makes of the run's name.
    fn start(tag: &str, sink_amqp: impl Fn(&str) -> String) -> Ep038 {
        let run = common_unique(tag);
        let (admin, operational) = (
            format!("{run}.admin_events"),
            format!("{run}.operational_events"),
        );
        let exchanges = Exchanges(vec![admin.clone(), operational.clone()]);
        let consumer = Consumer::start(&admin, &operational, &run);
        let dir = tempfile::tempdir().unwrap();
        let (host, url, token) = ep038_host(
            dir.path(),
            &admin,
            &operational,
            &sink_amqp(&run),
            ("guest", "guest"),
            None,
        );
        Ep038 {
            run,
            consumer,
            host,
            url,
            token,
            _exchanges: exchanges,
            dir,
        }
    }

    fn admin(&self) -> String {
        format!("{}.admin_events", self.run)
    }

    fn operational(&self) -> String {
        format!("{}.operational_events", self.run)
    }

    /// A controller whose NApp posts to the host, with `env` settings.
    fn controller(&self, env: &[(&str, &str)]) -> Kytos {
        Kytos::start(self.dir.path(), &self.url, &self.token, env)
    }
}

#[test]
fn ep038_events_arrive_classified_on_their_exchanges_and_sdks_read_them() {
    let t = Ep038::start("ep038", |_| String::new());
    let (admin, operational, consumer, host) = (t.admin(), t.operational(), &t.consumer, &t.host);
    let controller = t.controller(&[]);

    controller.emit(&json!([
        { "name": "kytos/topology.switch.enabled", "dpid": DPID_A },
        link("kytos/topology.link_up", DPID_A, DPID_B),
        link("kytos/topology.link_down", DPID_A, DPID_B),
        { "name": "kytos/topology.topology_loaded", "content": { "topology": { "switches": {} } } },
        // Listened to, then dropped by EP038's rules (and counted).
        { "name": "kytos/topology.switches.metadata.added", "content": { "metadata": { "a": 1 } } },
        { "name": "kytos/topology.switch.new", "dpid": DPID_B },
        // Not listened to at all.
        { "name": "kytos/of_core.handshake.completed", "dpid": DPID_B },
        { "name": "kytos/topology.switch.disabled", "dpid": DPID_B },
    ]));
    // 3 operational + 2 administrative, each also on the `all` queue.
    let seen = consumer.collect(Duration::from_secs(60), Duration::from_secs(3), |s| {
        s.len() >= 10
    });
    let by_queue =
        |queue: &str| -> Vec<&Value> { seen.iter().filter(|m| m["queue"] == queue).collect() };
    let keys = |queue: &str| -> Vec<String> {
        by_queue(queue)
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m["exchange"].as_str().unwrap(),
                    m["routing_key"].as_str().unwrap()
                )
            })
            .collect()
    };
    let log = || format!("fnaa:\n{}\nkytos:\n{}", host.log(), controller.log());
    assert_eq!(
        keys("op"),
        vec![
            format!("{operational} operational.kytos/topology.link_up"),
            format!("{operational} operational.kytos/topology.link_down"),
            format!("{operational} operational.kytos/topology.topology_loaded"),
        ],
        "{seen:#?}\n{}",
        log()
    );
    assert_eq!(
        keys("admin"),
        vec![
            format!("{admin} administrative.kytos/topology.switch.enabled"),
            format!("{admin} administrative.kytos/topology.switch.disabled"),
        ],
        "{seen:#?}"
    );
    // Nothing else was published on either exchange.
    let all: BTreeSet<String> = keys("all").into_iter().collect();
    let classified: BTreeSet<String> = keys("op").into_iter().chain(keys("admin")).collect();
    assert_eq!(all, classified, "{seen:#?}");
    assert_eq!(by_queue("all").len(), 5, "{seen:#?}");

    // The CloudEvents attributes, as the SDK read them.
    for m in by_queue("admin") {
        assert_eq!(m["category"], "administrative");
        assert!(m["source"].as_str().unwrap().starts_with("kytos://"), "{m}");
        assert!(m["has_time"].as_bool().unwrap(), "{m}");
        uuid_like(m["id"].as_str().unwrap());
    }
    let admin_events = by_queue("admin");
    assert_eq!(admin_events[0]["dpid"], DPID_A);
    assert_eq!(admin_events[0]["subject"], DPID_A);
    assert_eq!(admin_events[0]["data"]["switch"]["dpid"], DPID_A);
    assert_eq!(admin_events[1]["dpid"], DPID_B);
    let op_events = by_queue("op");
    let down = op_events[1];
    assert_eq!(down["category"], "operational");
    assert_eq!(down["data"]["reason"], "test");
    assert_eq!(down["data"]["link"]["active"], false);
    assert_eq!(down["data"]["link"]["endpoint_a"]["switch"], DPID_A);
    assert_eq!(down["subject"], down["data"]["link"]["id"]);
    assert_eq!(op_events[0]["data"]["link"]["active"], true);
    // The bearer token never reaches a log.
    assert!(!host.log().contains("kytos-secret-token"));
    assert!(!controller.log().contains("kytos-secret-token"));
}

#[test]
fn every_event_the_ingestion_accepted_is_delivered_after_the_host_is_killed() {
    let mut t = Ep038::start("ep038-kill", |_| String::new());
    let controller = t.controller(&[
        ("FNAA_RETRY_INTERVAL", "0.2"),
        ("FNAA_MAX_RETRY_INTERVAL", "0.5"),
    ]);
    let burst = |from: usize| {
        let specs: Vec<Value> = (from..from + 100)
            .map(|seq| json!({ "name": "kytos/topology.link_up", "content": { "seq": seq } }))
            .collect();
        controller.emit(&Value::Array(specs));
    };
    burst(0);
    std::thread::sleep(Duration::from_millis(300));
    // Killed while the controller keeps emitting: the NApp holds what the
    // host did not acknowledge and sends it again once the host is back.
    t.host.kill();
    burst(100);
    std::thread::sleep(Duration::from_secs(1));
    let port = t.host.fnap_port;
    t.host = Host::start(t.dir.path(), &t.dir.path().join("fnaa.toml"), port);
    burst(200);
    let seen = t
        .consumer
        .collect(Duration::from_secs(90), Duration::from_secs(2), |s| {
            distinct_seqs(s, "op").len() >= 300
        });
    let seqs = distinct_seqs(&seen, "op");
    let missing: Vec<u64> = (0..300).filter(|s| !seqs.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "{} of 300 events lost: {missing:?}\nfnaa:\n{}\nkytos:\n{}",
        missing.len(),
        t.host.log(),
        controller.log()
    );
    assert!(
        controller
            .log()
            .contains("ALARM: cannot deliver events to the fnaa host"),
        "the NApp did not report the outage:\n{}",
        controller.log()
    );
    assert!(
        controller.log().contains("reachable again"),
        "{}",
        controller.log()
    );
}

/// seq -> times seen on `queue`.
fn distinct_seqs(seen: &[Value], queue: &str) -> BTreeMap<u64, usize> {
    let mut seqs = BTreeMap::new();
    for m in seen.iter().filter(|m| m["queue"] == queue) {
        if let Some(seq) = m["data"]["seq"].as_u64() {
            *seqs.entry(seq).or_insert(0) += 1;
        }
    }
    seqs
}

fn uuid_like(id: &str) {
    assert_eq!(id.len(), 36, "not a uuid: {id}");
    assert_eq!(id.matches('-').count(), 4, "not a uuid: {id}");
}

fn common_unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// argv: queues. Reads every message waiting in each (basic_get until
/// empty) and prints one line per queue: the `ce-type`s of its messages.
const DRAIN: &str = r#"
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))
ch = c.channel()
for q in sys.argv[1:]:
    types = []
    while True:
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            break
        h = props.headers or {}
        t = h.get('ce-type')
        types.append((t.decode() if isinstance(t, bytes) else t) + '@' + str(h.get('ce-subject'))[:8])
    print(' '.join(types))
c.close()
"#;

/// Deletes the run's queues however the test ends.
struct Queues(Vec<String>);

impl Drop for Queues {
    fn drop(&mut self) {
        let script = "import sys, pika\nc = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))\nfor q in sys.argv[1:]:\n    c.channel().queue_delete(q)\nc.close()\n";
        let _ = Command::new("python3")
            .args(["-c", script])
            .args(&self.0)
            .status();
    }
}

fn drain(queues: &[String]) -> Vec<String> {
    let out = common::python(
        "reading the link queues",
        DRAIN,
        &queues.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out.lines().map(str::to_owned).collect()
}

#[test]
fn each_link_gets_its_queue_and_repeats_wait_until_the_previous_is_consumed() {
    let t = Ep038::start("ep038-links", |run| {
        format!(r#"key_queues = {{ queue_prefix = "{run}.link." }}"#)
    });
    let (consumer, host, prefix) = (&t.consumer, &t.host, format!("{}.link.", t.run));
    let controller = t.controller(&[]);
    const DPID_C: &str = "00:00:00:00:00:00:00:0c";
    let ab_down = link("kytos/topology.link_down", DPID_A, DPID_B);
    let ab_up = link("kytos/topology.link_up", DPID_A, DPID_B);
    let op = |seen: &[Value]| -> Vec<String> {
        seen.iter()
            .filter(|m| m["queue"] == "op")
            .map(|m| {
                format!(
                    "{}@{}",
                    m["type"].as_str().unwrap(),
                    &m["subject"].as_str().unwrap()[..8]
                )
            })
            .collect()
    };

    // down, down again while the first is unread (suppressed), up (a change).
    controller.emit(&json!([ab_down, ab_down, ab_up]));
    let seen = consumer.collect(Duration::from_secs(60), Duration::from_secs(2), |s| {
        op(s).len() >= 2
    });
    let ab = seen[0]["subject"].as_str().unwrap().to_owned();
    let short = |id: &str| id[..8].to_owned();
    let log = || format!("fnaa:\n{}\nkytos:\n{}", host.log(), controller.log());
    assert_eq!(
        op(&seen),
        [
            format!("kytos/topology.link_down@{}", short(&ab)),
            format!("kytos/topology.link_up@{}", short(&ab))
        ],
        "{}",
        log()
    );
    let ab_queue = format!("{prefix}{ab}");
    let mut queues = Queues(vec![ab_queue.clone()]);
    // The link's consumer reads its queue: what was published, in order.
    assert_eq!(
        drain(std::slice::from_ref(&ab_queue)),
        [format!(
            "kytos/topology.link_down@{} kytos/topology.link_up@{}",
            short(&ab),
            short(&ab)
        )]
    );

    // Consumed: the next up passes; the one after it waits. A new link
    // gets a queue of its own with only its events.
    controller.emit(&json!([
        ab_up,
        ab_up,
        link("kytos/topology.link_up", DPID_A, DPID_C)
    ]));
    let more = consumer.collect(Duration::from_secs(60), Duration::from_secs(2), |s| {
        op(s).len() >= 2
    });
    let ac = more[more.len() - 1]["subject"].as_str().unwrap().to_owned();
    assert_ne!(ab, ac);
    assert_eq!(
        op(&more),
        [
            format!("kytos/topology.link_up@{}", short(&ab)),
            format!("kytos/topology.link_up@{}", short(&ac))
        ],
        "{}",
        log()
    );
    let ac_queue = format!("{prefix}{ac}");
    queues.0.push(ac_queue.clone());
    assert_eq!(
        drain(&[ab_queue, ac_queue]),
        [
            format!("kytos/topology.link_up@{}", short(&ab)),
            format!("kytos/topology.link_up@{}", short(&ac)),
        ]
    );
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (the RabbitMQ node's own tool; run the tests as root)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes the run's RabbitMQ user however the test ends.
struct User(String);

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_user", &self.0])
            .output();
    }
}

const EXCHANGE_EXISTS: &str = r#"
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))
try:
    c.channel().exchange_declare(sys.argv[1], 'topic', passive=True)
    print('yes')
except pika.exceptions.ChannelClosedByBroker:
    print('no')
"#;

#[test]
fn an_exchange_the_sink_may_not_create_is_an_alarm_retried_until_allowed() {
    let run = common_unique("ep038-perm");
    let (admin, operational) = (
        format!("{run}.admin_events"),
        format!("{run}.operational_events"),
    );
    let _exchanges = Exchanges(vec![admin.clone(), operational.clone()]);
    // A user that may write and read but not configure (declare) anything.
    let user = User(run.clone());
    rabbitmqctl(&["add_user", &user.0, "secret-pw"]);
    rabbitmqctl(&["set_permissions", "-p", "/", &user.0, "^$", ".*", ".*"]);
    let dir = tempfile::tempdir().unwrap();
    let (host, url, token) = ep038_host(
        dir.path(),
        &admin,
        &operational,
        "",
        (&user.0, "secret-pw"),
        None,
    );
    let controller = Kytos::start(dir.path(), &url, &token, &[]);
    controller.emit(&json!([link("kytos/topology.link_up", DPID_A, DPID_B)]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("ALARM") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = host.log();
    assert!(
        log.contains(&format!(
            "cannot declare exchange `{operational}` (retrying)"
        )) && log.contains("ACCESS_REFUSED"),
        "no clear alarm about the refused exchange:\n{log}"
    );
    assert!(!log.contains("secret-pw"), "the password reached the log");
    // The operator grants the permission: the retry creates the exchange.
    rabbitmqctl(&["set_permissions", "-p", "/", &user.0, ".*", ".*", ".*"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if common::python("checking the exchange", EXCHANGE_EXISTS, &[&operational]) == "yes" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the exchange was not created after the permission was granted:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("is reachable again") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(host.log().contains("is reachable again"), "{}", host.log());
}

/// argv: exchange, queue, count. Declares `queue` bound with `#` to the
/// exchange, prints READY, then, once `count` messages arrived (or 60 s
/// passed), their `ce-category` and `ce-type`.
const FLOW_READER: &str = r#"
import sys, time, pika
exchange, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))
ch = c.channel()
ch.queue_declare(queue, exclusive=True)
ch.queue_bind(queue, exchange, routing_key='#')
print('READY', flush=True)
seen, deadline = [], time.time() + 60
while len(seen) < count and time.time() < deadline:
    method, props, body = ch.basic_get(queue, auto_ack=True)
    if method is None:
        time.sleep(0.1)
        continue
    h = props.headers or {}
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    seen.append('%s %s' % (text(h.get('ce-category')), text(h.get('ce-type'))))
print('\n'.join(seen), flush=True)
"#;

#[test]
fn the_topology_is_a_flow_described_and_subscribed_to_over_fnap() {
    let run = common_unique("ep038-flow").replace('-', "x");
    let namespace = format!("sdx.{run}.ar");
    let (flow, mine) = (format!("topology.{namespace}"), format!("mine.{namespace}"));
    let (admin, operational) = (
        format!("{run}.admin_events"),
        format!("{run}.operational_events"),
    );
    let _exchanges = Exchanges(vec![
        admin.clone(),
        operational.clone(),
        flow.clone(),
        mine.clone(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (host, url, token) = ep038_host(
        dir.path(),
        &admin,
        &operational,
        "",
        ("guest", "guest"),
        Some(&flow),
    );
    let mut fnap = host.session("test", "test");
    fnap.ok(&format!("CREATE FLOW {flow}"));
    let schema = include_str!("../../examples/kytos/topology-event.schema.json");
    let schema: Value = serde_json::from_str(schema).unwrap();
    fnap.ok(&format!("SET FLOW {flow} SCHEMA {schema}"));
    let described = fnap.ok(&format!("DESCRIBE FLOW {flow}"));
    let text = described.join("\n");
    assert!(
        text.contains("type=amqp") || text.contains("amqp"),
        "{text}"
    );
    assert!(
        text.contains("kytos/topology"),
        "the schema is not described: {text}"
    );
    fnap.ok(&format!("SUBSCRIBE {flow} LOCAL {mine}"));
    // A reader of the subscriber's copy.
    let mut reader = Command::new("python3")
        .args(["-c", FLOW_READER, &mine, &format!("{run}-mine"), "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let controller = Kytos::start(dir.path(), &url, &token, &[]);
    controller.emit(&json!([
        { "name": "kytos/topology.switch.enabled", "dpid": DPID_A },
        { "name": "kytos/topology.switches.metadata.added", "content": {} },
        link("kytos/topology.link_down", DPID_A, DPID_B),
    ]));
    let got: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = reader.wait();
    assert_eq!(
        got,
        [
            "administrative kytos/topology.switch.enabled",
            "operational kytos/topology.link_down",
        ],
        "fnaa:\n{}",
        host.log()
    );
}

#[test]
fn the_napp_unit_tests_pass() {
    let out = Command::new(kytos::python())
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kytos/tests"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
