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

mod answers;
mod error;
mod options;
mod queries;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::records::{FNAA_SERVICE, FlowNames, fqdn};
use crate::uri::{FlowUri, Namespace};

pub use answers::{BrokerLocation, FlowLocation, FnaaAddress, NamespaceFnaa, ResolvedTarget};
pub use error::ResolveError;
pub use options::{DNS_PORT, NameserverAddr, ResolverOptions};

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

    /// The A and AAAA records of `host` (an SRV target such as
    /// `fnaa.unix.ar`), asked of the configured nameserver like every other
    /// query of this resolver (thesis 7.4.1: "Resolving A for fnaa.unix.ar.
    /// using server 172.17.0.2:53"). `NoRecords` when it has none.
    pub async fn resolve_addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let name = fqdn(host.strip_suffix('.').unwrap_or(host))?;
        match self.resolver.lookup_ip(name.clone()).await {
            Ok(found) => {
                let addresses: Vec<IpAddr> = found.iter().collect();
                if addresses.is_empty() {
                    Err(ResolveError::NoRecords {
                        name: display(&name),
                        record_type: RecordType::A,
                    })
                } else {
                    Ok(addresses)
                }
            }
            Err(error) => Err(self.classify(&name, RecordType::A, error)),
        }
    }

    /// Where this resolver sends its queries, for messages: the nameserver
    /// address, or "the system resolvers".
    pub fn server_description(&self) -> String {
        self.server()
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
