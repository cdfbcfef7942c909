//! The plugin runtime behind the pipeline's [`Codec`] and [`Processor`]
//! traits: connectors and processors are sandboxed WebAssembly components
//! run by `fnaa-runtime`.

use fnaa_event::Event;
use fnaa_runtime::{
    ConnectorInstance, Plugin, PluginKind, ProcessError, ProcessorInstance, Runtime,
};

use super::stage::{
    BoxError, Codec, PerRecord, PluginError, PluginFactory, Processor, Refusal, StageError,
};
use crate::transport::Message;

/// Finds a plugin by name (embedded standard plugins, installed ones).
pub type Resolver = dyn Fn(&str) -> Result<Plugin, BoxError> + Send + Sync;

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
        resolve: impl Fn(&str) -> Result<Plugin, BoxError> + Send + Sync + 'static,
    ) -> Self {
        WasmPlugins {
            runtime,
            resolve: Box::new(resolve),
        }
    }

    fn find(&self, name: &str, kind: PluginKind) -> Result<Plugin, PluginError> {
        let plugin = (self.resolve)(name).map_err(PluginError::NotFound)?;
        if plugin.kind() != kind {
            return Err(PluginError::WrongKind {
                name: name.to_owned(),
                is: plugin.kind().as_str(),
                wanted: kind.as_str(),
            });
        }
        Ok(plugin)
    }
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
    fn decode(&mut self, batch: &[Message]) -> Result<PerRecord<Event>, StageError> {
        let decoded = self.0.decode(batch.to_vec()).map_err(stage_error)?;
        Ok(refusals(decoded))
    }

    fn encode(&mut self, batch: &[Event]) -> Result<PerRecord<Message>, StageError> {
        let encoded = self.0.encode(batch.to_vec()).map_err(stage_error)?;
        Ok(refusals(encoded))
    }
}

/// The plugin's per-record strings (WIT `result<_, string>`) as refusals.
fn refusals<T>(results: Vec<Result<T, String>>) -> PerRecord<T> {
    results.into_iter().map(|r| r.map_err(Refusal)).collect()
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
    ) -> Result<Box<dyn Codec>, PluginError> {
        let plugin = self.find(plugin, PluginKind::Connector)?;
        let made = ConnectorInstance::new(&self.runtime, &plugin, instance, config)?;
        Ok(Box::new(WasmCodec(made)))
    }

    fn processor(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, PluginError> {
        let plugin = self.find(plugin, PluginKind::Processor)?;
        let made = ProcessorInstance::new(&self.runtime, &plugin, instance, config)?;
        Ok(Box::new(WasmProcessor(made)))
    }
}
