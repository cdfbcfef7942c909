//! The publisher's side of a relay: reads a copy flow on this host's own
//! broker, as a pipeline source would (consumer state named after the
//! copy, so that each session resumes where the last acknowledged chunk
//! left off), decodes each message with the broker's CloudEvents binding
//! and hands chunks of events in JSON to the relay session.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fnaa_control::fnap::relay::MAX_CHUNK_EVENTS;
use fnaa_control::names::DnsName;
use fnaa_control::provision::{CopyChunk, CopyFeed, ProvisionError};
use fnaa_control::store::BrokerBinding;
use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::{Broker, DeliveryMode, EndpointContext, consumer_name};
use fnaa_event::binding::{Binding, Codec};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::task::AbortOnDropHandle;

/// Longest wait for a chunk to fill once it has an event.
const CHUNK_LINGER: Duration = Duration::from_millis(20);
/// Chunks read ahead of the session.
const READ_AHEAD: usize = 2;

/// The pipeline name the reader of `copy` is known by at the broker.
fn reader_name(copy: &DnsName) -> String {
    format!("relay/{copy}")
}

/// The one reader of each copy flow: a new session's reader ends the
/// previous one (a subscriber that reconnects before this host noticed
/// that its last session broke).
#[derive(Default)]
pub struct CopyReaders {
    running: Mutex<BTreeMap<DnsName, AbortHandle>>,
}

impl CopyReaders {
    /// Reads `copy` (its queue `binding`) on `broker`.
    pub async fn open(
        &self,
        broker: Arc<dyn Broker>,
        copy: &DnsName,
        binding: &BrokerBinding,
    ) -> Result<CopyFeed, ProvisionError> {
        let failed = |e: &dyn std::fmt::Display| ProvisionError(format!("{copy}: {e}"));
        let pipeline = reader_name(copy);
        let retry = RetryConfig::default();
        let monitor = Arc::new(OutageMonitor::new(
            format!("the relay of {copy}"),
            retry.reminder_interval(),
        ));
        let context = EndpointContext::new(
            &pipeline,
            "source",
            DeliveryMode::AtLeastOnce,
            retry,
            monitor,
        );
        let settings = broker.flow_source(&pipeline, &[binding.topic.as_str()]);
        let connector = broker.default_connector();
        let mut defaults = Vec::new();
        broker.connector_defaults(connector, &mut defaults);
        let binding_kind = Binding::from_name(connector)
            .ok_or_else(|| failed(&format!("no CloudEvents binding `{connector}`")))?;
        let mut codec = Codec::new(binding_kind, &defaults).map_err(|e| failed(&e))?;
        let mut source = broker
            .source(&context, &settings)
            .await
            .map_err(|e| failed(&e))?;
        let acker = source.acker();
        let ready = source.ready();
        let (chunks, feed) = mpsc::channel(READ_AHEAD);
        let name = copy.clone();
        let task = tokio::spawn(async move {
            loop {
                let received = match source.recv(MAX_CHUNK_EVENTS, CHUNK_LINGER).await {
                    Ok(received) => received,
                    Err(error) => {
                        tracing::warn!(copy = %name, %error, "the relay's reader stopped");
                        return;
                    }
                };
                let now = fnaa_dataplane::pipeline::native::now();
                let mut events = Vec::with_capacity(received.len());
                let mut tokens = Vec::with_capacity(received.len());
                for item in received {
                    match codec.decode(&item.message, now) {
                        Ok(event) => events.push(json_line(&event)),
                        Err(error) => {
                            tracing::error!(copy = %name, %error, "a message of the copy flow is no CloudEvent; not relayed")
                        }
                    }
                    tokens.push(item.token);
                }
                let acker = acker.clone();
                let ack = Box::pin(async move {
                    acker
                        .ack(tokens)
                        .await
                        .map_err(|e| ProvisionError(e.to_string()))
                });
                if chunks.send(CopyChunk { events, ack }).await.is_err() {
                    return;
                }
            }
        });
        let handle = task.abort_handle();
        let previous = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(copy.clone(), handle.clone());
        if let Some(previous) = previous {
            previous.abort();
        }
        Ok(CopyFeed {
            chunks: feed,
            ready,
            guard: Box::new(AbortOnDropHandle::new(task)),
        })
    }

    /// Removes what the readers of `copy` kept at `broker`.
    pub async fn forget(
        &self,
        broker: Arc<dyn Broker>,
        copy: &DnsName,
    ) -> Result<(), ProvisionError> {
        if let Some(running) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(copy)
        {
            running.abort();
        }
        let admin = broker.admin().map_err(|e| ProvisionError(e.to_string()))?;
        admin
            .delete_consumer(&consumer_name(&reader_name(copy)))
            .await
            .map_err(|e| ProvisionError(format!("{copy}: {e}")))
    }
}

/// One event in the CloudEvents JSON format, on one line (compact JSON
/// escapes every line break).
fn json_line(event: &fnaa_event::Event) -> String {
    String::from_utf8_lossy(&fnaa_event::to_json(event)).into_owned()
}
