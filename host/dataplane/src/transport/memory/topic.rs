//! A topic: an append-only log of messages and the consumers reading it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::transport::Message;

/// A message kept by a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its position in the topic, from 0.
    pub sequence: u64,
    pub message: Message,
    /// When it was published, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// What a topic keeps of one consumer name.
#[derive(Debug, Default)]
pub(super) struct Consumer {
    /// The sequence number after the last acknowledged message: where a
    /// new source of this consumer starts.
    pub(super) committed: u64,
    /// Bumped by [`Topic::redeliver`]: deliveries of older generations are
    /// void and their acknowledgements skipped.
    pub(super) generation: u64,
    /// Every acknowledged sequence number, in the order acknowledged.
    pub(super) acked: Vec<u64>,
    /// Acknowledgements skipped because their delivery was void.
    pub(super) stale_acks: u64,
    /// Messages handed to sources of this consumer, redeliveries included.
    pub(super) taken: u64,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) messages: Vec<Stored>,
    pub(super) consumers: BTreeMap<String, Consumer>,
}

impl State {
    pub(super) fn consumer(&mut self, name: &str) -> &mut Consumer {
        self.consumers.entry(name.to_owned()).or_default()
    }
}

/// A named log of messages that never forgets (tests are short), with
/// per-consumer committed positions.
#[derive(Debug)]
pub struct Topic {
    name: String,
    state: Mutex<State>,
    /// Bumped on every publish and redelivery, to wake waiting sources.
    version: watch::Sender<u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Topic {
    pub(super) fn new(name: &str) -> Topic {
        Topic {
            name: name.to_owned(),
            state: Mutex::new(State::default()),
            version: watch::channel(0).0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Appends `message`; returns its sequence number.
    pub fn publish(&self, message: Message) -> u64 {
        self.publish_all(vec![message]).start
    }

    /// Appends `messages` in order; returns their sequence numbers.
    pub fn publish_all(&self, messages: Vec<Message>) -> std::ops::Range<u64> {
        let now = now_ms();
        let range = {
            let mut state = self.lock();
            let start = state.messages.len() as u64;
            for message in messages {
                let sequence = state.messages.len() as u64;
                state.messages.push(Stored {
                    sequence,
                    message,
                    timestamp_ms: now,
                });
            }
            start..state.messages.len() as u64
        };
        self.bump();
        range
    }

    /// Messages published so far.
    pub fn len(&self) -> u64 {
        self.lock().messages.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every message published so far, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.lock()
            .messages
            .iter()
            .map(|s| s.message.clone())
            .collect()
    }

    /// Every message published so far with its sequence number.
    pub fn stored(&self) -> Vec<Stored> {
        self.lock().messages.clone()
    }

    /// Where a new source of `consumer` starts: after its last
    /// acknowledged message.
    pub fn committed(&self, consumer: &str) -> u64 {
        self.lock()
            .consumers
            .get(consumer)
            .map_or(0, |c| c.committed)
    }

    /// The sequence numbers `consumer` acknowledged, in the order it did.
    pub fn acked(&self, consumer: &str) -> Vec<u64> {
        self.lock()
            .consumers
            .get(consumer)
            .map(|c| c.acked.clone())
            .unwrap_or_default()
    }

    /// Acknowledgements of `consumer` skipped because the delivery was
    /// void (made before a [`Topic::redeliver`]).
    pub fn stale_acks(&self, consumer: &str) -> u64 {
        self.lock()
            .consumers
            .get(consumer)
            .map_or(0, |c| c.stale_acks)
    }

    /// Messages handed to sources of `consumer` so far, redeliveries
    /// included: what a pipeline took from the topic.
    pub fn taken(&self, consumer: &str) -> u64 {
        self.lock().consumers.get(consumer).map_or(0, |c| c.taken)
    }

    /// Forgets `consumer`: a new source of it starts at the beginning.
    pub fn remove_consumer(&self, consumer: &str) {
        self.lock().consumers.remove(consumer);
        self.bump();
    }

    /// Drops `consumer`'s connection, as a broker does when a client goes
    /// away: its sources start again after its last acknowledged message,
    /// and acknowledgements of what they had received so far are skipped.
    pub fn redeliver(&self, consumer: &str) {
        self.lock().consumer(consumer).generation += 1;
        self.bump();
    }
}
