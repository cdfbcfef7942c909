//! `fnaa serve` with no broker configured starts the embedded MQTT broker,
//! and events published with `mosquitto_pub` to one flow come out of another
//! flow through a processor plugin, along a pipeline declared in the TOML
//! configuration.
#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(program: &str) -> String {
    let found = Command::new("which")
        .arg(program)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is required: apt-get install mosquitto-clients"
    );
    program.to_owned()
}

/// The lines a child writes, as they come.
fn lines(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_runs_the_embedded_broker_and_a_static_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt = free_port();
    let config = dir.path().join("fnaa.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[fnap]
listen = "127.0.0.1:0"

[grpc]
listen = "127.0.0.1:0"

[store]
path = "{state}"

[brokers.embedded_mqtt]
listen = "127.0.0.1:{mqtt}"

[[pipelines]]
name = "edge-bridge"
batch_timeout_ms = 2
source = {{ broker = "embedded", mqtt = {{ topics = ["flows/sensors"] }} }}
processors = [{{ plugin = "bridge", config = {{ "set.subject" = "bridged" }} }}]
sink = {{ broker = "embedded", mqtt = {{ topic = "flows/bridged" }} }}
"#,
            state = dir.path().join("state.redb").display()
        ),
    )
    .unwrap();
    let mut host = Host(
        Command::new(env!("CARGO_BIN_EXE_fnaa"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // `fnaa serve` says "data plane started" once the embedded broker runs
    // and the pipeline's source is subscribed.
    let log = lines(host.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("data plane started") => break,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "fnaa serve did not start its data plane:\n{}",
                seen.join("\n")
            ),
        }
    }
    assert!(
        TcpStream::connect(("127.0.0.1", mqtt)).is_ok(),
        "the embedded MQTT broker is not on {mqtt}"
    );
    let port = mqtt.to_string();
    // Line-buffered (`stdbuf -oL`), so that the SUBACK line arrives at once.
    let mut sub = Command::new("stdbuf")
        .args([
            "-oL",
            &require("mosquitto_sub"),
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "flows/bridged",
            "-q",
            "1",
            "-d",
            "-C",
            "2",
            "-W",
            "30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(sub.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .unwrap()
        .contains("SUBACK")
    {}
    for id in ["a-1", "a-2"] {
        let event = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/kytos/topology","type":"kytos/topology.link_up","datacontenttype":"application/json","data":{{"link":"7"}}}}"#
        );
        let status = Command::new(require("mosquitto_pub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "flows/sensors",
                "-q",
                "1",
                "-m",
                &event,
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let _ = sub.wait();
    let text: Vec<String> = out.iter().filter(|l| l.starts_with('{')).collect();
    let events: Vec<serde_json::Value> = text
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "mosquitto_sub got: {text:?}");
    for (e, id) in events.iter().zip(["a-1", "a-2"]) {
        assert_eq!(e["id"], id);
        assert_eq!(e["subject"], "bridged", "{e}");
        assert_eq!(e["type"], "kytos/topology.link_up");
        assert_eq!(e["data"]["link"], "7");
    }
    drop(host);
}
