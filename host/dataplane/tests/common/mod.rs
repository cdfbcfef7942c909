//! Real brokers for the data-plane tests: Mosquitto and tansu instances
//! started per test on free ports (so that a test can stop and restart
//! them), and the system RabbitMQ. A missing broker fails the test with
//! what to install or start; nothing is skipped silently.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on port {port} within 20 s");
}

/// A Mosquitto broker of our own.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts Mosquitto on a free port with persistence (so that a restart
    /// keeps persistent sessions, like a production broker) and `extra`
    /// configuration lines.
    pub fn start(extra: &str) -> Mosquitto {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // Started as root, mosquitto drops to its own user: let that user
        // write the persistence file.
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let conf = dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(
            f,
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nmax_inflight_messages 1000\nmax_queued_messages 100000\n{extra}",
            dir.path().display()
        )
        .unwrap();
        let mut m = Mosquitto {
            port,
            dir,
            child: None,
        };
        m.restart();
        m
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("mosquitto.conf")
    }

    /// Starts (again) with the same configuration and port.
    pub fn restart(&mut self) {
        let bin = require("mosquitto", "apt-get install mosquitto mosquitto-clients");
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(self.port, "mosquitto", &mut child);
        self.child = Some(child);
    }

    /// Stops the broker (SIGTERM: it saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A tansu (Kafka protocol) broker of our own, in memory.
pub struct Tansu {
    pub port: u16,
    child: Option<Child>,
}

impl Tansu {
    pub fn start() -> Tansu {
        let mut t = Tansu {
            port: free_port(),
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
        let mut child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
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

/// The system RabbitMQ (guest/guest on 127.0.0.1:5672), or a panic that
/// says how to start it.
pub fn rabbitmq() -> u16 {
    let port = std::env::var("FNAA_TEST_RABBITMQ_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5672);
    if TcpStream::connect(("127.0.0.1", port)).is_err() {
        panic!(
            "RabbitMQ is required on 127.0.0.1:{port} (guest/guest): apt-get install rabbitmq-server && service rabbitmq-server start (or set FNAA_TEST_RABBITMQ_PORT)"
        );
    }
    port
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

/// `python3` with `pika`, or a panic that says how to install it.
pub fn python_with_pika() -> Command {
    let python = require("python3", "apt-get install python3");
    let ok = Command::new(&python)
        .args(["-c", "import pika"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the Python `pika` package is required: pip install pika (or apt-get install python3-pika)"
    );
    Command::new(python)
}

/// A `mosquitto_sub` process (an outsider reading what we publish) that
/// tells when its subscription is in place.
pub struct MosquittoSub {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    subscribed: bool,
}

impl MosquittoSub {
    /// Subscribes to `topic` on 127.0.0.1:`port` until `count` messages
    /// arrived (or 30 s passed); `args` adds options (`-V 5`, `-F ...`).
    pub fn start(port: u16, topic: &str, count: usize, args: &[&str]) -> MosquittoSub {
        let bin = require("mosquitto_sub", "apt-get install mosquitto-clients");
        // Line-buffered, so that the SUBACK line arrives when it is printed.
        let mut child = Command::new(require("stdbuf", "apt-get install coreutils"))
            .arg("-oL")
            .arg(bin)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                topic,
                "-q",
                "1",
                "-d",
            ])
            .args(["-C", &count.to_string(), "-W", "30"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        MosquittoSub {
            child,
            lines: rx,
            subscribed: false,
        }
    }

    /// Waits for the broker's SUBACK.
    pub fn wait_subscribed(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.subscribed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.subscribed = line.contains("SUBACK"),
                Err(_) => panic!("mosquitto_sub did not subscribe within 20 s"),
            }
        }
    }

    /// Waits for the process to end; returns the message lines (debug lines
    /// left out).
    pub fn messages(mut self) -> Vec<String> {
        let _ = self.child.wait();
        // The reader thread ends (and the channel with it) at end of output.
        self.lines
            .iter()
            .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
            .collect()
    }
}
