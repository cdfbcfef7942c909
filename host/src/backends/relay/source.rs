//! The source of a pipeline reading a copy flow by relay: one task holds a
//! FNAP session with the publisher's FNAA (reconnecting with backoff and
//! outage alarms when it breaks), turns each chunk's events into Kafka
//! binary-mode messages for the pipeline, and sends `ACK <seq>` once the
//! pipeline acknowledged every event of chunks up to `seq`, which it does
//! after this host's broker confirmed them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use fnaa_control::client::{Client, ClientError};
use fnaa_control::fnap::relay::{DEFAULT_WINDOW, ServerLine};
use fnaa_control::provision::RelayPeer;
use fnaa_dataplane::transport::{
    AckToken, Acker, BrokerFuture, ChannelSource, EndpointContext, Readiness, Received,
};
use fnaa_event::binding::{Mode, kafka};

use tokio::sync::mpsc;

use crate::backends::peers::FnapPeers;

/// Events waiting for the pipeline: a window of full chunks.
const BUFFERED_EVENTS: usize = 4_096;

/// A relayed source; it ends its session when the pipeline drops it.
pub(super) fn open(
    peer: RelayPeer,
    copy: String,
    peers: Arc<FnapPeers>,
    context: EndpointContext,
    description: String,
) -> ChannelSource {
    let ready = Readiness::new();
    let (events, received) = mpsc::channel(BUFFERED_EVENTS);
    let (acks, acked) = mpsc::unbounded_channel();
    let acker = Arc::new(RelayAcker {
        state: Mutex::new(AckState::default()),
        acks,
    });
    let task = Relay {
        peer,
        copy,
        peers,
        context,
        events,
        ready: ready.clone(),
        acker: acker.clone(),
        acked,
    };
    tokio::spawn(task.run());
    ChannelSource::new(ready, received, acker, description)
}

/// The connection task.
struct Relay {
    peer: RelayPeer,
    copy: String,
    peers: Arc<FnapPeers>,
    context: EndpointContext,
    events: mpsc::Sender<Received>,
    ready: Readiness,
    acker: Arc<RelayAcker>,
    acked: mpsc::UnboundedReceiver<(u64, u64)>,
}

/// Why a session ended.
enum Ended {
    /// The pipeline dropped the source.
    Stopped,
    /// Broken or refused; try again after a while.
    Failed(String),
}

impl Relay {
    async fn run(mut self) {
        let mut backoff = self.context.retry.backoff();
        let mut generation = 0;
        loop {
            generation += 1;
            self.acker.start(generation);
            match self.session(generation, &mut backoff).await {
                Ended::Stopped => return,
                Ended::Failed(reason) => self.context.monitor.failed(&reason),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.events.closed() => return,
            }
        }
    }

    async fn session(
        &mut self,
        generation: u64,
        backoff: &mut fnaa_dataplane::backoff::Backoff,
    ) -> Ended {
        let mut client = tokio::select! {
            session = self.peers.session_with(&self.peer) => match session {
                Ok(client) => client,
                Err(error) => return Ended::Failed(error.to_string()),
            },
            () = self.events.closed() => return Ended::Stopped,
        };
        if let Err(error) = client.start_relay(&self.copy, DEFAULT_WINDOW).await {
            return Ended::Failed(format!(
                "RELAY {} at {}: {error}",
                self.copy, self.peer.fnaa
            ));
        }
        self.ready.set();
        self.context.monitor.recovered();
        backoff.reset();
        tracing::debug!(copy = %self.copy, fnaa = %self.peer.fnaa, "relay session started");
        let mut tag = 0;
        loop {
            let line = tokio::select! {
                line = client.relay_line() => line,
                acked = self.acked.recv() => {
                    match acked {
                        Some((g, seq)) if g == generation => {
                            if let Err(error) = client.relay_ack(seq).await {
                                return Ended::Failed(format!("ACK to {}: {error}", self.peer.fnaa));
                            }
                        }
                        Some(_) => {}
                        None => return Ended::Stopped,
                    }
                    continue;
                }
                () = self.events.closed() => {
                    let _ = client.end_relay().await;
                    let _ = client.quit().await;
                    return Ended::Stopped;
                }
            };
            match line {
                Ok(ServerLine::Ping) => {}
                Ok(ServerLine::Events { seq, count }) => {
                    match self
                        .chunk(&mut client, generation, &mut tag, seq, count)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => return Ended::Stopped,
                        Err(error) => return Ended::Failed(error),
                    }
                }
                Ok(ServerLine::Reply { code, text }) => {
                    return Ended::Failed(format!(
                        "{} ended the relay of {}: {code} {text}",
                        self.peer.fnaa, self.copy
                    ));
                }
                Err(error) => {
                    return Ended::Failed(format!("relay from {}: {error}", self.peer.fnaa));
                }
            }
        }
    }

    /// Takes the `count` events of chunk `seq` and hands them to the
    /// pipeline; `Ok(false)` when the pipeline is gone.
    async fn chunk(
        &mut self,
        client: &mut Client,
        generation: u64,
        tag: &mut u64,
        seq: u64,
        count: usize,
    ) -> Result<bool, String> {
        let mut messages = Vec::with_capacity(count);
        for _ in 0..count {
            let line = client
                .relay_event()
                .await
                .map_err(|e: ClientError| format!("relay from {}: {e}", self.peer.fnaa))?;
            match fnaa_event::from_json(line.as_bytes()) {
                Ok(event) => messages.push(kafka::encode(&event, Mode::Binary)),
                // Nothing here could deliver it: say so, and go on.
                Err(error) => {
                    tracing::error!(copy = %self.copy, fnaa = %self.peer.fnaa, %error, "dropped a relayed line that is no CloudEvent")
                }
            }
        }
        self.acker.chunk(seq, *tag + messages.len() as u64);
        if messages.is_empty() {
            self.acker.settle();
        }
        for message in messages {
            *tag += 1;
            let received = Received {
                message,
                token: AckToken::delivery(generation, *tag),
                timestamp_ms: None,
            };
            if self.events.send(received).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Acknowledgements of one session: the chunks received, each with the
/// tag of its last event, and the highest tag the pipeline acknowledged.
#[derive(Debug, Default)]
struct AckState {
    generation: u64,
    acked_tag: u64,
    chunks: VecDeque<(u64, u64)>,
}

/// Turns the pipeline's acknowledgements into `ACK <seq>` lines.
struct RelayAcker {
    state: Mutex<AckState>,
    acks: mpsc::UnboundedSender<(u64, u64)>,
}

impl RelayAcker {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session: what came before is redelivered by the publisher.
    fn start(&self, generation: u64) {
        *self.lock() = AckState {
            generation,
            ..AckState::default()
        };
    }

    /// Chunk `seq` ends with event `last_tag`.
    fn chunk(&self, seq: u64, last_tag: u64) {
        self.lock().chunks.push_back((seq, last_tag));
    }

    /// Sends the ACK of the newest chunk whose events are all
    /// acknowledged, if any.
    fn settle(&self) {
        let mut state = self.lock();
        let mut newest = None;
        while let Some(&(seq, last)) = state.chunks.front() {
            if last > state.acked_tag {
                break;
            }
            newest = Some(seq);
            state.chunks.pop_front();
        }
        if let Some(seq) = newest {
            let _ = self.acks.send((state.generation, seq));
        }
    }
}

impl Acker for RelayAcker {
    fn ack(&self, tokens: Vec<AckToken>) -> BrokerFuture<'_, ()> {
        Box::pin(async move {
            {
                let mut state = self.lock();
                for token in tokens {
                    if let Some((generation, tag)) = token.as_delivery()
                        && generation == state.generation
                    {
                        state.acked_tag = state.acked_tag.max(tag);
                    }
                }
            }
            self.settle();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acker() -> (RelayAcker, mpsc::UnboundedReceiver<(u64, u64)>) {
        let (acks, acked) = mpsc::unbounded_channel();
        let acker = RelayAcker {
            state: Mutex::new(AckState::default()),
            acks,
        };
        acker.start(1);
        (acker, acked)
    }

    fn sent(acked: &mut mpsc::UnboundedReceiver<(u64, u64)>) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| acked.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn a_chunk_is_acknowledged_once_all_its_events_are() {
        let (acker, mut acked) = acker();
        acker.chunk(1, 2);
        acker.chunk(2, 3);
        acker.ack(vec![AckToken::delivery(1, 1)]).await.unwrap();
        assert_eq!(sent(&mut acked), []);
        acker.ack(vec![AckToken::delivery(1, 2)]).await.unwrap();
        assert_eq!(sent(&mut acked), [(1, 1)]);
        acker.ack(vec![AckToken::delivery(1, 3)]).await.unwrap();
        assert_eq!(sent(&mut acked), [(1, 2)]);
    }

    #[tokio::test]
    async fn several_chunks_at_once_send_one_ack_for_the_newest() {
        let (acker, mut acked) = acker();
        acker.chunk(1, 1);
        acker.chunk(2, 2);
        acker.chunk(3, 4);
        acker
            .ack(vec![AckToken::delivery(1, 1), AckToken::delivery(1, 2)])
            .await
            .unwrap();
        assert_eq!(sent(&mut acked), [(1, 2)]);
    }

    #[tokio::test]
    async fn an_empty_chunk_waits_for_the_chunks_before_it() {
        let (acker, mut acked) = acker();
        acker.chunk(1, 2);
        // Chunk 2 holds no event: it ends where chunk 1 ended.
        acker.chunk(2, 2);
        acker.settle();
        assert_eq!(sent(&mut acked), []);
        acker.ack(vec![AckToken::delivery(1, 2)]).await.unwrap();
        assert_eq!(sent(&mut acked), [(1, 2)]);
    }

    #[tokio::test]
    async fn tokens_of_an_earlier_session_are_skipped() {
        let (acker, mut acked) = acker();
        acker.chunk(1, 1);
        acker.start(2);
        acker.chunk(1, 1);
        acker.ack(vec![AckToken::delivery(1, 1)]).await.unwrap();
        assert_eq!(
            sent(&mut acked),
            [],
            "an old session's token acked a new chunk"
        );
        acker.ack(vec![AckToken::delivery(2, 1)]).await.unwrap();
        assert_eq!(sent(&mut acked), [(2, 1)]);
    }
}
