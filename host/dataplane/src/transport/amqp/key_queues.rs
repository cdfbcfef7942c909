//! Per-key queues and EP038 continuity, an AMQP sink policy
//! (`amqp = { key_queues = { ... } }`).
//!
//! EP038 wants one durable queue per interdomain link, created when the
//! link first appears, holding only that link's events, and "continuity":
//! a message with the same status as the previous one for the same link is
//! published only if the consumer has consumed the previous one; a change
//! of status always is.
//!
//! * The key (the link id) and the status are headers of the message:
//!   `ce-subject` and `ce-type` by default, what binary mode writes for a
//!   CloudEvent's `subject` and `type` (a `link_up` / `link_down` name is
//!   the status).
//! * The key's queue, `<queue_prefix><key>`, is declared durable the first
//!   time the key is seen (and for each of `keys` at start). Each message
//!   of the key is published to the exchange as usual and a copy goes to
//!   its queue through the default exchange, which routes by queue name
//!   (a topic binding cannot tell links apart, since EP038's routing keys
//!   name the event, not the link). Both copies are confirmed before the
//!   message counts as delivered.
//! * "Consumed" is observed at the broker: a message whose status equals
//!   the last one published for its key is published only if the key's
//!   queue is empty (a passive declare's message count, asked on the
//!   publishing channel so that it counts every earlier publish); else it
//!   is suppressed and counts as delivered. The last status per key lives
//!   in the sink's memory: after a restart the first message of each key
//!   is published.

use std::collections::{HashMap, HashSet};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use schemars::JsonSchema;
use serde::Deserialize;

use super::short;
use super::sink::Failure;
use crate::transport::Message;

/// `key_queues` of an AMQP sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyQueuesConfig {
    /// The header naming a message's key. Default: `ce-subject`.
    #[serde(default = "default_key_header")]
    pub key_header: String,
    /// The header giving its status. Default: `ce-type`.
    #[serde(default = "default_status_header")]
    pub status_header: String,
    /// The statuses the policy applies to; other messages are published
    /// as they are. Default: `kytos/topology.link_up`,
    /// `kytos/topology.link_down`.
    #[serde(default = "default_statuses")]
    pub statuses: Vec<String>,
    /// The key's queue is named `<queue_prefix><key>`.
    pub queue_prefix: String,
    /// Keys whose queues are declared at start (EP038's link status queue
    /// initialisation from settings).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Suppress a repeated status while the key's queue is not empty.
    /// Default: true.
    #[serde(default = "yes")]
    pub continuity: bool,
}

fn default_key_header() -> String {
    "ce-subject".into()
}

fn default_status_header() -> String {
    "ce-type".into()
}

fn default_statuses() -> Vec<String> {
    vec![
        "kytos/topology.link_up".into(),
        "kytos/topology.link_down".into(),
    ]
}

fn yes() -> bool {
    true
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Not the policy's business: publish as usual.
    Publish,
    /// Publish, plus a copy to `queue`; hand its confirmation to
    /// [`KeyQueues::copied`].
    PublishAndCopy { key: String, queue: String },
    /// A repeat the consumer has not caught up with: drop it.
    Suppress,
}

/// The policy's state for one sink connection's lifetime and beyond (the
/// last statuses survive reconnections).
#[derive(Debug)]
pub(super) struct KeyQueues {
    config: KeyQueuesConfig,
    /// Queues known to exist on the current connection.
    declared: HashSet<String>,
    /// Key -> the status last published.
    last: HashMap<String, String>,
    /// Key -> the confirmation of the last copy published to its queue.
    /// A broker counts a queue's messages apart from the publishes it is
    /// still routing, so the count is asked only once the previous copy
    /// is confirmed (then it is in the queue).
    unconfirmed: HashMap<String, CopyConfirm>,
}

/// How a copy's publish ended: acked, nacked, or the error's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CopyOutcome {
    Acked,
    Nacked,
    Failed(String),
}

/// The shared confirmation of one copy.
pub(super) type CopyConfirm = Shared<BoxFuture<'static, CopyOutcome>>;

/// Wraps a copy's confirmation so that the sink and the policy can both
/// wait for it.
pub(super) fn share(
    confirm: impl std::future::Future<Output = Result<lapin::Confirmation, lapin::Error>>
    + Send
    + 'static,
) -> CopyConfirm {
    async move {
        match confirm.await {
            Ok(lapin::Confirmation::Nack(None)) => CopyOutcome::Nacked,
            Ok(_) => CopyOutcome::Acked,
            Err(e) => CopyOutcome::Failed(e.to_string()),
        }
    }
    .boxed()
    .shared()
}

fn header<'m>(m: &'m Message, name: &str) -> Option<&'m str> {
    m.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

impl KeyQueues {
    pub(super) fn new(config: KeyQueuesConfig) -> KeyQueues {
        KeyQueues {
            config,
            declared: HashSet::new(),
            last: HashMap::new(),
            unconfirmed: HashMap::new(),
        }
    }

    /// Forgets what the broker had: a new connection may be to a broker
    /// that lost non-durable state.
    pub(super) fn reconnected(&mut self) {
        self.declared.clear();
        self.unconfirmed.clear();
    }

    /// Records the confirmation of the copy just published for `key`.
    pub(super) fn copied(&mut self, key: String, confirm: CopyConfirm) {
        self.unconfirmed.insert(key, confirm);
    }

    /// Declares the queues of the configured keys.
    pub(super) async fn declare_configured(
        &mut self,
        connection: &Connection,
    ) -> Result<(), Failure> {
        for key in self.config.keys.clone() {
            let queue = format!("{}{key}", self.config.queue_prefix);
            self.declare(connection, &queue).await?;
        }
        Ok(())
    }

    async fn declare(&mut self, connection: &Connection, queue: &str) -> Result<(), Failure> {
        if self.declared.contains(queue) {
            return Ok(());
        }
        let name = short("queue name", queue).map_err(|e| Failure::Permanent(e.to_string()))?;
        let failed =
            |e: lapin::Error| failure(connection, &format!("cannot declare queue `{queue}`"), e);
        let channel = connection.create_channel().await.map_err(failed)?;
        channel
            .queue_declare(
                name,
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(failed)?;
        let _ = channel.close(200, "declared".into()).await;
        tracing::info!(queue, "declared the queue of a new key");
        self.declared.insert(queue.to_owned());
        Ok(())
    }

    /// Decides about `m`, declaring its key's queue when it is new and
    /// asking the broker whether the queue was consumed.
    pub(super) async fn decide(
        &mut self,
        connection: &Connection,
        channel: &Channel,
        m: &Message,
    ) -> Result<Decision, Failure> {
        let (Some(key), Some(status)) = (
            header(m, &self.config.key_header),
            header(m, &self.config.status_header),
        ) else {
            return Ok(Decision::Publish);
        };
        if !self.config.statuses.iter().any(|s| s == status) {
            return Ok(Decision::Publish);
        }
        let queue = format!("{}{key}", self.config.queue_prefix);
        self.declare(connection, &queue).await?;
        let repeat = self.last.get(key).is_some_and(|last| last == status);
        if self.config.continuity && repeat {
            if let Some(previous) = self.unconfirmed.remove(key)
                && let CopyOutcome::Failed(reason) = previous.await
            {
                return Err(Failure::Connection(reason));
            }
            let name =
                short("queue name", &queue).map_err(|e| Failure::Permanent(e.to_string()))?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let state = channel
                .queue_declare(name, passive, FieldTable::default())
                .await
                // The queue was declared just before: a failure here is the
                // connection's.
                .map_err(|e| Failure::Connection(e.to_string()))?;
            if state.message_count() > 0 {
                tracing::debug!(
                    key,
                    status,
                    queue,
                    "suppressed a repeat the consumer has not caught up with"
                );
                return Ok(Decision::Suppress);
            }
        }
        self.last.insert(key.to_owned(), status.to_owned());
        Ok(Decision::PublishAndCopy {
            key: key.to_owned(),
            queue,
        })
    }
}

/// A failed declare: the broker refusing it (permissions, a queue of
/// other arguments) while the connection lives is for good; anything else
/// is the connection's, to retry.
fn failure(connection: &Connection, what: &str, e: lapin::Error) -> Failure {
    if connection.status().connected() {
        Failure::Permanent(format!("{what}: {e}"))
    } else {
        Failure::Connection(e.to_string())
    }
}
