//! The FNAP server: tokio, one task per connection, a connection limit,
//! idle and per-command timeouts, throttling of failed logins, implicit TLS
//! and STARTTLS, graceful shutdown.

mod commands;
mod relay;
mod session;
pub(crate) mod throttle;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::FnapConfig;
use crate::fnap::reply::fixed;
use crate::service::Service;
use throttle::LoginThrottle;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("configuration: {0}")]
    Config(String),
}

/// What every session shares.
pub(crate) struct Shared {
    pub(crate) config: FnapConfig,
    pub(crate) service: Arc<Service>,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) throttle: Arc<LoginThrottle>,
}

/// A bound FNAP server; [`FnapServer::run`] serves it.
pub struct FnapServer {
    shared: Arc<Shared>,
    plain: Option<TcpListener>,
    implicit_tls: Option<TcpListener>,
}

impl std::fmt::Debug for FnapServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnapServer")
            .field("listen", &self.local_addr())
            .field("tls_listen", &self.tls_local_addr())
            .finish_non_exhaustive()
    }
}

impl FnapServer {
    /// Loads the TLS identity and binds the listeners of `config`.
    pub async fn bind(
        config: FnapConfig,
        service: Arc<Service>,
    ) -> Result<FnapServer, ServerError> {
        let tls = config.tls.as_ref().map(tls::load_acceptor).transpose()?;
        FnapServer::bind_with_tls(config, service, tls).await
    }

    /// Like [`FnapServer::bind`] with a TLS acceptor built by the caller
    /// (tests build one from a generated certificate).
    pub async fn bind_with_tls(
        config: FnapConfig,
        service: Arc<Service>,
        tls: Option<TlsAcceptor>,
    ) -> Result<FnapServer, ServerError> {
        let throttle = Arc::new(LoginThrottle::from_config(&config));
        FnapServer::bind_shared(config, service, tls, throttle).await
    }

    /// Like [`FnapServer::bind_with_tls`], counting failed logins in
    /// `throttle` (shared with the gRPC API).
    pub(crate) async fn bind_shared(
        config: FnapConfig,
        service: Arc<Service>,
        tls: Option<TlsAcceptor>,
        throttle: Arc<LoginThrottle>,
    ) -> Result<FnapServer, ServerError> {
        if config.tls_listen.is_some() && tls.is_none() {
            return Err(ServerError::Config(
                "[fnap] tls_listen needs [fnap.tls]".into(),
            ));
        }
        if config.listen.is_none() && config.tls_listen.is_none() {
            return Err(ServerError::Config(
                "[fnap] needs listen, tls_listen or both".into(),
            ));
        }
        if tls.is_none() {
            if let Some(refusal) = config.cleartext_refusal() {
                return Err(ServerError::Config(refusal));
            }
            if let Some(address) = config.listen.filter(|a| !a.ip().is_loopback()) {
                tracing::warn!(%address, "FNAP without TLS off loopback: passwords cross the network in clear text");
            }
        }
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .map_err(|source| ServerError::Bind { address, source })
        };
        let plain = match config.listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let implicit_tls = match config.tls_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        Ok(FnapServer {
            shared: Arc::new(Shared {
                config,
                service,
                tls,
                throttle,
            }),
            plain,
            implicit_tls,
        })
    }

    /// The address of the cleartext listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the implicit-TLS listener.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.implicit_tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, tells
    /// waiting sessions `421` and gives running commands
    /// `shutdown_grace_secs` to finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let connections = Arc::new(Semaphore::new(self.shared.config.max_connections));
        let tracker = TaskTracker::new();
        for (listener, implicit_tls) in [(self.plain, false), (self.implicit_tls, true)] {
            if let Some(listener) = listener {
                let accept = accept_loop(
                    listener,
                    implicit_tls,
                    Arc::clone(&self.shared),
                    Arc::clone(&connections),
                    tracker.clone(),
                    shutdown.clone(),
                );
                tracker.spawn(accept);
            }
        }
        shutdown.cancelled().await;
        tracker.close();
        let grace = Duration::from_secs(self.shared.config.shutdown_grace_secs);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                "FNAP sessions still running after the shutdown grace period; cutting them"
            );
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    implicit_tls: bool,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: wait a little
                // instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => {
                let shared = Arc::clone(&shared);
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    session::serve(shared, stream, peer, implicit_tls, shutdown).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(%peer, "connection limit reached");
                let hostname = shared.config.hostname.clone();
                tracker.spawn(refuse(stream, hostname, implicit_tls));
            }
        }
    }
}

/// Tells a client over the limit why it is turned away (in clear text:
/// for an implicit-TLS port it is simply closed).
async fn refuse(mut stream: TcpStream, hostname: String, implicit_tls: bool) {
    if !implicit_tls {
        let reply = fixed::too_many_connections(&hostname).encode();
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&reply)).await;
    }
    let _ = stream.shutdown().await;
}
