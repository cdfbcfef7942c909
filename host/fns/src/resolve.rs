//! Resolution of flow URIs and namespaces (thesis Annex B, RFC 2782, RFC 6763).
//!
//! [`FnsResolver::resolve_flow_fnaa`] answers "which FNAA manages this flow"
//! (the `flow` CLI, server-to-server subscriptions); [`FnsResolver::resolve_flow`]
//! adds the broker that carries it; [`FnsResolver::resolve_namespace_fnaa`]
//! answers "which FNAA serves this namespace" by DNS-SD browsing.
//!
//! Answers are cached by hickory-resolver for no longer than their TTL
//! (negative answers included, RFC 2308); every result carries the smallest
//! TTL of the records it was built from.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_net::NetError;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use serde::{Deserialize, Deserializer};

use crate::records::{
    BROKER_TYPE_KEY, BrokerKind, FNAA_SERVICE, FlowNames, RecordError, TLS_KEY, TOPIC_KEY,
    TxtAttributes, fqdn, queue_name,
};
use crate::srv::{SrvTarget, order_by_rfc2782};
use crate::uri::{FlowUri, Namespace};

/// Default DNS port, used when a nameserver is given without one.
pub const DNS_PORT: u16 = 53;

/// Why a flow or namespace could not be resolved. Every variant names the
/// DNS name and record type that failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name does not exist at all: for a flow FQDN, no such flow.
    #[error("{name} does not exist (NXDOMAIN for its {record_type} record)")]
    NxDomain {
        /// The name queried.
        name: String,
        /// The record type asked for.
        record_type: RecordType,
    },
    /// The name exists but has no record of that type.
    #[error("{name} has no {record_type} record")]
    NoRecords {
        /// The name queried.
        name: String,
        /// The record type asked for.
        record_type: RecordType,
    },
    /// No answer in time.
    #[error(
        "no answer to the {record_type} query for {name} from {server} (timeout {timeout_ms} ms, attempts: {attempts})"
    )]
    Timeout {
        /// The name queried.
        name: String,
        /// The record type asked for.
        record_type: RecordType,
        /// The server asked.
        server: String,
        /// Timeout of one attempt.
        timeout_ms: u128,
        /// Attempts made.
        attempts: usize,
    },
    /// The server answered with an error code (SERVFAIL, REFUSED...).
    #[error("{server} answered {} to the {record_type} query for {name}", crate::store::rcode_mnemonic(*.rcode))]
    ServerError {
        /// The name queried.
        name: String,
        /// The record type asked for.
        record_type: RecordType,
        /// The server asked.
        server: String,
        /// The response code.
        rcode: ResponseCode,
    },
    /// Any other failure of the query (network unreachable...).
    #[error("the {record_type} query for {name} to {server} failed: {source}")]
    Query {
        /// The name queried.
        name: String,
        /// The record type asked for.
        record_type: RecordType,
        /// The server asked.
        server: String,
        /// What hickory reported (boxed: it is large).
        #[source]
        source: Box<NetError>,
    },
    /// A record that exists but cannot be used.
    #[error("the {record_type} record of {name} is unusable: {reason}")]
    InvalidRecord {
        /// The owner of the record.
        name: String,
        /// Its type.
        record_type: RecordType,
        /// What is wrong.
        reason: String,
    },
    /// Every SRV target is `.`: the service is declared unavailable (RFC 2782).
    #[error("{name} declares the service unavailable (SRV target \".\")")]
    ServiceUnavailable {
        /// The SRV owner.
        name: String,
    },
    /// A name could not be built from the URI or a record.
    #[error(transparent)]
    Name(#[from] RecordError),
    /// The resolver could not be set up (unreadable resolv.conf...).
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
}

impl ResolveError {
    /// Whether the error means "there is no such flow, namespace or service"
    /// rather than "DNS could not be asked".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ResolveError::NxDomain { .. }
                | ResolveError::NoRecords { .. }
                | ResolveError::ServiceUnavailable { .. }
        )
    }

    /// The DNS name the error is about, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            ResolveError::NxDomain { name, .. }
            | ResolveError::NoRecords { name, .. }
            | ResolveError::Timeout { name, .. }
            | ResolveError::ServerError { name, .. }
            | ResolveError::Query { name, .. }
            | ResolveError::InvalidRecord { name, .. }
            | ResolveError::ServiceUnavailable { name } => Some(name),
            ResolveError::Name(_) | ResolveError::Setup(_) => None,
        }
    }
}

/// A DNS server address: `ip`, `ip:port` or `[ipv6]:port` (port 53 by
/// default), as the thesis's `--nameserver` option takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameserverAddr(pub SocketAddr);

impl FromStr for NameserverAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(NameserverAddr(address));
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Ok(NameserverAddr(SocketAddr::new(ip, DNS_PORT))),
            Err(_) => Err(format!(
                "`{text}` is not a nameserver address; write an IP address with an optional port, such as 172.17.0.2 or 127.0.0.1:5300"
            )),
        }
    }
}

impl fmt::Display for NameserverAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for NameserverAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the resolver reaches DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverOptions {
    /// The server to ask; `None` uses the system's (`/etc/resolv.conf`).
    pub nameserver: Option<NameserverAddr>,
    /// Time to wait for one answer.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Answers kept in the cache (each for at most its TTL); 0 disables it.
    pub cache_size: u64,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            nameserver: None,
            timeout: Duration::from_secs(3),
            attempts: 2,
            cache_size: 1024,
        }
    }
}

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

/// Resolves flows and namespaces through DNS. Cheap to clone; clones share
/// the cache.
#[derive(Clone)]
pub struct FnsResolver {
    resolver: TokioResolver,
    options: ResolverOptions,
}

impl fmt::Debug for FnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnsResolver")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FnsResolver {
    /// A resolver with `options`.
    pub fn new(options: ResolverOptions) -> Result<FnsResolver, ResolveError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match options.nameserver {
            Some(NameserverAddr(address)) => {
                let mut server = NameServerConfig::udp_and_tcp(address.ip());
                for connection in &mut server.connections {
                    connection.port = address.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider)
                .map_err(|error| ResolveError::Setup(error.to_string()))?,
        };
        let resolver_options: &mut ResolverOpts = builder.options_mut();
        resolver_options.timeout = options.timeout;
        resolver_options.attempts = options.attempts.max(1);
        resolver_options.cache_size = options.cache_size;
        resolver_options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = builder
            .build()
            .map_err(|error| ResolveError::Setup(error.to_string()))?;
        Ok(FnsResolver { resolver, options })
    }

    /// A resolver that asks `nameserver` only, with default options.
    pub fn with_nameserver(nameserver: SocketAddr) -> Result<FnsResolver, ResolveError> {
        FnsResolver::new(ResolverOptions {
            nameserver: Some(NameserverAddr(nameserver)),
            ..ResolverOptions::default()
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ResolverOptions {
        &self.options
    }

    /// Forgets every cached answer (after this host changed records it
    /// also reads, for instance).
    pub fn clear_cache(&self) {
        self.resolver.clear_cache();
    }

    /// The FNAA that manages `uri`: PTR on the flow FQDN, then SRV and TXT
    /// of the service it names, then the addresses of the SRV targets.
    pub async fn resolve_flow_fnaa(&self, uri: &FlowUri) -> Result<FnaaAddress, ResolveError> {
        let names = FlowNames::of(uri)?;
        let services = self.flow_services(&names).await?;
        let mut last_error = None;
        for service in services {
            match self.service(&service).await {
                Ok(found) => return Ok(found),
                // A stale PTR may name a service that is gone; try the next.
                Err(error) if error.is_not_found() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ResolveError::NoRecords {
            name: display(&names.service),
            record_type: RecordType::SRV,
        }))
    }

    /// Everything about `uri`: its FNAA (as [`Self::resolve_flow_fnaa`]) and
    /// the broker at `_queue.<service>` (SRV, TXT `broker-type=... tls`),
    /// `None` if the flow publishes no broker.
    pub async fn resolve_flow(&self, uri: &FlowUri) -> Result<FlowLocation, ResolveError> {
        let fnaa = self.resolve_flow_fnaa(uri).await?;
        let service = fqdn(&fnaa.service_name)?;
        let broker = self.broker(uri, &service).await?;
        let ttl = broker
            .as_ref()
            .map_or(fnaa.ttl, |broker| broker.ttl.min(fnaa.ttl));
        let valid_until = broker.as_ref().map_or(fnaa.valid_until, |broker| {
            broker.valid_until.min(fnaa.valid_until)
        });
        Ok(FlowLocation {
            uri: uri.clone(),
            fnaa,
            broker,
            ttl,
            valid_until,
        })
    }

    /// The FNAA serving `namespace`: browse `_fnaa._tcp.<namespace>` (PTR,
    /// RFC 6763), then SRV and TXT of the first instance that answers
    /// (instances in name order). Without PTR records, a plain SRV at
    /// `_fnaa._tcp.<namespace>` is accepted.
    pub async fn resolve_namespace_fnaa(
        &self,
        namespace: &Namespace,
    ) -> Result<NamespaceFnaa, ResolveError> {
        let browse = fqdn(&format!("{FNAA_SERVICE}.{namespace}"))?;
        let instances = match self.lookup(&browse, RecordType::PTR).await {
            Ok(lookup) => {
                let mut instances: Vec<Name> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::PTR(ptr) => Some(ptr.0.clone()),
                        _ => None,
                    })
                    .collect();
                instances.sort();
                instances
            }
            Err(error) if error.is_not_found() => Vec::new(),
            Err(error) => return Err(error),
        };
        let mut last_error = None;
        for instance in instances {
            match self.service(&instance).await {
                Ok(fnaa) => {
                    return Ok(NamespaceFnaa {
                        namespace: namespace.clone(),
                        instance: instance_label(&instance, namespace),
                        fnaa,
                    });
                }
                Err(error) if error.is_not_found() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        match self.service(&browse).await {
            Ok(fnaa) => Ok(NamespaceFnaa {
                namespace: namespace.clone(),
                instance: None,
                fnaa,
            }),
            // The instance's error says more than the fallback's.
            Err(error) => Err(last_error.unwrap_or(error)),
        }
    }

    /// Service names of a flow: the PTR targets, or `_flow._tcp.<flow>`
    /// when the flow name exists without PTR.
    async fn flow_services(&self, names: &FlowNames) -> Result<Vec<Name>, ResolveError> {
        match self.lookup(&names.flow, RecordType::PTR).await {
            Ok(lookup) => {
                let services: Vec<Name> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::PTR(ptr) => Some(ptr.0.clone()),
                        _ => None,
                    })
                    .collect();
                if services.is_empty() {
                    Ok(vec![names.service.clone()])
                } else {
                    Ok(services)
                }
            }
            Err(ResolveError::NoRecords { .. }) => Ok(vec![names.service.clone()]),
            Err(error) => Err(error),
        }
    }

    /// SRV and TXT of `service`, and the addresses of its targets.
    async fn service(&self, service: &Name) -> Result<FnaaAddress, ResolveError> {
        let (srv, txt) = tokio::join!(
            self.lookup(service, RecordType::SRV),
            self.optional_txt(service)
        );
        let srv = srv?;
        let (attributes, txt_ttl) = txt?;
        let mut ttl = min_ttl(&srv).min(txt_ttl.unwrap_or(u32::MAX));
        let mut valid_until = srv.valid_until();
        let targets = self
            .targets(service, &srv, &mut ttl, &mut valid_until)
            .await?;
        let first = targets
            .first()
            .cloned()
            .ok_or_else(|| ResolveError::NoRecords {
                name: display(service),
                record_type: RecordType::SRV,
            })?;
        Ok(FnaaAddress {
            host: first.host,
            port: first.port,
            tls: attributes.flag(TLS_KEY),
            addresses: first.addresses,
            targets,
            service_name: display(service),
            attributes,
            ttl,
            valid_until,
        })
    }

    async fn broker(
        &self,
        uri: &FlowUri,
        service: &Name,
    ) -> Result<Option<BrokerLocation>, ResolveError> {
        let queue = queue_name(service)?;
        let (srv, txt) = tokio::join!(
            self.lookup(&queue, RecordType::SRV),
            self.optional_txt(&queue)
        );
        let srv = match srv {
            Ok(srv) => srv,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error),
        };
        let (attributes, txt_ttl) = txt?;
        let kind = match attributes.get(BROKER_TYPE_KEY) {
            Some(Some(kind)) if !kind.is_empty() => {
                BrokerKind::from_str(kind).unwrap_or_else(|never| match never {})
            }
            _ => {
                return Err(ResolveError::InvalidRecord {
                    name: display(&queue),
                    record_type: RecordType::TXT,
                    reason: format!(
                        "no `{BROKER_TYPE_KEY}=<protocol>` attribute (such as broker-type=kafka)"
                    ),
                });
            }
        };
        let mut ttl = min_ttl(&srv).min(txt_ttl.unwrap_or(u32::MAX));
        let mut valid_until = srv.valid_until();
        let targets = self
            .targets(&queue, &srv, &mut ttl, &mut valid_until)
            .await?;
        let topic = match attributes.get(TOPIC_KEY) {
            Some(Some(topic)) if !topic.is_empty() => topic.to_owned(),
            _ => uri.fqdn().to_owned(),
        };
        Ok(Some(BrokerLocation {
            kind,
            tls: attributes.flag(TLS_KEY),
            topic,
            targets,
            service_name: display(&queue),
            attributes,
            ttl,
            valid_until,
        }))
    }

    /// The SRV targets of `srv` in RFC 2782 order, with their addresses.
    async fn targets(
        &self,
        owner: &Name,
        srv: &Lookup,
        ttl: &mut u32,
        valid_until: &mut Instant,
    ) -> Result<Vec<ResolvedTarget>, ResolveError> {
        let mut found = 0usize;
        let records: Vec<ResolvedTarget> = srv
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => {
                    found += 1;
                    // RFC 2782: a target of "." means "not available here".
                    (!srv.target.is_root()).then(|| ResolvedTarget {
                        host: display(&srv.target),
                        port: srv.port,
                        priority: srv.priority,
                        weight: srv.weight,
                        addresses: Vec::new(),
                    })
                }
                _ => None,
            })
            .collect();
        if found == 0 {
            return Err(ResolveError::NoRecords {
                name: display(owner),
                record_type: RecordType::SRV,
            });
        }
        if records.is_empty() {
            return Err(ResolveError::ServiceUnavailable {
                name: display(owner),
            });
        }
        let mut ordered = order_by_rfc2782(records, &mut rand::rng());
        let lookups = futures::future::join_all(
            ordered
                .iter()
                .map(|target| self.resolver.lookup_ip(format!("{}.", target.host))),
        )
        .await;
        for (target, lookup) in ordered.iter_mut().zip(lookups) {
            match lookup {
                Ok(addresses) => {
                    target.addresses = addresses.iter().collect();
                    *ttl = (*ttl).min(min_ttl(addresses.as_lookup()));
                    *valid_until = (*valid_until).min(addresses.valid_until());
                }
                Err(error) => {
                    tracing::debug!(host = %target.host, %error, "SRV target without addresses");
                }
            }
        }
        Ok(ordered)
    }

    /// TXT attributes of `name`; empty when it has no TXT record.
    async fn optional_txt(
        &self,
        name: &Name,
    ) -> Result<(TxtAttributes, Option<u32>), ResolveError> {
        match self.lookup(name, RecordType::TXT).await {
            Ok(lookup) => {
                let attributes = TxtAttributes::parse(
                    lookup
                        .answers()
                        .iter()
                        .filter_map(|record| match &record.data {
                            RData::TXT(txt) => Some(txt.txt_data.iter().map(AsRef::as_ref)),
                            _ => None,
                        })
                        .flatten(),
                );
                Ok((attributes, Some(min_ttl(&lookup))))
            }
            Err(error) if error.is_not_found() => Ok((TxtAttributes::default(), None)),
            Err(error) => Err(error),
        }
    }

    async fn lookup(&self, name: &Name, record_type: RecordType) -> Result<Lookup, ResolveError> {
        match self.resolver.lookup(name.clone(), record_type).await {
            Ok(lookup) => {
                let wanted = lookup
                    .answers()
                    .iter()
                    .any(|record| record.record_type() == record_type);
                if wanted {
                    Ok(lookup)
                } else {
                    Err(ResolveError::NoRecords {
                        name: display(name),
                        record_type,
                    })
                }
            }
            Err(error) => Err(self.classify(name, record_type, error)),
        }
    }

    fn classify(&self, name: &Name, record_type: RecordType, error: NetError) -> ResolveError {
        use hickory_net::DnsError;

        let name = display(name);
        let server = self.server();
        match error {
            NetError::Dns(DnsError::NoRecordsFound(no_records)) => match no_records.response_code {
                ResponseCode::NXDomain => ResolveError::NxDomain { name, record_type },
                ResponseCode::NoError => ResolveError::NoRecords { name, record_type },
                rcode => ResolveError::ServerError {
                    name,
                    record_type,
                    server,
                    rcode,
                },
            },
            NetError::Dns(DnsError::ResponseCode(rcode)) => ResolveError::ServerError {
                name,
                record_type,
                server,
                rcode,
            },
            NetError::Timeout => ResolveError::Timeout {
                name,
                record_type,
                server,
                timeout_ms: self.options.timeout.as_millis(),
                attempts: self.options.attempts.max(1),
            },
            source => ResolveError::Query {
                name,
                record_type,
                server,
                source: Box::new(source),
            },
        }
    }

    fn server(&self) -> String {
        match self.options.nameserver {
            Some(address) => address.to_string(),
            None => "the system resolvers".to_owned(),
        }
    }
}

/// The instance label of a DNS-SD instance name under `namespace`.
fn instance_label(instance: &Name, namespace: &Namespace) -> Option<String> {
    let text = display(instance);
    let suffix = format!(".{FNAA_SERVICE}.{namespace}");
    text.strip_suffix(&suffix).map(str::to_owned)
}

/// A name as users write it: lower case, without the trailing dot.
fn display(name: &Name) -> String {
    let text = name.to_lowercase().to_ascii();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
        _ => text,
    }
}

fn min_ttl(lookup: &Lookup) -> u32 {
    lookup
        .answers()
        .iter()
        .map(|record| record.ttl)
        .min()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_forms_of_the_cli() {
        let parse = |text: &str| text.parse::<NameserverAddr>().map(|a| a.0.to_string());
        assert_eq!(parse("172.17.0.2").as_deref(), Ok("172.17.0.2:53"));
        assert_eq!(parse("127.0.0.1:5300").as_deref(), Ok("127.0.0.1:5300"));
        assert_eq!(parse("::1").as_deref(), Ok("[::1]:53"));
        assert_eq!(parse("[::1]:5300").as_deref(), Ok("[::1]:5300"));
        assert!(parse("ns.example.com").is_err());
    }

    #[test]
    fn names_are_shown_without_the_root_dot() {
        let name = fqdn("Fnaa.Syndeno.com").expect("name");
        assert_eq!(display(&name), "fnaa.syndeno.com");
        assert_eq!(display(&Name::root()), ".");
    }
}
