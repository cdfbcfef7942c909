//! MQTT protocol binding 1.0.
//!
//! MQTT 5 binary mode: every attribute but `datacontenttype` is a user
//! property named after the attribute (no prefix); `datacontenttype` is the
//! MQTT 5 Content Type property; `data` is the payload. Structured mode
//! (MQTT 3.1.1 and 5): the payload is the CloudEvents JSON document; MQTT 5
//! also sets the Content Type property to `application/cloudevents+json`.
//! MQTT 3.1.1 has no properties, so it only supports structured mode, and a
//! 3.1.1 payload is always read as structured.

use super::{
    BindingError, ConfigError, EncodeMode, Message, Mode, check_batch, event_from_attributes,
    header_attributes, utf8,
};
use crate::Event;

/// The MQTT protocol version a message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// Encodes `event` for MQTT `version` in `mode`. MQTT 3.1.1 supports only
/// structured mode (the caller validates this at configuration time) and
/// gets no content type, since it has nowhere to carry one.
pub fn encode(event: &Event, mode: Mode, version: Version) -> Message {
    match (version, mode) {
        (Version::V311, _) => Message {
            content_type: None,
            ..super::encode_structured(event)
        },
        (Version::V5, Mode::Structured) => super::encode_structured(event),
        (Version::V5, Mode::Binary) => Message {
            content_type: event.data_content_type.clone(),
            headers: header_attributes(event)
                .into_iter()
                .map(|(n, v)| (n, v.into_bytes()))
                .collect(),
            payload: event.data.clone().unwrap_or_default(),
            ..Message::default()
        },
    }
}

/// Decodes an MQTT message: structured when the content type says so (or
/// always on MQTT 3.1.1), binary when a `specversion` user property is
/// present.
pub fn decode(message: &Message, version: Version) -> Result<Event, BindingError> {
    check_batch(message.content_type.as_deref())?;
    let declared = message
        .content_type
        .as_deref()
        .is_some_and(super::is_structured_content_type);
    if declared {
        return super::decode_structured(&message.payload);
    }
    // MQTT 3.1.1 has nowhere else to put a CloudEvent; an MQTT 5 message
    // without a content type and without user properties is what a 3.1.1
    // client sends to a v5 subscriber. Either may also be a plain payload.
    if version == Version::V311
        || (message.header("specversion").is_none() && message.content_type.is_none())
    {
        return crate::from_json(&message.payload).map_err(BindingError::Undeclared);
    }
    if message.header("specversion").is_none() {
        return Err(BindingError::NotACloudEvent("specversion".into()));
    }
    let mut attributes = Vec::with_capacity(message.headers.len());
    for (name, value) in &message.headers {
        attributes.push((name.clone(), utf8(name, value)?));
    }
    event_from_attributes(
        attributes,
        message.content_type.as_deref(),
        &message.payload,
    )
}

/// The MQTT binding for [`Codec`](super::Codec): key `version` (`5`, the
/// default, or `3.1.1`, which has only structured mode).
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    version: Version,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            version: Version::V5,
        }
    }
}

impl super::Wire for Wire {
    fn configure(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        if key != "version" {
            return Ok(false);
        }
        self.version = match value {
            "5" | "5.0" => Version::V5,
            "3.1.1" | "311" | "4" => Version::V311,
            _ => return Err(ConfigError::invalid(key, "expected `5` or `3.1.1`")),
        };
        Ok(true)
    }

    fn default_mode(&self) -> EncodeMode {
        match self.version {
            Version::V311 => EncodeMode::Ce(Mode::Structured),
            Version::V5 => EncodeMode::Ce(Mode::Binary),
        }
    }

    fn check_mode(&self, mode: EncodeMode) -> Result<(), ConfigError> {
        if mode == EncodeMode::Ce(Mode::Binary) && self.version == Version::V311 {
            return Err(ConfigError::invalid(
                "mode",
                "MQTT 3.1.1 has no user properties: use `structured` (or `version = 5`)",
            ));
        }
        Ok(())
    }

    fn encode(&self, event: &Event, mode: Mode) -> Message {
        encode(event, mode, self.version)
    }

    fn decode(&self, message: &Message) -> Result<Event, BindingError> {
        decode(message, self.version)
    }

    fn clone_box(&self) -> Box<dyn super::Wire> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttributeValue;
    use crate::binding::tests::sample;

    #[test]
    fn v5_binary_round_trip() {
        let e = sample();
        let m = encode(&e, Mode::Binary, Version::V5);
        assert_eq!(m.header("specversion"), Some(&b"1.0"[..]));
        assert_eq!(m.header("category"), Some(&b"operational"[..]));
        assert_eq!(m.content_type.as_deref(), Some("application/json"));
        assert_eq!(decode(&m, Version::V5).unwrap(), e);
    }

    #[test]
    fn structured_round_trip_both_versions() {
        let mut e = sample();
        e.set_extension("hops", AttributeValue::Integer(3));
        for version in [Version::V311, Version::V5] {
            let m = encode(&e, Mode::Structured, version);
            assert!(m.headers.is_empty());
            assert_eq!(m.content_type.is_some(), version == Version::V5);
            assert_eq!(decode(&m, version).unwrap(), e);
        }
    }

    #[test]
    fn v311_always_structured() {
        let e = sample();
        let m = encode(&e, Mode::Binary, Version::V311);
        assert!(m.headers.is_empty());
        assert_eq!(decode(&m, Version::V311).unwrap(), e);
    }

    #[test]
    fn plain_payload_is_not_a_cloudevent() {
        let m = Message {
            payload: b"21.5".to_vec(),
            ..Message::default()
        };
        assert!(decode(&m, Version::V5).is_err());
        assert!(decode(&m, Version::V311).is_err());
        let text = Message {
            payload: b"hi".to_vec(),
            content_type: Some("text/plain".into()),
            ..Message::default()
        };
        assert_eq!(
            decode(&text, Version::V5),
            Err(BindingError::NotACloudEvent("specversion".into()))
        );
    }
}
