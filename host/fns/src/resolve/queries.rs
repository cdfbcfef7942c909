//! The DNS queries behind each answer: PTR, SRV and TXT lookups, SRV
//! target ordering and addresses, and the mapping of hickory's errors.

use std::str::FromStr;
use std::time::Instant;

use hickory_net::NetError;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::lookup::Lookup;

use super::{
    BrokerLocation, FnaaAddress, FnsResolver, ResolveError, ResolvedTarget, display, min_ttl,
};
use crate::records::{
    BROKER_TYPE_KEY, BrokerKind, FlowNames, TLS_KEY, TOPIC_KEY, TxtAttributes, queue_name,
};
use crate::srv::order_by_rfc2782;
use crate::uri::FlowUri;

impl FnsResolver {
    /// Service names of a flow: the PTR targets, or `_flow._tcp.<flow>`
    /// when the flow name exists without PTR.
    pub(super) async fn flow_services(&self, names: &FlowNames) -> Result<Vec<Name>, ResolveError> {
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
    pub(super) async fn service(&self, service: &Name) -> Result<FnaaAddress, ResolveError> {
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

    pub(super) async fn broker(
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

    pub(super) async fn lookup(
        &self,
        name: &Name,
        record_type: RecordType,
    ) -> Result<Lookup, ResolveError> {
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

    pub(super) fn classify(
        &self,
        name: &Name,
        record_type: RecordType,
        error: NetError,
    ) -> ResolveError {
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

    pub(super) fn server(&self) -> String {
        match self.options.nameserver {
            Some(address) => address.to_string(),
            None => "the system resolvers".to_owned(),
        }
    }
}
