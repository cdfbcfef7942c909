//! End to end through the binaries: `fnaa serve` registers the DNS records
//! of each flow it creates in its embedded authoritative server, `dig` sees
//! them, `flow describe flow://...` finds the FNAA through DNS alone, and
//! deleting the flow withdraws the records.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free for both TCP and UDP on 127.0.0.1 (DNS listens on both).
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Kills the host when the test ends, however it ends.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dig(dns_port: u16, name: &str, record: &str) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &dns_port.to_string(),
            "+short",
            "+time=2",
            "+tries=2",
            name,
            record,
        ])
        .output()
        .expect("`dig` runs (install Debian's bind9-dnsutils)");
    assert!(
        out.status.success(),
        "dig failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One FNAP exchange: sends `command`, returns the reply lines up to the
/// final `220 OK`-style line.
fn fnap(reader: &mut BufReader<TcpStream>, command: &str) -> Vec<String> {
    reader
        .get_mut()
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "server closed after {lines:?}"
        );
        let line = line.trim_end().to_owned();
        let done = line.as_bytes().get(3) != Some(&b'-')
            && line != "220 DATA"
            && !lines.iter().any(|l| l == "220 DATA")
            || (lines.iter().any(|l| l == "220 DATA") && line.starts_with("220 OK"));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn write_config(dir: &Path, fnap_port: u16, dns_port: u16, mqtt_port: u16) -> std::path::PathBuf {
    let path = dir.join("fnaa.toml");
    let config = format!(
        r#"
[runtime]
cache_dir = "{dir}/cache"

[fnap]
listen = "127.0.0.1:{fnap_port}"
hostname = "localhost"
login_failure_delay_ms = 0

[grpc]
listen = "127.0.0.1:0"

[store]
path = "{dir}/control.redb"

[dns.registry]
type = "embedded"
listen = "127.0.0.1:{dns_port}"

[brokers.embedded_mqtt]
listen = "127.0.0.1:{mqtt_port}"
"#,
        dir = dir.display()
    );
    std::fs::write(&path, config).unwrap();
    path
}

fn start_host(dir: &Path, config: &Path, fnap_port: u16) -> Host {
    let log = std::fs::File::create(dir.join("fnaa.log")).unwrap();
    let host = Host(
        Command::new(env!("CARGO_BIN_EXE_fnaa"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Wait until it accepts FNAP connections.
    drop(connect(dir, fnap_port));
    host
}

fn connect(dir: &Path, fnap_port: u16) -> TcpStream {
    let started = Instant::now();
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", fnap_port)) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!(
                "fnaa serve did not listen within 60 s ({e}); its log:\n{}",
                std::fs::read_to_string(dir.join("fnaa.log")).unwrap_or_default()
            ),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

#[test]
fn flows_created_over_fnap_are_published_and_resolved_through_dns() {
    let dir = tempfile::tempdir().unwrap();
    let (fnap_port, dns_port, mqtt_port) = (free_port(), free_port(), free_port());
    let config = write_config(dir.path(), fnap_port, dns_port, mqtt_port);

    let added = Command::new(env!("CARGO_BIN_EXE_fnaa"))
        .args([
            "user",
            "add",
            "test",
            "--namespace",
            "flows.unix.ar",
            "--config",
            config.to_str().unwrap(),
        ])
        .env("FNAA_PASSWORD", "test")
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let host = start_host(dir.path(), &config, fnap_port);
    let stream = connect(dir.path(), fnap_port);
    let mut session = BufReader::new(stream);
    let mut greeting = String::new();
    session.read_line(&mut greeting).unwrap();
    assert_eq!(greeting.trim_end(), "220 localhost FNAA");
    assert_eq!(fnap(&mut session, "AUTHENTICATE PLAIN"), ["220 OK"]);
    assert_eq!(
        fnap(&mut session, "AHRlc3QAdGVzdA=="),
        ["220 Authenticated"]
    );
    assert_eq!(
        fnap(&mut session, "CREATE FLOW time.flows.unix.ar"),
        ["220 OK time.flows.unix.ar"]
    );

    // Annex B layout, as an outsider's `dig` sees it.
    assert_eq!(
        dig(dns_port, "time.flows.unix.ar", "PTR"),
        "_flow._tcp.time.flows.unix.ar."
    );
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        format!("0 0 {fnap_port} localhost.")
    );
    assert!(dig(dns_port, "_queue._flow._tcp.time.flows.unix.ar", "TXT").contains("broker-type="));

    // The `flow` CLI finds the FNAA through DNS only: its agent has no address.
    let agents = dir.path().join("flow.yml");
    std::fs::write(
        &agents,
        "agents:\n  - name: fnaa-unix\n    fqdn: fnaa.unix.ar\n    username: test\n    password: test\n    prefix: unix.ar-\nnamespaces:\n  - name: flows.unix.ar\n    agent: fnaa-unix\n",
    )
    .unwrap();
    let described = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args([
            "--config",
            agents.to_str().unwrap(),
            "--nameserver",
            &format!("127.0.0.1:{dns_port}"),
            "-d",
            "describe",
            "flow",
            "flow://time.flows.unix.ar",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&described.stdout),
        String::from_utf8_lossy(&described.stderr),
    );
    assert!(
        described.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("flow=time.flows.unix.ar"), "{stdout}");
    assert!(
        stderr.contains(&format!("FNAA resolved to localhost:{fnap_port}")),
        "{stderr}"
    );

    // A restarted host publishes its flows again (the embedded zone lives in memory).
    drop(session);
    drop(host);
    let _host = start_host(dir.path(), &config, fnap_port);
    let mut session = BufReader::new(connect(dir.path(), fnap_port));
    let mut greeting = String::new();
    session.read_line(&mut greeting).unwrap();
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        format!("0 0 {fnap_port} localhost.")
    );
    assert_eq!(fnap(&mut session, "AUTHENTICATE PLAIN"), ["220 OK"]);
    assert_eq!(
        fnap(&mut session, "AHRlc3QAdGVzdA=="),
        ["220 Authenticated"]
    );

    assert_eq!(
        fnap(&mut session, "DELETE FLOW time.flows.unix.ar")[0]
            .split(' ')
            .next(),
        Some("220")
    );
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        "",
        "records withdrawn"
    );
}
