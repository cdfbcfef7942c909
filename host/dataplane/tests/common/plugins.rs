//! Test processors on top of the native plugins, and the numbered events
//! the pipeline tests send through them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use fnaa_dataplane::pipeline::native::NativePlugins;
use fnaa_dataplane::pipeline::{Codec, PluginError, PluginFactory, Processor, StageError};
use fnaa_event::{AttributeValue, Event};

/// Event `ev-<i>` with `subject`, JSON data `{"n":<i>}` and extension
/// `category`: `operational` for even `i`, `administrative` for odd.
pub fn event(i: usize, subject: &str) -> Event {
    let mut e = Event::new(super::pipeline::ev_id(i), "/test", "org.example.reading")
        .with_data("application/json", format!("{{\"n\":{i}}}").into_bytes());
    e.subject = Some(subject.to_owned());
    e.set_extension(
        "category",
        AttributeValue::String(
            if i.is_multiple_of(2) {
                "operational"
            } else {
                "administrative"
            }
            .into(),
        ),
    );
    e
}

/// Test processors on top of the native plugins:
/// * `failer`: refuses events with subject `bad` (invalid-event), fails
///   the whole batch while it contains subject `poison` (retryable), and
///   fails the first call that sees subject `flaky` (retryable once).
/// * everything else: [`NativePlugins`].
#[derive(Default)]
pub struct TestPlugins {
    flaky_seen: Arc<Mutex<BTreeSet<String>>>,
}

struct Failer {
    flaky_seen: Arc<Mutex<BTreeSet<String>>>,
}

impl Processor for Failer {
    fn process(
        &mut self,
        _port: &str,
        batch: &[Event],
    ) -> Result<Vec<(String, Event)>, StageError> {
        if let Some(i) = batch
            .iter()
            .position(|e| e.subject.as_deref() == Some("bad"))
        {
            return Err(StageError {
                reason: "subject `bad` is not allowed".into(),
                retryable: false,
                invalid_index: Some(i),
            });
        }
        if batch.iter().any(|e| e.subject.as_deref() == Some("poison")) {
            return Err(StageError::new("trap: unreachable executed", true));
        }
        for e in batch
            .iter()
            .filter(|e| e.subject.as_deref() == Some("flaky"))
        {
            if self.flaky_seen.lock().unwrap().insert(e.id.clone()) {
                return Err(StageError::new("deadline exceeded", true));
            }
        }
        Ok(batch
            .iter()
            .map(|e| ("out".to_owned(), e.clone()))
            .collect())
    }
}

impl PluginFactory for TestPlugins {
    fn connector(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Codec>, PluginError> {
        NativePlugins.connector(plugin, instance, config)
    }

    fn processor(
        &self,
        plugin: &str,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Box<dyn Processor>, PluginError> {
        match plugin {
            "failer" => Ok(Box::new(Failer {
                flaky_seen: self.flaky_seen.clone(),
            })),
            _ => NativePlugins.processor(plugin, instance, config),
        }
    }
}
