//! The admin API on a Unix socket: what `fnaa user`, `fnaa flows`, `fnaa
//! processors` and `fnaa subscriptions` use on the machine of a running
//! host. File permissions stand in for the operator token: the socket is
//! created with mode 0600, and a connection from a process of another user
//! (root excepted) is closed before it says anything.

use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::ControlApi;
use super::pb::control_client::ControlClient;
use super::pb::control_server::ControlServer;
use crate::server::throttle::LoginThrottle;
use crate::service::Service;

/// Why the socket could not be served or reached.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another fnaa host already serves {0}")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Reach { path: PathBuf, source: io::Error },
    #[error("cannot connect to the host at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
}

/// A bound admin socket.
pub struct AdminSocket {
    listener: UnixListener,
    owner: u32,
    path: PathBuf,
    api: ControlApi,
}

impl AdminSocket {
    /// Binds `path` with mode 0600. A socket file left by a host that died
    /// is replaced; one a live host answers on is an error.
    pub(crate) async fn bind(
        path: &Path,
        service: Arc<Service>,
        throttle: Arc<LoginThrottle>,
    ) -> Result<AdminSocket, SocketError> {
        let failed = |source| SocketError::Bind {
            path: path.to_owned(),
            source,
        };
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(SocketError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(failed)?;
        }
        // Whoever connects before the mode is set is still refused by
        // `own_user_only`.
        let listener = UnixListener::bind(path).map_err(failed)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        // The socket file is ours: its owner is this process's user.
        let owner = std::fs::metadata(path).map_err(failed)?.uid();
        Ok(AdminSocket {
            listener,
            owner,
            path: path.to_owned(),
            api: ControlApi {
                service,
                admin_token: None,
                throttle,
                local_operator: true,
            },
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` is cancelled, then removes the socket file.
    pub async fn run(self, shutdown: CancellationToken) {
        let incoming = own_user_only(self.listener, self.owner, shutdown.clone());
        let served = tonic::transport::Server::builder()
            .add_service(ControlServer::new(self.api))
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, socket = %self.path.display(), "admin socket failed");
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The connections of `listener` from processes of user `own` or root.
fn own_user_only(
    listener: UnixListener,
    own: u32,
    shutdown: CancellationToken,
) -> ReceiverStream<io::Result<UnixStream>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                () = sender.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            match stream.peer_cred() {
                Ok(peer) if peer.uid() == own || peer.uid() == 0 => {
                    if sender.send(Ok(stream)).await.is_err() {
                        return;
                    }
                }
                Ok(peer) => {
                    tracing::warn!(
                        uid = peer.uid(),
                        "admin socket: refused a process of another user"
                    );
                }
                Err(error) => tracing::warn!(%error, "admin socket: cannot tell who connects"),
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// A client of the host listening on `path`, or `None` when no host does
/// (no socket file, or nobody accepts on it).
pub async fn connect(
    path: &Path,
) -> Result<Option<ControlClient<tonic::transport::Channel>>, SocketError> {
    match UnixStream::connect(path).await {
        Ok(_) => {}
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(SocketError::Reach {
                path: path.to_owned(),
                source,
            });
        }
    }
    let target = path.to_owned();
    // The URI is unused: every connection goes to the socket.
    let channel = tonic::transport::Endpoint::from_static("http://fnaa.sock")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let target = target.clone();
            async move {
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(
                    UnixStream::connect(target).await?,
                ))
            }
        }))
        .await
        .map_err(|source| SocketError::Connect {
            path: path.to_owned(),
            source,
        })?;
    Ok(Some(ControlClient::new(channel)))
}
