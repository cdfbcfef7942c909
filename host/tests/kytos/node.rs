//! A RabbitMQ node of the test's own, which it may stop and start: the
//! data-plane tests' `RabbitNode`, with the helpers it takes from its
//! parent module there.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

pub use crate::common::free_port;

#[path = "../../dataplane/tests/common/rabbitmq.rs"]
pub mod rabbitmq;

/// The path of `program`, or a panic that says how to install it.
pub fn require(program: &str, install: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("`{program}` is required by this test: {install}");
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    super::setup::common_unique(prefix)
}

/// Waits until `port` accepts connections; fails with the end of `log`
/// if `child` exits first or `within` passes.
pub fn wait_for_port_logged(
    port: u16,
    what: &str,
    child: &mut Child,
    log: Option<&Path>,
    within: Duration,
) {
    let tail = || {
        log.and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before listening on {port}:\n{}",
                tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what} did not listen on {port} within {within:?}:\n{}",
        tail()
    );
}
