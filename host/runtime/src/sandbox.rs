//! What processor and connector instances share: creating the instance,
//! calling it under its limits, telling why a call was stopped, and
//! re-creating the instance after a trap.

use std::sync::Arc;

use wasmtime::{Store, Trap};

use crate::bindings::{connector, processor, wit};
use crate::error::{ProcessError, RuntimeError, TrapCause};
use crate::host::HostState;
use crate::plugin::{Plugin, PluginKind, Pre};
use crate::runtime::Runtime;

/// The generated bindings of one world, as the sandbox needs them.
pub(crate) trait World: Sized {
    const KIND: PluginKind;
    fn instantiate(plugin: &Plugin, store: &mut Store<HostState>)
    -> wasmtime::Result<Option<Self>>;
    // `&Vec`, not a slice: the generated `call_init` takes one.
    #[allow(clippy::ptr_arg)]
    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), wit::InitError>>;
}

impl World for processor::Processor {
    const KIND: PluginKind = PluginKind::Processor;
    fn instantiate(
        plugin: &Plugin,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Option<Self>> {
        match &plugin.inner.pre {
            Pre::Processor(pre) => pre.instantiate(store).map(Some),
            Pre::Connector(_) => Ok(None),
        }
    }
    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), wit::InitError>> {
        self.fnaa_plugin_flow_processor().call_init(store, config)
    }
}

impl World for connector::Connector {
    const KIND: PluginKind = PluginKind::Connector;
    fn instantiate(
        plugin: &Plugin,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Option<Self>> {
        match &plugin.inner.pre {
            Pre::Connector(pre) => pre.instantiate(store).map(Some),
            Pre::Processor(_) => Ok(None),
        }
    }
    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), wit::InitError>> {
        self.fnaa_plugin_broker_connector().call_init(store, config)
    }
}

/// Runs one call into a guest under the runtime's limits.
pub(crate) fn guarded_call<R>(
    runtime: &Runtime,
    store: &mut Store<HostState>,
    f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
) -> Result<R, TrapCause> {
    let config = runtime.config();
    store.data_mut().memory_limit_hit = false;
    if config.call_deadline_ms > 0 {
        store.set_epoch_deadline(runtime.deadline_ticks());
    }
    if let Some(fuel) = config.fuel_per_call {
        // Only fails when fuel is disabled, which `fuel_per_call` rules out.
        let _ = store.set_fuel(fuel);
    }
    let result = f(store);
    let dropped = store
        .data()
        .log
        .budget
        .lock()
        .map(|mut b| b.reset())
        .unwrap_or(0);
    if dropped > 0 {
        let log = &store.data().log;
        tracing::warn!(plugin = %log.plugin, instance = %log.instance, dropped, "plugin exceeded its log budget; records dropped");
    }
    result.map_err(|error| classify(runtime, store.data(), &error))
}

fn classify(runtime: &Runtime, host: &HostState, error: &wasmtime::Error) -> TrapCause {
    let config = runtime.config();
    if host.memory_limit_hit {
        return TrapCause::MemoryLimit {
            bytes: config.max_memory_bytes,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapCause::Deadline {
            millis: config.call_deadline_ms,
        },
        Some(Trap::OutOfFuel) => TrapCause::FuelExhausted,
        Some(trap) => TrapCause::Trap(trap.to_string()),
        None => TrapCause::Trap(error.root_cause().to_string()),
    }
}

/// Describes an `init-error` for an operator.
fn describe_init_error(error: wit::InitError) -> String {
    match error {
        wit::InitError::UnknownKey(key) => format!("unknown configuration key `{key}`"),
        wit::InitError::MissingKey(key) => format!("missing configuration key `{key}`"),
        wit::InitError::InvalidValue(v) => format!("invalid value for `{}`: {}", v.key, v.reason),
        wit::InitError::Other(reason) => reason,
    }
}

/// One sandboxed instance of a plugin, re-created on demand.
pub(crate) struct Sandbox<W: World> {
    pub runtime: Runtime,
    pub plugin: Plugin,
    pub instance: Arc<str>,
    state_namespace: Arc<str>,
    config: Vec<(String, String)>,
    live: Option<(Store<HostState>, W)>,
}

impl<W: World> Sandbox<W> {
    /// Creates and initialises the instance; configuration errors surface
    /// here.
    pub fn new(
        runtime: &Runtime,
        plugin: &Plugin,
        instance: &str,
        config: &[(String, String)],
    ) -> Result<Self, RuntimeError> {
        if plugin.kind() != W::KIND {
            return Err(RuntimeError::WrongKind {
                plugin: plugin.name().to_owned(),
                expected: W::KIND.as_str(),
                actual: plugin.kind().as_str(),
            });
        }
        let mut sandbox = Sandbox {
            runtime: runtime.clone(),
            plugin: plugin.clone(),
            instance: instance.into(),
            state_namespace: instance.into(),
            config: config.to_vec(),
            live: None,
        };
        sandbox.live = Some(sandbox.start()?);
        Ok(sandbox)
    }

    fn start(&self) -> Result<(Store<HostState>, W), RuntimeError> {
        let plugin = self.plugin.name();
        let instance = &*self.instance;
        let mut store = self
            .runtime
            .new_store(plugin, instance, &self.state_namespace)?;
        let world = W::instantiate(&self.plugin, &mut store)
            .map_err(|e| format!("{e:#}"))
            .and_then(|w| w.ok_or_else(|| "plugin kind changed".to_owned()))
            .map_err(|reason| RuntimeError::Instantiate {
                plugin: plugin.to_owned(),
                instance: instance.to_owned(),
                reason,
            })?;
        match guarded_call(&self.runtime, &mut store, |s| world.init(s, &self.config)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                return Err(RuntimeError::Config {
                    plugin: plugin.to_owned(),
                    instance: instance.to_owned(),
                    reason: describe_init_error(error),
                });
            }
            Err(cause) => {
                return Err(RuntimeError::InitTrapped {
                    plugin: plugin.to_owned(),
                    instance: instance.to_owned(),
                    cause,
                });
            }
        }
        // init may have written state; it is part of creating the instance.
        store.data_mut().state.commit()?;
        Ok((store, world))
    }

    /// Calls `f` on the live instance (re-creating it if a trap discarded
    /// it). A trap discards the instance and its staged state writes.
    pub fn call<R>(
        &mut self,
        f: impl FnOnce(&W, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, ProcessError> {
        let (mut store, world) = match self.live.take() {
            Some(live) => live,
            None => self
                .start()
                .map_err(|e| self.error_unavailable(e.to_string()))?,
        };
        match guarded_call(&self.runtime, &mut store, |s| f(&world, s)) {
            Ok(result) => {
                self.live = Some((store, world));
                Ok(result)
            }
            Err(cause) => {
                tracing::warn!(plugin = %self.plugin.name(), instance = %self.instance, %cause, "plugin call stopped; the instance will be re-created");
                Err(self.trapped(cause))
            }
        }
    }

    /// Ends a call that returned: commits the state it wrote if it
    /// succeeded, forgets it otherwise.
    pub fn finish(&mut self, success: bool) -> Result<(), ProcessError> {
        let Some((store, _)) = &mut self.live else {
            return Ok(());
        };
        let state = &mut store.data_mut().state;
        if success {
            state.commit().map_err(|e| self.error_failed(e.to_string()))
        } else {
            state.rollback();
            Ok(())
        }
    }

    /// Throws the live instance away (it misbehaved); the next call creates
    /// a fresh one.
    pub fn discard(&mut self) {
        self.live = None;
    }

    /// Whether an instance is live (not discarded after a trap).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    pub fn trapped(&self, cause: TrapCause) -> ProcessError {
        ProcessError::Trapped {
            plugin: self.plugin.name().to_owned(),
            instance: self.instance.to_string(),
            cause,
        }
    }

    pub fn error_failed(&self, reason: String) -> ProcessError {
        ProcessError::Failed {
            plugin: self.plugin.name().to_owned(),
            instance: self.instance.to_string(),
            reason,
        }
    }

    pub fn error_invalid(&self, index: u32, reason: String) -> ProcessError {
        ProcessError::InvalidEvent {
            plugin: self.plugin.name().to_owned(),
            instance: self.instance.to_string(),
            index,
            reason,
        }
    }

    fn error_unavailable(&self, reason: String) -> ProcessError {
        ProcessError::Unavailable {
            plugin: self.plugin.name().to_owned(),
            instance: self.instance.to_string(),
            reason,
        }
    }
}
