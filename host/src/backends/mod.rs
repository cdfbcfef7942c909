//! The real implementations of what the control plane asks of the host
//! (`fnaa_control::provision`): DNS records through the Flow Name Service,
//! broker queues and pipelines through the data plane, other
//! organisations' FNAAs through DNS and FNAP.

pub mod dataplane;
pub mod dns;
mod flows_config;
pub mod peers;
pub mod relay;
