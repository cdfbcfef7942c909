//! The Kafka transport against a real Kafka-protocol broker (tansu): the
//! transport contract (`common::compliance`), topics made and removed, and
//! librdkafka's mock cluster.

#![allow(clippy::unwrap_used)]

mod common;

use common::compliance::monitor;

use std::sync::Arc;
use std::time::Duration;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::secret::Secret;
use fnaa_dataplane::transport::kafka::{
    KafkaAdmin, KafkaBrokerConfig, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig,
};
use fnaa_dataplane::transport::{DeliveryMode, Destination, Message, Outcome, Sink, Source};
use rdkafka::mocking::MockCluster;

use common::compliance::{self, Endpoint, TransportHarness};

fn message(i: usize) -> Message {
    Message {
        destination: Destination::default(),
        key: Some(format!("k{i}").into_bytes()),
        content_type: Some("application/json".into()),
        headers: vec![
            ("ce_id".into(), format!("{i}").into_bytes()),
            ("ce_type".into(), b"t".to_vec()),
        ],
        payload: format!("{{\"n\":{i}}}").into_bytes(),
    }
}

/// The transport contract ([`common::compliance`]) on a tansu of the
/// harness's own behind a proxy (tansu tells clients to connect to the
/// proxy): an outage cuts the proxy, as when the broker stops, while tansu
/// keeps what it acknowledged (tansu in memory forgets everything when it
/// really stops). Each endpoint is a topic of one partition, each consumer
/// a consumer group; `kcat` is the outside client.
struct KafkaHarness {
    tansu: common::Tansu,
    proxy: Arc<common::TcpProxy>,
}

impl KafkaHarness {
    async fn start() -> KafkaHarness {
        common::init_tracing();
        let proxy_port = common::free_port();
        let tansu = common::Tansu::start_advertising(common::free_port(), proxy_port);
        let proxy = common::TcpProxy::start(proxy_port, tansu.port).await;
        KafkaHarness { tansu, proxy }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.port)
    }

    fn broker(&self) -> KafkaBrokerConfig {
        KafkaBrokerConfig::new(self.bootstrap())
    }
}

impl TransportHarness for KafkaHarness {
    fn name(&self) -> String {
        "kafka (tansu)".into()
    }

    fn connector(&self) -> (&'static str, Vec<(String, String)>) {
        ("kafka", Vec::new())
    }

    async fn endpoint(&mut self, tag: &str) -> Endpoint {
        let topic = common::unique(tag);
        KafkaAdmin::new(&self.broker())
            .unwrap()
            .create_topic(&topic, 1, 1)
            .await
            .unwrap();
        Endpoint {
            name: topic,
            // The sink's default topic.
            destination: Destination::default(),
        }
    }

    async fn source(
        &mut self,
        endpoint: &Endpoint,
        consumer: &str,
        monitor: Arc<OutageMonitor>,
    ) -> Box<dyn Source> {
        let mut config = KafkaSourceConfig::new(vec![endpoint.name.clone()]);
        // A replacement consumer waits for the old one's session to expire
        // if the broker missed its LeaveGroup: keep that short.
        config
            .properties
            .insert("session.timeout.ms".into(), Secret::new("6000"));
        Box::new(
            KafkaSource::new(
                &self.broker(),
                &config,
                consumer,
                DeliveryMode::AtLeastOnce,
                monitor,
            )
            .await
            .unwrap(),
        )
    }

    fn sink(&mut self, endpoint: &Endpoint, monitor: Arc<OutageMonitor>) -> Box<dyn Sink> {
        let mut config = KafkaSinkConfig::new(&endpoint.name);
        // Shorter than an outage: librdkafka gives messages back during it
        // and the sink sends them again.
        config.message_timeout_ms = 1500;
        Box::new(KafkaSink::new(&self.broker(), &config, RetryConfig::default(), monitor).unwrap())
    }

    fn received(&self, endpoint: &Endpoint, sent: &Message) -> Message {
        Message {
            destination: Destination {
                name: endpoint.name.clone(),
                routing_key: None,
            },
            ..sent.clone()
        }
    }

    async fn publish_outside(&mut self, endpoint: &Endpoint, messages: &[Message]) {
        // One `kcat -P` per message (headers are per invocation), which is
        // also one produce request per message (see `max_batch`).
        for m in messages {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            let mut kcat = tokio::process::Command::from(common::kcat());
            kcat.args(["-P", "-b", &self.bootstrap(), "-t", &endpoint.name]);
            if let Some(key) = &m.key {
                kcat.args(["-k", &text(key)]);
            }
            if let Some(ct) = &m.content_type {
                kcat.args(["-H", &format!("content-type={ct}")]);
            }
            for (name, value) in &m.headers {
                kcat.args(["-H", &format!("{name}={}", text(value))]);
            }
            let payload = text(&m.payload);
            assert!(!payload.contains('\n'), "kcat -P splits lines: {payload}");
            let mut child = kcat
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            {
                use tokio::io::AsyncWriteExt as _;
                let mut stdin = child.stdin.take().unwrap();
                stdin
                    .write_all(format!("{payload}\n").as_bytes())
                    .await
                    .unwrap();
            }
            let out = child.wait_with_output().await.unwrap();
            assert!(
                out.status.success(),
                "kcat -P failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    async fn outage_start(&mut self) {
        self.proxy.cut();
    }

    async fn outage_end(&mut self) {
        self.proxy.restore().await;
    }

    /// One produce request per message: tansu 0.6 miscounts the high
    /// watermark of multi-record batches (it ends up below the last
    /// offset), which stops a consumer group from resuming in the middle
    /// of a batch.
    fn max_batch(&self) -> usize {
        1
    }

    fn timestamps(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_contract() {
    let mut h = KafkaHarness::start().await;
    compliance::assert_transport_contract(&mut h).await;
    drop(h.tansu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_their_partitions_and_deleted() {
    common::init_tracing();
    let tansu = common::Tansu::start();
    let broker = KafkaBrokerConfig::new(tansu.bootstrap());
    let topic = common::unique("rt");
    let admin = KafkaAdmin::new(&broker).unwrap();
    admin.create_topic(&topic, 1, 1).await.unwrap();
    assert_eq!(admin.partitions(&topic).await.unwrap(), Some(1));
    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new(&topic),
        RetryConfig::default(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink.send(vec![message(0)]).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed), "{outcomes:?}");
    admin.delete_topic(&topic).await.unwrap();
}

/// librdkafka's mock cluster: a fast check of the sink's delivery reports
/// and of the source, without a broker process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_round_trip() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("mock", 2, 1).unwrap();
    let broker = KafkaBrokerConfig::new(cluster.bootstrap_servers());
    let mut sink = KafkaSink::new(
        &broker,
        &KafkaSinkConfig::new("mock"),
        RetryConfig::default(),
        monitor("sink"),
    )
    .unwrap();
    let outcomes = sink.send((0..100).map(message).collect()).await.unwrap();
    assert!(outcomes.iter().all(Outcome::is_confirmed));
    let mut source = KafkaSource::new(
        &broker,
        &KafkaSourceConfig::new(vec!["mock".into()]),
        "mock-group",
        DeliveryMode::AtLeastOnce,
        monitor("source"),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 100 {
        got.extend(source.recv(100, Duration::from_millis(50)).await.unwrap());
    }
    let mut keys: Vec<Vec<u8>> = got.iter().map(|r| r.message.key.clone().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100);
}
