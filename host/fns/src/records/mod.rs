//! The DNS records of a flow and of a namespace (docs/fns.md is the spec).
//!
//! For the flow `F` (its FQDN) and `S = _flow._tcp.F`:
//!
//! ```text
//! F                  PTR  S
//! S                  SRV  <priority> <weight> <port> <FNAA host>
//! S                  TXT  "tls"                         ; or "" without TLS
//! _queue.S           SRV  <priority> <weight> <port> <broker host>   ; one per broker
//! _queue.S           TXT  "broker-type=kafka tls"       ; "topic=<t>" when not F
//! ```
//!
//! For the namespace `N` served by the FNAA instance `I` (DNS-SD, RFC 6763):
//!
//! ```text
//! _services._dns-sd._udp.N  PTR  _fnaa._tcp.N
//! _fnaa._tcp.N              PTR  I._fnaa._tcp.N
//! I._fnaa._tcp.N            SRV  <priority> <weight> <port> <FNAA host>
//! I._fnaa._tcp.N            TXT  "tls"
//! ```

mod changes;
mod host;
mod names;
mod txt;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::rdata::{PTR, SRV};
use hickory_proto::rr::{Name, RData, Record};

use crate::uri::{FlowUri, Namespace};

pub(crate) use changes::{
    ChangeSet, Deletion, publish_flow_changes, register_namespace_changes,
    unregister_namespace_changes, withdraw_flow_changes,
};
pub use host::HostRecords;
pub(crate) use host::publish_host_changes;
use names::host_name;
pub use names::{FlowNames, NamespaceNames};
pub(crate) use names::{fqdn, queue_name};
pub use txt::TxtAttributes;
use txt::{flag, txt, txt_value};

/// Labels prepended to a flow FQDN to name its FNAA service (Annex B).
pub const FLOW_SERVICE: &str = "_flow._tcp";
/// Label prepended to a flow's service name to name its broker service.
pub const QUEUE_SERVICE: &str = "_queue";
/// DNS-SD service type of FNAA servers, under a namespace.
pub const FNAA_SERVICE: &str = "_fnaa._tcp";
/// DNS-SD service type enumeration name (RFC 6763 §9), under a namespace.
pub const SERVICE_ENUMERATION: &str = "_services._dns-sd._udp";
/// TXT flag that says a service speaks TLS.
pub const TLS_KEY: &str = "tls";
/// TXT key of the broker protocol.
pub const BROKER_TYPE_KEY: &str = "broker-type";
/// TXT key of the broker topic (queue), when it is not the flow FQDN.
pub const TOPIC_KEY: &str = "topic";
/// TTL of published records unless configured otherwise, in seconds.
pub const DEFAULT_TTL: u32 = 300;
/// DNS-SD instance name of an FNAA unless configured otherwise.
pub const DEFAULT_INSTANCE: &str = "fnaa";

/// Why records could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A host name that is not a valid DNS name.
    #[error("`{host}` is not a valid host name for an SRV target: {reason}")]
    InvalidHost {
        /// The host name.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A name that would be too long or otherwise invalid once prefixed.
    #[error("cannot build the DNS name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TXT value that cannot be written in the flow's TXT record.
    #[error(
        "invalid {key} `{value}`: TXT values of a flow cannot contain spaces, quotes or `=`, nor be empty"
    )]
    InvalidTxtValue {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// A flow published without any broker host.
    #[error("the broker of {uri} has no endpoint; give at least one host and port")]
    NoBrokerEndpoint {
        /// The flow.
        uri: String,
    },
    /// A DNS-SD instance name that is not a single, valid label.
    #[error(
        "FNAA instance name `{instance}` must be a single DNS label (letters, digits, hyphens; at most 63)"
    )]
    InvalidInstance {
        /// The instance name.
        instance: String,
    },
}

/// One SRV target: a host, its port, and its RFC 2782 priority and weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceEndpoint {
    /// Host name of the server (`fnaa.syndeno.com`).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// RFC 2782 priority: lower is tried first.
    pub priority: u16,
    /// RFC 2782 weight among targets of the same priority.
    pub weight: u16,
}

impl ServiceEndpoint {
    /// An endpoint of priority 0 and weight 0.
    pub fn new(host: impl Into<String>, port: u16) -> ServiceEndpoint {
        ServiceEndpoint {
            host: host.into(),
            port,
            priority: 0,
            weight: 0,
        }
    }

    /// The same endpoint with the given priority and weight.
    pub fn with_priority(mut self, priority: u16, weight: u16) -> ServiceEndpoint {
        self.priority = priority;
        self.weight = weight;
        self
    }

    fn srv(&self) -> Result<SRV, RecordError> {
        Ok(SRV::new(
            self.priority,
            self.weight,
            self.port,
            host_name(&self.host)?,
        ))
    }
}

/// The protocol of a flow's event broker (`broker-type` in its TXT record).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// Apache Kafka.
    Kafka,
    /// MQTT.
    Mqtt,
    /// AMQP (RabbitMQ).
    Amqp,
    /// Any other protocol, by its lower-case name.
    Other(String),
}

impl BrokerKind {
    /// The name written in `broker-type=`.
    pub fn as_str(&self) -> &str {
        match self {
            BrokerKind::Kafka => "kafka",
            BrokerKind::Mqtt => "mqtt",
            BrokerKind::Amqp => "amqp",
            BrokerKind::Other(name) => name,
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BrokerKind {
    type Err = std::convert::Infallible;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "kafka" => BrokerKind::Kafka,
            "mqtt" => BrokerKind::Mqtt,
            "amqp" => BrokerKind::Amqp,
            other => BrokerKind::Other(other.to_owned()),
        })
    }
}

/// The broker half of a flow: where its events are read and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRecords {
    /// Protocol of the broker.
    pub kind: BrokerKind,
    /// Whether clients must use TLS.
    pub tls: bool,
    /// Broker hosts (`_queue` SRV targets); at least one.
    pub endpoints: Vec<ServiceEndpoint>,
    /// Topic or queue of the flow when it is not the flow FQDN.
    pub topic: Option<String>,
}

impl BrokerRecords {
    /// A broker of `kind` reachable at `endpoint`, without TLS, whose topic is
    /// the flow FQDN.
    pub fn new(kind: BrokerKind, endpoint: ServiceEndpoint) -> BrokerRecords {
        BrokerRecords {
            kind,
            tls: false,
            endpoints: vec![endpoint],
            topic: None,
        }
    }
}

/// Everything published in DNS for one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecords {
    /// The flow.
    pub uri: FlowUri,
    /// The FNAA that manages the flow.
    pub fnaa: ServiceEndpoint,
    /// Whether the FNAA speaks TLS.
    pub fnaa_tls: bool,
    /// The broker that carries the flow, if it is known.
    pub broker: Option<BrokerRecords>,
    /// TTL of the records, in seconds.
    pub ttl: u32,
}

impl FlowRecords {
    /// The records of `uri`, managed by the FNAA at `fnaa`, without broker,
    /// TLS off, TTL [`DEFAULT_TTL`].
    pub fn new(uri: FlowUri, fnaa: ServiceEndpoint) -> FlowRecords {
        FlowRecords {
            uri,
            fnaa,
            fnaa_tls: false,
            broker: None,
            ttl: DEFAULT_TTL,
        }
    }

    /// The same records with a broker.
    pub fn with_broker(mut self, broker: BrokerRecords) -> FlowRecords {
        self.broker = Some(broker);
        self
    }

    /// The resource records, in publication order.
    pub fn to_records(&self) -> Result<Vec<Record>, RecordError> {
        let names = FlowNames::of(&self.uri)?;
        let ttl = self.ttl;
        let mut records = vec![
            Record::from_rdata(
                names.flow.clone(),
                ttl,
                RData::PTR(PTR(names.service.clone())),
            ),
            Record::from_rdata(names.service.clone(), ttl, RData::SRV(self.fnaa.srv()?)),
            Record::from_rdata(
                names.service.clone(),
                ttl,
                RData::TXT(txt(&[flag(TLS_KEY, self.fnaa_tls)])),
            ),
        ];
        if let Some(broker) = &self.broker {
            if broker.endpoints.is_empty() {
                return Err(RecordError::NoBrokerEndpoint {
                    uri: self.uri.to_string(),
                });
            }
            for endpoint in &broker.endpoints {
                records.push(Record::from_rdata(
                    names.queue.clone(),
                    ttl,
                    RData::SRV(endpoint.srv()?),
                ));
            }
            let kind = txt_value(BROKER_TYPE_KEY, broker.kind.as_str())?;
            let mut attributes = vec![Some(format!("{BROKER_TYPE_KEY}={kind}"))];
            attributes.push(flag(TLS_KEY, broker.tls));
            if let Some(topic) = &broker.topic {
                let topic = txt_value(TOPIC_KEY, topic)?;
                attributes.push(Some(format!("{TOPIC_KEY}={topic}")));
            }
            records.push(Record::from_rdata(
                names.queue.clone(),
                ttl,
                RData::TXT(txt(&attributes)),
            ));
        }
        Ok(records)
    }
}

/// The DNS-SD records that make an FNAA discoverable as the server of a
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRecords {
    /// The namespace.
    pub namespace: Namespace,
    /// DNS-SD instance name of this FNAA (one label), [`DEFAULT_INSTANCE`]
    /// by default. Several FNAA servers of one namespace use distinct names.
    pub instance: String,
    /// Where the FNAA listens.
    pub fnaa: ServiceEndpoint,
    /// Whether the FNAA speaks TLS.
    pub tls: bool,
    /// Addresses published for the FNAA host when that host is inside the
    /// zone being updated (otherwise they are left to its own zone).
    pub addresses: Vec<IpAddr>,
    /// TTL of the records, in seconds.
    pub ttl: u32,
}

impl NamespaceRecords {
    /// The records of `namespace` served by the FNAA at `fnaa`.
    pub fn new(namespace: Namespace, fnaa: ServiceEndpoint) -> NamespaceRecords {
        NamespaceRecords {
            namespace,
            instance: DEFAULT_INSTANCE.to_owned(),
            fnaa,
            tls: false,
            addresses: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }

    /// The records; address records only if the FNAA host is inside `zone`.
    pub(crate) fn to_records(&self, zone: &Name) -> Result<Vec<Record>, RecordError> {
        let names = NamespaceNames::of(&self.namespace, &self.instance)?;
        let ttl = self.ttl;
        let mut records = vec![
            Record::from_rdata(
                names.enumeration.clone(),
                ttl,
                RData::PTR(PTR(names.service_type.clone())),
            ),
            Record::from_rdata(
                names.service_type.clone(),
                ttl,
                RData::PTR(PTR(names.instance.clone())),
            ),
            Record::from_rdata(names.instance.clone(), ttl, RData::SRV(self.fnaa.srv()?)),
            Record::from_rdata(
                names.instance.clone(),
                ttl,
                RData::TXT(txt(&[flag(TLS_KEY, self.tls)])),
            ),
        ];
        let host = host_name(&self.fnaa.host)?;
        if zone.zone_of(&host) {
            for address in &self.addresses {
                records.push(Record::from_rdata(
                    host.clone(),
                    ttl,
                    host::address_data(*address),
                ));
            }
        } else if !self.addresses.is_empty() {
            tracing::warn!(
                host = %host, zone = %zone,
                "FNAA addresses not published: the host is outside the zone"
            );
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests;
