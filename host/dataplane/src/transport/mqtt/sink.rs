//! MQTT sink: publishes and waits for PUBACK (QoS 1) or PUBCOMP (QoS 2).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::client::{self, Connection, Ev, PublishError};
use super::{MqttBrokerConfig, Qos, default_qos};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{Message, Outcome, SendFuture, Sink, SinkRequest, TransportError};

/// A pipeline sink on MQTT (`mqtt = { ... }` in `[pipelines.sink]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttSinkConfig {
    /// Topic for events whose connector names no destination.
    pub topic: Option<String>,
    /// QoS of published messages: 0, 1 (default) or 2. At-least-once needs
    /// 1 or 2 (QoS 0 counts a message as sent once written to the socket).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Publish with the retain flag.
    #[serde(default)]
    pub retain: bool,
    /// Client id. Default: `fnaa-<pipeline>-sink`.
    pub client_id: Option<String>,
    /// Publishes awaiting their acknowledgement at most.
    #[serde(default = "default_inflight")]
    pub max_inflight: u16,
}

fn default_inflight() -> u16 {
    100
}

impl MqttSinkConfig {
    pub fn new(topic: impl Into<String>) -> Self {
        MqttSinkConfig {
            topic: Some(topic.into()),
            qos: 1,
            retain: false,
            client_id: None,
            max_inflight: default_inflight(),
        }
    }
}

/// Publishes to an MQTT broker.
pub struct MqttSink {
    /// Unbounded: callers bound the batches in flight (a pipeline keeps a
    /// few; [`Sink::send`] one).
    requests: mpsc::UnboundedSender<SinkRequest>,
    description: String,
}

impl MqttSink {
    /// Starts the connection task (it connects, and reconnects, by itself).
    pub fn new(
        broker: &MqttBrokerConfig,
        config: &MqttSinkConfig,
        default_client_id: &str,
        retry: RetryConfig,
        monitor: Arc<OutageMonitor>,
    ) -> Result<MqttSink, TransportError> {
        let qos = Qos::from_level(config.qos)?;
        let options = client::Options {
            client_id: config
                .client_id
                .clone()
                .unwrap_or_else(|| default_client_id.to_owned()),
            // We resend unconfirmed messages ourselves after a reconnect.
            clean: true,
            session_expiry_s: 0,
            manual_acks: false,
            inflight: config.max_inflight.max(1),
        };
        let conn = client::create(broker, &options)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            conn,
            qos,
            retain: config.retain,
            default_topic: config.topic.clone(),
            retry,
            monitor,
            connected: false,
            batches: VecDeque::new(),
            next_seq: 0,
            inflight: HashMap::new(),
            unwritten: VecDeque::new(),
        };
        tokio::spawn(driver.run(rx));
        let description = format!(
            "mqtt topic {} (QoS {}) on {}",
            config.topic.as_deref().unwrap_or("<from connector>"),
            config.qos,
            broker.describe()
        );
        Ok(MqttSink {
            requests: tx,
            description,
        })
    }
}

impl Sink for MqttSink {
    fn send(&mut self, batch: Vec<Message>) -> SendFuture {
        crate::transport::submit(&self.requests, batch)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// A batch being published.
struct Batch {
    /// Numbers batches in the order they came.
    seq: u64,
    messages: Vec<Message>,
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
    /// Taken once the outcomes are sent back.
    reply: Option<oneshot::Sender<Vec<Outcome>>>,
    /// Not handed to the connection yet, in order.
    queue: VecDeque<usize>,
}

impl Batch {
    fn settle(&mut self, index: usize, outcome: Outcome) {
        if let Some(slot) = self.outcomes.get_mut(index)
            && slot.is_none()
        {
            *slot = Some(outcome);
            self.remaining -= 1;
        }
    }
}

/// A message of a batch: (batch `seq`, index in the batch).
type Slot = (u64, usize);

struct Driver {
    conn: Connection,
    qos: Qos,
    retain: bool,
    default_topic: Option<String>,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    connected: bool,
    /// Batches in the order they came, published in that order; a batch
    /// leaves once answered and every earlier one has left.
    batches: VecDeque<Batch>,
    next_seq: u64,
    /// Published with this packet id, awaiting the broker's
    /// acknowledgement.
    inflight: HashMap<u16, Slot>,
    /// QoS 0 publishes handed to the connection and not written yet, in
    /// order.
    unwritten: VecDeque<Slot>,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<SinkRequest>) {
        let mut backoff = self.retry.backoff();
        let mut closing = false;
        loop {
            self.submit();
            self.answer();
            if closing && self.batches.is_empty() {
                self.conn.disconnect();
                // Let the DISCONNECT go out.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_millis(200), self.conn.poll())
                        .await;
                return;
            }
            tokio::select! {
                request = requests.recv(), if !closing => match request {
                    Some(r) => self.start(r),
                    None => closing = true,
                },
                event = self.conn.poll() => match event {
                    Ok(ev) => {
                        self.handle(ev);
                    }
                    Err(e) => {
                        if closing && self.batches.is_empty() {
                            return;
                        }
                        self.connected = false;
                        self.monitor.failed(&e);
                        backoff.wait().await;
                        continue;
                    }
                },
            }
            if self.connected {
                backoff.reset();
            }
        }
    }

    fn start(&mut self, request: SinkRequest) {
        let n = request.messages.len();
        self.batches.push_back(Batch {
            seq: self.next_seq,
            outcomes: vec![None; n],
            remaining: n,
            queue: (0..n).collect(),
            messages: request.messages,
            reply: Some(request.reply),
        });
        self.next_seq += 1;
    }

    fn batch_mut(&mut self, seq: u64) -> Option<&mut Batch> {
        let first = self.batches.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.batches.get_mut(index)
    }

    fn settle(&mut self, (seq, index): Slot, outcome: Outcome) {
        if let Some(batch) = self.batch_mut(seq) {
            batch.settle(index, outcome);
        }
    }

    /// Sends the outcomes of every finished batch back.
    fn answer(&mut self) {
        for batch in &mut self.batches {
            if batch.remaining == 0
                && let Some(reply) = batch.reply.take()
            {
                let outcomes = std::mem::take(&mut batch.outcomes)
                    .into_iter()
                    .map(|o| o.unwrap_or(Outcome::Confirmed))
                    .collect();
                batch.messages = Vec::new();
                let _ = reply.send(outcomes);
            }
        }
        while self.batches.front().is_some_and(|b| b.reply.is_none()) {
            self.batches.pop_front();
        }
    }

    /// After a reconnect with a fresh session the connection has forgotten
    /// everything unconfirmed: queue it again, in the original order.
    fn requeue_unconfirmed(&mut self) {
        self.inflight.clear();
        self.unwritten.clear();
        for batch in &mut self.batches {
            if batch.reply.is_some() {
                batch.queue = (0..batch.outcomes.len())
                    .filter(|&i| batch.outcomes[i].is_none())
                    .collect();
            }
        }
    }

    /// Hands queued messages to the connection, batch after batch, while
    /// connected and the window has room.
    fn submit(&mut self) {
        if !self.connected {
            return;
        }
        for batch in &mut self.batches {
            while let Some(&i) = batch.queue.front() {
                let m = &batch.messages[i];
                let topic = if m.destination.name.is_empty() {
                    self.default_topic.as_deref().unwrap_or_default()
                } else {
                    m.destination.name.as_str()
                };
                if topic.is_empty() {
                    batch.queue.pop_front();
                    batch.settle(
                        i,
                        Outcome::Rejected {
                            reason:
                                "no topic: the connector named none and the sink has no `topic`"
                                    .into(),
                        },
                    );
                    continue;
                }
                match self.conn.publish(
                    topic,
                    self.qos,
                    self.retain,
                    &m.payload,
                    m.content_type.as_deref(),
                    &m.headers,
                ) {
                    Ok(0) => {
                        batch.queue.pop_front();
                        self.unwritten.push_back((batch.seq, i));
                    }
                    Ok(pkid) => {
                        batch.queue.pop_front();
                        self.inflight.insert(pkid, (batch.seq, i));
                    }
                    // Later batches wait too: order is kept.
                    Err(PublishError::Full) => return,
                    Err(PublishError::Invalid(reason)) => {
                        batch.queue.pop_front();
                        batch.settle(
                            i,
                            Outcome::Rejected {
                                reason: reason.to_string(),
                            },
                        );
                    }
                }
            }
        }
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Connected { .. } => {
                self.connected = true;
                self.monitor.recovered();
                self.requeue_unconfirmed();
            }
            Ev::Flushed { qos0 } => {
                // QoS 0: written is all we will ever know.
                for _ in 0..qos0 {
                    if let Some(slot) = self.unwritten.pop_front() {
                        self.settle(slot, Outcome::Confirmed);
                    }
                }
            }
            Ev::Acked { pkid, error }
            | Ev::Received {
                pkid,
                error: error @ Some(_),
            } => {
                if let Some(slot) = self.inflight.remove(&pkid) {
                    match error {
                        None => self.settle(slot, Outcome::Confirmed),
                        Some(reason) => self.settle(slot, Outcome::Rejected { reason }),
                    }
                }
            }
            Ev::Completed { pkid } => {
                if let Some(slot) = self.inflight.remove(&pkid) {
                    self.settle(slot, Outcome::Confirmed);
                }
            }
            Ev::Received { error: None, .. } | Ev::Publish(_) | Ev::Subscribed { .. } => {}
        }
    }
}
