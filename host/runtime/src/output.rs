//! Guest stdout and stderr, routed line by line into `tracing` with the
//! plugin and instance names, within the per-call log budget.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Counts log records per call, so one plugin cannot flood the host's log.
#[derive(Debug)]
pub struct LogBudget {
    pub limit: usize,
    pub used: usize,
    pub dropped: usize,
}

impl LogBudget {
    pub fn new(limit: usize) -> Self {
        LogBudget {
            limit,
            used: 0,
            dropped: 0,
        }
    }

    /// True if one more record may be written; counts it either way.
    pub fn take(&mut self) -> bool {
        if self.used < self.limit {
            self.used += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Starts a new call; returns how many records the last one dropped.
    pub fn reset(&mut self) -> usize {
        self.used = 0;
        std::mem::take(&mut self.dropped)
    }
}

/// Names attached to every record a plugin writes.
#[derive(Debug, Clone)]
pub struct LogTarget {
    pub plugin: Arc<str>,
    pub instance: Arc<str>,
    pub budget: Arc<Mutex<LogBudget>>,
}

impl LogTarget {
    /// Writes one record if the budget allows.
    pub fn emit(&self, stream: &'static str, line: &str) {
        let allowed = self.budget.lock().map(|mut b| b.take()).unwrap_or(false);
        if allowed {
            tracing::info!(target: "fnaa::plugin", plugin = %self.plugin, instance = %self.instance, stream, "{line}");
        }
    }
}

/// A guest's stdout or stderr.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    target: LogTarget,
    stream: &'static str,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    pub fn new(target: LogTarget, stream: &'static str) -> Self {
        GuestOutput {
            target,
            stream,
            pending: Arc::default(),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        pending.extend_from_slice(bytes);
        // Emit complete lines; keep a partial last line for the next write,
        // but never let it grow without bound.
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            self.target.emit(
                self.stream,
                String::from_utf8_lossy(&line[..end]).trim_end_matches('\r'),
            );
        }
        if pending.len() > 64 * 1024 {
            let line = std::mem::take(&mut *pending);
            self.target
                .emit(self.stream, &String::from_utf8_lossy(&line));
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.3 guests use this; they are not supported yet.
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}
