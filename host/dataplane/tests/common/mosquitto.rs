//! Mosquitto brokers of our own, and `mosquitto_sub` as an outside reader.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::transport::{Destination, Message};

use super::{TestCa, free_port, require, wait_for_port_logged};

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
            .stderr(Stdio::inherit())
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
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("mosquitto_sub did not subscribe within 20 s")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "mosquitto_sub exited before subscribing: {:?}",
                    self.child.wait()
                ),
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

/// Reconnect quickly: tests stop and start brokers.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_interval_ms: 50,
        max_interval_ms: 500,
        reminder_interval_s: 60,
    }
}

/// Message `i` to `topic`, with CloudEvents-like headers (MQTT 5) or
/// without (MQTT 3.1.1 has none).
pub fn message(topic: &str, i: usize, headers: bool) -> Message {
    Message {
        destination: Destination {
            name: topic.to_owned(),
            routing_key: None,
        },
        key: None,
        content_type: headers.then(|| "application/json".to_owned()),
        headers: if headers {
            vec![
                ("specversion".into(), b"1.0".to_vec()),
                ("id".into(), format!("{i}").into_bytes()),
            ]
        } else {
            Vec::new()
        },
        payload: format!("{{\"n\":{i}}}").into_bytes(),
    }
}
