//! The plugin runtime behind the pipeline's [`Codec`] and [`Processor`]
//! traits: connectors and processors are sandboxed WebAssembly components
//! run by `fnaa-runtime`.

use fnaa_event::Event;
use fnaa_runtime::{
    ConnectorInstance, Plugin, PluginKind, ProcessError, ProcessorInstance, Runtime,
};

use super::stage::{Codec, PluginFactory, Processor, StageError};
use crate::transport::Message;

/// Finds a plugin by name (embedded standard plugins, installed ones).
pub type Resolver = dyn Fn(&str) -> Result<Plugin, String> + Send + Sync;

/// Creates pipeline plugin instances with the wasm runtime.
pub struct WasmPlugins {
    runtime: Runtime,
    resolve: Box<Resolver>,
}

impl std::fmt::Debug for WasmPlugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugins").finish_non_exhaustive()
    }
}

impl WasmPlugins {
    /// Plugins found by `resolve`, run by `runtime`.
    pub fn new(
        runtime: Runtime,
        resolve: impl Fn(&str) -> Result<Plugin, String> + Send + Sync + 'static,
    ) -> Self {
        WasmPlugins {
            runtime,
            resolve: Box::new(resolve),
        }
    }

    fn find(&self, name: &str, kind: PluginKind) -> Result<Plugin, WasmPluginError> {
        let plugin = (self.resolve)(name).map_err(WasmPluginError::NotFound)?;
        if plugin.kind() != kind {
            return Err(WasmPluginError::WrongKind {
                name: name.to_owned(),
                is: plugin.kind().as_str(),
                wanted: kind.as_str(),
            });
        }
        Ok(plugin)
    }
}

/// Why a wasm plugin instance cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasmPluginError {
    /// The resolver's reason.
    #[error("{0}")]
    NotFound(String),
    #[error("plugin `{name}` is a {is}, not a {wanted}")]
    WrongKind {
        name: String,
        is: &'static str,
        wanted: &'static str,
    },
    /// The runtime refused to instantiate it.
    #[error("{0}")]
    Instantiate(String),
}

fn stage_error(e: ProcessError) -> StageError {
    let invalid_index = match &e {
        ProcessError::InvalidEvent { index, .. } => usize::try_from(*index).ok(),
        _ => None,
    };
    StageError {
        retryable: e.is_retryable(),
        reason: e.to_string(),
        invalid_index,
    }
}

/// A connector plugin instance.
pub struct WasmCodec(ConnectorInstance);

impl Codec for WasmCodec {
    fn decode(&mut self, batch: &[Message]) -> Result<Vec<Result<Event, String>>, StageError> {
        self.0.decode(batch.to_vec()).map_err(stage_error)
    }

    fn encode(&mut self, batch: &[Event]) -> Result<Vec<Result<Message, String>>, StageError> {
        self.0.encode(batch.to_vec()).map_err(stage_error)
    }
}

/// A processor plugin instance.
pub struct WasmProcessor(ProcessorInstance);

impl Processor for WasmProcessor {
    fn process(&mut self, port: &str, batch: &[Event]) -> Result<Vec<(String, Event)>, StageError> {
        let out = self.0.process(port, batch.to_vec()).map_err(stage_error)?;
        Ok(out.into_iter().map(|e| (e.port, e.event)).collect())
    }
}

impl PluginFactory for WasmPlugins {
    fn connector(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Codec>, String> {
        let made = self.find(plugin, PluginKind::Connector).and_then(|p| {
            ConnectorInstance::new(&self.runtime, &p, instance, config)
                .map_err(|e| WasmPluginError::Instantiate(e.to_string()))
        });
        Ok(Box::new(WasmCodec(made.map_err(|e| e.to_string())?)))
    }

    fn processor(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, String> {
        let made = self.find(plugin, PluginKind::Processor).and_then(|p| {
            ProcessorInstance::new(&self.runtime, &p, instance, config)
                .map_err(|e| WasmPluginError::Instantiate(e.to_string()))
        });
        Ok(Box::new(WasmProcessor(made.map_err(|e| e.to_string())?)))
    }
}
