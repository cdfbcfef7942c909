//! Appending to outbox topics.

use std::sync::Arc;
use std::time::Duration;

use super::{BROKER, Outbox, OutboxError};
use crate::transport::{Message, Outcome, SendFuture, Sink, TransportError};

/// How long a sink waits before trying a full outbox again.
const FULL_RETRY: Duration = Duration::from_millis(500);

/// Appends each message to its destination topic (or the sink's default
/// one), durably, before confirming it. A full outbox holds the batch
/// back until consumers free room: nothing is dropped.
#[derive(Debug)]
pub struct OutboxSink {
    outbox: Arc<Outbox>,
    default_topic: Option<String>,
}

impl OutboxSink {
    pub fn new(outbox: Arc<Outbox>, default_topic: Option<&str>) -> OutboxSink {
        OutboxSink {
            outbox,
            default_topic: default_topic.map(str::to_owned),
        }
    }
}

/// Messages bound for one topic, consecutive in their batch.
type Run = (String, Vec<Message>);

/// Consecutive runs of messages bound for the same topic, in order, and
/// per message the run it went to (`None`: it has no topic).
fn runs(batch: Vec<Message>, default_topic: Option<&str>) -> (Vec<Run>, Vec<Option<usize>>) {
    let mut runs: Vec<Run> = Vec::new();
    let mut placed = Vec::with_capacity(batch.len());
    for message in batch {
        let topic = match (&message.destination.name, default_topic) {
            (name, _) if !name.is_empty() => name.clone(),
            (_, Some(default)) => default.to_owned(),
            _ => {
                placed.push(None);
                continue;
            }
        };
        match runs.last_mut() {
            Some((last, messages)) if *last == topic => messages.push(message),
            _ => runs.push((topic, vec![message])),
        }
        placed.push(Some(runs.len() - 1));
    }
    (runs, placed)
}

impl Sink for OutboxSink {
    fn send(&mut self, batch: Vec<Message>) -> SendFuture {
        let outbox = self.outbox.clone();
        let (runs, placed) = runs(batch, self.default_topic.as_deref());
        Box::pin(async move {
            let mut warned = false;
            for (topic, messages) in runs {
                loop {
                    let (outbox, topic, messages) =
                        (outbox.clone(), topic.clone(), messages.clone());
                    let appended = tokio::task::spawn_blocking(move || {
                        outbox.append(&topic, &messages).map(|_| ())
                    })
                    .await
                    .map_err(|e| TransportError::Client {
                        broker: BROKER,
                        reason: format!("outbox task failed: {e}"),
                    })?;
                    match appended {
                        Ok(()) => break,
                        Err(full @ OutboxError::Full { .. }) => {
                            if !warned {
                                tracing::warn!(error = %full, "outbox sink waits for room");
                                warned = true;
                            }
                            tokio::time::sleep(FULL_RETRY).await;
                        }
                        Err(e) => {
                            return Err(TransportError::Client {
                                broker: BROKER,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
            }
            Ok(placed
                .into_iter()
                .map(|run| match run {
                    Some(_) => Outcome::Confirmed,
                    None => Outcome::Rejected {
                        reason: "the message has no destination and the sink no topic".into(),
                    },
                })
                .collect())
        })
    }

    fn describe(&self) -> String {
        match &self.default_topic {
            Some(topic) => format!("outbox {} topic {topic}", self.outbox.path().display()),
            None => format!(
                "outbox {} topics by destination",
                self.outbox.path().display()
            ),
        }
    }
}
