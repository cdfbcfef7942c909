//! The `kafka` connector plugin: CloudEvents Kafka protocol binding: binary mode (ce_ headers) or structured mode; partitionkey as message key; raw wrapping of non-CloudEvents messages.
//!
//! Configuration: see the `fnaa-connector-binding` crate.

use fnaa_connector_binding::{BindingConnector, Kind};
use fnaa_sdk::event::binding::Binding;

/// The `kafka` binding.
pub struct KafkaBinding;

impl Kind for KafkaBinding {
    const BINDING: Binding = Binding::Kafka;
    const NAME: &'static str = "kafka";
    const DESCRIPTION: &'static str = "CloudEvents Kafka protocol binding: binary mode (ce_ headers) or structured mode; partitionkey as message key; raw wrapping of non-CloudEvents messages";
}

fnaa_sdk::export_connector!(BindingConnector<KafkaBinding>);
