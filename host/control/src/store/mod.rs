//! The host's state: accounts, namespaces, flows, subscriptions and
//! processor instances. [`Store`] is the interface; [`RedbStore`] keeps it
//! in an embedded redb file. A store shared by several hosts implements the
//! same trait: every write is one [`Change`] whose preconditions the store
//! checks atomically.

mod description;
mod redb_store;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::DnsName;

pub use description::{FlowDescription, Schema};
pub use redb_store::RedbStore;

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("no such {kind} {name}")]
    NotFound { kind: &'static str, name: String },
    /// A precondition of the change does not hold (e.g. the namespace of a
    /// new flow is missing, or a namespace to delete still holds flows).
    #[error("{0}")]
    Conflict(String),
    /// The database itself failed (I/O, corruption, closed).
    #[error("database error: {0}")]
    Backend(String),
}

/// An account of the host; users log in with it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    /// The argon2id hash of the password in PHC string format.
    pub password_hash: String,
    /// What SCRAM-SHA-256 needs to check a proof without the password.
    pub scram: ScramKeys,
    pub created_unix: u64,
}

// Hashes are secrets too: they allow offline guessing.
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("created_unix", &self.created_unix)
            .finish_non_exhaustive()
    }
}

/// SCRAM verifiers (RFC 5802 section 3; stored like RFC 5803): a server
/// can check a client proof with them, but they do not let anyone log in
/// as the user, unlike the salted password itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramKeys {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A flow namespace served by this host, e.g. `flows.unix.ar`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: DnsName,
    pub owner: String,
    pub created_unix: u64,
}

/// Who besides the owner may read a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the owner (and the subscriber a copy flow was made for).
    Private,
    /// Anybody, also anonymous sessions (thesis 4.1: like anonymous FTP).
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

/// Where a flow was provisioned: how its queue is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerBinding {
    /// The broker protocol: `kafka`, `mqtt`, `amqp`, ...
    pub broker_type: String,
    /// The queue on that broker (Kafka topic, MQTT topic, AMQP exchange).
    pub topic: String,
    /// Bootstrap servers, `host:port`.
    pub servers: Vec<String>,
    /// Whether the broker is reached over TLS.
    pub tls: bool,
}

/// Where a flow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    /// Recorded, queue and DNS records being created. A host that stops
    /// in this state undoes the creation when it starts again.
    Provisioning,
    Active,
    /// Queue and DNS records being removed.
    Deleting,
}

/// A flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub name: DnsName,
    pub namespace: DnsName,
    pub owner: String,
    pub visibility: Visibility,
    pub state: FlowState,
    pub binding: Option<BrokerBinding>,
    /// For a subscription's copy flow: the flow it copies.
    pub copy_of: Option<DnsName>,
    /// For a subscription's copy flow: the subscriber allowed to read it.
    pub granted_to: Option<String>,
    pub created_unix: u64,
    /// What the flow says about itself (SET FLOW ... SCHEMA, RATE, ...).
    /// Absent in stores written before it existed.
    #[serde(default, skip_serializing_if = "FlowDescription::is_empty")]
    pub description: FlowDescription,
}

/// Whether a pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Paused,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
        }
    }
}

/// A subscription: `source` is copied into the copy flow `id`, and from
/// there into `local` when the subscriber asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The copy flow, which also names the subscription.
    pub id: DnsName,
    pub source: DnsName,
    pub local: Option<DnsName>,
    /// The account that subscribed, or the identity of the anonymous
    /// session that did (`anonymous-<random>`; `anonymous` in stores
    /// written before anonymous sessions had identities of their own).
    pub subscriber: String,
    pub created_unix: u64,
    /// For an anonymous subscription: the client's address, which the
    /// per-address quota counts. Absent in older stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<std::net::IpAddr>,
    /// For a subscription to a flow of another organisation: where its copy
    /// flow lives. `source` and `id` then name flows of that FNAA, and only
    /// `local` is a flow of this host. Absent for flows of this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteSource>,
}

impl Subscription {
    /// Whether the source flow belongs to another FNAA.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }
}

/// The publisher's side of a subscription to another organisation's flow,
/// as its FNAA answered SUBSCRIBE and DESCRIBE FLOW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSource {
    /// The publisher's FNAA as DNS named it (the SRV target), which its TLS
    /// certificate must match.
    pub fnaa: String,
    /// The address it was reached at, `host:port`.
    pub address: String,
    /// Whether the FNAP session to it uses TLS.
    pub tls: bool,
    /// How to read the copy flow at the publisher's broker (direct mode).
    pub binding: BrokerBinding,
    /// What this host logs in with there to act on the subscription: an
    /// anonymous session identity only this host knows (docs/fnap.md 5.2).
    pub capability: Capability,
    /// Where the subscription is in its life.
    #[serde(default)]
    pub state: RemoteState,
    /// How the events cross: read at the publisher's broker, or relayed
    /// by its FNAA over FNAP (docs/fnap.md 5.16).
    #[serde(default)]
    pub mode: TransferMode,
}

/// How the events of a subscription to another organisation's flow reach
/// this host.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// This host reads the copy flow on the publisher's broker.
    #[default]
    Direct,
    /// The publisher's FNAA sends the copy's events over the FNAP session
    /// (RELAY): its broker need not be reachable from here.
    Relay,
}

impl TransferMode {
    /// Every mode, in the order DESCRIBE lists them.
    pub const ALL: [TransferMode; 2] = [TransferMode::Direct, TransferMode::Relay];

    /// The name DESCRIBE shows (`direct`, `relay`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Direct => "direct",
            TransferMode::Relay => "relay",
        }
    }

    /// The mode of that name.
    pub fn from_name(name: &str) -> Option<TransferMode> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl RemoteSource {
    /// The record of a SUBSCRIBE not answered yet: only the capability is
    /// known.
    pub fn pending(capability: Capability) -> RemoteSource {
        RemoteSource {
            fnaa: String::new(),
            address: String::new(),
            tls: false,
            binding: BrokerBinding {
                broker_type: String::new(),
                topic: String::new(),
                servers: Vec::new(),
                tls: false,
            },
            capability,
            state: RemoteState::Pending,
            mode: TransferMode::Direct,
        }
    }
}

/// A secret that lets its holder act as one anonymous identity at another
/// FNAA; never shown in logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Capability(pub String);

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Capability(..)")
    }
}

/// The state of a subscription to another organisation's flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RemoteState {
    /// Being made: recorded before this host asks the publisher, so that a
    /// host killed half-way ends at the next check, with the capability,
    /// whatever the publisher made. `fnaa`, `address` and `binding` are
    /// not known yet. Not listed.
    Pending,
    /// Events move.
    #[default]
    Active,
    /// The publisher ended it (UNSUBSCRIBE or deleted the copy flow); its
    /// pipeline is stopped. Only UNSUBSCRIBE is left to do.
    Revoked { since_unix: u64 },
}

impl RemoteState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RemoteState::Pending => "pending",
            RemoteState::Active => "active",
            RemoteState::Revoked { .. } => "revoked",
        }
    }
}

/// A plugin and optionally its version (latest installed when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    pub name: String,
    pub version: Option<String>,
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}@{version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A processor instance (thesis 4.1.4): a plugin reading input flows and
/// writing output flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    pub name: DnsName,
    pub owner: String,
    pub plugin: PluginRef,
    pub inputs: Vec<DnsName>,
    pub outputs: Vec<DnsName>,
    pub config: serde_json::Value,
    pub state: RunState,
    pub created_unix: u64,
    pub updated_unix: u64,
}

/// One atomic write. `Create*` fails when the record exists, `Replace*`
/// and `Delete*` when it is missing; the other preconditions are listed on
/// each variant.
#[derive(Debug, Clone)]
pub enum Change {
    CreateAccount(Account),
    ReplaceAccount(Account),
    /// Fails while the account owns namespaces.
    DeleteAccount(String),
    /// Fails unless the owner exists and no namespace is equal to, above or
    /// below the new one (so that each flow has one namespace).
    CreateNamespace(Namespace),
    /// Fails while flows or processors lie in the namespace.
    DeleteNamespace(DnsName),
    /// Fails unless the flow's namespace exists.
    CreateFlow(Flow),
    ReplaceFlow(Flow),
    /// Fails while a subscription or processor uses the flow.
    DeleteFlow(DnsName),
    /// Fails unless its source and copy flows exist (for a subscription to
    /// another FNAA's flow: unless its local flow exists).
    CreateSubscription(Subscription),
    /// Replaces the record of a subscription (the state of a remote one).
    ReplaceSubscription(Subscription),
    DeleteSubscription(DnsName),
    CreateProcessor(Processor),
    ReplaceProcessor(Processor),
    DeleteProcessor(DnsName),
}

/// The state store. Reads may be served from a snapshot; each
/// [`Change`] is applied atomically and durably before `apply` returns.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError>;
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    async fn namespace(&self, name: &DnsName) -> Result<Option<Namespace>, StoreError>;
    async fn namespaces(&self) -> Result<Vec<Namespace>, StoreError>;
    async fn flow(&self, name: &DnsName) -> Result<Option<Flow>, StoreError>;
    /// All flows, or those of one namespace.
    async fn flows(&self, namespace: Option<&DnsName>) -> Result<Vec<Flow>, StoreError>;
    async fn subscription(&self, id: &DnsName) -> Result<Option<Subscription>, StoreError>;
    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    async fn processor(&self, name: &DnsName) -> Result<Option<Processor>, StoreError>;
    async fn processors(&self) -> Result<Vec<Processor>, StoreError>;
    async fn apply(&self, change: Change) -> Result<(), StoreError>;
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
