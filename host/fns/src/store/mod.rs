//! Publishing flows and namespaces in DNS, behind [`FlowRegistry`].
//!
//! Two backends, chosen by `[dns.registry] type = ...` in `fnaa.toml`:
//! - [`embedded`]: an authoritative DNS server inside the host
//!   (hickory-server) serving the namespace zones from memory — the default;
//! - [`rfc2136`]: dynamic updates (RFC 2136) signed with TSIG to an external
//!   primary such as BIND9, which may sign the zone with DNSSEC.
//!
//! Every operation is atomic: a flow is either fully published or left as it
//! was.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use crate::records::{FlowRecords, HostRecords, NamespaceRecords, RecordError};
use crate::uri::{FlowUri, Namespace};

pub mod embedded;
pub mod rfc2136;

/// Where the records of flows and namespaces are published.
///
/// Publishing replaces what a flow (or an FNAA instance of a namespace) had,
/// so calling it again after a change is the way to update; withdrawing
/// something absent succeeds.
#[async_trait]
pub trait FlowRegistry: Send + Sync + fmt::Debug {
    /// Publishes (or republishes) every record of a flow, atomically.
    async fn publish_flow(&self, flow: &FlowRecords) -> Result<(), RegistryError>;

    /// Removes every record of a flow, atomically. Records of its sub-flows
    /// (such as per-subscriber copies `<id>.<flow>`) stay.
    async fn withdraw_flow(&self, uri: &FlowUri) -> Result<(), RegistryError>;

    /// Publishes the DNS-SD records that make this FNAA discoverable as the
    /// server of a namespace (and, on the embedded server, starts serving
    /// the namespace's zone if no zone holds it yet).
    async fn register_namespace(&self, namespace: &NamespaceRecords) -> Result<(), RegistryError>;

    /// Publishes (or replaces) the A/AAAA records of a host name of this
    /// FNAA in the zone handled here that contains it, closest first.
    /// Returns that zone's apex, or `None` when no zone handled here
    /// contains the name: then nothing is published (its addresses belong
    /// to whoever runs its zone) and no zone is created for it.
    async fn publish_host(&self, host: &HostRecords) -> Result<Option<String>, RegistryError>;

    /// Removes the DNS-SD records of FNAA instance `instance` of a namespace.
    async fn unregister_namespace(
        &self,
        namespace: &Namespace,
        instance: &str,
    ) -> Result<(), RegistryError>;
}

/// Why records could not be published or withdrawn.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The records themselves are invalid; nothing was sent.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// No zone handled by this registry contains the name.
    #[error(
        "no zone handled here contains {name} (zones: {zones}); add the namespace's zone to [dns.registry] zones"
    )]
    NoZone {
        /// The name.
        name: String,
        /// The zones handled, comma separated.
        zones: String,
    },
    /// A zone name in the configuration is invalid.
    #[error("invalid zone `{zone}` in [dns.registry]: {reason}")]
    InvalidZone {
        /// The zone as written.
        zone: String,
        /// What is wrong.
        reason: String,
    },
    /// The DNS server refused the update. Nothing was changed (an update
    /// message is applied entirely or not at all).
    #[error("{server} refused the update of zone {zone}: {rcode}{tsig}: {hint}",
        rcode = rcode_mnemonic(*.rcode),
        tsig = tsig_error.as_deref().map(|e| format!(" (TSIG error {e})")).unwrap_or_default())]
    UpdateRefused {
        /// The server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// Its response code.
        rcode: ResponseCode,
        /// The TSIG error of the response (BADSIG, BADKEY, BADTIME), if any.
        tsig_error: Option<String>,
        /// The usual cause of this code.
        hint: &'static str,
    },
    /// The server did not answer in time; the update may or may not have
    /// been applied, and publishing again is safe.
    #[error("no answer from {server} to the update of zone {zone} within {timeout_ms} ms")]
    Timeout {
        /// The server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// The timeout.
        timeout_ms: u128,
    },
    /// The server could not be reached or the exchange broke.
    #[error("cannot send the update of zone {zone} to {server}: {reason}")]
    Transport {
        /// The server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// What happened.
        reason: String,
    },
    /// The server's answer is malformed or fails TSIG verification.
    #[error("the answer of {server} to the update of zone {zone} cannot be trusted: {reason}")]
    BadResponse {
        /// The server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// What is wrong.
        reason: String,
    },
    /// The TSIG key configuration is unusable.
    #[error("TSIG key: {0}")]
    Key(String),
    /// The embedded server could not listen.
    #[error("the embedded DNS server cannot listen on {address} (UDP and TCP): {reason}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// What the system said.
        reason: String,
    },
    /// A zone file of the embedded server could not be loaded.
    #[error("cannot load zone file {}: {reason}", path.display())]
    ZoneFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The zone that holds `name`: the closest of `zones`, or — when no zones
/// are configured — `fallback` (the namespace, which the thesis delegates).
pub(crate) fn zone_for(
    name: &Name,
    zones: &[Name],
    fallback: &Name,
) -> Result<Name, RegistryError> {
    if zones.is_empty() {
        return Ok(fallback.clone());
    }
    zones
        .iter()
        .filter(|zone| zone.zone_of(name))
        .max_by_key(|zone| zone.num_labels())
        .cloned()
        .ok_or_else(|| RegistryError::NoZone {
            name: name.to_string(),
            zones: zones
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Parses configured zone names.
pub(crate) fn parse_zones(zones: &[String]) -> Result<Vec<Name>, RegistryError> {
    zones
        .iter()
        .map(|zone| {
            let trimmed = zone.strip_suffix('.').unwrap_or(zone);
            crate::records::fqdn(trimmed).map_err(|error| RegistryError::InvalidZone {
                zone: zone.clone(),
                reason: error.to_string(),
            })
        })
        .collect()
}

/// The mnemonic of a response code as DNS tools print it (`REFUSED`).
pub fn rcode_mnemonic(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        ResponseCode::BADSIG => "BADSIG",
        ResponseCode::BADKEY => "BADKEY",
        ResponseCode::BADTIME => "BADTIME",
        ResponseCode::BADMODE => "BADMODE",
        ResponseCode::BADNAME => "BADNAME",
        ResponseCode::BADALG => "BADALG",
        ResponseCode::BADTRUNC => "BADTRUNC",
        ResponseCode::BADCOOKIE => "BADCOOKIE",
        ResponseCode::Unknown(_) => "unknown response code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_zone_wins() {
        let zones =
            parse_zones(&["syndeno.com".into(), "people.syndeno.com.".into()]).expect("zones");
        let name = crate::records::fqdn("a.people.syndeno.com").expect("name");
        let fallback = Name::root();
        let zone = zone_for(&name, &zones, &fallback).expect("zone");
        assert_eq!(zone.to_string(), "people.syndeno.com.");
        let outside = crate::records::fqdn("a.example.org").expect("name");
        let error = zone_for(&outside, &zones, &fallback)
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("a.example.org")),
            "{error:?}"
        );
        assert_eq!(zone_for(&outside, &[], &fallback).ok(), Some(Name::root()));
    }
}
