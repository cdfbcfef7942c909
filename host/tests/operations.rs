//! Daily operation of a running host: accounts, flows and processors
//! managed through its admin socket while it runs (and through its store
//! file once it is stopped), only by its own user; `flow tail`; refusals of
//! an unsafe configuration at start and by `fnaa config check`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Host, free_ports, publish_event, write_config};

fn fnaa(config: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fnaa"));
    command
        .args(args)
        .args(["--config", config.to_str().unwrap()]);
    match password {
        Some(password) => command.env("FNAA_PASSWORD", password),
        None => command.env_remove("FNAA_PASSWORD"),
    };
    command.output().unwrap()
}

fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_running_host_is_managed_through_its_socket_and_a_stopped_one_through_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let [fnap, dns, mqtt] = free_ports();
    let config = write_config(dir.path(), fnap, dns, mqtt, "");
    let mut host = Host::start(dir.path(), &config, fnap);
    let socket = dir.path().join("fnaa.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "only the host's user may open the socket"
    );
    // Made before FNAP serves, logged a moment after the port is bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host
        .log()
        .contains("first start: created the account `admin`")
    {
        assert!(Instant::now() < deadline, "{}", host.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // The store is the running host's: these go through its socket.
    let added = fnaa(
        &config,
        &["user", "add", "bob", "--namespace", "flows.bob.test"],
        Some("bob-password"),
    );
    assert_eq!(ok(&added, "fnaa user add"), "added bob\n");
    let users = ok(&fnaa(&config, &["user", "list"], None), "fnaa user list");
    assert_eq!(users, "admin\tflows.fnaa.localhost\nbob\tflows.bob.test\n");

    let mut bob = host.session("bob", "bob-password");
    bob.ok("CREATE FLOW readings.flows.bob.test");
    bob.ok("CREATE FLOW hot.flows.bob.test");
    bob.ok("CREATE PROCESSOR filter.flows.bob.test PLUGIN signal INPUT readings.flows.bob.test OUTPUT hot.flows.bob.test CONFIG {\"types\":\"hot\"}");
    let flows = ok(&fnaa(&config, &["flows", "list"], None), "fnaa flows list");
    let flows: Vec<&str> = flows.lines().collect();
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert!(
        flows[0]
            .starts_with("hot.flows.bob.test\tbob\tprivate\tmqtt\thot.flows.bob.test\t127.0.0.1:"),
        "{flows:?}"
    );
    let processors = ok(
        &fnaa(&config, &["processors", "list"], None),
        "fnaa processors list",
    );
    assert!(
        processors.starts_with("filter.flows.bob.test\tbob\tsignal\treadings.flows.bob.test\thot.flows.bob.test\trunning\trunning events_in=0"),
        "{processors}"
    );

    // A new password works at once, the old one no longer.
    let changed = fnaa(&config, &["user", "passwd", "bob"], Some("new-password"));
    assert_eq!(
        ok(&changed, "fnaa user passwd"),
        "password of bob changed\n"
    );
    drop(host.session("bob", "new-password"));
    let mut refused = host.session_raw();
    assert_eq!(refused.send("AUTHENTICATE PLAIN"), ["220 OK"]);
    let reply = refused.send(&common::plain_token("bob", "bob-password"));
    assert!(reply[0].starts_with("535"), "{reply:?}");

    // Stopped (even by kill -9, leaving its socket file): the store itself.
    host.kill();
    assert!(socket.exists());
    let users = ok(
        &fnaa(&config, &["user", "list"], None),
        "fnaa user list, stopped",
    );
    assert_eq!(users, "admin\tflows.fnaa.localhost\nbob\tflows.bob.test\n");
    let processors = ok(&fnaa(&config, &["processors", "list"], None), "stopped");
    assert!(
        processors.starts_with("filter.flows.bob.test\tbob\tsignal\t"),
        "{processors}"
    );
    assert!(
        processors.trim_end().ends_with("running\t-"),
        "no status when stopped: {processors}"
    );

    // Restarted: the stale socket is replaced and no second admin is made.
    let password = std::fs::read_to_string(dir.path().join("admin-password")).unwrap();
    let host = Host::start(dir.path(), &config, fnap);
    let added = fnaa(
        &config,
        &["user", "add", "carol", "--namespace", "flows.carol.test"],
        Some("carol-password"),
    );
    assert_eq!(ok(&added, "fnaa user add after a restart"), "added carol\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("admin-password")).unwrap(),
        password
    );
    assert!(!host.log().contains("first start"), "{}", host.log());
}

/// `cmd` as user nobody (the tests run as root).
fn as_nobody(cmd: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(cmd)
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn another_user_cannot_use_the_admin_socket() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    assert!(
        is_root,
        "this test switches to user nobody, which needs root"
    );
    let dir = tempfile::tempdir().unwrap();
    // Others may reach the directory and read the configuration: only the
    // socket's own protection is tested.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let [fnap, dns, mqtt] = free_ports();
    let config = write_config(dir.path(), fnap, dns, mqtt, "");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let host = Host::start(dir.path(), &config, fnap);
    let bin = env!("CARGO_BIN_EXE_fnaa");
    let list = [bin, "user", "list", "--config", config.to_str().unwrap()];

    let denied = as_nobody(&list);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(!denied.status.success(), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");

    // With the file open to all, the host still refuses another user.
    let socket = dir.path().join("fnaa.sock");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = as_nobody(&list);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("admin"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host.log().contains("refused a process of another user") {
        assert!(Instant::now() < deadline, "{}", host.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn clear_text_off_loopback_is_refused_at_start_and_by_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let [fnap, dns, mqtt] = free_ports();
    let config = write_config(dir.path(), fnap, dns, mqtt, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("127.0.0.1:{fnap}"), &format!("0.0.0.0:{fnap}"));
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.contains("0.0.0.0")).unwrap() + 1;

    let checked = Command::new(env!("CARGO_BIN_EXE_fnaa"))
        .args(["config", "check", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(!checked.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{}:{line}: [fnap] listen = \"0.0.0.0:{fnap}\" without [fnap.tls]",
            config.display()
        )),
        "{stdout}"
    );

    let mut serve = Command::new(env!("CARGO_BIN_EXE_fnaa"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the host did not refuse to start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    for line in BufReader::new(serve.stderr.take().unwrap()).lines() {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    assert!(!status.success());
    assert!(stderr.contains("allow_cleartext_off_loopback"), "{stderr}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", fnap)).is_err(),
        "nothing listens"
    );

    // Allowed explicitly, it starts.
    let allowed = text.replace("[fnap]\n", "[fnap]\nallow_cleartext_off_loopback = true\n");
    std::fs::write(&config, allowed).unwrap();
    let host = Host::start(dir.path(), &config, fnap);
    drop(host.connect());
}

#[test]
fn flow_tail_prints_a_flows_events_as_they_arrive() {
    let host = common::test_host("", "flows.unix.ar");
    host.host
        .session("test", "test")
        .ok("CREATE FLOW clock.flows.unix.ar");
    let mut tail = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["tail", "clock.flows.unix.ar", "--count", "2"])
        .args(["--server", &format!("127.0.0.1:{}", host.fnap_port)])
        .args(["--user", "test"])
        .env("HOME", host.dir.path())
        .env("FLOW_PASSWORD", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tail.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("tailing clock.flows.unix.ar"), "{first}");
    // What was published before it listened is not its business; what
    // follows is printed in order, as CloudEvents JSON.
    publish_event(host.mqtt_port, "clock.flows.unix.ar", "t1", "tick");
    publish_event(host.mqtt_port, "clock.flows.unix.ar", "t2", "tick");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tail.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = tail.kill();
            panic!("flow tail did not print two events within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = tail.wait_with_output().unwrap();
    assert!(output.status.success());
    let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["specversion"], "1.0", "{line}");
            assert_eq!(event["data"]["at"], event["id"], "{line}");
            event["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids, ["t1", "t2"]);
}

#[test]
fn the_host_raises_its_open_files_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let [fnap, dns, mqtt] = free_ports();
    let config = write_config(dir.path(), fnap, dns, mqtt, "");
    // Started with a soft limit of 256 (exec: the shell becomes the host).
    let mut host = Command::new("bash")
        .args([
            "-c",
            "ulimit -S -n 256 && exec \"$0\" serve --config \"$1\"",
        ])
        .arg(env!("CARGO_BIN_EXE_fnaa"))
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let limits_of = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = |limits: &str| -> (String, String) {
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_owned();
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields[3].to_owned(), fields[4].to_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", fnap)).is_err() {
        assert!(Instant::now() < deadline, "the host did not start");
        assert!(host.try_wait().unwrap().is_none(), "the host exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (soft, hard) = open_files(&limits_of(host.id()));
    let _ = host.kill();
    let _ = host.wait();
    assert_eq!(soft, hard, "soft limit raised to the hard one");
    assert_ne!(soft, "256");
}
