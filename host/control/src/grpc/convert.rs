//! Conversions between the service's types and the protobuf messages,
//! and of every [`ServiceError`] to its gRPC status in one place.

use tonic::Status;

use super::pb;
use crate::names::DnsName;
use crate::service::ServiceError;
use crate::store::{Flow, Namespace, PluginRef, Processor, Subscription, Visibility};

pub(super) fn status(error: ServiceError) -> Status {
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
        ServiceError::QuotaExceeded(_) => Status::resource_exhausted(text),
        ServiceError::Peer(crate::provision::PeerError::Unavailable { .. }) => {
            Status::unavailable(text)
        }
        ServiceError::Peer(_) => Status::failed_precondition(text),
        ServiceError::AuthenticationFailed => Status::unauthenticated(text),
    }
}

pub(super) fn name(text: &str) -> Result<DnsName, Status> {
    DnsName::parse(text)
        .map_err(|e| Status::invalid_argument(format!("invalid name `{text}`: {e}")))
}

pub(super) fn names(texts: &[String]) -> Result<Vec<DnsName>, Status> {
    texts.iter().map(|t| name(t)).collect()
}

pub(super) fn visibility(value: i32) -> Visibility {
    if value == pb::Visibility::Public as i32 {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

pub(super) fn config_json(text: &str) -> Result<Option<serde_json::Value>, Status> {
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

pub(super) fn plugin(name: &str, version: &str) -> Option<PluginRef> {
    (!name.is_empty()).then(|| PluginRef {
        name: name.to_owned(),
        version: (!version.is_empty()).then(|| version.to_owned()),
    })
}

pub fn flow_pb(flow: Flow) -> pb::Flow {
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

pub(super) fn namespace_pb(namespace: Namespace) -> pb::Namespace {
    pb::Namespace {
        name: namespace.name.into(),
        owner: namespace.owner,
    }
}

pub fn subscription_pb(subscription: Subscription) -> pb::Subscription {
    let (fnaa, state) = match &subscription.remote {
        Some(remote) => (remote.fnaa.clone(), remote.state.as_str().to_owned()),
        None => (String::new(), String::new()),
    };
    pb::Subscription {
        id: subscription.id.into(),
        source: subscription.source.into(),
        local: subscription.local.map(String::from).unwrap_or_default(),
        subscriber: subscription.subscriber,
        fnaa,
        state,
    }
}

pub fn processor_pb(
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
