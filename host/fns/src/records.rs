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

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::uri::{FlowUri, Namespace};

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
                let data = match address {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                records.push(Record::from_rdata(host.clone(), ttl, data));
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

/// A change to a zone, applied atomically by every backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChangeSet {
    /// What to remove first.
    pub deletions: Vec<Deletion>,
    /// What to add afterwards.
    pub additions: Vec<Record>,
}

impl ChangeSet {
    /// Every name the change touches.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.deletions
            .iter()
            .map(Deletion::name)
            .chain(self.additions.iter().map(|record| &record.name))
    }
}

/// One removal from a zone.
#[derive(Debug, Clone)]
pub(crate) enum Deletion {
    /// The RRset of `record_type` at `name`.
    RrSet { name: Name, record_type: RecordType },
    /// Every RRset at `name`.
    AllAt(Name),
    /// One record, matched by name, type and data.
    Record(Record),
}

impl Deletion {
    pub fn name(&self) -> &Name {
        match self {
            Deletion::RrSet { name, .. } | Deletion::AllAt(name) => name,
            Deletion::Record(record) => &record.name,
        }
    }
}

/// The change that (re)publishes a flow: what it had is replaced.
pub(crate) fn publish_flow_changes(flow: &FlowRecords) -> Result<ChangeSet, RecordError> {
    let mut changes = withdraw_flow_changes(&flow.uri)?;
    changes.additions = flow.to_records()?;
    Ok(changes)
}

/// The change that removes a flow's records (and nothing of its sub-flows).
pub(crate) fn withdraw_flow_changes(uri: &FlowUri) -> Result<ChangeSet, RecordError> {
    let names = FlowNames::of(uri)?;
    Ok(ChangeSet {
        deletions: vec![
            Deletion::RrSet {
                name: names.flow,
                record_type: RecordType::PTR,
            },
            Deletion::AllAt(names.service),
            Deletion::AllAt(names.queue),
        ],
        additions: Vec::new(),
    })
}

/// The change that (re)registers an FNAA instance for a namespace.
pub(crate) fn register_namespace_changes(
    records: &NamespaceRecords,
    zone: &Name,
) -> Result<ChangeSet, RecordError> {
    let mut changes = unregister_namespace_changes(&records.namespace, &records.instance)?;
    let host = host_name(&records.fnaa.host)?;
    if zone.zone_of(&host) && !records.addresses.is_empty() {
        for record_type in [RecordType::A, RecordType::AAAA] {
            changes.deletions.push(Deletion::RrSet {
                name: host.clone(),
                record_type,
            });
        }
    }
    changes.additions = records.to_records(zone)?;
    Ok(changes)
}

/// The change that removes an FNAA instance from a namespace. The service
/// type enumeration PTR stays: other instances may still be registered.
pub(crate) fn unregister_namespace_changes(
    namespace: &Namespace,
    instance: &str,
) -> Result<ChangeSet, RecordError> {
    let names = NamespaceNames::of(namespace, instance)?;
    Ok(ChangeSet {
        deletions: vec![
            Deletion::Record(Record::from_rdata(
                names.service_type,
                0,
                RData::PTR(PTR(names.instance.clone())),
            )),
            Deletion::AllAt(names.instance),
        ],
        additions: Vec::new(),
    })
}

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
fn host_name(host: &str) -> Result<Name, RecordError> {
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

fn flag(key: &str, on: bool) -> Option<String> {
    on.then(|| key.to_owned())
}

fn txt_value<'a>(key: &'static str, value: &'a str) -> Result<&'a str, RecordError> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
    if valid {
        Ok(value)
    } else {
        Err(RecordError::InvalidTxtValue {
            key,
            value: value.to_owned(),
        })
    }
}

/// One TXT character-string of space-separated attributes, as in Annex B
/// (`"broker-type=kafka tls"`); a single empty string when there are none
/// (RFC 6763 §6.1).
fn txt(attributes: &[Option<String>]) -> TXT {
    let text = attributes
        .iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    TXT::new(vec![text])
}

/// Attributes read from a TXT record: `key` or `key=value` tokens, from one
/// or several character-strings. Both the Annex B form (one string,
/// space-separated) and the RFC 6763 form (one string per attribute) parse.
/// Keys are case-insensitive (RFC 6763 §6.4); the first occurrence wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxtAttributes {
    entries: Vec<(String, Option<String>)>,
}

impl TxtAttributes {
    /// Parses the character-strings of one or more TXT records.
    pub fn parse<'a>(strings: impl IntoIterator<Item = &'a [u8]>) -> TxtAttributes {
        let mut entries: Vec<(String, Option<String>)> = Vec::new();
        for string in strings {
            let text = String::from_utf8_lossy(string);
            for token in text.split_whitespace() {
                let (key, value) = match token.split_once('=') {
                    Some((key, value)) => (key, Some(value.to_owned())),
                    None => (token, None),
                };
                let key = key.to_ascii_lowercase();
                if !key.is_empty() && !entries.iter().any(|(known, _)| *known == key) {
                    entries.push((key, value));
                }
            }
        }
        TxtAttributes { entries }
    }

    /// The value of `key`: `None` if absent, `Some(None)` for a bare flag.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(known, _)| *known == key)
            .map(|(_, value)| value.as_deref())
    }

    /// Whether the boolean attribute `key` is on: present bare, or with a
    /// value other than `0`, `false`, `no` or `off`.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(None) => true,
            Some(Some(value)) => !matches!(
                value.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            ),
        }
    }

    /// The attributes, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annex_b_flow() -> FlowRecords {
        let uri =
            FlowUri::parse("flow://notifications.calendar.people.syndeno.com").expect("valid URI");
        let mut flow = FlowRecords::new(
            uri,
            ServiceEndpoint::new("fnaa.syndeno.com", 65432).with_priority(30, 30),
        )
        .with_broker(BrokerRecords {
            kind: BrokerKind::Kafka,
            tls: true,
            endpoints: vec![ServiceEndpoint::new("kafka.syndeno.com", 9092).with_priority(30, 30)],
            topic: None,
        });
        flow.fnaa_tls = true;
        flow.ttl = 875;
        flow
    }

    #[test]
    fn flow_records_follow_annex_b() {
        let records = annex_b_flow().to_records().expect("records");
        let text: Vec<String> = records.iter().map(ToString::to_string).collect();
        let expected = [
            "notifications.calendar.people.syndeno.com. 875 IN PTR _flow._tcp.notifications.calendar.people.syndeno.com.",
            "_flow._tcp.notifications.calendar.people.syndeno.com. 875 IN SRV 30 30 65432 fnaa.syndeno.com.",
            "_flow._tcp.notifications.calendar.people.syndeno.com. 875 IN TXT tls",
            "_queue._flow._tcp.notifications.calendar.people.syndeno.com. 875 IN SRV 30 30 9092 kafka.syndeno.com.",
            "_queue._flow._tcp.notifications.calendar.people.syndeno.com. 875 IN TXT broker-type=kafka tls",
        ];
        assert_eq!(text.len(), expected.len(), "{text:#?}");
        for (line, expected) in text.iter().zip(expected) {
            // hickory prints TXT strings unquoted; compare without quotes.
            assert_eq!(line.replace('"', ""), expected);
        }
    }

    #[test]
    fn invalid_inputs_are_rejected_before_anything_is_sent() {
        let mut flow = annex_b_flow();
        flow.fnaa.host = "bad host".to_owned();
        assert!(matches!(
            flow.to_records(),
            Err(RecordError::InvalidHost { .. })
        ));
        let mut flow = annex_b_flow();
        if let Some(broker) = flow.broker.as_mut() {
            broker.topic = Some("a topic".to_owned());
        }
        assert!(matches!(
            flow.to_records(),
            Err(RecordError::InvalidTxtValue { key: "topic", .. })
        ));
        let mut flow = annex_b_flow();
        if let Some(broker) = flow.broker.as_mut() {
            broker.endpoints.clear();
        }
        assert!(matches!(
            flow.to_records(),
            Err(RecordError::NoBrokerEndpoint { .. })
        ));
    }

    #[test]
    fn namespace_records_are_dns_sd() {
        let namespace = Namespace::parse("people.syndeno.com").expect("namespace");
        let mut records = NamespaceRecords::new(
            namespace,
            ServiceEndpoint::new("fnaa.people.syndeno.com", 61000),
        );
        records.addresses = vec!["192.0.2.7".parse().expect("address")];
        let zone = fqdn("people.syndeno.com").expect("zone");
        let text: Vec<String> = records
            .to_records(&zone)
            .expect("records")
            .iter()
            .map(|r| r.to_string().replace('"', ""))
            .collect();
        assert_eq!(
            text,
            [
                "_services._dns-sd._udp.people.syndeno.com. 300 IN PTR _fnaa._tcp.people.syndeno.com.",
                "_fnaa._tcp.people.syndeno.com. 300 IN PTR fnaa._fnaa._tcp.people.syndeno.com.",
                "fnaa._fnaa._tcp.people.syndeno.com. 300 IN SRV 0 0 61000 fnaa.people.syndeno.com.",
                "fnaa._fnaa._tcp.people.syndeno.com. 300 IN TXT ",
                "fnaa.people.syndeno.com. 300 IN A 192.0.2.7",
            ]
        );
        records.instance = "two labels".to_owned();
        assert!(matches!(
            records.to_records(&zone),
            Err(RecordError::InvalidInstance { .. })
        ));
    }

    #[test]
    fn txt_attributes_parse_both_forms() {
        let annex_b = TxtAttributes::parse([b"broker-type=kafka tls".as_slice()]);
        let dns_sd = TxtAttributes::parse([b"Broker-Type=kafka".as_slice(), b"tls".as_slice()]);
        for attributes in [&annex_b, &dns_sd] {
            assert_eq!(attributes.get(BROKER_TYPE_KEY), Some(Some("kafka")));
            assert!(attributes.flag(TLS_KEY));
            assert!(!attributes.flag("other"));
        }
        let off = TxtAttributes::parse([b"tls=no".as_slice()]);
        assert!(!off.flag(TLS_KEY));
        let empty = TxtAttributes::parse([b"".as_slice()]);
        assert_eq!(empty.iter().count(), 0);
    }
}
