//! Conversions between the SDK's types and the types wit-bindgen generates
//! for the contract. They move fields and copy no payload.

use crate::bindings::connector::exports::fnaa::plugin::broker_connector as wit_connector;
use crate::bindings::processor::exports::fnaa::plugin::flow_processor as wit_processor;
use crate::bindings::processor::fnaa::plugin::types as wit;
use crate::{
    AttributeValue, Destination, Emitted, Event, Header, InitError, Message, Output, PluginInfo,
    ProcessError,
};

impl From<wit::AttributeValue> for AttributeValue {
    fn from(value: wit::AttributeValue) -> Self {
        match value {
            wit::AttributeValue::Boolean(b) => AttributeValue::Boolean(b),
            wit::AttributeValue::Integer(i) => AttributeValue::Integer(i),
            wit::AttributeValue::String(s) => AttributeValue::String(s),
            wit::AttributeValue::Binary(b) => AttributeValue::Binary(b),
            wit::AttributeValue::Uri(s) => AttributeValue::Uri(s),
            wit::AttributeValue::UriReference(s) => AttributeValue::UriReference(s),
            wit::AttributeValue::Timestamp(s) => AttributeValue::Timestamp(s),
        }
    }
}

impl From<AttributeValue> for wit::AttributeValue {
    fn from(value: AttributeValue) -> Self {
        match value {
            AttributeValue::Boolean(b) => wit::AttributeValue::Boolean(b),
            AttributeValue::Integer(i) => wit::AttributeValue::Integer(i),
            AttributeValue::String(s) => wit::AttributeValue::String(s),
            AttributeValue::Binary(b) => wit::AttributeValue::Binary(b),
            AttributeValue::Uri(s) => wit::AttributeValue::Uri(s),
            AttributeValue::UriReference(s) => wit::AttributeValue::UriReference(s),
            AttributeValue::Timestamp(s) => wit::AttributeValue::Timestamp(s),
        }
    }
}

/// Converts extensions in place when the two attribute types share a layout
/// (they do: same variants, same payloads), so no new vector is allocated.
fn convert_extensions<A, B: From<A>>(extensions: Vec<(String, A)>) -> Vec<(String, B)> {
    extensions
        .into_iter()
        .map(|(name, value)| (name, B::from(value)))
        .collect()
}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Self {
        Event {
            id: e.id,
            source: e.source,
            spec_version: e.spec_version,
            ty: e.type_,
            subject: e.subject,
            time: e.time,
            data_content_type: e.data_content_type,
            data_schema: e.data_schema,
            extensions: convert_extensions(e.extensions),
            data: e.data,
        }
    }
}

impl From<Event> for wit::Event {
    fn from(e: Event) -> Self {
        wit::Event {
            id: e.id,
            source: e.source,
            spec_version: e.spec_version,
            type_: e.ty,
            subject: e.subject,
            time: e.time,
            data_content_type: e.data_content_type,
            data_schema: e.data_schema,
            extensions: convert_extensions(e.extensions),
            data: e.data,
        }
    }
}

impl From<PluginInfo> for wit::PluginInfo {
    fn from(info: PluginInfo) -> Self {
        wit::PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            stateless: info.stateless,
        }
    }
}

impl From<InitError> for wit::InitError {
    fn from(error: InitError) -> Self {
        match error {
            InitError::UnknownKey(key) => wit::InitError::UnknownKey(key),
            InitError::MissingKey(key) => wit::InitError::MissingKey(key),
            InitError::InvalidValue { key, reason } => {
                wit::InitError::InvalidValue(wit::InvalidValue { key, reason })
            }
            InitError::Other(reason) => wit::InitError::Other(reason),
        }
    }
}

impl From<ProcessError> for wit_processor::ProcessError {
    fn from(error: ProcessError) -> Self {
        match error {
            ProcessError::InvalidEvent { index, reason } => {
                wit_processor::ProcessError::InvalidEvent(wit_processor::InvalidEvent {
                    index,
                    reason,
                })
            }
            ProcessError::Failed(reason) => wit_processor::ProcessError::Failed(reason),
        }
    }
}

impl From<Emitted> for wit_processor::Emitted {
    fn from(emitted: Emitted) -> Self {
        wit_processor::Emitted {
            port: emitted.port,
            output: match emitted.output {
                Output::Forward(index) => wit_processor::Output::Forward(index),
                Output::Emit(event) => wit_processor::Output::Emit(event.into()),
            },
        }
    }
}

impl From<wit_connector::Message> for Message {
    fn from(m: wit_connector::Message) -> Self {
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
                .map(|h| Header {
                    name: h.name,
                    value: h.value,
                })
                .collect(),
            payload: m.payload,
        }
    }
}

impl From<Message> for wit_connector::Message {
    fn from(m: Message) -> Self {
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
                .map(|h| wit_connector::Header {
                    name: h.name,
                    value: h.value,
                })
                .collect(),
            payload: m.payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trip_keeps_every_field() {
        let mut event = Event::new("1", "/kytos", "kytos/topology.link_up")
            .with_data("application/json", b"{}".to_vec());
        event.subject = Some("link-7".into());
        event.time = Some("2024-01-01T00:00:00Z".into());
        event.data_schema = Some("https://example.invalid/schema".into());
        event.extensions = vec![
            ("b".into(), AttributeValue::Boolean(true)),
            ("i".into(), AttributeValue::Integer(-3)),
            ("s".into(), AttributeValue::String("x".into())),
            ("bin".into(), AttributeValue::Binary(vec![0, 255])),
            ("u".into(), AttributeValue::Uri("https://a.invalid".into())),
            ("r".into(), AttributeValue::UriReference("/r".into())),
            (
                "t".into(),
                AttributeValue::Timestamp("2024-01-01T00:00:00.5+01:00".into()),
            ),
        ];
        let wit_event = wit::Event::from(event.clone());
        assert_eq!(wit_event.type_, "kytos/topology.link_up");
        assert_eq!(Event::from(wit_event), event);
    }

    #[test]
    fn message_round_trip_keeps_every_field() {
        let message = Message {
            destination: Destination {
                name: "ex".into(),
                routing_key: Some("rk".into()),
            },
            key: Some(vec![1]),
            content_type: Some("application/cloudevents+json".into()),
            headers: vec![Header {
                name: "ce_id".into(),
                value: b"1".to_vec(),
            }],
            payload: b"{}".to_vec(),
        };
        assert_eq!(
            Message::from(wit_connector::Message::from(message.clone())),
            message
        );
    }
}
