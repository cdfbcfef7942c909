//! What the end-to-end tests of the binaries share: free ports, a `fnaa
//! serve` child process killed when the test ends, and raw FNAP sessions.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free for both TCP and UDP on 127.0.0.1 (DNS listens on both).
/// `N` distinct free ports (TCP and UDP): all held at once while they are
/// picked, so that no two are the same.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let mut held = Vec::with_capacity(N);
    while held.len() < N {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
            held.push((port, tcp, udp));
        }
    }
    std::array::from_fn(|i| held[i].0)
}

pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// A running `fnaa serve`, killed when the test ends, however it ends.
pub struct Host {
    child: Child,
    log: PathBuf,
    pub fnap_port: u16,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// Starts `fnaa serve --config <config>` (logging to `<dir>/fnaa.log`)
    /// and waits until it accepts FNAP connections on `fnap_port`.
    pub fn start(dir: &Path, config: &Path, fnap_port: u16) -> Host {
        let log = dir.join("fnaa.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fnaa"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut host = Host {
            child,
            log,
            fnap_port,
        };
        // A host that exits at once (a bad configuration, a port taken)
        // fails the test now, with its log, not after the connect timeout.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", fnap_port)).is_err()
            && started.elapsed() < Duration::from_secs(60)
        {
            if let Some(status) = host.child.try_wait().unwrap() {
                panic!("fnaa serve exited with {status}; its log:\n{}", host.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(host.connect());
        host
    }

    /// Kills the host with SIGKILL and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the host logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A TCP connection to the FNAP port (retried for up to 60 s while the
    /// host starts).
    pub fn connect(&self) -> TcpStream {
        let started = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", self.fnap_port)) {
                Ok(stream) => break stream,
                Err(_) if started.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!(
                    "fnaa serve did not listen within 60 s ({e}); its log:\n{}",
                    self.log()
                ),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    /// An FNAP session past the greeting, authenticated with PLAIN.
    pub fn session(&self, user: &str, password: &str) -> Session {
        let mut session = self.session_raw();
        assert_eq!(session.send("AUTHENTICATE PLAIN"), ["220 OK"]);
        let token = plain_token(user, password);
        assert_eq!(session.send(&token), ["220 Authenticated"]);
        session
    }

    /// An FNAP session past the greeting, not authenticated.
    pub fn session_raw(&self) -> Session {
        let mut reader = BufReader::new(self.connect());
        let mut greeting = String::new();
        reader.read_line(&mut greeting).unwrap();
        assert!(
            greeting.starts_with("220 ") && greeting.trim_end().ends_with(" FNAA"),
            "greeting: {greeting}"
        );
        Session(reader)
    }
}

/// `\0user\0password` in base64 (SASL PLAIN, RFC 4616).
pub fn plain_token(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// A raw FNAP session.
pub struct Session(BufReader<TcpStream>);

impl Session {
    /// Sends `command`, returns the reply lines up to the final one (the
    /// `220 OK` closing a `220 DATA` block, or the single reply line).
    pub fn send(&mut self, command: &str) -> Vec<String> {
        self.0
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        let mut lines: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                self.0.read_line(&mut line).unwrap() > 0,
                "server closed after {lines:?} (command {command})"
            );
            let line = line.trim_end().to_owned();
            let in_data = lines.first().is_some_and(|l| l == "220 DATA");
            let done = if in_data {
                line.starts_with("220 OK")
            } else {
                line != "220 DATA" && line.as_bytes().get(3) != Some(&b'-')
            };
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Sends `command` and asserts the reply starts with `220`.
    pub fn ok(&mut self, command: &str) -> Vec<String> {
        let reply = self.send(command);
        assert!(
            reply.last().is_some_and(|l| l.starts_with("220")),
            "{command} -> {reply:?}"
        );
        reply
    }
}

/// Adds user `name` with password `password` owning `namespace`, through
/// `fnaa user add` while the host is stopped.
pub fn add_user(config: &Path, name: &str, password: &str, namespace: &str) {
    let added = Command::new(env!("CARGO_BIN_EXE_fnaa"))
        .args([
            "user",
            "add",
            name,
            "--namespace",
            namespace,
            "--config",
            config.to_str().unwrap(),
        ])
        .env("FNAA_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "fnaa user add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
}

/// The configuration of a host in `dir` on the given ports, plus `extra`
/// TOML (e.g. `[flows]` and `[brokers]` sections).
pub fn write_config(
    dir: &Path,
    fnap_port: u16,
    dns_port: u16,
    mqtt_port: u16,
    extra: &str,
) -> PathBuf {
    write_named_config(dir, fnap_port, dns_port, mqtt_port, "localhost", &[], extra)
}

/// Like [`write_config`], with `[fnap] hostname` and the zones of the
/// embedded DNS server (`[dns.registry] zones`) given.
pub fn write_named_config(
    dir: &Path,
    fnap_port: u16,
    dns_port: u16,
    mqtt_port: u16,
    hostname: &str,
    zones: &[&str],
    extra: &str,
) -> PathBuf {
    let zones = zones
        .iter()
        .map(|zone| format!("{zone:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let path = dir.join("fnaa.toml");
    let config = format!(
        r#"
[runtime]
cache_dir = "{dir}/cache"

[fnap]
listen = "127.0.0.1:{fnap_port}"
hostname = "{hostname}"
login_failure_delay_ms = 0

[grpc]
listen = "127.0.0.1:0"

[store]
path = "{dir}/control.redb"

[dns.registry]
type = "embedded"
listen = "127.0.0.1:{dns_port}"
zones = [{zones}]

[brokers.embedded_mqtt]
listen = "127.0.0.1:{mqtt_port}"

{extra}
"#,
        dir = dir.display()
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// A host of a test's own: its directory, configuration and ports, user
/// `test` (password `test`) owning a namespace, started.
pub struct TestHost {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub fnap_port: u16,
    pub dns_port: u16,
    pub mqtt_port: u16,
    pub host: Host,
}

/// Starts a [`TestHost`] configured with `extra` TOML whose user `test`
/// owns `namespace`.
pub fn test_host(extra: &str, namespace: &str) -> TestHost {
    let dir = tempfile::tempdir().unwrap();
    let [fnap_port, dns_port, mqtt_port] = free_ports();
    let config = write_config(dir.path(), fnap_port, dns_port, mqtt_port, extra);
    add_user(&config, "test", "test", namespace);
    let host = Host::start(dir.path(), &config, fnap_port);
    TestHost {
        dir,
        config,
        fnap_port,
        dns_port,
        mqtt_port,
        host,
    }
}

/// Publishes, as an outsider would, a structured-mode CloudEvent `id` of
/// type `kind` with `mosquitto_pub` (MQTT 3.1.1, QoS 1) to `topic` on
/// 127.0.0.1:`port`.
pub fn publish_event(port: u16, topic: &str, id: &str, kind: &str) {
    let event = serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": "/clock",
        "type": kind,
        "datacontenttype": "application/json",
        "data": { "at": id },
    });
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-q", "1", "-t", topic, "-m", &event.to_string()])
        .output()
        .expect("`mosquitto_pub` runs (install Debian's mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Python script (`python3 -c`) with `args`, returning what it
/// printed; fails the test with its error output (a missing module names
/// itself there: `pip install pika nats-py`).
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
