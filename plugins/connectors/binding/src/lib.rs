//! The standard connector plugins (`kafka`, `mqtt`, `amqp`, `raw`) are one
//! generic connector over the CloudEvents protocol bindings of
//! `fnaa_event::binding`, instantiated once per binding. The binding logic
//! is plain Rust shared with the host, so both agree byte for byte; this
//! crate only adapts it to the SDK's [`Connector`] trait.
//!
//! Configuration keys (see `fnaa_event::binding::Codec` for details):
//!
//! | key | meaning |
//! | --- | --- |
//! | `mode` | `binary`, `structured` or `raw` |
//! | `version` | MQTT only: `5` (default) or `3.1.1` |
//! | `header_prefix` | AMQP only: `ce-` (default, RabbitMQ's convention), `cloudEvents:` or `cloudEvents_` |
//! | `destination` | template of the topic or exchange, e.g. `kytos.{category}` |
//! | `routing_key` | AMQP: template of the routing key, e.g. `{category}.{type}` |
//! | `key` | Kafka: template of the message key |
//! | `raw.source`, `raw.type` | attributes of events wrapped from non-CloudEvents messages |
//! | `raw.subject`, `raw.datacontenttype` | optional attributes of wrapped events |
//! | `var.<name>` | a template variable, `{var.<name>}` |

use std::marker::PhantomData;

use fnaa_sdk::event::binding::{self, Binding, Codec, ConfigError};
use fnaa_sdk::{Config, Connector, Destination, Event, Header, InitError, Message, PluginInfo};

/// Which binding a connector plugin implements.
pub trait Kind: 'static {
    /// The binding.
    const BINDING: Binding;
    /// The plugin name.
    const NAME: &'static str;
    /// One line for operators.
    const DESCRIPTION: &'static str;
}

/// A connector over binding `K`.
pub struct BindingConnector<K: Kind> {
    codec: Codec,
    kind: PhantomData<K>,
}

impl<K: Kind> std::fmt::Debug for BindingConnector<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingConnector")
            .field("binding", &K::NAME)
            .finish_non_exhaustive()
    }
}

fn init_error(e: ConfigError) -> InitError {
    match e {
        ConfigError::UnknownKey(k) => InitError::UnknownKey(k),
        ConfigError::MissingKey(k) => InitError::MissingKey(k),
        ConfigError::InvalidValue { key, reason } => InitError::InvalidValue { key, reason },
    }
}

/// An SDK message as a binding message.
pub fn from_sdk(m: Message) -> binding::Message {
    binding::Message {
        destination: binding::Destination {
            name: m.destination.name,
            routing_key: m.destination.routing_key,
        },
        key: m.key,
        content_type: m.content_type,
        headers: m.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        payload: m.payload,
    }
}

/// A binding message as an SDK message.
pub fn to_sdk(m: binding::Message) -> Message {
    Message {
        destination: Destination {
            name: m.destination.name,
            routing_key: m.destination.routing_key,
        },
        key: m.key,
        content_type: m.content_type,
        headers: m
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        payload: m.payload,
    }
}

impl<K: Kind> Connector for BindingConnector<K> {
    fn info() -> PluginInfo {
        PluginInfo::new(K::NAME, env!("CARGO_PKG_VERSION"), K::DESCRIPTION, true)
    }

    fn init(config: Config) -> Result<Self, InitError> {
        let pairs: Vec<(String, String)> = config
            .entries()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let codec = Codec::new(K::BINDING, &pairs).map_err(init_error)?;
        Ok(BindingConnector {
            codec,
            kind: PhantomData,
        })
    }

    fn encode(&mut self, batch: Vec<Event>) -> Vec<Result<Message, String>> {
        batch
            .iter()
            .map(|e| self.codec.encode(e).map(to_sdk).map_err(|e| e.to_string()))
            .collect()
    }

    fn decode(&mut self, batch: Vec<Message>) -> Vec<Result<Event, String>> {
        let now = fnaa_sdk::clock::now();
        let now = (now.seconds, now.nanoseconds);
        batch
            .into_iter()
            .map(|m| {
                self.codec
                    .decode(&from_sdk(m), now)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use fnaa_sdk::AttributeValue;

    use super::*;

    struct Amqp;
    impl Kind for Amqp {
        const BINDING: Binding = Binding::Amqp;
        const NAME: &'static str = "amqp";
        const DESCRIPTION: &'static str = "test";
    }

    #[test]
    fn encodes_routes_and_decodes() {
        let config = Config::from_pairs([
            ("destination", "kytos.{category}"),
            ("routing_key", "{category}.{type}"),
        ]);
        let mut c = BindingConnector::<Amqp>::init(config)
            .ok()
            .unwrap_or_else(|| unreachable!());
        let mut e = Event::new("1", "/kytos", "kytos/topology.link_up");
        e.set_extension("category", AttributeValue::String("operational".into()));
        let out = c.encode(vec![e.clone(), Event::new("2", "/kytos", "t")]);
        let Ok(m) = &out[0] else {
            unreachable!("{out:?}")
        };
        assert_eq!(m.destination.name, "kytos.operational");
        assert_eq!(
            m.destination.routing_key.as_deref(),
            Some("operational.kytos/topology.link_up")
        );
        assert!(out[1].as_ref().is_err_and(|r| r.contains("category")));
        let back = c.decode(vec![m.clone()]);
        assert_eq!(back, vec![Ok(e)]);
    }

    #[test]
    fn refuses_unknown_keys() {
        let r = BindingConnector::<Amqp>::init(Config::from_pairs([("modee", "binary")]));
        assert!(matches!(r, Err(InitError::UnknownKey(k)) if k == "modee"));
    }
}
