//! Throttling of failed logins per client address, shared by FNAP and the
//! gRPC admin API: failures on either count together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::FnapConfig;

/// Entries kept at most; expired ones are pruned when it is reached.
const MAX_TRACKED: usize = 100_000;

/// Counts failed logins per address over a window.
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    limit: u32,
    window: Duration,
    delay: Duration,
}

impl LoginThrottle {
    pub(crate) fn new(limit: u32, window: Duration, delay: Duration) -> LoginThrottle {
        LoginThrottle {
            failures: Mutex::default(),
            limit: limit.max(1),
            window,
            delay,
        }
    }

    /// The policy of `[fnap]` (`login_failures_before_throttle`,
    /// `login_throttle_window_secs`, `login_failure_delay_ms`).
    pub(crate) fn from_config(config: &FnapConfig) -> LoginThrottle {
        LoginThrottle::new(
            config.login_failures_before_throttle,
            Duration::from_secs(config.login_throttle_window_secs),
            Duration::from_millis(config.login_failure_delay_ms),
        )
    }

    /// How long a failed login waits before it is answered.
    pub(crate) fn failure_delay(&self) -> Duration {
        self.delay
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether logins from `address` are refused now.
    pub(crate) fn is_blocked(&self, address: IpAddr) -> bool {
        let failures = self.lock();
        matches!(failures.get(&address), Some((count, since)) if *count >= self.limit && since.elapsed() < self.window)
    }

    /// Counts one failed login.
    pub(crate) fn record_failure(&self, address: IpAddr) {
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures.entry(address).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}
