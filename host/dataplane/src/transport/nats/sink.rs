//! NATS sink: JetStream publish with publish acknowledgements (or core
//! NATS publish), retried through outages.

use std::sync::Arc;
use std::time::Duration;

use async_nats::header::{HeaderMap, HeaderName, HeaderValue};
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::{self, Context};
use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::future::join_all;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::NatsBrokerConfig;
use crate::backoff::RetryConfig;
use crate::outage::OutageMonitor;
use crate::transport::{EndpointContext, Message, Outcome, SendFuture, Sink, SinkRequest};

/// A pipeline sink on NATS (`nats = { ... }` in `[pipelines.sink]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Subject for events whose connector names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Publish through JetStream: a message counts as sent once a stream
    /// stored it (its publish acknowledgement), and one for a subject that
    /// no stream captures is rejected. Off: core NATS publish, sent once
    /// the server has it, stored nowhere (for `latest` flows).
    #[serde(default = "yes")]
    pub jetstream: bool,
    /// Milliseconds to wait for a publish acknowledgement before the
    /// message is sent again (the `Nats-Msg-Id` header lets the stream drop
    /// the duplicate). Default 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_timeout_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        NatsSinkConfig {
            subject: None,
            jetstream: true,
            ack_timeout_ms: None,
        }
    }
}

impl NatsSinkConfig {
    /// Publish to `subject` through JetStream.
    pub fn subject(subject: impl Into<String>) -> Self {
        NatsSinkConfig {
            subject: Some(subject.into()),
            ..NatsSinkConfig::default()
        }
    }
}

/// How often a subject no stream captures is tried before the message is
/// rejected: right after a server restart JetStream may not have loaded
/// its streams yet.
const NO_STREAM_ATTEMPTS: u32 = 3;

/// Publishes to NATS.
///
/// A connection task hands each batch's messages to the client in the
/// order the batches come and leaves their acknowledgements to a task of
/// the batch's own, so that several batches are in flight at once
/// ([`Sink::send`]).
pub struct NatsSink {
    requests: mpsc::UnboundedSender<SinkRequest>,
    /// The connection task until the first batch starts it (spawning needs
    /// the runtime, which `new` may be called without).
    idle: Option<(Driver, mpsc::UnboundedReceiver<SinkRequest>)>,
    description: String,
}

impl NatsSink {
    /// Creates the sink; it connects on first use.
    pub fn new(
        broker: &NatsBrokerConfig,
        config: &NatsSinkConfig,
        context: &EndpointContext,
    ) -> NatsSink {
        let description = format!(
            "nats{} subject `{}` on {}",
            if config.jetstream { " jetstream" } else { "" },
            config.subject.as_deref().unwrap_or("<from connector>"),
            broker.describe()
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            broker: broker.clone(),
            config: config.clone(),
            name: context.client_id.clone(),
            retry: context.retry.clone(),
            monitor: context.monitor.clone(),
            instance: format!("fnaa-{:016x}", rand::random::<u64>()),
            sequence: 0,
        };
        NatsSink {
            requests: tx,
            idle: Some((driver, rx)),
            description,
        }
    }
}

impl Sink for NatsSink {
    fn send(&mut self, batch: Vec<Message>) -> SendFuture {
        if !batch.is_empty()
            && let Some((driver, rx)) = self.idle.take()
        {
            tokio::spawn(driver.run(rx));
        }
        crate::transport::submit(&self.requests, batch)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

struct Driver {
    broker: NatsBrokerConfig,
    config: NatsSinkConfig,
    name: String,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    /// Names this sink in the `Nats-Msg-Id` of what it publishes.
    instance: String,
    sequence: u64,
}

/// One message ready to go: where, what, and its id.
#[derive(Clone)]
struct Prepared {
    subject: Subject,
    headers: HeaderMap,
    payload: Bytes,
}

/// Where a message of a batch stands.
enum State {
    Done(Outcome),
    /// Handed to the client; the acknowledgement is awaited.
    InFlight(PublishAckFuture),
    /// To send (again).
    Waiting,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<SinkRequest>) {
        let mut backoff = self.retry.backoff();
        let client = loop {
            match self
                .broker
                .connect(&self.name, &self.retry, Some(self.monitor.clone()))
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    self.monitor.failed(&e);
                    backoff.wait().await;
                    if requests.is_closed() {
                        return;
                    }
                }
            }
        };
        let timeout = Duration::from_millis(self.config.ack_timeout_ms.unwrap_or(5000).max(1));
        let context = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .build(client.clone());
        while let Some(request) = requests.recv().await {
            let prepared: Vec<Result<Prepared, Unpublishable>> =
                request.messages.iter().map(|m| self.prepare(m)).collect();
            if self.config.jetstream {
                let mut states = Vec::with_capacity(prepared.len());
                // Once the client's queue stays full (no connection), the
                // rest of the batch waits for the retry instead of for the
                // queue, message after message.
                let mut stalled = false;
                for p in &prepared {
                    states.push(match p {
                        Ok(_) if stalled => State::Waiting,
                        Ok(p) => {
                            let state = publish(&context, p).await;
                            stalled = matches!(state, State::Waiting);
                            state
                        }
                        Err(reason) => State::Done(Outcome::Rejected {
                            reason: reason.to_string(),
                        }),
                    });
                }
                let batch = Batch {
                    client: client.clone(),
                    context: context.clone(),
                    retry: self.retry.clone(),
                    monitor: self.monitor.clone(),
                };
                tokio::spawn(batch.settle(prepared, states, request.reply));
            } else {
                let batch = Batch {
                    client: client.clone(),
                    context: context.clone(),
                    retry: self.retry.clone(),
                    monitor: self.monitor.clone(),
                };
                let outcomes = batch.publish_core(&client, prepared).await;
                let _ = request.reply.send(outcomes);
            }
        }
        let _ = client.flush().await;
    }

    /// The subject, headers and payload of `m`; `Err` when NATS cannot
    /// carry it.
    fn prepare(&mut self, m: &Message) -> Result<Prepared, Unpublishable> {
        let subject = if m.destination.name.is_empty() {
            self.config.subject.clone().unwrap_or_default()
        } else {
            m.destination.name.clone()
        };
        if subject.is_empty() {
            return Err(Unpublishable::NoSubject);
        }
        if subject.contains([' ', '\t', '\r', '\n', '*', '>'])
            || subject.starts_with('.')
            || subject.ends_with('.')
            || subject.contains("..")
        {
            return Err(Unpublishable::Subject(subject));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &m.headers {
            let header: HeaderName = name
                .parse()
                .map_err(|_| Unpublishable::HeaderName(name.clone()))?;
            let text = std::str::from_utf8(value)
                .map_err(|_| Unpublishable::HeaderNotText(name.clone()))?;
            let value: HeaderValue = text
                .parse()
                .map_err(|_| Unpublishable::HeaderValue(name.clone()))?;
            headers.append(header, value);
        }
        if let Some(ct) = &m.content_type {
            let value: HeaderValue = ct
                .parse()
                .map_err(|_| Unpublishable::ContentType(ct.clone()))?;
            headers.insert("Content-Type", value);
        }
        if self.config.jetstream {
            self.sequence += 1;
            let id = format!("{}-{}", self.instance, self.sequence);
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        }
        Ok(Prepared {
            subject: Subject::from(subject),
            headers,
            payload: Bytes::from(m.payload.clone()),
        })
    }
}

/// Hands one message to the client.
async fn publish(context: &Context, p: &Prepared) -> State {
    let message = jetstream::message::PublishMessage::build()
        .payload(p.payload.clone())
        .headers(p.headers.clone());
    match context.send_publish(p.subject.clone(), message).await {
        Ok(ack) => State::InFlight(ack),
        Err(e) => match e.kind() {
            PublishErrorKind::MaxPayloadExceeded | PublishErrorKind::Other => {
                State::Done(Outcome::Rejected {
                    reason: e.to_string(),
                })
            }
            // The client's queue stayed full (no connection): again later.
            _ => State::Waiting,
        },
    }
}

/// Settles one batch: awaits its acknowledgements, sends again what an
/// outage lost, and answers.
struct Batch {
    client: Client,
    context: Context,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
}

impl Batch {
    async fn settle(
        self,
        prepared: Vec<Result<Prepared, Unpublishable>>,
        mut states: Vec<State>,
        reply: tokio::sync::oneshot::Sender<Vec<Outcome>>,
    ) {
        let mut backoff = self.retry.backoff();
        let mut no_stream = vec![0u32; states.len()];
        let mut silent_rounds = 0u32;
        loop {
            // Await every acknowledgement in flight.
            let mut waits = Vec::new();
            for (i, state) in states.iter_mut().enumerate() {
                if matches!(state, State::InFlight(_))
                    && let State::InFlight(ack) = std::mem::replace(state, State::Waiting)
                {
                    waits.push(async move { (i, ack.await) });
                }
            }
            let mut trouble = None;
            for (i, result) in join_all(waits).await {
                states[i] = match result {
                    Ok(_) => State::Done(Outcome::Confirmed),
                    Err(e) => match e.kind() {
                        PublishErrorKind::StreamNotFound => {
                            no_stream[i] += 1;
                            if no_stream[i] >= NO_STREAM_ATTEMPTS {
                                State::Done(Outcome::Rejected {
                                    reason: format!(
                                        "no JetStream stream captures subject `{}`",
                                        subject_of(&prepared[i])
                                    ),
                                })
                            } else {
                                State::Waiting
                            }
                        }
                        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                            trouble = Some(e.to_string());
                            State::Waiting
                        }
                        _ => State::Done(Outcome::Rejected {
                            reason: e.to_string(),
                        }),
                    },
                };
            }
            if states.iter().all(|s| matches!(s, State::Done(_))) {
                break;
            }
            // Disconnected: the client's event already raised the alarm,
            // this adds to it. Connected and still no acknowledgement:
            // JetStream itself does not answer, an outage too once it
            // lasts a few rounds.
            let connected =
                self.client.connection_state() == async_nats::connection::State::Connected;
            match trouble {
                Some(reason) => {
                    silent_rounds += 1;
                    if !connected || silent_rounds >= 3 {
                        self.monitor.failed(&format!(
                            "no publish acknowledgement ({reason}); sending again"
                        ));
                    } else {
                        tracing::debug!(
                            "{}: no publish acknowledgement ({reason}); sending again",
                            self.monitor.what()
                        );
                    }
                }
                None if no_stream.iter().all(|&n| n == 0) => {
                    self.monitor.failed(&"the client's queue is full");
                }
                None => {}
            }
            if reply.is_closed() {
                return;
            }
            backoff.wait().await;
            for (i, state) in states.iter_mut().enumerate() {
                if matches!(state, State::Waiting)
                    && let Ok(p) = &prepared[i]
                {
                    *state = publish(&self.context, p).await;
                }
            }
        }
        let outcomes = states
            .into_iter()
            .map(|s| match s {
                State::Done(outcome) => outcome,
                State::InFlight(_) | State::Waiting => Outcome::Rejected {
                    reason: "not settled".into(),
                },
            })
            .collect();
        let _ = reply.send(outcomes);
    }

    /// Core NATS: publish, then flush (the server has them); an outage
    /// sends the batch again once the connection is back.
    async fn publish_core(
        &self,
        client: &Client,
        prepared: Vec<Result<Prepared, Unpublishable>>,
    ) -> Vec<Outcome> {
        let mut backoff = self.retry.backoff();
        let mut outcomes: Vec<Option<Outcome>> = prepared
            .iter()
            .map(|p| {
                p.as_ref().err().map(|reason| Outcome::Rejected {
                    reason: reason.to_string(),
                })
            })
            .collect();
        loop {
            for (i, p) in prepared.iter().enumerate() {
                if outcomes[i].is_some() {
                    continue;
                }
                let Ok(p) = p else { continue };
                if let Err(e) = client
                    .publish_with_headers(p.subject.clone(), p.headers.clone(), p.payload.clone())
                    .await
                {
                    outcomes[i] = Some(Outcome::Rejected {
                        reason: e.to_string(),
                    });
                }
            }
            match client.flush().await {
                Ok(()) => break,
                Err(e) => {
                    self.monitor.failed(&e);
                    backoff.wait().await;
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Confirmed))
            .collect()
    }
}

/// Why NATS can never carry a message (a dead letter, not a retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unpublishable {
    #[error("no subject: the sink has no `subject` and the connector named none")]
    NoSubject,
    #[error("`{0}` is not a subject one can publish to")]
    Subject(String),
    #[error("header name `{0}` is not valid in NATS")]
    HeaderName(String),
    #[error("header `{0}` is not text")]
    HeaderNotText(String),
    #[error("header `{0}` has characters NATS headers refuse")]
    HeaderValue(String),
    #[error("content type `{0}` is not a valid header value")]
    ContentType(String),
}

fn subject_of(p: &Result<Prepared, Unpublishable>) -> &str {
    p.as_ref().map(|p| p.subject.as_str()).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_jetstream() {
        let config: NatsSinkConfig =
            serde_json::from_value(serde_json::json!({ "subject": "a.b" })).expect("parses");
        assert_eq!(config, NatsSinkConfig::subject("a.b"));
        assert!(config.jetstream);
        assert!(
            serde_json::from_value::<NatsSinkConfig>(serde_json::json!({ "topic": "a" })).is_err()
        );
    }
}
