//! MQTT sink: publishes and waits for PUBACK (QoS 1) or PUBCOMP (QoS 2).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::client::{self, Client, Ev, Loop, PublishError};
use super::{MqttBrokerConfig, Qos, default_qos};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{Message, Outcome, Sink, TransportError};

/// A pipeline sink on MQTT (`type = "mqtt"` in `[pipelines.sink]`).
#[derive(Debug, Clone, Deserialize)]
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

struct Request {
    messages: Vec<Message>,
    reply: oneshot::Sender<Vec<Outcome>>,
}

/// Publishes to an MQTT broker.
pub struct MqttSink {
    requests: mpsc::Sender<Request>,
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
        let (client, eventloop) = client::create(broker, &options)?;
        let (tx, rx) = mpsc::channel(1);
        let driver = Driver {
            client,
            eventloop,
            qos,
            retain: config.retain,
            default_topic: config.topic.clone(),
            window: usize::from(options.inflight),
            retry,
            monitor,
            connected: false,
            batch: None,
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
    fn send(&mut self, batch: Vec<Message>) -> BoxFuture<'_, Result<Vec<Outcome>, TransportError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            let (reply, outcome) = oneshot::channel();
            self.requests
                .send(Request {
                    messages: batch,
                    reply,
                })
                .await
                .map_err(|_| TransportError::Closed)?;
            outcome.await.map_err(|_| TransportError::Closed)
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The batch being published.
struct Batch {
    messages: Vec<Message>,
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
    reply: oneshot::Sender<Vec<Outcome>>,
    /// Not handed to the client yet, in order.
    queue: VecDeque<usize>,
    /// Handed to the client, packet id not known yet, in order.
    awaiting_id: VecDeque<usize>,
    /// Written with this packet id, awaiting the broker's acknowledgement.
    inflight: HashMap<u16, usize>,
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

    /// After a reconnect with a fresh session the client has forgotten
    /// everything unconfirmed: queue it again, in the original order.
    fn requeue_unconfirmed(&mut self) {
        let mut again: Vec<usize> = self
            .awaiting_id
            .drain(..)
            .chain(self.inflight.drain().map(|(_, i)| i))
            .collect();
        again.extend(self.queue.drain(..));
        again.sort_unstable();
        again.dedup();
        self.queue = again
            .into_iter()
            .filter(|&i| self.outcomes[i].is_none())
            .collect();
    }
}

struct Driver {
    client: Client,
    eventloop: Loop,
    qos: Qos,
    retain: bool,
    default_topic: Option<String>,
    window: usize,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    connected: bool,
    batch: Option<Batch>,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut backoff = self.retry.backoff();
        let mut closing = false;
        loop {
            self.submit();
            if let Some(batch) = self.batch.take_if(|b| b.remaining == 0) {
                let outcomes = batch
                    .outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or(Outcome::Confirmed))
                    .collect();
                let _ = batch.reply.send(outcomes);
            }
            if closing && self.batch.is_none() {
                self.client.try_disconnect();
                // Let the DISCONNECT go out.
                let _ = tokio::time::timeout(
                    std::time::Duration::from_millis(200),
                    self.eventloop.poll(),
                )
                .await;
                return;
            }
            tokio::select! {
                request = requests.recv(), if self.batch.is_none() && !closing => match request {
                    Some(r) => self.start(r),
                    None => closing = true,
                },
                event = self.eventloop.poll() => match event {
                    Ok(ev) => {
                        self.handle(ev);
                    }
                    Err(e) => {
                        if closing && self.batch.is_none() {
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

    fn start(&mut self, request: Request) {
        let n = request.messages.len();
        self.batch = Some(Batch {
            outcomes: vec![None; n],
            remaining: n,
            queue: (0..n).collect(),
            awaiting_id: VecDeque::new(),
            inflight: HashMap::new(),
            messages: request.messages,
            reply: request.reply,
        });
    }

    /// Hands queued messages to the client while connected and the window
    /// has room.
    fn submit(&mut self) {
        if !self.connected {
            return;
        }
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        while batch.awaiting_id.len() + batch.inflight.len() < self.window {
            let Some(&i) = batch.queue.front() else { break };
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
                        reason: "no topic: the connector named none and the sink has no `topic`"
                            .into(),
                    },
                );
                continue;
            }
            match self.client.try_publish(
                topic,
                self.qos,
                self.retain,
                &m.payload,
                m.content_type.as_deref(),
                &m.headers,
            ) {
                Ok(()) => {
                    batch.queue.pop_front();
                    batch.awaiting_id.push_back(i);
                }
                Err(PublishError::Full) => break,
                Err(PublishError::Invalid(reason)) => {
                    batch.queue.pop_front();
                    batch.settle(i, Outcome::Rejected { reason });
                }
            }
        }
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Connected { .. } => {
                self.connected = true;
                self.monitor.recovered();
                if let Some(batch) = self.batch.as_mut() {
                    batch.requeue_unconfirmed();
                }
            }
            Ev::Written(pkid) => {
                let Some(batch) = self.batch.as_mut() else {
                    return;
                };
                if pkid == 0 {
                    // QoS 0: written is all we will ever know.
                    if let Some(i) = batch.awaiting_id.pop_front() {
                        batch.settle(i, Outcome::Confirmed);
                    }
                } else if !batch.inflight.contains_key(&pkid)
                    && let Some(i) = batch.awaiting_id.pop_front()
                {
                    batch.inflight.insert(pkid, i);
                }
            }
            Ev::Acked { pkid, error }
            | Ev::Received {
                pkid,
                error: error @ Some(_),
            } => {
                let Some(batch) = self.batch.as_mut() else {
                    return;
                };
                if let Some(i) = batch.inflight.remove(&pkid) {
                    match error {
                        None => batch.settle(i, Outcome::Confirmed),
                        Some(reason) => batch.settle(i, Outcome::Rejected { reason }),
                    }
                }
            }
            Ev::Completed { pkid } => {
                let Some(batch) = self.batch.as_mut() else {
                    return;
                };
                if let Some(i) = batch.inflight.remove(&pkid) {
                    batch.settle(i, Outcome::Confirmed);
                }
            }
            Ev::Received { error: None, .. }
            | Ev::Publish(_)
            | Ev::Subscribed { .. }
            | Ev::Other => {}
        }
    }
}
