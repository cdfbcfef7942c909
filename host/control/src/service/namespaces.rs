//! Namespaces: the zones a user owns and creates flows and processors in.

use crate::names::DnsName;
use crate::store::{Change, Namespace, now_unix};

use super::authz::{anonymous_denied, authorize_namespace};
use super::{Principal, Service, ServiceError, not_found};

impl Service {
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
    pub(super) async fn owned_namespace_of(
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
                // A bare word is the usual first mistake: say how names go.
                name: format!(
                    "for {name} on this host (flows and processors are named inside a namespace you own: {}.<namespace>)",
                    name.as_str().split('.').next().unwrap_or(name.as_str())
                ),
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
        crate::names::check_namespace(name)?;
        let owner = match principal {
            Principal::Operator => owner
                .ok_or_else(|| {
                    ServiceError::InvalidArgument("the operator must name the owner".into())
                })?
                .to_owned(),
            Principal::Anonymous(_) => return Err(anonymous_denied()),
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
        if matches!(principal, Principal::Anonymous(_)) {
            // Owning nothing is not the same as having nothing: say so.
            return Err(anonymous_denied());
        }
        let mut namespaces = self.store.namespaces().await?;
        namespaces.retain(|ns| match principal {
            Principal::Operator => true,
            Principal::User(user) => &ns.owner == user,
            Principal::Anonymous(_) => false,
        });
        Ok(namespaces)
    }
}
