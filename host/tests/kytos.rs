//! Kytos EP038 end to end, against a real Kytos 2021.1 controller: our
//! `fnaa/listen_events` NApp posts the controller's events to `fnaa
//! serve`'s ingestion listener; a static pipeline moves them from the
//! outbox through the `classifier` plugin to RabbitMQ topic exchanges
//! (EP038's `admin_events` / `operational_events`, routing key
//! `<class>.<event name>`). Consumers are written with aio-pika, the
//! library EP038 evaluates, and read the messages with the CloudEvents
//! Python SDK's RabbitMQ binding.
#![allow(clippy::unwrap_used)]

/// The data-plane tests' brokers: a RabbitMQ node and a tansu of the
/// test's own.
#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;
mod common;
#[path = "kytos/mod.rs"]
mod kytos;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Host;
use kytos::controller::{self, Kytos};
use kytos::rabbit::{EXCHANGE_EXISTS, Exchanges, FLOW_READER, Queues, User, drain, rabbitmqctl};
use kytos::setup::{DPID_A, DPID_B, Ep038, SinkBroker, distinct_seqs, ep038_host, link, uuid_like};
use serde_json::{Value, json};

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
    let burst = |from: u64| controller.emit_numbered("kytos/topology.link_up", from..from + 100);
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

#[test]
fn an_exchange_the_sink_may_not_create_is_an_alarm_retried_until_allowed() {
    let run = brokers::unique("ep038-perm");
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
        SinkBroker::Rabbit {
            port: 5672,
            user: (&user.0, "secret-pw"),
            amqp: "",
        },
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

#[test]
fn the_topology_is_a_flow_described_and_subscribed_to_over_fnap() {
    let run = brokers::unique("ep038-flow").replace('-', "x");
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
        SinkBroker::rabbit(""),
        Some(&flow),
    );
    let mut fnap = host.session("test", "test");
    fnap.ok(&format!("CREATE FLOW {flow}"));
    let schema = include_str!("../../examples/kytos/topology-event.schema.json");
    let schema: Value = serde_json::from_str(schema).unwrap();
    fnap.ok(&format!("SET FLOW {flow} SCHEMA {schema}"));
    let described = fnap.ok(&format!("DESCRIBE FLOW {flow}"));
    let value = |key: &str| {
        described
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    assert_eq!(value("type").as_deref(), Some("amqp"), "{described:?}");
    assert_eq!(
        value("topic").as_deref(),
        Some(flow.as_str()),
        "{described:?}"
    );
    assert!(
        value("schema").is_some_and(|schema| schema.contains("kytos/topology")),
        "the schema is not described: {described:?}"
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

/// argv: port, exchange, queue. Declares the durable topic exchange and a
/// durable queue bound with `#`.
const DURABLE_QUEUE: &str = r#"
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[1])))
ch = c.channel()
ch.exchange_declare(sys.argv[2], 'topic', durable=True)
ch.queue_declare(sys.argv[3], durable=True)
ch.queue_bind(sys.argv[3], sys.argv[2], routing_key='#')
c.close()
"#;

/// argv: port, queue, count. Reads until `count` distinct `seq`s (or 90 s)
/// and prints them.
const SEQ_READER: &str = r#"
import json, sys, time, pika
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[1])))
ch = c.channel()
seqs, deadline = set(), time.time() + 90
while len(seqs) < int(sys.argv[3]) and time.time() < deadline:
    method, props, body = ch.basic_get(sys.argv[2], auto_ack=True)
    if method is None:
        time.sleep(0.1)
        continue
    seqs.add(json.loads(body)['seq'])
print(' '.join(str(s) for s in sorted(seqs)))
"#;

#[test]
fn a_rabbitmq_outage_is_an_alarm_and_everything_arrives_after_it() {
    let mut node = brokers::rabbitmq::RabbitNode::start();
    let port = node.port.to_string();
    let run = brokers::unique("ep038-outage");
    let (admin, operational) = (
        format!("{run}.admin_events"),
        format!("{run}.operational_events"),
    );
    let queue = format!("{run}-op");
    common::python(
        "declaring the durable queue",
        DURABLE_QUEUE,
        &[&port, &operational, &queue],
    );
    let dir = tempfile::tempdir().unwrap();
    let (host, url, token) = ep038_host(
        dir.path(),
        &admin,
        &operational,
        SinkBroker::Rabbit {
            port: node.port,
            user: ("guest", "guest"),
            amqp: "",
        },
        None,
    );
    let controller = Kytos::start(dir.path(), &url, &token, &[]);
    let burst = |from: u64| controller.emit_numbered("kytos/topology.link_down", from..from + 20);
    burst(0);
    std::thread::sleep(Duration::from_secs(2));
    node.stop();
    // The controller goes on while the broker is down for 30 s: the host
    // takes the events into its outbox and its sink retries.
    burst(20);
    std::thread::sleep(Duration::from_secs(15));
    burst(40);
    std::thread::sleep(Duration::from_secs(15));
    assert!(
        host.log().contains("ALARM:"),
        "no alarm for the outage:\n{}",
        host.log()
    );
    node.restart();
    let got = common::python("reading the queue", SEQ_READER, &[&port, &queue, "60"]);
    let expected: Vec<String> = (0..60).map(|s| s.to_string()).collect();
    assert_eq!(got, expected.join(" "), "fnaa:\n{}", host.log());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("is reachable again") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(host.log().contains("is reachable again"), "{}", host.log());
    // The controller never noticed: its NApp delivered to the host
    // throughout.
    assert!(!controller.log().contains("ALARM"), "{}", controller.log());
}

/// The ids of the `ce_type` headers of every message of `topics` (from
/// their beginning, without a consumer group), once `count` arrived or
/// 60 s passed: (topic, type).
fn kafka_types(bootstrap: &str, topics: &[&str], count: usize) -> Vec<(String, String)> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::message::{Headers as _, Message as _};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kytos-test-reader-never-commits")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for topic in topics {
        partitions
            .add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < count && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let ty = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "ce_type"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        seen.push((message.topic().to_owned(), ty));
    }
    seen
}

#[test]
fn the_same_napp_and_classifier_publish_to_kafka() {
    use fnaa_dataplane::transport::kafka::{KafkaAdmin, KafkaBrokerConfig};
    let tansu = brokers::Tansu::start();
    let bootstrap = tansu.bootstrap();
    let run = brokers::unique("ep038-kafka");
    let (admin, operational) = (
        format!("{run}.admin_events"),
        format!("{run}.operational_events"),
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let kafka = KafkaAdmin::new(&KafkaBrokerConfig::new(&bootstrap)).unwrap();
        kafka.create_topic(&admin, 1, 1).await.unwrap();
        kafka.create_topic(&operational, 1, 1).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let (host, url, token) = ep038_host(
        dir.path(),
        &admin,
        &operational,
        SinkBroker::Kafka {
            bootstrap: &bootstrap,
        },
        None,
    );
    let controller = Kytos::start(dir.path(), &url, &token, &[]);
    controller.emit(&json!([
        { "name": "kytos/topology.switch.enabled", "dpid": DPID_A },
        link("kytos/topology.link_up", DPID_A, DPID_B),
        { "name": "kytos/topology.switches.metadata.added", "content": {} },
        link("kytos/topology.link_down", DPID_A, DPID_B),
    ]));
    let mut seen = kafka_types(&bootstrap, &[&admin, &operational], 3);
    seen.sort();
    assert_eq!(
        seen,
        [
            (admin.clone(), "kytos/topology.switch.enabled".to_owned()),
            (operational.clone(), "kytos/topology.link_down".to_owned()),
            (operational.clone(), "kytos/topology.link_up".to_owned()),
        ],
        "fnaa:\n{}",
        host.log()
    );
}

#[test]
fn the_napp_unit_tests_pass() {
    let out = Command::new(controller::python())
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kytos/tests"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    // Python 3.11 exits 0 when discovery finds nothing: a renamed test
    // file must not pass as "no failures".
    assert!(
        report.contains("Ran ") && !report.contains("Ran 0 tests"),
        "no NApp unit test ran:\n{report}"
    );
}
