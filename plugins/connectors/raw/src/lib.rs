//! The `raw` connector plugin: Raw mode for any broker: wraps plain JSON or bytes into events (source and type from config) and unwraps events into their bare data.
//!
//! Configuration: see the `fnaa-connector-binding` crate.

use fnaa_connector_binding::{BindingConnector, Kind};
use fnaa_sdk::event::binding::Binding;

/// The `raw` binding.
pub struct RawBinding;

impl Kind for RawBinding {
    const BINDING: Binding = Binding::Raw;
    const NAME: &'static str = "raw";
    const DESCRIPTION: &'static str = "Raw mode for any broker: wraps plain JSON or bytes into events (source and type from config) and unwraps events into their bare data";
}

fnaa_sdk::export_connector!(BindingConnector<RawBinding>);
