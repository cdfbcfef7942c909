//! The subcommands of the `fnaa` binary, one file per group.

pub mod admin;
pub mod config;
pub mod flows;
pub mod plugin;
pub mod processors;
pub mod serve;
pub mod user;

use anyhow::Context as _;

/// `-` for an empty field of a tab-separated listing.
fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// Runs an operator command's future on a runtime of its own.
fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?
        .block_on(future)
}
