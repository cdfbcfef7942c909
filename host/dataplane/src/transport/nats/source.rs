//! NATS source: durable JetStream pull consumers with explicit acks
//! (at-least-once), or core NATS subscriptions (`latest`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, ErrorCode};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{NatsBrokerConfig, client_error, config_error, to_message};
use crate::backoff::{Backoff, RetryConfig};
use crate::outage::OutageMonitor;
use crate::transport::{
    AckToken, Acker, ChannelSource, DeliveryMode, EndpointContext, Readiness, Received, TokenInner,
    TransportError,
};

/// A pipeline source on NATS (`nats = { ... }` in `[pipelines.source]`).
///
/// At least once: a durable pull consumer (explicit acks) on each stream of
/// `streams`; a message is acknowledged only after the sink confirmed what
/// was made of it, and one not acknowledged within `ack_wait_s` (the
/// pipeline stopped, say) is delivered again. `latest`: core NATS
/// subscriptions on `subjects` (or on the subjects of `streams`), which see
/// only what is published while they exist.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsSourceConfig {
    /// JetStream streams to read (they must exist: an FNAP flow's stream
    /// is made with the flow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
    /// Subjects to subscribe to in `latest` mode (wildcards `*` and `>`
    /// allowed). Default: the subjects of `streams`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Name of the durable consumer on each stream. Default
    /// `fnaa-<pipeline>`, the pipeline's consumer state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Read only this subject of the streams (a consumer filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    /// Messages delivered and not yet acknowledged, per stream, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ack_pending: Option<i64>,
    /// Seconds the server waits for an acknowledgement before it delivers
    /// a message again. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_wait_s: Option<u64>,
}

const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
const DEFAULT_ACK_WAIT_S: u64 = 30;

impl NatsSourceConfig {
    /// Read `streams` at least once.
    pub fn streams<S: Into<String>>(streams: impl IntoIterator<Item = S>) -> Self {
        NatsSourceConfig {
            streams: streams.into_iter().map(Into::into).collect(),
            ..NatsSourceConfig::default()
        }
    }

    fn max_ack_pending(&self) -> i64 {
        self.max_ack_pending
            .unwrap_or(DEFAULT_MAX_ACK_PENDING)
            .max(1)
    }
}

/// The acknowledgement handles of what was delivered and not yet acked,
/// by sequence number (the `delivery_tag` of the source's tokens).
#[derive(Default)]
struct Pending {
    client: Option<Client>,
    handles: HashMap<u64, jetstream::message::Acker>,
}

/// Reads NATS subjects or JetStream streams.
///
/// Tokens are `TokenInner::Delivery { generation, tag, .. }` read as
/// (source instance, delivery sequence): the acker keeps each delivery's
/// ack handle under its sequence. JetStream ack subjects do not depend on
/// the connection, so a delivery made before a reconnect is still
/// acknowledged after it; a delivery the server already gave up on (its
/// `ack_wait` passed) comes again whatever we do.
///
/// Starts the connection task; it connects, finds the streams, creates
/// or resumes the durable consumers (or subscribes), and does it again
/// after every failure.
pub fn open(
    broker: &NatsBrokerConfig,
    config: &NatsSourceConfig,
    context: &EndpointContext,
) -> Result<ChannelSource, TransportError> {
    let durable = super::safe_name(config.consumer.as_deref().unwrap_or(&context.consumer()));
    match context.delivery {
        DeliveryMode::AtLeastOnce if config.streams.is_empty() => {
            return Err(config_error(
                "at-least-once needs `streams`: a core NATS subscription keeps nothing while the pipeline is away",
            ));
        }
        DeliveryMode::Latest if config.streams.is_empty() && config.subjects.is_empty() => {
            return Err(config_error("the source needs `subjects` or `streams`"));
        }
        _ => {}
    }
    let description = match context.delivery {
        DeliveryMode::AtLeastOnce => format!(
            "nats streams {:?} consumer `{durable}` on {}",
            config.streams,
            broker.describe()
        ),
        DeliveryMode::Latest => format!(
            "nats subjects {:?} on {}",
            if config.subjects.is_empty() {
                &config.streams
            } else {
                &config.subjects
            },
            broker.describe()
        ),
    };
    let capacity = usize::try_from(config.max_ack_pending()).unwrap_or(1000) + 16;
    let (tx, rx) = mpsc::channel(capacity);
    let generation = rand::random::<u64>();
    let pending = Arc::new(Mutex::new(Pending::default()));
    let ready = Readiness::new();
    let driver = Driver {
        ready: ready.clone(),
        broker: broker.clone(),
        config: config.clone(),
        durable,
        name: context.client_id.clone(),
        mode: context.delivery,
        retry: context.retry.clone(),
        monitor: context.monitor.clone(),
        generation,
        pending: pending.clone(),
        tx,
    };
    tokio::spawn(driver.run());
    Ok(ChannelSource::new(
        ready,
        rx,
        Arc::new(NatsAcker {
            generation,
            pending,
        }),
        description,
    ))
}

struct NatsAcker {
    generation: u64,
    pending: Arc<Mutex<Pending>>,
}

impl Acker for NatsAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let (client, handles) = {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                let handles: Vec<_> = tokens
                    .iter()
                    .filter_map(|t| match t.0 {
                        TokenInner::Delivery {
                            generation, tag, ..
                        } if generation == self.generation => pending.handles.remove(&tag),
                        _ => None,
                    })
                    .collect();
                (pending.client.clone(), handles)
            };
            if handles.is_empty() {
                return Ok(());
            }
            for handle in &handles {
                if let Err(e) = handle.ack().await {
                    // Not sent: the server delivers the message again.
                    tracing::debug!("nats ack failed (the message will come again): {e}");
                }
            }
            if let Some(client) = client
                && let Err(e) = client.flush().await
            {
                tracing::debug!("nats ack flush failed (messages may come again): {e}");
            }
            Ok(())
        })
    }
}

struct Driver {
    ready: Readiness,
    broker: NatsBrokerConfig,
    config: NatsSourceConfig,
    durable: String,
    name: String,
    mode: DeliveryMode,
    retry: RetryConfig,
    monitor: Arc<OutageMonitor>,
    generation: u64,
    pending: Arc<Mutex<Pending>>,
    tx: mpsc::Sender<Received>,
}

/// Why a consuming round ended.
enum End {
    /// The pipeline went away.
    Stopped,
    /// Set up again after a pause.
    Failed(TransportError),
}

impl Driver {
    async fn run(self) {
        let mut backoff = self.retry.backoff();
        let client = loop {
            let attempt = tokio::select! {
                c = self.broker.connect(&self.name, &self.retry, Some(self.monitor.clone())) => c,
                _ = self.tx.closed() => return,
            };
            match attempt {
                Ok(client) => break client,
                Err(e) => {
                    self.monitor.failed(&e);
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = self.tx.closed() => return,
                    }
                }
            }
        };
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .client = Some(client.clone());
        loop {
            let end = match self.mode {
                DeliveryMode::AtLeastOnce => self.consume(&client, &mut backoff).await,
                DeliveryMode::Latest => self.subscribe(&client, &mut backoff).await,
            };
            match end {
                End::Stopped => {
                    // Acks still to come go out on this client; drain it
                    // once the pipeline has dropped the acker too.
                    return;
                }
                End::Failed(e) => {
                    self.monitor.failed(&e);
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = self.tx.closed() => return,
                    }
                }
            }
        }
    }

    /// At least once: one durable pull consumer per stream, read until
    /// something breaks.
    async fn consume(&self, client: &Client, backoff: &mut Backoff) -> End {
        let context = jetstream::new(client.clone());
        let mut feeds: Vec<BoxStream<'static, _>> = Vec::with_capacity(self.config.streams.len());
        for name in &self.config.streams {
            let stream = match context.get_stream(name).await {
                Ok(s) => s,
                Err(e) => {
                    let missing = matches!(
                        e.kind(),
                        jetstream::context::GetStreamErrorKind::JetStream(js)
                            if js.error_code() == ErrorCode::STREAM_NOT_FOUND
                    );
                    return End::Failed(if missing {
                        client_error(format!("stream `{name}` does not exist"))
                    } else {
                        client_error(format!("stream `{name}`: {e}"))
                    });
                }
            };
            let config = pull::Config {
                durable_name: Some(self.durable.clone()),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: Duration::from_secs(self.config.ack_wait_s.unwrap_or(DEFAULT_ACK_WAIT_S)),
                max_ack_pending: self.config.max_ack_pending(),
                filter_subject: self.config.filter_subject.clone().unwrap_or_default(),
                ..pull::Config::default()
            };
            let consumer = match stream.get_or_create_consumer(&self.durable, config).await {
                Ok(c) => c,
                Err(e) => {
                    return End::Failed(client_error(format!(
                        "consumer `{}` on stream `{name}`: {e}",
                        self.durable
                    )));
                }
            };
            let batch = usize::try_from(self.config.max_ack_pending())
                .unwrap_or(1000)
                .min(500);
            match consumer
                .stream()
                .max_messages_per_batch(batch)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
            {
                Ok(messages) => feeds.push(messages.boxed()),
                Err(e) => {
                    return End::Failed(client_error(format!(
                        "consumer `{}` on stream `{name}`: {e}",
                        self.durable
                    )));
                }
            }
        }
        self.ready.set();
        self.monitor.recovered();
        backoff.reset();
        tracing::debug!(streams = ?self.config.streams, consumer = %self.durable, "nats source consuming");
        let mut feed = futures::stream::select_all(feeds);
        let mut sequence = 0u64;
        loop {
            let next = tokio::select! {
                m = feed.next() => m,
                _ = self.tx.closed() => return End::Stopped,
            };
            let message = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => match e.kind() {
                    // Heartbeats missed during an outage: the stream asks
                    // again once the connection is back.
                    MessagesErrorKind::MissingHeartbeat
                    | MessagesErrorKind::Pull
                    | MessagesErrorKind::NoResponders => {
                        tracing::debug!("nats source: {e}");
                        continue;
                    }
                    _ => return End::Failed(client_error(e)),
                },
                None => return End::Failed(client_error("the consumer's message feed ended")),
            };
            let timestamp_ms = message.info().ok().map(|info| {
                i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
            });
            let (message, handle) = message.split();
            sequence += 1;
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .handles
                .insert(sequence, handle);
            let received = Received {
                message: to_message(message),
                token: AckToken(TokenInner::Delivery {
                    generation: self.generation,
                    tag: sequence,
                    class: 0,
                }),
                timestamp_ms,
            };
            if self.tx.send(received).await.is_err() {
                return End::Stopped;
            }
        }
    }

    /// `latest`: core NATS subscriptions, nothing acknowledged.
    async fn subscribe(&self, client: &Client, backoff: &mut Backoff) -> End {
        let mut subjects = self.config.subjects.clone();
        if subjects.is_empty() {
            let context = jetstream::new(client.clone());
            for name in &self.config.streams {
                match context.get_stream(name).await {
                    Ok(mut stream) => match stream.info().await {
                        Ok(info) => subjects.extend(info.config.subjects.iter().cloned()),
                        Err(e) => {
                            return End::Failed(client_error(format!("stream `{name}`: {e}")));
                        }
                    },
                    Err(e) => return End::Failed(client_error(format!("stream `{name}`: {e}"))),
                }
            }
        }
        let mut feeds = Vec::with_capacity(subjects.len());
        for subject in &subjects {
            match client.subscribe(subject.clone()).await {
                Ok(s) => feeds.push(s),
                Err(e) => {
                    return End::Failed(client_error(format!(
                        "cannot subscribe to `{subject}`: {e}"
                    )));
                }
            }
        }
        // `flush` only empties the client's buffer; a request the server
        // answers (nobody listens there: "no responders") is a round trip,
        // after which the server has the subscriptions.
        match client.request(client.new_inbox(), "".into()).await {
            Ok(_) => {}
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
            Err(e) => return End::Failed(client_error(e)),
        }
        self.ready.set();
        self.monitor.recovered();
        backoff.reset();
        tracing::debug!(?subjects, "nats source subscribed");
        let mut feed = futures::stream::select_all(feeds);
        loop {
            let next = tokio::select! {
                m = feed.next() => m,
                _ = self.tx.closed() => return End::Stopped,
            };
            let Some(message) = next else {
                return End::Failed(client_error("the subscriptions ended"));
            };
            let received = Received {
                message: to_message(message),
                token: AckToken::none(),
                timestamp_ms: None,
            };
            if self.tx.send(received).await.is_err() {
                return End::Stopped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_refuse_unknown_fields() {
        let config = NatsSourceConfig {
            consumer: Some("c".into()),
            ack_wait_s: Some(2),
            ..NatsSourceConfig::streams(["a_b"])
        };
        let value = serde_json::to_value(&config).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({ "streams": ["a_b"], "consumer": "c", "ack_wait_s": 2 })
        );
        let back: NatsSourceConfig = serde_json::from_value(value).expect("parses");
        assert_eq!(back, config);
        assert!(
            serde_json::from_value::<NatsSourceConfig>(serde_json::json!({ "stream": "x" }))
                .is_err()
        );
    }
}
