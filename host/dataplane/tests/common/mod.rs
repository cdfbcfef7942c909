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
        Mosquitto::start_with(
            |port, _dir| format!("listener {port} 127.0.0.1\nallow_anonymous true"),
            extra,
        )
    }

    /// Starts Mosquitto with a TLS-only listener (a certificate for
    /// `127.0.0.1` and `localhost` signed by a CA made here, see
    /// [`Mosquitto::ca_file`]) that admits only `users` (user name,
    /// password), through a `mosquitto_passwd` password file.
    pub fn start_tls(users: &[(&str, &str)]) -> Mosquitto {
        let listener = |port: u16, dir: &Path| {
            let tls = TestCa::create(dir);
            let passwd = dir.join("passwd");
            std::fs::File::create(&passwd).unwrap();
            let bin = require("mosquitto_passwd", "apt-get install mosquitto");
            for (user, password) in users {
                let out = Command::new(&bin)
                    .arg("-b")
                    .arg(&passwd)
                    .args([user, password])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "mosquitto_passwd could not add user {user}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            format!(
                "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\nrequire_certificate false\nallow_anonymous false\npassword_file {}",
                tls.cert.display(),
                tls.key.display(),
                passwd.display()
            )
        };
        Mosquitto::start_with(listener, "")
    }

    /// Starts Mosquitto on a free port; `listener` gives the listener
    /// section for a port and the broker's directory, `extra` comes last.
    fn start_with(listener: impl FnOnce(u16, &Path) -> String, extra: &str) -> Mosquitto {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // Started as root, mosquitto drops to its own user: let that user
        // write the persistence file (and read the certificate, key and
        // password files).
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let listener = listener(port, dir.path());
        let conf = dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(
            f,
            "{listener}\npersistence true\npersistence_location {}/\nautosave_interval 1\nmax_inflight_messages 1000\nmax_queued_messages 100000\n{extra}",
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

    /// The CA certificate (PEM) that signs the certificate of a broker
    /// started by [`Mosquitto::start_tls`].
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("mosquitto.conf")
    }

    /// Starts (again) with the same configuration and port.
    pub fn restart(&mut self) {
        let bin = require("mosquitto", "apt-get install mosquitto mosquitto-clients");
        let log_path = self.dir.path().join("mosquitto.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for_port_logged(
            self.port,
            "mosquitto",
            &mut child,
            Some(&log_path),
            Duration::from_secs(20),
        );
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
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
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

/// A RabbitMQ node of our own (not the shared system one), so that a test
/// can stop and restart it: its own node name, AMQP and distribution ports,
/// database, logs and Erlang cookie, in a temporary directory that outlives
/// restarts (durable queues and persistent messages survive them, as on a
/// production broker). User `guest`/`guest`, from 127.0.0.1 only.
pub struct RabbitNode {
    pub port: u16,
    dist_port: u16,
    pub node: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RabbitNode {
    /// Starts a node; this takes a few seconds (10 or so on a busy machine).
    pub fn start() -> RabbitNode {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let dist_port = free_port();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users.guest = true\n"),
        )
        .unwrap();
        // No plugins: the node starts faster.
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        let mut node = RabbitNode {
            port,
            dist_port,
            node: format!("{}@localhost", unique("fnaa-test")),
            dir,
            child: None,
        };
        node.restart();
        node
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("rabbitmq-server.out")
    }

    /// Starts the node (again) on the same ports with the same data.
    pub fn restart(&mut self) {
        // The server script itself, not the /usr/sbin wrapper, which would
        // switch to the `rabbitmq` user (and its cookie and environment).
        let script = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        assert!(
            script.exists(),
            "RabbitMQ ({}) is required by this test: apt-get install rabbitmq-server",
            script.display()
        );
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = Command::new(script);
        command
            .current_dir(dir)
            // The Erlang cookie goes to $HOME.
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            // Not the system node's settings (its node name, its port).
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut child = command.spawn().unwrap();
        wait_for_port_logged(
            self.port,
            &format!("rabbitmq-server (node {})", self.node),
            &mut child,
            Some(&self.log_path()),
            Duration::from_secs(60),
        );
        self.child = Some(child);
    }

    /// Stops the node the way an operator does (SIGTERM: the script asks
    /// the VM to shut down cleanly) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_node(&mut child);
        // The AMQP port is closed once the VM is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_node(&mut child);
        }
    }
}

/// Kills what is left of a node started by [`RabbitNode::restart`]: the
/// Erlang VM the script runs (its child; the VM's own helpers exit with
/// it), then the script.
fn kill_node(script: &mut Child) {
    if let Ok(None) = script.try_wait() {
        for vm in children_of(script.id()) {
            signal(vm, "KILL");
        }
        // The script waits for the VM (and so reaps it): give it a moment
        // to notice, rather than leave a zombie VM behind.
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(script.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = script.kill();
    let _ = script.wait();
}

/// Sends signal `name` to process `pid` (one process, never a group:
/// procps `kill -SIG -PGID` misparses the group id).
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces and parens.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
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
