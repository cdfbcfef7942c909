//! CloudEvents protocol bindings for broker messages: Kafka, MQTT, AMQP and
//! NATS, in binary and structured mode, plus a raw mode for producers that
//! know nothing of CloudEvents.
//!
//! This is pure logic over a broker-neutral [`Message`] (the `message` record
//! of the WIT `broker-connector` interface). The connector plugins run it
//! inside the sandbox; the host uses the same code in tests, so both sides
//! agree byte for byte.
//!
//! * [`kafka`]: Kafka protocol binding 1.0 (`ce_` headers, `content-type`
//!   header, `partitionkey` as message key).
//! * [`mqtt`]: MQTT protocol binding 1.0 (MQTT 5 binary mode with user
//!   properties; structured mode for MQTT 3.1.1 and 5).
//! * [`amqp`]: CloudEvents on AMQP 0.9.1 header tables (`ce-` headers, the
//!   RabbitMQ binding, or the AMQP 1.0 binding's `cloudEvents:` form).
//! * [`nats`]: NATS protocol binding (`ce-` headers with percent-encoded
//!   values; structured mode by `Content-Type`).
//! * [`http`]: HTTP protocol binding 1.0, receiving side (binary,
//!   structured and batched requests).
//! * [`raw`]: wraps plain JSON or bytes into events and unwraps them again.
//! * [`template`]: destination, routing key and key templates such as
//!   `kytos.{category}` over event attributes and configuration variables.
//! * [`Codec`]: all of the above driven by a connector's key/value config.

pub mod amqp;
mod codec;
pub mod http;
pub mod kafka;
pub mod mqtt;
pub mod nats;
pub mod raw;
pub mod template;
mod time;

pub use codec::{Codec, ConfigError, EncodeMode, Wire};
pub use time::rfc3339_utc;

use crate::{Event, FormatError};

/// The broker protocol binding a connector implements. This is the only
/// list of bindings: a new one is a module of its own plus a variant here
/// and its arm in [`Binding::wire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Kafka,
    Mqtt,
    Amqp,
    Nats,
    /// Raw only (any broker): wrap on decode, unwrap on encode.
    Raw,
}

impl Binding {
    /// The binding a connector plugin of that name implements (`kafka`,
    /// `mqtt`, `amqp`, `nats`, `raw`).
    pub fn from_name(name: &str) -> Option<Binding> {
        [
            Binding::Kafka,
            Binding::Mqtt,
            Binding::Amqp,
            Binding::Nats,
            Binding::Raw,
        ]
        .into_iter()
        .find(|b| b.name() == name)
    }

    /// The binding's name, which is also its connector plugin's.
    pub fn name(self) -> &'static str {
        match self {
            Binding::Kafka => "kafka",
            Binding::Mqtt => "mqtt",
            Binding::Amqp => "amqp",
            Binding::Nats => "nats",
            Binding::Raw => "raw",
        }
    }

    /// The binding's behaviour, as configured by default.
    pub fn wire(self) -> Box<dyn Wire> {
        match self {
            Binding::Kafka => Box::new(kafka::Wire),
            Binding::Mqtt => Box::new(mqtt::Wire::default()),
            Binding::Amqp => Box::new(amqp::Wire::default()),
            Binding::Nats => Box::new(nats::Wire),
            Binding::Raw => Box::new(raw::Wire),
        }
    }
}

/// The media type of a structured-mode message (CloudEvents JSON format).
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// Where a message goes to or came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    /// Kafka topic, MQTT topic or AMQP exchange. Empty: the sink's default.
    pub name: String,
    /// AMQP routing key; `None` for brokers without one.
    pub routing_key: Option<String>,
}

/// A broker message, as the WIT `message` record describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub destination: Destination,
    /// Kafka message key.
    pub key: Option<Vec<u8>>,
    /// MQTT 5 content type, AMQP `content_type`, Kafka `content-type` header.
    pub content_type: Option<String>,
    /// Kafka headers, MQTT 5 user properties, AMQP header table entries.
    pub headers: Vec<(String, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The first header called `name` (exact match).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Binary mode puts attributes in headers and `data` in the payload;
/// structured mode puts the whole event, as CloudEvents JSON, in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Structured,
}

/// Why a message is not a CloudEvent, or an event cannot be carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("structured-mode payload is not a CloudEvent: {0}")]
    Format(#[from] FormatError),
    #[error("message is not a CloudEvent: no `{0}` header and no CloudEvents content type")]
    NotACloudEvent(String),
    #[error(
        "message carries no CloudEvents metadata and its payload is not a CloudEvents JSON document: {0}"
    )]
    Undeclared(FormatError),
    #[error("header `{name}` is not UTF-8 text")]
    NotUtf8 { name: String },
    #[error("required attribute `{0}` is missing from the headers")]
    Missing(&'static str),
    #[error("unsupported specversion `{0}` (expected 1.0)")]
    SpecVersion(String),
    #[error("header `{0}` names an invalid CloudEvents attribute")]
    InvalidName(String),
    #[error("{0}")]
    Template(String),
    #[error(
        "batched content mode (`{0}`) carries several events; one message must carry one event"
    )]
    Batch(String),
}

/// True when `content_type` is the CloudEvents structured JSON format.
pub fn is_structured_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("application/cloudevents")
}

fn check_batch(content_type: Option<&str>) -> Result<(), BindingError> {
    if let Some(ct) = content_type {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence.starts_with("application/cloudevents-batch") {
            return Err(BindingError::Batch(essence));
        }
    }
    Ok(())
}

/// Structured mode: the payload is the event in the CloudEvents JSON format.
pub fn encode_structured(event: &Event) -> Message {
    Message {
        content_type: Some(STRUCTURED_CONTENT_TYPE.to_owned()),
        payload: crate::to_json(event),
        ..Message::default()
    }
}

/// Decodes a structured-mode payload.
pub fn decode_structured(payload: &[u8]) -> Result<Event, BindingError> {
    Ok(crate::from_json(payload)?)
}

/// The attributes binary mode carries in headers: every attribute except
/// `datacontenttype` (which travels as the message's content type), as
/// (name, canonical string value).
pub(crate) fn header_attributes(event: &Event) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(4 + event.extensions.len());
    out.push(("specversion".to_owned(), event.spec_version.clone()));
    out.push(("id".to_owned(), event.id.clone()));
    out.push(("source".to_owned(), event.source.clone()));
    out.push(("type".to_owned(), event.ty.clone()));
    for (name, value) in [
        ("subject", &event.subject),
        ("time", &event.time),
        ("dataschema", &event.data_schema),
    ] {
        if let Some(value) = value {
            out.push((name.to_owned(), value.clone()));
        }
    }
    for (name, value) in &event.extensions {
        out.push((name.clone(), value.to_canonical_string()));
    }
    out
}

/// Builds an event from binary-mode attributes (names without prefix,
/// values as text), the content type and the payload.
pub(crate) fn event_from_attributes(
    attributes: Vec<(String, String)>,
    content_type: Option<&str>,
    payload: &[u8],
) -> Result<Event, BindingError> {
    let mut event = Event::new(String::new(), String::new(), String::new());
    event.spec_version.clear();
    let (mut id, mut source, mut ty, mut spec) = (false, false, false, false);
    for (name, value) in attributes {
        match name.as_str() {
            "id" => (event.id, id) = (value, true),
            "source" => (event.source, source) = (value, true),
            "type" => (event.ty, ty) = (value, true),
            "specversion" => (event.spec_version, spec) = (value, true),
            "datacontenttype" => event.data_content_type = Some(value),
            "subject" => event.subject = Some(value),
            "time" => event.time = Some(value),
            "dataschema" => event.data_schema = Some(value),
            "data" | "data_base64" => return Err(BindingError::InvalidName(name)),
            other if crate::is_valid_attribute_name(other) => {
                event.set_extension(name, crate::AttributeValue::String(value));
            }
            _ => return Err(BindingError::InvalidName(name)),
        }
    }
    for (present, attr) in [
        (spec, "specversion"),
        (id, "id"),
        (source, "source"),
        (ty, "type"),
    ] {
        if !present {
            return Err(BindingError::Missing(attr));
        }
    }
    if !event.spec_version.starts_with("1.") {
        return Err(BindingError::SpecVersion(event.spec_version));
    }
    if let Some(ct) = content_type {
        event.data_content_type = Some(ct.to_owned());
    }
    // Binary mode cannot tell "no data" from "empty data"; an empty payload
    // without a content type is taken as no data.
    event.data = if payload.is_empty() && event.data_content_type.is_none() {
        None
    } else {
        Some(payload.to_vec())
    };
    Ok(event)
}

fn utf8(name: &str, value: &[u8]) -> Result<String, BindingError> {
    String::from_utf8(value.to_vec()).map_err(|_| BindingError::NotUtf8 {
        name: name.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{AttributeValue, Event};

    /// An event with every kind of attribute, with extensions as strings
    /// (what binary mode preserves).
    pub fn sample() -> Event {
        let mut e = Event::new("ev-1", "/kytos/topology", "kytos/topology.link_up").with_data(
            "application/json",
            br#"{"link":"7","status":"up"}"#.to_vec(),
        );
        e.subject = Some("link/7".into());
        e.time = Some("2026-11-22T10:00:00.123Z".into());
        e.data_schema = Some("https://example.org/link.json".into());
        e.extensions = vec![
            (
                "category".into(),
                AttributeValue::String("operational".into()),
            ),
            (
                "partitionkey".into(),
                AttributeValue::String("link-7".into()),
            ),
        ];
        e
    }
}
