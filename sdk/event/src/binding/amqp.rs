//! AMQP protocol binding 1.0, applied to the header table of AMQP 0.9.1
//! messages (RabbitMQ).
//!
//! Binary mode: each attribute but `datacontenttype` is a header named
//! `cloudEvents:<name>` (or `cloudEvents_<name>`, the prefix the binding
//! allows for JMS 2.0 and other clients that reject `:` in names);
//! `datacontenttype` is the message's `content_type` property; `data` is the
//! body. Structured mode: the body is the CloudEvents JSON document and
//! `content_type` is `application/cloudevents+json`. Decoding accepts both
//! prefixes.

use super::{
    BindingError, Message, Mode, check_batch, event_from_attributes, header_attributes, utf8,
};
use crate::Event;

/// The binding's default header prefix.
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
        .any(|(n, _)| strip(n) == Some("specversion"))
    {
        return Err(BindingError::NotACloudEvent(format!("{PREFIX}specversion")));
    }
    let mut attributes = Vec::with_capacity(message.headers.len());
    for (name, value) in &message.headers {
        if let Some(attr) = strip(name) {
            attributes.push((attr.to_owned(), utf8(name, value)?));
        }
    }
    event_from_attributes(
        attributes,
        message.content_type.as_deref(),
        &message.payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::tests::sample;

    #[test]
    fn binary_round_trip_with_both_prefixes() {
        let e = sample();
        for prefix in [PREFIX, PREFIX_UNDERSCORE] {
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
