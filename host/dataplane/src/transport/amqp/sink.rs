//! AMQP sink: publisher confirms, mandatory flag, exchanges created on
//! demand.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use futures::future::BoxFuture;
use lapin::Confirmation;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::publisher::{Confirmed, Publisher};
use super::{AmqpBrokerConfig, ExchangeType};
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{Message, Outcome, SendFuture, Sink, SinkRequest};

/// A pipeline sink on AMQP (`amqp = { ... }` in `[pipelines.sink]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkConfig {
    /// Exchange for events whose connector names none (`""`: the default
    /// exchange, which routes by queue name).
    #[serde(default)]
    pub exchange: String,
    /// Routing key for events whose connector gives none.
    #[serde(default)]
    pub routing_key: String,
    /// Type of the exchanges this sink creates when they are missing.
    #[serde(default)]
    pub exchange_type: ExchangeType,
    /// Create missing exchanges (durable). When false, a message for a
    /// missing exchange is rejected.
    #[serde(default = "yes")]
    pub declare_exchanges: bool,
    /// Publish with the mandatory flag: a message no queue receives comes
    /// back (`basic.return`) and is reported as unroutable.
    #[serde(default = "yes")]
    pub mandatory: bool,
    /// Persistent messages (delivery mode 2): they survive a broker restart
    /// in durable queues.
    #[serde(default = "yes")]
    pub persistent: bool,
    /// One durable queue per key (an interdomain link) holding a copy of
    /// that key's messages, and EP038 continuity (a repeated status is
    /// published only once the key's queue was consumed). See
    /// `key_queues.rs`.
    #[serde(default)]
    pub key_queues: Option<super::key_queues::KeyQueuesConfig>,
}

fn yes() -> bool {
    true
}

impl Default for AmqpSinkConfig {
    fn default() -> Self {
        AmqpSinkConfig {
            exchange: String::new(),
            routing_key: String::new(),
            exchange_type: ExchangeType::Topic,
            declare_exchanges: true,
            mandatory: true,
            persistent: true,
            key_queues: None,
        }
    }
}

/// Publishes to an AMQP broker.
///
/// A connection task publishes the batches in the order they come and
/// awaits their publisher confirms concurrently, so that several batches can
/// be in flight ([`Sink::send`]): RabbitMQ confirms persistent
/// messages once they are on disk, and batches in flight together share
/// its disk writes.
pub struct AmqpSink {
    requests: mpsc::UnboundedSender<SinkRequest>,
    /// The connection task until the first batch starts it (spawning needs
    /// the runtime, which `new` may be called without).
    idle: Option<(Driver, mpsc::UnboundedReceiver<SinkRequest>)>,
    description: String,
}

/// A message refused for good, or a broken connection to retry through.
pub(super) enum Failure {
    Permanent(String),
    Connection(String),
}

impl AmqpSink {
    /// Creates the sink; it connects on first use, and again after every
    /// failure.
    pub fn new(
        broker: &AmqpBrokerConfig,
        config: &AmqpSinkConfig,
        connection_name: &str,
        retry: RetryConfig,
        monitor: Arc<OutageMonitor>,
    ) -> AmqpSink {
        let description = format!(
            "amqp exchange `{}` on {}",
            if config.exchange.is_empty() {
                "<from connector>"
            } else {
                &config.exchange
            },
            broker.describe()
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            publisher: Publisher {
                broker: broker.clone(),
                config: config.clone(),
                name: connection_name.to_owned(),
                link: None,
                exchanges: HashSet::new(),
                instance: format!("fnaa-{:016x}", rand::random::<u64>()),
                sequence: 0,
                key_queues: config
                    .key_queues
                    .clone()
                    .map(super::key_queues::KeyQueues::new),
            },
            retry,
            monitor,
            jobs: VecDeque::new(),
            next_seq: 0,
            ids: HashMap::new(),
            returned: HashMap::new(),
        };
        AmqpSink {
            requests: tx,
            idle: Some((driver, rx)),
            description,
        }
    }

    /// Hands `batch` to the connection task; the future resolves once every
    /// message of it is confirmed or failed for good.
    fn start(&mut self, batch: Vec<Message>) -> SendFuture {
        // The connection task starts with the first real batch.
        if !batch.is_empty()
            && let Some((driver, rx)) = self.idle.take()
        {
            tokio::spawn(driver.run(rx));
        }
        crate::transport::submit(&self.requests, batch)
    }
}

impl Sink for AmqpSink {
    fn send(&mut self, batch: Vec<Message>) -> SendFuture {
        self.start(batch)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// A batch being published.
struct Job {
    /// Numbers batches in the order they came.
    seq: u64,
    messages: Vec<Message>,
    outcomes: Vec<Option<Outcome>>,
    nacks: Vec<u8>,
    /// Taken once the outcomes are sent back.
    reply: Option<oneshot::Sender<Vec<Outcome>>>,
    /// To publish (again), in order.
    todo: Vec<usize>,
    /// The confirmations of what was published and not looked at yet.
    confirms: Option<BoxFuture<'static, Confirmed>>,
}

struct Driver {
    publisher: Publisher,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    /// Batches in the order they came; a batch leaves once answered and
    /// every earlier one has left.
    jobs: VecDeque<Job>,
    next_seq: u64,
    /// `message_id` -> (batch, index) of what was published and not looked
    /// at yet.
    ids: HashMap<String, (u64, usize)>,
    /// Messages that came back (`basic.return`) attached to an earlier
    /// batch's confirmation, until their own batch is looked at.
    returned: HashMap<(u64, usize), String>,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<SinkRequest>) {
        let mut backoff = self.retry.backoff();
        let mut closing = false;
        loop {
            while let Ok(r) = requests.try_recv() {
                self.add(r);
            }
            if let Some(reason) = self.publish_waiting().await {
                // Look at what is in flight (it fails or was confirmed),
                // then reconnect and publish the rest again.
                while let Some(seq) = self.front_in_flight() {
                    self.look_at(seq).await;
                }
                self.monitor.failed(&reason);
                self.publisher.disconnect().await;
                backoff.wait().await;
                continue;
            }
            self.answer();
            if closing && self.jobs.is_empty() {
                self.publisher.disconnect().await;
                return;
            }
            let front = self.front_in_flight();
            tokio::select! {
                biased;
                look = async {
                    match front {
                        Some(seq) => self.look_at(seq).await,
                        None => std::future::pending().await,
                    }
                } => match look {
                    Look::Broken(reason) => {
                        while let Some(seq) = self.front_in_flight() {
                            self.look_at(seq).await;
                        }
                        self.monitor.failed(&reason);
                        self.publisher.disconnect().await;
                        backoff.wait().await;
                    }
                    Look::Nacked => backoff.wait().await,
                    Look::Fine => {
                        self.monitor.recovered();
                        backoff.reset();
                    }
                },
                request = requests.recv(), if !closing => match request {
                    Some(r) => self.add(r),
                    None => closing = true,
                },
            }
        }
    }

    fn add(&mut self, request: SinkRequest) {
        let n = request.messages.len();
        self.jobs.push_back(Job {
            seq: self.next_seq,
            outcomes: vec![None; n],
            nacks: vec![0; n],
            todo: (0..n).collect(),
            messages: request.messages,
            reply: Some(request.reply),
            confirms: None,
        });
        self.next_seq += 1;
    }

    /// The first batch with confirmations to look at.
    fn front_in_flight(&self) -> Option<u64> {
        self.jobs
            .iter()
            .find(|j| j.confirms.is_some())
            .map(|j| j.seq)
    }

    fn job_mut(&mut self, seq: u64) -> Option<&mut Job> {
        let first = self.jobs.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.jobs.get_mut(index)
    }

    /// Publishes what waits, batch after batch. `Some(reason)` when the
    /// connection is broken.
    async fn publish_waiting(&mut self) -> Option<String> {
        if self.jobs.iter().all(|j| j.todo.is_empty()) {
            return None;
        }
        if !self.publisher.connected() {
            self.publisher.disconnect().await;
            if let Err(e) = self.publisher.connect().await {
                return Some(e.to_string());
            }
        }
        for j in 0..self.jobs.len() {
            let job = &mut self.jobs[j];
            if job.todo.is_empty() {
                continue;
            }
            let todo = std::mem::take(&mut job.todo);
            let seq = job.seq;
            let mut pending = Vec::with_capacity(todo.len());
            let mut broken = None;
            for (k, &i) in todo.iter().enumerate() {
                if self.jobs[j].outcomes[i].is_some() {
                    continue;
                }
                let id = self.publisher.next_id();
                match self.publisher.publish(&self.jobs[j].messages[i], &id).await {
                    Ok(confirm) => {
                        self.ids.insert(id.clone(), (seq, i));
                        pending.push((i, id, confirm));
                    }
                    Err(Failure::Permanent(reason)) => {
                        self.jobs[j].outcomes[i] = Some(Outcome::Rejected { reason });
                    }
                    Err(Failure::Connection(reason)) => {
                        self.jobs[j].todo = todo[k..].to_vec();
                        broken = Some(reason);
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                self.jobs[j].confirms = Some(Box::pin(async move {
                    let mut confirmed = Vec::with_capacity(pending.len());
                    for (i, id, confirm) in pending {
                        confirmed.push((i, id, confirm.await));
                    }
                    confirmed
                }));
            }
            if broken.is_some() {
                return broken;
            }
        }
        None
    }

    /// Waits for the confirmations of batch `seq` and settles what they
    /// tell.
    /// Cancel-safe: the confirmations stay with their batch until they are
    /// all in.
    async fn look_at(&mut self, seq: u64) -> Look {
        let Some(confirms) = self.job_mut(seq).and_then(|j| j.confirms.as_mut()) else {
            return Look::Fine;
        };
        let confirmed = confirms.await;
        if let Some(job) = self.job_mut(seq) {
            job.confirms = None;
        }
        // The broker sends a message's `basic.return` before its
        // `basic.ack`, and lapin attaches it to the next confirmation that
        // completes: once a batch's confirmations are in, so are its
        // returns, attached to its own confirmations or an earlier batch's
        // (which were looked at before).
        let mut returns = Vec::new();
        let mut acked = Vec::new();
        let mut again = Vec::new();
        let mut look = Look::Fine;
        let mut nacked = Vec::new();
        let mut looked = Vec::with_capacity(confirmed.len());
        for (i, id, result) in confirmed {
            looked.push(id);
            match result {
                Ok(Confirmation::Ack(r)) => {
                    returns.extend(r);
                    acked.push(i);
                }
                Ok(Confirmation::NotRequested) => acked.push(i),
                Ok(Confirmation::Nack(r)) => {
                    if r.is_some() {
                        returns.extend(r);
                        acked.push(i);
                    } else {
                        // The broker could not take the message (internal
                        // error, queue limit): try again a few times.
                        nacked.push(i);
                    }
                }
                Err(e) => {
                    again.push(i);
                    look = Look::Broken(e.to_string());
                }
            }
        }
        for r in returns {
            let id = r
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned());
            let reason = format!(
                "{} {}: exchange `{}` routing key `{}` reaches no queue",
                r.reply_code, r.reply_text, r.delivery.exchange, r.delivery.routing_key
            );
            match id.and_then(|id| self.ids.remove(&id)) {
                Some(slot) => {
                    self.returned.insert(slot, reason);
                }
                None => tracing::warn!(
                    exchange = %r.delivery.exchange,
                    routing_key = %r.delivery.routing_key,
                    "the broker returned a message this sink cannot match to a publish"
                ),
            }
        }
        for id in looked {
            self.ids.remove(&id);
        }
        let returned: Vec<(usize, String)> = acked
            .iter()
            .filter_map(|&i| self.returned.remove(&(seq, i)).map(|r| (i, r)))
            .collect();
        let Some(job) = self.job_mut(seq) else {
            return look;
        };
        for i in acked {
            job.outcomes[i] = Some(Outcome::Confirmed);
        }
        for (i, reason) in returned {
            job.outcomes[i] = Some(Outcome::Unroutable { reason });
        }
        for i in nacked {
            job.nacks[i] += 1;
            if job.nacks[i] >= 5 {
                job.outcomes[i] = Some(Outcome::Rejected {
                    reason: "the broker nacked the message 5 times".into(),
                });
            } else {
                again.push(i);
                if matches!(look, Look::Fine) {
                    look = Look::Nacked;
                }
            }
        }
        if !again.is_empty() {
            again.append(&mut job.todo);
            again.sort_unstable();
            again.dedup();
            job.todo = again;
        }
        look
    }

    /// Sends the outcomes of every finished batch back.
    fn answer(&mut self) {
        for job in &mut self.jobs {
            if job.reply.is_some()
                && job.confirms.is_none()
                && job.todo.is_empty()
                && job.outcomes.iter().all(Option::is_some)
                && let Some(reply) = job.reply.take()
            {
                let outcomes = std::mem::take(&mut job.outcomes)
                    .into_iter()
                    .map(|o| o.unwrap_or(Outcome::Confirmed))
                    .collect();
                job.messages = Vec::new();
                let _ = reply.send(outcomes);
            }
        }
        while self.jobs.front().is_some_and(|j| j.reply.is_none()) {
            self.jobs.pop_front();
        }
    }
}

/// What looking at a batch's confirmations found.
enum Look {
    Fine,
    /// Some messages were nacked and go again.
    Nacked,
    /// The connection broke; what it carried goes again.
    Broken(String),
}
