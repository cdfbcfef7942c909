//! [`check_outage`]: the broker goes away and comes back while a reader
//! consumes in the background.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fnaa_dataplane::pipeline::Codec as _;
use fnaa_dataplane::transport::{Message, Outcome, Source};
use fnaa_event::Event;
use fnaa_event::binding::Mode;

use super::{TransportHarness, encode, event, ids, monitor, native, ready, send_confirmed};

/// Waits up to `within` for `ok`.
async fn eventually(within: Duration, ok: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !ok() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// What [`read_in_background`] saw.
#[derive(Debug, Default)]
struct Seen {
    ids: std::collections::BTreeSet<String>,
    deliveries: usize,
}

/// Reads, decodes and acknowledges in a task of its own, as a pipeline's
/// source task does (a Kafka source reports outages only while it is
/// polled), until `expected` distinct events arrived or `within` passed.
fn read_in_background(
    h: &impl TransportHarness,
    mode: Mode,
    mut source: Box<dyn Source>,
    expected: usize,
    within: Duration,
) -> (
    Arc<std::sync::Mutex<Seen>>,
    tokio::task::JoinHandle<Box<dyn Source>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let mut codec = native(h, mode);
    let name = h.name();
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            let deadline = tokio::time::Instant::now() + within;
            while seen.lock().unwrap().ids.len() < expected {
                let Ok(batch) =
                    tokio::time::timeout_at(deadline, source.recv(100, Duration::from_millis(20)))
                        .await
                else {
                    break;
                };
                let batch = batch.unwrap();
                let messages: Vec<Message> = batch.iter().map(|r| r.message.clone()).collect();
                let events = codec.decode(&messages).unwrap();
                {
                    let mut seen = seen.lock().unwrap();
                    seen.deliveries += batch.len();
                    for (e, m) in events.into_iter().zip(&messages) {
                        let e = e.unwrap_or_else(|e| panic!("{name}: undecodable {m:?}: {e}"));
                        seen.ids.insert(e.id);
                    }
                }
                let acker = source.acker();
                acker
                    .ack(batch.into_iter().map(|r| r.token).collect())
                    .await
                    .unwrap();
            }
            source
        }
    });
    (seen, task)
}

/// Ten messages before an outage, ten sent during it, ten after it, while
/// a reader consumes: the alarms of the sink and the source go up and come
/// down again, the batch sent during the outage is confirmed only after
/// it, and every message reaches the source (duplicates allowed).
pub async fn check_outage(h: &mut impl TransportHarness) {
    let what = format!("{} outage", h.name());
    let mode = h.modes()[0];
    let endpoint = h.endpoint("outage").await;
    let consumer = super::super::unique("outage");
    let source_monitor = monitor(&format!("{what}: source"));
    let sink_monitor = monitor(&format!("{what}: sink"));
    let mut source = h.source(&endpoint, &consumer, source_monitor.clone()).await;
    ready(h, source.as_mut()).await;
    let mut sink = h.sink(&endpoint, sink_monitor.clone());
    let events: Vec<Event> = (0..30).map(|i| event("outage", i)).collect();
    let sent = encode(&mut native(h, mode), &endpoint, &events);
    let (seen, reader) =
        read_in_background(h, mode, source, events.len(), Duration::from_secs(120));
    send_confirmed(h, sink.as_mut(), &sent[..10]).await;
    assert!(
        eventually(Duration::from_secs(20), || seen.lock().unwrap().ids.len()
            >= 10)
        .await,
        "{what}: the messages sent before the outage did not arrive: {:?}",
        seen.lock().unwrap()
    );
    assert!(
        !source_monitor.is_down() && !sink_monitor.is_down(),
        "{what}: an outage was reported before the broker went away"
    );

    h.outage_start().await;
    let started = Instant::now();
    let during: Vec<_> = sent[10..20]
        .chunks(h.max_batch().max(1))
        .map(|batch| tokio::spawn(sink.send(batch.to_vec())))
        .collect();
    for (who, m) in [("sink", &sink_monitor), ("source", &source_monitor)] {
        assert!(
            eventually(Duration::from_secs(30), || m.is_down()).await,
            "{what}: no alarm from the {who} within 30 s of the outage"
        );
    }
    assert!(
        during.iter().all(|t| !t.is_finished()),
        "{what}: the sink finished a batch while the broker was unreachable"
    );
    // Long enough for clients to give up on what they were sending (Kafka
    // `message.timeout.ms`) and send it again.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    h.outage_end().await;

    for task in during {
        let outcomes = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{what}: the batch sent during the outage was not confirmed within 60 s after it"
                )
            })
            .unwrap()
            .unwrap();
        assert!(
            outcomes.iter().all(Outcome::is_confirmed),
            "{what}: the batch sent during the outage: {outcomes:?}"
        );
    }
    send_confirmed(h, sink.as_mut(), &sent[20..]).await;

    // Every message, at least once.
    let source = tokio::time::timeout(Duration::from_secs(150), reader)
        .await
        .unwrap_or_else(|_| panic!("{what}: the reader did not end"))
        .unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let missing: Vec<String> = ids(&events)
        .into_iter()
        .filter(|id| !seen.ids.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} messages lost across the outage: {missing:?} ({} deliveries)",
        missing.len(),
        events.len(),
        seen.deliveries
    );
    for (who, m) in [("sink", &sink_monitor), ("source", &source_monitor)] {
        assert!(
            eventually(Duration::from_secs(30), || !m.is_down()).await,
            "{what}: the {who}'s alarm did not end within 30 s of the broker's return"
        );
        assert!(m.outages() >= 1, "{what}: the {who} counted no outage");
    }
    drop(source);
}
