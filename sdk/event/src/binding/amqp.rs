//! CloudEvents on AMQP 0.9.1 messages (RabbitMQ), in the two conventions
//! consumers use:
//!
//! * `ce-<name>` headers (the default): the RabbitMQ protocol binding of
//!   knative's eventing-rabbitmq, which the CloudEvents SDKs implement for
//!   AMQP 0-9-1 (Python: `cloudevents.core.bindings.rabbitmq`);
//! * `cloudEvents:<name>` headers (or `cloudEvents_<name>`, for JMS 2.0 and
//!   other clients that reject `:`): the AMQP 1.0 protocol binding's form
//!   (Python: `cloudevents.core.bindings.amqp`).
//!
//! Binary mode: each attribute but `datacontenttype` is a header with the
//! configured prefix and the attribute's canonical string as its value;
//! `datacontenttype` is the message's `content_type` property; `data` is
//! the body. Structured mode: the body is the CloudEvents JSON document and
//! `content_type` is `application/cloudevents+json`. Decoding accepts every
//! prefix (`ce-` in any case).

use super::{
    BindingError, ConfigError, Message, Mode, check_batch, event_from_attributes,
    header_attributes, utf8,
};
use crate::Event;

/// The default header prefix: the RabbitMQ protocol binding's.
pub const PREFIX_RABBITMQ: &str = "ce-";
/// The AMQP 1.0 protocol binding's header prefix.
pub const PREFIX: &str = "cloudEvents:";
/// The alternative prefix for clients that reject `:` in header names.
pub const PREFIX_UNDERSCORE: &str = "cloudEvents_";

/// Encodes `event` in `mode`; binary headers use `prefix`.
pub fn encode(event: &Event, mode: Mode, prefix: &str) -> Message {
    match mode {
        Mode::Structured => super::encode_structured(event),
        Mode::Binary => Message {
            content_type: event.data_content_type.clone(),
            headers: header_attributes(event)
                .into_iter()
                .map(|(name, value)| (format!("{prefix}{name}"), value.into_bytes()))
                .collect(),
            payload: event.data.clone().unwrap_or_default(),
            ..Message::default()
        },
    }
}

fn strip(name: &str) -> Option<&str> {
    name.strip_prefix(PREFIX)
        .or_else(|| name.strip_prefix(PREFIX_UNDERSCORE))
        .or_else(|| {
            name.get(..PREFIX_RABBITMQ.len())
                .filter(|head| head.eq_ignore_ascii_case(PREFIX_RABBITMQ))
                .map(|_| &name[PREFIX_RABBITMQ.len()..])
        })
}

/// Decodes a message in either mode and with either prefix.
pub fn decode(message: &Message) -> Result<Event, BindingError> {
    check_batch(message.content_type.as_deref())?;
    if message
        .content_type
        .as_deref()
        .is_some_and(super::is_structured_content_type)
    {
        return super::decode_structured(&message.payload);
    }
    if !message
        .headers
        .iter()
        .any(|(n, _)| strip(n).is_some_and(|a| a.eq_ignore_ascii_case("specversion")))
    {
        return Err(BindingError::NotACloudEvent(format!(
            "{PREFIX_RABBITMQ}specversion"
        )));
    }
    let mut attributes = Vec::with_capacity(message.headers.len());
    for (name, value) in &message.headers {
        if let Some(attr) = strip(name) {
            attributes.push((attr.to_ascii_lowercase(), utf8(name, value)?));
        }
    }
    event_from_attributes(
        attributes,
        message.content_type.as_deref(),
        &message.payload,
    )
}

/// The AMQP binding for [`Codec`](super::Codec): key `header_prefix`
/// (`ce-`, the default, `cloudEvents:` or `cloudEvents_`) and the
/// `routing_key` template.
#[derive(Debug, Clone)]
pub struct Wire {
    prefix: String,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            prefix: PREFIX_RABBITMQ.to_owned(),
        }
    }
}

impl super::Wire for Wire {
    fn configure(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        if key != "header_prefix" {
            return Ok(false);
        }
        if ![PREFIX_RABBITMQ, PREFIX, PREFIX_UNDERSCORE].contains(&value) {
            return Err(ConfigError::invalid(
                key,
                "expected `ce-`, `cloudEvents:` or `cloudEvents_`",
            ));
        }
        self.prefix = value.to_owned();
        Ok(true)
    }

    fn takes(&self, key: &str) -> bool {
        key == "routing_key"
    }

    fn encode(&self, event: &Event, mode: Mode) -> Message {
        encode(event, mode, &self.prefix)
    }

    fn decode(&self, message: &Message) -> Result<Event, BindingError> {
        decode(message)
    }

    fn clone_box(&self) -> Box<dyn super::Wire> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::tests::sample;

    #[test]
    fn binary_round_trip_with_both_prefixes() {
        let e = sample();
        for prefix in [PREFIX_RABBITMQ, PREFIX, PREFIX_UNDERSCORE] {
            let m = encode(&e, Mode::Binary, prefix);
            assert_eq!(
                m.header(&format!("{prefix}type")),
                Some(&b"kytos/topology.link_up"[..])
            );
            assert_eq!(m.content_type.as_deref(), Some("application/json"));
            assert_eq!(decode(&m).unwrap(), e);
        }
    }

    #[test]
    fn structured_round_trip() {
        let e = sample();
        let m = encode(&e, Mode::Structured, PREFIX);
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn foreign_headers_are_ignored() {
        let e = sample();
        let mut m = encode(&e, Mode::Binary, PREFIX);
        m.headers.push(("x-death".into(), b"whatever".to_vec()));
        assert_eq!(decode(&m).unwrap(), e);
    }
}
