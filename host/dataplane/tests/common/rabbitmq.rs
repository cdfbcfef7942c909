//! RabbitMQ: the system node the tests share, nodes of our own that a test
//! can stop and restart, and `python3` with `pika` as an outside client.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require, unique, wait_for_port_logged};

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
