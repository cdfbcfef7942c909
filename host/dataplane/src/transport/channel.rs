//! A source whose connection task (AMQP, MQTT, NATS) hands deliveries
//! over a channel: batching, readiness and acknowledgements in one place,
//! the broker's own part in its task and its [`Acker`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Acker, Readiness, Received, Source, TransportError};

/// The pipeline's end of a connection task.
pub struct ChannelSource {
    ready: Readiness,
    messages: BatchBuffer<Received>,
    acker: Arc<dyn Acker>,
    description: String,
}

impl ChannelSource {
    /// Deliveries arrive on `rx`; `ready` is set by the task once it
    /// consumes; `acker` acknowledges to the task's broker.
    pub fn new(
        ready: Readiness,
        rx: tokio::sync::mpsc::Receiver<Received>,
        acker: Arc<dyn Acker>,
        description: String,
    ) -> Self {
        ChannelSource {
            ready,
            messages: BatchBuffer::new(rx),
            acker,
            description,
        }
    }
}

impl Source for ChannelSource {
    fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(self.messages.recv(max, linger))
    }

    fn acker(&self) -> Arc<dyn Acker> {
        self.acker.clone()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn ready(&self) -> BoxFuture<'static, ()> {
        self.ready.wait_owned()
    }
}

/// The receiving end of a transport's connection task, batched: up to
/// `max` items, waiting for the first one indefinitely, then for more until
/// `linger` has passed since the first. Cancel-safe: items taken from the
/// channel stay here until a `recv` returns them.
pub(crate) struct BatchBuffer<T> {
    rx: tokio::sync::mpsc::Receiver<T>,
    buffer: Vec<T>,
}

impl<T> BatchBuffer<T> {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<T>) -> Self {
        BatchBuffer {
            rx,
            buffer: Vec::new(),
        }
    }

    pub(crate) async fn recv(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<T>, TransportError> {
        let max = max.max(1);
        if self.buffer.is_empty() {
            let first = self.rx.recv().await.ok_or(TransportError::Closed)?;
            self.buffer.push(first);
        }
        let deadline = tokio::time::Instant::now() + linger;
        while self.buffer.len() < max {
            while self.buffer.len() < max {
                match self.rx.try_recv() {
                    Ok(item) => self.buffer.push(item),
                    Err(_) => break,
                }
            }
            if self.buffer.len() >= max {
                break;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(item)) => self.buffer.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        let rest = if self.buffer.len() > max {
            self.buffer.split_off(max)
        } else {
            Vec::new()
        };
        Ok(std::mem::replace(&mut self.buffer, rest))
    }
}
