//! The `amqp` connector plugin: CloudEvents AMQP protocol binding: binary mode (ce- headers, or cloudEvents: with header_prefix) or structured mode; exchange and routing key templates.
//!
//! Configuration: see the `fnaa-connector-binding` crate.

use fnaa_connector_binding::{BindingConnector, Kind};
use fnaa_sdk::event::binding::Binding;

/// The `amqp` binding.
pub struct AmqpBinding;

impl Kind for AmqpBinding {
    const BINDING: Binding = Binding::Amqp;
    const NAME: &'static str = "amqp";
    const DESCRIPTION: &'static str = "CloudEvents AMQP protocol binding: binary mode (ce- headers, or cloudEvents: with header_prefix) or structured mode; exchange and routing key templates";
}

fnaa_sdk::export_connector!(BindingConnector<AmqpBinding>);
