//! RabbitMQ for the Kytos tests: aio-pika consumers reading through the
//! CloudEvents SDK, pika helpers, users and clean-up of what a run made.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const INSTALL: &str = "pip install aio-pika cloudevents (and a RabbitMQ on 127.0.0.1:5672, guest/guest: apt-get install rabbitmq-server)";

/// argv: admin exchange, operational exchange, queue prefix. Declares the
/// exchanges (topic, durable) and three queues: `op` bound with
/// `operational.kytos/topology.*`, `admin` with `administrative.#`, `all`
/// with `#` on both; prints READY, then one JSON line per message.
pub const CONSUMER: &str = r##"
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
pub struct Consumer {
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
    pub fn start(admin: &str, operational: &str, prefix: &str) -> Consumer {
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
    pub fn collect(
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
pub struct Exchanges(pub Vec<String>);

impl Drop for Exchanges {
    fn drop(&mut self) {
        let script = "import sys, pika\nc = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))\nfor x in sys.argv[1:]:\n    c.channel().exchange_delete(x)\nc.close()\n";
        let _ = Command::new("python3")
            .args(["-c", script])
            .args(&self.0)
            .status();
    }
}

/// argv: queues. Reads every message waiting in each (basic_get until
/// empty) and prints one line per queue: the `ce-type`s of its messages.
pub const DRAIN: &str = r#"
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
pub struct Queues(pub Vec<String>);

impl Drop for Queues {
    fn drop(&mut self) {
        let script = "import sys, pika\nc = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))\nfor q in sys.argv[1:]:\n    c.channel().queue_delete(q)\nc.close()\n";
        let _ = Command::new("python3")
            .args(["-c", script])
            .args(&self.0)
            .status();
    }
}

pub fn drain(queues: &[String]) -> Vec<String> {
    let out = crate::common::python(
        "reading the link queues",
        DRAIN,
        &queues.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out.lines().map(str::to_owned).collect()
}

pub fn rabbitmqctl(args: &[&str]) {
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
pub struct User(pub String);

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_user", &self.0])
            .output();
    }
}

pub const EXCHANGE_EXISTS: &str = r#"
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))
try:
    c.channel().exchange_declare(sys.argv[1], 'topic', passive=True)
    print('yes')
except pika.exceptions.ChannelClosedByBroker:
    print('no')
"#;

/// argv: exchange, queue, count. Declares `queue` bound with `#` to the
/// exchange, prints READY, then, once `count` messages arrived (or 60 s
/// passed), their `ce-category` and `ce-type`.
pub const FLOW_READER: &str = r#"
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
