//! What the control plane asks of the rest of the host. The `fnaa` binary
//! implements these traits with the real brokers (fnaa-dataplane) and DNS
//! (fnaa-fns); [`memory`] has in-memory versions for tests and for a host
//! run without them.

use std::collections::BTreeMap;

use crate::names::DnsName;
use crate::store::{BrokerBinding, Capability, PluginRef, RemoteSource, RunState};

/// A provisioning failure; the text is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(pub String);

/// Creates and removes the broker queue behind a flow (a Kafka topic, an
/// MQTT topic, an AMQP exchange).
#[async_trait::async_trait]
pub trait FlowProvisioner: Send + Sync + 'static {
    /// Creates the queue of `flow` and says how to reach it. Creating a
    /// queue that already exists succeeds (the host may retry after a
    /// crash).
    async fn create_queue(&self, flow: &DnsName) -> Result<BrokerBinding, ProvisionError>;
    /// Removes the queue. Removing a missing queue succeeds.
    async fn delete_queue(
        &self,
        flow: &DnsName,
        binding: Option<&BrokerBinding>,
    ) -> Result<(), ProvisionError>;
}

/// Publishes and withdraws the DNS records of a flow (thesis annex B).
#[async_trait::async_trait]
pub trait FlowDirectory: Send + Sync + 'static {
    /// Publishes (or replaces) the records of `flow`.
    async fn publish(&self, flow: &DnsName, binding: &BrokerBinding) -> Result<(), ProvisionError>;
    /// Withdraws them. Withdrawing missing records succeeds.
    async fn withdraw(&self, flow: &DnsName) -> Result<(), ProvisionError>;
}

/// A flow as a pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEndpoint {
    pub flow: DnsName,
    pub binding: BrokerBinding,
    /// Whether the flow lives on another organisation's broker (the copy
    /// flow of a remote subscription read in direct mode): it is reached
    /// with nothing of this host's broker credentials.
    pub remote: bool,
    /// For a copy flow read by relay: the publisher's FNAA that sends its
    /// events (its broker is then not reached at all).
    pub relay: Option<RelayPeer>,
}

/// Why another organisation's FNAA could not be used. Each names the step
/// that failed, so that the user knows whom to ask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// DNS names no FNAA for the flow (no PTR/SRV records, NXDOMAIN).
    #[error("no FNAA found for {flow} in DNS: {reason}")]
    NoFnaa { flow: String, reason: String },
    /// A step failed in a way that may pass: DNS timeout, connection
    /// refused, TLS handshake, no answer in time, a `4xx` reply.
    #[error("{step} failed: {reason}")]
    Unavailable { step: String, reason: String },
    /// The FNAA refused for good: a `5xx` reply (login refused, no such
    /// flow, permission denied).
    #[error("{fnaa} refused {step}: {code} {text}")]
    Refused {
        fnaa: String,
        step: String,
        code: u16,
        text: String,
    },
    /// The FNAA answered something this host cannot use (an invalid copy
    /// name, a description without broker details).
    #[error("{fnaa} answered {step} with {what}")]
    Invalid {
        fnaa: String,
        step: String,
        what: String,
    },
}

/// What the publisher's FNAA answered a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCopy {
    /// The copy flow made for this subscription.
    pub copy: DnsName,
    /// Where that FNAA is, how to read the copy, and the capability that
    /// made it.
    pub source: RemoteSource,
}

/// Other organisations' FNAAs, found through DNS (thesis 7.4.3): this host
/// subscribes there on behalf of its users, each subscription with its own
/// capability (an anonymous session identity only this host knows).
#[async_trait::async_trait]
pub trait Peers: Send + Sync + 'static {
    /// Finds the FNAA of `flow`, logs in with `capability`, sends
    /// `SUBSCRIBE <flow>` and describes the copy flow it answered.
    async fn subscribe(
        &self,
        flow: &DnsName,
        capability: &Capability,
    ) -> Result<RemoteCopy, PeerError>;
    /// Ends the subscription `copy` at the FNAA in `source`, with its
    /// capability. Ending one that is already gone succeeds.
    async fn unsubscribe(&self, source: &RemoteSource, copy: &DnsName) -> Result<(), PeerError>;
    /// Ends, at the FNAA of `flow`, every subscription `capability` holds
    /// there (what a SUBSCRIBE interrupted by a crash may have left);
    /// returns how many.
    async fn abandon(&self, flow: &DnsName, capability: &Capability) -> Result<usize, PeerError>;
    /// Whether the copy flow still exists there (false: the publisher
    /// revoked the subscription).
    async fn copy_exists(&self, source: &RemoteSource, copy: &DnsName) -> Result<bool, PeerError>;
}

/// What a pipeline does with its input events.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineKind {
    /// Copies every event unchanged (subscriptions: the bridge processor of
    /// thesis 4.1.4).
    Bridge,
    /// Runs a plugin with its configuration.
    Plugin {
        plugin: PluginRef,
        config: serde_json::Value,
    },
}

/// A pipeline to run: inputs, what to do, outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    /// Stable identifier: `subscription/<copy flow>/publish`,
    /// `subscription/<copy flow>/deliver` or `processor/<name>`.
    pub id: String,
    pub kind: PipelineKind,
    pub inputs: Vec<FlowEndpoint>,
    pub outputs: Vec<FlowEndpoint>,
}

/// The state of a pipeline as its runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineStatus {
    /// `running`, `paused`, `failed`, `starting`, ...
    pub state: String,
    /// A human-readable detail (last error, events processed), may be empty.
    pub detail: String,
}

/// Runs the pipelines behind subscriptions and processor instances.
#[async_trait::async_trait]
pub trait PipelineController: Send + Sync + 'static {
    /// Starts a pipeline, in `state`. Starting one that runs with the same
    /// spec succeeds.
    async fn start(&self, spec: &PipelineSpec, state: RunState) -> Result<(), ProvisionError>;
    /// Replaces the spec of a running pipeline (configuration or plugin
    /// version), keeping its position in the input flows.
    async fn update(&self, spec: &PipelineSpec) -> Result<(), ProvisionError>;
    /// Stops and forgets a pipeline. Stopping a missing one succeeds.
    async fn stop(&self, id: &str) -> Result<(), ProvisionError>;
    async fn pause(&self, id: &str) -> Result<(), ProvisionError>;
    async fn resume(&self, id: &str) -> Result<(), ProvisionError>;
    /// The pipeline's status, `None` when it is not known.
    async fn status(&self, id: &str) -> Result<Option<PipelineStatus>, ProvisionError>;

    /// Reads copy flow `copy` (queue `binding`) for a relay session, at
    /// least once: what a session did not acknowledge is read again by
    /// the next, since they share the consumer state named after `copy`.
    async fn read_copy(
        &self,
        copy: &DnsName,
        _binding: &BrokerBinding,
    ) -> Result<CopyFeed, ProvisionError> {
        Err(ProvisionError(format!(
            "{copy} cannot be relayed: this host relays no events"
        )))
    }

    /// Removes the consumer state relay sessions of `copy` kept; succeeds
    /// when there is none.
    async fn forget_copy_reader(
        &self,
        _copy: &DnsName,
        _binding: &BrokerBinding,
    ) -> Result<(), ProvisionError> {
        Ok(())
    }
}

pub mod memory {
    //! In-memory provisioner, directory and pipeline controller. They
    //! record what they were asked and fail on request, for tests; the
    //! provisioner hands out bindings to one configured broker, so a host
    //! can run FNAP before its brokers are wired.

    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use super::*;

    /// Locks a mutex, recovering from poisoning (the maps stay valid).
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues on an imaginary broker.
    #[derive(Debug)]
    pub struct MemoryProvisioner {
        broker_type: String,
        servers: Vec<String>,
        queues: Mutex<BTreeSet<DnsName>>,
        fail_create: Mutex<Option<String>>,
        fail_delete: Mutex<Option<String>>,
    }

    impl MemoryProvisioner {
        /// Bindings say `broker_type` (e.g. `kafka`) at `servers`.
        pub fn new(broker_type: &str, servers: &[&str]) -> MemoryProvisioner {
            MemoryProvisioner {
                broker_type: broker_type.to_owned(),
                servers: servers.iter().map(|s| (*s).to_owned()).collect(),
                queues: Mutex::default(),
                fail_create: Mutex::default(),
                fail_delete: Mutex::default(),
            }
        }
        /// The queues that exist now.
        pub fn queues(&self) -> Vec<DnsName> {
            lock(&self.queues).iter().cloned().collect()
        }
        /// Makes every `create_queue` fail with `reason` (`None`: succeed).
        pub fn fail_create(&self, reason: Option<&str>) {
            *lock(&self.fail_create) = reason.map(str::to_owned);
        }
        /// Makes every `delete_queue` fail with `reason` (`None`: succeed).
        pub fn fail_delete(&self, reason: Option<&str>) {
            *lock(&self.fail_delete) = reason.map(str::to_owned);
        }
    }

    #[async_trait::async_trait]
    impl FlowProvisioner for MemoryProvisioner {
        async fn create_queue(&self, flow: &DnsName) -> Result<BrokerBinding, ProvisionError> {
            if let Some(reason) = lock(&self.fail_create).clone() {
                return Err(ProvisionError(reason));
            }
            lock(&self.queues).insert(flow.clone());
            Ok(BrokerBinding {
                broker_type: self.broker_type.clone(),
                topic: flow.to_string(),
                servers: self.servers.clone(),
                tls: false,
            })
        }
        async fn delete_queue(
            &self,
            flow: &DnsName,
            _binding: Option<&BrokerBinding>,
        ) -> Result<(), ProvisionError> {
            if let Some(reason) = lock(&self.fail_delete).clone() {
                return Err(ProvisionError(reason));
            }
            lock(&self.queues).remove(flow);
            Ok(())
        }
    }

    /// DNS records in a map.
    #[derive(Debug, Default)]
    pub struct MemoryDirectory {
        records: Mutex<BTreeMap<DnsName, BrokerBinding>>,
        fail_publish: Mutex<Option<String>>,
    }

    impl MemoryDirectory {
        /// The published flows.
        pub fn published(&self) -> Vec<DnsName> {
            lock(&self.records).keys().cloned().collect()
        }
        /// Makes every `publish` fail with `reason` (`None`: succeed).
        pub fn fail_publish(&self, reason: Option<&str>) {
            *lock(&self.fail_publish) = reason.map(str::to_owned);
        }
    }

    #[async_trait::async_trait]
    impl FlowDirectory for MemoryDirectory {
        async fn publish(
            &self,
            flow: &DnsName,
            binding: &BrokerBinding,
        ) -> Result<(), ProvisionError> {
            if let Some(reason) = lock(&self.fail_publish).clone() {
                return Err(ProvisionError(reason));
            }
            lock(&self.records).insert(flow.clone(), binding.clone());
            Ok(())
        }
        async fn withdraw(&self, flow: &DnsName) -> Result<(), ProvisionError> {
            lock(&self.records).remove(flow);
            Ok(())
        }
    }

    /// Pipelines that only exist as entries of a map; copy flows whose
    /// events a test appends (see [`MemoryPipelines::append_to_copy`]) are
    /// relayed from the last acknowledged one, as a broker would.
    #[derive(Debug, Default)]
    pub struct MemoryPipelines {
        pipelines: Mutex<BTreeMap<String, (PipelineSpec, RunState)>>,
        fail_start: Mutex<Option<String>>,
        copies: Mutex<BTreeMap<DnsName, std::sync::Arc<Mutex<super::memory_copy::CopyLog>>>>,
    }

    impl MemoryPipelines {
        /// The pipelines and their state.
        pub fn pipelines(&self) -> Vec<(PipelineSpec, RunState)> {
            lock(&self.pipelines).values().cloned().collect()
        }
        /// The ids of the pipelines running or paused now.
        pub fn ids(&self) -> Vec<String> {
            lock(&self.pipelines).keys().cloned().collect()
        }
        /// The spec and state of one pipeline.
        pub fn get(&self, id: &str) -> Option<(PipelineSpec, RunState)> {
            lock(&self.pipelines).get(id).cloned()
        }
        /// Makes every `start` fail with `reason` (`None`: succeed).
        pub fn fail_start(&self, reason: Option<&str>) {
            *lock(&self.fail_start) = reason.map(str::to_owned);
        }
        fn copy_log(&self, copy: &DnsName) -> std::sync::Arc<Mutex<super::memory_copy::CopyLog>> {
            lock(&self.copies).entry(copy.clone()).or_default().clone()
        }
        /// Appends one chunk of events (JSON lines) to copy flow `copy`.
        pub fn append_to_copy(&self, copy: &DnsName, events: &[&str]) {
            lock(&self.copy_log(copy)).append(events);
        }
        /// How many events of `copy` relays acknowledged.
        pub fn acknowledged(&self, copy: &DnsName) -> usize {
            lock(&self.copy_log(copy)).acknowledged
        }
        fn set_state(&self, id: &str, state: RunState) -> Result<(), ProvisionError> {
            match lock(&self.pipelines).get_mut(id) {
                Some(entry) => {
                    entry.1 = state;
                    Ok(())
                }
                None => Err(ProvisionError(format!("no pipeline {id}"))),
            }
        }
    }

    #[async_trait::async_trait]
    impl PipelineController for MemoryPipelines {
        async fn start(&self, spec: &PipelineSpec, state: RunState) -> Result<(), ProvisionError> {
            if let Some(reason) = lock(&self.fail_start).clone() {
                return Err(ProvisionError(reason));
            }
            lock(&self.pipelines).insert(spec.id.clone(), (spec.clone(), state));
            Ok(())
        }
        async fn update(&self, spec: &PipelineSpec) -> Result<(), ProvisionError> {
            match lock(&self.pipelines).get_mut(&spec.id) {
                Some(entry) => {
                    entry.0 = spec.clone();
                    Ok(())
                }
                None => Err(ProvisionError(format!("no pipeline {}", spec.id))),
            }
        }
        async fn read_copy(
            &self,
            copy: &DnsName,
            _binding: &BrokerBinding,
        ) -> Result<CopyFeed, ProvisionError> {
            Ok(super::memory_copy::feed(self.copy_log(copy)))
        }
        async fn stop(&self, id: &str) -> Result<(), ProvisionError> {
            lock(&self.pipelines).remove(id);
            Ok(())
        }
        async fn pause(&self, id: &str) -> Result<(), ProvisionError> {
            self.set_state(id, RunState::Paused)
        }
        async fn resume(&self, id: &str) -> Result<(), ProvisionError> {
            self.set_state(id, RunState::Running)
        }
        async fn status(&self, id: &str) -> Result<Option<PipelineStatus>, ProvisionError> {
            Ok(lock(&self.pipelines)
                .get(id)
                .map(|(_, state)| PipelineStatus {
                    state: state.as_str().to_owned(),
                    detail: String::new(),
                }))
        }
    }
}

/// Backends for operator commands run while the host is stopped (`fnaa
/// user ...`): account and store operations never provision, and anything
/// that would is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

fn offline() -> ProvisionError {
    ProvisionError(
        "not available while the host is stopped; use FNAP or the gRPC API of the running host"
            .into(),
    )
}

#[async_trait::async_trait]
impl FlowProvisioner for Offline {
    async fn create_queue(&self, _: &DnsName) -> Result<BrokerBinding, ProvisionError> {
        Err(offline())
    }
    async fn delete_queue(
        &self,
        _: &DnsName,
        _: Option<&BrokerBinding>,
    ) -> Result<(), ProvisionError> {
        Err(offline())
    }
}

#[async_trait::async_trait]
impl FlowDirectory for Offline {
    async fn publish(&self, _: &DnsName, _: &BrokerBinding) -> Result<(), ProvisionError> {
        Err(offline())
    }
    async fn withdraw(&self, _: &DnsName) -> Result<(), ProvisionError> {
        Err(offline())
    }
}

#[async_trait::async_trait]
impl PipelineController for Offline {
    async fn start(&self, _: &PipelineSpec, _: RunState) -> Result<(), ProvisionError> {
        Err(offline())
    }
    async fn update(&self, _: &PipelineSpec) -> Result<(), ProvisionError> {
        Err(offline())
    }
    async fn stop(&self, _: &str) -> Result<(), ProvisionError> {
        Err(offline())
    }
    async fn pause(&self, _: &str) -> Result<(), ProvisionError> {
        Err(offline())
    }
    async fn resume(&self, _: &str) -> Result<(), ProvisionError> {
        Err(offline())
    }
    async fn status(&self, _: &str) -> Result<Option<PipelineStatus>, ProvisionError> {
        Ok(None)
    }
}

fn offline_peer(step: String) -> PeerError {
    PeerError::Unavailable {
        step,
        reason: offline().0,
    }
}

#[async_trait::async_trait]
impl Peers for Offline {
    async fn subscribe(&self, flow: &DnsName, _: &Capability) -> Result<RemoteCopy, PeerError> {
        Err(offline_peer(format!("subscribing to {flow}")))
    }
    async fn unsubscribe(&self, _: &RemoteSource, copy: &DnsName) -> Result<(), PeerError> {
        Err(offline_peer(format!("ending {copy}")))
    }
    async fn abandon(&self, flow: &DnsName, _: &Capability) -> Result<usize, PeerError> {
        Err(offline_peer(format!("ending subscriptions to {flow}")))
    }
    async fn copy_exists(&self, _: &RemoteSource, _: &DnsName) -> Result<bool, PeerError> {
        Ok(true)
    }
}

mod memory_copy;
pub mod memory_peers;
mod relay;

pub use relay::{CopyChunk, CopyFeed, RelayPeer};
