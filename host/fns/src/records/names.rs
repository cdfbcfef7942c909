//! The DNS names records are published at, built and checked from flow
//! URIs, namespaces and host names.

use hickory_proto::rr::Name;

use super::{FLOW_SERVICE, FNAA_SERVICE, QUEUE_SERVICE, RecordError, SERVICE_ENUMERATION};
use crate::uri::{FlowUri, Namespace};

/// The DNS names of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowNames {
    /// The flow FQDN, owner of the PTR record.
    pub flow: Name,
    /// `_flow._tcp.<flow>`: the FNAA service (SRV, TXT).
    pub service: Name,
    /// `_queue._flow._tcp.<flow>`: the broker service (SRV, TXT).
    pub queue: Name,
}

impl FlowNames {
    /// The names of `uri`.
    pub fn of(uri: &FlowUri) -> Result<FlowNames, RecordError> {
        let flow = fqdn(uri.fqdn())?;
        let service = fqdn(&format!("{FLOW_SERVICE}.{}", uri.fqdn()))?;
        Ok(FlowNames {
            queue: queue_name(&service)?,
            flow,
            service,
        })
    }
}

/// `_queue.<service>` for a service name found in a PTR record.
pub(crate) fn queue_name(service: &Name) -> Result<Name, RecordError> {
    service
        .prepend_label(QUEUE_SERVICE)
        .map_err(|error| RecordError::InvalidName {
            name: format!("{QUEUE_SERVICE}.{service}"),
            reason: error.to_string(),
        })
}

/// The DNS-SD names of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceNames {
    /// `_services._dns-sd._udp.<namespace>`.
    pub enumeration: Name,
    /// `_fnaa._tcp.<namespace>`: browse (PTR) name.
    pub service_type: Name,
    /// `<instance>._fnaa._tcp.<namespace>`: SRV and TXT of one FNAA.
    pub instance: Name,
}

impl NamespaceNames {
    /// The names of `namespace` for the FNAA instance `instance`.
    pub fn of(namespace: &Namespace, instance: &str) -> Result<NamespaceNames, RecordError> {
        let valid_instance = !instance.is_empty()
            && instance.len() <= crate::uri::MAX_LABEL_LEN
            && instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_instance {
            return Err(RecordError::InvalidInstance {
                instance: instance.to_owned(),
            });
        }
        Ok(NamespaceNames {
            enumeration: fqdn(&format!("{SERVICE_ENUMERATION}.{namespace}"))?,
            service_type: fqdn(&format!("{FNAA_SERVICE}.{namespace}"))?,
            instance: fqdn(&format!("{instance}.{FNAA_SERVICE}.{namespace}"))?,
        })
    }
}

/// A fully qualified DNS name from text without the trailing dot.
pub(crate) fn fqdn(text: &str) -> Result<Name, RecordError> {
    let mut name = Name::from_ascii(text).map_err(|error| RecordError::InvalidName {
        name: text.to_owned(),
        reason: error.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// An SRV target: a host name, fully qualified.
pub(super) fn host_name(host: &str) -> Result<Name, RecordError> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let valid = !trimmed.is_empty()
        && trimmed.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= crate::uri::MAX_LABEL_LEN
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(RecordError::InvalidHost {
            host: host.to_owned(),
            reason: "use letters, digits, hyphens and dots".to_owned(),
        });
    }
    fqdn(trimmed).map_err(|error| RecordError::InvalidHost {
        host: host.to_owned(),
        reason: error.to_string(),
    })
}
