#![allow(missing_docs)]
//! The wit-bindgen bindings of the `fnaa:plugin@0.1.0` contract, generated
//! once here so that plugin crates never depend on wit-bindgen themselves.
//!
//! Both worlds are generated: `processor` first, then `connector` reusing the
//! interfaces the two share (`types`, `log`, `clock`), so that there is one
//! Rust type per WIT type. With `pub_export_macro` wit-bindgen puts only the
//! *imports* of each world in this library's custom sections; the full world
//! (with its exports) is emitted by the export macro in the plugin crate that
//! invokes it. A processor therefore exports only `flow-processor` and a
//! connector only `broker-connector`, and each imports only what it calls.

/// Bindings of the `processor` world (and of the shared interfaces).
pub mod processor {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fnaa:plugin/processor@0.1.0",
        // Import parameters borrow (`&str`, `&[u8]`), so wrappers need not copy.
        ownership: Borrowing { duplicate_if_necessary: true },
        pub_export_macro: true,
        export_macro_name: "__export_processor_world",
        default_bindings_module: "::fnaa_sdk::__private::bindings::processor",
    });
}

/// Bindings of the `connector` world; shared interfaces come from
/// [`processor`].
pub mod connector {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fnaa:plugin/connector@0.1.0",
        ownership: Borrowing { duplicate_if_necessary: true },
        with: {
            "fnaa:plugin/types@0.1.0": super::processor::fnaa::plugin::types,
            "fnaa:plugin/log@0.1.0": super::processor::fnaa::plugin::log,
            "fnaa:plugin/clock@0.1.0": super::processor::fnaa::plugin::clock,
        },
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "::fnaa_sdk::__private::bindings::connector",
    });
}
