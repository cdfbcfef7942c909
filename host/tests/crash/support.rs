//! What the crash tests need besides the kill loop: ports, programs, the
//! host process, numbered events.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 for both TCP and UDP (DNS listens on both).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `program` if it runs (`probe` is an argument it accepts), else a loud
/// failure saying what to install.
pub fn require(program: &str, probe: &str, install: &str) -> String {
    let runs = Command::new(program)
        .arg(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(runs, "`{program}` is required: {install}");
    program.to_owned()
}

/// Fails loudly unless `python3` imports `module`.
pub fn require_python(module: &str, install: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "python3 with `{module}` is required: {install}"
    );
}

/// Runs a Python script to its end (setup, cleanup); fails with its stderr.
pub fn python(what: &str, script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `python3 -u -c <script> <args>` command (unbuffered: lines come out
/// as they are printed).
pub fn python_command(script: &str, args: &[&str]) -> Command {
    let mut command = Command::new("python3");
    command.args(["-u", "-c", script]).args(args);
    command
}

/// A tiny deterministic random sequence (xorshift64*).
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration between `lo` and `hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// A child process killed (SIGKILL, by its own pid) and reaped when
/// dropped.
pub struct Process(pub Option<Child>);

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `fnaa serve`, killed with SIGKILL by its own pid.
pub struct Host {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Host {
    pub fn start(config: &Path, log: PathBuf) -> Host {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fnaa"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("FNAA_CRASH_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Host {
            child: Some(child),
            log,
        }
    }

    /// `kill -9 <pid>`, then reaps it; fails when it was not running.
    pub fn kill9(&mut self) {
        self.assert_running();
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status()
                .unwrap();
            let _ = child.wait();
            assert!(status.success(), "kill -9 {} failed", child.id());
        }
    }

    /// Fails when the host exited by itself.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "fnaa serve exited by itself with {status}; its log ends with:\n{}",
                tail(&self.log)
            );
        }
    }

    /// Waits until the host logged `data plane started`.
    pub fn wait_started(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while !std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains("data plane started")
        {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "fnaa serve did not start its data plane within {within:?}; its log:\n{}",
                tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One numbered CloudEvent, structured mode, on one line.
pub fn event(n: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"e-{n}","source":"/crash","type":"crash.tick","datacontenttype":"application/json","data":{{"n":{n}}}}}"#
    )
}

/// The event id in a reader's line: the `id` of a CloudEvent document, or
/// the line itself.
pub fn event_id(line: &str) -> String {
    let line = line.trim();
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| line.to_owned())
}
