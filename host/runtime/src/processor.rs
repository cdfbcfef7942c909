//! A running Flow Processor instance.

use fnaa_event::Event;

use crate::bindings::processor::Processor;
use crate::bindings::processor::exports::fnaa::plugin::flow_processor::{
    Output, ProcessError as WitProcessError,
};
use crate::bindings::{from_wit, to_wit, wit};
use crate::error::{ProcessError, RuntimeError, TrapCause};
use crate::plugin::Plugin;
use crate::runtime::Runtime;
use crate::sandbox::Sandbox;

/// An event a processor emitted, with the output port it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub port: String,
    pub event: Event,
}

/// One instance of a processor plugin (one subscription or processor).
pub struct ProcessorInstance {
    sandbox: Sandbox<Processor>,
}

impl std::fmt::Debug for ProcessorInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorInstance")
            .field("plugin", &self.sandbox.plugin.name())
            .field("instance", &&*self.sandbox.instance)
            .finish_non_exhaustive()
    }
}

impl ProcessorInstance {
    /// Instantiates `plugin` as `instance` and initialises it with `config`.
    /// The instance name also names its durable state.
    pub fn new(
        runtime: &Runtime,
        plugin: &Plugin,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Self, RuntimeError> {
        Ok(ProcessorInstance {
            sandbox: Sandbox::new(runtime, plugin, instance, config)?,
        })
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.sandbox.instance
    }

    /// The plugin it runs.
    pub fn plugin(&self) -> &Plugin {
        &self.sandbox.plugin
    }

    /// Whether an instance is live (not discarded after a trap).
    pub fn is_live(&self) -> bool {
        self.sandbox.is_live()
    }

    /// Processes one batch that arrived on input `port`. On any error the
    /// batch has no effect (state writes are rolled back).
    pub fn process(&mut self, port: &str, batch: Vec<Event>) -> Result<Vec<Emitted>, ProcessError> {
        let batch: Vec<wit::Event> = batch.into_iter().map(to_wit).collect();
        let result = self.sandbox.call(|bindings, store| {
            bindings
                .fnaa_plugin_flow_processor()
                .call_process(store, port, &batch)
        })?;
        let outputs = match result {
            Ok(outputs) => outputs,
            Err(error) => {
                self.sandbox.finish(false)?;
                return Err(match error {
                    WitProcessError::Failed(reason) => self.sandbox.error_failed(reason),
                    WitProcessError::InvalidEvent(e) => {
                        self.sandbox.error_invalid(e.index, e.reason)
                    }
                });
            }
        };
        let limit = self.sandbox.runtime.config().max_outputs_per_call;
        if outputs.len() > limit {
            self.sandbox.finish(false)?;
            self.sandbox.discard();
            return Err(self.sandbox.trapped(TrapCause::OutputLimit {
                count: outputs.len(),
                limit,
            }));
        }
        let emitted = match resolve_outputs(batch, outputs) {
            Ok(emitted) => emitted,
            Err(reason) => {
                self.sandbox.finish(false)?;
                return Err(self.sandbox.error_failed(reason));
            }
        };
        self.sandbox.finish(true)?;
        Ok(emitted)
    }
}

/// Turns the plugin's outputs into events, taking forwarded input events
/// from the batch: moved on their last use, cloned before.
fn resolve_outputs(
    batch: Vec<wit::Event>,
    outputs: Vec<crate::bindings::processor::exports::fnaa::plugin::flow_processor::Emitted>,
) -> Result<Vec<Emitted>, String> {
    let mut uses = vec![0u32; batch.len()];
    for output in &outputs {
        if let Output::Forward(index) = output.output {
            let slot = uses.get_mut(index as usize).ok_or_else(|| {
                format!(
                    "forwarded event {index}, but the batch has only {} events",
                    batch.len()
                )
            })?;
            *slot += 1;
        }
    }
    let mut batch: Vec<Option<wit::Event>> = batch.into_iter().map(Some).collect();
    let mut emitted = Vec::with_capacity(outputs.len());
    for output in outputs {
        let event = match output.output {
            Output::Emit(event) => event,
            Output::Forward(index) => {
                let i = index as usize;
                uses[i] -= 1;
                let original = if uses[i] == 0 {
                    batch[i].take()
                } else {
                    batch[i].clone()
                };
                original.ok_or_else(|| format!("event {index} forwarded twice"))?
            }
        };
        emitted.push(Emitted {
            port: output.port,
            event: from_wit(event),
        });
    }
    Ok(emitted)
}
