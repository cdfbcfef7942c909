//! The store data of one plugin instance and the host side of the imports
//! the contract offers plugins: `log`, `state` and `clock`, plus a WASI
//! context that grants nothing the operator did not configure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng as _;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::processor::fnaa::plugin::{clock, log, state};
use crate::config::Grants;
use crate::output::{GuestOutput, LogBudget, LogTarget};
use crate::state::{StateError, StateStore};

/// Everything a store holds for one instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// Set when the limiter refused a memory growth, so that the resulting
    /// trap is reported as a memory-limit hit.
    pub memory_limit_hit: bool,
    pub log: LogTarget,
    pub state: StagedState,
}

impl HostState {
    pub fn new(
        plugin: &str,
        instance: &str,
        grants: Option<&Grants>,
        max_memory_bytes: usize,
        log_budget: usize,
        state: StagedState,
    ) -> std::io::Result<Self> {
        let log = LogTarget {
            plugin: plugin.into(),
            instance: instance.into(),
            budget: Arc::new(Mutex::new(LogBudget::new(log_budget))),
        };
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(GuestOutput::new(log.clone(), "stdout"));
        wasi.stderr(GuestOutput::new(log.clone(), "stderr"));
        let grants = grants.cloned().unwrap_or_default();
        if !grants.random {
            // Deterministic unless granted: randomness is an authority too,
            // and a fixed sequence keeps plugins reproducible.
            wasi.secure_random(rand::rngs::StdRng::seed_from_u64(0x666e_6161));
            wasi.insecure_random(rand::rngs::StdRng::seed_from_u64(0x666e_6162));
            wasi.insecure_random_seed(0x666e_6163);
        }
        for (name, value) in &grants.env {
            wasi.env(name, value);
        }
        for dir in &grants.dirs {
            wasi.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly)
                .map_err(|e| {
                    std::io::Error::other(format!("cannot grant {}: {e}", dir.host.display()))
                })?;
        }
        if grants.network {
            wasi.inherit_network();
            wasi.allow_ip_name_lookup(true);
        }
        Ok(HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .build(),
            memory_limit_hit: false,
            log,
            state,
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_limit_hit = true;
            wasmtime::bail!("memory limit exceeded: {desired} bytes requested");
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

/// The `state` interface of one instance: reads see staged writes first;
/// writes are staged and reach the store only when the call succeeds.
pub struct StagedState {
    namespace: Arc<str>,
    store: Arc<dyn StateStore>,
    quota: u64,
    staged: HashMap<String, Option<Vec<u8>>>,
}

/// Why `state.set` failed: refused to the plugin (the WIT `state-error` it
/// sees), or the host's store failed, which traps the call so that the
/// batch is retried (bindgen's `trappable_error_type`).
#[derive(Debug, thiserror::Error)]
pub enum SetFailure {
    #[error("state write refused: {0:?}")]
    Refused(state::StateError),
    #[error(transparent)]
    Store(#[from] StateError),
}

/// Largest key and value a plugin may store.
const MAX_KEY_BYTES: usize = 1024;
const MAX_VALUE_BYTES: usize = 1 << 20;

impl StagedState {
    pub fn new(namespace: &str, store: Arc<dyn StateStore>, quota: u64) -> Self {
        StagedState {
            namespace: namespace.into(),
            store,
            quota,
            staged: HashMap::new(),
        }
    }

    /// Commits what the call wrote.
    pub fn commit(&mut self) -> Result<(), StateError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let writes: Vec<(String, Option<Vec<u8>>)> = self.staged.drain().collect();
        self.store.apply(&self.namespace, writes)
    }

    /// Forgets what the call wrote.
    pub fn rollback(&mut self) {
        self.staged.clear();
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self.staged.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.store.get(&self.namespace, key),
        }
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), SetFailure> {
        if key.len() > MAX_KEY_BYTES {
            return Err(SetFailure::Refused(state::StateError::TooLarge(format!(
                "key of {} bytes (limit {MAX_KEY_BYTES})",
                key.len()
            ))));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(SetFailure::Refused(state::StateError::TooLarge(format!(
                "value of {} bytes (limit {MAX_VALUE_BYTES})",
                value.len()
            ))));
        }
        let staged_growth: u64 = self
            .staged
            .iter()
            .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
            .sum::<u64>()
            + (key.len() + value.len()) as u64;
        if self.store.usage(&self.namespace)? + staged_growth > self.quota {
            return Err(SetFailure::Refused(state::StateError::QuotaExceeded(
                self.quota,
            )));
        }
        self.staged.insert(key, Some(value));
        Ok(())
    }

    fn delete(&mut self, key: String) {
        self.staged.insert(key, None);
    }
}

impl log::Host for HostState {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let allowed = self
            .log
            .budget
            .lock()
            .map(|mut b| b.take())
            .unwrap_or(false);
        if !allowed {
            return Ok(());
        }
        let (plugin, instance) = (&*self.log.plugin, &*self.log.instance);
        let fields = Fields(&fields);
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "fnaa::plugin", plugin, instance, %fields, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "fnaa::plugin", plugin, instance, %fields, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "fnaa::plugin", plugin, instance, %fields, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "fnaa::plugin", plugin, instance, %fields, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "fnaa::plugin", plugin, instance, %fields, "{message}")
            }
        }
        Ok(())
    }
}

/// Plugin-supplied fields, printed as `k=v k=v`.
struct Fields<'a>(&'a [(String, String)]);

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        Ok(())
    }
}

impl state::Host for HostState {
    fn convert_state_error(&mut self, failure: SetFailure) -> wasmtime::Result<state::StateError> {
        match failure {
            SetFailure::Refused(refused) => Ok(refused),
            SetFailure::Store(error) => Err(error.into()),
        }
    }

    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        // A failing state store is the host's fault: trap the call so the
        // batch is retried, rather than let the plugin believe a key is absent.
        Ok(self.state.get(&key)?)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), SetFailure> {
        self.state.set(key, value)
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.state.delete(key);
        Ok(())
    }
}

impl clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<clock::Datetime> {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(clock::Datetime {
            seconds: since_epoch.as_secs(),
            nanoseconds: since_epoch.subsec_nanos(),
        })
    }
}

impl crate::bindings::processor::fnaa::plugin::types::Host for HostState {}
