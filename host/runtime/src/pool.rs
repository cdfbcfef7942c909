//! Many registered instances, few live ones.
//!
//! A host may carry 100,000 subscriptions, far more live wasm instances than
//! one process can map. The pool registers every instance cheaply and keeps
//! at most `max_live_instances` live, evicting the least recently used.
//! Instance state lives in the host's state store, so an evicted instance
//! comes back on its next batch with its state. Stateless plugins with the
//! same configuration share one live instance.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest as _, Sha256};

use crate::error::{ProcessError, RuntimeError};
use crate::plugin::Plugin;
use crate::processor::{Emitted, ProcessorInstance};
use crate::runtime::Runtime;
use fnaa_event::Event;

type Shared = Arc<Mutex<ProcessorInstance>>;

struct Registration {
    plugin: Plugin,
    config: Arc<[(String, String)]>,
    /// The live instance it runs on: its own, or a shared one.
    live_key: Arc<str>,
}

struct LiveEntry {
    instance: Shared,
    last_used: Instant,
}

/// Counters of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub registered: usize,
    pub live: usize,
    pub created: u64,
    pub evicted: u64,
}

/// An evicting pool of processor instances. Cheap to clone.
#[derive(Clone)]
pub struct InstancePool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    runtime: Runtime,
    registrations: RwLock<HashMap<Arc<str>, Registration>>,
    live: Mutex<LruCache<Arc<str>, LiveEntry>>,
    created: AtomicU64,
    evicted: AtomicU64,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl InstancePool {
    /// A pool keeping at most the runtime's `max_live_instances` live.
    pub fn new(runtime: &Runtime) -> Self {
        let capacity =
            NonZeroUsize::new(runtime.config().max_live_instances).unwrap_or(NonZeroUsize::MIN);
        InstancePool {
            inner: Arc::new(PoolInner {
                runtime: runtime.clone(),
                registrations: RwLock::default(),
                live: Mutex::new(LruCache::new(capacity)),
                created: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// Registers instance `name` of `plugin` with `config`. Nothing is
    /// instantiated until its first batch. Registering a name again replaces
    /// it (a configuration or plugin-version update).
    pub fn register(
        &self,
        name: &str,
        plugin: &Plugin,
        config: &[(String, String)],
    ) -> Result<(), RuntimeError> {
        let live_key: Arc<str> = if plugin.info().stateless {
            let mut digest = Sha256::new();
            for (k, v) in config {
                digest.update((k.len() as u64).to_le_bytes());
                digest.update(k);
                digest.update((v.len() as u64).to_le_bytes());
                digest.update(v);
            }
            format!(
                "shared:{}:{}",
                plugin.digest(),
                hex::encode(digest.finalize())
            )
            .into()
        } else {
            format!("own:{name}").into()
        };
        let name: Arc<str> = name.into();
        let registration = Registration {
            plugin: plugin.clone(),
            config: config.into(),
            live_key: live_key.clone(),
        };
        let previous = self.write_registrations().insert(name, registration);
        if let Some(previous) = previous {
            self.drop_live(&previous.live_key);
        }
        Ok(())
    }

    /// Forgets instance `name` and its live instance. Its durable state is
    /// kept unless `clear_state` is set.
    pub fn unregister(&self, name: &str, clear_state: bool) -> Result<bool, RuntimeError> {
        let removed = self.write_registrations().remove(name);
        let Some(removed) = removed else {
            return Ok(false);
        };
        let still_shared = self
            .read_registrations()
            .values()
            .any(|r| r.live_key == removed.live_key);
        if !still_shared {
            self.drop_live(&removed.live_key);
        }
        if clear_state {
            self.inner.runtime.state_store().clear(name)?;
        }
        Ok(true)
    }

    /// Processes a batch on instance `name`, creating its live instance
    /// first if needed.
    pub fn process(
        &self,
        name: &str,
        port: &str,
        batch: Vec<Event>,
    ) -> Result<Vec<Emitted>, ProcessError> {
        let instance = self.live_instance(name)?;
        let mut instance = instance.lock().map_err(|_| ProcessError::Unavailable {
            plugin: String::new(),
            instance: name.to_owned(),
            reason: "instance lock poisoned".into(),
        })?;
        instance.process(port, batch)
    }

    fn live_instance(&self, name: &str) -> Result<Shared, ProcessError> {
        let (plugin, config, live_key) = {
            let registrations = self.read_registrations();
            let registration =
                registrations
                    .get(name)
                    .ok_or_else(|| ProcessError::Unavailable {
                        plugin: String::new(),
                        instance: name.to_owned(),
                        reason: "no such instance is registered".into(),
                    })?;
            (
                registration.plugin.clone(),
                registration.config.clone(),
                registration.live_key.clone(),
            )
        };
        if let Some(entry) = self.lock_live().get_mut(&live_key) {
            entry.last_used = Instant::now();
            return Ok(entry.instance.clone());
        }
        // Instantiate outside the lock: other instances keep running.
        let state_name = if plugin.info().stateless {
            &*live_key
        } else {
            name
        };
        let instance = ProcessorInstance::new(&self.inner.runtime, &plugin, state_name, &config)
            .map_err(|e| ProcessError::Unavailable {
                plugin: plugin.name().to_owned(),
                instance: name.to_owned(),
                reason: e.to_string(),
            })?;
        self.inner.created.fetch_add(1, Ordering::Relaxed);
        let instance = Arc::new(Mutex::new(instance));
        let mut live = self.lock_live();
        // Another thread may have created it meanwhile; keep the first.
        if let Some(entry) = live.get_mut(&live_key) {
            return Ok(entry.instance.clone());
        }
        if live
            .push(
                live_key,
                LiveEntry {
                    instance: instance.clone(),
                    last_used: Instant::now(),
                },
            )
            .is_some()
        {
            self.inner.evicted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(instance)
    }

    /// Evicts live instances idle for longer than `max_idle`; returns how
    /// many. The host calls this periodically.
    pub fn evict_idle(&self, max_idle: Duration) -> usize {
        let mut live = self.lock_live();
        let mut evicted = 0;
        while let Some((_, entry)) = live.peek_lru() {
            if entry.last_used.elapsed() < max_idle {
                break;
            }
            live.pop_lru();
            evicted += 1;
        }
        self.inner
            .evicted
            .fetch_add(evicted as u64, Ordering::Relaxed);
        evicted
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            registered: self.read_registrations().len(),
            live: self.lock_live().len(),
            created: self.inner.created.load(Ordering::Relaxed),
            evicted: self.inner.evicted.load(Ordering::Relaxed),
        }
    }

    fn drop_live(&self, live_key: &str) {
        self.lock_live().pop(live_key);
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, LruCache<Arc<str>, LiveEntry>> {
        // A panic while holding the lock cannot leave the cache inconsistent
        // (every operation is a single LruCache call), so recover it.
        self.inner
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_registrations(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Registration>> {
        self.inner
            .registrations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_registrations(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Registration>> {
        self.inner
            .registrations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
