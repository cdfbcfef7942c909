//! Errors of the runtime. Every error names the plugin (and the instance
//! when there is one) and the cause, so an operator can act on it.

use std::fmt;

use crate::state::StateError;

/// Loading a plugin or creating an instance failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {reason}")]
    InvalidComponent { plugin: String, reason: String },
    #[error("plugin `{plugin}` does not fit the fnaa:plugin worlds: {reason}")]
    WrongWorld { plugin: String, reason: String },
    #[error("plugin `{plugin}` is a {actual} plugin, not a {expected}")]
    WrongKind {
        plugin: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("plugin `{plugin}`, instance `{instance}`: cannot instantiate: {reason}")]
    Instantiate {
        plugin: String,
        instance: String,
        reason: String,
    },
    #[error("plugin `{plugin}`, instance `{instance}`: configuration rejected: {reason}")]
    Config {
        plugin: String,
        instance: String,
        reason: String,
    },
    #[error("plugin `{plugin}`, instance `{instance}`: stopped during init: {cause}")]
    InitTrapped {
        plugin: String,
        instance: String,
        cause: TrapCause,
    },
    #[error("no instance named `{0}` is registered")]
    UnknownInstance(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read plugin file {path}: {reason}")]
    Read { path: String, reason: String },
}

/// Why the runtime stopped a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapCause {
    /// The call ran past its CPU deadline.
    Deadline { millis: u64 },
    /// The instance tried to grow its memory past the limit.
    MemoryLimit { bytes: usize },
    /// The call used up its fuel.
    FuelExhausted,
    /// The call returned more outputs than allowed.
    OutputLimit { count: usize, limit: usize },
    /// The guest trapped (panic, `unreachable`, out-of-bounds access, ...).
    Trap(String),
}

impl fmt::Display for TrapCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapCause::Deadline { millis } => write!(f, "deadline of {millis} ms exceeded"),
            TrapCause::MemoryLimit { bytes } => write!(f, "memory limit of {bytes} bytes exceeded"),
            TrapCause::FuelExhausted => f.write_str("fuel exhausted"),
            TrapCause::OutputLimit { count, limit } => {
                write!(
                    f,
                    "output flood: {count} outputs in one call (limit {limit})"
                )
            }
            TrapCause::Trap(message) => write!(f, "trap: {message}"),
        }
    }
}

/// A call into a plugin (`process`, `encode`, `decode`) failed. The batch is
/// not processed; the caller decides whether to retry or dead-letter it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProcessError {
    #[error("plugin `{plugin}`, instance `{instance}`: batch failed: {reason}")]
    Failed {
        plugin: String,
        instance: String,
        reason: String,
    },
    #[error(
        "plugin `{plugin}`, instance `{instance}`: event {index} of the batch rejected: {reason}"
    )]
    InvalidEvent {
        plugin: String,
        instance: String,
        index: u32,
        reason: String,
    },
    #[error("plugin `{plugin}`, instance `{instance}`: stopped: {cause}")]
    Trapped {
        plugin: String,
        instance: String,
        cause: TrapCause,
    },
    #[error("plugin `{plugin}`, instance `{instance}`: unavailable: {reason}")]
    Unavailable {
        plugin: String,
        instance: String,
        reason: String,
    },
}

impl ProcessError {
    /// The cause in words, without the plugin and instance names (for
    /// dead-letter attributes).
    pub fn reason(&self) -> String {
        match self {
            ProcessError::Failed { reason, .. }
            | ProcessError::InvalidEvent { reason, .. }
            | ProcessError::Unavailable { reason, .. } => reason.clone(),
            ProcessError::Trapped { cause, .. } => cause.to_string(),
        }
    }

    /// A short machine-readable kind: `failed`, `invalid-event`, `deadline`,
    /// `memory-limit`, `fuel`, `output-limit`, `trap`, `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProcessError::Failed { .. } => "failed",
            ProcessError::InvalidEvent { .. } => "invalid-event",
            ProcessError::Unavailable { .. } => "unavailable",
            ProcessError::Trapped { cause, .. } => match cause {
                TrapCause::Deadline { .. } => "deadline",
                TrapCause::MemoryLimit { .. } => "memory-limit",
                TrapCause::FuelExhausted => "fuel",
                TrapCause::OutputLimit { .. } => "output-limit",
                TrapCause::Trap(_) => "trap",
            },
        }
    }

    /// Whether trying the same batch again may succeed. An event the plugin
    /// rejected will be rejected again; anything else may be transient.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ProcessError::InvalidEvent { .. })
    }

    /// The plugin that failed.
    pub fn plugin(&self) -> &str {
        match self {
            ProcessError::Failed { plugin, .. }
            | ProcessError::InvalidEvent { plugin, .. }
            | ProcessError::Trapped { plugin, .. }
            | ProcessError::Unavailable { plugin, .. } => plugin,
        }
    }
}
