//! Flow records in DNS (thesis annex B), published through the configured
//! Flow Name Service registry: the embedded authoritative server or RFC 2136
//! updates to BIND9.

use std::net::IpAddr;
use std::sync::Arc;

use fnaa_control::names::DnsName;
use fnaa_control::provision::{FlowDirectory, ProvisionError};
use fnaa_control::store::BrokerBinding;
use fnaa_fns::{
    BrokerKind, BrokerRecords, FlowRecords, FlowRegistry, FlowUri, HostRecords, NamespaceRecords,
    ServiceEndpoint,
};

/// Publishes each flow's PTR/SRV/TXT records, pointing at this host's FNAP
/// endpoint and at the flow's broker.
#[derive(Clone)]
pub struct DnsDirectory {
    registry: Arc<dyn FlowRegistry>,
    fnaa: ServiceEndpoint,
    fnaa_tls: bool,
    /// The addresses of `fnaa.host`, published where its name lies in a
    /// zone this host publishes into.
    fnaa_addresses: Vec<IpAddr>,
    /// TTL of every record published (`[dns] ttl`).
    ttl: u32,
}

impl std::fmt::Debug for DnsDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsDirectory")
            .field("fnaa", &self.fnaa)
            .field("fnaa_tls", &self.fnaa_tls)
            .field("fnaa_addresses", &self.fnaa_addresses)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DnsDirectory {
    /// Records will name `fnaa_host:fnaa_port` as the flows' FNAA.
    pub fn new(
        registry: Arc<dyn FlowRegistry>,
        fnaa_host: &str,
        fnaa_port: u16,
        fnaa_tls: bool,
    ) -> Self {
        DnsDirectory {
            registry,
            fnaa: ServiceEndpoint::new(fnaa_host, fnaa_port),
            fnaa_tls,
            fnaa_addresses: Vec::new(),
            ttl: fnaa_fns::records::DEFAULT_TTL,
        }
    }

    /// The same directory, publishing records with this TTL (seconds).
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same directory, publishing `addresses` as the A/AAAA records of
    /// the FNAA host name.
    pub fn with_addresses(mut self, addresses: Vec<IpAddr>) -> Self {
        self.fnaa_addresses = addresses;
        self
    }

    /// Publishes the A/AAAA records of the FNAA host name in the zone
    /// handled here that contains it (docs/fns.md section 4): the SRV
    /// records of flows and namespaces point at that name, and a client
    /// resolves it through the same DNS server. Returns the zone, `None`
    /// when no zone handled here holds the name (or no address is known).
    pub async fn publish_host(&self) -> Result<Option<String>, ProvisionError> {
        if self.fnaa_addresses.is_empty() {
            return Ok(None);
        }
        let mut records = HostRecords::new(self.fnaa.host.clone(), self.fnaa_addresses.clone());
        records.ttl = self.ttl;
        self.registry.publish_host(&records).await.map_err(|e| {
            ProvisionError(format!(
                "cannot publish the addresses of {}: {e}",
                self.fnaa.host
            ))
        })
    }

    /// The records of `flow` served by `binding`.
    pub fn records(
        &self,
        flow: &DnsName,
        binding: &BrokerBinding,
    ) -> Result<FlowRecords, ProvisionError> {
        let uri = flow_uri(flow)?;
        let mut records = FlowRecords::new(uri, self.fnaa.clone());
        records.fnaa_tls = self.fnaa_tls;
        records.ttl = self.ttl;
        let endpoints = binding
            .servers
            .iter()
            .map(|server| endpoint(server))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(first) = endpoints.first() {
            let kind: BrokerKind = binding
                .broker_type
                .parse()
                .unwrap_or(BrokerKind::Other(binding.broker_type.clone()));
            let mut broker = BrokerRecords::new(kind, first.clone());
            broker.endpoints = endpoints;
            broker.tls = binding.tls;
            broker.topic = Some(binding.topic.clone());
            records = records.with_broker(broker);
        }
        Ok(records)
    }
}

fn flow_uri(flow: &DnsName) -> Result<FlowUri, ProvisionError> {
    FlowUri::parse(flow.as_str())
        .map_err(|e| ProvisionError(format!("`{flow}` cannot be published in DNS: {e}")))
}

/// `host:port` (or `[v6]:port`) of a broker server.
fn endpoint(server: &str) -> Result<ServiceEndpoint, ProvisionError> {
    let (host, port) = server
        .rsplit_once(':')
        .and_then(|(host, port)| {
            Some((
                host.trim_start_matches('[').trim_end_matches(']'),
                port.parse::<u16>().ok()?,
            ))
        })
        .ok_or_else(|| ProvisionError(format!("broker server `{server}` is not host:port")))?;
    Ok(ServiceEndpoint::new(host, port))
}

#[async_trait::async_trait]
impl FlowDirectory for DnsDirectory {
    async fn publish(&self, flow: &DnsName, binding: &BrokerBinding) -> Result<(), ProvisionError> {
        let records = self.records(flow, binding)?;
        // This host serves the flow's namespace: make it discoverable by
        // DNS-SD too (idempotent), so clients that know only the namespace
        // find the same FNAA.
        let mut namespace =
            NamespaceRecords::new(records.uri.namespace().clone(), self.fnaa.clone());
        namespace.tls = self.fnaa_tls;
        // Published with the namespace when the FNAA host lies in its zone
        // (zones created for a namespace after start-up included).
        namespace.addresses = self.fnaa_addresses.clone();
        namespace.ttl = self.ttl;
        self.registry
            .register_namespace(&namespace)
            .await
            .map_err(|e| {
                ProvisionError(format!(
                    "cannot publish the DNS-SD records of {}: {e}",
                    records.uri.namespace()
                ))
            })?;
        self.registry
            .publish_flow(&records)
            .await
            .map_err(|e| ProvisionError(format!("cannot publish the DNS records of {flow}: {e}")))
    }

    async fn withdraw(&self, flow: &DnsName) -> Result<(), ProvisionError> {
        self.registry
            .withdraw_flow(&flow_uri(flow)?)
            .await
            .map_err(|e| ProvisionError(format!("cannot withdraw the DNS records of {flow}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_servers_must_be_host_and_port() {
        assert_eq!(
            endpoint("kf1.unix.ar:9092").map(|e| (e.host, e.port)),
            Ok(("kf1.unix.ar".to_owned(), 9092))
        );
        assert_eq!(
            endpoint("[::1]:1883").map(|e| (e.host, e.port)),
            Ok(("::1".to_owned(), 1883))
        );
        assert!(endpoint("kf1.unix.ar").is_err());
        assert!(endpoint("kf1.unix.ar:http").is_err());
    }
}
