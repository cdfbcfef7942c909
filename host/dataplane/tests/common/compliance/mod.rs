//! The transport contract of `fnaa_dataplane::transport` (see its module
//! documentation), checked the same way for every broker.
//!
//! A broker's test file implements [`TransportHarness`] (how to make a
//! source and a sink, how an outside client publishes, how to make the
//! broker unreachable and bring it back) and calls
//! [`assert_transport_contract`], or the checks one by one:
//!
//! * [`check_round_trip`]: for every CloudEvents binding mode the broker
//!   carries, events encoded by the native connector
//!   (`fnaa_dataplane::pipeline::native::NativeCodec`) go through our sink
//!   and come out of our source unchanged, in order, every message
//!   confirmed; messages an outside client publishes decode to the events
//!   they were made from.
//! * [`check_ack_after_confirm`]: nothing is acknowledged behind the
//!   pipeline's back: a source dropped before it acknowledged anything
//!   leaves every message to the next source of the same consumer.
//! * [`check_redelivery_after_restart`]: a consumer that restarts resumes
//!   exactly after what it acknowledged, including what was published
//!   while it was away.
//! * [`check_outage`]: an outage raises the alarm of the sink and of the
//!   source, a batch sent during it is confirmed only once the broker is
//!   back, both alarms end, and nothing sent before, during or after the
//!   outage is lost (duplicates are allowed: at least once).
//!
//! # Writing a harness (e.g. for NATS)
//!
//! ```ignore
//! mod common;
//! use common::compliance::{self, Endpoint, TransportHarness};
//!
//! struct NatsHarness { server: NatsServer /* started per test */ }
//!
//! impl TransportHarness for NatsHarness {
//!     fn name(&self) -> String { "nats".into() }
//!     fn connector(&self) -> (&'static str, Vec<(String, String)>) { ("nats", vec![]) }
//!     fn modes(&self) -> Vec<Mode> { vec![Mode::Binary, Mode::Structured] }
//!     async fn endpoint(&mut self, tag: &str) -> Endpoint { /* a new subject/stream */ }
//!     async fn source(&mut self, ep: &Endpoint, consumer: &str, m: Arc<OutageMonitor>) -> Box<dyn Source> { .. }
//!     fn sink(&mut self, ep: &Endpoint, m: Arc<OutageMonitor>) -> Box<dyn Sink> { .. }
//!     async fn publish_outside(&mut self, ep: &Endpoint, messages: &[Message]) { /* `nats pub` */ }
//!     async fn outage_start(&mut self) { self.server.stop() }
//!     async fn outage_end(&mut self) { self.server.restart() }
//! }
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn transport_contract() {
//!     compliance::assert_transport_contract(&mut NatsHarness::start()).await;
//! }
//! ```
//!
//! Every check makes its own [`Endpoint`]s, so one harness (one broker)
//! serves them all, one after the other. The three harnesses of
//! `transport_{mqtt,amqp,kafka}.rs` are worked examples: a broker stopped
//! and restarted (Mosquitto), a proxy cut in front of a shared broker
//! (RabbitMQ), a proxy the broker advertises (tansu).
//!
//! What the checks assume of a harness:
//!
//! * [`TransportHarness::connector`] names a plugin `NativeCodec` knows
//!   (`kafka`, `mqtt`, `amqp`): a broker with a binding of its own needs
//!   it added to `fnaa_dataplane::pipeline::native` first.
//! * Sources are polled while the checks wait for [`Source::ready`] and
//!   during the outage, as a pipeline polls them; nothing is published to
//!   an endpoint before its first source is ready.
//! * Each wait has a limit (20-60 s) and fails the test with what was
//!   missing; a broker that cannot be started fails it too (the broker
//!   helpers of this module's parent say what to install).

mod outage;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::pipeline::Codec as _;
use fnaa_dataplane::pipeline::native::NativeCodec;
use fnaa_dataplane::transport::{Destination, Message, Outcome, Received, Sink, Source};
use fnaa_event::binding::Mode;
use fnaa_event::{AttributeValue, Event};

// Not every test file checks outages.
#[allow(unused_imports)]
pub use outage::check_outage;

/// Where a check publishes and reads: made by
/// [`TransportHarness::endpoint`], unique to the check.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The harness's own name for it (topic prefix, queue, Kafka topic).
    pub name: String,
    /// Where the messages the checks send go (MQTT topic, AMQP exchange
    /// and routing key; empty: the sink's default destination).
    pub destination: Destination,
}

/// What the compliance checks need of one broker. One value serves every
/// check of [`assert_transport_contract`], which run one after the other;
/// `&mut self` everywhere, so that a harness can own and restart its
/// broker process.
#[allow(async_fn_in_trait)]
pub trait TransportHarness {
    /// The broker as failure messages name it (`mqtt 5 qos 1`, `amqp`).
    fn name(&self) -> String;

    /// The native connector of the broker's CloudEvents binding (`mqtt`,
    /// `amqp`, `kafka`: a plugin name of
    /// `fnaa_dataplane::pipeline::native::NativeCodec`) and its
    /// configuration besides `mode` (e.g. `version = 3.1.1`).
    fn connector(&self) -> (&'static str, Vec<(String, String)>);

    /// The binding modes the broker carries: binary and structured, or
    /// structured only (MQTT 3.1.1 has no user properties).
    fn modes(&self) -> Vec<Mode> {
        vec![Mode::Binary, Mode::Structured]
    }

    /// A new endpoint for the check `tag`, ready to take messages: what
    /// must exist before anything is published exists (Kafka topic, AMQP
    /// exchange and a durable queue bound to it).
    async fn endpoint(&mut self, tag: &str) -> Endpoint;

    /// An at-least-once source reading `endpoint` as `consumer`: two
    /// sources with the same endpoint and consumer share what the broker
    /// keeps for them (MQTT persistent session of a client id, AMQP queue,
    /// Kafka consumer group). The checks wait for [`Source::ready`].
    async fn source(
        &mut self,
        endpoint: &Endpoint,
        consumer: &str,
        monitor: Arc<OutageMonitor>,
    ) -> Box<dyn Source>;

    /// A sink publishing to `endpoint` (its default destination, when it
    /// has one, is the endpoint's).
    fn sink(&mut self, endpoint: &Endpoint, monitor: Arc<OutageMonitor>) -> Box<dyn Sink>;

    /// What a source returns for a message our sink sent: `sent`, unless
    /// the source fills in what the sender left to the sink (Kafka: the
    /// topic).
    fn received(&self, endpoint: &Endpoint, sent: &Message) -> Message {
        let _ = endpoint;
        sent.clone()
    }

    /// Publishes `messages` (destination already set), in order, with a
    /// client that is not ours (`mosquitto_pub`, `kcat`, `pika`), and
    /// returns once the broker took them.
    async fn publish_outside(&mut self, endpoint: &Endpoint, messages: &[Message]);

    /// Makes the broker unreachable to every client: stops it, or cuts a
    /// proxy in front of it. What the broker acknowledged must survive
    /// (persistence, or a broker that keeps running behind the proxy).
    async fn outage_start(&mut self);

    /// Ends the outage: the broker is back on the same address.
    async fn outage_end(&mut self);

    /// The most messages one [`Sink::send`] may carry (tansu 0.6
    /// miscounts the end offset of multi-record batches: 1).
    fn max_batch(&self) -> usize {
        usize::MAX
    }

    /// Whether received messages carry a timestamp (Kafka broker time,
    /// AMQP `timestamp` property).
    fn timestamps(&self) -> bool {
        false
    }
}

/// Every check of this module, in turn.
pub async fn assert_transport_contract(h: &mut impl TransportHarness) {
    check_round_trip(h).await;
    check_ack_after_confirm(h).await;
    check_redelivery_after_restart(h).await;
    check_outage(h).await;
}

/// An outage monitor that reminds every 60 s (a check reads its state).
pub fn monitor(what: &str) -> Arc<OutageMonitor> {
    Arc::new(OutageMonitor::new(what, Duration::from_secs(60)))
}

/// Event `i` of a check: every kind of attribute the bindings carry.
pub fn event(tag: &str, i: usize) -> Event {
    let mut e = Event::new(
        format!("{tag}-{i}"),
        "/fnaa/compliance",
        "org.example.reading",
    )
    .with_data("application/json", format!("{{\"n\":{i}}}").into_bytes());
    e.subject = Some(format!("item/{i}"));
    e.time = Some("2026-11-22T10:00:00Z".into());
    e.set_extension("category", AttributeValue::String("operational".into()));
    e.set_extension(
        "partitionkey",
        AttributeValue::String(format!("k{}", i % 3)),
    );
    e
}

fn native(h: &impl TransportHarness, mode: Mode) -> NativeCodec {
    let (plugin, mut config) = h.connector();
    let mode = match mode {
        Mode::Binary => "binary",
        Mode::Structured => "structured",
    };
    config.push(("mode".into(), mode.into()));
    NativeCodec::new(plugin, &config).unwrap_or_else(|e| panic!("{}: {e}", h.name()))
}

/// `events` encoded by `codec`, addressed to `endpoint`.
fn encode(codec: &mut NativeCodec, endpoint: &Endpoint, events: &[Event]) -> Vec<Message> {
    codec
        .encode(events)
        .unwrap()
        .into_iter()
        .map(|m| {
            let mut m = m.unwrap();
            m.destination = endpoint.destination.clone();
            m
        })
        .collect()
}

fn decode(h: &impl TransportHarness, mode: Mode, got: &[Received]) -> Vec<Event> {
    let messages: Vec<Message> = got.iter().map(|r| r.message.clone()).collect();
    native(h, mode)
        .decode(&messages)
        .unwrap()
        .into_iter()
        .zip(&messages)
        .map(|(e, m)| e.unwrap_or_else(|e| panic!("{}: undecodable {m:?}: {e}", h.name())))
        .collect()
}

/// Sends `messages` through `sink`, at most `h.max_batch()` per batch;
/// every one must be confirmed.
async fn send_confirmed(h: &impl TransportHarness, sink: &mut dyn Sink, messages: &[Message]) {
    for batch in messages.chunks(h.max_batch().max(1)) {
        let outcomes = tokio::time::timeout(Duration::from_secs(30), sink.send(batch.to_vec()))
            .await
            .unwrap_or_else(|_| panic!("{}: the sink confirmed nothing within 30 s", h.name()))
            .unwrap();
        assert_eq!(outcomes.len(), batch.len(), "{}: {outcomes:?}", h.name());
        assert!(
            outcomes.iter().all(Outcome::is_confirmed),
            "{}: the broker did not confirm every message: {outcomes:?}",
            h.name()
        );
    }
}

/// Receives exactly `n` messages (never asks for more), or panics after
/// `within` with what arrived.
pub async fn receive(
    what: &str,
    source: &mut dyn Source,
    n: usize,
    within: Duration,
) -> Vec<Received> {
    let mut got: Vec<Received> = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while got.len() < n {
        let batch = tokio::time::timeout_at(
            deadline,
            source.recv(n - got.len(), Duration::from_millis(20)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what}: only {} of {n} messages arrived within {within:?}",
                got.len()
            )
        })
        .unwrap();
        got.extend(batch);
    }
    got
}

/// Panics if `source` delivers anything within `quiet`.
async fn expect_nothing_more(what: &str, source: &mut dyn Source, quiet: Duration) {
    if let Ok(more) = tokio::time::timeout(quiet, source.recv(100, Duration::ZERO)).await {
        let more = more.unwrap();
        panic!(
            "{what}: {} unexpected message(s) arrived: {:?}",
            more.len(),
            more.iter().map(|r| &r.message).collect::<Vec<_>>()
        );
    }
}

/// Waits for [`Source::ready`] while polling the source (a Kafka source
/// learns its partitions in the rebalance callback, which runs only while
/// the consumer is polled); nothing may arrive meanwhile, since nothing was
/// published yet.
async fn ready(h: &impl TransportHarness, source: &mut dyn Source) {
    let ready = source.ready();
    let wait = async {
        tokio::select! {
            () = ready => None,
            got = source.recv(1, Duration::ZERO) => Some(got),
        }
    };
    match tokio::time::timeout(Duration::from_secs(20), wait).await {
        Err(_) => panic!(
            "{}: the source did not start consuming within 20 s",
            h.name()
        ),
        Ok(None) => {}
        Ok(Some(got)) => panic!(
            "{}: the source received something before anything was published: {got:?}",
            h.name()
        ),
    }
}

async fn ack(source: &dyn Source, got: Vec<Received>) {
    source
        .acker()
        .ack(got.into_iter().map(|r| r.token).collect())
        .await
        .unwrap();
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// Round trip in every mode of [`TransportHarness::modes`]: our sink to
/// our source (messages unchanged, in order, confirmed, decoded to the
/// events they were made from), then an outside client to our source.
pub async fn check_round_trip(h: &mut impl TransportHarness) {
    const N: usize = 30;
    for mode in h.modes() {
        let what = format!("{} round trip ({mode:?} mode)", h.name());
        let tag = format!("rt-{mode:?}").to_lowercase();
        let endpoint = h.endpoint(&tag).await;
        let consumer = super::unique("rt");
        let mut source = h.source(&endpoint, &consumer, monitor(&what)).await;
        ready(h, source.as_mut()).await;
        let mut sink = h.sink(&endpoint, monitor(&what));
        let mut codec = native(h, mode);

        let events: Vec<Event> = (0..N).map(|i| event(&tag, i)).collect();
        let sent = encode(&mut codec, &endpoint, &events);
        send_confirmed(h, sink.as_mut(), &sent).await;
        let got = receive(&what, source.as_mut(), N, Duration::from_secs(20)).await;
        for (i, (s, r)) in sent.iter().zip(&got).enumerate() {
            assert_eq!(
                r.message,
                h.received(&endpoint, s),
                "{what}: message {i} changed on its way"
            );
            if h.timestamps() {
                assert!(
                    r.timestamp_ms.is_some(),
                    "{what}: message {i} has no timestamp"
                );
            }
        }
        assert_eq!(
            decode(h, mode, &got),
            events,
            "{what}: the events decoded are not those sent"
        );
        ack(source.as_ref(), got).await;

        // What an outside client publishes in this mode.
        let what = format!("{what}, published by an outside client");
        let events: Vec<Event> = (N..N + 10).map(|i| event(&tag, i)).collect();
        let outside = encode(&mut codec, &endpoint, &events);
        h.publish_outside(&endpoint, &outside).await;
        let got = receive(
            &what,
            source.as_mut(),
            events.len(),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(
            decode(h, mode, &got),
            events,
            "{what}: the events decoded are not those published"
        );
        ack(source.as_ref(), got).await;
        expect_nothing_more(&what, source.as_mut(), Duration::from_millis(300)).await;
    }
}

/// A source that received everything and acknowledged nothing is dropped;
/// the next source of the same consumer receives every message again.
pub async fn check_ack_after_confirm(h: &mut impl TransportHarness) {
    const N: usize = 8;
    let what = format!("{} unacknowledged messages", h.name());
    let mode = h.modes()[0];
    let endpoint = h.endpoint("noack").await;
    let consumer = super::unique("noack");
    let mut source = h.source(&endpoint, &consumer, monitor(&what)).await;
    ready(h, source.as_mut()).await;
    let mut sink = h.sink(&endpoint, monitor(&what));
    let events: Vec<Event> = (0..N).map(|i| event("noack", i)).collect();
    let sent = encode(&mut native(h, mode), &endpoint, &events);
    send_confirmed(h, sink.as_mut(), &sent).await;
    let got = receive(&what, source.as_mut(), N, Duration::from_secs(20)).await;
    assert_eq!(ids(&decode(h, mode, &got)), ids(&events), "{what}");
    // No ack: the pipeline acknowledges only what its sink confirmed, and
    // this sink confirmed nothing.
    drop(got);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(source);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut again = h.source(&endpoint, &consumer, monitor(&what)).await;
    let got = receive(
        &format!("{what}, after the source was replaced"),
        again.as_mut(),
        N,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        ids(&decode(h, mode, &got)),
        ids(&events),
        "{what}: a new source of the same consumer should get every unacknowledged message again, in order"
    );
    ack(again.as_ref(), got).await;
}

/// A consumer acknowledges the first six of ten messages and restarts; one
/// more is published while it is away; the new source receives the last
/// four and the new one, in order, and nothing it acknowledged.
pub async fn check_redelivery_after_restart(h: &mut impl TransportHarness) {
    let what = format!("{} redelivery after a consumer restart", h.name());
    let mode = h.modes()[0];
    let endpoint = h.endpoint("restart").await;
    let consumer = super::unique("restart");
    let mut source = h.source(&endpoint, &consumer, monitor(&what)).await;
    ready(h, source.as_mut()).await;
    let mut sink = h.sink(&endpoint, monitor(&what));
    let mut codec = native(h, mode);
    let events: Vec<Event> = (0..11).map(|i| event("restart", i)).collect();
    let sent = encode(&mut codec, &endpoint, &events);
    send_confirmed(h, sink.as_mut(), &sent[..10]).await;
    let mut got = receive(&what, source.as_mut(), 10, Duration::from_secs(20)).await;
    assert_eq!(ids(&decode(h, mode, &got)), ids(&events[..10]), "{what}");
    // Acknowledge only the first six, then go away.
    got.truncate(6);
    ack(source.as_ref(), got).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(source);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Published while the consumer is away: kept for it.
    send_confirmed(h, sink.as_mut(), &sent[10..]).await;

    let mut again = h.source(&endpoint, &consumer, monitor(&what)).await;
    let what = format!("{what}, after the restart");
    let got = receive(&what, again.as_mut(), 5, Duration::from_secs(30)).await;
    assert_eq!(
        ids(&decode(h, mode, &got)),
        ids(&events[6..]),
        "{what}: the consumer should resume right after what it acknowledged"
    );
    ack(again.as_ref(), got).await;
    expect_nothing_more(&what, again.as_mut(), Duration::from_millis(500)).await;
}
