//! What resolution returns: FNAA and broker addresses with their TTLs.

use std::net::IpAddr;
use std::time::Instant;

use crate::records::{BrokerKind, TxtAttributes};
use crate::srv::SrvTarget;
use crate::uri::{FlowUri, Namespace};

/// One SRV target, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// Host name, without the trailing dot.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// RFC 2782 priority.
    pub priority: u16,
    /// RFC 2782 weight.
    pub weight: u16,
    /// Addresses of the host (A then AAAA). Empty if they could not be
    /// resolved through the configured nameserver; connect by host name then.
    pub addresses: Vec<IpAddr>,
}

impl SrvTarget for ResolvedTarget {
    fn priority(&self) -> u16 {
        self.priority
    }
    fn weight(&self) -> u16 {
        self.weight
    }
}

/// Where an FNAA listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnaaAddress {
    /// Host of the FNAA to connect to (the first target in RFC 2782 order).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Whether to start TLS (`tls` in the TXT record).
    pub tls: bool,
    /// Addresses of `host`; may be empty (see [`ResolvedTarget::addresses`]).
    pub addresses: Vec<IpAddr>,
    /// Every target, in the order to try them; the first is `host`/`port`.
    pub targets: Vec<ResolvedTarget>,
    /// Name of the SRV and TXT records (`_flow._tcp.<flow>` or
    /// `<instance>._fnaa._tcp.<namespace>`), without the trailing dot.
    pub service_name: String,
    /// All attributes of the TXT record.
    pub attributes: TxtAttributes,
    /// Smallest TTL of the records used, in seconds.
    pub ttl: u32,
    /// When the answer stops being valid.
    pub valid_until: Instant,
}

/// Where a flow's events are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerLocation {
    /// Broker protocol (`broker-type`).
    pub kind: BrokerKind,
    /// Whether to use TLS.
    pub tls: bool,
    /// Topic or queue: `topic=` if published, else the flow FQDN.
    pub topic: String,
    /// Brokers, in the order to try them.
    pub targets: Vec<ResolvedTarget>,
    /// Name of the SRV and TXT records, without the trailing dot.
    pub service_name: String,
    /// All attributes of the TXT record.
    pub attributes: TxtAttributes,
    /// Smallest TTL of the records used, in seconds.
    pub ttl: u32,
    /// When the answer stops being valid.
    pub valid_until: Instant,
}

/// Everything DNS says about a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLocation {
    /// The flow.
    pub uri: FlowUri,
    /// The FNAA that manages it.
    pub fnaa: FnaaAddress,
    /// The broker that carries it, if published.
    pub broker: Option<BrokerLocation>,
    /// Smallest TTL of all records used, in seconds.
    pub ttl: u32,
    /// When the answer stops being valid.
    pub valid_until: Instant,
}

/// The FNAA serving a namespace, found by DNS-SD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceFnaa {
    /// The namespace.
    pub namespace: Namespace,
    /// DNS-SD instance name, or `None` when found by a plain SRV record at
    /// `_fnaa._tcp.<namespace>`.
    pub instance: Option<String>,
    /// Where it listens.
    pub fnaa: FnaaAddress,
}
