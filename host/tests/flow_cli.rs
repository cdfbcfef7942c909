//! The `flow` and `fnaa user`/`fnaa flows` binaries against a real FNAP
//! server on loopback.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use fnaa_control::config::ControlConfig;
use fnaa_control::names::DnsName;
use fnaa_control::provision::memory::{MemoryDirectory, MemoryPipelines, MemoryProvisioner};
use fnaa_control::service::{Backends, Principal};
use fnaa_control::store::RedbStore;
use fnaa_control::{CancellationToken, ControlPlane};

struct Server {
    address: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn server(store_path: &Path, seed: bool) -> Server {
    let mut config = ControlConfig::default();
    config.fnap.listen = Some("127.0.0.1:0".parse().unwrap());
    config.fnap.hostname = "fnaa.unix.ar".into();
    config.fnap.login_failure_delay_ms = 0;
    config.grpc.listen = None;
    let backends = Backends {
        provisioner: Arc::new(MemoryProvisioner::new("kafka", &["kf1.unix.ar:9092"])),
        directory: Arc::new(MemoryDirectory::default()),
        pipelines: Arc::new(MemoryPipelines::default()),
        peers: Arc::new(fnaa_control::provision::memory_peers::MemoryPeers::default()),
    };
    let store = Arc::new(RedbStore::open(store_path).unwrap());
    let plane = ControlPlane::start_with_store(&config, store, backends, None)
        .await
        .unwrap();
    if seed {
        let service = plane.service();
        service
            .add_user(&Principal::Operator, "test", "test")
            .await
            .unwrap();
        let namespace = DnsName::parse("flows.unix.ar").unwrap();
        service
            .create_namespace(&Principal::Operator, &namespace, Some("test"))
            .await
            .unwrap();
    }
    let address = plane.fnap_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(plane.run(shutdown.clone()));
    Server {
        address,
        shutdown,
        task,
    }
}

fn agents_file(dir: &Path, server: std::net::SocketAddr) -> std::path::PathBuf {
    let path = dir.join("flow.yml");
    std::fs::write(
        &path,
        format!(
            "agents:
  - name: fnaa-unix
    fqdn: fnaa.unix.ar
    username: test
    password: test
    prefix: unix.ar-
    server: {server}
  - name: fnaa-emiliano
    fqdn: fnaa.emiliano.ar
    username: test
    password: test
    prefix: emiliano.ar-
    server: {server}
namespaces:
  - name: flows.unix.ar
    agent: fnaa-unix
"
        ),
    )
    .unwrap();
    path
}

/// Runs `flow` (off the async runtime's threads).
async fn flow(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flow"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("FLOW_PASSWORD")
        .env_remove("FLOW_SERVER");
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_cli_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir.path().join("state.redb"), true).await;
    let config = agents_file(dir.path(), server.address);

    let created = flow(&config, &["create", "flow", "time.flows.unix.ar"], &[]).await;
    assert_eq!(created.status.code(), Some(0), "{created:?}");
    assert_eq!(stdout(&created), "flow time.flows.unix.ar created\n");

    let described = flow(
        &config,
        &[
            "-d",
            "describe",
            "flow",
            "time.flows.unix.ar",
            "--mechanism",
            "plain",
        ],
        &[],
    )
    .await;
    assert_eq!(described.status.code(), Some(0), "{described:?}");
    assert!(stdout(&described).starts_with(
        "flow=time.flows.unix.ar\ntype=kafka\ntopic=time.flows.unix.ar\nserver=kf1.unix.ar:9092\n"
    ));
    let trace = String::from_utf8_lossy(&described.stderr);
    for expected in [
        "C: Got a response: 220 fnaa.unix.ar FNAA",
        "C: Sending command AUTHENTICATE PLAIN",
        "C: Wrote (20 bytes written)",
        "C: Got a response: 220 Authenticated",
        "C: Sending command DESCRIBE FLOW time.flows.unix.ar",
        "C: Wrote (34 bytes written)",
        "C: Server sent OK for command DESCRIBE FLOW time.flows.unix.ar",
        "C: Sending command QUIT",
    ] {
        assert!(trace.contains(expected), "missing {expected:?} in\n{trace}");
    }
    assert!(
        !trace.contains("AHRlc3QAdGVzdA=="),
        "credentials must not be printed"
    );

    // What the flow says about itself, after the thesis's four lines.
    let set = flow(
        &config,
        &["set", "time.flows.unix.ar", "terms", "free", "to", "use"],
        &[],
    )
    .await;
    assert_eq!(set.status.code(), Some(0), "{set:?}");
    let set = flow(&config, &["set", "time.flows.unix.ar", "rate", "1/s"], &[]).await;
    assert_eq!(stdout(&set), "flow time.flows.unix.ar: rate set\n");
    let bad = flow(&config, &["set", "time.flows.unix.ar", "rate", "fast"], &[]).await;
    assert_eq!(bad.status.code(), Some(65), "{bad:?}");
    let described = flow(&config, &["describe", "flow", "time.flows.unix.ar"], &[]).await;
    assert!(
        stdout(&described).ends_with("rate=1/s\nterms=free to use\n"),
        "{described:?}"
    );

    // Thesis 7.4.3: the local flow is named with the agent's prefix.
    let subscribed = flow(
        &config,
        &[
            "subscribe",
            "time.flows.unix.ar",
            "--agent",
            "fnaa-emiliano",
        ],
        &[],
    )
    .await;
    assert_eq!(subscribed.status.code(), Some(0), "{subscribed:?}");
    // As thesis 7.4.3 prints it.
    let out = stdout(&subscribed);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"Flow emiliano.ar-time.flows.unix.ar subscription created successfully"),
        "{out}"
    );
    let line = lines.get(1).copied().unwrap_or_default();
    assert!(
        line.starts_with("Server responded: emiliano.ar-time.flows.unix.ar SUBSCRIBED TO "),
        "{out}"
    );
    let copy = line.trim().rsplit(' ').next().unwrap().to_owned();
    let listed = flow(&config, &["list", "subscriptions"], &[]).await;
    assert!(stdout(&listed).starts_with(&copy), "{listed:?}");
    let ended = flow(&config, &["unsubscribe", &copy], &[]).await;
    assert_eq!(ended.status.code(), Some(0), "{ended:?}");

    let listed = flow(&config, &["list", "flows"], &[]).await;
    assert_eq!(
        stdout(&listed),
        "emiliano.ar-time.flows.unix.ar\ntime.flows.unix.ar\n"
    );

    // Processors.
    let created = flow(
        &config,
        &[
            "create",
            "processor",
            "p.flows.unix.ar",
            "--plugin",
            "convert@1.0.0",
            "--input",
            "time.flows.unix.ar",
            "--output",
            "emiliano.ar-time.flows.unix.ar",
            "--settings",
            r#"{"unit":"C"}"#,
        ],
        &[],
    )
    .await;
    assert_eq!(created.status.code(), Some(0), "{created:?}");
    assert_eq!(
        flow(&config, &["processor", "pause", "p.flows.unix.ar"], &[])
            .await
            .status
            .code(),
        Some(0)
    );
    let status = flow(&config, &["processor", "status", "p.flows.unix.ar"], &[]).await;
    assert!(stdout(&status).contains("state=paused"), "{status:?}");
    assert_eq!(
        flow(
            &config,
            &[
                "processor",
                "update",
                "p.flows.unix.ar",
                "--plugin",
                "convert@2.0.0"
            ],
            &[]
        )
        .await
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        flow(&config, &["delete", "processor", "p.flows.unix.ar"], &[])
            .await
            .status
            .code(),
        Some(0)
    );

    // Exit codes a shell user can act on.
    assert_eq!(
        flow(&config, &["create", "flow", "time.flows.unix.ar"], &[])
            .await
            .status
            .code(),
        Some(73)
    );
    assert_eq!(
        flow(&config, &["describe", "flow", "nope.flows.unix.ar"], &[])
            .await
            .status
            .code(),
        Some(66)
    );
    assert_eq!(
        flow(&config, &["create", "flow", "bad_name.flows.unix.ar"], &[])
            .await
            .status
            .code(),
        Some(65)
    );
    let denied = flow(
        &config,
        &["describe", "flow", "time.flows.unix.ar"],
        &[("FLOW_PASSWORD", "wrong")],
    )
    .await;
    assert_eq!(denied.status.code(), Some(77), "{denied:?}");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("535"));
    assert_eq!(
        flow(&config, &["frobnicate"], &[]).await.status.code(),
        Some(64)
    );
    assert_eq!(
        flow(&config, &["--agent", "nobody", "list", "flows"], &[])
            .await
            .status
            .code(),
        Some(78)
    );
    assert_eq!(
        flow(&config, &["--server", "127.0.0.1:1", "list", "flows"], &[])
            .await
            .status
            .code(),
        Some(69)
    );
    let completions = flow(&config, &["completions", "bash"], &[]).await;
    assert_eq!(completions.status.code(), Some(0));
    assert!(stdout(&completions).contains("flow"));
    assert_eq!(
        flow(&config, &["delete", "flow", "time.flows.unix.ar"], &[])
            .await
            .status
            .code(),
        Some(0)
    );

    server.shutdown.cancel();
    server.task.await.unwrap();
}

fn fnaa(config: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fnaa"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("FNAA_PASSWORD");
    if let Some(password) = password {
        command.env("FNAA_PASSWORD", password);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.redb");
    let config = dir.path().join("fnaa.toml");
    std::fs::write(
        &config,
        format!("[store]\npath = {:?}\n", store.display().to_string()),
    )
    .unwrap();

    let added = fnaa(
        &config,
        &["user", "add", "test", "--namespace", "flows.unix.ar"],
        Some("test"),
    );
    assert!(added.status.success(), "{added:?}");
    assert!(
        fnaa(&config, &["user", "add", "test"], Some("x"))
            .status
            .code()
            != Some(0)
    );
    assert!(
        fnaa(&config, &["user", "add", "bad user"], Some("x"))
            .status
            .code()
            != Some(0)
    );
    let listed = fnaa(&config, &["user", "list"], None);
    assert_eq!(stdout(&listed), "test\tflows.unix.ar\n");
    assert!(
        fnaa(&config, &["user", "passwd", "test"], Some("new-password"))
            .status
            .success()
    );
    let refused = fnaa(&config, &["user", "remove", "test"], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("still owns"),
        "{refused:?}"
    );

    // The host serves the accounts made offline.
    let server = server(&store, false).await;
    let agents = agents_file(dir.path(), server.address);
    let created = flow(
        &agents,
        &["create", "flow", "time.flows.unix.ar", "--public"],
        &[("FLOW_PASSWORD", "new-password")],
    )
    .await;
    assert_eq!(created.status.code(), Some(0), "{created:?}");
    // The store is locked while the host runs.
    let locked = fnaa(&config, &["flows", "list"], None);
    assert!(!locked.status.success());
    server.shutdown.cancel();
    server.task.await.unwrap();
    // Give the store writer a moment to close the file.
    let mut listed = fnaa(&config, &["flows", "list"], None);
    for _ in 0..20 {
        if listed.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        listed = fnaa(&config, &["flows", "list"], None);
    }
    assert_eq!(
        stdout(&listed),
        "time.flows.unix.ar\ttest\tpublic\tkafka\ttime.flows.unix.ar\tkf1.unix.ar:9092\n",
        "{listed:?}"
    );
}
