//! Subscriptions to flows of other organisations (thesis 7.4.3): this host
//! finds the publisher's FNAA through DNS, subscribes there, and a pipeline
//! moves the events of the copy flow it was given into a flow of the
//! subscriber here. The publisher controls the copy: when it ends the
//! subscription, [`Service::check_remote_subscriptions`] notices, stops the
//! pipeline and shows the subscription as `revoked`.

use rand::distr::{Alphanumeric, SampleString};

use crate::names::DnsName;
use crate::provision::{FlowEndpoint, PipelineKind, PipelineSpec, RelayPeer};
use crate::store::{
    Capability, Change, RemoteSource, RemoteState, RunState, Subscription, TransferMode, now_unix,
};

use super::authz::anonymous_denied;
use super::subscriptions::deliver_pipeline_id;
use super::{Principal, Service, ServiceError, provisioning};

/// A new capability: 32 letters and digits (~190 bits).
fn new_capability() -> Capability {
    Capability(Alphanumeric.sample_string(&mut rand::rng(), 32))
}

/// The record of `user`'s subscription `id` to `source` at another FNAA,
/// delivered into `local`.
fn remote_record(
    id: DnsName,
    user: &str,
    source: &DnsName,
    local: &DnsName,
    remote: RemoteSource,
) -> Subscription {
    Subscription {
        id,
        source: source.clone(),
        local: Some(local.clone()),
        subscriber: user.to_owned(),
        created_unix: now_unix(),
        client_address: None,
        remote: Some(remote),
    }
}

impl Service {
    /// `SUBSCRIBE <source> LOCAL <local>` where `source` belongs to another
    /// FNAA. Either everything is in place when this returns, or nothing is
    /// left on either host.
    pub(super) async fn subscribe_remote(
        &self,
        principal: &Principal,
        source: &DnsName,
        local: Option<&DnsName>,
    ) -> Result<Subscription, ServiceError> {
        let user = match principal {
            Principal::User(user) => user.clone(),
            Principal::Anonymous(_) => return Err(anonymous_denied()),
            Principal::Operator => {
                return Err(ServiceError::InvalidArgument(
                    "the operator has no flows to deliver into; subscribe as a user".into(),
                ));
            }
        };
        let Some(local) = local else {
            return Err(ServiceError::InvalidArgument(format!(
                "{source} is a flow of another FNAA: name the flow of yours its events go into, SUBSCRIBE {source} LOCAL <flow>"
            )));
        };
        let local_flow = self.local_flow(principal, source, Some(local)).await?;
        let result = self.subscribe_remote_into(&user, source, local).await;
        if result.is_err()
            && let Some((flow, true)) = local_flow
            && let Err(error) = self.deprovision_flow(flow).await
        {
            tracing::error!(%error, "cannot remove the local flow of a failed subscription");
        }
        result
    }

    async fn subscribe_remote_into(
        &self,
        user: &str,
        source: &DnsName,
        local: &DnsName,
    ) -> Result<Subscription, ServiceError> {
        let capability = new_capability();
        // Recorded first: a host killed from here on ends what the
        // publisher made at its next check (`abandon_pending`).
        let pending = remote_record(
            local.child(&format!(
                "pending-{}",
                &capability.0[..8].to_ascii_lowercase()
            ))?,
            user,
            source,
            local,
            RemoteSource::pending(capability.clone()),
        );
        self.in_flight(&pending.id, true);
        self.store
            .apply(Change::CreateSubscription(pending.clone()))
            .await?;
        let result = self
            .subscribe_remote_recorded(user, source, local, capability)
            .await;
        let forgotten = self
            .store
            .apply(Change::DeleteSubscription(pending.id.clone()))
            .await;
        self.in_flight(&pending.id, false);
        if let Err(error) = forgotten {
            // The next check ends it at the publisher: only on failure, the
            // capability then holding nothing else.
            tracing::warn!(subscription = %pending.id, %error, "cannot remove the record of a SUBSCRIBE in progress");
        }
        result
    }

    async fn subscribe_remote_recorded(
        &self,
        user: &str,
        source: &DnsName,
        local: &DnsName,
        capability: Capability,
    ) -> Result<Subscription, ServiceError> {
        let remote = self
            .backends
            .peers
            .subscribe(source, &capability)
            .await
            .map_err(ServiceError::Peer)?;
        let subscription = remote_record(remote.copy.clone(), user, source, local, remote.source);
        if let Err(error) = self.start_and_record(&subscription).await {
            self.end_at_publisher(&subscription).await;
            return Err(error);
        }
        tracing::info!(subscription = %subscription.id, source = %source, %local, "subscribed to a flow of another FNAA");
        Ok(subscription)
    }

    /// Ends `subscription` at the publisher's FNAA, logging a failure (the
    /// publisher may then keep a copy flow nobody reads).
    async fn end_at_publisher(&self, subscription: &Subscription) {
        let Some(remote) = &subscription.remote else {
            return;
        };
        if let Err(error) = self
            .backends
            .peers
            .unsubscribe(remote, &subscription.id)
            .await
        {
            tracing::error!(subscription = %subscription.id, %error, "cannot end a subscription at the publisher's FNAA");
        }
    }

    /// The pipeline reading the copy flow at the publisher's broker and
    /// writing the local flow (none once revoked).
    pub(super) async fn start_remote(
        &self,
        subscription: &Subscription,
        remote: &RemoteSource,
    ) -> Result<(), ServiceError> {
        if remote.state != RemoteState::Active {
            return Ok(());
        }
        let Some(local) = &subscription.local else {
            return Err(ServiceError::Conflict(format!(
                "subscription {} has no local flow",
                subscription.id
            )));
        };
        let deliver = PipelineSpec {
            id: deliver_pipeline_id(&subscription.id),
            kind: PipelineKind::Bridge,
            inputs: vec![FlowEndpoint {
                flow: subscription.id.clone(),
                binding: remote.binding.clone(),
                remote: true,
                relay: (remote.mode == TransferMode::Relay).then(|| RelayPeer {
                    fnaa: remote.fnaa.clone(),
                    address: remote.address.clone(),
                    tls: remote.tls,
                    capability: remote.capability.clone(),
                }),
            }],
            outputs: vec![self.endpoint(local).await?],
        };
        self.backends
            .pipelines
            .start(&deliver, RunState::Running)
            .await
            .map_err(|e| provisioning("starting the subscription", e))
    }

    /// The subscriber's UNSUBSCRIBE: ends it at the publisher (unless the
    /// publisher did already), then here. When the publisher cannot be
    /// reached nothing changes and the reply says so.
    pub(super) async fn unsubscribe_remote(
        &self,
        principal: &Principal,
        subscription: Subscription,
    ) -> Result<(), ServiceError> {
        let allowed = match principal {
            Principal::Operator => true,
            Principal::User(user) => &subscription.subscriber == user,
            Principal::Anonymous(_) => false,
        };
        if !allowed {
            return Err(ServiceError::PermissionDenied(format!(
                "subscription {} belongs to another user",
                subscription.id
            )));
        }
        let Some(remote) = &subscription.remote else {
            return Ok(());
        };
        if remote.state == RemoteState::Active {
            self.backends
                .peers
                .unsubscribe(remote, &subscription.id)
                .await
                .map_err(ServiceError::Peer)?;
        }
        self.stop_subscription(&subscription).await;
        self.store
            .apply(Change::DeleteSubscription(subscription.id.clone()))
            .await?;
        Ok(())
    }

    /// Asks the publisher of every active remote subscription whether its
    /// copy flow still exists; those it ended are stopped here and marked
    /// `revoked`. The host runs it periodically. Returns how many were
    /// revoked.
    pub async fn check_remote_subscriptions(&self) -> Result<usize, ServiceError> {
        let mut revoked = 0;
        let subscriptions = self.store.subscriptions().await?;
        let capabilities_in_use: Vec<&Capability> = subscriptions
            .iter()
            .filter_map(|s| s.remote.as_ref())
            .filter(|r| r.state != RemoteState::Pending)
            .map(|r| &r.capability)
            .collect();
        for subscription in &subscriptions {
            let Some(remote) = &subscription.remote else {
                continue;
            };
            if remote.state != RemoteState::Pending || self.is_in_flight(&subscription.id) {
                continue;
            }
            if capabilities_in_use.contains(&&remote.capability) {
                // Killed after the subscription was recorded: it stands.
                if let Err(error) = self
                    .store
                    .apply(Change::DeleteSubscription(subscription.id.clone()))
                    .await
                {
                    tracing::error!(subscription = %subscription.id, %error, "cannot forget a finished SUBSCRIBE's pending record");
                }
            } else {
                self.abandon_pending(subscription, remote).await;
            }
        }
        for mut subscription in subscriptions {
            let Some(remote) = &subscription.remote else {
                continue;
            };
            if remote.state != RemoteState::Active {
                continue;
            }
            match self
                .backends
                .peers
                .copy_exists(remote, &subscription.id)
                .await
            {
                Ok(true) => {
                    self.set_peer_health(&subscription.id, None);
                    continue;
                }
                Ok(false) => self.set_peer_health(&subscription.id, None),
                // Unreachable or refusing for now: keep going, show it as
                // failing, ask again next time.
                Err(error) => {
                    self.set_peer_health(&subscription.id, Some(error.to_string()));
                    continue;
                }
            }
            tracing::warn!(subscription = %subscription.id, source = %subscription.source, "the publisher ended the subscription");
            self.stop_subscription(&subscription).await;
            if let Some(remote) = &mut subscription.remote {
                remote.state = RemoteState::Revoked {
                    since_unix: now_unix(),
                };
            }
            self.store
                .apply(Change::ReplaceSubscription(subscription))
                .await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// Remembers why the last check of `id` at the publisher failed
    /// (`None`: it succeeded). The alarm goes to the log when the check
    /// starts failing or its reason changes, and the all-clear when it
    /// succeeds again: one line per change, not one per check.
    fn set_peer_health(&self, id: &DnsName, failure: Option<String>) {
        let mut health = self
            .peer_health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failure {
            Some(reason) => {
                if health.get(id) != Some(&reason) {
                    tracing::warn!(subscription = %id, error = %reason, "alarm: cannot check a subscription at the publisher's FNAA; retrying");
                }
                health.insert(id.clone(), reason);
            }
            None => {
                if health.remove(id).is_some() {
                    tracing::info!(subscription = %id, "the publisher's FNAA answers again");
                }
            }
        }
    }

    /// Why the last check of `id` at the publisher failed, if it did.
    pub(super) fn peer_health(&self, id: &DnsName) -> Option<String> {
        self.peer_health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Ends at the publisher whatever an interrupted SUBSCRIBE made with
    /// `remote`'s capability, then forgets the pending record.
    async fn abandon_pending(&self, pending: &Subscription, remote: &RemoteSource) {
        match self
            .backends
            .peers
            .abandon(&pending.source, &remote.capability)
            .await
        {
            Ok(ended) => {
                tracing::warn!(source = %pending.source, ended, "ended what an interrupted SUBSCRIBE left at the publisher");
                if let Err(error) = self
                    .store
                    .apply(Change::DeleteSubscription(pending.id.clone()))
                    .await
                {
                    tracing::error!(subscription = %pending.id, %error, "cannot forget an interrupted SUBSCRIBE");
                }
            }
            Err(error) => {
                tracing::warn!(source = %pending.source, %error, "cannot end what an interrupted SUBSCRIBE left at the publisher; trying again later");
            }
        }
    }

    /// Marks a pending record as belonging to a SUBSCRIBE running now
    /// (`true`) or not any more.
    fn in_flight(&self, id: &DnsName, running: bool) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if running {
            in_flight.insert(id.clone());
        } else {
            in_flight.remove(id);
        }
    }

    fn is_in_flight(&self, id: &DnsName) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }
}
