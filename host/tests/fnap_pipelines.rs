//! End to end: flows, subscriptions and processors created over FNAP run as
//! real pipelines. `fnaa serve` with no broker configured keeps its flows
//! on the embedded MQTT broker; outsiders (`mosquitto_pub`,
//! `mosquitto_sub`) publish to and read from them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Host, TestHost, free_port, publish_event, python, test_host};

/// A `mosquitto_sub` on one topic, killed when dropped.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
    topic: String,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Subscriber {
    /// Subscribes (QoS 1) and returns once the broker acknowledged it.
    fn start(port: u16, topic: &str) -> Subscriber {
        // Line-buffered, so that its debug lines (SUBACK) come through the
        // pipe at once.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1"])
            .args(["-p", &port.to_string()])
            .args(["-V", "mqttv311", "-q", "1", "-t", topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("`mosquitto_sub` runs (install Debian's mosquitto-clients)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("SUBACK") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("mosquitto_sub got no SUBACK for {topic} within 20 s; it said {seen:?}")
                }
            }
        }
        Subscriber {
            child,
            lines,
            topic: topic.to_owned(),
        }
    }

    /// The ids of the events received within `wait` (debug lines skipped).
    fn received(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut ids = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.starts_with('{') {
                let event: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{}: not a CloudEvent ({e}): {line}", self.topic));
                ids.push(event["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        ids
    }

    /// Waits until `n` events arrived (at most 30 s); their ids.
    fn expect(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ids = Vec::new();
        while ids.len() < n && Instant::now() < deadline {
            ids.extend(self.received(Duration::from_millis(200)));
        }
        assert_eq!(
            ids.len(),
            n,
            "{}: expected {n} events within 30 s, got {ids:?}",
            self.topic
        );
        ids
    }
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn subscriptions_and_processors_run_on_the_embedded_broker() {
    let TestHost {
        dir,
        config,
        fnap_port,
        mqtt_port: mqtt,
        host,
        ..
    } = test_host("", "flows.unix.ar");
    let mut fnap = host.session("test", "test");

    fnap.ok("CREATE FLOW time.flows.unix.ar");
    fnap.ok("CREATE FLOW alerts.flows.unix.ar");
    let described = fnap.ok("DESCRIBE FLOW time.flows.unix.ar");
    assert_eq!(value(&described, "type"), Some("mqtt"), "{described:?}");
    assert_eq!(
        value(&described, "topic"),
        Some("time.flows.unix.ar"),
        "{described:?}"
    );
    assert_eq!(
        value(&described, "server"),
        Some(format!("127.0.0.1:{mqtt}").as_str()),
        "{described:?}"
    );

    // A signal processor keeps the alarms; a subscription copies all.
    let started = Instant::now();
    fnap.ok(
        r#"CREATE PROCESSOR alarms.flows.unix.ar PLUGIN signal INPUT time.flows.unix.ar OUTPUT alerts.flows.unix.ar CONFIG {"types":["time.alarm"]}"#,
    );
    let subscribed = fnap.ok("SUBSCRIBE time.flows.unix.ar LOCAL mine.flows.unix.ar");
    // 220 DATA, then the subscription (its copy flow) first on its line.
    let subscription = subscribed[1].split(' ').next().unwrap().to_owned();
    assert!(
        subscription.ends_with(".time.flows.unix.ar"),
        "{subscribed:?}"
    );

    assert!(
        started.elapsed() < Duration::from_secs(8),
        "pipelines consume at once on a local broker; log:\n{}",
        host.log()
    );
    let alerts = Subscriber::start(mqtt, "alerts.flows.unix.ar");
    let mine = Subscriber::start(mqtt, "mine.flows.unix.ar");
    publish_event(mqtt, "time.flows.unix.ar", "t1", "time.tick");
    publish_event(mqtt, "time.flows.unix.ar", "a1", "time.alarm");
    publish_event(mqtt, "time.flows.unix.ar", "t2", "time.tick");
    publish_event(mqtt, "time.flows.unix.ar", "a2", "time.alarm");
    assert_eq!(alerts.expect(2), ["a1", "a2"], "log:\n{}", host.log());
    let mut copied = mine.expect(4);
    copied.sort();
    assert_eq!(copied, ["a1", "a2", "t1", "t2"]);

    let described = fnap.ok("DESCRIBE PROCESSOR alarms.flows.unix.ar");
    assert_eq!(
        value(&described, "status"),
        Some("running"),
        "{described:?}"
    );
    assert!(
        described
            .iter()
            .any(|l| l.contains("events_in=4") && l.contains("events_out=2")),
        "{described:?}"
    );

    // Paused, the processor reads nothing; resumed, it goes on from where
    // it stopped (its persistent MQTT session kept what came meanwhile).
    fnap.ok("PAUSE PROCESSOR alarms.flows.unix.ar");
    publish_event(mqtt, "time.flows.unix.ar", "a3", "time.alarm");
    assert_eq!(
        alerts.received(Duration::from_secs(2)),
        Vec::<String>::new()
    );
    fnap.ok("RESUME PROCESSOR alarms.flows.unix.ar");
    assert_eq!(alerts.expect(1), ["a3"], "log:\n{}", host.log());
    assert_eq!(mine.expect(1), ["a3"]);

    // A new configuration takes effect at once.
    fnap.ok(r#"UPDATE PROCESSOR alarms.flows.unix.ar CONFIG {"types":"time.tick"}"#);
    publish_event(mqtt, "time.flows.unix.ar", "a4", "time.alarm");
    publish_event(mqtt, "time.flows.unix.ar", "t3", "time.tick");
    assert_eq!(alerts.expect(1), ["t3"]);
    assert_eq!(mine.expect(2).len(), 2);

    // Ended, the subscription copies no more; the processor goes on.
    fnap.ok(&format!("UNSUBSCRIBE {subscription}"));
    publish_event(mqtt, "time.flows.unix.ar", "t4", "time.tick");
    assert_eq!(alerts.expect(1), ["t4"]);
    assert_eq!(mine.received(Duration::from_secs(1)), Vec::<String>::new());

    // A restarted host restarts the processor.
    drop(fnap);
    drop(alerts);
    drop(mine);
    drop(host);
    let host = Host::start(dir.path(), &config, fnap_port);
    eprintln!("restarted host log:\n{}", host.log());
    let alerts = Subscriber::start(mqtt, "alerts.flows.unix.ar");
    let deadline = Instant::now() + Duration::from_secs(30);
    // The processor's source may still be connecting: publish until it
    // reads (each attempt is a distinct event; only ticks pass).
    let mut got = Vec::new();
    let mut n = 0;
    while got.is_empty() && Instant::now() < deadline {
        n += 1;
        publish_event(mqtt, "time.flows.unix.ar", &format!("r{n}"), "time.tick");
        got = alerts.received(Duration::from_millis(500));
    }
    assert!(
        got.iter().all(|id| id.starts_with('r')) && !got.is_empty(),
        "after a restart the processor forwards again: {got:?}; log:\n{}",
        host.log()
    );

    let mut fnap = host.session("test", "test");
    fnap.ok("DELETE PROCESSOR alarms.flows.unix.ar");
    std::thread::sleep(Duration::from_millis(300));
    let _ = alerts.received(Duration::from_millis(300));
    publish_event(mqtt, "time.flows.unix.ar", "t9", "time.tick");
    assert_eq!(
        alerts.received(Duration::from_secs(1)),
        Vec::<String>::new()
    );
}

#[test]
fn processor_errors_name_the_problem_and_record_nothing() {
    let TestHost { host, .. } = test_host("", "flows.unix.ar");
    let mut fnap = host.session("test", "test");
    fnap.ok("CREATE FLOW in.flows.unix.ar");
    fnap.ok("CREATE FLOW out.flows.unix.ar");

    let cases = [
        ("PLUGIN nosuch", "no plugin `nosuch`"),
        ("PLUGIN ../../etc/passwd", "not a plugin name"),
        ("PLUGIN signal@9.9.9", "not 9.9.9"),
        ("PLUGIN kafka", "is a connector, not a processor"),
        (r#"PLUGIN signal CONFIG {"typos":"x"}"#, "typos"),
        (
            r#"PLUGIN signal CONFIG {"types":{"a":1}}"#,
            "CONFIG key `types`",
        ),
    ];
    for (plugin, expected) in cases {
        let (head, config) = match plugin.split_once(" CONFIG ") {
            Some((head, config)) => (head, format!(" CONFIG {config}")),
            None => (plugin, String::new()),
        };
        let reply = fnap.send(&format!(
            "CREATE PROCESSOR p.flows.unix.ar {head} INPUT in.flows.unix.ar OUTPUT out.flows.unix.ar{config}"
        ));
        let text = reply.join("\n");
        assert!(
            !text.starts_with("220") && text.contains(expected),
            "{plugin}: expected an error naming `{expected}`, got {reply:?}"
        );
        let listed = fnap.ok("LIST PROCESSORS");
        assert!(
            !listed.iter().any(|l| l.contains("p.flows.unix.ar")),
            "{plugin}: nothing recorded, but {listed:?}"
        );
    }
}

/// Runs a Python script (with pika) with `args`; its standard output, or
/// a panic with its standard error.
const PIKA_SETUP: &str = r#"
import sys, pika
port, inp, out, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
ch = c.channel()
ch.exchange_declare(inp, 'topic', passive=True)
ch.exchange_declare(out, 'topic', passive=True)
ch.queue_declare(queue, exclusive=False, auto_delete=False)
ch.queue_bind(queue, out, '#')
c.close()
"#;

const PIKA_PUBLISH_AND_READ: &str = r#"
import sys, json, time, pika
port, inp, queue, want = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
ch = c.channel()
ch.confirm_delivery()
for i, kind in enumerate(sys.argv[5:]):
    event = {"specversion": "1.0", "id": "e%d" % i, "source": "/clock", "type": kind, "data": {"i": i}}
    ch.basic_publish(inp, 'clock', json.dumps(event),
        pika.BasicProperties(content_type='application/cloudevents+json', delivery_mode=2))
ids, deadline = [], time.time() + 30
while len(ids) < want and time.time() < deadline:
    method, props, body = ch.basic_get(queue, auto_ack=True)
    if method is None:
        time.sleep(0.1)
        continue
    headers = props.headers or {}
    ids.append(headers.get('ce-id') or headers.get('cloudEvents:id') or headers.get('cloudEvents_id') or json.loads(body)['id'])
ch.queue_delete(queue)
c.close()
print(' '.join(ids))
"#;

const PIKA_EXCHANGE_EXISTS: &str = r#"
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', int(sys.argv[1])))
try:
    c.channel().exchange_declare(sys.argv[2], 'topic', passive=True)
    print('yes')
except pika.exceptions.ChannelClosedByBroker:
    print('no')
"#;

#[test]
fn flows_on_rabbitmq_are_exchanges_and_processors_move_events() {
    let rabbit = brokers::rabbitmq();
    // Flow names are exchange names on a shared broker: unique per run.
    let tag = format!("t{}x{}", std::process::id(), free_port());
    let namespace = format!("{tag}.unix.ar");
    let extra = format!(
        "[flows]\nbroker = \"rabbit\"\n\n[brokers.connections.rabbit]\ntype = \"amqp\"\nhost = \"127.0.0.1\"\nport = {rabbit}\n"
    );
    let TestHost { host, .. } = test_host(&extra, &namespace);
    let mut fnap = host.session("test", "test");
    let (input, output) = (format!("in.{namespace}"), format!("out.{namespace}"));

    fnap.ok(&format!("CREATE FLOW {input}"));
    fnap.ok(&format!("CREATE FLOW {output}"));
    let described = fnap.ok(&format!("DESCRIBE FLOW {input}"));
    assert_eq!(value(&described, "type"), Some("amqp"), "{described:?}");
    assert_eq!(value(&described, "topic"), Some(input.as_str()));
    assert_eq!(
        value(&described, "server"),
        Some(format!("127.0.0.1:{rabbit}").as_str())
    );
    fnap.ok(&format!(
        r#"CREATE PROCESSOR keep.{namespace} PLUGIN signal INPUT {input} OUTPUT {output} CONFIG {{"types":"*.alarm"}}"#
    ));

    // pika sees both exchanges, publishes to one and reads the other.
    let port = rabbit.to_string();
    let queue = format!("{tag}-reader");
    python(
        "the flows' exchanges exist",
        PIKA_SETUP,
        &[&port, &input, &output, &queue],
    );
    let read = python(
        "pika publishes and reads",
        PIKA_PUBLISH_AND_READ,
        &[
            &port,
            &input,
            &queue,
            "2",
            "clock.tick",
            "clock.alarm",
            "clock.tick",
            "door.alarm",
        ],
    );
    assert_eq!(read, "e1 e3", "log:\n{}", host.log());

    // Deleting a flow deletes its exchange.
    fnap.ok(&format!("DELETE PROCESSOR keep.{namespace}"));
    for flow in [&input, &output] {
        fnap.ok(&format!("DELETE FLOW {flow}"));
        let exists = python("passive declare", PIKA_EXCHANGE_EXISTS, &[&port, flow]);
        assert_eq!(exists, "no", "the exchange of {flow} is gone");
    }
}

/// The data-plane tests' brokers: tansu started per test.
#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;

/// A binary-mode Kafka message carrying a CloudEvent.
fn kafka_event(id: &str, kind: &str) -> fnaa_dataplane::transport::Message {
    fnaa_dataplane::transport::Message {
        content_type: Some("application/json".into()),
        headers: [
            ("ce_specversion", "1.0"),
            ("ce_id", id),
            ("ce_source", "/clock"),
            ("ce_type", kind),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect(),
        payload: b"{}".to_vec(),
        ..Default::default()
    }
}

#[test]
fn flows_on_kafka_are_topics_and_processors_move_events() {
    use fnaa_dataplane::transport::kafka::{
        KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig,
    };
    use fnaa_dataplane::transport::{DeliveryMode, Sink as _, Source as _};

    let tansu = brokers::Tansu::start();
    let extra = format!(
        "[flows]\nbroker = \"kafka\"\n\n[brokers.connections.kafka]\ntype = \"kafka\"\nbootstrap_servers = \"{}\"\n",
        tansu.bootstrap()
    );
    let TestHost { host, .. } = test_host(&extra, "flows.unix.ar");
    let mut fnap = host.session("test", "test");
    fnap.ok("CREATE FLOW in.flows.unix.ar");
    fnap.ok("CREATE FLOW out.flows.unix.ar");
    let described = fnap.ok("DESCRIBE FLOW in.flows.unix.ar");
    assert_eq!(value(&described, "type"), Some("kafka"), "{described:?}");
    assert_eq!(
        value(&described, "server"),
        Some(tansu.bootstrap().as_str())
    );
    fnap.ok(
        r#"CREATE PROCESSOR keep.flows.unix.ar PLUGIN signal INPUT in.flows.unix.ar OUTPUT out.flows.unix.ar CONFIG {"types":"*.alarm"}"#,
    );

    let tokio = tokio::runtime::Runtime::new().unwrap();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let monitor = || {
        std::sync::Arc::new(fnaa_dataplane::outage::OutageMonitor::new(
            "test",
            Duration::from_secs(60),
        ))
    };
    tokio.block_on(async {
        let admin = KafkaAdmin::new(&broker).unwrap();
        for topic in ["in.flows.unix.ar", "out.flows.unix.ar"] {
            assert_eq!(admin.partitions(topic).await.unwrap(), Some(1), "{topic}");
        }
        let mut sink = KafkaSink::new(
            &broker,
            &KafkaSinkConfig::new("in.flows.unix.ar"),
            Default::default(),
            monitor(),
        )
        .unwrap();
        for (id, kind) in [
            ("e0", "clock.tick"),
            ("e1", "clock.alarm"),
            ("e2", "clock.tick"),
            ("e3", "door.alarm"),
        ] {
            let outcomes = sink.send(vec![kafka_event(id, kind)]).await.unwrap();
            assert!(outcomes.iter().all(|o| o.is_confirmed()), "{outcomes:?}");
        }
        let mut source = KafkaSource::new(
            &broker,
            &KafkaSourceConfig::new(vec!["out.flows.unix.ar".into()]),
            "reader",
            DeliveryMode::AtLeastOnce,
            monitor(),
        )
        .await
        .unwrap();
        let mut ids = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while ids.len() < 2 && Instant::now() < deadline {
            let batch = tokio::time::timeout(
                Duration::from_secs(1),
                source.recv(10, Duration::from_millis(50)),
            )
            .await;
            for received in batch.into_iter().flatten().flatten() {
                let id = received
                    .message
                    .headers
                    .iter()
                    .find(|(k, _)| k == "ce_id")
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                ids.push(id.unwrap_or_default());
            }
        }
        assert_eq!(ids, ["e1", "e3"], "log:\n{}", host.log());
    });

    fnap.ok("DELETE PROCESSOR keep.flows.unix.ar");
    fnap.ok("DELETE FLOW in.flows.unix.ar");
    tokio.block_on(async {
        let admin = KafkaAdmin::new(&broker).unwrap();
        assert_eq!(
            admin.partitions("in.flows.unix.ar").await.unwrap(),
            None,
            "topic deleted"
        );
        assert_eq!(
            admin.partitions("out.flows.unix.ar").await.unwrap(),
            Some(1)
        );
    });
}

#[test]
fn a_flow_whose_queue_cannot_be_created_is_not_created_and_the_client_learns_why() {
    // A Kafka broker that is not there: nothing listens on this port.
    let down = free_port();
    let extra = format!(
        "[flows]\nbroker = \"kafka\"\n\n[brokers.connections.kafka]\ntype = \"kafka\"\nbootstrap_servers = \"127.0.0.1:{down}\"\n"
    );
    let TestHost { host, .. } = test_host(&extra, "flows.unix.ar");
    let mut fnap = host.session("test", "test");
    let reply = fnap.send("CREATE FLOW time.flows.unix.ar");
    let text = reply.join("\n");
    assert!(
        text.starts_with('4') && text.contains("cannot create the queue of time.flows.unix.ar"),
        "{reply:?}"
    );
    let listed = fnap.ok("LIST FLOWS");
    assert!(
        !listed.iter().any(|l| l.contains("time.flows.unix.ar")),
        "nothing half-created: {listed:?}"
    );
    let described = fnap.send("DESCRIBE FLOW time.flows.unix.ar");
    assert!(described[0].starts_with('5'), "{described:?}");
}
