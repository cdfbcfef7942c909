//! An in-memory broker for tests and benchmarks of everything above the
//! transports: named [`Topic`]s that keep every message with its sequence
//! number and, per consumer name, the position after its last
//! acknowledged message, so that a new [`MemorySource`] of the same
//! consumer resumes there and unacknowledged messages are delivered again
//! (Kafka consumer-group semantics).
//!
//! Faults are injected from the outside while a pipeline runs:
//! [`SinkFaults`] makes a [`MemorySink`] refuse messages
//! ([`Outcome::Rejected`](super::Outcome::Rejected)), find them
//! unroutable, stall (answer nothing until released, batch by batch if
//! wanted) or fail batches for good; [`Topic::redeliver`] drops a
//! consumer's "connection", so that what it has not acknowledged comes
//! again and acknowledgements of the old deliveries are skipped.

mod broker;
mod sink;
mod source;
mod topic;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use broker::{MemoryBrokerConfig, MemorySinkConfig, MemorySourceConfig, named};
pub use sink::{MemorySink, SinkFaults};
pub use source::{MemoryAcker, MemorySource};
pub use topic::{Stored, Topic};

/// The broker name transport errors carry.
const BROKER: &str = "memory";

/// A set of named topics, created on first use.
#[derive(Debug, Default)]
pub struct MemoryBroker {
    topics: Mutex<BTreeMap<String, Arc<Topic>>>,
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new() -> Arc<MemoryBroker> {
        Arc::new(MemoryBroker::default())
    }

    /// Topic `name`, created empty if it does not exist.
    pub fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Topic::new(name)))
            .clone()
    }

    /// Removes topic `name` (sources and sinks holding it keep their
    /// copy).
    pub fn remove_topic(&self, name: &str) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics.remove(name);
    }

    /// Forgets the positions of `consumer` on every topic.
    pub fn remove_consumer(&self, consumer: &str) {
        let topics: Vec<Arc<Topic>> = {
            let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            topics.values().cloned().collect()
        };
        for topic in topics {
            topic.remove_consumer(consumer);
        }
    }

    /// The names of the topics that exist.
    pub fn topics(&self) -> Vec<String> {
        let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics.keys().cloned().collect()
    }
}
