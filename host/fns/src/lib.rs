//! Flow Name Service (thesis 4.1.2, Annexes B and C): the open network's
//! registry is DNS. A flow URI such as
//! `flow://notifications.calendar.people.syndeno.com` resolves, through PTR,
//! SRV and TXT records, to the FNAA server that manages the flow and to the
//! broker that carries it.
//!
//! - [`FlowUri`] and [`Namespace`]: parsing and validating flow URIs.
//! - [`FnsResolver`]: resolving a flow to its FNAA ([`FnsResolver::resolve_flow_fnaa`])
//!   and broker ([`FnsResolver::resolve_flow`]), and a namespace to the FNAA
//!   that serves it ([`FnsResolver::resolve_namespace_fnaa`], DNS-SD).
//! - [`FlowRegistry`]: publishing a flow's records ([`FlowRecords`]) and a
//!   namespace's ([`NamespaceRecords`]), either from the embedded
//!   authoritative server ([`EmbeddedRegistry`]) or by RFC 2136 updates
//!   signed with TSIG to BIND9 ([`Rfc2136Registry`]).
//! - [`FnsConfig`]: the `[dns]` section of `fnaa.toml`.
//!
//! The record layout is specified in `docs/fns.md`.

pub mod config;
pub mod records;
pub mod resolve;
pub mod srv;
pub mod store;
pub mod uri;

pub use config::{FnsConfig, RegistryConfig};
pub use hickory_proto::op::ResponseCode;
pub use hickory_proto::rr::RecordType;
pub use records::{
    BrokerKind, BrokerRecords, FlowNames, FlowRecords, HostRecords, NamespaceNames,
    NamespaceRecords, RecordError, ServiceEndpoint, TxtAttributes,
};
pub use resolve::{
    BrokerLocation, FlowLocation, FnaaAddress, FnsResolver, NameserverAddr, NamespaceFnaa,
    ResolveError, ResolvedTarget, ResolverOptions,
};
pub use store::embedded::{EmbeddedConfig, EmbeddedRegistry, ZoneFileConfig};
pub use store::rfc2136::{
    Rfc2136Config, Rfc2136Registry, TsigAlgorithmName, TsigConfig, TsigKey, TsigSecret,
};
pub use store::{FlowRegistry, RegistryError, rcode_mnemonic};
pub use uri::{FlowUri, FlowUriError, Namespace};
