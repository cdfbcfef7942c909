//! The standard fnaa plugins, compiled from `plugins/` to WebAssembly
//! components by this crate's build script and embedded here.
//!
//! Each constant names a plugin by its crate name without the `fnaa-plugin-`
//! prefix (`fnaa-plugin-signal` is [`SIGNAL`] and is called `signal`).

/// One embedded plugin component.
#[derive(Debug, Clone, Copy)]
pub struct Plugin {
    /// Name, e.g. `signal`.
    pub name: &'static str,
    /// Where the build left the component file (useful for `fnaa plugin`
    /// commands in tests).
    pub path: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The embedded plugin called `name`.
pub fn find(name: &str) -> Option<&'static Plugin> {
    ALL.iter().find(|p| p.name == name)
}
