//! The copy flows of [`MemoryPipelines`](super::memory::MemoryPipelines):
//! a log of chunks per copy, relayed from the first chunk not acknowledged,
//! as a broker's consumer state would have it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CopyChunk, CopyFeed};

/// The chunks appended to one copy flow and how many events relays
/// acknowledged.
#[derive(Debug, Default)]
pub struct CopyLog {
    chunks: Vec<Vec<String>>,
    /// Events acknowledged, counted from the first.
    pub acknowledged: usize,
}

impl CopyLog {
    pub(super) fn append(&mut self, events: &[&str]) {
        self.chunks
            .push(events.iter().map(|e| (*e).to_owned()).collect());
    }
}

fn lock(log: &Mutex<CopyLog>) -> std::sync::MutexGuard<'_, CopyLog> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A reader of `log` from its first unacknowledged chunk.
pub(super) fn feed(log: Arc<Mutex<CopyLog>>) -> CopyFeed {
    let (chunks, receiver) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(async move {
        // The chunk after the last acknowledged event.
        let mut next = {
            let log = lock(&log);
            let mut events = 0;
            log.chunks
                .iter()
                .take_while(|chunk| {
                    events += chunk.len();
                    events <= log.acknowledged
                })
                .count()
        };
        loop {
            let found = {
                let log = lock(&log);
                log.chunks.get(next).map(|events| {
                    let end = log.chunks[..=next].iter().map(Vec::len).sum::<usize>();
                    (events.clone(), end)
                })
            };
            let Some((events, end)) = found else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            next += 1;
            let acked = log.clone();
            let ack = Box::pin(async move {
                let mut log = lock(&acked);
                log.acknowledged = log.acknowledged.max(end);
                Ok(())
            });
            if chunks.send(CopyChunk { events, ack }).await.is_err() {
                return;
            }
        }
    });
    CopyFeed {
        chunks: receiver,
        ready: Box::pin(async {}),
        guard: Box::new(tokio_util::task::AbortOnDropHandle::new(task)),
    }
}
