//! The `mqtt` connector plugin: CloudEvents MQTT protocol binding: MQTT 5 binary mode (user properties) or structured mode (MQTT 3.1.1 and 5); raw wrapping.
//!
//! Configuration: see the `fnaa-connector-binding` crate.

use fnaa_connector_binding::{BindingConnector, Kind};
use fnaa_sdk::event::binding::Binding;

/// The `mqtt` binding.
pub struct MqttBinding;

impl Kind for MqttBinding {
    const BINDING: Binding = Binding::Mqtt;
    const NAME: &'static str = "mqtt";
    const DESCRIPTION: &'static str = "CloudEvents MQTT protocol binding: MQTT 5 binary mode (user properties) or structured mode (MQTT 3.1.1 and 5); raw wrapping";
}

fnaa_sdk::export_connector!(BindingConnector<MqttBinding>);
