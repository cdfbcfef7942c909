//! Why a resolution failed, naming the DNS name and record type.

use hickory_net::NetError;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::records::RecordError;

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
