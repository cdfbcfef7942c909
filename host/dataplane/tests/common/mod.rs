//! Shared by the data-plane tests and benches (`benches/brokers` includes
//! this module with `#[path]`):
//!
//! * real brokers: Mosquitto and tansu instances started per test on free
//!   ports (so that a test can stop and restart them), RabbitMQ nodes of a
//!   test's own and the system RabbitMQ ([`mosquitto`], [`tansu`],
//!   [`rabbitmq`]); a missing broker fails the test with what to install or
//!   start; nothing is skipped silently;
//! * outside clients (`mosquitto_sub`, `kcat`, `pika`), a TCP proxy that
//!   cuts connections and a test CA ([`net`]);
//! * [`pipeline`]: pipelines from TOML, producers of numbered events and
//!   the readers that count what came back (missing, duplicates);
//!   [`plugins`]: the test processors and events of the pipeline tests;
//! * [`compliance`]: the transport contract every broker's test file
//!   checks through a [`compliance::TransportHarness`].

#![allow(dead_code, clippy::unwrap_used)]

pub mod compliance;
pub mod mosquitto;
pub mod nats;
pub mod net;
pub mod pipeline;
pub mod plugins;
pub mod rabbitmq;
pub mod tansu;

// Not every test uses every broker.
#[allow(unused_imports)]
pub use mosquitto::{Mosquitto, MosquittoSub};
#[allow(unused_imports)]
pub use nats::{NatsServer, python_with_nats};
#[allow(unused_imports)]
pub use net::{TcpProxy, TestCa};
#[allow(unused_imports)]
pub use rabbitmq::{RabbitNode, python_with_pika, rabbitmq};
#[allow(unused_imports)]
pub use tansu::{Tansu, kcat};

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of `program`, or a panic that says how to install it.
pub fn require(program: &str, install: &str) -> PathBuf {
    if let Ok(out) = Command::new("which").arg(program).output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    let mut dirs: Vec<PathBuf> = ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    for dir in dirs {
        let p = dir.join(program);
        if p.exists() {
            return p;
        }
    }
    panic!("`{program}` is required by this test and was not found: {install}");
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    wait_for_port_logged(port, what, child, None, Duration::from_secs(20));
}

/// Waits until `child` listens on `port`; a failure quotes the end of its
/// `log` file.
fn wait_for_port_logged(
    port: u16,
    what: &str,
    child: &mut Child,
    log: Option<&Path>,
    within: Duration,
) {
    let tail = || {
        log.and_then(|l| std::fs::read_to_string(l).ok())
            .map(|text| {
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "; its output ended with:\n{}",
                    lines[lines.len().saturating_sub(20)..].join("\n")
                )
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before listening on {port}{}",
                tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what} did not listen on port {port} within {within:?}{}",
        tail()
    );
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:x}", std::process::id(), rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// Logs to the test output (RUST_LOG controls the level; default warn).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Everything logged through `tracing` on this thread, at every level and
/// from every target, while it lives: for tests that check what the logs
/// say (or never say). Use it on a current-thread runtime, where the tasks
/// a test spawns run on the test's thread.
pub struct LogCapture {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    pub fn start() -> LogCapture {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || CaptureWriter(buffer.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        LogCapture {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
