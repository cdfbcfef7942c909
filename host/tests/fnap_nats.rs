//! End to end on NATS: a host whose flows live on a NATS server keeps each
//! flow in a JetStream stream, created and deleted with the flow, and runs
//! processors on them; an outsider (Python `nats-py`) publishes into one
//! flow and reads the other.
#![allow(clippy::unwrap_used)]

#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;

mod common;

use common::{TestHost, python, test_host};

const STREAMS: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    names = sorted([s.config.name for s in await nc.jetstream().streams_info()])
    print(' '.join(names))
    await nc.close()
asyncio.run(main())
"#;

const PUBLISH_AND_READ: &str = r#"
import asyncio, json, sys, time, nats
async def main():
    url, subject, stream, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    nc = await nats.connect(url)
    js = nc.jetstream()
    for i, kind in enumerate(sys.argv[5:]):
        event = {"specversion": "1.0", "id": "e%d" % i, "source": "/clock", "type": kind, "data": {"i": i}}
        await js.publish(subject, json.dumps(event).encode(),
                         headers={"Content-Type": "application/cloudevents+json"})
    sub = await js.pull_subscribe(">", durable="reader", stream=stream)
    ids, deadline = [], time.time() + 30
    while len(ids) < want and time.time() < deadline:
        try:
            msgs = await sub.fetch(10, timeout=1)
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

#[test]
fn flows_on_nats_are_streams_and_processors_move_events() {
    let nats = brokers::NatsServer::start();
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let extra = format!(
        "[flows]\nbroker = \"nats\"\n\n[brokers.connections.nats]\ntype = \"nats\"\nservers = [\"{url}\"]\n"
    );
    let TestHost { host, .. } = test_host(&extra, "flows.unix.ar");
    let mut fnap = host.session("test", "test");
    fnap.ok("CREATE FLOW in.flows.unix.ar");
    fnap.ok("CREATE FLOW out.flows.unix.ar");
    let described = fnap.ok("DESCRIBE FLOW in.flows.unix.ar");
    assert!(
        described.iter().any(|l| l.contains("type=nats")),
        "{described:?}"
    );
    assert_eq!(
        python("list streams", STREAMS, &[&url]),
        "in_flows_unix_ar out_flows_unix_ar"
    );
    fnap.ok(
        r#"CREATE PROCESSOR keep.flows.unix.ar PLUGIN signal INPUT in.flows.unix.ar OUTPUT out.flows.unix.ar CONFIG {"types":"*.alarm"}"#,
    );
    let ids = python(
        "publish and read",
        PUBLISH_AND_READ,
        &[
            &url,
            "in.flows.unix.ar",
            "out_flows_unix_ar",
            "2",
            "clock.tick",
            "clock.alarm",
            "clock.tick",
            "door.alarm",
        ],
    );
    assert_eq!(ids, "e1 e3", "only the alarms pass the signal processor");
    let described = fnap.ok("DESCRIBE PROCESSOR keep.flows.unix.ar");
    assert!(
        described
            .iter()
            .any(|l| l.contains("events_in=4") && l.contains("events_out=2")),
        "{described:?}"
    );
    fnap.ok("DELETE PROCESSOR keep.flows.unix.ar");
    fnap.ok("DELETE FLOW in.flows.unix.ar");
    assert_eq!(
        python("list streams", STREAMS, &[&url]),
        "out_flows_unix_ar"
    );
}
