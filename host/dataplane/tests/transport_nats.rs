//! The NATS transport against a `nats-server` of each test's own (JetStream
//! on, its store in a temporary directory, a free port on 127.0.0.1),
//! stopped and restarted by its own pid: what is NATS's own (`latest`
//! subscriptions, refusals, the binding as `nats-py` reads it, several
//! flows, the admin). The transport contract is in
//! `transport_nats_contract.rs`.
//! A missing `nats-server` or `nats-py` fails the test with what to install.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::ChannelSource;
use fnaa_dataplane::transport::nats;
use fnaa_dataplane::transport::nats::{
    NatsAdmin, NatsSink, NatsSinkConfig, NatsSourceConfig, stream_name,
};
use fnaa_dataplane::transport::{
    Broker as _, DeliveryMode, EndpointContext, Message, Outcome, QueueAdmin as _, QueueLayout,
    Received, Sink, Source,
};
use fnaa_event::binding::{Binding, Codec};
use fnaa_event::{AttributeValue, Event};

use common::NatsServer;

fn context(role: &'static str, delivery: DeliveryMode, what: &str) -> EndpointContext {
    let monitor = Arc::new(OutageMonitor::new(what, Duration::from_secs(60)));
    common::nats::context_with(role, delivery, monitor)
}

async fn admin_with_flow(server: &NatsServer, flow: &str) -> NatsAdmin {
    let admin = NatsAdmin::new(&server.broker());
    admin.create(flow, QueueLayout::default()).await.unwrap();
    admin
}

fn source(server: &NatsServer, config: NatsSourceConfig, ctx: &EndpointContext) -> ChannelSource {
    nats::open_source(&server.broker(), &config, ctx).unwrap()
}

async fn ready(source: &dyn Source) {
    tokio::time::timeout(Duration::from_secs(20), source.ready())
        .await
        .expect("the source did not get ready");
}

async fn receive(source: &mut dyn Source, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = tokio::time::timeout(
            Duration::from_secs(15),
            source.recv(n - got.len(), Duration::from_millis(20)),
        )
        .await
        .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", got.len()))
        .unwrap();
        got.extend(batch);
    }
    got
}

/// Asserts that nothing more arrives within `within`.
async fn nothing_more(source: &mut dyn Source, within: Duration) {
    if let Ok(Ok(extra)) = tokio::time::timeout(within, source.recv(10, Duration::ZERO)).await {
        let ids: Vec<_> = extra.iter().map(|r| id_of(&r.message)).collect();
        panic!("unexpected messages arrived: {ids:?}");
    }
}

fn event(i: usize) -> Event {
    let mut e = Event::new(format!("ev-{i}"), "/test/nats", "test.nats.event")
        .with_data("application/json", format!("{{\"n\":{i}}}").into_bytes());
    e.subject = Some(format!("item {i}"));
    e.time = Some("2026-12-02T06:00:00Z".into());
    e.extensions = vec![
        (
            "category".into(),
            AttributeValue::String("operational".into()),
        ),
        ("hops".into(), AttributeValue::String("3".into())),
    ];
    e
}

fn codec(mode: &str) -> Codec {
    Codec::new(Binding::Nats, &[("mode".into(), mode.into())]).unwrap()
}

/// The `ce-id` header, or the `id` of a structured event.
fn id_of(m: &Message) -> String {
    if let Some(id) = m.header("ce-id") {
        return String::from_utf8_lossy(id).into_owned();
    }
    fnaa_event::from_json(&m.payload)
        .map(|e| e.id)
        .unwrap_or_else(|_| String::from_utf8_lossy(&m.payload).into_owned())
}

fn messages(subject: &str, range: std::ops::Range<usize>) -> Vec<Message> {
    let codec = codec("binary");
    range
        .map(|i| {
            let mut m = codec.encode(&event(i)).unwrap();
            m.destination.name = subject.to_owned();
            m
        })
        .collect()
}

async fn ack(source: &dyn Source, got: Vec<Received>) {
    source
        .acker()
        .ack(got.into_iter().map(|r| r.token).collect())
        .await
        .unwrap();
}

/// Seconds a harness consumer waits for an acknowledgement before the
/// server delivers a message again.
#[tokio::test]
async fn the_admin_creates_and_deletes_streams_and_consumers() {
    common::init_tracing();
    let server = NatsServer::start();
    let flow = "fnaa.test.admin";
    let broker = server.broker();
    let admin = broker.admin().unwrap();
    let nats = NatsAdmin::new(&broker);
    assert!(!nats.stream_exists(flow).await.unwrap());
    admin.create(flow, QueueLayout::default()).await.unwrap();
    admin.create(flow, QueueLayout::default()).await.unwrap();
    assert!(nats.stream_exists(flow).await.unwrap());

    // A source of pipeline `nats-test` keeps durable consumer
    // `fnaa-nats-test` on the stream.
    let ctx = context("source", DeliveryMode::AtLeastOnce, "admin source");
    let settings = broker.flow_source("nats-test", &[flow]);
    let source = broker.source(&ctx, &settings).await.unwrap();
    ready(source.as_ref()).await;
    drop(source);
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(stream_name(flow)).await.unwrap();
    let info = stream.consumer_info(ctx.consumer()).await.unwrap();
    assert_eq!(info.config.durable_name.as_deref(), Some("fnaa-nats-test"));
    admin.delete_consumer(&ctx.consumer()).await.unwrap();
    assert!(stream.consumer_info(ctx.consumer()).await.is_err());
    admin.delete_consumer(&ctx.consumer()).await.unwrap();

    admin.delete(flow).await.unwrap();
    assert!(!nats.stream_exists(flow).await.unwrap());
    admin.delete(flow).await.unwrap();
}

#[tokio::test]
async fn a_latest_source_does_not_replay() {
    common::init_tracing();
    let server = NatsServer::start();
    let flow = "fnaa.test.latest";
    let _admin = admin_with_flow(&server, flow).await;
    let mut sink = NatsSink::new(
        &server.broker(),
        &NatsSinkConfig::subject(flow),
        &context("sink", DeliveryMode::AtLeastOnce, "latest sink"),
    );
    // Stored before the source exists.
    let outcomes = sink.send(messages(flow, 0..5)).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");

    let ctx = context("source", DeliveryMode::Latest, "latest source");
    let mut latest = source(
        &server,
        NatsSourceConfig::streams([stream_name(flow)]),
        &ctx,
    );
    ready(&latest).await;
    let outcomes = sink.send(messages(flow, 5..8)).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    let got = receive(&mut latest, 3).await;
    let ids: Vec<String> = got.iter().map(|r| id_of(&r.message)).collect();
    assert_eq!(ids, ["ev-5", "ev-6", "ev-7"]);
    nothing_more(&mut latest, Duration::from_secs(1)).await;

    // Core NATS subjects too, and a core NATS sink.
    let mut core = source(
        &server,
        NatsSourceConfig {
            subjects: vec!["fnaa.test.core.>".into()],
            ..NatsSourceConfig::default()
        },
        &ctx,
    );
    ready(&core).await;
    let mut core_sink = NatsSink::new(
        &server.broker(),
        &NatsSinkConfig {
            jetstream: false,
            ..NatsSinkConfig::subject("fnaa.test.core.a")
        },
        &context("sink", DeliveryMode::Latest, "core sink"),
    );
    let outcomes = core_sink
        .send(messages("fnaa.test.core.a", 0..3))
        .await
        .unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    assert_eq!(receive(&mut core, 3).await.len(), 3);

    // At least once needs a stream.
    let ctx = context("source", DeliveryMode::AtLeastOnce, "bad source");
    assert!(
        nats::open_source(
            &server.broker(),
            &NatsSourceConfig {
                subjects: vec!["x".into()],
                ..NatsSourceConfig::default()
            },
            &ctx
        )
        .is_err()
    );
}

#[tokio::test]
async fn refusals_are_reported_never_dropped() {
    common::init_tracing();
    let server = NatsServer::start();
    let flow = "fnaa.test.refused";
    let _admin = admin_with_flow(&server, flow).await;
    let mut sink = NatsSink::new(
        &server.broker(),
        &NatsSinkConfig::subject(flow),
        &context("sink", DeliveryMode::AtLeastOnce, "refusing sink"),
    );
    let mut batch = messages(flow, 0..3);
    // No stream captures this subject.
    batch[1].destination.name = "fnaa.test.nowhere".into();
    // Over the server's max_payload (1 MiB by default).
    batch[2].payload = vec![b'x'; 2 * 1024 * 1024];
    let outcomes = sink.send(batch).await.unwrap();
    assert_eq!(outcomes[0], Outcome::Confirmed);
    match &outcomes[1] {
        Outcome::Rejected { reason } => assert!(reason.contains("fnaa.test.nowhere"), "{reason}"),
        other => panic!("a message for no stream came out as {other:?}"),
    }
    match &outcomes[2] {
        Outcome::Rejected { reason } => assert!(reason.contains("payload"), "{reason}"),
        other => panic!("an oversized message came out as {other:?}"),
    }
}

/// An outsider (Python `nats-py`) fetches what we publish from the stream
/// and sees the CloudEvents NATS binding: `ce-` headers in binary mode,
/// `Content-Type: application/cloudevents+json` and the JSON document in
/// structured mode.
#[tokio::test]
async fn python_nats_py_reads_what_we_publish() {
    common::init_tracing();
    let python = common::python_with_nats();
    let server = NatsServer::start();
    let flow = "fnaa.test.outsider";
    let _admin = admin_with_flow(&server, flow).await;
    let mut sink = NatsSink::new(
        &server.broker(),
        &NatsSinkConfig::subject(flow),
        &context("sink", DeliveryMode::AtLeastOnce, "outsider sink"),
    );
    let mut e = event(1);
    e.subject = Some("caf\u{e9} 50%".into());
    let binary = codec("binary").encode(&e).unwrap();
    let structured = codec("structured").encode(&event(2)).unwrap();
    let outcomes = sink.send(vec![binary, structured]).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");

    let script = r#"
import asyncio, json, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    sub = await js.pull_subscribe(sys.argv[2], stream=sys.argv[3])
    msgs = await sub.fetch(2, timeout=10)
    out = []
    for m in msgs:
        out.append({"subject": m.subject, "headers": dict(m.headers or {}), "data": m.data.decode()})
        await m.ack()
    print(json.dumps(out))
    await nc.close()

asyncio.run(main())
"#;
    let out = Command::new(&python)
        .args(["-c", script, &server.url(), flow, &stream_name(flow)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nats-py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &seen[0];
    assert_eq!(first["subject"], flow);
    let h = &first["headers"];
    assert_eq!(h["ce-specversion"], "1.0");
    assert_eq!(h["ce-id"], "ev-1");
    assert_eq!(h["ce-source"], "/test/nats");
    assert_eq!(h["ce-type"], "test.nats.event");
    assert_eq!(h["ce-datacontenttype"], "application/json");
    assert_eq!(h["ce-subject"], "caf%C3%A9%2050%25");
    assert_eq!(h["ce-category"], "operational");
    assert!(h.get("Content-Type").is_none(), "{h}");
    assert_eq!(first["data"], "{\"n\":1}");

    let second = &seen[1];
    assert_eq!(
        second["headers"]["Content-Type"],
        "application/cloudevents+json; charset=UTF-8"
    );
    assert!(second["headers"].get("ce-id").is_none());
    let doc: serde_json::Value = serde_json::from_str(second["data"].as_str().unwrap()).unwrap();
    assert_eq!(doc["specversion"], "1.0");
    assert_eq!(doc["id"], "ev-2");
    assert_eq!(doc["data"]["n"], 2);
}

/// Several batches in flight at once, and one source on the streams of
/// two flows (what `flow_source` gives a processor reading both).
#[tokio::test]
async fn batches_in_flight_and_a_source_on_two_flows() {
    common::init_tracing();
    let server = NatsServer::start();
    let broker = server.broker();
    let admin = broker.admin().unwrap();
    let (a, b) = ("fnaa.test.two.a", "fnaa.test.two.b");
    for flow in [a, b] {
        admin.create(flow, QueueLayout::default()).await.unwrap();
    }
    let ctx = context("source", DeliveryMode::AtLeastOnce, "two flows source");
    let settings = broker.flow_source("nats-test", &[a, b]);
    let mut source = broker.source(&ctx, &settings).await.unwrap();
    ready(source.as_ref()).await;
    let sink_ctx = context("sink", DeliveryMode::AtLeastOnce, "two flows sink");
    let mut sink = broker.sink(&sink_ctx, &broker.flow_sink(a)).unwrap();
    // Three batches started before any is awaited; the last one names the
    // other flow's subject itself.
    let first = sink.send(messages(a, 0..5));
    let second = sink.send(messages(a, 5..10));
    let third = sink.send(messages(b, 10..15));
    for batch in [first, second, third] {
        let outcomes = batch.await.unwrap();
        assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    }
    let got = receive(source.as_mut(), 15).await;
    let from_a: Vec<String> = got
        .iter()
        .filter(|r| r.message.destination.name == a)
        .map(|r| id_of(&r.message))
        .collect();
    assert_eq!(
        from_a,
        (0..10).map(|i| format!("ev-{i}")).collect::<Vec<_>>(),
        "flow a out of order"
    );
    let from_b = got
        .iter()
        .filter(|r| r.message.destination.name == b)
        .count();
    assert_eq!(from_b, 5);
    ack(source.as_ref(), got).await;
    nothing_more(source.as_mut(), Duration::from_millis(500)).await;
}
