//! Processors: plugin instances reading and writing flows, each run as a
//! pipeline.

use crate::fnap::cmd::create::ProcessorSpec;
use crate::names::DnsName;
use crate::provision::{PipelineKind, PipelineSpec, PipelineStatus};
use crate::store::{Change, PluginRef, Processor, RunState, now_unix};

use super::authz::{anonymous_denied, authorize_owner, authorize_read};
use super::{Principal, Service, ServiceError, not_found, provisioning};

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
    pub(super) async fn processor_spec(
        &self,
        processor: &Processor,
    ) -> Result<PipelineSpec, ServiceError> {
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
            Principal::Anonymous(_) => Err(anonymous_denied()),
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
            for input in &spec.inputs {
                if self.feeds(output, input).await? {
                    return Err(ServiceError::Conflict(format!(
                        "the output {output} feeds the input {input}: the processor would loop"
                    )));
                }
            }
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
        if matches!(principal, Principal::Anonymous(_)) {
            return Err(anonymous_denied());
        }
        let mut processors = self.store.processors().await?;
        processors.retain(|p| match principal {
            Principal::Operator => true,
            Principal::User(user) => &p.owner == user,
            Principal::Anonymous(_) => false,
        });
        Ok(processors)
    }
}
