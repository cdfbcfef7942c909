//! The `nats` connector plugin: CloudEvents NATS protocol binding: binary mode (ce- headers, percent-encoded values) or structured mode (Content-Type application/cloudevents+json); raw wrapping of non-CloudEvents messages.
//!
//! Configuration: see the `fnaa-connector-binding` crate.

use fnaa_connector_binding::{BindingConnector, Kind};
use fnaa_sdk::event::binding::Binding;

/// The `nats` binding.
pub struct NatsBinding;

impl Kind for NatsBinding {
    const BINDING: Binding = Binding::Nats;
    const NAME: &'static str = "nats";
    const DESCRIPTION: &'static str = "CloudEvents NATS protocol binding: binary mode (ce- headers, percent-encoded values) or structured mode (Content-Type application/cloudevents+json); raw wrapping of non-CloudEvents messages";
}

fnaa_sdk::export_connector!(BindingConnector<NatsBinding>);

#[cfg(test)]
mod tests {
    use fnaa_sdk::{Config, Connector as _, Event};

    use super::*;

    #[test]
    fn binary_headers_and_structured_content_type() {
        let mut binary = BindingConnector::<NatsBinding>::init(Config::from_pairs([(
            "destination",
            "fnaa.{type}",
        )]))
        .ok()
        .unwrap_or_else(|| unreachable!());
        let e = Event::new("id 1", "/s", "t").with_data("text/plain", b"hi".to_vec());
        let out = binary.encode(vec![e.clone()]);
        let Ok(m) = &out[0] else {
            unreachable!("{out:?}")
        };
        assert_eq!(m.destination.name, "fnaa.t");
        let id = m.headers.iter().find(|h| h.name == "ce-id");
        assert_eq!(id.map(|h| h.value.as_slice()), Some(&b"id%201"[..]));
        assert_eq!(m.content_type, None);
        assert_eq!(binary.decode(vec![m.clone()]), vec![Ok(e.clone())]);

        let mut structured =
            BindingConnector::<NatsBinding>::init(Config::from_pairs([("mode", "structured")]))
                .ok()
                .unwrap_or_else(|| unreachable!());
        let out = structured.encode(vec![e.clone()]);
        let Ok(m) = &out[0] else {
            unreachable!("{out:?}")
        };
        assert!(
            m.content_type
                .as_deref()
                .is_some_and(|ct| ct.starts_with("application/cloudevents+json"))
        );
        assert_eq!(structured.decode(vec![m.clone()]), vec![Ok(e)]);
    }
}
