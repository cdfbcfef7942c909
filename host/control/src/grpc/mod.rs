//! The gRPC admin API (`proto/fnaa_control.proto`): the service's
//! operations for operators and orchestrators, with FNAP's authorization,
//! FNAP's throttling of failed logins and, with `[grpc.tls]`, over TLS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::config::GrpcConfig;
use crate::fnap::cmd::create::ProcessorSpec;
use crate::names::DnsName;
use crate::server::throttle::LoginThrottle;
use crate::service::{Principal, ProcessorView, Service, ServiceError};
use crate::store::{Flow, Namespace, PluginRef, Processor, RunState, Subscription, Visibility};

/// The generated messages, server and client.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("fnaa.control.v1");
}

use pb::control_server::{Control, ControlServer};

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound gRPC server.
pub struct GrpcServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    api: ControlApi,
}

impl GrpcServer {
    /// Reads the operator token and the TLS identity of `[grpc.tls]` and
    /// binds `[grpc] listen`. Failed logins are counted in `throttle`,
    /// which the FNAP server shares.
    pub(crate) async fn bind(
        config: &GrpcConfig,
        service: Arc<Service>,
        throttle: Arc<LoginThrottle>,
    ) -> Result<GrpcServer, String> {
        let address = config.listen.ok_or("[grpc] listen is not set")?;
        let admin_token = match &config.admin_token_file {
            Some(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let token = token.trim().to_owned();
                if token.len() < 16 {
                    return Err(format!(
                        "the operator token in {} is shorter than 16 characters",
                        path.display()
                    ));
                }
                Some(token)
            }
            None => None,
        };
        let tls = match &config.tls {
            Some(files) => {
                let mut tls = crate::server::tls::load_server_config(files)
                    .map_err(|e| format!("[grpc.tls]: {e}"))?;
                tls.alpn_protocols = vec![b"h2".to_vec()];
                Some(TlsAcceptor::from(Arc::new(tls)))
            }
            None => {
                tracing::warn!(
                    %address,
                    "gRPC API without TLS: tokens and passwords cross the network in clear text"
                );
                None
            }
        };
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(GrpcServer {
            listener,
            tls,
            api: ControlApi {
                service,
                admin_token,
                throttle,
            },
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let router = tonic::transport::Server::builder().add_service(ControlServer::new(self.api));
        let served = match self.tls {
            Some(acceptor) => {
                let incoming = tls_incoming(self.listener, acceptor, shutdown.clone());
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
            None => {
                let incoming = TcpListenerStream::new(self.listener);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
        };
        if let Err(error) = served {
            tracing::error!(%error, "gRPC server failed");
        }
    }
}

/// The connections of `listener` once their TLS handshake is done; each
/// handshake runs in a task of its own so that a slow or silent client
/// holds up no other. Ends on `shutdown` or when the server stops reading.
fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                () = sender.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "gRPC TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(%peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

struct ControlApi {
    service: Arc<Service>,
    admin_token: Option<String>,
    throttle: Arc<LoginThrottle>,
}

fn status(error: ServiceError) -> Status {
    let text = match &error {
        ServiceError::Store(detail) => {
            tracing::error!(%detail, "state store failure");
            "local error in processing, try again later".to_owned()
        }
        other => other.to_string(),
    };
    match error {
        ServiceError::InvalidName(_) | ServiceError::InvalidArgument(_) => {
            Status::invalid_argument(text)
        }
        ServiceError::NotFound { .. } => Status::not_found(text),
        ServiceError::AlreadyExists { .. } => Status::already_exists(text),
        ServiceError::PermissionDenied(_) => Status::permission_denied(text),
        ServiceError::Conflict(_) => Status::failed_precondition(text),
        ServiceError::Busy(_) | ServiceError::Provisioning(_) | ServiceError::Store(_) => {
            Status::unavailable(text)
        }
        ServiceError::NotImplemented(_) => Status::unimplemented(text),
        ServiceError::AuthenticationFailed => Status::unauthenticated(text),
    }
}

fn name(text: &str) -> Result<DnsName, Status> {
    DnsName::parse(text)
        .map_err(|e| Status::invalid_argument(format!("invalid name `{text}`: {e}")))
}

fn names(texts: &[String]) -> Result<Vec<DnsName>, Status> {
    texts.iter().map(|t| name(t)).collect()
}

fn visibility(value: i32) -> Visibility {
    if value == pb::Visibility::Public as i32 {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

fn config_json(text: &str) -> Result<Option<serde_json::Value>, Status> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        _ => Err(Status::invalid_argument(
            "config_json must be a JSON object",
        )),
    }
}

fn plugin(name: &str, version: &str) -> Option<PluginRef> {
    (!name.is_empty()).then(|| PluginRef {
        name: name.to_owned(),
        version: (!version.is_empty()).then(|| version.to_owned()),
    })
}

fn flow_pb(flow: Flow) -> pb::Flow {
    let binding = flow.binding.unwrap_or_else(|| crate::store::BrokerBinding {
        broker_type: String::new(),
        topic: String::new(),
        servers: Vec::new(),
        tls: false,
    });
    pb::Flow {
        name: flow.name.into(),
        namespace: flow.namespace.into(),
        owner: flow.owner,
        visibility: match flow.visibility {
            Visibility::Public => pb::Visibility::Public as i32,
            Visibility::Private => pb::Visibility::Private as i32,
        },
        broker_type: binding.broker_type,
        topic: binding.topic,
        servers: binding.servers,
        tls: binding.tls,
        copy_of: flow.copy_of.map(String::from).unwrap_or_default(),
    }
}

fn namespace_pb(namespace: Namespace) -> pb::Namespace {
    pb::Namespace {
        name: namespace.name.into(),
        owner: namespace.owner,
    }
}

fn subscription_pb(subscription: Subscription) -> pb::Subscription {
    pb::Subscription {
        id: subscription.id.into(),
        source: subscription.source.into(),
        local: subscription.local.map(String::from).unwrap_or_default(),
        subscriber: subscription.subscriber,
    }
}

fn processor_pb(
    processor: Processor,
    status: Option<crate::provision::PipelineStatus>,
) -> pb::Processor {
    let (status, status_detail) = status.map(|s| (s.state, s.detail)).unwrap_or_default();
    pb::Processor {
        name: processor.name.into(),
        owner: processor.owner,
        plugin: processor.plugin.name,
        plugin_version: processor.plugin.version.unwrap_or_default(),
        inputs: processor.inputs.into_iter().map(String::from).collect(),
        outputs: processor.outputs.into_iter().map(String::from).collect(),
        config_json: processor.config.to_string(),
        state: processor.state.as_str().to_owned(),
        status,
        status_detail,
    }
}

impl ControlApi {
    /// The caller, from the `authorization` metadata. Credentials are
    /// checked with FNAP's throttling of failed logins per address.
    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization metadata"))?
            .to_str()
            .map_err(|_| Status::unauthenticated("malformed authorization metadata"))?;
        let peer = request.remote_addr().map(|address| address.ip());
        if let Some(token) = header.strip_prefix("Bearer ") {
            self.refuse_if_throttled(peer)?;
            return match &self.admin_token {
                Some(expected)
                    if bool::from(expected.as_bytes().ct_eq(token.trim().as_bytes())) =>
                {
                    Ok(Principal::Operator)
                }
                _ => Err(self
                    .login_failed(peer, "Bearer", "invalid operator token")
                    .await),
            };
        }
        if let Some(encoded) = header.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
            let (user, password) = text
                .split_once(':')
                .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
            self.refuse_if_throttled(peer)?;
            return match self.service.authenticate_password(user, password).await {
                Ok(principal) => Ok(principal),
                Err(error @ ServiceError::AuthenticationFailed) => {
                    Err(self.login_failed(peer, "Basic", &error.to_string()).await)
                }
                Err(error) => Err(status(error)),
            };
        }
        Err(Status::unauthenticated(
            "authorization must be Bearer or Basic",
        ))
    }

    /// `resource_exhausted` while `peer` has failed too often.
    fn refuse_if_throttled(&self, peer: Option<IpAddr>) -> Result<(), Status> {
        match peer {
            Some(address) if self.throttle.is_blocked(address) => Err(Status::resource_exhausted(
                "too many failed logins from your address, try again later",
            )),
            _ => Ok(()),
        }
    }

    /// Counts a failed login, waits `login_failure_delay_ms` and says
    /// `unauthenticated`.
    async fn login_failed(&self, peer: Option<IpAddr>, scheme: &str, text: &str) -> Status {
        tracing::info!(peer = ?peer, scheme, "failed gRPC login");
        if let Some(address) = peer {
            self.throttle.record_failure(address);
        }
        tokio::time::sleep(self.throttle.failure_delay()).await;
        Status::unauthenticated(text)
    }
}

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
