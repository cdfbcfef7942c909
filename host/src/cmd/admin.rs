//! How the operator commands (`fnaa user`, `fnaa flows`, `fnaa processors`,
//! `fnaa subscriptions`) reach the host's state: the running host through
//! its admin socket (`[grpc] socket`), else the store file, which only one
//! process may open.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use fnaa_control::grpc::pb::{self, control_client::ControlClient};
use fnaa_control::names::DnsName;
use fnaa_control::service::{Backends, Principal, Service, ServicePolicy};
use fnaa_control::store::RedbStore;
use tonic::transport::Channel;

use crate::config::Config;

/// The host's state, running or stopped.
pub enum Admin {
    /// A running host, through its admin socket (as the operator).
    Host(ControlClient<Channel>),
    /// The store file of a stopped host.
    Store(Box<Service>),
}

/// A gRPC error as the text the user reads.
fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

impl Admin {
    /// The running host of the configuration at `config` (or the default
    /// one) when one answers on its socket, else its store file.
    pub async fn open(config: Option<&Path>) -> anyhow::Result<Admin> {
        let config = match config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        }
        .control();
        if let Some(socket) = config.admin_socket()
            && let Some(client) = fnaa_control::grpc::socket::connect(&socket).await?
        {
            tracing::debug!(socket = %socket.display(), "talking to the running host");
            return Ok(Admin::Host(client));
        }
        let store = RedbStore::open(&config.store.path).with_context(|| {
            format!(
                "cannot open the store {} (a host running with another [grpc] socket holds it?)",
                config.store.path.display()
            )
        })?;
        let policy = ServicePolicy::from_config(&config);
        Ok(Admin::Store(Box::new(Service::new(
            Arc::new(store),
            Backends::offline(),
            policy,
        ))))
    }

    pub async fn add_user(&mut self, name: &str, password: &str) -> anyhow::Result<()> {
        match self {
            Admin::Host(client) => {
                let request = pb::AddUserRequest {
                    name: name.to_owned(),
                    password: password.to_owned(),
                };
                client.add_user(request).await.map_err(refused)?;
            }
            Admin::Store(service) => {
                service
                    .add_user(&Principal::Operator, name, password)
                    .await?
            }
        }
        Ok(())
    }

    pub async fn set_password(&mut self, name: &str, password: &str) -> anyhow::Result<()> {
        match self {
            Admin::Host(client) => {
                let request = pb::SetPasswordRequest {
                    name: name.to_owned(),
                    password: password.to_owned(),
                };
                client.set_password(request).await.map_err(refused)?;
            }
            Admin::Store(service) => {
                service
                    .set_password(&Principal::Operator, name, password)
                    .await?
            }
        }
        Ok(())
    }

    pub async fn remove_user(&mut self, name: &str) -> anyhow::Result<()> {
        match self {
            Admin::Host(client) => {
                let request = pb::RemoveUserRequest {
                    name: name.to_owned(),
                };
                client.remove_user(request).await.map_err(refused)?;
            }
            Admin::Store(service) => service.remove_user(&Principal::Operator, name).await?,
        }
        Ok(())
    }

    /// Accounts and the namespaces each owns.
    pub async fn list_users(&mut self) -> anyhow::Result<Vec<pb::User>> {
        Ok(match self {
            Admin::Host(client) => {
                client
                    .list_users(pb::Empty {})
                    .await
                    .map_err(refused)?
                    .into_inner()
                    .users
            }
            Admin::Store(service) => service
                .list_users(&Principal::Operator)
                .await?
                .into_iter()
                .map(|(name, namespaces)| pb::User {
                    name,
                    namespaces: namespaces.into_iter().map(String::from).collect(),
                })
                .collect(),
        })
    }

    pub async fn create_namespace(&mut self, name: &DnsName, owner: &str) -> anyhow::Result<()> {
        match self {
            Admin::Host(client) => {
                let request = pb::CreateNamespaceRequest {
                    name: name.to_string(),
                    owner: owner.to_owned(),
                };
                client.create_namespace(request).await.map_err(refused)?;
            }
            Admin::Store(service) => {
                service
                    .create_namespace(&Principal::Operator, name, Some(owner))
                    .await?;
            }
        }
        Ok(())
    }

    /// Every flow, or those of `namespace`.
    pub async fn list_flows(
        &mut self,
        namespace: Option<&DnsName>,
    ) -> anyhow::Result<Vec<pb::Flow>> {
        Ok(match self {
            Admin::Host(client) => {
                let request = pb::ListFlowsRequest {
                    namespace: namespace.map(DnsName::to_string).unwrap_or_default(),
                };
                client
                    .list_flows(request)
                    .await
                    .map_err(refused)?
                    .into_inner()
                    .flows
            }
            Admin::Store(service) => service
                .list_flows(&Principal::Operator, namespace)
                .await?
                .into_iter()
                .map(fnaa_control::grpc::flow_pb)
                .collect(),
        })
    }

    /// Every processor instance; with a running host, with its status.
    pub async fn list_processors(&mut self) -> anyhow::Result<Vec<pb::Processor>> {
        Ok(match self {
            Admin::Host(client) => {
                let names: Vec<String> = client
                    .list_processors(pb::Empty {})
                    .await
                    .map_err(refused)?
                    .into_inner()
                    .processors
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                let mut described = Vec::with_capacity(names.len());
                for name in names {
                    let request = pb::NameRequest { name };
                    described.push(
                        client
                            .describe_processor(request)
                            .await
                            .map_err(refused)?
                            .into_inner(),
                    );
                }
                described
            }
            Admin::Store(service) => service
                .list_processors(&Principal::Operator)
                .await?
                .into_iter()
                .map(|p| fnaa_control::grpc::processor_pb(p, None))
                .collect(),
        })
    }

    /// Every subscription.
    pub async fn list_subscriptions(&mut self) -> anyhow::Result<Vec<pb::Subscription>> {
        Ok(match self {
            Admin::Host(client) => {
                client
                    .list_subscriptions(pb::Empty {})
                    .await
                    .map_err(refused)?
                    .into_inner()
                    .subscriptions
            }
            Admin::Store(service) => service
                .list_subscriptions(&Principal::Operator)
                .await?
                .into_iter()
                .map(fnaa_control::grpc::subscription_pb)
                .collect(),
        })
    }
}
