//! The host of the Kytos tests: `fnaa serve` with the ingestion listener,
//! an outbox and EP038's pipeline, and what the tests share.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::controller::Kytos;
use super::rabbit::{Consumer, Exchanges};
use crate::common::{self, Host, write_config};

/// Where the EP038 pipeline publishes.
pub enum SinkBroker<'a> {
    /// RabbitMQ on 127.0.0.1:`port` as `user`, with the sink's `amqp`
    /// settings (the exchanges are the classifier's).
    Rabbit {
        port: u16,
        user: (&'a str, &'a str),
        amqp: &'a str,
    },
    /// A Kafka-protocol broker: one topic per exchange name.
    Kafka { bootstrap: &'a str },
}

impl<'a> SinkBroker<'a> {
    /// The shared RabbitMQ as guest.
    pub fn rabbit(amqp: &'a str) -> SinkBroker<'a> {
        SinkBroker::Rabbit {
            port: 5672,
            user: ("guest", "guest"),
            amqp,
        }
    }
}

/// An `fnaa serve` with the ingestion listener, an outbox and the EP038
/// pipeline to `sink` (its flows on RabbitMQ); returns the host, the
/// ingestion URL and the token file.
pub fn ep038_host(
    dir: &Path,
    admin: &str,
    operational: &str,
    sink: SinkBroker,
    topology_flow: Option<&str>,
) -> (Host, String, std::path::PathBuf) {
    let ((username, password), rabbit_port) = match sink {
        SinkBroker::Rabbit { port, user, .. } => (user, port),
        SinkBroker::Kafka { .. } => (("guest", "guest"), 5672),
    };
    let (sink_broker, sink_line) = match sink {
        SinkBroker::Rabbit { amqp, .. } => (
            String::new(),
            format!(
                r#"{{ broker = "rabbit", connector_config = {{ destination = "{{exchange}}", routing_key = "{{category}}.{{type}}" }}, amqp = {{ {amqp} }} }}"#
            ),
        ),
        SinkBroker::Kafka { bootstrap } => (
            format!(
                "[brokers.connections.kafka]\ntype = \"kafka\"\nbootstrap_servers = \"{bootstrap}\"\n"
            ),
            r#"{ broker = "kafka", connector_config = { destination = "{exchange}" } }"#.to_owned(),
        ),
    };
    let [fnap_port, dns_port, mqtt_port, ingest_port] = common::free_ports();
    let token_file = dir.join("ingest.token");
    std::fs::write(&token_file, "kytos-secret-token\n").unwrap();
    let extra = format!(
        r#"
[flows]
broker = "rabbit"

[brokers.connections.inbox]
type = "outbox"
path = "{dir}/inbox.redb"

[brokers.connections.rabbit]
type = "amqp"
host = "127.0.0.1"
port = {rabbit_port}
username = "{username}"
password = "{password}"

{sink_broker}
[ingest]
listen = "127.0.0.1:{ingest_port}"
outbox = "inbox"
topics = ["kytos"]
token_file = "{token}"

[[pipelines]]
name = "kytos-ep038"
source = {{ broker = "inbox", outbox = {{ topics = ["kytos"] }} }}
processors = [{{ plugin = "classifier", config = {{ admin_exchange = "{admin}", operational_exchange = "{operational}" }} }}]
sink = {sink_line}
"#,
        dir = dir.display(),
        token = token_file.display(),
    );
    // The same events, classified, into a flow of the host: a second
    // consumer of the outbox topic, whose sink is the flow's exchange.
    let extra = match topology_flow {
        Some(flow) => format!(
            r#"{extra}
[[pipelines]]
name = "kytos-topology-flow"
source = {{ broker = "inbox", outbox = {{ topics = ["kytos"], consumer = "topology-flow" }} }}
processors = [{{ plugin = "classifier" }}]
sink = {{ broker = "rabbit", connector_config = {{ routing_key = "{{category}}.{{type}}" }}, amqp = {{ exchange = "{flow}", mandatory = false }} }}
"#
        ),
        None => extra,
    };
    let config = write_config(dir, fnap_port, dns_port, mqtt_port, &extra);
    if let Some(flow) = topology_flow {
        let namespace = flow.split_once('.').map_or(flow, |(_, rest)| rest);
        common::add_user(&config, "test", "test", namespace);
    }
    let host = Host::start(dir, &config, fnap_port);
    let url = format!("http://127.0.0.1:{ingest_port}/events/kytos");
    (host, url, token_file)
}

pub fn link(name: &str, a: &str, b: &str) -> Value {
    json!({ "name": name, "link": [a, 1, b, 1], "reason": "test" })
}

pub const DPID_A: &str = "00:00:00:00:00:00:00:0a";
pub const DPID_B: &str = "00:00:00:00:00:00:00:0b";

/// One run's exchanges, consumer, host and directory.
pub struct Ep038 {
    pub run: String,
    pub consumer: Consumer,
    pub host: Host,
    pub url: String,
    pub token: std::path::PathBuf,
    pub exchanges: Exchanges,
    pub dir: tempfile::TempDir,
}

impl Ep038 {
    /// The consumer first (its exchanges exist before anything is
    /// published), then the host, whose AMQP sink takes the settings
    /// `sink_amqp` makes of the run's name.
    pub fn start(tag: &str, sink_amqp: impl Fn(&str) -> String) -> Ep038 {
        let run = crate::brokers::unique(tag);
        let (admin, operational) = (
            format!("{run}.admin_events"),
            format!("{run}.operational_events"),
        );
        let exchanges = Exchanges(vec![admin.clone(), operational.clone()]);
        let consumer = Consumer::start(&admin, &operational, &run);
        let dir = tempfile::tempdir().unwrap();
        let amqp = sink_amqp(&run);
        let (host, url, token) = ep038_host(
            dir.path(),
            &admin,
            &operational,
            SinkBroker::rabbit(&amqp),
            None,
        );
        Ep038 {
            run,
            consumer,
            host,
            url,
            token,
            exchanges,
            dir,
        }
    }

    pub fn admin(&self) -> String {
        format!("{}.admin_events", self.run)
    }

    pub fn operational(&self) -> String {
        format!("{}.operational_events", self.run)
    }

    /// A controller whose NApp posts to the host, with `env` settings.
    pub fn controller(&self, env: &[(&str, &str)]) -> Kytos {
        Kytos::start(self.dir.path(), &self.url, &self.token, env)
    }
}

/// seq -> times seen on `queue`.
pub fn distinct_seqs(seen: &[Value], queue: &str) -> BTreeMap<u64, usize> {
    let mut seqs = BTreeMap::new();
    for m in seen.iter().filter(|m| m["queue"] == queue) {
        if let Some(seq) = m["data"]["seq"].as_u64() {
            *seqs.entry(seq).or_insert(0) += 1;
        }
    }
    seqs
}

pub fn uuid_like(id: &str) {
    assert_eq!(id.len(), 36, "not a uuid: {id}");
    assert_eq!(id.matches('-').count(), 4, "not a uuid: {id}");
}
