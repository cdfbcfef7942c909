//! Outage alarms: one alarm line when a broker becomes unreachable, a
//! reminder every so often while it stays so, and one line when it is back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tracks whether one broker connection (a pipeline's source, sink or
/// dead-letter sink) is reachable, and logs the alarm lines.
#[derive(Debug)]
pub struct OutageMonitor {
    what: String,
    reminder: Duration,
    state: Mutex<State>,
    outages: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    down_since: Option<Instant>,
    last_log: Option<Instant>,
    failures: u64,
}

impl OutageMonitor {
    /// A monitor for `what` (e.g. `pipeline "edge" sink (mqtt broker "embedded" 127.0.0.1:11883)`).
    pub fn new(what: impl Into<String>, reminder: Duration) -> Self {
        OutageMonitor {
            what: what.into(),
            reminder,
            state: Mutex::new(State::default()),
            outages: AtomicU64::new(0),
        }
    }

    /// What this monitor watches.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Records a failure to reach the broker. The first failure of an outage
    /// logs the alarm; later ones log a reminder at most every reminder
    /// interval.
    pub fn failed(&self, reason: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.failures += 1;
        match state.down_since {
            None => {
                state.down_since = Some(now);
                state.last_log = Some(now);
                self.outages.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    alarm = "broker_unreachable",
                    target_name = %self.what,
                    "ALARM: {} is unreachable: {reason}; retrying until it is back",
                    self.what
                );
            }
            Some(since) => {
                if state
                    .last_log
                    .is_none_or(|l| now.duration_since(l) >= self.reminder)
                {
                    state.last_log = Some(now);
                    tracing::warn!(
                        alarm = "broker_unreachable",
                        target_name = %self.what,
                        "ALARM (reminder): {} unreachable for {}s ({} failed attempts): {reason}",
                        self.what,
                        now.duration_since(since).as_secs(),
                        state.failures
                    );
                }
            }
        }
    }

    /// Records a success; ends the outage, if any, with one log line.
    pub fn recovered(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(since) = state.down_since.take() {
            tracing::info!(
                alarm = "broker_reachable",
                target_name = %self.what,
                "{} is reachable again after {:.1}s ({} failed attempts)",
                self.what,
                since.elapsed().as_secs_f64(),
                state.failures
            );
            state.failures = 0;
            state.last_log = None;
        }
    }

    /// True while an outage lasts.
    pub fn is_down(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .down_since
            .is_some()
    }

    /// Outages seen so far.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outages_once() {
        let m = OutageMonitor::new("test sink", Duration::from_secs(60));
        assert!(!m.is_down());
        m.failed(&"connection refused");
        m.failed(&"connection refused");
        assert!(m.is_down());
        m.recovered();
        m.recovered();
        assert!(!m.is_down());
        assert_eq!(m.outages(), 1);
    }
}
