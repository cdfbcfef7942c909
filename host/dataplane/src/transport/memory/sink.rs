//! Publishing to topics, with injectable faults.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::{BROKER, MemoryBroker, Topic};
use crate::transport::{Message, Outcome, SendFuture, Sink, TransportError};

/// Decides, per message, whether a fault applies.
type Predicate = Arc<dyn Fn(&Message) -> bool + Send + Sync>;

/// A batch whose outcomes a stalled sink holds back.
struct Held {
    /// Each message and the topic it is appended to once released
    /// (`None`: it failed, see `outcomes`).
    deliveries: Vec<(Option<Arc<Topic>>, Message)>,
    outcomes: Vec<Outcome>,
    reply: oneshot::Sender<Result<Vec<Outcome>, TransportError>>,
}

impl Held {
    /// Appends the confirmed messages and answers.
    fn release(self) {
        for (topic, message) in self.deliveries {
            if let Some(topic) = topic {
                topic.publish(message);
            }
        }
        let _ = self.reply.send(Ok(self.outcomes));
    }
}

/// The error an injected failure answers with.
fn injected() -> TransportError {
    TransportError::Client {
        broker: BROKER,
        reason: "injected failure".into(),
    }
}

#[derive(Default)]
struct FaultState {
    reject: Option<Predicate>,
    unroutable: Option<Predicate>,
    /// Batches to let through before `fail` ones fail.
    pass: usize,
    fail: usize,
    stalled: bool,
    held: VecDeque<Held>,
    /// The size of every batch handed to a sink, in order.
    sent: Vec<usize>,
}

/// The faults of one or more [`MemorySink`]s, changed while they run.
/// Clones share the faults.
#[derive(Clone, Default)]
pub struct SinkFaults(Arc<Mutex<FaultState>>);

impl fmt::Debug for SinkFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SinkFaults")
            .field("reject", &s.reject.is_some())
            .field("unroutable", &s.unroutable.is_some())
            .field("pass", &s.pass)
            .field("fail", &s.fail)
            .field("stalled", &s.stalled)
            .field("held", &s.held.len())
            .finish()
    }
}

impl SinkFaults {
    /// No faults.
    pub fn new() -> SinkFaults {
        SinkFaults::default()
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses for good ([`Outcome::Rejected`]) the messages `refuse`
    /// picks.
    pub fn reject_if(&self, refuse: impl Fn(&Message) -> bool + Send + Sync + 'static) {
        self.lock().reject = Some(Arc::new(refuse));
    }

    /// Reports the messages `pick` picks as [`Outcome::Unroutable`].
    pub fn unroutable_if(&self, pick: impl Fn(&Message) -> bool + Send + Sync + 'static) {
        self.lock().unroutable = Some(Arc::new(pick));
    }

    /// Lets `after` more batches through, then fails the `count` after
    /// them for good ([`TransportError::Client`], nothing stored), then
    /// recovers.
    pub fn fail_batches(&self, after: usize, count: usize) {
        let mut s = self.lock();
        s.pass = after;
        s.fail = count;
    }

    /// From now on, answers nothing (and stores nothing) until released.
    pub fn stall(&self) {
        self.lock().stalled = true;
    }

    /// Stops stalling: stores and answers every held batch, in the order
    /// they were sent.
    pub fn release(&self) {
        let held: Vec<Held> = {
            let mut s = self.lock();
            s.stalled = false;
            s.held.drain(..).collect()
        };
        for h in held {
            h.release();
        }
    }

    /// Stores and answers the `index`th held batch (0: the oldest) and
    /// keeps stalling; false when there is no such batch.
    pub fn release_batch(&self, index: usize) -> bool {
        let held = self.lock().held.remove(index);
        match held {
            Some(h) => {
                h.release();
                true
            }
            None => false,
        }
    }

    /// Fails the `index`th held batch for good (0: the oldest) without
    /// storing it, and keeps stalling; false when there is no such batch.
    pub fn fail_batch(&self, index: usize) -> bool {
        let held = self.lock().held.remove(index);
        match held {
            Some(h) => {
                let _ = h.reply.send(Err(injected()));
                true
            }
            None => false,
        }
    }

    /// Batches held by a stall.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    /// The size of every batch handed to the sinks so far, in order
    /// (failed and held ones too).
    pub fn sent_batches(&self) -> Vec<usize> {
        self.lock().sent.clone()
    }
}

/// Publishes to the topics of a [`MemoryBroker`]: to the message's
/// destination, or to the sink's default topic when that is empty.
#[derive(Debug)]
pub struct MemorySink {
    broker: Arc<MemoryBroker>,
    default_topic: Option<String>,
    faults: SinkFaults,
}

impl MemorySink {
    /// A sink of `broker` publishing to `default_topic` the messages
    /// without a destination, with `faults`.
    pub fn new(
        broker: Arc<MemoryBroker>,
        default_topic: Option<&str>,
        faults: SinkFaults,
    ) -> MemorySink {
        MemorySink {
            broker,
            default_topic: default_topic.map(str::to_owned),
            faults,
        }
    }

    /// What becomes of `message`: the topic it goes to, or why not.
    fn route(&self, faults: &FaultState, message: &Message) -> Result<Arc<Topic>, Outcome> {
        if faults.reject.as_ref().is_some_and(|f| f(message)) {
            return Err(Outcome::Rejected {
                reason: "refused by the memory broker (injected)".into(),
            });
        }
        if faults.unroutable.as_ref().is_some_and(|f| f(message)) {
            return Err(Outcome::Unroutable {
                reason: "no route in the memory broker (injected)".into(),
            });
        }
        let name = match &message.destination.name {
            name if !name.is_empty() => name.as_str(),
            _ => match &self.default_topic {
                Some(name) => name.as_str(),
                None => {
                    return Err(Outcome::Rejected {
                        reason: "the message has no destination and the sink no topic".into(),
                    });
                }
            },
        };
        Ok(self.broker.topic(name))
    }
}

impl Sink for MemorySink {
    fn send(&mut self, batch: Vec<Message>) -> SendFuture {
        if batch.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let mut faults = self.faults.lock();
        faults.sent.push(batch.len());
        if faults.pass > 0 {
            faults.pass -= 1;
        } else if faults.fail > 0 {
            faults.fail -= 1;
            return Box::pin(async { Err(injected()) });
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut deliveries = Vec::with_capacity(batch.len());
        for message in batch {
            match self.route(&faults, &message) {
                Ok(topic) => {
                    outcomes.push(Outcome::Confirmed);
                    deliveries.push((Some(topic), message));
                }
                Err(outcome) => {
                    outcomes.push(outcome);
                    deliveries.push((None, message));
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        let held = Held {
            deliveries,
            outcomes,
            reply,
        };
        if faults.stalled {
            faults.held.push_back(held);
        } else {
            drop(faults);
            held.release();
        }
        Box::pin(async move { answer.await.unwrap_or(Err(TransportError::Closed)) })
    }

    fn describe(&self) -> String {
        match &self.default_topic {
            Some(topic) => format!("memory topic {topic}"),
            None => "memory topics by destination".to_owned(),
        }
    }
}
