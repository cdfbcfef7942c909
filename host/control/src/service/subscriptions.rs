//! Subscriptions: a copy flow fed from the source by a bridge pipeline,
//! optionally delivered on into a flow of the subscriber.

use rand::distr::{Alphanumeric, SampleString};

use crate::names::{COPY_TAG_LENGTH, DnsName, MAX_NAME_LENGTH, NameError};
use crate::provision::{PipelineKind, PipelineSpec};
use crate::store::{Change, Flow, FlowState, RunState, Subscription, Visibility, now_unix};

use super::flows::active;

use super::authz::{
    AnonymousSession, anonymous_denied, authorize_owner, authorize_read, is_anonymous_name,
};
use super::{Principal, Service, ServiceError, not_found, provisioning};

/// The pipeline id of the publishing half of a subscription.
pub fn publish_pipeline_id(subscription: &DnsName) -> String {
    format!("subscription/{subscription}/publish")
}
/// The pipeline id of the delivering half of a subscription.
pub fn deliver_pipeline_id(subscription: &DnsName) -> String {
    format!("subscription/{subscription}/deliver")
}

/// What a subscription looks like to a reader: the record, its state and
/// the live status of its pipelines.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionView {
    pub subscription: Subscription,
    /// `active`, `failing` (with `reason`) or `revoked`.
    pub state: &'static str,
    /// Why it is failing.
    pub reason: Option<String>,
    /// Each pipeline's id and status (events moved, errors).
    pub pipelines: Vec<(String, crate::provision::PipelineStatus)>,
}

/// The random first label of a copy flow: 7 lower-case letters and digits.
fn copy_tag() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), COPY_TAG_LENGTH)
        .to_ascii_lowercase()
}

impl Service {
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
                return self.subscribe_remote(principal, source, local).await;
            }
            return Err(not_found("flow", source));
        };
        authorize_read(principal, &source_flow)?;
        if let Some(origin) = &source_flow.copy_of {
            return Err(ServiceError::Conflict(format!(
                "{source} is the copy flow of a subscription to {origin}; subscribe to {origin} instead"
            )));
        }
        active(&source_flow)?;
        if source.as_str().len() + COPY_TAG_LENGTH + 1 > MAX_NAME_LENGTH {
            return Err(NameError::NoRoomForCopy(source.to_string()).into());
        }
        let local_flow = self.local_flow(principal, source, local).await?;
        // Anonymous subscriptions are counted and made one at a time.
        let _quota = match principal {
            Principal::Anonymous(session) => {
                let guard = self.anonymous_subscribe.lock().await;
                self.check_anonymous_quota(session, source).await?;
                Some(guard)
            }
            _ => None,
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

    /// The flow of the subscriber that `source` is delivered into, checked
    /// (owned, not a copy, no loop) or created; `true` when created here.
    pub(super) async fn local_flow(
        &self,
        principal: &Principal,
        source: &DnsName,
        local: Option<&DnsName>,
    ) -> Result<Option<(Flow, bool)>, ServiceError> {
        Ok(match local {
            None => None,
            Some(local) => {
                if matches!(principal, Principal::Anonymous(_)) {
                    return Err(anonymous_denied());
                }
                if local == source {
                    return Err(ServiceError::InvalidArgument(format!(
                        "SUBSCRIBE {source} LOCAL {local}: a flow cannot be delivered into itself"
                    )));
                }
                if local.is_within(source) {
                    return Err(ServiceError::InvalidArgument(format!(
                        "the local flow {local} lies below {source}, where its copy flows are named"
                    )));
                }
                if self.feeds(local, source).await? {
                    return Err(ServiceError::Conflict(format!(
                        "{local} already feeds {source}: delivering {source} into it would loop"
                    )));
                }
                match self.store.flow(local).await? {
                    Some(existing) => {
                        authorize_owner(principal, &existing)?;
                        if let Some(origin) = &existing.copy_of {
                            return Err(ServiceError::Conflict(format!(
                                "{local} is the copy flow of a subscription to {origin}; deliver into a flow of your own"
                            )));
                        }
                        active(&existing)?;
                        Some((existing, false))
                    }
                    None => Some((
                        self.create_flow(principal, local, Visibility::Private)
                            .await?,
                        true,
                    )),
                }
            }
        })
    }

    async fn subscribe_with(
        &self,
        principal: &Principal,
        source: &Flow,
        local: Option<&Flow>,
    ) -> Result<Subscription, ServiceError> {
        let tag = copy_tag();
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
            // The copy describes itself as its source did when subscribed.
            description: source.description.clone(),
        };
        let copy = self.provision_flow(copy).await?;
        let subscription = Subscription {
            id: copy_name.clone(),
            source: source.name.clone(),
            local: local.map(|flow| flow.name.clone()),
            subscriber: principal.name().to_owned(),
            created_unix: now_unix(),
            client_address: match principal {
                Principal::Anonymous(session) => Some(session.address),
                _ => None,
            },
            remote: None,
        };
        if let Err(error) = self.start_and_record(&subscription).await {
            if let Err(error) = self.deprovision_flow(copy).await {
                tracing::error!(%error, "cannot remove the copy flow of a failed subscription");
            }
            return Err(error);
        }
        Ok(subscription)
    }

    /// Starts the pipelines of `subscription` and records it; when either
    /// fails, its pipelines are stopped again.
    pub(super) async fn start_and_record(
        &self,
        subscription: &Subscription,
    ) -> Result<(), ServiceError> {
        let recorded = match self.start_subscription(subscription).await {
            Ok(()) => self
                .store
                .apply(Change::CreateSubscription(subscription.clone()))
                .await
                .map_err(ServiceError::from),
            Err(error) => Err(error),
        };
        if recorded.is_err() {
            self.stop_subscription(subscription).await;
        }
        recorded
    }

    pub(super) async fn start_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<(), ServiceError> {
        if let Some(remote) = &subscription.remote {
            return self.start_remote(subscription, remote).await;
        }
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

    pub(super) async fn stop_subscription(&self, subscription: &Subscription) {
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
        if subscription.is_remote() {
            return self.unsubscribe_remote(principal, subscription).await;
        }
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
            // Only the session that made it: its identity is its own.
            Principal::Anonymous(session) => subscription.subscriber == session.id,
        };
        if !allowed {
            return Err(ServiceError::PermissionDenied(format!(
                "subscription {id} belongs to another user"
            )));
        }
        let copy = self.store.flow(id).await?;
        if let Some(copy) = &copy {
            active(copy)?;
        }
        self.stop_subscription(&subscription).await;
        self.store
            .apply(Change::DeleteSubscription(id.clone()))
            .await?;
        let Some(copy) = copy else {
            return Ok(());
        };
        let binding = copy.binding.clone();
        if let Err(error) = self.deprovision_flow(copy).await {
            // A 4xx changes nothing: the subscription runs again.
            self.restore_subscription(&subscription).await;
            return Err(error);
        }
        if let Some(binding) = binding
            && let Err(error) = self
                .backends
                .pipelines
                .forget_copy_reader(id, &binding)
                .await
        {
            tracing::warn!(subscription = %id, %error, "cannot remove what relays of the copy kept at the broker");
        }
        Ok(())
    }

    async fn restore_subscription(&self, subscription: &Subscription) {
        if let Err(error) = self
            .store
            .apply(Change::CreateSubscription(subscription.clone()))
            .await
        {
            tracing::error!(subscription = %subscription.id, %error, "cannot record a subscription again after a failed UNSUBSCRIBE");
            return;
        }
        if let Err(error) = self.start_subscription(subscription).await {
            tracing::error!(subscription = %subscription.id, %error, "cannot restart a subscription after a failed UNSUBSCRIBE");
        }
    }

    /// `QuotaExceeded` (`453`) when anonymous sessions from the session's
    /// address, or anonymous sessions on `source`, hold as many
    /// subscriptions as the policy allows.
    async fn check_anonymous_quota(
        &self,
        session: &AnonymousSession,
        source: &DnsName,
    ) -> Result<(), ServiceError> {
        let anonymous: Vec<Subscription> = self
            .store
            .subscriptions()
            .await?
            .into_iter()
            .filter(|s| is_anonymous_name(&s.subscriber))
            .collect();
        let per_address = self.policy.anonymous_subscriptions_per_address;
        let from_address = anonymous
            .iter()
            .filter(|s| s.client_address == Some(session.address))
            .count();
        if from_address >= per_address {
            return Err(ServiceError::QuotaExceeded(format!(
                "anonymous sessions from {} hold {from_address} subscriptions, the most this server allows; UNSUBSCRIBE one (from the session that made it) or authenticate",
                session.address
            )));
        }
        let per_flow = self.policy.anonymous_subscriptions_per_flow;
        let on_flow = anonymous.iter().filter(|s| &s.source == source).count();
        if on_flow >= per_flow {
            return Err(ServiceError::QuotaExceeded(format!(
                "{source} has {on_flow} anonymous subscriptions, the most this server allows; try later or authenticate"
            )));
        }
        Ok(())
    }

    /// Whether events written to `from` reach `to` through subscriptions
    /// (source, copy, local) and processors (inputs to outputs).
    pub(super) async fn feeds(&self, from: &DnsName, to: &DnsName) -> Result<bool, ServiceError> {
        let mut edges: Vec<(DnsName, DnsName)> = Vec::new();
        for subscription in self.store.subscriptions().await? {
            edges.push((subscription.source.clone(), subscription.id.clone()));
            if let Some(local) = subscription.local {
                edges.push((subscription.id, local));
            }
        }
        for processor in self.store.processors().await? {
            for input in &processor.inputs {
                for output in &processor.outputs {
                    edges.push((input.clone(), output.clone()));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut next = vec![from.clone()];
        while let Some(flow) = next.pop() {
            if &flow == to {
                return Ok(true);
            }
            if seen.insert(flow.clone()) {
                next.extend(
                    edges
                        .iter()
                        .filter(|(input, _)| *input == flow)
                        .map(|(_, output)| output.clone()),
                );
            }
        }
        Ok(false)
    }

    /// Subscriptions `principal` made or that copy their flows (for an
    /// anonymous session: those it made).
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
        subscriptions.retain(|s| {
            let pending = s
                .remote
                .as_ref()
                .is_some_and(|r| r.state == crate::store::RemoteState::Pending);
            !pending
                && match principal {
                    Principal::Operator => true,
                    Principal::User(user) => {
                        &s.subscriber == user || owner_of(&s.source) == Some(user.as_str())
                    }
                    Principal::Anonymous(session) => s.subscriber == session.id,
                }
        });
        Ok(subscriptions)
    }

    /// A subscription with its state and pipelines, for whoever may list it.
    pub async fn describe_subscription(
        &self,
        principal: &Principal,
        id: &DnsName,
    ) -> Result<SubscriptionView, ServiceError> {
        let subscription = self
            .list_subscriptions(principal)
            .await?
            .into_iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| not_found("subscription", id))?;
        let mut pipelines = Vec::new();
        for pipeline in [publish_pipeline_id(id), deliver_pipeline_id(id)] {
            if let Ok(Some(status)) = self.backends.pipelines.status(&pipeline).await {
                pipelines.push((pipeline, status));
            }
        }
        let revoked = subscription
            .remote
            .as_ref()
            .is_some_and(|r| r.state != crate::store::RemoteState::Active);
        let failed_pipeline = pipelines
            .iter()
            .find(|(_, status)| status.state == "failed")
            .map(|(id, status)| format!("pipeline {id}: {}", status.detail));
        let reason = self.peer_health(id).or(failed_pipeline);
        let state = match (revoked, &reason) {
            (true, _) => "revoked",
            (false, Some(_)) => "failing",
            (false, None) => "active",
        };
        Ok(SubscriptionView {
            subscription,
            state,
            reason: if revoked { None } else { reason },
            pipelines,
        })
    }
}
