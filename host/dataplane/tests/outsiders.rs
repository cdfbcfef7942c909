//! Consumers that are not ours read what we write: `kcat` reads the Kafka
//! binding from tansu, a Python `pika` consumer reads the AMQP binding from
//! RabbitMQ. (`mosquitto_sub` is in `transport_mqtt.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::amqp::{AmqpBrokerConfig, AmqpSink, AmqpSinkConfig};
use fnaa_dataplane::transport::kafka::{KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig};
use fnaa_dataplane::transport::{Outcome, Sink as _};
use fnaa_event::binding::{Binding, Codec};
use fnaa_event::{AttributeValue, Event};

fn monitor() -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new("outsider test", Duration::from_secs(60)))
}

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn kytos_event(id: &str) -> Event {
    let mut e = Event::new(id, "/kytos/topology", "kytos/topology.link_down").with_data(
        "application/json",
        br#"{"link":"7","status":"down"}"#.to_vec(),
    );
    e.subject = Some("link/7".into());
    e.set_extension("category", AttributeValue::String("operational".into()));
    e.set_extension("partitionkey", AttributeValue::String("link-7".into()));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_reads_the_kafka_binding() {
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let topic = common::unique("outsider");
    KafkaAdmin::new(&broker)
        .unwrap()
        .create_topic(&topic, 1, 1)
        .await
        .unwrap();
    let binary = Codec::new(Binding::Kafka, &cfg(&[("mode", "binary")])).unwrap();
    let structured = Codec::new(Binding::Kafka, &cfg(&[("mode", "structured")])).unwrap();
    let messages = vec![
        binary.encode(&kytos_event("b-1")).unwrap(),
        structured.encode(&kytos_event("s-1")).unwrap(),
    ];
    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new(&topic),
        RetryConfig::default(),
        monitor(),
    )
    .unwrap();
    assert!(
        sink.send(messages)
            .await
            .unwrap()
            .iter()
            .all(Outcome::is_confirmed)
    );

    let out = common::kcat()
        .args([
            "-b",
            &tansu.bootstrap(),
            "-t",
            &topic,
            "-C",
            "-e",
            "-o",
            "beginning",
            "-q",
        ])
        .args(["-f", "KEY=%k\nHEADERS=%h\nVALUE=%s\n--\n"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<&str> = text
        .split("--\n")
        .filter(|r| !r.trim().is_empty())
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    // Binary mode: attributes as ce_ headers, data as the value.
    let b = records[0];
    assert!(b.contains("KEY=link-7"), "{b}");
    for h in [
        "content-type=application/json",
        "ce_specversion=1.0",
        "ce_id=b-1",
        "ce_type=kytos/topology.link_down",
        "ce_category=operational",
    ] {
        assert!(b.contains(h), "{h} missing in {b}");
    }
    assert!(b.contains(r#"VALUE={"link":"7","status":"down"}"#), "{b}");
    // Structured mode: a CloudEvents JSON document.
    let s = records[1];
    assert!(
        s.contains("content-type=application/cloudevents+json"),
        "{s}"
    );
    let json = s.lines().find_map(|l| l.strip_prefix("VALUE=")).unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["id"], "s-1");
    assert_eq!(v["data"]["status"], "down");
}

/// Reads `n` messages of a queue with pika and decodes each with the
/// CloudEvents Python SDK: `ce-` headers with its RabbitMQ binding,
/// `cloudEvents:` headers with its AMQP binding, structured mode as JSON.
const PIKA_CONSUMER: &str = r#"
import json, sys, time, pika
try:
    from cloudevents.core.bindings import amqp, rabbitmq
    from cloudevents.core.formats.json import JSONFormat
except ImportError as e:
    sys.exit("the CloudEvents Python SDK is required (pip install cloudevents): %r" % e)
port, queue, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, '/', pika.PlainCredentials('guest', 'guest')))
ch = conn.channel()
out, deadline = [], time.time() + 10
while len(out) < n and time.time() < deadline:
    method, props, body = ch.basic_get(queue, auto_ack=True)
    if method is None:
        time.sleep(0.05)
        continue
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (props.headers or {}).items()}
    if (props.content_type or '').startswith('application/cloudevents+json'):
        event = json.loads(body)
        event['_binding'] = 'structured'
    else:
        if any(k.lower().startswith('ce-') for k in headers):
            ce = rabbitmq.from_binary(rabbitmq.RabbitMQMessage(headers=headers, content_type=props.content_type, body=body), JSONFormat())
            binding = 'rabbitmq'
        else:
            ce = amqp.from_binary(amqp.AMQPMessage(properties={'content-type': props.content_type}, application_properties=headers, application_data=body), JSONFormat())
            binding = 'amqp'
        event = {k: (v.isoformat() if hasattr(v, 'isoformat') else v) for k, v in ce.get_attributes().items()}
        event['data'] = ce.get_data()
        event['_binding'] = binding
    event['_routing_key'] = method.routing_key
    event['_exchange'] = method.exchange
    out.append(event)
conn.close()
print(json.dumps(out))
"#;

#[tokio::test]
async fn pika_reads_the_amqp_binding_on_a_kytos_style_exchange() {
    let port = common::rabbitmq();
    let mut python = common::python_with_pika();
    // A consumer's queue, bound to the per-category exchange with a topic
    // pattern, as in seed 003.
    let exchange = common::unique("kytos.operational");
    let queue = common::unique("sdx-link-events");
    let setup = format!(
        "import pika; c=pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1',{port})); ch=c.channel(); \
         ch.exchange_declare('{exchange}','topic',durable=True); ch.queue_declare('{queue}',durable=True); \
         ch.queue_bind('{queue}','{exchange}','operational.kytos/topology.*'); c.close()"
    );
    let status = common::python_with_pika()
        .args(["-c", &setup])
        .status()
        .unwrap();
    assert!(status.success());

    let config = cfg(&[
        ("destination", &exchange),
        ("routing_key", "{category}.{type}"),
    ]);
    let binary = Codec::new(Binding::Amqp, &config).unwrap();
    let with = |key: &str, value: &str| {
        let mut c = config.clone();
        c.push((key.into(), value.into()));
        Codec::new(Binding::Amqp, &c).unwrap()
    };
    let amqp10 = with("header_prefix", "cloudEvents:");
    let structured = with("mode", "structured");
    let messages = vec![
        binary.encode(&kytos_event("b-1")).unwrap(),
        amqp10.encode(&kytos_event("a-1")).unwrap(),
        structured.encode(&kytos_event("s-1")).unwrap(),
    ];
    let broker = AmqpBrokerConfig::new("127.0.0.1", port);
    let mut sink = AmqpSink::new(
        &broker,
        &AmqpSinkConfig::default(),
        "outsider",
        RetryConfig::default(),
        monitor(),
    );
    let outcomes = sink.send(messages).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");

    let out = python
        .args(["-c", PIKA_CONSUMER, &port.to_string(), &queue, "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pika consumer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    for (e, (id, binding)) in
        events
            .iter()
            .zip([("b-1", "rabbitmq"), ("a-1", "amqp"), ("s-1", "structured")])
    {
        assert_eq!(e["id"], id, "{e}");
        assert_eq!(e["_binding"], binding, "{e}");
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["type"], "kytos/topology.link_down");
        assert_eq!(e["category"], "operational");
        assert_eq!(e["datacontenttype"], "application/json");
        assert_eq!(e["data"]["status"], "down");
        assert_eq!(e["_routing_key"], "operational.kytos/topology.link_down");
        assert_eq!(e["_exchange"], exchange.as_str());
    }
    let cleanup = format!(
        "import pika; c=pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1',{port})); ch=c.channel(); \
         ch.queue_delete('{queue}'); ch.exchange_delete('{exchange}'); c.close()"
    );
    let _ = common::python_with_pika().args(["-c", &cleanup]).status();
}
