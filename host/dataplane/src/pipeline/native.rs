//! Native (non-wasm) implementations of the standard connectors and of a
//! pass-through processor, over the same binding code the wasm connector
//! plugins run (`fnaa_event::binding`). Tests use them to exercise the
//! transports and pipelines without the plugin runtime, and benchmarks to
//! measure what the wasm stage adds.

use std::time::{SystemTime, UNIX_EPOCH};

use fnaa_event::Event;
use fnaa_event::binding::{Binding, Codec as BindingCodec};

use super::NativePluginError;
use super::stage::{Codec, PerRecord, PluginError, PluginFactory, Processor, Refusal, StageError};
use crate::transport::Message;

/// A connector over `fnaa_event::binding`.
pub struct NativeCodec {
    codec: BindingCodec,
}

impl NativeCodec {
    /// Configures the binding `plugin` (`kafka`, `mqtt`, `amqp` or `raw`).
    pub fn new(
        plugin: &str,
        config: &[(String, String)],
    ) -> Result<NativeCodec, NativePluginError> {
        let binding = Binding::from_name(plugin)
            .ok_or_else(|| NativePluginError::UnknownConnector(plugin.to_owned()))?;
        let codec = BindingCodec::new(binding, config).map_err(|source| {
            NativePluginError::ConnectorConfig {
                plugin: plugin.to_owned(),
                source,
            }
        })?;
        Ok(NativeCodec { codec })
    }
}

/// Now, as the CloudEvents codecs take it (seconds and nanoseconds since
/// the Unix epoch).
pub fn now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

impl Codec for NativeCodec {
    fn decode(&mut self, batch: &[Message]) -> Result<PerRecord<Event>, StageError> {
        let now = now();
        Ok(batch
            .iter()
            .map(|m| {
                self.codec
                    .decode(m, now)
                    .map_err(|e| Refusal(e.to_string()))
            })
            .collect())
    }

    fn encode(&mut self, batch: &[Event]) -> Result<PerRecord<Message>, StageError> {
        Ok(batch
            .iter()
            .map(|e| self.codec.encode(e).map_err(|e| Refusal(e.to_string())))
            .collect())
    }
}

/// Forwards every event to `out` unchanged (the `bridge` processor).
#[derive(Debug, Default)]
pub struct PassThrough;

impl Processor for PassThrough {
    fn process(
        &mut self,
        _port: &str,
        batch: &[Event],
    ) -> Result<Vec<(String, Event)>, StageError> {
        Ok(batch
            .iter()
            .map(|e| ("out".to_owned(), e.clone()))
            .collect())
    }
}

/// Native plugins: connectors `kafka`, `mqtt`, `amqp`, `raw`; processor
/// `bridge`.
#[derive(Debug, Default)]
pub struct NativePlugins;

impl PluginFactory for NativePlugins {
    fn connector(
        &self,
        plugin: &str,
        _instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Codec>, PluginError> {
        Ok(Box::new(NativeCodec::new(plugin, config)?))
    }

    fn processor(
        &self,
        plugin: &str,
        _instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, PluginError> {
        match plugin {
            "bridge" if config.is_empty() => Ok(Box::new(PassThrough)),
            "bridge" => Err(NativePluginError::Unconfigurable("bridge").into()),
            other => Err(NativePluginError::UnknownProcessor(other.to_owned()).into()),
        }
    }
}
