//! The plugin side of a pipeline: what a connector (decode, encode) and a
//! processor look like to the data plane. The host implements these traits
//! over the wasm runtime; [`super::native`] implements them natively for
//! tests and benchmarks.

use fnaa_event::Event;

use crate::transport::Message;

/// Why a plugin call failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct StageError {
    /// Names the plugin, the instance and the cause.
    pub reason: String,
    /// True when running the same batch again may succeed (trap, deadline,
    /// a plugin's `failed`); false for a deterministic refusal.
    pub retryable: bool,
    /// The plugin named this event of the batch as the one it cannot handle
    /// (WIT `invalid-event`).
    pub invalid_index: Option<usize>,
}

impl StageError {
    pub fn new(reason: impl Into<String>, retryable: bool) -> Self {
        StageError {
            reason: reason.into(),
            retryable,
            invalid_index: None,
        }
    }
}

/// A connector plugin instance: CloudEvents binding between messages and
/// events.
pub trait Codec: Send {
    /// One result per message, in order.
    fn decode(&mut self, batch: &[Message]) -> Result<Vec<Result<Event, String>>, StageError>;
    /// One result per event, in order.
    fn encode(&mut self, batch: &[Event]) -> Result<Vec<Result<Message, String>>, StageError>;
}

/// A processor plugin instance.
pub trait Processor: Send {
    /// Processes a batch that arrived on `port`; returns (output port,
    /// event) pairs in order.
    fn process(&mut self, port: &str, batch: &[Event]) -> Result<Vec<(String, Event)>, StageError>;
}

/// Creates plugin instances by plugin name: the bridge between pipeline
/// configuration and the plugin runtime.
pub trait PluginFactory: Send + Sync {
    /// A connector instance of `plugin` called `instance`, configured with
    /// `config`.
    fn connector(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Codec>, String>;
    /// A processor instance.
    fn processor(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, String>;
}
