//! The trait a Flow Processor implements.

use crate::{Config, Event, InitError, Outputs, PluginInfo, ProcessError};

/// A Flow Processor (the WIT `flow-processor` interface). Implement it and
/// invoke [`export_processor!`](crate::export_processor) once in the crate.
///
/// The host creates an instance with [`Processor::init`] and calls
/// [`Processor::process`] with batches of events. It may drop an instance
/// and create it again at any time (eviction, after a trap): keep anything
/// that must survive in [`crate::state`], not in `self`.
pub trait Processor: Sized + 'static {
    /// Describes the plugin. Must not depend on configuration.
    fn info() -> PluginInfo;

    /// Configures a fresh instance. Refuse unknown keys
    /// ([`Config::reject_unknown`]) so that operators see their typos.
    fn init(config: Config) -> Result<Self, InitError>;

    /// Processes one batch that arrived on input `port` and pushes the
    /// outputs to `out`, in order. On error the outputs are discarded and
    /// the batch's [`crate::state`] writes are rolled back by the host.
    fn process(
        &mut self,
        port: &str,
        batch: Vec<Event>,
        out: &mut Outputs,
    ) -> Result<(), ProcessError>;
}

/// Exports a [`Processor`] implementation as the component's
/// `fnaa:plugin/flow-processor` interface. Invoke it exactly once per crate.
///
/// ```ignore
/// fnaa_sdk::export_processor!(MyProcessor);
/// ```
#[macro_export]
macro_rules! export_processor {
    ($processor:ty) => {
        const _: () = {
            #[doc(hidden)]
            struct __FnaaProcessorExport;

            impl $crate::__private::ProcessorExport for __FnaaProcessorExport {
                type Processor = $processor;

                fn with_instance<R>(
                    f: impl FnOnce(&mut ::core::option::Option<$processor>) -> R,
                ) -> R {
                    // The instance lives here between calls. A component
                    // instance is single-threaded, so this is its only copy.
                    ::std::thread_local! {
                        static INSTANCE: ::core::cell::RefCell<::core::option::Option<$processor>> =
                            const { ::core::cell::RefCell::new(::core::option::Option::None) };
                    }
                    INSTANCE.with_borrow_mut(f)
                }
            }

            // The component's entry points. Only on wasm32: a native build
            // (unit tests) has no component model, and the export names,
            // such as `fnaa:plugin/...#init`, do not link into a native
            // shared library.
            #[cfg(target_arch = "wasm32")]
            const _: () = {
                type __FnaaProcessorGuest =
                    $crate::__private::ProcessorGuest<__FnaaProcessorExport>;
                $crate::__private::bindings::processor::__export_processor_world!(
                    __FnaaProcessorGuest with_types_in $crate::__private::bindings::processor
                );
            };

            #[cfg(not(target_arch = "wasm32"))]
            const _: fn() -> [*const (); 3] =
                $crate::__private::processor_glue::<__FnaaProcessorExport>;
        };
    };
}
