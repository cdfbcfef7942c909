//! The zone changes that publish and withdraw a flow or an FNAA instance,
//! the same for every registry backend.

use hickory_proto::rr::rdata::PTR;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{FlowNames, FlowRecords, NamespaceNames, NamespaceRecords, RecordError, host_name};
use crate::uri::{FlowUri, Namespace};

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
