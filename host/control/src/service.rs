//! The one service layer behind both front ends (FNAP and gRPC):
//! authorization, the life of flows, subscriptions and processors, and the
//! order of provisioning steps with their compensation.
//!
//! Authorization: a user acts only in the namespaces they own; anybody
//! (also anonymous sessions) may read a public flow; the operator may do
//! everything.

use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};

use crate::fnap::cmd::create::ProcessorSpec;
use crate::names::{DnsName, NameError, check_user_name};
use crate::provision::{
    FlowDirectory, FlowEndpoint, FlowProvisioner, PipelineController, PipelineKind, PipelineSpec,
    PipelineStatus, ProvisionError,
};
use crate::sasl::credentials;
use crate::store::{
    Account, BrokerBinding, Change, Flow, FlowState, Namespace, PluginRef, Processor, RunState,
    ScramKeys, Store, StoreError, Subscription, Visibility, now_unix,
};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An authenticated account.
    User(String),
    /// A session authenticated with ANONYMOUS: reads public flows only.
    Anonymous,
    /// The host's operator (gRPC admin token, `fnaa` CLI).
    Operator,
}

impl Principal {
    /// The name recorded as subscriber or owner.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(name) => name,
            Principal::Anonymous => "anonymous",
            Principal::Operator => "operator",
        }
    }
}

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
}

impl Backends {
    /// Backends that refuse to provision, for operator commands on a
    /// stopped host (see [`crate::provision::Offline`]).
    pub fn offline() -> Backends {
        let offline = Arc::new(crate::provision::Offline);
        Backends {
            provisioner: offline.clone(),
            directory: offline.clone(),
            pipelines: offline,
        }
    }
}

/// Rules set by the operator.
#[derive(Debug, Clone, Default)]
pub struct ServicePolicy {
    /// Domains under which users may create namespaces themselves.
    pub namespace_domains: Vec<DnsName>,
    /// PBKDF2 iterations for new SCRAM keys.
    pub scram_iterations: u32,
}

/// What [`Service::recover`] did at start-up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Flows whose creation or deletion was interrupted and was undone or
    /// finished.
    pub flows_cleaned: usize,
    /// Pipelines started again.
    pub pipelines_started: usize,
    /// Pipelines that failed to start (logged).
    pub pipelines_failed: usize,
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
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The pipeline id of the publishing half of a subscription.
pub fn publish_pipeline_id(subscription: &DnsName) -> String {
    format!("subscription/{subscription}/publish")
}
/// The pipeline id of the delivering half of a subscription.
pub fn deliver_pipeline_id(subscription: &DnsName) -> String {
    format!("subscription/{subscription}/deliver")
}
/// The pipeline id of a processor instance.
pub fn processor_pipeline_id(processor: &DnsName) -> String {
    format!("processor/{processor}")
}

/// What a processor looks like to a reader: the record and its live status.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorView {
    pub processor: Processor,
    pub status: Option<PipelineStatus>,
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
        }
    }

    /// The store, for the operator commands.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ----- accounts and authentication -----

    /// Checks a user name and password (PLAIN). Unknown users cost the
    /// same time as wrong passwords.
    pub async fn authenticate_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Principal, ServiceError> {
        let account = self.store.account(username).await?;
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let _slot = self
            .password_checks
            .acquire()
            .await
            .map_err(|_| ServiceError::Store("shutting down".into()))?;
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => credentials::verify_password(&password, &hash),
            None => {
                credentials::verify_password(&password, credentials::dummy_hash());
                false
            }
        })
        .await
        .unwrap_or(false);
        if matches && account.is_some() {
            Ok(Principal::User(username.to_owned()))
        } else {
            Err(ServiceError::AuthenticationFailed)
        }
    }

    /// The SCRAM verifiers of a user; made-up but stable ones for an unknown
    /// user, so that the exchange fails only at the proof.
    pub async fn scram_keys(&self, username: &str) -> Result<(ScramKeys, bool), ServiceError> {
        if let Some(account) = self.store.account(username).await? {
            return Ok((account.scram, true));
        }
        use sha2::Digest as _;
        let mut digest = sha2::Sha256::new();
        digest.update(self.unknown_user_secret);
        digest.update(username.as_bytes());
        let salt = digest.finalize()[..16].to_vec();
        let keys = ScramKeys {
            iterations: self
                .policy
                .scram_iterations
                .max(crate::sasl::scram::MIN_ITERATIONS),
            salt,
            stored_key: rand::random::<[u8; 32]>().to_vec(),
            server_key: rand::random::<[u8; 32]>().to_vec(),
        };
        Ok((keys, false))
    }

    fn require_operator(principal: &Principal) -> Result<(), ServiceError> {
        match principal {
            Principal::Operator => Ok(()),
            _ => Err(ServiceError::PermissionDenied(
                "only the operator manages accounts".into(),
            )),
        }
    }

    async fn make_account(
        &self,
        name: &str,
        password: &str,
        created_unix: u64,
    ) -> Result<Account, ServiceError> {
        check_user_name(name)
            .map_err(|e| ServiceError::InvalidArgument(format!("invalid user name: {e}")))?;
        if password.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "the password must not be empty".into(),
            ));
        }
        let password = password.to_owned();
        let iterations = self.policy.scram_iterations;
        let (password_hash, scram) =
            tokio::task::spawn_blocking(move || credentials::derive(&password, iterations))
                .await
                .map_err(|e| ServiceError::Store(e.to_string()))?
                .map_err(|e| ServiceError::Store(e.to_string()))?;
        Ok(Account {
            name: name.to_owned(),
            password_hash,
            scram,
            created_unix,
        })
    }

    /// Creates an account.
    pub async fn add_user(
        &self,
        principal: &Principal,
        name: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        Self::require_operator(principal)?;
        let account = self.make_account(name, password, now_unix()).await?;
        Ok(self.store.apply(Change::CreateAccount(account)).await?)
    }

    /// Sets a new password.
    pub async fn set_password(
        &self,
        principal: &Principal,
        name: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        Self::require_operator(principal)?;
        let existing = self
            .store
            .account(name)
            .await?
            .ok_or_else(|| not_found("account", name))?;
        let account = self
            .make_account(name, password, existing.created_unix)
            .await?;
        Ok(self.store.apply(Change::ReplaceAccount(account)).await?)
    }

    /// Removes an account that owns no namespace.
    pub async fn remove_user(&self, principal: &Principal, name: &str) -> Result<(), ServiceError> {
        Self::require_operator(principal)?;
        Ok(self
            .store
            .apply(Change::DeleteAccount(name.to_owned()))
            .await?)
    }

    /// The accounts, with the namespaces each owns.
    pub async fn list_users(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, Vec<DnsName>)>, ServiceError> {
        Self::require_operator(principal)?;
        let namespaces = self.store.namespaces().await?;
        Ok(self
            .store
            .accounts()
            .await?
            .into_iter()
            .map(|account| {
                let owned = namespaces
                    .iter()
                    .filter(|ns| ns.owner == account.name)
                    .map(|ns| ns.name.clone())
                    .collect();
                (account.name, owned)
            })
            .collect())
    }

    // ----- namespaces -----

    /// The namespace a flow or processor name lies in, if this host has it.
    pub async fn namespace_of(&self, name: &DnsName) -> Result<Option<Namespace>, ServiceError> {
        for ancestor in name.ancestors() {
            if let Some(namespace) = self.store.namespace(&ancestor).await? {
                return Ok(Some(namespace));
            }
        }
        Ok(None)
    }

    /// The namespace of `name`, which `principal` must own.
    async fn owned_namespace_of(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<Namespace, ServiceError> {
        if self.store.namespace(name).await?.is_some() {
            return Err(ServiceError::InvalidArgument(format!(
                "{name} is a namespace, not a name inside one"
            )));
        }
        let namespace = self
            .namespace_of(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "namespace",
                name: format!("for {name} on this host"),
            })?;
        authorize_namespace(principal, &namespace)?;
        Ok(namespace)
    }

    /// Creates a namespace. Users may create them under the domains the
    /// operator allowed; the operator names the owner.
    pub async fn create_namespace(
        &self,
        principal: &Principal,
        name: &DnsName,
        owner: Option<&str>,
    ) -> Result<Namespace, ServiceError> {
        if name.label_count() < 2 {
            return Err(ServiceError::InvalidArgument(
                "a namespace needs at least two labels".into(),
            ));
        }
        let owner = match principal {
            Principal::Operator => owner
                .ok_or_else(|| {
                    ServiceError::InvalidArgument("the operator must name the owner".into())
                })?
                .to_owned(),
            Principal::Anonymous => return Err(anonymous_denied()),
            Principal::User(user) => {
                let allowed = self
                    .policy
                    .namespace_domains
                    .iter()
                    .any(|domain| name.is_within(domain) && name != domain);
                if !allowed {
                    return Err(ServiceError::PermissionDenied(format!(
                        "users may not create the namespace {name} on this host; ask its operator"
                    )));
                }
                user.clone()
            }
        };
        let namespace = Namespace {
            name: name.clone(),
            owner,
            created_unix: now_unix(),
        };
        self.store
            .apply(Change::CreateNamespace(namespace.clone()))
            .await?;
        Ok(namespace)
    }

    /// Deletes an empty namespace.
    pub async fn delete_namespace(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<(), ServiceError> {
        let namespace = self
            .store
            .namespace(name)
            .await?
            .ok_or_else(|| not_found("namespace", name))?;
        authorize_namespace(principal, &namespace)?;
        Ok(self
            .store
            .apply(Change::DeleteNamespace(name.clone()))
            .await?)
    }

    /// The namespaces `principal` owns (all of them for the operator).
    pub async fn list_namespaces(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Namespace>, ServiceError> {
        let mut namespaces = self.store.namespaces().await?;
        namespaces.retain(|ns| match principal {
            Principal::Operator => true,
            Principal::User(user) => &ns.owner == user,
            Principal::Anonymous => false,
        });
        Ok(namespaces)
    }

    // ----- flows -----

    /// Creates a flow: record it as provisioning, create its queue, publish
    /// its DNS records, mark it active. Any failure undoes the steps done.
    pub async fn create_flow(
        &self,
        principal: &Principal,
        name: &DnsName,
        visibility: Visibility,
    ) -> Result<Flow, ServiceError> {
        let namespace = self.owned_namespace_of(principal, name).await?;
        let flow = Flow {
            name: name.clone(),
            namespace: namespace.name,
            owner: namespace.owner,
            visibility,
            state: FlowState::Provisioning,
            binding: None,
            copy_of: None,
            granted_to: None,
            created_unix: now_unix(),
        };
        self.provision_flow(flow).await
    }

    async fn provision_flow(&self, mut flow: Flow) -> Result<Flow, ServiceError> {
        crate::names::check_flow_uri(&flow.name, &flow.namespace)?;
        // The record comes first so that a concurrent create of the same
        // name fails before touching the broker.
        self.store.apply(Change::CreateFlow(flow.clone())).await?;
        let binding = match self.backends.provisioner.create_queue(&flow.name).await {
            Ok(binding) => binding,
            Err(error) => {
                self.forget_flow(&flow.name).await;
                return Err(provisioning("creating the broker queue", error));
            }
        };
        if let Err(error) = self.backends.directory.publish(&flow.name, &binding).await {
            self.delete_queue_quietly(&flow.name, Some(&binding)).await;
            self.forget_flow(&flow.name).await;
            return Err(provisioning("publishing the DNS records", error));
        }
        flow.state = FlowState::Active;
        flow.binding = Some(binding.clone());
        if let Err(error) = self.store.apply(Change::ReplaceFlow(flow.clone())).await {
            self.withdraw_quietly(&flow.name).await;
            self.delete_queue_quietly(&flow.name, Some(&binding)).await;
            self.forget_flow(&flow.name).await;
            return Err(error.into());
        }
        Ok(flow)
    }

    async fn forget_flow(&self, name: &DnsName) {
        if let Err(error) = self.store.apply(Change::DeleteFlow(name.clone())).await {
            tracing::error!(flow = %name, %error, "cannot remove the record of a failed flow; it is cleaned at the next start");
        }
    }

    async fn delete_queue_quietly(&self, name: &DnsName, binding: Option<&BrokerBinding>) {
        if let Err(error) = self.backends.provisioner.delete_queue(name, binding).await {
            tracing::error!(flow = %name, %error, "cannot delete the queue of a failed flow");
        }
    }

    async fn withdraw_quietly(&self, name: &DnsName) {
        if let Err(error) = self.backends.directory.withdraw(name).await {
            tracing::error!(flow = %name, %error, "cannot withdraw the DNS records of a failed flow");
        }
    }

    /// Deletes a flow no subscription or processor uses: withdraw its DNS
    /// records, delete its queue, drop the record. If the queue cannot be
    /// deleted the records are published again and the flow stays.
    pub async fn delete_flow(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<(), ServiceError> {
        let flow = self.existing_flow(name).await?;
        authorize_owner(principal, &flow)?;
        if flow.copy_of.is_some() && self.store.subscription(name).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "{name} is the copy flow of a subscription; UNSUBSCRIBE {name} removes it"
            )));
        }
        self.check_unused(name).await?;
        self.deprovision_flow(flow).await
    }

    async fn check_unused(&self, name: &DnsName) -> Result<(), ServiceError> {
        if let Some(subscription) = self
            .store
            .subscriptions()
            .await?
            .into_iter()
            .find(|s| &s.source == name || &s.id == name || s.local.as_ref() == Some(name))
        {
            return Err(ServiceError::Conflict(format!(
                "flow {name} is used by the subscription {}",
                subscription.id
            )));
        }
        if let Some(processor) = self
            .store
            .processors()
            .await?
            .into_iter()
            .find(|p| p.inputs.contains(name) || p.outputs.contains(name))
        {
            return Err(ServiceError::Conflict(format!(
                "flow {name} is used by the processor {}",
                processor.name
            )));
        }
        Ok(())
    }

    async fn deprovision_flow(&self, mut flow: Flow) -> Result<(), ServiceError> {
        match flow.state {
            FlowState::Active => {}
            FlowState::Provisioning => {
                return Err(ServiceError::Busy(format!(
                    "flow {} is being created",
                    flow.name
                )));
            }
            FlowState::Deleting => {
                return Err(ServiceError::Busy(format!(
                    "flow {} is being deleted",
                    flow.name
                )));
            }
        }
        let active = flow.clone();
        flow.state = FlowState::Deleting;
        self.store.apply(Change::ReplaceFlow(flow.clone())).await?;
        if let Err(error) = self.backends.directory.withdraw(&flow.name).await {
            self.restore_flow(active).await;
            return Err(provisioning("withdrawing the DNS records", error));
        }
        if let Err(error) = self
            .backends
            .provisioner
            .delete_queue(&flow.name, flow.binding.as_ref())
            .await
        {
            if let Some(binding) = &flow.binding
                && let Err(error) = self.backends.directory.publish(&flow.name, binding).await
            {
                tracing::error!(flow = %flow.name, %error, "cannot publish the DNS records again");
            }
            self.restore_flow(active).await;
            return Err(provisioning("deleting the broker queue", error));
        }
        Ok(self.store.apply(Change::DeleteFlow(flow.name)).await?)
    }

    async fn restore_flow(&self, flow: Flow) {
        if let Err(error) = self.store.apply(Change::ReplaceFlow(flow)).await {
            tracing::error!(%error, "cannot mark a flow active again");
        }
    }

    /// A flow `principal` may read.
    pub async fn describe_flow(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<Flow, ServiceError> {
        let flow = self.existing_flow(name).await?;
        authorize_read(principal, &flow)?;
        match flow.state {
            FlowState::Active => Ok(flow),
            FlowState::Provisioning => {
                Err(ServiceError::Busy(format!("flow {name} is being created")))
            }
            FlowState::Deleting => Err(ServiceError::Busy(format!("flow {name} is being deleted"))),
        }
    }

    /// Flows `principal` may read: those of one namespace, or without a
    /// namespace all of their own (all public flows for anonymous
    /// sessions, every flow for the operator).
    pub async fn list_flows(
        &self,
        principal: &Principal,
        namespace: Option<&DnsName>,
    ) -> Result<Vec<Flow>, ServiceError> {
        if let Some(namespace) = namespace
            && self.store.namespace(namespace).await?.is_none()
        {
            return Err(not_found("namespace", namespace));
        }
        let mut flows = self.store.flows(namespace).await?;
        flows.retain(|flow| {
            flow.state == FlowState::Active
                && match (principal, namespace) {
                    (Principal::Operator, _) => true,
                    (Principal::User(user), None) => &flow.owner == user,
                    _ => authorize_read(principal, flow).is_ok(),
                }
        });
        flows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(flows)
    }

    /// Marks a flow public or private.
    pub async fn set_visibility(
        &self,
        principal: &Principal,
        name: &DnsName,
        visibility: Visibility,
    ) -> Result<Flow, ServiceError> {
        let mut flow = self.existing_flow(name).await?;
        authorize_owner(principal, &flow)?;
        flow.visibility = visibility;
        self.store.apply(Change::ReplaceFlow(flow.clone())).await?;
        Ok(flow)
    }

    /// The flow called `name`; `NotFound` when there is none.
    async fn existing_flow(&self, name: &DnsName) -> Result<Flow, ServiceError> {
        self.store
            .flow(name)
            .await?
            .ok_or_else(|| not_found("flow", name))
    }

    // ----- subscriptions -----

    async fn endpoint(&self, name: &DnsName) -> Result<FlowEndpoint, ServiceError> {
        let flow = self.existing_flow(name).await?;
        match (flow.state, flow.binding) {
            (FlowState::Active, Some(binding)) => Ok(FlowEndpoint {
                flow: flow.name,
                binding,
            }),
            _ => Err(ServiceError::Busy(format!("flow {name} is not active"))),
        }
    }

    /// Subscribes to a flow of this host: creates the copy flow
    /// `<random>.<source>` fed from `source` (owned by the source's owner,
    /// readable by the subscriber), and with `local` also delivers into
    /// that flow of the subscriber (created when missing).
    pub async fn subscribe(
        &self,
        principal: &Principal,
        source: &DnsName,
        local: Option<&DnsName>,
    ) -> Result<Subscription, ServiceError> {
        let Some(source_flow) = self.store.flow(source).await? else {
            if self.namespace_of(source).await?.is_none() {
                return Err(ServiceError::NotImplemented(format!(
                    "{source} is not a flow of this host; subscriptions to other hosts are not supported yet"
                )));
            }
            return Err(not_found("flow", source));
        };
        authorize_read(principal, &source_flow)?;
        if source_flow.state != FlowState::Active {
            return Err(ServiceError::Busy(format!("flow {source} is not active")));
        }
        let local_flow = match local {
            None => None,
            Some(local) => {
                if matches!(principal, Principal::Anonymous) {
                    return Err(anonymous_denied());
                }
                if local == source {
                    return Err(ServiceError::InvalidArgument(
                        "a flow cannot subscribe to itself".into(),
                    ));
                }
                match self.store.flow(local).await? {
                    Some(existing) => {
                        authorize_owner(principal, &existing)?;
                        Some((existing, false))
                    }
                    None => Some((
                        self.create_flow(principal, local, Visibility::Private)
                            .await?,
                        true,
                    )),
                }
            }
        };
        let result = self
            .subscribe_with(
                principal,
                &source_flow,
                local_flow.as_ref().map(|(flow, _)| flow),
            )
            .await;
        if result.is_err()
            && let Some((flow, true)) = local_flow
            && let Err(error) = self.deprovision_flow(flow).await
        {
            tracing::error!(%error, "cannot remove the local flow of a failed subscription");
        }
        result
    }

    async fn subscribe_with(
        &self,
        principal: &Principal,
        source: &Flow,
        local: Option<&Flow>,
    ) -> Result<Subscription, ServiceError> {
        let tag = Alphanumeric
            .sample_string(&mut rand::rng(), 7)
            .to_ascii_lowercase();
        let copy_name = source.name.child(&tag)?;
        let copy = Flow {
            name: copy_name.clone(),
            namespace: source.namespace.clone(),
            owner: source.owner.clone(),
            visibility: Visibility::Private,
            state: FlowState::Provisioning,
            binding: None,
            copy_of: Some(source.name.clone()),
            granted_to: Some(principal.name().to_owned()),
            created_unix: now_unix(),
        };
        let copy = self.provision_flow(copy).await?;
        let subscription = Subscription {
            id: copy_name.clone(),
            source: source.name.clone(),
            local: local.map(|flow| flow.name.clone()),
            subscriber: principal.name().to_owned(),
            created_unix: now_unix(),
        };
        let started = self.start_subscription(&subscription).await;
        let recorded = match started {
            Ok(()) => self
                .store
                .apply(Change::CreateSubscription(subscription.clone()))
                .await
                .map_err(ServiceError::from),
            Err(error) => Err(error),
        };
        if let Err(error) = recorded {
            self.stop_subscription(&subscription).await;
            if let Err(error) = self.deprovision_flow(copy).await {
                tracing::error!(%error, "cannot remove the copy flow of a failed subscription");
            }
            return Err(error);
        }
        Ok(subscription)
    }

    async fn start_subscription(&self, subscription: &Subscription) -> Result<(), ServiceError> {
        let source = self.endpoint(&subscription.source).await?;
        let copy = self.endpoint(&subscription.id).await?;
        let publish = PipelineSpec {
            id: publish_pipeline_id(&subscription.id),
            kind: PipelineKind::Bridge,
            inputs: vec![source],
            outputs: vec![copy.clone()],
        };
        self.backends
            .pipelines
            .start(&publish, RunState::Running)
            .await
            .map_err(|e| provisioning("starting the subscription", e))?;
        if let Some(local) = &subscription.local {
            let deliver = PipelineSpec {
                id: deliver_pipeline_id(&subscription.id),
                kind: PipelineKind::Bridge,
                inputs: vec![copy],
                outputs: vec![self.endpoint(local).await?],
            };
            if let Err(error) = self
                .backends
                .pipelines
                .start(&deliver, RunState::Running)
                .await
            {
                self.stop_subscription(subscription).await;
                return Err(provisioning("starting the subscription", error));
            }
        }
        Ok(())
    }

    async fn stop_subscription(&self, subscription: &Subscription) {
        for id in [
            publish_pipeline_id(&subscription.id),
            deliver_pipeline_id(&subscription.id),
        ] {
            if let Err(error) = self.backends.pipelines.stop(&id).await {
                tracing::error!(pipeline = %id, %error, "cannot stop a pipeline");
            }
        }
    }

    /// Ends a subscription: stops its pipelines and deletes the copy flow.
    /// The subscriber or the owner of the source flow may do it.
    pub async fn unsubscribe(
        &self,
        principal: &Principal,
        id: &DnsName,
    ) -> Result<(), ServiceError> {
        let subscription = self
            .store
            .subscription(id)
            .await?
            .ok_or_else(|| not_found("subscription", id))?;
        let source_owner = self
            .store
            .flow(&subscription.source)
            .await?
            .map(|flow| flow.owner);
        let allowed = match principal {
            Principal::Operator => true,
            Principal::User(user) => {
                &subscription.subscriber == user || source_owner.as_ref() == Some(user)
            }
            Principal::Anonymous => subscription.subscriber == "anonymous",
        };
        if !allowed {
            return Err(ServiceError::PermissionDenied(format!(
                "subscription {id} belongs to another user"
            )));
        }
        self.stop_subscription(&subscription).await;
        self.store
            .apply(Change::DeleteSubscription(id.clone()))
            .await?;
        if let Some(copy) = self.store.flow(id).await? {
            self.deprovision_flow(copy).await?;
        }
        Ok(())
    }

    /// Subscriptions `principal` made or that copy their flows.
    pub async fn list_subscriptions(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Subscription>, ServiceError> {
        let flows = self.store.flows(None).await?;
        let owner_of = |name: &DnsName| {
            flows
                .iter()
                .find(|flow| &flow.name == name)
                .map(|flow| flow.owner.as_str())
        };
        let mut subscriptions = self.store.subscriptions().await?;
        subscriptions.retain(|s| match principal {
            Principal::Operator => true,
            Principal::User(user) => {
                &s.subscriber == user || owner_of(&s.source) == Some(user.as_str())
            }
            Principal::Anonymous => false,
        });
        Ok(subscriptions)
    }

    // ----- processors -----

    async fn processor_spec(&self, processor: &Processor) -> Result<PipelineSpec, ServiceError> {
        let mut inputs = Vec::new();
        for flow in &processor.inputs {
            inputs.push(self.endpoint(flow).await?);
        }
        let mut outputs = Vec::new();
        for flow in &processor.outputs {
            outputs.push(self.endpoint(flow).await?);
        }
        Ok(PipelineSpec {
            id: processor_pipeline_id(&processor.name),
            kind: PipelineKind::Plugin {
                plugin: processor.plugin.clone(),
                config: processor.config.clone(),
            },
            inputs,
            outputs,
        })
    }

    async fn owned_processor(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<Processor, ServiceError> {
        let processor = self
            .store
            .processor(name)
            .await?
            .ok_or_else(|| not_found("processor", name))?;
        match principal {
            Principal::Operator => Ok(processor),
            Principal::User(user) if &processor.owner == user => Ok(processor),
            Principal::User(_) => Err(ServiceError::PermissionDenied(format!(
                "processor {name} belongs to another user"
            ))),
            Principal::Anonymous => Err(anonymous_denied()),
        }
    }

    /// Creates a processor instance in a namespace of `principal`, reading
    /// flows it may read and writing flows it owns, and starts it.
    pub async fn create_processor(
        &self,
        principal: &Principal,
        spec: ProcessorSpec,
    ) -> Result<Processor, ServiceError> {
        let namespace = self.owned_namespace_of(principal, &spec.name).await?;
        for input in &spec.inputs {
            let flow = self.existing_flow(input).await?;
            authorize_read(principal, &flow)?;
        }
        for output in &spec.outputs {
            let flow = self.existing_flow(output).await?;
            authorize_owner(principal, &flow)?;
        }
        let now = now_unix();
        let processor = Processor {
            name: spec.name,
            owner: namespace.owner,
            plugin: spec.plugin,
            inputs: spec.inputs,
            outputs: spec.outputs,
            config: spec.config,
            state: RunState::Running,
            created_unix: now,
            updated_unix: now,
        };
        let pipeline = self.processor_spec(&processor).await?;
        self.store
            .apply(Change::CreateProcessor(processor.clone()))
            .await?;
        if let Err(error) = self
            .backends
            .pipelines
            .start(&pipeline, RunState::Running)
            .await
        {
            if let Err(error) = self
                .store
                .apply(Change::DeleteProcessor(processor.name.clone()))
                .await
            {
                tracing::error!(%error, "cannot remove the record of a processor that failed to start");
            }
            return Err(provisioning("starting the processor", error));
        }
        Ok(processor)
    }

    /// Changes the plugin version or the configuration of a processor.
    pub async fn update_processor(
        &self,
        principal: &Principal,
        name: &DnsName,
        plugin: Option<PluginRef>,
        config: Option<serde_json::Value>,
    ) -> Result<Processor, ServiceError> {
        let old = self.owned_processor(principal, name).await?;
        let mut new = old.clone();
        if let Some(plugin) = plugin {
            new.plugin = plugin;
        }
        if let Some(config) = config {
            new.config = config;
        }
        new.updated_unix = now_unix();
        let pipeline = self.processor_spec(&new).await?;
        self.backends
            .pipelines
            .update(&pipeline)
            .await
            .map_err(|e| provisioning("updating the processor", e))?;
        if let Err(error) = self
            .store
            .apply(Change::ReplaceProcessor(new.clone()))
            .await
        {
            if let Ok(previous) = self.processor_spec(&old).await
                && let Err(error) = self.backends.pipelines.update(&previous).await
            {
                tracing::error!(%error, "cannot roll a processor back to its previous spec");
            }
            return Err(error.into());
        }
        Ok(new)
    }

    /// Stops and removes a processor instance.
    pub async fn delete_processor(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<(), ServiceError> {
        let processor = self.owned_processor(principal, name).await?;
        self.backends
            .pipelines
            .stop(&processor_pipeline_id(&processor.name))
            .await
            .map_err(|e| provisioning("stopping the processor", e))?;
        Ok(self
            .store
            .apply(Change::DeleteProcessor(processor.name))
            .await?)
    }

    /// Pauses or resumes a processor instance.
    pub async fn set_processor_state(
        &self,
        principal: &Principal,
        name: &DnsName,
        state: RunState,
    ) -> Result<Processor, ServiceError> {
        let mut processor = self.owned_processor(principal, name).await?;
        let id = processor_pipeline_id(&processor.name);
        let outcome = match state {
            RunState::Paused => self.backends.pipelines.pause(&id).await,
            RunState::Running => self.backends.pipelines.resume(&id).await,
        };
        outcome.map_err(|e| provisioning("changing the processor state", e))?;
        processor.state = state;
        processor.updated_unix = now_unix();
        self.store
            .apply(Change::ReplaceProcessor(processor.clone()))
            .await?;
        Ok(processor)
    }

    /// A processor and its live status.
    pub async fn describe_processor(
        &self,
        principal: &Principal,
        name: &DnsName,
    ) -> Result<ProcessorView, ServiceError> {
        let processor = self.owned_processor(principal, name).await?;
        let status = self
            .backends
            .pipelines
            .status(&processor_pipeline_id(&processor.name))
            .await
            .unwrap_or_else(|error| {
                Some(PipelineStatus {
                    state: "unknown".into(),
                    detail: error.to_string(),
                })
            });
        Ok(ProcessorView { processor, status })
    }

    /// The processors of `principal`.
    pub async fn list_processors(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Processor>, ServiceError> {
        let mut processors = self.store.processors().await?;
        processors.retain(|p| match principal {
            Principal::Operator => true,
            Principal::User(user) => &p.owner == user,
            Principal::Anonymous => false,
        });
        Ok(processors)
    }

    // ----- start-up -----

    /// Run once at start-up: finishes or undoes flows interrupted half-way,
    /// and starts the pipelines of every subscription and processor again.
    pub async fn recover(&self) -> Result<Recovery, ServiceError> {
        let mut report = Recovery::default();
        for flow in self.store.flows(None).await? {
            if flow.state == FlowState::Active {
                continue;
            }
            tracing::warn!(flow = %flow.name, state = ?flow.state, "cleaning up a flow interrupted half-way");
            self.withdraw_quietly(&flow.name).await;
            self.delete_queue_quietly(&flow.name, flow.binding.as_ref())
                .await;
            match self
                .store
                .apply(Change::DeleteFlow(flow.name.clone()))
                .await
            {
                Ok(()) => report.flows_cleaned += 1,
                Err(error) => {
                    tracing::error!(flow = %flow.name, %error, "cannot remove an interrupted flow")
                }
            }
        }
        for subscription in self.store.subscriptions().await? {
            match self.start_subscription(&subscription).await {
                Ok(()) => report.pipelines_started += 1,
                Err(error) => {
                    report.pipelines_failed += 1;
                    tracing::error!(subscription = %subscription.id, %error, "cannot restart a subscription");
                }
            }
        }
        for processor in self.store.processors().await? {
            let started = match self.processor_spec(&processor).await {
                Ok(spec) => self
                    .backends
                    .pipelines
                    .start(&spec, processor.state)
                    .await
                    .map_err(|e| provisioning("starting", e)),
                Err(error) => Err(error),
            };
            match started {
                Ok(()) => report.pipelines_started += 1,
                Err(error) => {
                    report.pipelines_failed += 1;
                    tracing::error!(processor = %processor.name, %error, "cannot restart a processor");
                }
            }
        }
        Ok(report)
    }
}

fn not_found(kind: &'static str, name: impl std::fmt::Display) -> ServiceError {
    ServiceError::NotFound {
        kind,
        name: name.to_string(),
    }
}

fn anonymous_denied() -> ServiceError {
    ServiceError::PermissionDenied("anonymous sessions may only read public flows".into())
}

fn authorize_namespace(principal: &Principal, namespace: &Namespace) -> Result<(), ServiceError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::User(user) if &namespace.owner == user => Ok(()),
        Principal::User(_) => Err(ServiceError::PermissionDenied(format!(
            "namespace {} belongs to another user",
            namespace.name
        ))),
        Principal::Anonymous => Err(anonymous_denied()),
    }
}

fn authorize_owner(principal: &Principal, flow: &Flow) -> Result<(), ServiceError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::User(user) if &flow.owner == user => Ok(()),
        Principal::User(_) => Err(ServiceError::PermissionDenied(format!(
            "flow {} belongs to another user",
            flow.name
        ))),
        Principal::Anonymous => Err(anonymous_denied()),
    }
}

fn authorize_read(principal: &Principal, flow: &Flow) -> Result<(), ServiceError> {
    let allowed = flow.visibility == Visibility::Public
        || flow.granted_to.as_deref() == Some(principal.name())
        || match principal {
            Principal::Operator => true,
            Principal::User(user) => &flow.owner == user,
            Principal::Anonymous => false,
        };
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::PermissionDenied(format!(
            "flow {} is private to its owner",
            flow.name
        )))
    }
}
