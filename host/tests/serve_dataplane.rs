//! `fnaa serve` with no broker configured starts the embedded MQTT broker,
//! and events published with `mosquitto_pub` to one flow come out of another
//! flow through a processor plugin, along a pipeline declared in the TOML
//! configuration.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
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
    // The embedded broker is up when its port answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", mqtt)).is_err() {
        if let Ok(Some(status)) = host.0.try_wait() {
            let mut err = String::new();
            let _ = host.0.stderr.take().unwrap().read_to_string(&mut err);
            panic!("fnaa serve exited with {status}:\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "the embedded MQTT broker did not come up on {mqtt}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = mqtt.to_string();
    let sub = Command::new(require("mosquitto_sub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "flows/bridged",
            "-q",
            "1",
            "-C",
            "2",
            "-W",
            "30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the pipeline and the subscriber subscribe.
    std::thread::sleep(Duration::from_millis(1500));
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
    let out = sub.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
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
