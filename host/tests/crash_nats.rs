//! A NATS -> NATS pipeline survives its host being killed with SIGKILL,
//! as a user meets it: `fnaa serve` runs a static `[[pipelines]]` entry
//! copying JetStream stream `CRASH_IN` of a `nats-server -js` (started
//! here on a free port, never restarted) to subject `crash.out` of stream
//! `CRASH_OUT`, while a Python `nats-py` producer publishes a long
//! numbered stream (each publish acknowledged by the stream). The host is
//! killed ten times (see `crash/mod.rs`); `nats-py` ordered consumers read
//! both streams from their beginning.
#![allow(clippy::unwrap_used)]

#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;

#[path = "crash/mod.rs"]
mod crash;

use std::time::Duration;

use crash::{Reader, Scenario, python, python_command, require_python};

const INSTALL: &str = "pip install nats-py";

/// argv: url, then (stream, subject) pairs to create.
const SETUP: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    args = sys.argv[2:]
    for stream, subject in zip(args[::2], args[1::2]):
        await js.add_stream(name=stream, subjects=[subject])
    await nc.close()
asyncio.run(main())
"#;

/// Publishes each stdin line to subject argv[2], acknowledged by the
/// stream.
const PRODUCE: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        line = line.strip()
        if line:
            await js.publish(sys.argv[2], line.encode(),
                             headers={"Content-Type": "application/cloudevents+json"})
    await nc.drain()
asyncio.run(main())
"#;

/// Prints the event id of each message of subject argv[2] (its stream
/// read from the beginning by an ordered consumer).
const READ: &str = r#"
import asyncio, json, sys, nats
from nats.js.api import DeliverPolicy
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    async def on(m):
        try:
            i = json.loads(m.data)["id"]
        except Exception:
            h = m.headers or {}
            i = h.get("ce-id") or h.get("Ce-Id") or m.data.decode(errors="replace")
        print(i, flush=True)
    await js.subscribe(sys.argv[2], cb=on, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    print("READY", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"#;

#[test]
fn a_nats_pipeline_resumes_at_once_after_kill_9_and_loses_nothing() {
    require_python("nats", INSTALL);
    let nats = brokers::NatsServer::start();
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let (input, output) = ("crash.in", "crash.out");
    python(
        &format!("creating the streams (needs {INSTALL})"),
        SETUP,
        &[&url, "CRASH_IN", input, "CRASH_OUT", output],
    );
    let reader = |subject: &str| Reader {
        command: python_command(READ, &[&url, subject]),
        announces_ready: true,
    };
    let report = crash::run(Scenario {
        broker: "nats",
        brokers_toml: format!(
            "[flows]\nbroker = \"nats\"\n\n[brokers.connections.nats]\ntype = \"nats\"\nservers = [\"{url}\"]\n"
        ),
        source: r#"{ broker = "nats", nats = { streams = ["CRASH_IN"] } }"#.to_owned(),
        sink: format!(
            r#"{{ broker = "nats", connector_config = {{ mode = "structured" }}, nats = {{ subject = "{output}" }} }}"#
        ),
        producer: python_command(PRODUCE, &[&url, input]),
        input_reader: reader(input),
        output_reader: reader(output),
        rate: 200,
        min_events: 3_000,
        // What the dead host had been delivered and not acknowledged comes
        // again after the consumer's `ack_wait` (30 s by default).
        drain: Duration::from_secs(40),
    });
    eprintln!("nats: {report:?}");
}
