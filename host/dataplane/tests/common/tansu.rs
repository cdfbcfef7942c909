//! tansu (a Kafka-protocol broker) of our own, and `kcat` to read and write it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{free_port, require, wait_for_port};

/// A tansu (Kafka protocol) broker of our own, in memory.
pub struct Tansu {
    pub port: u16,
    /// The port clients are told to connect to.
    advertised: u16,
    child: Option<Child>,
}

impl Tansu {
    pub fn start() -> Tansu {
        let port = free_port();
        Tansu::start_advertising(port, port)
    }

    /// A broker on `port` that tells clients to connect to `advertised`
    /// (a [`TcpProxy`] in front of it, say).
    pub fn start_advertising(port: u16, advertised: u16) -> Tansu {
        let mut t = Tansu {
            port,
            advertised,
            child: None,
        };
        t.restart();
        t
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let bin = require("tansu", "cargo install tansu --locked --features dynostore");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let mut child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(self.port, "tansu", &mut child);
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kcat` with a librdkafka that speaks to tansu: Debian's kcat links
/// librdkafka 2.0.2, which cannot parse tansu's ApiVersions response, so
/// kcat runs against the librdkafka rdkafka-sys bundles, built as a shared
/// library by `tests/support/build-librdkafka.sh` (run here when missing).
pub fn kcat() -> Command {
    let bin = require("kcat", "apt-get install kcat");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let lib = std::env::var("FNAA_LIBRDKAFKA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| target.join("librdkafka-shared/lib"));
    if !lib.join("librdkafka.so.1").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/build-librdkafka.sh");
        eprintln!(
            "building a shared librdkafka for kcat in {} (once)",
            lib.display()
        );
        let status = Command::new("sh")
            .arg(&script)
            .arg(lib.parent().unwrap())
            .status()
            .unwrap();
        assert!(
            status.success() && lib.join("librdkafka.so.1").exists(),
            "kcat needs librdkafka >= 2.12 to talk to tansu: run {} (needs cmake, libcurl4-openssl-dev)",
            script.display()
        );
    }
    let mut cmd = Command::new(bin);
    cmd.env("LD_LIBRARY_PATH", lib);
    cmd
}
