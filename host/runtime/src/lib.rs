//! The sandboxed WebAssembly runtime of the fnaa host.
//!
//! One [`Runtime`] owns one wasmtime `Engine`. Plugins are WebAssembly
//! components of the `fnaa:plugin` WIT package (`wit/`): processors
//! ([`ProcessorInstance`]) and broker connectors ([`ConnectorInstance`]).
//! Components are compiled once, cached on disk by content hash and
//! pre-instantiated; each instance runs with a memory limit and a CPU
//! deadline per call. A trap, a deadline overrun or a memory-limit hit fails
//! that call with an error naming the plugin and the cause, and the instance
//! is re-created on its next call; nothing else is affected.
//!
//! Density: [`InstancePool`] registers any number of instances but keeps only
//! a bounded number live, evicting the least recently used; plugin state
//! lives in the host's [`StateStore`], so an evicted instance comes back with
//! its state. Stateless plugins with the same configuration share one
//! instance.

mod bindings;
mod cache;
mod config;
mod connector;
mod error;
mod host;
mod output;
mod plugin;
mod pool;
mod processor;
mod runtime;
mod sandbox;
mod state;

pub use config::{DirGrant, Grants, RuntimeConfig};
pub use connector::{ConnectorInstance, Destination, Message};
pub use error::{ProcessError, RuntimeError, TrapCause};
pub use fnaa_event::{AttributeValue, Event};
pub use plugin::{ImportedInterface, Plugin, PluginInfo, PluginKind};
pub use pool::{InstancePool, PoolStats};
pub use processor::{Emitted, ProcessorInstance};
pub use runtime::Runtime;
pub use state::{MemoryStateStore, RedbStateStore, StateError, StateStore};
