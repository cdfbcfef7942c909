//! The `[runtime]` section of `fnaa.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

/// Limits and resources of the WebAssembly plugin runtime.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Largest linear memory one plugin instance may grow to, in bytes.
    /// Growing past it traps the call (reported as a memory-limit hit).
    pub max_memory_bytes: usize,
    /// CPU deadline of one call into a plugin, in milliseconds. A call that
    /// runs longer is interrupted (epoch interruption) and fails.
    pub call_deadline_ms: u64,
    /// How often the deadline clock ticks, in milliseconds: the deadline is
    /// enforced with this granularity.
    pub epoch_tick_ms: u64,
    /// Optional instruction budget per call (wasmtime fuel). Off by default:
    /// deadlines already bound CPU time, and fuel costs speed.
    pub fuel_per_call: Option<u64>,
    /// Directory where compiled components are cached by content hash.
    /// Default: `$XDG_CACHE_HOME/fnaa/components` or
    /// `~/.cache/fnaa/components`; no caching if neither is known.
    // The default depends on the machine: the example must not print one.
    #[schemars(default = "machine_dependent")]
    pub cache_dir: Option<PathBuf>,
    /// File of the durable plugin state (a redb database). Default: plugin
    /// state is kept in memory and lost at exit.
    pub state_path: Option<PathBuf>,
    /// Bytes of state one plugin instance may keep.
    pub state_quota_bytes: u64,
    /// Instances kept live at once by the instance pool; the least recently
    /// used is evicted beyond it (its state stays in the state store).
    pub max_live_instances: usize,
    /// Preallocates instance slots (wasmtime's pooling allocator) for
    /// `max_live_instances` instances plus headroom: faster instantiation
    /// and recycling, at the cost of reserving address space up front.
    pub pooling: bool,
    /// Live instances idle this long (seconds) are evicted by the pool's
    /// sweep.
    pub idle_eviction_secs: u64,
    /// Most outputs one `process` call may return; more fails the call as
    /// flooding.
    pub max_outputs_per_call: usize,
    /// Most log records (log calls and stdout/stderr lines) one call may
    /// write; the rest are dropped and counted.
    pub max_log_lines_per_call: usize,
    /// What an operator grants a plugin beyond the sandbox, by plugin name.
    /// Plugins get no filesystem, network, environment or real randomness
    /// unless granted here.
    pub grants: BTreeMap<String, Grants>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_memory_bytes: 64 << 20,
            call_deadline_ms: 1_000,
            epoch_tick_ms: 10,
            fuel_per_call: None,
            cache_dir: default_cache_dir(),
            state_path: None,
            state_quota_bytes: 8 << 20,
            max_live_instances: 10_000,
            pooling: false,
            idle_eviction_secs: 300,
            max_outputs_per_call: 1 << 20,
            max_log_lines_per_call: 1_000,
            grants: BTreeMap::new(),
        }
    }
}

/// No default in the schema (and so in `fnaa config example`) for a
/// setting whose default depends on the machine it runs on.
fn machine_dependent() -> Option<PathBuf> {
    None
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("fnaa").join("components"))
}

/// Authority granted to one plugin.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Environment variables the plugin sees, as `NAME = "value"`.
    pub env: BTreeMap<String, String>,
    /// Host directories the plugin may read, mounted at a guest path.
    pub dirs: Vec<DirGrant>,
    /// Lets the plugin open network connections (wasi:sockets).
    pub network: bool,
    /// Gives the plugin the host's cryptographically secure random source.
    /// Without it, wasi:random returns a fixed, deterministic sequence.
    pub random: bool,
}

/// A host directory mounted read-only into a plugin.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it, e.g. `/data`.
    pub guest: String,
}
