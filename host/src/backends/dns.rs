//! Flow records in DNS (thesis annex B), published through the configured
//! Flow Name Service registry: the embedded authoritative server or RFC 2136
//! updates to BIND9.

use std::sync::Arc;

use fnaa_control::names::DnsName;
use fnaa_control::provision::{FlowDirectory, ProvisionError};
use fnaa_control::store::BrokerBinding;
use fnaa_fns::{
    BrokerKind, BrokerRecords, FlowRecords, FlowRegistry, FlowUri, NamespaceRecords,
    ServiceEndpoint,
};

/// Publishes each flow's PTR/SRV/TXT records, pointing at this host's FNAP
/// endpoint and at the flow's broker.
#[derive(Clone)]
pub struct DnsDirectory {
    registry: Arc<dyn FlowRegistry>,
    fnaa: ServiceEndpoint,
    fnaa_tls: bool,
}

impl std::fmt::Debug for DnsDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsDirectory")
            .field("fnaa", &self.fnaa)
            .field("fnaa_tls", &self.fnaa_tls)
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
        }
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
