//! Throttling of failed logins per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; expired ones are pruned when it is reached.
const MAX_TRACKED: usize = 100_000;

/// Counts failed logins per address over a window.
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    limit: u32,
    window: Duration,
}

impl LoginThrottle {
    pub(crate) fn new(limit: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            failures: Mutex::default(),
            limit: limit.max(1),
            window,
        }
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
