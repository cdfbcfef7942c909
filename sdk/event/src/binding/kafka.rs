//! Kafka protocol binding 1.0.
//!
//! Binary mode: each attribute but `datacontenttype` goes into a `ce_<name>`
//! header as UTF-8 text; `datacontenttype` is the `content-type` header
//! (the message's [`content_type`](super::Message::content_type)); `data` is
//! the value. Structured mode: the value is the CloudEvents JSON document and
//! `content-type` is `application/cloudevents+json`. In both modes the
//! `partitionkey` extension, when present, becomes the message key.

use super::{
    BindingError, Message, Mode, check_batch, event_from_attributes, header_attributes, utf8,
};
use crate::{AttributeValue, Event};

/// Header prefix of binary mode.
pub const PREFIX: &str = "ce_";

/// Encodes `event` in `mode`.
pub fn encode(event: &Event, mode: Mode) -> Message {
    let mut message = match mode {
        Mode::Structured => super::encode_structured(event),
        Mode::Binary => Message {
            content_type: event.data_content_type.clone(),
            headers: header_attributes(event)
                .into_iter()
                .map(|(name, value)| (format!("{PREFIX}{name}"), value.into_bytes()))
                .collect(),
            payload: event.data.clone().unwrap_or_default(),
            ..Message::default()
        },
    };
    if let Some(AttributeValue::String(key)) = event.extension("partitionkey") {
        message.key = Some(key.clone().into_bytes());
    }
    message
}

/// Decodes a message in either mode: structured when the content type says
/// so, binary when a `ce_specversion` header is present.
pub fn decode(message: &Message) -> Result<Event, BindingError> {
    check_batch(message.content_type.as_deref())?;
    if message
        .content_type
        .as_deref()
        .is_some_and(super::is_structured_content_type)
    {
        return super::decode_structured(&message.payload);
    }
    if message.header("ce_specversion").is_none() {
        return Err(BindingError::NotACloudEvent("ce_specversion".into()));
    }
    let mut attributes = Vec::with_capacity(message.headers.len());
    for (name, value) in &message.headers {
        if let Some(attr) = name.strip_prefix(PREFIX) {
            attributes.push((attr.to_owned(), utf8(name, value)?));
        }
    }
    event_from_attributes(
        attributes,
        message.content_type.as_deref(),
        &message.payload,
    )
}

/// The Kafka binding for [`Codec`](super::Codec): the `key` template.
#[derive(Debug, Clone, Copy)]
pub struct Wire;

impl super::Wire for Wire {
    fn takes(&self, key: &str) -> bool {
        key == "key"
    }

    fn encode(&self, event: &Event, mode: Mode) -> Message {
        encode(event, mode)
    }

    fn decode(&self, message: &Message) -> Result<Event, BindingError> {
        decode(message)
    }

    fn clone_box(&self) -> Box<dyn super::Wire> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::tests::sample;

    #[test]
    fn binary_round_trip() {
        let e = sample();
        let m = encode(&e, Mode::Binary);
        assert_eq!(m.header("ce_id"), Some(&b"ev-1"[..]));
        assert_eq!(m.header("ce_type"), Some(&b"kytos/topology.link_up"[..]));
        assert_eq!(m.header("ce_datacontenttype"), None);
        assert_eq!(m.content_type.as_deref(), Some("application/json"));
        assert_eq!(m.key.as_deref(), Some(&b"link-7"[..]));
        assert_eq!(m.payload, e.data.clone().unwrap());
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn structured_round_trip_keeps_types() {
        let mut e = sample();
        e.set_extension("hops", AttributeValue::Integer(3));
        let m = encode(&e, Mode::Structured);
        assert!(
            m.content_type
                .as_deref()
                .unwrap()
                .starts_with("application/cloudevents+json")
        );
        assert_eq!(m.key.as_deref(), Some(&b"link-7"[..]));
        assert!(m.headers.is_empty());
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn binary_extensions_come_back_as_strings() {
        let mut e = Event::new("1", "/s", "t");
        e.set_extension("hops", AttributeValue::Integer(3));
        let back = decode(&encode(&e, Mode::Binary)).unwrap();
        assert_eq!(
            back.extension("hops"),
            Some(&AttributeValue::String("3".into()))
        );
        assert_eq!(back.data, None);
    }

    #[test]
    fn rejects_plain_messages_and_batches() {
        let plain = Message {
            payload: b"hello".to_vec(),
            ..Message::default()
        };
        assert!(matches!(
            decode(&plain),
            Err(BindingError::NotACloudEvent(_))
        ));
        let batch = Message {
            content_type: Some("application/cloudevents-batch+json".into()),
            payload: b"[]".to_vec(),
            ..Message::default()
        };
        assert!(matches!(decode(&batch), Err(BindingError::Batch(_))));
        let mut missing = encode(&sample(), Mode::Binary);
        missing.headers.retain(|(n, _)| n != "ce_source");
        assert_eq!(decode(&missing), Err(BindingError::Missing("source")));
    }
}
