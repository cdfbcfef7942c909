//! A `nats-server` of a test's own (JetStream on, its store in a temporary
//! directory, a free port on 127.0.0.1), stopped and restarted by its own
//! pid, and Python with `nats-py` to read what we publish.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::nats::NatsBrokerConfig;
use fnaa_dataplane::transport::{DeliveryMode, EndpointContext};

/// A `nats-server` of our own, JetStream on.
pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            port: super::free_port(),
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.run();
        server
    }

    pub fn run(&mut self) {
        let bin = super::require(
            "nats-server",
            "apt-get install nats-server (Debian's package; or a release binary on PATH)",
        );
        let log = self.store.path().join("server.log");
        let child = Command::new(bin)
            .args(["-js", "-sd"])
            .arg(self.store.path().join("js"))
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-l"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready(&log);
    }

    /// Waits until the server listens and JetStream is up (the log says
    /// "Server is ready").
    pub fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let ready = text.matches("Server is ready").count();
            let starts = text.matches("Starting nats-server").count();
            if ready >= starts.max(1)
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("nats-server exited with {status}; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nats-server did not get ready on port {}; its log:\n{}",
            self.port,
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn broker(&self) -> NatsBrokerConfig {
        NatsBrokerConfig::new(self.url())
    }

    /// Stops the server (by its pid); the store stays for a restart.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `python3`, once it is known to have `nats-py`.
pub fn python_with_nats() -> std::path::PathBuf {
    let python = super::require("python3", "apt-get install python3");
    let has_nats = Command::new(&python)
        .args(["-c", "import nats"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_nats,
        "the Python `nats-py` package is required: pip install nats-py"
    );
    python
}

/// The context of an endpoint of pipeline `nats-test` reporting to
/// `monitor`, retrying every 100-500 ms.
pub fn context_with(
    role: &'static str,
    delivery: DeliveryMode,
    monitor: Arc<OutageMonitor>,
) -> EndpointContext {
    let retry = RetryConfig {
        initial_interval_ms: 100,
        max_interval_ms: 500,
        reminder_interval_s: 60,
    };
    EndpointContext::new("nats-test", role, delivery, retry, monitor)
}
