//! The queue in front of the processing stage of a `latest` pipeline: when
//! full, pushing discards the oldest entry, so the source never waits and
//! what reaches the sink is as recent as possible.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// A bounded queue that drops its oldest entry when full.
#[derive(Debug)]
pub(crate) struct LatestQueue<T> {
    capacity: usize,
    inner: Mutex<(VecDeque<T>, bool)>,
    notify: Notify,
}

impl<T> LatestQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        LatestQueue {
            capacity: capacity.max(1),
            inner: Mutex::new((VecDeque::new(), false)),
            notify: Notify::new(),
        }
    }

    /// Appends `item`; returns the entry dropped to make room, if any.
    pub(crate) fn push(&self, item: T) -> Option<T> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = if guard.0.len() >= self.capacity {
            guard.0.pop_front()
        } else {
            None
        };
        guard.0.push_back(item);
        drop(guard);
        self.notify.notify_one();
        dropped
    }

    /// No more pushes; `pop` returns `None` once the queue is empty.
    pub(crate) fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.notify.notify_one();
    }

    /// The oldest entry, waiting for one.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            {
                let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(item) = guard.0.pop_front() {
                    return Some(item);
                }
                if guard.1 {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drops_oldest_when_full() {
        let q = LatestQueue::new(2);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        q.close();
        assert_eq!(q.pop().await, Some(2));
        assert_eq!(q.pop().await, Some(3));
        assert_eq!(q.pop().await, None);
    }
}
