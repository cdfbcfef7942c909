//! Exponential backoff with jitter for reconnects and retries.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// Retry timing: how long to wait between attempts to reach an unreachable
/// broker (or to run a failed batch again), and how often to remind the
/// operator that an outage goes on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First wait after a failure, in milliseconds.
    pub initial_interval_ms: u64,
    /// Longest wait between attempts, in milliseconds; each failure doubles
    /// the wait up to this.
    pub max_interval_ms: u64,
    /// While a broker stays unreachable, log a reminder this often, in
    /// seconds (one alarm line when the outage starts, one when it ends).
    pub reminder_interval_s: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_interval_ms: 200,
            max_interval_ms: 10_000,
            reminder_interval_s: 60,
        }
    }
}

impl RetryConfig {
    /// A fresh backoff sequence.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.initial_interval_ms.max(1)),
            Duration::from_millis(self.max_interval_ms.max(1)),
        )
    }

    pub fn reminder_interval(&self) -> Duration {
        Duration::from_secs(self.reminder_interval_s.max(1))
    }
}

/// An exponential backoff sequence: `initial`, doubling up to `max`, each
/// wait jittered by up to ±20 % so that many clients do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::random_range(0.8..1.2);
        base.mul_f64(jitter).min(self.max)
    }

    /// Starts over from `initial` (call after a success).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// Sleeps for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert!((80..=120).contains(&d[0]), "{d:?}");
        assert!((160..=240).contains(&d[1]), "{d:?}");
        assert!((280..=350).contains(&d[2]) && d[3] <= 350, "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
