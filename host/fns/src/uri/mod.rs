//! Flow URIs (thesis Annex C): `flow://<flow name>.<namespace>.<domain>`.
//!
//! A flow URI names a flow the way an e-mail address names a mailbox. Its
//! authority is the *flow FQDN*; the *namespace FQDN* is the DNS zone
//! (usually delegated to the FNAA) that holds the flow, and the *flow name*
//! is whatever precedes it, dots included:
//!
//! ```
//! use fnaa_fns::FlowUri;
//!
//! let uri = FlowUri::parse("flow://notifications.calendar.people.syndeno.com")?;
//! assert_eq!(uri.flow_name(), "notifications.calendar");
//! assert_eq!(uri.namespace().as_str(), "people.syndeno.com");
//! assert_eq!(uri.fqdn(), "notifications.calendar.people.syndeno.com");
//! assert_eq!(uri.to_string(), "flow://notifications.calendar.people.syndeno.com");
//! # Ok::<(), fnaa_fns::FlowUriError>(())
//! ```
//!
//! The URI alone cannot say where the namespace begins; Annex C fixes it to
//! the last three labels (`myNameSpace.domain.tld`), which [`FlowUri::parse`]
//! follows. When the namespace is known (the FNAA knows the namespaces it
//! hosts), [`FlowUri::parse_in`] and [`FlowUri::new`] split at it instead, so
//! namespaces under `co.uk`-like domains work too.

mod error;
mod syntax;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use error::FlowUriError;
use syntax::{authority, check_length, split_labels};

/// The URI scheme of flows.
pub const FLOW_SCHEME: &str = "flow";

/// Longest DNS name in presentation form without the trailing dot: 255
/// octets on the wire (RFC 1035 3.1) hold 253 characters of labels and dots.
pub const MAX_DNS_NAME_LEN: usize = 253;

/// Longest flow FQDN, in octets (without the trailing dot): the longest name
/// published for a flow, `_queue._flow._tcp.<flow fqdn>`, adds 18 octets and
/// must still be a DNS name. 235.
pub const MAX_FLOW_FQDN_LEN: usize = MAX_DNS_NAME_LEN - "_queue._flow._tcp.".len();

/// Longest namespace FQDN, in octets: the longest fixed name published for a
/// namespace, `_services._dns-sd._udp.<namespace>` (DNS-SD service type
/// enumeration), adds 23 octets. 230.
pub const MAX_NAMESPACE_LEN: usize = MAX_DNS_NAME_LEN - "_services._dns-sd._udp.".len();

/// Longest DNS label, in octets (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Labels of the namespace FQDN when the URI does not say (Annex C:
/// `myNameSpace.domain.tld`).
pub const ANNEX_C_NAMESPACE_LABELS: usize = 3;

/// A flow namespace: the FQDN of the DNS zone that holds flows, such as
/// `people.syndeno.com`. Lower case, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    fqdn: String,
}

impl Namespace {
    /// Parses a namespace FQDN (`people.syndeno.com`, a trailing dot allowed).
    pub fn parse(input: &str) -> Result<Namespace, FlowUriError> {
        let labels = split_labels(input, input)?;
        if labels.len() < 2 {
            return Err(FlowUriError::NamespaceTooShort {
                input: input.to_owned(),
            });
        }
        let fqdn = labels.join(".");
        check_length(input, &fqdn, MAX_NAMESPACE_LEN)?;
        Ok(Namespace { fqdn })
    }

    /// The namespace FQDN, lower case, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.fqdn
    }

    /// Whether `uri` is a flow of this namespace.
    pub fn contains(&self, uri: &FlowUri) -> bool {
        uri.namespace == *self
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fqdn)
    }
}

impl FromStr for Namespace {
    type Err = FlowUriError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Namespace::parse(input)
    }
}

impl Serialize for Namespace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.fqdn)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Namespace::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A flow URI: `flow://<flow name>.<namespace>`.
///
/// Stored normalised (lower case, no trailing dot), so two URIs that name the
/// same flow compare equal. Parsing accepts the `flow://` form and the bare
/// FQDN that the `flow` CLI takes (`notifications.calendar.people.syndeno.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowUri {
    flow_name: String,
    namespace: Namespace,
    fqdn: String,
}

impl FlowUri {
    /// Parses a flow URI or bare flow FQDN, taking the last three labels as
    /// the namespace (Annex C).
    pub fn parse(input: &str) -> Result<FlowUri, FlowUriError> {
        let authority = authority(input)?;
        let labels = split_labels(input, authority)?;
        let required = ANNEX_C_NAMESPACE_LABELS + 1;
        if labels.len() < required {
            return Err(FlowUriError::TooFewLabels {
                input: input.to_owned(),
                found: labels.len(),
                required,
                namespace_labels: ANNEX_C_NAMESPACE_LABELS,
            });
        }
        let split = labels.len() - ANNEX_C_NAMESPACE_LABELS;
        let namespace = Namespace {
            fqdn: labels[split..].join("."),
        };
        FlowUri::from_parts(input, labels[..split].join("."), namespace)
    }

    /// Parses a flow URI or bare flow FQDN of a known namespace: the flow
    /// name is everything before `namespace`.
    pub fn parse_in(input: &str, namespace: &Namespace) -> Result<FlowUri, FlowUriError> {
        let authority = authority(input)?;
        let fqdn = split_labels(input, authority)?.join(".");
        let flow_name = fqdn
            .strip_suffix(namespace.as_str())
            .and_then(|prefix| prefix.strip_suffix('.'))
            .filter(|name| !name.is_empty())
            .ok_or_else(|| FlowUriError::NotInNamespace {
                input: input.to_owned(),
                namespace: namespace.to_string(),
            })?;
        FlowUri::from_parts(input, flow_name.to_owned(), namespace.clone())
    }

    /// The URI of flow `flow_name` (one or more labels, such as
    /// `notifications.calendar`) in `namespace`.
    pub fn new(flow_name: &str, namespace: &Namespace) -> Result<FlowUri, FlowUriError> {
        let flow_name = split_labels(flow_name, flow_name)?.join(".");
        FlowUri::from_parts(&flow_name, flow_name.clone(), namespace.clone())
    }

    fn from_parts(
        input: &str,
        flow_name: String,
        namespace: Namespace,
    ) -> Result<FlowUri, FlowUriError> {
        let fqdn = format!("{flow_name}.{namespace}");
        check_length(input, &fqdn, MAX_FLOW_FQDN_LEN)?;
        Ok(FlowUri {
            flow_name,
            namespace,
            fqdn,
        })
    }

    /// The flow name: the labels before the namespace (`notifications.calendar`).
    pub fn flow_name(&self) -> &str {
        &self.flow_name
    }

    /// The namespace of the flow (`people.syndeno.com`).
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The flow FQDN, without the trailing dot
    /// (`notifications.calendar.people.syndeno.com`).
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }
}

impl fmt::Display for FlowUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{FLOW_SCHEME}://{}", self.fqdn)
    }
}

impl FromStr for FlowUri {
    type Err = FlowUriError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        FlowUri::parse(input)
    }
}

impl Serialize for FlowUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FlowUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FlowUri::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
