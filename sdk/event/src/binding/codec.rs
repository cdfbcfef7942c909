//! A connector's whole encode/decode behaviour, configured from the
//! key/value configuration an operator gives the connector plugin.
//!
//! Nothing here knows one binding from another: each binding module
//! provides a [`Wire`] (its own configuration keys, default mode, encoding
//! and decoding), and [`Binding::wire`](super::Binding) in `mod.rs` is the
//! only list of them.

use std::fmt;

use super::template::Template;
use super::{Binding, BindingError, Message, Mode, raw};
use crate::Event;

/// Why a connector configuration is refused. The variants match the WIT
/// `init-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key `{0}`")]
    UnknownKey(String),
    #[error("missing configuration key `{0}`")]
    MissingKey(String),
    #[error("invalid value for `{key}`: {reason}")]
    InvalidValue { key: String, reason: String },
}

impl ConfigError {
    /// [`ConfigError::InvalidValue`] for `key`.
    pub fn invalid(key: &str, reason: &str) -> Self {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// How a codec encodes: a CloudEvents content mode, or raw (bare data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeMode {
    Ce(Mode),
    Raw,
}

/// What one protocol binding brings to a [`Codec`]. Implemented by each
/// binding module (`kafka::Wire`, `mqtt::Wire`, ...).
pub trait Wire: fmt::Debug + Send + Sync {
    /// Takes a configuration key of this binding (`version`,
    /// `header_prefix`); `Ok(false)` when it is not one.
    fn configure(&mut self, _key: &str, _value: &str) -> Result<bool, ConfigError> {
        Ok(false)
    }

    /// Whether the shared template key `key` (`routing_key`, `key`) means
    /// something on this binding.
    fn takes(&self, _key: &str) -> bool {
        false
    }

    /// The mode when the configuration sets none.
    fn default_mode(&self) -> EncodeMode {
        EncodeMode::Ce(Mode::Binary)
    }

    /// Refuses a mode this binding, as configured, cannot carry.
    fn check_mode(&self, _mode: EncodeMode) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Encodes `event` in CloudEvents content mode `mode`.
    fn encode(&self, event: &Event, mode: Mode) -> Message;

    /// Decodes a message in whichever CloudEvents mode it is.
    fn decode(&self, message: &Message) -> Result<Event, BindingError>;

    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Wire>;
}

impl Clone for Box<dyn Wire> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A configured binding. Configuration keys:
///
/// * `mode`: `binary`, `structured` or `raw` (default: `binary`; MQTT
///   3.1.1: `structured`; the raw binding: `raw`). Decoding recognises both
///   CloudEvents modes whatever this says; `raw` wraps every message.
/// * `version` (MQTT): `5` (default) or `3.1.1`.
/// * `header_prefix` (AMQP): `ce-` (default, RabbitMQ's convention),
///   `cloudEvents:` or `cloudEvents_` (the AMQP 1.0 binding's).
/// * `destination`: template for the topic, exchange or subject (empty:
///   the sink's configured default).
/// * `routing_key` (AMQP): template for the routing key.
/// * `key` (Kafka): template for the message key (default: the
///   `partitionkey` extension, when present).
/// * `raw.source`, `raw.type`: attributes of wrapped raw messages (required
///   in `raw` mode; in the other modes, setting them wraps every message
///   that is not a CloudEvent instead of rejecting it).
/// * `raw.subject`: template over `{destination}`, `{routing_key}`, `{key}`.
/// * `raw.datacontenttype`: content type of wrapped data when the message
///   has none.
/// * `var.<name>`: a variable for templates (`{var.<name>}`).
#[derive(Debug, Clone)]
pub struct Codec {
    binding: Binding,
    wire: Box<dyn Wire>,
    mode: EncodeMode,
    destination: Option<Template>,
    routing_key: Option<Template>,
    key: Option<Template>,
    wrapper: Option<raw::Wrapper>,
    vars: Vec<(String, String)>,
}

fn template(key: &str, value: &str) -> Result<Template, ConfigError> {
    Template::parse(value).map_err(|e| ConfigError::InvalidValue {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

impl Codec {
    /// Configures `binding` from `config`.
    pub fn new(binding: Binding, config: &[(String, String)]) -> Result<Codec, ConfigError> {
        let mut mode = None;
        let mut codec = Codec {
            binding,
            wire: binding.wire(),
            mode: EncodeMode::Ce(Mode::Binary),
            destination: None,
            routing_key: None,
            key: None,
            wrapper: None,
            vars: Vec::new(),
        };
        let (mut raw_source, mut raw_type, mut raw_subject, mut raw_ct) = (None, None, None, None);
        for (key, value) in config {
            match key.as_str() {
                "mode" => {
                    mode = Some(match value.as_str() {
                        "binary" => EncodeMode::Ce(Mode::Binary),
                        "structured" => EncodeMode::Ce(Mode::Structured),
                        "raw" => EncodeMode::Raw,
                        _ => {
                            return Err(ConfigError::invalid(
                                key,
                                "expected `binary`, `structured` or `raw`",
                            ));
                        }
                    })
                }
                "destination" => codec.destination = Some(template(key, value)?),
                "routing_key" if codec.wire.takes(key) => {
                    codec.routing_key = Some(template(key, value)?)
                }
                "key" if codec.wire.takes(key) => codec.key = Some(template(key, value)?),
                "raw.source" => raw_source = Some(value.clone()),
                "raw.type" => raw_type = Some(value.clone()),
                "raw.subject" => raw_subject = Some(template(key, value)?),
                "raw.datacontenttype" => raw_ct = Some(value.clone()),
                other => {
                    if codec.wire.configure(other, value)? {
                        continue;
                    }
                    match other.strip_prefix("var.") {
                        Some(name) if !name.is_empty() => {
                            codec.vars.push((name.to_owned(), value.clone()))
                        }
                        _ => return Err(ConfigError::UnknownKey(other.to_owned())),
                    }
                }
            }
        }
        codec.mode = mode.unwrap_or_else(|| codec.wire.default_mode());
        codec.wire.check_mode(codec.mode)?;
        match (raw_source, raw_type) {
            (Some(source), Some(ty)) => {
                codec.wrapper = Some(raw::Wrapper::new(source, ty, raw_subject, raw_ct))
            }
            (None, None) if codec.mode == EncodeMode::Raw => {
                return Err(ConfigError::MissingKey("raw.source".into()));
            }
            (None, None) => {}
            (None, Some(_)) => return Err(ConfigError::MissingKey("raw.source".into())),
            (Some(_), None) => return Err(ConfigError::MissingKey("raw.type".into())),
        }
        Ok(codec)
    }

    /// The binding.
    pub fn binding(&self) -> Binding {
        self.binding
    }

    /// Encodes one event.
    pub fn encode(&self, event: &Event) -> Result<Message, BindingError> {
        let mut message = match self.mode {
            EncodeMode::Raw => raw::unwrap(event),
            EncodeMode::Ce(mode) => self.wire.encode(event, mode),
        };
        let render = |t: &Template| {
            t.render(event, &self.vars)
                .map_err(|e| BindingError::Template(e.to_string()))
        };
        if let Some(t) = &self.destination {
            message.destination.name = render(t)?;
        }
        if let Some(t) = &self.routing_key {
            message.destination.routing_key = Some(render(t)?);
        }
        if let Some(t) = &self.key {
            message.key = Some(render(t)?.into_bytes());
        }
        Ok(message)
    }

    /// Decodes one message that arrived at `now` (seconds, nanoseconds since
    /// the Unix epoch; used by raw wrapping only).
    pub fn decode(&mut self, message: &Message, now: (u64, u32)) -> Result<Event, BindingError> {
        let wrap = |wrapper: &mut raw::Wrapper| {
            wrapper
                .wrap(message, now)
                .map_err(|e| BindingError::Template(e.to_string()))
        };
        if self.mode == EncodeMode::Raw {
            return match &mut self.wrapper {
                Some(w) => wrap(w),
                None => Err(BindingError::Template(
                    "raw mode without `raw.source`".into(),
                )),
            };
        }
        match (self.wire.decode(message), &mut self.wrapper) {
            (Err(BindingError::NotACloudEvent(_) | BindingError::Undeclared(_)), Some(w)) => {
                wrap(w)
            }
            (result, _) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttributeValue;
    use crate::binding::tests::sample;

    fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn seed_003_exchange_and_routing_key() {
        let codec = Codec::new(
            Binding::Amqp,
            &cfg(&[
                ("destination", "{var.prefix}.{category}"),
                ("routing_key", "{category}.{type}"),
                ("var.prefix", "kytos"),
            ]),
        )
        .unwrap();
        let m = codec.encode(&sample()).unwrap();
        assert_eq!(m.destination.name, "kytos.operational");
        assert_eq!(
            m.destination.routing_key.as_deref(),
            Some("operational.kytos/topology.link_up")
        );
        let mut no_category = sample();
        no_category.extensions.retain(|(n, _)| n != "category");
        assert!(matches!(
            codec.encode(&no_category),
            Err(BindingError::Template(_))
        ));
    }

    #[test]
    fn every_binding_round_trips_in_every_mode() {
        for (binding, extra) in [
            (Binding::Kafka, vec![]),
            (Binding::Amqp, vec![]),
            (Binding::Amqp, vec![("header_prefix", "cloudEvents_")]),
            (Binding::Mqtt, vec![]),
            (Binding::Mqtt, vec![("version", "3.1.1")]),
            (Binding::Nats, vec![]),
        ] {
            for mode in ["binary", "structured"] {
                let mut pairs = extra.clone();
                pairs.push(("mode", mode));
                let Ok(mut codec) = Codec::new(binding, &cfg(&pairs)) else {
                    assert!(
                        binding == Binding::Mqtt && mode == "binary",
                        "{binding:?} {pairs:?}"
                    );
                    continue;
                };
                let e = sample();
                let m = codec.encode(&e).unwrap();
                assert_eq!(
                    codec.decode(&m, (0, 0)).unwrap(),
                    e,
                    "{binding:?} {pairs:?}"
                );
            }
        }
    }

    #[test]
    fn raw_fallback_and_raw_mode() {
        let mut strict = Codec::new(Binding::Mqtt, &[]).unwrap();
        let plain = Message {
            payload: b"21.5".to_vec(),
            ..Message::default()
        };
        assert!(strict.decode(&plain, (1, 0)).is_err());
        let json = Message {
            payload: br#"{"t":21.5}"#.to_vec(),
            ..Message::default()
        };
        assert!(strict.decode(&json, (1, 0)).is_err());
        let mut lenient = Codec::new(
            Binding::Mqtt,
            &cfg(&[("raw.source", "/s"), ("raw.type", "reading")]),
        )
        .unwrap();
        let e = lenient.decode(&plain, (1, 0)).unwrap();
        assert_eq!(e.ty, "reading");
        assert_eq!(e.data.as_deref(), Some(&b"21.5"[..]));
        let e = lenient.decode(&json, (1, 0)).unwrap();
        assert_eq!(e.data_content_type.as_deref(), Some("application/json"));
        // A real CloudEvent still decodes as one.
        let ce = lenient.encode(&sample()).unwrap();
        assert_eq!(lenient.decode(&ce, (1, 0)).unwrap(), sample());

        let mut raw = Codec::new(
            Binding::Raw,
            &cfg(&[
                ("raw.source", "/s"),
                ("raw.type", "t"),
                ("key", "{subject:-}"),
            ]),
        )
        .unwrap();
        let e = raw.decode(&ce, (1, 0)).unwrap();
        assert_eq!(e.data.as_deref(), Some(ce.payload.as_slice()));
        let out = raw.encode(&sample()).unwrap();
        assert_eq!(out.payload, sample().data.unwrap());
        assert_eq!(out.key.as_deref(), Some(&b"link/7"[..]));
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(
            Codec::new(Binding::Kafka, &cfg(&[("nope", "1")])).unwrap_err(),
            ConfigError::UnknownKey("nope".into())
        );
        assert_eq!(
            Codec::new(Binding::Kafka, &cfg(&[("routing_key", "x")])).unwrap_err(),
            ConfigError::UnknownKey("routing_key".into())
        );
        assert!(matches!(
            Codec::new(
                Binding::Mqtt,
                &cfg(&[("version", "3.1.1"), ("mode", "binary")])
            ),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert_eq!(
            Codec::new(Binding::Raw, &[]).unwrap_err(),
            ConfigError::MissingKey("raw.source".into())
        );
        assert!(matches!(
            Codec::new(Binding::Amqp, &cfg(&[("destination", "{Bad}")])),
            Err(ConfigError::InvalidValue { .. })
        ));
        let _ = AttributeValue::Boolean(true);
    }
}
