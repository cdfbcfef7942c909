//! An MQTT -> MQTT pipeline survives its host being killed with SIGKILL,
//! as a user meets it: `fnaa serve` runs a static `[[pipelines]]` entry
//! copying topic `crash/in` of a Mosquitto (started here on a free port,
//! never restarted: its persistent sessions live in memory) to
//! `crash/out`, QoS 1 both ways, while `mosquitto_pub -l -q 1` publishes a
//! long numbered stream. The host is killed ten times (see
//! `crash/mod.rs`); `mosquitto_sub` readers with persistent sessions
//! (`-c -i <id> -q 1`) see the input and the output.
#![allow(clippy::unwrap_used)]

#[path = "crash/mod.rs"]
mod crash;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crash::{Process, Reader, Scenario, free_port, require};

const INSTALL: &str = "apt-get install mosquitto mosquitto-clients";

/// A Mosquitto of the test's own, on a free port, killed when it ends.
struct Mosquitto {
    port: u16,
    _process: Process,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        assert!(
            std::path::Path::new("/usr/sbin/mosquitto").exists(),
            "`/usr/sbin/mosquitto` is required: {INSTALL}"
        );
        let port = free_port();
        let child = Command::new("/usr/sbin/mosquitto")
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let process = Process(Some(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto {
            port,
            _process: process,
        }
    }
}

/// A `mosquitto_sub` following `topic` in persistent session `id` (QoS 1),
/// printing payloads line-buffered. The session is made first (`-E`: exit
/// once subscribed), so that nothing published from now on is lost to it.
fn persistent_reader(sub: &str, port: u16, id: &str, topic: &str) -> Reader {
    let port = port.to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-c",
        "-i",
        id,
        "-q",
        "1",
        "-t",
        topic,
    ];
    let made = Command::new(sub).args(args).arg("-E").output().unwrap();
    assert!(
        made.status.success(),
        "mosquitto_sub -E: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut command = Command::new("stdbuf");
    command.args(["-oL", sub]).args(args);
    Reader {
        command,
        announces_ready: false,
    }
}

#[test]
fn an_mqtt_pipeline_resumes_at_once_after_kill_9_and_loses_nothing() {
    let sub = require("mosquitto_sub", "--help", INSTALL);
    let publish = require("mosquitto_pub", "--help", INSTALL);
    require("stdbuf", "--version", "apt-get install coreutils");
    let mosquitto = Mosquitto::start();
    let port = mosquitto.port;
    let (input, output) = ("crash/in", "crash/out");
    // The pipeline's source session exists before anything is published
    // (its default client id), as after any earlier run of the pipeline.
    drop(persistent_reader(
        &sub,
        port,
        "fnaa-crash-copy-source",
        input,
    ));
    let mut producer = Command::new(publish);
    producer.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-i",
        "crash-producer",
        "-q",
        "1",
        "-t",
        input,
        "-l",
    ]);
    let report = crash::run(Scenario {
        broker: "mqtt",
        brokers_toml: format!(
            "[flows]\nbroker = \"mosquitto\"\n\n[brokers.connections.mosquitto]\ntype = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\n"
        ),
        source: format!(
            r#"{{ broker = "mosquitto", mqtt = {{ topics = ["{input}"], qos = 1 }} }}"#
        ),
        sink: format!(
            r#"{{ broker = "mosquitto", connector_config = {{ mode = "structured" }}, mqtt = {{ topic = "{output}", qos = 1 }} }}"#
        ),
        producer,
        input_reader: persistent_reader(&sub, port, "crash-input-reader", input),
        output_reader: persistent_reader(&sub, port, "crash-output-reader", output),
        rate: 200,
        min_events: 3_000,
        drain: Duration::from_secs(20),
    });
    eprintln!("mqtt: {report:?}");
}
