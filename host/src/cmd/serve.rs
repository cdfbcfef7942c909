//! `fnaa serve`: runs the host until interrupted.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;

/// Runs the host with the configuration at `path`, or the embedded defaults.
pub fn run(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    tokio.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Starts every part of the host, then waits for SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = fnaa_runtime::Runtime::new(config.runtime.clone())
        .context("cannot start the plugin runtime")?;
    let pool = fnaa_runtime::InstancePool::new(&runtime);
    let idle = std::time::Duration::from_secs(config.runtime.idle_eviction_secs.max(1));
    let sweeper = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(idle / 2);
            loop {
                tick.tick().await;
                let evicted = pool.evict_idle(idle);
                if evicted > 0 {
                    tracing::debug!(evicted, "evicted idle plugin instances");
                }
            }
        })
    };
    tracing::info!(plugins = fnaa_plugins::ALL.len(), "fnaa host started");

    shutdown_signal().await;
    tracing::info!("shutting down");
    sweeper.abort();
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!("cannot listen for SIGTERM: {error}");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
