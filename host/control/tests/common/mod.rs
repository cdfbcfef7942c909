//! A test host: the control plane on 127.0.0.1:0 with in-memory
//! provisioning, the account `test`/`test` owning `flows.unix.ar`, as in
//! the thesis; and a raw TCP session to talk to it line by line.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fnaa_control::config::ControlConfig;
use fnaa_control::names::DnsName;
use fnaa_control::provision::memory::{MemoryDirectory, MemoryPipelines, MemoryProvisioner};
use fnaa_control::provision::memory_peers::MemoryPeers;
use fnaa_control::service::{Backends, Principal};
use fnaa_control::store::RedbStore;
use fnaa_control::{CancellationToken, ControlPlane};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Fakes {
    pub provisioner: Arc<MemoryProvisioner>,
    pub directory: Arc<MemoryDirectory>,
    pub pipelines: Arc<MemoryPipelines>,
    pub peers: Arc<MemoryPeers>,
}

impl Fakes {
    pub fn new() -> Fakes {
        Fakes {
            provisioner: Arc::new(MemoryProvisioner::new("kafka", &["kf1.unix.ar:9092"])),
            directory: Arc::new(MemoryDirectory::default()),
            pipelines: Arc::new(MemoryPipelines::default()),
            peers: Arc::new(MemoryPeers::default()),
        }
    }
    pub fn backends(&self) -> Backends {
        Backends {
            provisioner: self.provisioner.clone(),
            directory: self.directory.clone(),
            pipelines: self.pipelines.clone(),
            peers: self.peers.clone(),
        }
    }
}

pub struct TestHost {
    pub fnap: SocketAddr,
    pub fnap_tls: Option<SocketAddr>,
    pub grpc: Option<SocketAddr>,
    pub fakes: Fakes,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub service: Arc<fnaa_control::service::Service>,
    pub dir: Arc<tempfile::TempDir>,
}

pub fn name(text: &str) -> DnsName {
    DnsName::parse(text).unwrap()
}

/// The configuration tests start from: loopback, fast failures.
pub fn test_config() -> ControlConfig {
    let mut config = ControlConfig::default();
    config.fnap.listen = Some("127.0.0.1:0".parse().unwrap());
    config.fnap.hostname = "fnaa.unix.ar".into();
    config.fnap.login_failure_delay_ms = 0;
    config.fnap.shutdown_grace_secs = 2;
    config.grpc.listen = None;
    config
}

impl TestHost {
    /// Starts a host with the thesis account and namespace.
    pub async fn start(config: ControlConfig) -> TestHost {
        TestHost::start_in(
            Arc::new(tempfile::tempdir().unwrap()),
            config,
            Fakes::new(),
            None,
            true,
        )
        .await
    }

    /// Starts a host on the store in `dir` (kept across restarts).
    pub async fn start_in(
        dir: Arc<tempfile::TempDir>,
        mut config: ControlConfig,
        fakes: Fakes,
        tls: Option<tokio_rustls::TlsAcceptor>,
        seed: bool,
    ) -> TestHost {
        config.store.path = dir.path().join("state.redb");
        let store = Arc::new(RedbStore::open(&config.store.path).unwrap());
        let plane = ControlPlane::start_with_store(&config, store, fakes.backends(), tls)
            .await
            .unwrap();
        let service = plane.service().clone();
        if seed {
            service
                .add_user(&Principal::Operator, "test", "test")
                .await
                .unwrap();
            service
                .create_namespace(&Principal::Operator, &name("flows.unix.ar"), Some("test"))
                .await
                .unwrap();
        }
        let fnap = plane
            .fnap_addr()
            .unwrap_or_else(|| "0.0.0.0:0".parse().unwrap());
        let fnap_tls = plane.fnap_tls_addr();
        let grpc = plane.grpc_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(plane.run(shutdown.clone()));
        TestHost {
            fnap,
            fnap_tls,
            grpc,
            fakes,
            shutdown,
            task,
            service,
            dir,
        }
    }

    /// Stops the host and waits until it has closed its store.
    pub async fn stop(self) -> (Arc<tempfile::TempDir>, Fakes) {
        self.shutdown.cancel();
        self.task.await.unwrap();
        drop(self.service);
        (self.dir, self.fakes)
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("state.redb")
    }

    pub async fn raw(&self) -> Raw {
        Raw::connect(self.fnap).await
    }

    /// A raw session already authenticated as `test`.
    pub async fn logged_in(&self) -> Raw {
        let mut raw = self.raw().await;
        raw.expect("220 fnaa.unix.ar FNAA").await;
        raw.exchange("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==", "220 Authenticated")
            .await;
        raw
    }

    /// A raw session authenticated with PLAIN as `user`.
    pub async fn logged_in_as(&self, user: &str, password: &str) -> Raw {
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let mut raw = self.raw().await;
        raw.expect("220 fnaa.unix.ar FNAA").await;
        raw.exchange(&format!("AUTHENTICATE PLAIN {token}"), "220 Authenticated")
            .await;
        raw
    }

    /// A raw anonymous session (the host must allow ANONYMOUS).
    pub async fn anonymous(&self) -> Raw {
        let mut raw = self.raw().await;
        raw.expect("220 fnaa.unix.ar FNAA").await;
        raw.exchange("AUTHENTICATE ANONYMOUS =", "220 Authenticated")
            .await;
        raw
    }

    /// A raw anonymous session from the loopback address `from`.
    pub async fn anonymous_from(&self, from: &str) -> Raw {
        let mut raw = Raw::connect_from(self.fnap, from.parse().unwrap()).await;
        raw.expect("220 fnaa.unix.ar FNAA").await;
        raw.exchange("AUTHENTICATE ANONYMOUS =", "220 Authenticated")
            .await;
        raw
    }

    /// Adds the account `user` owning the namespace `namespace`.
    pub async fn add_user(&self, user: &str, password: &str, namespace: &str) {
        self.service
            .add_user(&Principal::Operator, user, password)
            .await
            .unwrap();
        self.service
            .create_namespace(&Principal::Operator, &name(namespace), Some(user))
            .await
            .unwrap();
    }
}

/// A raw TCP session, like telnet in the thesis.
pub struct Raw {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

impl Raw {
    pub async fn connect(address: SocketAddr) -> Raw {
        let stream = TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    /// A connection from the loopback address `from` (any 127.x.y.z), to
    /// stand for another client address.
    pub async fn connect_from(address: SocketAddr, from: std::net::IpAddr) -> Raw {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next line, or `None` when the server closed the connection.
    pub async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8(line).unwrap();
                assert!(text.ends_with("\r\n"), "reply line without CRLF: {text:?}");
                return Some(text.trim_end_matches("\r\n").to_owned());
            }
            let mut chunk = [0u8; 4096];
            let count = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
                .await
                .expect("the server did not answer in time")
                .unwrap_or(0);
            if count == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..count]);
        }
    }

    pub async fn expect(&mut self, expected: &str) {
        assert_eq!(self.line().await.as_deref(), Some(expected));
    }

    /// The next line, which must start with `code`.
    pub async fn expect_code(&mut self, code: u16) -> String {
        let line = self
            .line()
            .await
            .unwrap_or_else(|| panic!("connection closed, expected {code}"));
        assert!(
            line.starts_with(&format!("{code} ")),
            "expected {code}, got {line:?}"
        );
        line
    }

    pub async fn exchange(&mut self, command: &str, expected: &str) {
        self.send(command).await;
        self.expect(expected).await;
    }

    /// Sends a command and checks the code of the reply.
    pub async fn code(&mut self, command: &str, code: u16) -> String {
        self.send(command).await;
        self.expect_code(code).await
    }

    /// Reads a data block after `220 DATA`, up to and without `220 OK`.
    pub async fn data(&mut self, command: &str) -> Vec<String> {
        self.send(command).await;
        let first = self.line().await.unwrap();
        assert_eq!(first, "220 DATA", "for {command}");
        let mut lines = Vec::new();
        loop {
            let line = self.line().await.unwrap();
            if line == "220 OK" {
                return lines;
            }
            lines.push(line);
        }
    }

    /// True when the server closed the connection.
    pub async fn closed(&mut self) -> bool {
        self.line().await.is_none()
    }
}
