//! Host bindings of the WIT contract, generated in this one place.

/// The `processor` world; it also defines the shared interfaces (`types`,
/// `log`, `state`, `clock`) that the connector bindings reuse.
pub mod processor {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "processor",
        imports: { default: trappable },
        trappable_error_type: {
            "fnaa:plugin/state.state-error" => crate::host::SetFailure,
        },
    });
}

/// The `connector` world, reusing the shared interfaces generated above.
pub mod connector {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "connector",
        imports: { default: trappable },
        with: {
            "fnaa:plugin/types": super::processor::fnaa::plugin::types,
            "fnaa:plugin/log": super::processor::fnaa::plugin::log,
            "fnaa:plugin/clock": super::processor::fnaa::plugin::clock,
        },
    });
}

pub use processor::fnaa::plugin::types as wit;

use fnaa_event::{AttributeValue, Event};

/// Converts the shared event model into the generated WIT record (moves
/// every field; copies nothing).
pub fn to_wit(event: Event) -> wit::Event {
    wit::Event {
        id: event.id,
        source: event.source,
        spec_version: event.spec_version,
        type_: event.ty,
        subject: event.subject,
        time: event.time,
        data_content_type: event.data_content_type,
        data_schema: event.data_schema,
        extensions: event
            .extensions
            .into_iter()
            .map(|(n, v)| (n, attribute_to_wit(v)))
            .collect(),
        data: event.data,
    }
}

/// Converts a generated WIT event back into the shared model.
pub fn from_wit(event: wit::Event) -> Event {
    Event {
        id: event.id,
        source: event.source,
        spec_version: event.spec_version,
        ty: event.type_,
        subject: event.subject,
        time: event.time,
        data_content_type: event.data_content_type,
        data_schema: event.data_schema,
        extensions: event
            .extensions
            .into_iter()
            .map(|(n, v)| (n, attribute_from_wit(v)))
            .collect(),
        data: event.data,
    }
}

fn attribute_to_wit(value: AttributeValue) -> wit::AttributeValue {
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

fn attribute_from_wit(value: wit::AttributeValue) -> AttributeValue {
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
