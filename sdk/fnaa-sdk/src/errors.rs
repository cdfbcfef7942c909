//! The errors a plugin returns to the host, mirroring the WIT `init-error`
//! and `process-error` variants.

use std::fmt::Display;

/// Why a plugin refused its configuration at `init` (the WIT `init-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// A key the plugin does not know, named so that the operator finds the
    /// typo.
    #[error("unknown configuration key `{0}`")]
    UnknownKey(String),
    /// A key the plugin needs and did not get.
    #[error("missing configuration key `{0}`")]
    MissingKey(String),
    /// A key whose value the plugin cannot use.
    #[error("invalid value for configuration key `{key}`: {reason}")]
    InvalidValue {
        /// The configuration key.
        key: String,
        /// Why its value cannot be used.
        reason: String,
    },
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

impl InitError {
    /// An [`InitError::InvalidValue`] for `key`.
    pub fn invalid_value(key: impl Into<String>, reason: impl Display) -> Self {
        InitError::InvalidValue {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// Why a batch failed (the WIT `process-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// One event of the batch cannot be processed; the host may dead-letter
    /// it and process the rest again.
    #[error("event {index} of the batch is invalid: {reason}")]
    InvalidEvent {
        /// Index of the event in the batch.
        index: u32,
        /// Why it cannot be processed.
        reason: String,
    },
    /// The whole batch failed; the host may retry it.
    #[error("the batch failed: {0}")]
    Failed(String),
}

impl ProcessError {
    /// An [`ProcessError::InvalidEvent`] for the event at `index` of the
    /// batch.
    pub fn invalid_event(index: usize, reason: impl Display) -> Self {
        ProcessError::InvalidEvent {
            // A batch never holds more than u32::MAX events (the WIT index is
            // a u32), so saturating cannot name a wrong event.
            index: u32::try_from(index).unwrap_or(u32::MAX),
            reason: reason.to_string(),
        }
    }

    /// A [`ProcessError::Failed`] with `reason`.
    pub fn failed(reason: impl Display) -> Self {
        ProcessError::Failed(reason.to_string())
    }
}
