//! Why a pipeline stops, and why a native plugin cannot be made.

use std::sync::{Arc, Mutex};

use crate::transport::TransportError;

/// Why a pipeline stopped by itself. Whatever it had not acknowledged is
/// redelivered when it runs again (at-least-once).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// [`Sink::send`](crate::transport::Sink::send) failed for good (a
    /// fatal client error or the transport shut down).
    #[error("the sink failed for good: {0}")]
    Sink(TransportError),
    /// The dead-letter flow's sink failed for good.
    #[error("the dead-letter sink failed for good: {0}")]
    DeadLetterSink(TransportError),
    /// The dead-letter connector panicked while encoding.
    #[error("the dead-letter connector panicked: {0}")]
    DeadLetterConnectorPanicked(String),
    /// The dead-letter connector panicked earlier and is gone.
    #[error("the dead-letter connector was lost to an earlier panic")]
    DeadLetterConnectorLost,
    /// A plugin call panicked in the stage worker.
    #[error("the stage worker panicked: {0}")]
    StageWorkerPanicked(String),
}

/// Why a native connector or processor cannot be made
/// ([`super::native`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativePluginError {
    #[error("no native connector `{0}` (kafka, mqtt, amqp, raw)")]
    UnknownConnector(String),
    #[error("connector `{plugin}`: {source}")]
    ConnectorConfig {
        plugin: String,
        source: fnaa_event::binding::ConfigError,
    },
    #[error("no native processor `{0}` (bridge)")]
    UnknownProcessor(String),
    #[error("the native {0} takes no configuration")]
    Unconfigurable(&'static str),
}

/// The first error a pipeline's tasks stopped with, shared by the tasks
/// and the [`Pipeline`](super::Pipeline) handle.
#[derive(Debug, Clone, Default)]
pub(super) struct FailureSlot(Arc<Mutex<Option<Arc<PipelineError>>>>);

impl FailureSlot {
    /// Records `error` unless an earlier one is recorded.
    pub(super) fn set(&self, error: PipelineError) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Arc::new(error));
        }
    }

    pub(super) fn get(&self) -> Option<Arc<PipelineError>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
