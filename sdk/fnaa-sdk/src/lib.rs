//! Guest-side SDK for fnaa plugins: write a Flow Processor or a broker
//! connector as a WebAssembly component (`wasm32-wasip2`) by implementing one
//! trait and invoking one macro. The SDK hides wit-bindgen and the generated
//! types of the `fnaa:plugin@0.1.0` contract (`wit/` in the repository).
//!
//! ```ignore
//! use fnaa_sdk::{Config, Event, InitError, Outputs, PluginInfo, ProcessError, Processor};
//!
//! struct Passthrough;
//!
//! impl Processor for Passthrough {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("passthrough", env!("CARGO_PKG_VERSION"), "Forwards every event.", true)
//!     }
//!     fn init(config: Config) -> Result<Self, InitError> {
//!         config.reject_unknown(&[])?;
//!         Ok(Passthrough)
//!     }
//!     fn process(&mut self, _port: &str, batch: Vec<Event>, out: &mut Outputs) -> Result<(), ProcessError> {
//!         for index in 0..batch.len() {
//!             out.forward(index, fnaa_sdk::DEFAULT_OUTPUT);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fnaa_sdk::export_processor!(Passthrough);
//! ```
//!
//! Besides the traits, the SDK offers safe wrappers of the host's imports
//! ([`log`], [`state`], [`clock`]) and the helpers the standard plugins share:
//! [`glob`] patterns, JSON [`json`] pointers and picking, [`field`]
//! references, attribute [`rewrite`]s and a stable [`hash`].
//!
//! On targets other than `wasm32` (the unit tests of plugin crates) the host
//! imports are replaced by test doubles: [`log`] writes to stderr, [`state`]
//! is an in-memory map private to the current thread, [`clock`] reads the
//! system clock. Plugin logic can therefore be tested with plain `cargo test`.

// Lets the bindings name this crate as `::fnaa_sdk`, the path that the export
// macros use from inside plugin crates.
extern crate self as fnaa_sdk;

// Native builds (unit tests) keep the standard allocator.
#[cfg_attr(
    not(all(target_arch = "wasm32", not(target_feature = "atomics"))),
    allow(dead_code)
)]
mod allocator;
#[doc(hidden)]
pub mod bindings;
pub mod clock;
mod config;
mod connector;
mod convert;
mod errors;
mod export;
pub mod field;
pub mod glob;
pub mod hash;
pub mod json;
pub mod log;
mod outputs;
mod processor;
pub mod rewrite;
pub mod state;

pub use config::Config;
pub use connector::{Connector, Destination, Header, Message};
pub use errors::{InitError, ProcessError};
pub use fnaa_event::{self as event, AttributeValue, Event};
pub use outputs::{DEFAULT_INPUT, DEFAULT_OUTPUT, Emitted, Output, Outputs, mirror_port};
pub use processor::Processor;

/// Every plugin component allocates through the SDK's allocator: the
/// batches crossing the boundary are hundreds of small allocations per call.
/// (A plugin therefore cannot install a global allocator of its own.) Not on
/// wasm targets with threads (`atomics`): the allocator is single-threaded.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: allocator::SizeClassAllocator = allocator::SizeClassAllocator::new();

/// What a plugin tells the host about itself (the WIT `plugin-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short name, e.g. `signal`.
    pub name: String,
    /// The plugin's own version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    /// One line for operators.
    pub description: String,
    /// True only when the plugin keeps no state between calls, neither in
    /// its memory nor in [`state`]: the host may then share one instance
    /// between subscriptions with the same plugin and configuration.
    pub stateless: bool,
}

impl PluginInfo {
    /// Builds the description of a plugin.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
        stateless: bool,
    ) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            stateless,
        }
    }
}

/// Implementation details used by the export macros. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::export::{
        ConnectorExport, ConnectorGuest, ProcessorExport, ProcessorGuest, connector_glue,
        processor_glue,
    };
}
