//! Logging setup shared by the binaries.

use std::io::IsTerminal as _;

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// Installs the `tracing` subscriber: human-readable to stderr, filtered by
/// `RUST_LOG` (default `info`), or JSON lines when `json` is set.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .and(filter_fn(|metadata| !is_rumqttd_noise(metadata)));
    // Colours only for a terminal, not for files and journald.
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let layer = if json {
        layer.json().with_filter(filter).boxed()
    } else {
        layer.with_filter(filter).boxed()
    };
    // A second init (tests calling into the library) is harmless: ignore it.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The embedded broker's (rumqttd 0.20) `ERROR`s for an ordinary client
/// disconnection: `router-drop` after a DISCONNECT packet,
/// `connection-stop`, and `no-connection id N is already gone` for the
/// second notice of one disconnection (the packet, then the socket's
/// close, as its own comment there explains). Every client that leaves
/// logs one, so they would drown real errors and make a healthy host look
/// broken; rumqttd's other errors still show. Identified by call site,
/// which `Cargo.lock` pins.
fn is_rumqttd_noise(metadata: &Metadata<'_>) -> bool {
    if *metadata.level() != Level::ERROR || !metadata.target().starts_with("rumqttd::") {
        return false;
    }
    match (metadata.file(), metadata.line()) {
        (Some(file), Some(line)) if file.ends_with("src/server/broker.rs") => {
            matches!(line, 576 | 581)
        }
        (Some(file), Some(line)) if file.ends_with("src/router/routing.rs") => {
            matches!(line, 416 | 436 | 539)
        }
        _ => false,
    }
}
