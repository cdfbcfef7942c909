//! Logging setup shared by the binaries.

use tracing_subscriber::EnvFilter;

/// Installs the `tracing` subscriber: human-readable to stderr, filtered by
/// `RUST_LOG` (default `info`), or JSON lines when `json` is set.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling into the library) is harmless: ignore it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
