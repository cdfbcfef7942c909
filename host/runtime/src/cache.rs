//! Compiled components cached on disk by content hash, so a restart (or a
//! second host on the same machine) does not compile the same plugin again.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    pub fn new(dir: PathBuf) -> Self {
        ComponentCache { dir }
    }

    /// The compiled component for `wasm` (whose SHA-256 is `digest`): from
    /// the cache when present and compatible, compiled (and cached) otherwise.
    pub fn load_or_compile(
        cache: Option<&ComponentCache>,
        engine: &Engine,
        plugin: &str,
        digest: &str,
        wasm: &[u8],
    ) -> Result<Component, RuntimeError> {
        let Some(cache) = cache else {
            return compile(engine, plugin, wasm);
        };
        // The engine's compatibility hash changes with the wasmtime version
        // and every setting that affects code generation.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let path = cache
            .dir
            .join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(plugin, path = %path.display(), "ignoring unusable cached component: {e:#}")
                }
            }
        }
        let component = compile(engine, plugin, wasm)?;
        if let Err(e) = store(&cache.dir, &path, &component) {
            tracing::warn!(plugin, dir = %cache.dir.display(), "cannot cache compiled component: {e}");
        }
        Ok(component)
    }
}

fn compile(engine: &Engine, plugin: &str, wasm: &[u8]) -> Result<Component, RuntimeError> {
    Component::new(engine, wasm).map_err(|e| RuntimeError::InvalidComponent {
        plugin: plugin.to_owned(),
        reason: format!("{e:#}"),
    })
}

/// Loads precompiled machine code. The file is read into memory rather than
/// mapped, so that another process rewriting the cache cannot pull code out
/// from under a running host.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &std::path::Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: the file is one this cache wrote after compiling the component
    // itself (named by the source's SHA-256 and the engine's compatibility
    // hash), in a directory the operator configured for this purpose;
    // wasmtime additionally checks the header and engine compatibility.
    unsafe { Component::deserialize(engine, bytes) }
}

fn store(
    dir: &std::path::Path,
    path: &std::path::Path,
    component: &Component,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
