//! The address records of an FNAA's own host name (`fnaa.unix.ar A
//! 127.0.0.1`): what makes the SRV targets of its flows and namespaces
//! resolvable through the same DNS server (docs/fns.md section 4).

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{ChangeSet, DEFAULT_TTL, Deletion, RecordError, host_name};

/// The A and AAAA records of one host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecords {
    /// The host name (`fnaa.unix.ar`).
    pub host: String,
    /// Its addresses; IPv4 ones become A records, IPv6 ones AAAA.
    pub addresses: Vec<IpAddr>,
    /// TTL of the records, in seconds.
    pub ttl: u32,
}

impl HostRecords {
    /// The records of `host` at `addresses`, TTL [`DEFAULT_TTL`].
    pub fn new(host: impl Into<String>, addresses: Vec<IpAddr>) -> HostRecords {
        HostRecords {
            host: host.into(),
            addresses,
            ttl: DEFAULT_TTL,
        }
    }

    /// The host name, fully qualified.
    pub fn name(&self) -> Result<Name, RecordError> {
        host_name(&self.host)
    }

    /// The resource records.
    pub fn to_records(&self) -> Result<Vec<Record>, RecordError> {
        let name = self.name()?;
        Ok(self
            .addresses
            .iter()
            .map(|address| Record::from_rdata(name.clone(), self.ttl, address_data(*address)))
            .collect())
    }
}

/// The RDATA of an address record.
pub(crate) fn address_data(address: IpAddr) -> RData {
    match address {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// The change that (re)publishes a host's addresses: its A and AAAA RRsets
/// are replaced.
pub(crate) fn publish_host_changes(host: &HostRecords) -> Result<ChangeSet, RecordError> {
    let name = host.name()?;
    Ok(ChangeSet {
        deletions: [RecordType::A, RecordType::AAAA]
            .into_iter()
            .map(|record_type| Deletion::RrSet {
                name: name.clone(),
                record_type,
            })
            .collect(),
        additions: host.to_records()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_a_and_aaaa_replacing_the_old_ones() {
        let host = HostRecords::new(
            "Fnaa.Unix.AR.",
            vec![
                "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
                "::1".parse().unwrap_or_else(|e| panic!("{e}")),
            ],
        );
        let changes = publish_host_changes(&host).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changes.deletions.len(), 2);
        let types: Vec<RecordType> = changes.additions.iter().map(Record::record_type).collect();
        assert_eq!(types, [RecordType::A, RecordType::AAAA]);
        assert!(
            changes
                .additions
                .iter()
                .all(|record| record.name.to_ascii().eq_ignore_ascii_case("fnaa.unix.ar."))
        );
        assert!(
            HostRecords::new("bad_host", Vec::new())
                .to_records()
                .is_err()
        );
    }
}
