//! Start-up recovery: what a restart finds half-done is finished or
//! undone, and every pipeline is started again.

use crate::store::{Change, FlowState};

use super::{Service, ServiceError, provisioning};

/// What [`Service::recover`] did at start-up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Flows whose creation or deletion was interrupted and was undone or
    /// finished.
    pub flows_cleaned: usize,
    /// Pipelines started again.
    pub pipelines_started: usize,
    /// Pipelines that failed to start (logged).
    pub pipelines_failed: usize,
}

impl Service {
    /// Run once at start-up: finishes or undoes flows interrupted half-way,
    /// and starts the pipelines of every subscription and processor again.
    pub async fn recover(&self) -> Result<Recovery, ServiceError> {
        let mut report = Recovery::default();
        for flow in self.store.flows(None).await? {
            if flow.state == FlowState::Active {
                continue;
            }
            tracing::warn!(flow = %flow.name, state = ?flow.state, "cleaning up a flow interrupted half-way");
            self.withdraw_quietly(&flow.name).await;
            self.delete_queue_quietly(&flow.name, flow.binding.as_ref())
                .await;
            match self
                .store
                .apply(Change::DeleteFlow(flow.name.clone()))
                .await
            {
                Ok(()) => report.flows_cleaned += 1,
                Err(error) => {
                    tracing::error!(flow = %flow.name, %error, "cannot remove an interrupted flow")
                }
            }
        }
        for subscription in self.store.subscriptions().await? {
            match self.start_subscription(&subscription).await {
                Ok(()) => report.pipelines_started += 1,
                Err(error) => {
                    report.pipelines_failed += 1;
                    tracing::error!(subscription = %subscription.id, %error, "cannot restart a subscription");
                }
            }
        }
        for processor in self.store.processors().await? {
            let started = match self.processor_spec(&processor).await {
                Ok(spec) => self
                    .backends
                    .pipelines
                    .start(&spec, processor.state)
                    .await
                    .map_err(|e| provisioning("starting", e)),
                Err(error) => Err(error),
            };
            match started {
                Ok(()) => report.pipelines_started += 1,
                Err(error) => {
                    report.pipelines_failed += 1;
                    tracing::error!(processor = %processor.name, %error, "cannot restart a processor");
                }
            }
        }
        Ok(report)
    }
}
