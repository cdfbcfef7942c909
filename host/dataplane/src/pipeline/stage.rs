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

/// A plugin's reason for refusing one message or event of a batch; the
/// record goes to the dead letters with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// What a connector made of each record of a batch, in order.
pub type PerRecord<T> = Vec<Result<T, Refusal>>;

/// A connector plugin instance: CloudEvents binding between messages and
/// events.
pub trait Codec: Send {
    /// One result per message, in order.
    fn decode(&mut self, batch: &[Message]) -> Result<PerRecord<Event>, StageError>;
    /// One result per event, in order.
    fn encode(&mut self, batch: &[Event]) -> Result<PerRecord<Message>, StageError>;
}

/// What a [`Resolver`](super::wasm::Resolver) or a factory's own catalogue
/// says of a plugin it cannot give.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a connector or processor instance cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No such plugin (the catalogue's reason).
    #[error("{0}")]
    NotFound(BoxError),
    #[error("plugin `{name}` is a {is}, not a {wanted}")]
    WrongKind {
        name: String,
        is: &'static str,
        wanted: &'static str,
    },
    /// The runtime refused to instantiate it (configuration, imports).
    #[error(transparent)]
    Instantiate(#[from] fnaa_runtime::RuntimeError),
    #[error(transparent)]
    Native(#[from] super::NativePluginError),
    /// Instantiating it panicked (a bug in the runtime or a factory).
    #[error("instantiating it panicked: {0}")]
    Panicked(String),
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
    ) -> Result<Box<dyn Codec>, PluginError>;
    /// A processor instance.
    fn processor(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, PluginError>;
}
