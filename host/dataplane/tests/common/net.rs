//! Network helpers: a TCP proxy a test can cut, and a test certificate
//! authority for TLS listeners.

use std::path::{Path, PathBuf};

/// A TCP proxy from a port of its own to a broker's port, which a test can
/// cut (every connection closed, new ones refused, as when the broker
/// stops) and restore: the broker becomes unreachable and comes back
/// without losing what it holds. Its tasks end with the test's runtime.
pub struct TcpProxy {
    pub port: u16,
    target: u16,
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl TcpProxy {
    /// Listens on `port`, forwarding to 127.0.0.1:`target`.
    pub async fn start(port: u16, target: u16) -> std::sync::Arc<TcpProxy> {
        let proxy = std::sync::Arc::new(TcpProxy {
            port,
            target,
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        proxy.restore().await;
        proxy
    }

    /// Closes every connection and stops listening.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens again (on the same port).
    pub async fn restore(self: &std::sync::Arc<Self>) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("the proxy cannot listen on {}: {e}", self.port));
        let me = self.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = me.target;
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut tasks = me.tasks.lock().unwrap();
                tasks.retain(|t| !t.is_finished());
                tasks.push(connection.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }
}

/// A test certificate authority and a server certificate it signed for
/// `127.0.0.1` and `localhost`, written as PEM files into a directory.
pub struct TestCa {
    /// The CA certificate: what clients trust.
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        Self::create_for(dir, &["127.0.0.1", "localhost"])
    }

    /// A CA and a server certificate for `names` (DNS names or IPs).
    pub fn create_for(dir: &Path, names: &[&str]) -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fnaa test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "fnaa test broker");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let files = TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.ca, ca_cert.pem()).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}
