//! The control plane of an FNAA host: FNAP (the Flow Namespace Accessing
//! Protocol, `docs/fnap.md`) for users and peer FNAAs, the gRPC admin API
//! for operators, both over one [`service::Service`] that keeps its state
//! in a [`store::Store`] and provisions flows through the traits of
//! [`provision`].
//!
//! Starting it from `fnaa serve`:
//!
//! ```no_run
//! # async fn example(config: fnaa_control::config::ControlConfig, backends: fnaa_control::service::Backends) -> Result<(), fnaa_control::ControlError> {
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let plane = fnaa_control::ControlPlane::start(&config, backends).await?;
//! plane.run(shutdown).await;
//! # Ok(()) }
//! ```

pub mod client;
pub mod config;
pub mod fnap;
pub mod grpc;
pub mod names;
pub mod provision;
pub mod sasl;
pub mod server;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

pub use tokio_util::sync::CancellationToken;

use crate::config::ControlConfig;
use crate::server::throttle::LoginThrottle;
use crate::server::{FnapServer, ServerError};
use crate::service::{Backends, Recovery, Service, ServiceError, ServicePolicy};
use crate::store::{RedbStore, Store, StoreError};

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("restoring the state: {0}")]
    Recovery(#[from] ServiceError),
    #[error("FNAP server: {0}")]
    Fnap(#[from] ServerError),
    #[error("gRPC server: {0}")]
    Grpc(String),
    #[error("admin socket: {0}")]
    AdminSocket(#[from] grpc::socket::SocketError),
}

/// The running control plane: service, FNAP server, gRPC server.
pub struct ControlPlane {
    service: Arc<Service>,
    fnap: FnapServer,
    grpc: Option<grpc::GrpcServer>,
    admin_socket: Option<grpc::socket::AdminSocket>,
    recovery: Recovery,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("fnap", &self.fnap)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Opens the store of `[store]`, restores the state (restarting the
    /// pipelines of subscriptions and processors through `backends`) and
    /// binds the FNAP and gRPC listeners.
    pub async fn start(
        config: &ControlConfig,
        backends: Backends,
    ) -> Result<ControlPlane, ControlError> {
        let store = RedbStore::open(&config.store.path)?;
        let socket = config.admin_socket();
        ControlPlane::start_inner(config, Arc::new(store), backends, None, socket).await
    }

    /// Like [`ControlPlane::start`] with a store and, optionally, a TLS
    /// acceptor of the caller's for FNAP (instead of `[fnap.tls]`; the
    /// gRPC listener always uses `[grpc.tls]`). The admin socket is served
    /// only where `[grpc] socket` names it (`[store] path` is not this
    /// store's).
    pub async fn start_with_store(
        config: &ControlConfig,
        store: Arc<dyn Store>,
        backends: Backends,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Result<ControlPlane, ControlError> {
        let socket = config.named_admin_socket();
        ControlPlane::start_inner(config, store, backends, tls, socket).await
    }

    async fn start_inner(
        config: &ControlConfig,
        store: Arc<dyn Store>,
        backends: Backends,
        tls: Option<tokio_rustls::TlsAcceptor>,
        socket: Option<std::path::PathBuf>,
    ) -> Result<ControlPlane, ControlError> {
        let policy = ServicePolicy::from_config(config);
        let service = Arc::new(Service::new(store, backends, policy));
        let recovery = service.recover().await?;
        tracing::info!(?recovery, "state restored");
        let tls = match tls {
            Some(tls) => Some(tls),
            None => config
                .fnap
                .tls
                .as_ref()
                .map(server::tls::load_acceptor)
                .transpose()?,
        };
        // One count of failed logins per address for FNAP and gRPC.
        let throttle = Arc::new(LoginThrottle::from_config(&config.fnap));
        let fnap = FnapServer::bind_shared(
            config.fnap.clone(),
            Arc::clone(&service),
            tls,
            Arc::clone(&throttle),
        )
        .await?;
        let grpc = match config.grpc.listen {
            Some(_) => Some(
                grpc::GrpcServer::bind(&config.grpc, Arc::clone(&service), Arc::clone(&throttle))
                    .await
                    .map_err(ControlError::Grpc)?,
            ),
            None => None,
        };
        let admin_socket = match socket {
            Some(path) => {
                match grpc::socket::AdminSocket::bind(&path, Arc::clone(&service), throttle).await {
                    Ok(socket) => Some(socket),
                    Err(error @ grpc::socket::SocketError::InUse(_)) => return Err(error.into()),
                    // The host is whole without it; `fnaa user` etc. then
                    // say no host runs.
                    Err(error) => {
                        tracing::warn!(%error, "admin socket unavailable: `fnaa user`, `fnaa flows` cannot reach this host; set [grpc] socket to a shorter or writable path");
                        None
                    }
                }
            }
            None => None,
        };
        Ok(ControlPlane {
            service,
            fnap,
            grpc,
            admin_socket,
            recovery,
        })
    }

    /// The service, e.g. for operator commands run in the same process.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// What the start-up recovery did.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Where FNAP listens in clear text (STARTTLS).
    pub fn fnap_addr(&self) -> Option<SocketAddr> {
        self.fnap.local_addr()
    }

    /// Where FNAP listens with implicit TLS.
    pub fn fnap_tls_addr(&self) -> Option<SocketAddr> {
        self.fnap.tls_local_addr()
    }

    /// Where the gRPC admin API listens.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(grpc::GrpcServer::local_addr)
    }

    /// Where the admin API's Unix socket is.
    pub fn admin_socket(&self) -> Option<&std::path::Path> {
        self.admin_socket
            .as_ref()
            .map(grpc::socket::AdminSocket::path)
    }

    /// Serves until `shutdown` is cancelled, then shuts the servers down
    /// gracefully.
    pub async fn run(self, shutdown: CancellationToken) {
        let fnap = self.fnap.run(shutdown.clone());
        let grpc = async {
            if let Some(grpc) = self.grpc {
                grpc.run(shutdown.clone()).await;
            }
        };
        let socket = async {
            if let Some(socket) = self.admin_socket {
                socket.run(shutdown.clone()).await;
            }
        };
        tokio::join!(fnap, grpc, socket);
    }
}
