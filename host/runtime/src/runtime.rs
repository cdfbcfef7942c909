//! The engine, its linkers, the deadline clock and the plugin registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::bindings::{connector, processor};
use crate::cache::ComponentCache;
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::host::{HostState, StagedState};
use crate::plugin::Plugin;
use crate::state::{MemoryStateStore, RedbStateStore, StateStore};

/// The plugin runtime. Cheap to clone; all clones share one engine.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub processor_linker: Linker<HostState>,
    pub connector_linker: Linker<HostState>,
    pub config: RuntimeConfig,
    pub state: Arc<dyn StateStore>,
    cache: Option<ComponentCache>,
    loaded: Mutex<HashMap<String, Plugin>>,
    ticker: Option<EpochTicker>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop.store(true, Ordering::Relaxed);
            let _ = ticker.thread.join();
        }
    }
}

/// The thread that advances the engine's epoch: the clock of call deadlines.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Runtime {
    /// A runtime with the given limits. Plugin state goes to
    /// `config.state_path` (redb) or memory.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let state: Arc<dyn StateStore> = match &config.state_path {
            Some(path) => Arc::new(RedbStateStore::open(path)?),
            None => Arc::new(MemoryStateStore::default()),
        };
        Runtime::with_state_store(config, state)
    }

    /// A runtime keeping plugin state in `state`.
    pub fn with_state_store(
        config: RuntimeConfig,
        state: Arc<dyn StateStore>,
    ) -> Result<Runtime, RuntimeError> {
        let engine_error = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(config.call_deadline_ms > 0)
            .consume_fuel(config.fuel_per_call.is_some());
        if config.pooling {
            // Slots for every live instance of the pool, plus instances made
            // outside it (connectors, offline runs) and the info probe.
            let slots =
                u32::try_from(config.max_live_instances.saturating_add(1_024)).unwrap_or(u32::MAX);
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(4))
                .total_memories(slots)
                .total_tables(slots.saturating_mul(4))
                .max_memory_size(config.max_memory_bytes);
            wasm.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(engine_error)?;

        let mut processor_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut processor_linker).map_err(engine_error)?;
        processor::Processor::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut processor_linker,
            |s| s,
        )
        .map_err(engine_error)?;
        let mut connector_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut connector_linker).map_err(engine_error)?;
        connector::Connector::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut connector_linker,
            |s| s,
        )
        .map_err(engine_error)?;

        let ticker = (config.call_deadline_ms > 0).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (engine, flag, tick) = (
                engine.clone(),
                stop.clone(),
                Duration::from_millis(config.epoch_tick_ms.max(1)),
            );
            let thread = std::thread::Builder::new()
                .name("fnaa-epoch".into())
                .spawn(move || {
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| {
                    RuntimeError::Engine(format!("cannot start the deadline clock: {e}"))
                })?;
            Ok::<_, RuntimeError>(EpochTicker { stop, thread })
        });
        let ticker = ticker.transpose()?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                processor_linker,
                connector_linker,
                cache: config.cache_dir.clone().map(ComponentCache::new),
                config,
                state,
                loaded: Mutex::default(),
                ticker,
            }),
        })
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The store of plugin state.
    pub fn state_store(&self) -> &Arc<dyn StateStore> {
        &self.inner.state
    }

    /// Loads a plugin component: compiled once per content (and cached on
    /// disk), checked against the fnaa:plugin worlds, pre-instantiated.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Plugin, RuntimeError> {
        let digest = hex::encode(Sha256::digest(wasm));
        if let Some(plugin) = self
            .inner
            .loaded
            .lock()
            .ok()
            .and_then(|l| l.get(&digest).cloned())
        {
            return Ok(plugin.renamed(name));
        }
        let component = ComponentCache::load_or_compile(
            self.inner.cache.as_ref(),
            &self.inner.engine,
            name,
            &digest,
            wasm,
        )?;
        let plugin = Plugin::prepare(self, name, digest.clone(), component)?;
        if let Ok(mut loaded) = self.inner.loaded.lock() {
            loaded.insert(digest, plugin.clone());
        }
        Ok(plugin)
    }

    /// Loads a plugin from a file.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Plugin, RuntimeError> {
        let wasm = std::fs::read(path).map_err(|e| RuntimeError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin");
        let name = name
            .strip_prefix("fnaa_plugin_")
            .unwrap_or(name)
            .replace('_', "-");
        self.load(&name, &wasm)
    }

    /// A fresh store for one instance of `plugin`, with its limits.
    pub(crate) fn new_store(
        &self,
        plugin: &str,
        instance: &str,
        state_namespace: &str,
    ) -> Result<Store<HostState>, RuntimeError> {
        let config = &self.inner.config;
        let state = StagedState::new(
            state_namespace,
            self.inner.state.clone(),
            config.state_quota_bytes,
        );
        let host = HostState::new(
            plugin,
            instance,
            config.grants.get(plugin),
            config.max_memory_bytes,
            config.max_log_lines_per_call,
            state,
        )
        .map_err(|e| RuntimeError::Instantiate {
            plugin: plugin.to_owned(),
            instance: instance.to_owned(),
            reason: e.to_string(),
        })?;
        let mut store = Store::new(&self.inner.engine, host);
        store.limiter(|host| host);
        if config.call_deadline_ms > 0 {
            store.epoch_deadline_trap();
            // Instantiation runs guest code too (start functions): give it
            // the same deadline as a call.
            store.set_epoch_deadline(self.deadline_ticks());
        }
        if let Some(fuel) = config.fuel_per_call {
            // Fuel is enabled whenever `fuel_per_call` is set, so this cannot fail.
            let _ = store.set_fuel(fuel);
        }
        Ok(store)
    }

    /// Ticks of the epoch clock that make up one call deadline. One tick is
    /// added because the current tick may be nearly over when a call starts.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let config = &self.inner.config;
        config
            .call_deadline_ms
            .div_ceil(config.epoch_tick_ms.max(1))
            + 1
    }
}
