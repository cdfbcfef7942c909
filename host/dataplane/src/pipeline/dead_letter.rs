//! Dead letters: events that failed in a stage or at the sink, annotated
//! with why, where and in which pipeline (`deadletter*` extension
//! attributes), and the dead-letter flow they are published to.

use fnaa_event::binding::STRUCTURED_CONTENT_TYPE;
use fnaa_event::{AttributeValue, Event};

use super::{Codec, DeadLetterSpec, PipelineError, Refusal};
use crate::transport::{Message, Outcome, Sink};

/// Marks `event` as a dead letter: why, where and in which pipeline it
/// failed, as extension attributes.
pub(super) fn annotate(
    mut event: Event,
    pipeline: &str,
    stage: &str,
    plugin: &str,
    reason: &str,
) -> Event {
    event.set_extension(
        "deadletterreason",
        AttributeValue::String(reason.to_owned()),
    );
    event.set_extension("deadletterstage", AttributeValue::String(stage.to_owned()));
    event.set_extension(
        "deadletterpipeline",
        AttributeValue::String(pipeline.to_owned()),
    );
    if !plugin.is_empty() {
        event.set_extension(
            "deadletterplugin",
            AttributeValue::String(plugin.to_owned()),
        );
    }
    event
}

/// The dead-letter flow of a pipeline.
pub(super) struct DeadLetter {
    /// `None` once the connector panicked: the flow is unusable.
    encoder: Option<Box<dyn Codec>>,
    sink: Box<dyn Sink>,
}

impl DeadLetter {
    pub(super) fn new(spec: DeadLetterSpec) -> Self {
        DeadLetter {
            encoder: Some(spec.encoder),
            sink: spec.sink,
        }
    }

    /// Encodes and publishes `events`, returning once the broker confirmed
    /// them (the sink retries through outages). Events the dead-letter
    /// connector cannot encode go out in structured mode instead.
    pub(super) async fn send(
        &mut self,
        pipeline: &str,
        events: Vec<Event>,
    ) -> Result<usize, PipelineError> {
        let Some(mut encoder) = self.encoder.take() else {
            return Err(PipelineError::DeadLetterConnectorLost);
        };
        let joined = tokio::task::spawn_blocking(move || {
            let r = encoder.encode(&events);
            (encoder, r, events)
        })
        .await;
        let (encoder, result, events) =
            joined.map_err(|e| PipelineError::DeadLetterConnectorPanicked(e.to_string()))?;
        self.encoder = Some(encoder);
        let results = match result {
            Ok(r) if r.len() == events.len() => r,
            _ => vec![Err(Refusal("dead-letter connector failed".to_owned())); events.len()],
        };
        let messages: Vec<Message> = events
            .iter()
            .zip(results)
            .map(|(e, r)| {
                r.unwrap_or_else(|_| Message {
                    content_type: Some(STRUCTURED_CONTENT_TYPE.to_owned()),
                    payload: fnaa_event::to_json(e),
                    ..Message::default()
                })
            })
            .collect();
        let outcomes = self
            .sink
            .send(messages)
            .await
            .map_err(PipelineError::DeadLetterSink)?;
        let mut sent = 0;
        for (e, o) in events.iter().zip(outcomes) {
            match o {
                Outcome::Confirmed => sent += 1,
                Outcome::Unroutable { reason } | Outcome::Rejected { reason } => tracing::error!(
                    pipeline,
                    event = %e.id,
                    "the dead-letter flow refused a failed event, which is lost: {reason}"
                ),
            }
        }
        Ok(sent)
    }
}
