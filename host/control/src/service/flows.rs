//! Flows: their provisioning (record, broker queue, DNS records) with
//! compensation when a step fails, and reading and changing them.

use crate::names::DnsName;
use crate::provision::FlowEndpoint;
use crate::store::{BrokerBinding, Change, Flow, FlowDescription, FlowState, Visibility, now_unix};

use super::authz::{anonymous_denied, authorize_owner, authorize_read};
use super::{Principal, Service, ServiceError, not_found, provisioning};

impl Service {
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
            description: FlowDescription::default(),
        };
        self.provision_flow(flow).await
    }

    pub(super) async fn provision_flow(&self, mut flow: Flow) -> Result<Flow, ServiceError> {
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

    pub(super) async fn delete_queue_quietly(
        &self,
        name: &DnsName,
        binding: Option<&BrokerBinding>,
    ) {
        if let Err(error) = self.backends.provisioner.delete_queue(name, binding).await {
            tracing::error!(flow = %name, %error, "cannot delete the queue of a failed flow");
        }
    }

    pub(super) async fn withdraw_quietly(&self, name: &DnsName) {
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

    pub(super) async fn deprovision_flow(&self, mut flow: Flow) -> Result<(), ServiceError> {
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
        active(&flow)?;
        Ok(flow)
    }

    /// Flows `principal` may read: those of one namespace, or without a
    /// namespace all of their own (every flow for the operator; refused to
    /// anonymous sessions, which own nothing).
    pub async fn list_flows(
        &self,
        principal: &Principal,
        namespace: Option<&DnsName>,
    ) -> Result<Vec<Flow>, ServiceError> {
        if namespace.is_none() && matches!(principal, Principal::Anonymous(_)) {
            // "The flows you own" has no meaning for an anonymous session:
            // public flows are listed by namespace.
            return Err(anonymous_denied());
        }
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
        if let Some(source) = &flow.copy_of {
            return Err(ServiceError::Conflict(format!(
                "{name} is the copy flow of a subscription to {source}; a copy stays private to its subscriber"
            )));
        }
        active(&flow)?;
        flow.visibility = visibility;
        self.store.apply(Change::ReplaceFlow(flow.clone())).await?;
        Ok(flow)
    }

    /// Changes what a flow of `principal` says about itself.
    pub async fn describe_itself(
        &self,
        principal: &Principal,
        name: &DnsName,
        change: impl FnOnce(&mut FlowDescription),
    ) -> Result<Flow, ServiceError> {
        let mut flow = self.existing_flow(name).await?;
        authorize_owner(principal, &flow)?;
        if let Some(source) = &flow.copy_of {
            return Err(ServiceError::Conflict(format!(
                "{name} is the copy flow of a subscription to {source}; it carries the description of its source"
            )));
        }
        active(&flow)?;
        change(&mut flow.description);
        self.store.apply(Change::ReplaceFlow(flow.clone())).await?;
        Ok(flow)
    }

    /// The flow called `name`; `NotFound` when there is none.
    pub(super) async fn existing_flow(&self, name: &DnsName) -> Result<Flow, ServiceError> {
        self.store
            .flow(name)
            .await?
            .ok_or_else(|| not_found("flow", name))
    }

    /// Where the broker carries `name`, which must be active.
    pub(super) async fn endpoint(&self, name: &DnsName) -> Result<FlowEndpoint, ServiceError> {
        let flow = self.existing_flow(name).await?;
        match (flow.state, flow.binding) {
            (FlowState::Active, Some(binding)) => Ok(FlowEndpoint {
                flow: flow.name,
                binding,
                remote: false,
                relay: None,
            }),
            _ => Err(ServiceError::Busy(format!("flow {name} is not active"))),
        }
    }
}

/// `Busy` (`450`) unless the flow is active.
pub(super) fn active(flow: &Flow) -> Result<(), ServiceError> {
    match flow.state {
        FlowState::Active => Ok(()),
        FlowState::Provisioning => Err(ServiceError::Busy(format!(
            "flow {} is being created",
            flow.name
        ))),
        FlowState::Deleting => Err(ServiceError::Busy(format!(
            "flow {} is being deleted",
            flow.name
        ))),
    }
}
