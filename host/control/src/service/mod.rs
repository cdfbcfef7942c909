//! The one service layer behind both front ends (FNAP and gRPC):
//! authorization, the life of flows, subscriptions and processors, and the
//! order of provisioning steps with their compensation.
//!
//! Authorization: a user acts only in the namespaces they own; anybody
//! (also anonymous sessions) may read a public flow; the operator may do
//! everything.
//!
//! Each area (accounts, namespaces, flows, subscriptions, processors,
//! start-up recovery) adds its methods to [`Service`] from a file of its own;
//! the authorization rules live in `authz`.

mod accounts;
mod authz;
mod flows;
mod namespaces;
mod processors;
mod recovery;
mod relay;
mod remote;
mod subscriptions;

use std::sync::Arc;

use crate::names::{DnsName, NameError};
use crate::provision::{
    FlowDirectory, FlowProvisioner, PeerError, Peers, PipelineController, ProvisionError,
};
use crate::store::{Store, StoreError};

pub use authz::{AnonymousSession, CAPABILITY_TRACE, Principal};
pub use processors::{ProcessorView, processor_pipeline_id};
pub use recovery::Recovery;
pub use subscriptions::{SubscriptionView, deliver_pipeline_id, publish_pipeline_id};

/// Why an operation was refused or failed. `fnap::reply` and the gRPC
/// front end each map it in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no such {kind} {name}")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Conflict(String),
    /// Transient: the object is being created or deleted.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("authentication failed")]
    AuthenticationFailed,
    /// Transient: the broker, the DNS or the pipeline runner failed; nothing
    /// was left half-done.
    #[error("{0}")]
    Provisioning(String),
    /// Transient: a quota was reached (anonymous subscriptions per client
    /// address or per flow); ending a subscription frees room.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Another organisation's FNAA could not be used (DNS, connection, TLS,
    /// its refusal); nothing was left behind on either host.
    #[error("{0}")]
    Peer(PeerError),
    /// Transient: the state store failed.
    #[error("state store failure: {0}")]
    Store(String),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists { kind, name } => ServiceError::AlreadyExists { kind, name },
            StoreError::NotFound { kind, name } => ServiceError::NotFound { kind, name },
            StoreError::Conflict(text) => ServiceError::Conflict(text),
            StoreError::Backend(text) => ServiceError::Store(text),
        }
    }
}

fn provisioning(step: &str, error: ProvisionError) -> ServiceError {
    ServiceError::Provisioning(format!("{step} failed: {error}"))
}

/// The rest of the host, as the service sees it.
#[derive(Clone)]
pub struct Backends {
    pub provisioner: Arc<dyn FlowProvisioner>,
    pub directory: Arc<dyn FlowDirectory>,
    pub pipelines: Arc<dyn PipelineController>,
    /// Other organisations' FNAAs, for subscriptions to their flows.
    pub peers: Arc<dyn Peers>,
}

impl Backends {
    /// Backends that refuse to provision, for operator commands on a
    /// stopped host (see [`crate::provision::Offline`]).
    pub fn offline() -> Backends {
        let offline = Arc::new(crate::provision::Offline);
        Backends {
            provisioner: offline.clone(),
            directory: offline.clone(),
            pipelines: offline.clone(),
            peers: offline,
        }
    }
}

/// Rules set by the operator.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    /// Domains under which users may create namespaces themselves.
    pub namespace_domains: Vec<DnsName>,
    /// PBKDF2 iterations for new SCRAM keys.
    pub scram_iterations: u32,
    /// Most subscriptions anonymous sessions from one client address may
    /// hold at once.
    pub anonymous_subscriptions_per_address: usize,
    /// Most anonymous subscriptions one flow may have at once.
    pub anonymous_subscriptions_per_flow: usize,
    /// How other FNAAs may take the events of copies of this host's flows.
    pub subscription_modes: Vec<crate::store::TransferMode>,
}

impl Default for ServicePolicy {
    /// No self-service namespaces, no anonymous quota room, SCRAM keys of
    /// the cheapest cost (tests), both subscription modes offered.
    fn default() -> Self {
        ServicePolicy {
            namespace_domains: Vec::new(),
            scram_iterations: 0,
            anonymous_subscriptions_per_address: 0,
            anonymous_subscriptions_per_flow: 0,
            subscription_modes: crate::store::TransferMode::ALL.to_vec(),
        }
    }
}

impl ServicePolicy {
    /// The policy `[fnap]` and `[store]` set.
    pub fn from_config(config: &crate::config::ControlConfig) -> ServicePolicy {
        ServicePolicy {
            namespace_domains: config.fnap.namespace_domains.clone(),
            scram_iterations: config.store.scram_iterations,
            anonymous_subscriptions_per_address: config.fnap.anonymous_subscriptions_per_address,
            anonymous_subscriptions_per_flow: config.fnap.anonymous_subscriptions_per_flow,
            subscription_modes: config.fnap.subscription_modes.clone(),
        }
    }
}

/// The service.
pub struct Service {
    store: Arc<dyn Store>,
    backends: Backends,
    policy: ServicePolicy,
    /// Salt for the made-up SCRAM keys of unknown users.
    unknown_user_secret: [u8; 32],
    /// Bounds the argon2 checks running at once: each takes ~19 MiB and a
    /// core for tens of milliseconds, so a login storm must queue, not
    /// exhaust memory.
    password_checks: tokio::sync::Semaphore,
    /// Serialises anonymous SUBSCRIBEs, so that two at once cannot both
    /// pass the quota check.
    anonymous_subscribe: tokio::sync::Mutex<()>,
    /// Why the last check of a remote subscription at its publisher
    /// failed, by subscription (absent: it succeeded).
    peer_health: std::sync::Mutex<std::collections::BTreeMap<DnsName, String>>,
    /// Pending records of remote SUBSCRIBEs running now (others are what a
    /// killed host left).
    in_flight: std::sync::Mutex<std::collections::BTreeSet<DnsName>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(store: Arc<dyn Store>, backends: Backends, policy: ServicePolicy) -> Service {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Service {
            store,
            backends,
            policy,
            unknown_user_secret: rand::random(),
            password_checks: tokio::sync::Semaphore::new(cores * 2),
            anonymous_subscribe: tokio::sync::Mutex::new(()),
            peer_health: std::sync::Mutex::default(),
            in_flight: std::sync::Mutex::default(),
        }
    }

    /// The store, for the operator commands.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

fn not_found(kind: &'static str, name: impl std::fmt::Display) -> ServiceError {
    ServiceError::NotFound {
        kind,
        name: name.to_string(),
    }
}
