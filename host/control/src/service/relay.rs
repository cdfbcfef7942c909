//! RELAY on the publisher's FNAA (docs/fnap.md 5.16): the subscriber of a
//! copy flow receives its events over FNAP instead of reading this host's
//! broker. Only the subscriber the copy was made for may relay it, and
//! only while the subscription lasts.

use crate::names::DnsName;
use crate::provision::CopyFeed;
use crate::store::TransferMode;

use super::flows::active;
use super::{Principal, Service, ServiceError, not_found, provisioning};

impl Service {
    /// How other FNAAs may take the events of copies of this host's flows.
    pub fn subscription_modes(&self) -> &[TransferMode] {
        &self.policy.subscription_modes
    }

    /// A reader of copy flow `copy` for `principal`'s relay session.
    pub async fn relay_copy(
        &self,
        principal: &Principal,
        copy: &DnsName,
    ) -> Result<CopyFeed, ServiceError> {
        if !self
            .policy
            .subscription_modes
            .contains(&TransferMode::Relay)
        {
            return Err(ServiceError::NotImplemented(
                "this FNAA relays no events ([fnap] subscription_modes leaves out relay); read the copy flow on its broker".into(),
            ));
        }
        let subscription = self
            .store
            .subscription(copy)
            .await?
            .filter(|s| !s.is_remote())
            .ok_or_else(|| not_found("subscription", copy))?;
        let allowed = match principal {
            Principal::Operator => true,
            Principal::User(user) => &subscription.subscriber == user,
            Principal::Anonymous(session) => subscription.subscriber == session.id,
        };
        if !allowed {
            return Err(ServiceError::PermissionDenied(format!(
                "subscription {copy} was made for another subscriber"
            )));
        }
        let flow = self.existing_flow(copy).await?;
        active(&flow)?;
        let Some(binding) = &flow.binding else {
            return Err(ServiceError::Conflict(format!(
                "copy flow {copy} has no queue"
            )));
        };
        self.backends
            .pipelines
            .read_copy(copy, binding)
            .await
            .map_err(|e| provisioning(&format!("reading copy flow {copy}"), e))
    }

    /// Whether subscription `copy` still stands, so its relay goes on.
    pub async fn relay_goes_on(&self, copy: &DnsName) -> Result<bool, ServiceError> {
        Ok(self.store.subscription(copy).await?.is_some())
    }
}
