//! The RPCs of the `Control` service, each one operation of the service.

use tonic::{Request, Response, Status};

use super::ControlApi;
use super::convert::{
    config_json, flow_pb, name, names, namespace_pb, plugin, processor_pb, status, subscription_pb,
    visibility,
};
use super::pb::{self, control_server::Control};
use crate::fnap::cmd::create::ProcessorSpec;
use crate::service::ProcessorView;
use crate::store::RunState;

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Control for ControlApi {
    async fn add_user(&self, request: Request<pb::AddUserRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        self.service
            .add_user(&principal, &request.name, &request.password)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn set_password(&self, request: Request<pb::SetPasswordRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        self.service
            .set_password(&principal, &request.name, &request.password)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn remove_user(&self, request: Request<pb::RemoveUserRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        self.service
            .remove_user(&principal, &request.into_inner().name)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_users(&self, request: Request<pb::Empty>) -> Reply<pb::ListUsersResponse> {
        let principal = self.principal(&request).await?;
        let users = self.service.list_users(&principal).await.map_err(status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users
                .into_iter()
                .map(|(name, namespaces)| pb::User {
                    name,
                    namespaces: namespaces.into_iter().map(String::from).collect(),
                })
                .collect(),
        }))
    }

    async fn create_namespace(
        &self,
        request: Request<pb::CreateNamespaceRequest>,
    ) -> Reply<pb::Namespace> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        let owner = (!request.owner.is_empty()).then_some(request.owner.as_str());
        let namespace = self
            .service
            .create_namespace(&principal, &name(&request.name)?, owner)
            .await
            .map_err(status)?;
        Ok(Response::new(namespace_pb(namespace)))
    }

    async fn delete_namespace(&self, request: Request<pb::NameRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        self.service
            .delete_namespace(&principal, &name(&request.into_inner().name)?)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_namespaces(
        &self,
        request: Request<pb::Empty>,
    ) -> Reply<pb::ListNamespacesResponse> {
        let principal = self.principal(&request).await?;
        let namespaces = self
            .service
            .list_namespaces(&principal)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListNamespacesResponse {
            namespaces: namespaces.into_iter().map(namespace_pb).collect(),
        }))
    }

    async fn create_flow(&self, request: Request<pb::CreateFlowRequest>) -> Reply<pb::Flow> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        let flow = self
            .service
            .create_flow(
                &principal,
                &name(&request.name)?,
                visibility(request.visibility),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(flow_pb(flow)))
    }

    async fn delete_flow(&self, request: Request<pb::NameRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        self.service
            .delete_flow(&principal, &name(&request.into_inner().name)?)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn describe_flow(&self, request: Request<pb::NameRequest>) -> Reply<pb::Flow> {
        let principal = self.principal(&request).await?;
        let flow = self
            .service
            .describe_flow(&principal, &name(&request.into_inner().name)?)
            .await
            .map_err(status)?;
        Ok(Response::new(flow_pb(flow)))
    }

    async fn list_flows(
        &self,
        request: Request<pb::ListFlowsRequest>,
    ) -> Reply<pb::ListFlowsResponse> {
        let principal = self.principal(&request).await?;
        let namespace = request.into_inner().namespace;
        let namespace = if namespace.is_empty() {
            None
        } else {
            Some(name(&namespace)?)
        };
        let flows = self
            .service
            .list_flows(&principal, namespace.as_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListFlowsResponse {
            flows: flows.into_iter().map(flow_pb).collect(),
        }))
    }

    async fn set_flow_visibility(
        &self,
        request: Request<pb::SetFlowVisibilityRequest>,
    ) -> Reply<pb::Flow> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        let flow = self
            .service
            .set_visibility(
                &principal,
                &name(&request.name)?,
                visibility(request.visibility),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(flow_pb(flow)))
    }

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Reply<pb::Subscription> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        let local = if request.local.is_empty() {
            None
        } else {
            Some(name(&request.local)?)
        };
        let subscription = self
            .service
            .subscribe(&principal, &name(&request.source)?, local.as_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(subscription_pb(subscription)))
    }

    async fn unsubscribe(&self, request: Request<pb::NameRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        self.service
            .unsubscribe(&principal, &name(&request.into_inner().name)?)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::Empty>,
    ) -> Reply<pb::ListSubscriptionsResponse> {
        let principal = self.principal(&request).await?;
        let subscriptions = self
            .service
            .list_subscriptions(&principal)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: subscriptions.into_iter().map(subscription_pb).collect(),
        }))
    }

    async fn create_processor(
        &self,
        request: Request<pb::CreateProcessorRequest>,
    ) -> Reply<pb::Processor> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        let spec = ProcessorSpec {
            name: name(&request.name)?,
            plugin: plugin(&request.plugin, &request.plugin_version)
                .ok_or_else(|| Status::invalid_argument("plugin is required"))?,
            inputs: names(&request.inputs)?,
            outputs: names(&request.outputs)?,
            config: config_json(&request.config_json)?
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
        };
        if spec.inputs.is_empty() || spec.outputs.is_empty() {
            return Err(Status::invalid_argument(
                "a processor needs inputs and outputs",
            ));
        }
        let processor = self
            .service
            .create_processor(&principal, spec)
            .await
            .map_err(status)?;
        Ok(Response::new(processor_pb(processor, None)))
    }

    async fn update_processor(
        &self,
        request: Request<pb::UpdateProcessorRequest>,
    ) -> Reply<pb::Processor> {
        let principal = self.principal(&request).await?;
        let request = request.into_inner();
        let plugin = plugin(&request.plugin, &request.plugin_version);
        let config = config_json(&request.config_json)?;
        if plugin.is_none() && config.is_none() {
            return Err(Status::invalid_argument(
                "nothing to update: give plugin, config_json or both",
            ));
        }
        let processor = self
            .service
            .update_processor(&principal, &name(&request.name)?, plugin, config)
            .await
            .map_err(status)?;
        Ok(Response::new(processor_pb(processor, None)))
    }

    async fn delete_processor(&self, request: Request<pb::NameRequest>) -> Reply<pb::Empty> {
        let principal = self.principal(&request).await?;
        self.service
            .delete_processor(&principal, &name(&request.into_inner().name)?)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn pause_processor(&self, request: Request<pb::NameRequest>) -> Reply<pb::Processor> {
        let principal = self.principal(&request).await?;
        let processor = self
            .service
            .set_processor_state(
                &principal,
                &name(&request.into_inner().name)?,
                RunState::Paused,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(processor_pb(processor, None)))
    }

    async fn resume_processor(&self, request: Request<pb::NameRequest>) -> Reply<pb::Processor> {
        let principal = self.principal(&request).await?;
        let processor = self
            .service
            .set_processor_state(
                &principal,
                &name(&request.into_inner().name)?,
                RunState::Running,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(processor_pb(processor, None)))
    }

    async fn describe_processor(&self, request: Request<pb::NameRequest>) -> Reply<pb::Processor> {
        let principal = self.principal(&request).await?;
        let ProcessorView {
            processor,
            status: live,
        } = self
            .service
            .describe_processor(&principal, &name(&request.into_inner().name)?)
            .await
            .map_err(status)?;
        Ok(Response::new(processor_pb(processor, live)))
    }

    async fn list_processors(
        &self,
        request: Request<pb::Empty>,
    ) -> Reply<pb::ListProcessorsResponse> {
        let principal = self.principal(&request).await?;
        let processors = self
            .service
            .list_processors(&principal)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListProcessorsResponse {
            processors: processors
                .into_iter()
                .map(|p| processor_pb(p, None))
                .collect(),
        }))
    }
}
