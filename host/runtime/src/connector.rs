//! A running broker connector instance: converts events to broker messages
//! and back.

use fnaa_event::Event;

use crate::bindings::connector::Connector;
use crate::bindings::connector::exports::fnaa::plugin::broker_connector as wit_connector;
use crate::bindings::{from_wit, to_wit, wit};
use crate::error::{ProcessError, RuntimeError};
use crate::plugin::Plugin;
use crate::runtime::Runtime;
use crate::sandbox::Sandbox;

/// Broker messages as connectors produce and consume them: the type the
/// transports and the protocol bindings share.
pub use fnaa_event::binding::{Destination, Message};

fn message_to_wit(m: Message) -> wit_connector::Message {
    wit_connector::Message {
        destination: wit_connector::Destination {
            name: m.destination.name,
            routing_key: m.destination.routing_key,
        },
        key: m.key,
        content_type: m.content_type,
        headers: m
            .headers
            .into_iter()
            .map(|(name, value)| wit_connector::Header { name, value })
            .collect(),
        payload: m.payload,
    }
}

fn message_from_wit(m: wit_connector::Message) -> Message {
    Message {
        destination: Destination {
            name: m.destination.name,
            routing_key: m.destination.routing_key,
        },
        key: m.key,
        content_type: m.content_type,
        headers: m.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        payload: m.payload,
    }
}

/// One instance of a connector plugin.
pub struct ConnectorInstance {
    sandbox: Sandbox<Connector>,
}

impl std::fmt::Debug for ConnectorInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorInstance")
            .field("plugin", &self.sandbox.plugin.name())
            .field("instance", &&*self.sandbox.instance)
            .finish_non_exhaustive()
    }
}

impl ConnectorInstance {
    /// Instantiates `plugin` as `instance` and initialises it with `config`.
    pub fn new(
        runtime: &Runtime,
        plugin: &Plugin,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Self, RuntimeError> {
        Ok(ConnectorInstance {
            sandbox: Sandbox::new(runtime, plugin, instance, config)?,
        })
    }

    /// The plugin it runs.
    pub fn plugin(&self) -> &Plugin {
        &self.sandbox.plugin
    }

    /// Encodes each event into a message (or says why it cannot), in order.
    pub fn encode(
        &mut self,
        batch: Vec<Event>,
    ) -> Result<Vec<Result<Message, String>>, ProcessError> {
        let expected = batch.len();
        let batch: Vec<wit::Event> = batch.into_iter().map(to_wit).collect();
        let results = self
            .sandbox
            .call(|b, store| b.fnaa_plugin_broker_connector().call_encode(store, &batch))?;
        self.check_count(results.len(), expected)?;
        Ok(results
            .into_iter()
            .map(|r| r.map(message_from_wit))
            .collect())
    }

    /// Decodes each message into an event (or says why it cannot), in order.
    pub fn decode(
        &mut self,
        batch: Vec<Message>,
    ) -> Result<Vec<Result<Event, String>>, ProcessError> {
        let expected = batch.len();
        let batch: Vec<wit_connector::Message> = batch.into_iter().map(message_to_wit).collect();
        let results = self
            .sandbox
            .call(|b, store| b.fnaa_plugin_broker_connector().call_decode(store, &batch))?;
        self.check_count(results.len(), expected)?;
        Ok(results.into_iter().map(|r| r.map(from_wit)).collect())
    }

    fn check_count(&mut self, got: usize, expected: usize) -> Result<(), ProcessError> {
        if got == expected {
            return Ok(());
        }
        Err(self
            .sandbox
            .error_failed(format!("returned {got} results for a batch of {expected}")))
    }
}
