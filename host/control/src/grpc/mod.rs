//! The gRPC admin API (`proto/fnaa_control.proto`): the service's
//! operations for operators and orchestrators, with FNAP's authorization,
//! FNAP's throttling of failed logins and, with `[grpc.tls]`, over TLS.

mod api;
mod auth;
mod convert;
pub mod socket;

/// The API's messages of the service's records, for clients that read the
/// store itself when no host runs.
pub use convert::{flow_pb, processor_pb, subscription_pb};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;

use crate::config::GrpcConfig;
use crate::server::throttle::LoginThrottle;
use crate::service::Service;

/// The generated messages, server and client.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("fnaa.control.v1");
}

use pb::control_server::ControlServer;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound gRPC server.
pub struct GrpcServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    api: ControlApi,
}

impl GrpcServer {
    /// Reads the operator token and the TLS identity of `[grpc.tls]` and
    /// binds `[grpc] listen`. Failed logins are counted in `throttle`,
    /// which the FNAP server shares.
    pub(crate) async fn bind(
        config: &GrpcConfig,
        service: Arc<Service>,
        throttle: Arc<LoginThrottle>,
    ) -> Result<GrpcServer, String> {
        let address = config.listen.ok_or("[grpc] listen is not set")?;
        let admin_token = match &config.admin_token_file {
            Some(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let token = token.trim().to_owned();
                if token.len() < 16 {
                    return Err(format!(
                        "the operator token in {} is shorter than 16 characters",
                        path.display()
                    ));
                }
                Some(token)
            }
            None => None,
        };
        let tls = match &config.tls {
            Some(files) => {
                let mut tls = crate::server::tls::load_server_config(files)
                    .map_err(|e| format!("[grpc.tls]: {e}"))?;
                tls.alpn_protocols = vec![b"h2".to_vec()];
                Some(TlsAcceptor::from(Arc::new(tls)))
            }
            None => {
                if let Some(refusal) = config.cleartext_refusal() {
                    return Err(refusal);
                }
                if !address.ip().is_loopback() {
                    tracing::warn!(
                        %address,
                        "gRPC API without TLS off loopback: tokens and passwords cross the network in clear text"
                    );
                }
                None
            }
        };
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(GrpcServer {
            listener,
            tls,
            api: ControlApi {
                service,
                admin_token,
                throttle,
                local_operator: false,
            },
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let router = tonic::transport::Server::builder().add_service(ControlServer::new(self.api));
        let served = match self.tls {
            Some(acceptor) => {
                let incoming = tls_incoming(self.listener, acceptor, shutdown.clone());
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
            None => {
                let incoming = TcpListenerStream::new(self.listener);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
        };
        if let Err(error) = served {
            tracing::error!(%error, "gRPC server failed");
        }
    }
}

/// The connections of `listener` once their TLS handshake is done; each
/// handshake runs in a task of its own so that a slow or silent client
/// holds up no other. Ends on `shutdown` or when the server stops reading.
fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                () = sender.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "gRPC TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(%peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// The implementation of the `Control` service (in `api`), with what it
/// needs to authenticate callers (in `auth`).
struct ControlApi {
    service: Arc<Service>,
    admin_token: Option<String>,
    throttle: Arc<LoginThrottle>,
    /// Served on the admin socket: every caller is the operator (the
    /// socket's permissions and peer check decided who may call).
    local_operator: bool,
}
