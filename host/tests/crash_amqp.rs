//! An AMQP -> AMQP pipeline survives its host being killed with SIGKILL,
//! as a user meets it: `fnaa serve` runs a static `[[pipelines]]` entry
//! copying a durable queue bound to one topic exchange of the RabbitMQ at
//! 127.0.0.1:5672 (guest/guest) to another exchange, while a Python `pika`
//! producer publishes a long numbered stream with publisher confirms. The
//! host is killed ten times (see `crash/mod.rs`); `pika` readers consume
//! durable queues bound to both exchanges. Exchanges and queues have names
//! of their own per run and are deleted at the end.
#![allow(clippy::unwrap_used)]

#[path = "crash/mod.rs"]
mod crash;

use std::time::Duration;

use crash::{Reader, Scenario, python, python_command, require_python, unique};

const INSTALL: &str = "pip install pika (and a RabbitMQ on 127.0.0.1:5672, guest/guest: apt-get install rabbitmq-server)";

const CONNECT: &str = r#"
import sys, pika
def connect():
    try:
        return pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=5672, credentials=pika.PlainCredentials("guest", "guest")))
    except Exception as e:
        sys.exit("RabbitMQ at 127.0.0.1:5672 (guest/guest) is required: %r" % e)
"#;

/// argv: input exchange, source queue, output exchange, input reader
/// queue, output reader queue.
const SETUP: &str = r##"
c = connect()
ch = c.channel()
x_in, q_src, x_out, q_in, q_out = sys.argv[1:6]
for x in (x_in, x_out):
    ch.exchange_declare(x, exchange_type="topic", durable=True)
for q, x in ((q_src, x_in), (q_in, x_in), (q_out, x_out)):
    ch.queue_declare(q, durable=True)
    ch.queue_bind(q, x, routing_key="#")
c.close()
"##;

/// argv: exchanges and queues to delete.
const CLEANUP: &str = r#"
c = connect()
for name in sys.argv[1:]:
    ch = c.channel()
    try:
        if name.startswith("q-"):
            ch.queue_delete(name)
        else:
            ch.exchange_delete(name)
    except Exception as e:
        print("cleanup %s: %r" % (name, e), file=sys.stderr)
c.close()
"#;

/// Publishes each stdin line to exchange argv[1], persistent, confirmed.
const PRODUCE: &str = r#"
c = connect()
ch = c.channel()
ch.confirm_delivery()
props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2)
for line in sys.stdin:
    line = line.strip()
    if line:
        ch.basic_publish(sys.argv[1], "crash.tick", line.encode(), properties=props, mandatory=True)
c.close()
"#;

/// Prints the event id of each message of queue argv[1].
const READ: &str = r#"
import json
c = connect()
ch = c.channel()
ch.basic_qos(prefetch_count=500)
def on(ch, method, props, body):
    try:
        print(json.loads(body)["id"])
    except Exception:
        h = props.headers or {}
        print(h.get("ce-id") or h.get("cloudEvents:id") or h.get("cloudEvents_id") or h.get("ce_id") or body.decode(errors="replace"))
    ch.basic_ack(method.delivery_tag)
ch.basic_consume(sys.argv[1], on)
print("READY")
ch.start_consuming()
"#;

/// Deletes the run's exchanges and queues however the test ends.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        let _ = std::process::Command::new("python3")
            .args(["-c", &format!("{CONNECT}{CLEANUP}")])
            .args(&names)
            .status();
    }
}

#[test]
fn an_amqp_pipeline_resumes_at_once_after_kill_9_and_loses_nothing() {
    require_python("pika", INSTALL);
    let run = unique("crash");
    let (x_in, x_out) = (format!("x-{run}-in"), format!("x-{run}-out"));
    let (q_src, q_in, q_out) = (
        format!("q-{run}-source"),
        format!("q-{run}-in-reader"),
        format!("q-{run}-out-reader"),
    );
    let _cleanup = Cleanup(vec![
        q_src.clone(),
        q_in.clone(),
        q_out.clone(),
        x_in.clone(),
        x_out.clone(),
    ]);
    // What the pipeline declares itself, made before anything is
    // published, as after any earlier run of the pipeline; the readers'
    // queues too.
    python(
        &format!("declaring exchanges and queues ({INSTALL})"),
        &format!("{CONNECT}{SETUP}"),
        &[&x_in, &q_src, &x_out, &q_in, &q_out],
    );
    let reader = |queue: &str| Reader {
        command: python_command(&format!("{CONNECT}{READ}"), &[queue]),
        announces_ready: true,
    };
    let report = crash::run(Scenario {
        broker: "amqp",
        brokers_toml: "[flows]\nbroker = \"rabbit\"\n\n[brokers.connections.rabbit]\ntype = \"amqp\"\nhost = \"127.0.0.1\"\nport = 5672\nusername = \"guest\"\npassword = \"guest\"\n".to_owned(),
        source: format!(
            r##"{{ broker = "rabbit", amqp = {{ queue = "{q_src}", exchange = "{x_in}", binding_keys = ["#"] }} }}"##
        ),
        sink: format!(
            r#"{{ broker = "rabbit", connector_config = {{ mode = "structured" }}, amqp = {{ exchange = "{x_out}" }} }}"#
        ),
        producer: python_command(&format!("{CONNECT}{PRODUCE}"), &[&x_in]),
        input_reader: reader(&q_in),
        output_reader: reader(&q_out),
        rate: 200,
        min_events: 3_000,
        drain: Duration::from_secs(20),
    });
    eprintln!("amqp: {report:?}");
}
