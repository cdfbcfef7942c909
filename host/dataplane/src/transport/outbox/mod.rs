//! The outbox: a durable log on the host's own disk, for events that
//! enter the host from sources that cannot replay them (an SDN controller,
//! a webhook). The HTTP ingestion listener answers `2xx` only once the
//! events are in the outbox; a pipeline then moves them to their broker at
//! least once, and acknowledged messages are dropped from the file. A
//! `[brokers.connections.<name>]` of `type = "outbox"`; its source reads
//! one topic, its sink appends to one.

mod broker;
mod codec;
mod sink;
mod source;
mod store;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use sink::OutboxSink;
pub use source::OutboxSource;
pub use store::{Outbox, OutboxError, Stored};

/// The broker name transport errors carry.
const BROKER: &str = "outbox";

/// A `[brokers.connections]` entry of `type = "outbox"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboxBrokerConfig {
    /// The database file (created with its folder when missing), for
    /// example `/var/lib/fnaa/outbox.redb`.
    pub path: PathBuf,
    /// The most bytes the messages waiting for their consumers may take;
    /// beyond it the outbox refuses new ones (HTTP `507`) and loses none
    /// already accepted. Default: 1 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    1 << 30
}

/// Source settings: the one topic to read, and the consumer name
/// (default: the pipeline's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboxSourceConfig {
    /// The topic to read, as a list of exactly one.
    pub topics: Vec<String>,
    /// The consumer whose position is kept, so that the source resumes
    /// where it stopped. Default: `fnaa-<pipeline>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// Sink settings: the topic messages without a destination go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboxSinkConfig {
    /// Topic for events whose connector names no destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl OutboxBrokerConfig {
    /// The process's handle on the file.
    pub fn open(&self) -> Result<std::sync::Arc<Outbox>, OutboxError> {
        Outbox::open(&self.path, self.max_bytes)
    }
}

/// Runs blocking outbox work (it waits for the disk) off the async
/// threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, crate::transport::TransportError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| crate::transport::TransportError::Client {
            broker: BROKER,
            reason: format!("outbox task failed: {e}"),
        })?
        .map_err(|e| crate::transport::TransportError::Client {
            broker: BROKER,
            reason: e.to_string(),
        })
}
