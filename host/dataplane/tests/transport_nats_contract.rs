//! The transport contract (`common::compliance`) on NATS: JetStream
//! streams and durable consumers on a `nats-server` of the test's own.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::nats;
use fnaa_dataplane::transport::nats::{
    NatsAdmin, NatsSink, NatsSinkConfig, NatsSourceConfig, stream_name,
};
use fnaa_dataplane::transport::{
    Acker, DeliveryMode, Destination, Message, QueueAdmin as _, QueueLayout, Received, Sink,
    Source, TransportError,
};
use futures::future::BoxFuture;

use common::NatsServer;
use common::compliance::{self, Endpoint, TransportHarness};

const ACK_WAIT_S: u64 = 2;

/// The transport contract ([`common::compliance`]) on a `nats-server` of
/// the harness's own. Each endpoint is an FNAP flow: its JetStream stream
/// (made by [`NatsAdmin`]) captures the flow's subject, which is the sink's
/// `subject`; each consumer is a durable pull consumer of that name on the
/// stream (`NatsSourceConfig::consumer`). The outside client is Python
/// `nats-py` publishing through JetStream; an outage stops the server (by
/// its pid) and starts it again on the same port and store.
struct NatsHarness {
    server: NatsServer,
}

impl NatsHarness {
    fn start() -> NatsHarness {
        common::init_tracing();
        NatsHarness {
            server: NatsServer::start(),
        }
    }

    /// Outstanding deliveries of durable consumer `consumer` on the stream
    /// of `endpoint` (0 when it does not exist yet).
    async fn ack_pending(&self, endpoint: &Endpoint, consumer: &str) -> usize {
        let client = async_nats::connect(self.server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(stream_name(&endpoint.name)).await.unwrap();
        stream
            .consumer_info(consumer)
            .await
            .map_or(0, |info| info.num_ack_pending)
    }
}

impl TransportHarness for NatsHarness {
    fn name(&self) -> String {
        "nats (jetstream)".into()
    }

    fn connector(&self) -> (&'static str, Vec<(String, String)>) {
        ("nats", Vec::new())
    }

    async fn endpoint(&mut self, tag: &str) -> Endpoint {
        let flow = format!("fnaa.compliance.{}", common::unique(tag));
        NatsAdmin::new(&self.server.broker())
            .create(&flow, QueueLayout::default())
            .await
            .unwrap();
        Endpoint {
            name: flow,
            // The sink's `subject`.
            destination: Destination::default(),
        }
    }

    /// A durable consumer hands out again what it delivered and nobody
    /// acknowledged only once its ack wait passed; a source that comes
    /// back sooner gets what was published meanwhile first. So the
    /// replacement of a source that left deliveries outstanding starts
    /// after the ack wait, as a pipeline that restarts in no less time
    /// than that does: then the consumer resumes in order.
    async fn source(
        &mut self,
        endpoint: &Endpoint,
        consumer: &str,
        monitor: Arc<OutageMonitor>,
    ) -> Box<dyn Source> {
        if self.ack_pending(endpoint, consumer).await > 0 {
            tokio::time::sleep(Duration::from_millis(ACK_WAIT_S * 1000 + 500)).await;
        }
        let config = NatsSourceConfig {
            consumer: Some(consumer.to_owned()),
            ack_wait_s: Some(ACK_WAIT_S),
            ..NatsSourceConfig::streams([stream_name(&endpoint.name)])
        };
        let ctx = common::nats::context_with("source", DeliveryMode::AtLeastOnce, monitor);
        Box::new(WithoutMsgId(
            nats::open_source(&self.server.broker(), &config, &ctx).unwrap(),
        ))
    }

    fn sink(&mut self, endpoint: &Endpoint, monitor: Arc<OutageMonitor>) -> Box<dyn Sink> {
        let config = NatsSinkConfig {
            // Shorter than an outage: the sink publishes again meanwhile.
            ack_timeout_ms: Some(1000),
            ..NatsSinkConfig::subject(&endpoint.name)
        };
        let ctx = common::nats::context_with("sink", DeliveryMode::AtLeastOnce, monitor);
        Box::new(NatsSink::new(&self.server.broker(), &config, &ctx))
    }

    /// The subject filled in, and the headers in the order the source
    /// gives them (by name: NATS header maps have no order).
    fn received(&self, endpoint: &Endpoint, sent: &Message) -> Message {
        let mut m = sent.clone();
        if m.destination.name.is_empty() {
            m.destination.name = endpoint.name.clone();
        }
        m.headers.sort_by(|a, b| a.0.cmp(&b.0));
        m
    }

    async fn publish_outside(&mut self, endpoint: &Endpoint, messages: &[Message]) {
        let python = common::python_with_nats();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let batch: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                let mut headers = serde_json::Map::new();
                for (name, value) in &m.headers {
                    let value = String::from_utf8(value.clone()).unwrap();
                    assert!(
                        headers.insert(name.clone(), value.into()).is_none(),
                        "nats-py takes one value per header: {name}"
                    );
                }
                if let Some(ct) = &m.content_type {
                    headers.insert("Content-Type".into(), ct.clone().into());
                }
                let subject = if m.destination.name.is_empty() {
                    &endpoint.name
                } else {
                    &m.destination.name
                };
                serde_json::json!({
                    "subject": subject,
                    "headers": headers,
                    "payload": hex(&m.payload),
                })
            })
            .collect();
        let script = r#"
import asyncio, json, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    for m in json.load(sys.stdin):
        await js.publish(m["subject"], bytes.fromhex(m["payload"]), headers=m["headers"] or None)
    await nc.close()

asyncio.run(main())
"#;
        let mut child = tokio::process::Command::new(&python)
            .args(["-c", script, &self.server.url()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use tokio::io::AsyncWriteExt as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(&serde_json::to_vec(&batch).unwrap())
                .await
                .unwrap();
        }
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("nats-py did not publish within 30 s")
            .unwrap();
        assert!(
            out.status.success(),
            "nats-py failed to publish: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn outage_start(&mut self) {
        self.server.stop();
    }

    async fn outage_end(&mut self) {
        // Waits for the server on this thread; the clients run on the
        // runtime's workers meanwhile.
        tokio::task::block_in_place(|| self.server.restart());
    }

    fn timestamps(&self) -> bool {
        true
    }
}

/// A source of the harness: what it receives without the `Nats-Msg-Id`
/// header, which our sink adds to each message for the stream's duplicate
/// window (an id of the sink's own, so not one the checks can expect).
struct WithoutMsgId(fnaa_dataplane::transport::ChannelSource);

impl Source for WithoutMsgId {
    fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(async move {
            let mut got = self.0.recv(max, linger).await?;
            for r in &mut got {
                r.message
                    .headers
                    .retain(|(name, _)| !name.eq_ignore_ascii_case("Nats-Msg-Id"));
            }
            Ok(got)
        })
    }

    fn acker(&self) -> Arc<dyn Acker> {
        self.0.acker()
    }

    fn describe(&self) -> String {
        self.0.describe()
    }

    fn backlog(&self) -> Option<u64> {
        self.0.backlog()
    }

    fn ready(&self) -> BoxFuture<'static, ()> {
        self.0.ready()
    }
}

/// Round trip in both modes (and from `nats-py`), nothing acknowledged
/// behind the pipeline's back, a durable consumer resuming after a
/// restart, and an outage: see [`common::compliance`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_contract() {
    compliance::assert_transport_contract(&mut NatsHarness::start()).await;
}
